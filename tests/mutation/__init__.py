"""Mutation testing of the pure modules (``make mutation``, docs/testing.md): mutmut, then a report."""
