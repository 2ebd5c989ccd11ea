"""Idempotency guard on real PostgreSQL and Redis: one effect per key, whatever Redis does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from redis.asyncio import Redis

from shared.db import Conn, create_pool
from shared.devinfra import RedisServer
from shared.idempotency import IdempotencyConflict, IdempotencyGuard, redis_client

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(loop_scope="session")
async def pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the kernel schema, with a table the effects write to."""
    p = await create_pool(pg_dsn, "kernel", max_size=20)
    await p.execute("CREATE TABLE effects (id bigserial PRIMARY KEY, key text NOT NULL, amount int NOT NULL)")
    yield p
    await p.close()


def _effect(key: str, amount: int) -> Any:
    async def effect(conn: Conn) -> dict[str, Any]:
        row_id = await conn.fetchval(
            "INSERT INTO effects(key, amount) VALUES ($1, $2) RETURNING id", key, amount
        )
        await asyncio.sleep(0.01)  # widen the race window
        return {"status": "COMPLETED", "effect_id": row_id}

    return effect


async def _effects(pool: asyncpg.Pool, key: str) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM effects WHERE key = $1", key))


async def test_200_concurrent_submissions_of_one_key_make_one_effect(
    pool: asyncpg.Pool, redis: Redis, redis_prefix: str
) -> None:
    guard = IdempotencyGuard(pool, redis, scope="pay", prefix=redis_prefix)
    payload = {"amount": 500, "to": "provider"}
    outcomes = await asyncio.gather(*(guard.run("req-1", payload, _effect("req-1", 500)) for _ in range(200)))
    assert await _effects(pool, "req-1") == 1
    assert sum(not o.replayed for o in outcomes) == 1
    assert await redis.get(f"{redis_prefix}idem:pay:req-1:lock") is None, "the in-flight lock is released"
    assert len({o.value["effect_id"] for o in outcomes}) == 1


async def test_same_key_different_payload_is_a_conflict(
    pool: asyncpg.Pool, redis: Redis, redis_prefix: str
) -> None:
    guard = IdempotencyGuard(pool, redis, scope="pay", prefix=redis_prefix)
    await guard.run("req-2", {"amount": 500}, _effect("req-2", 500))
    with pytest.raises(IdempotencyConflict):
        await guard.run("req-2", {"amount": 999}, _effect("req-2", 999))
    await redis.flushdb()  # the authority detects it too
    with pytest.raises(IdempotencyConflict):
        await guard.run("req-2", {"amount": 999}, _effect("req-2", 999))
    assert await _effects(pool, "req-2") == 1


async def test_decline_stays_declined(pool: asyncpg.Pool, redis: Redis, redis_prefix: str) -> None:
    guard = IdempotencyGuard(pool, redis, scope="pay", prefix=redis_prefix)
    calls = 0

    async def decline(conn: Conn) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return {"status": "FAILED", "reason_code": "INSUFFICIENT_FUNDS"}

    first = await guard.run("req-3", {"amount": 1}, decline)
    await redis.flushdb()
    again = await guard.run("req-3", {"amount": 1}, decline)
    assert first.value == again.value == {"status": "FAILED", "reason_code": "INSUFFICIENT_FUNDS"}
    assert again.replayed
    assert calls == 1


async def test_redis_flushed_between_duplicates_still_one_effect(
    pool: asyncpg.Pool, redis: Redis, redis_prefix: str
) -> None:
    guard = IdempotencyGuard(pool, redis, scope="pay", prefix=redis_prefix)
    first = await guard.run("req-4", {"amount": 7}, _effect("req-4", 7))
    await redis.flushall()
    second = await guard.run("req-4", {"amount": 7}, _effect("req-4", 7))
    assert second.replayed
    assert second.value == first.value
    assert await _effects(pool, "req-4") == 1


async def test_redis_stopped_requests_succeed_with_one_effect(pool: asyncpg.Pool, redis_prefix: str) -> None:
    server = RedisServer().start()
    client = redis_client(server.url, timeout_s=0.2)
    try:
        guard = IdempotencyGuard(pool, client, scope="pay", prefix=redis_prefix)
        await guard.run("req-5", {"amount": 9}, _effect("req-5", 9))
        assert await client.get(f"{redis_prefix}idem:pay:req-5") is not None  # Redis was in use
        server.stop()
        outcomes = await asyncio.gather(
            *(guard.run("req-5", {"amount": 9}, _effect("req-5", 9)) for _ in range(20))
        )
        assert all(o.replayed for o in outcomes)
        fresh = await guard.run("req-6", {"amount": 1}, _effect("req-6", 1))
        assert not fresh.replayed
        dup = await asyncio.gather(
            *(guard.run("req-6", {"amount": 1}, _effect("req-6", 1)) for _ in range(20))
        )
        assert all(o.replayed for o in dup)
    finally:
        server.stop()
        await client.aclose()
    assert await _effects(pool, "req-5") == 1
    assert await _effects(pool, "req-6") == 1
