"""The ``aqsha`` operator CLI (placeholder until the commands land)."""

from __future__ import annotations


def main() -> None:
    """Entry point of the ``aqsha`` console script."""
    raise SystemExit("aqsha: no commands yet")
