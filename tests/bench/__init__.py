"""The performance benchmark (``python -m tests.bench``; docs/performance.md)."""
