"""Session-scoped real infrastructure, isolated per test by database, Redis prefix and topic suffix.

Infrastructure is resolved once (``shared.devinfra``: env URLs, then testcontainers, then local
processes). Each test that asks for ``pg_dsn`` gets its own database cloned from a migrated
template; ``redis_prefix`` and ``topic_suffix`` are unique per test.
"""

from __future__ import annotations

import atexit
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import uuid4

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from shared.devinfra import Infra, local_infra
from shared.ops.devsecrets import write_dev_secrets
from shared.settings import DatabaseSettings, KafkaSettings, RedisSettings, Settings
from shared.trust import Keyring
from tests.support import pg

log = logging.getLogger("tests")

# Real keys for the whole session (signing keys of every principal, the trust registry, the OTP
# keys), made fresh and exported before any Settings is built, so services under test, tools and
# the subprocesses the suite starts (make run, chaos, bench) all use them. Nothing is committed.
_SECRETS = tempfile.TemporaryDirectory(prefix="aqsha-test-secrets-")
atexit.register(_SECRETS.cleanup)
os.environ.update(write_dev_secrets(Path(_SECRETS.name)))
# The CLI under test reads only what a test gives it, never the profile of a `make run` that happens
# to be running in this checkout (.run/aqsha.env); the tests of profiles name theirs explicitly.
os.environ.setdefault("AQSHA_PROFILE", "none")


@pytest.fixture(scope="session")
def keyring() -> Keyring:
    """Signers of every principal (the session's test keys), for tests acting as outside systems."""
    return Keyring.from_dir(Path(os.environ["AQSHA_TRUST_KEYS_DIR"]))


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    """PostgreSQL, Redis and Kafka endpoints for the whole session."""
    with local_infra() as resolved:
        log.info("test infrastructure: %s", resolved.kinds)
        yield resolved


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def pg_template(infra: Infra) -> AsyncIterator[str]:
    """A database with every schema migrated, cloned by ``pg_dsn``."""
    name = await pg.create_template(infra.pg_dsn)
    yield name
    await pg.drop(infra.pg_dsn, name)


@pytest_asyncio.fixture(loop_scope="session")
async def pg_dsn(infra: Infra, pg_template: str) -> AsyncIterator[str]:
    """A fresh, migrated database for one test."""
    name = await pg.clone(infra.pg_dsn, pg_template)
    yield pg.with_database(infra.pg_dsn, name)
    if not os.environ.get("AQSHA_KEEP_TEST_DB"):
        await pg.drop(infra.pg_dsn, name)


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix unique to this test."""
    return f"t{uuid4().hex[:10]}:"


@pytest.fixture
def topic_suffix() -> str:
    """A topic-name suffix unique to this test."""
    return f".t{uuid4().hex[:8]}"


@pytest_asyncio.fixture(loop_scope="session")
async def redis(infra: Infra, redis_prefix: str) -> AsyncIterator[Redis]:
    """A Redis client; the test's keys are deleted afterwards."""
    client = Redis.from_url(infra.redis_url)
    yield client
    keys = [k async for k in client.scan_iter(match=f"{redis_prefix}*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
def settings(infra: Infra, pg_dsn: str, redis_prefix: str, topic_suffix: str) -> Settings:
    """Settings pointing at this test's database, prefix and topics."""
    return Settings(
        service="test",
        kafka=KafkaSettings(bootstrap=infra.kafka_bootstrap, topic_suffix=topic_suffix, retry_backoff_ms=10),
        db=DatabaseSettings(dsn=pg_dsn),
        redis=RedisSettings(url=infra.redis_url, prefix=redis_prefix),
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def module_settings(infra: Infra, pg_template: str) -> AsyncIterator[Settings]:
    """Settings with a database, Redis prefix and topic suffix shared by one test module.

    Services under test join consumer groups once per module (Tansu pauses ~3 s in every join), so
    their tests share one database and isolate themselves by customer ids instead.
    """
    name = await pg.clone(infra.pg_dsn, pg_template)
    suffix = f".m{uuid4().hex[:8]}"
    yield Settings(
        service="test",
        kafka=KafkaSettings(bootstrap=infra.kafka_bootstrap, topic_suffix=suffix, retry_backoff_ms=10),
        db=DatabaseSettings(dsn=pg.with_database(infra.pg_dsn, name)),
        redis=RedisSettings(url=infra.redis_url, prefix=f"m{uuid4().hex[:10]}:"),
        outbox_poll_interval_s=0.05,
    )
    if not os.environ.get("AQSHA_KEEP_TEST_DB"):
        await pg.drop(infra.pg_dsn, name)


TIERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test belongs to exactly one tier, so ``-m unit`` and friends select the whole suite."""
    unmarked = [item.nodeid for item in items if not any(item.get_closest_marker(t) for t in TIERS)]
    if unmarked:
        raise pytest.UsageError(f"tests without a tier marker ({', '.join(TIERS)}): {unmarked[:10]}")
