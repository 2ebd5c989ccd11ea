"""Helpers for the ``aqsha`` CLI tests: the environment from fixture settings and a threaded CliRunner."""

from __future__ import annotations

import asyncio

from typer.testing import CliRunner, Result

from shared.ops.cli import app
from shared.settings import Settings


def cli_env(settings: Settings) -> dict[str, str]:
    """The AQSHA_* environment that makes the CLI use the test's broker, database, Redis and suffix."""
    return {
        "AQSHA_KAFKA_BOOTSTRAP": settings.kafka.bootstrap,
        "AQSHA_KAFKA_TOPIC_SUFFIX": settings.kafka.topic_suffix,
        "AQSHA_PG_DSN": settings.db.dsn,
        "AQSHA_REDIS_URL": settings.redis.url,
        "AQSHA_REDIS_PREFIX": settings.redis.prefix,
        "AQSHA_LOG_LEVEL": "WARNING",
    }


def invoke(settings: Settings, *args: str, input: str | None = None) -> Result:
    """Run ``aqsha ARGS`` in-process (the commands call ``asyncio.run``: no running loop allowed)."""
    return CliRunner().invoke(app, list(args), env=cli_env(settings), input=input, catch_exceptions=False)


async def ainvoke(settings: Settings, *args: str, input: str | None = None) -> Result:
    """``invoke`` from async tests: in a thread, so the test's loop (and services in it) keeps running."""
    return await asyncio.to_thread(invoke, settings, *args, input=input)
