"""Operator tooling: the ``aqsha`` CLI, the local platform runner, the demo and reconciliation."""
