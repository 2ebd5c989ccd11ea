"""Idempotent request handling: Redis is the fast path and in-flight lock, PostgreSQL the authority.

``IdempotencyGuard.run(key, payload, effect)``:

1. Redis ``GET`` of the stored outcome: the same payload hash replays it, another hash is an
   ``IdempotencyConflict`` (Mojaloop's "modified request").
2. Redis ``SET NX PX`` takes the in-flight lock; a loser waits briefly for the winner's outcome.
   Steps 1 and 2 are one pipelined round trip (a replay releases the lock it did not need), and
   storing the outcome and releasing the lock afterwards is another.
3. PostgreSQL decides: ``INSERT .. ON CONFLICT DO NOTHING`` into ``idempotency_keys`` in the same
   transaction as the effect. A concurrent duplicate blocks on the unique key until the first
   commits, then reads and replays its outcome. So a flushed, slow or stopped Redis can make a
   duplicate slower, never a second effect.

An outcome is whatever JSON the effect returns, declines included: a declined request stays
declined under its key (TigerBeetle's ``id_already_failed``). An effect that *raises* rolls back,
leaving no key, so a technical failure can be retried.

TEST-ONLY switch: ``AQSHA_TEST_DISABLE_IDEMPOTENCY=1`` in a process's environment makes ``run``
skip Redis and the PostgreSQL key and run the effect every time (a resent command acts again). It
exists only so the chaos suite (``tests/chaos``, docs/chaos.md) can prove its auditor notices a
broken guard. Default off; when on, every guard logs an ERROR at construction. Never set it
anywhere else.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from redis.asyncio import Redis

from shared.db import Conn

log = logging.getLogger("aqsha.idempotency")

Effect = Callable[[Conn], Awaitable[Any]]

#: Test-only mutation switch (module docstring). Read at import, i.e. once per process.
TEST_DISABLE_ENV = "AQSHA_TEST_DISABLE_IDEMPOTENCY"
DISABLED_FOR_TEST: bool = os.environ.get(TEST_DISABLE_ENV, "") not in ("", "0")


class IdempotencyConflict(Exception):
    """The key was already used with a different payload."""

    code = "IDEMPOTENCY_CONFLICT"

    def __init__(self, scope: str, key: str) -> None:
        super().__init__(f"idempotency conflict: key {key!r} in {scope!r} was used with a different payload")
        self.scope = scope
        self.key = key


@dataclass(frozen=True, slots=True)
class Outcome:
    """The stored result of a request, and whether this call replayed it."""

    value: Any
    replayed: bool


def payload_hash(payload: Any) -> str:
    """SHA-256 of the canonical JSON of ``payload`` (bytes are hashed as they are)."""
    if isinstance(payload, bytes | bytearray):
        data = bytes(payload)
    else:
        data = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(data).hexdigest()


class _Breaker:
    """Skips Redis for a while after it failed, so a dead Redis costs one timeout, not one per call."""

    def __init__(self, cooldown_s: float) -> None:
        self._cooldown = cooldown_s
        self._open_until = 0.0

    @property
    def open(self) -> bool:
        return time.monotonic() < self._open_until

    def trip(self) -> None:
        self._open_until = time.monotonic() + self._cooldown


class IdempotencyGuard:
    """Runs each request's effect at most once per ``(scope, key)``."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        redis: Redis | None,
        *,
        scope: str,
        prefix: str = "aqsha:",
        ttl_s: int = 24 * 3600,
        lock_ttl_ms: int = 30_000,
        wait_s: float = 2.0,
        breaker_cooldown_s: float = 1.0,
        redis_concurrency: int = 32,
    ) -> None:
        self._pool = pool
        self._redis = redis
        self._scope = scope
        self._prefix = f"{prefix}idem:{scope}:"
        self._ttl = ttl_s
        self._lock_ttl = lock_ttl_ms
        self._wait = wait_s
        self._breaker = _Breaker(breaker_cooldown_s)
        self._gate = asyncio.Semaphore(redis_concurrency)
        if DISABLED_FOR_TEST:
            log.error(
                "TEST-ONLY %s=1: the idempotency guard is DISABLED, every request runs again "
                "(never in production)",
                TEST_DISABLE_ENV,
                extra={"scope": scope},
            )

    # -- Redis, every call failure-tolerant --------------------------------------------------------
    async def _redis_call(self, op: Callable[[Redis], Awaitable[Any]]) -> Any:
        if self._redis is None or self._breaker.open:
            return None
        try:
            # Bounded: a burst of requests must queue here, not exhaust the client's connection pool
            # (which would read as "Redis down" and skip releasing locks until the breaker closes).
            async with self._gate:
                return await op(self._redis)
        except Exception as exc:  # Redis is an optimisation; its failure must not fail the request
            self._breaker.trip()
            log.warning("redis unavailable; using PostgreSQL only", extra={"error": repr(exc)})
            return None

    def _from_cache(self, raw: Any, key: str, digest: str) -> Outcome | None:
        if raw is None:
            return None
        cached = json.loads(raw)
        if cached["hash"] != digest:
            raise IdempotencyConflict(self._scope, key)
        return Outcome(cached["outcome"], replayed=True)

    async def _cached(self, key: str, digest: str) -> Outcome | None:
        raw = await self._redis_call(lambda r: r.get(self._prefix + key))
        return self._from_cache(raw, key, digest)

    # -- the request --------------------------------------------------------------------------
    async def run(self, key: str, payload: Any, effect: Effect) -> Outcome:
        """Run ``effect`` once for ``key``; replay the stored outcome for a duplicate of the same payload."""
        if DISABLED_FOR_TEST:  # test-only mutation (module docstring): no check, no stored outcome
            async with self._pool.acquire() as conn, conn.transaction():
                return Outcome(await effect(conn), replayed=False)
        digest = payload_hash(payload)
        lock_key = f"{self._prefix}{key}:lock"
        # One round trip: the stored outcome and the in-flight lock (pipelined GET + SET NX PX).
        # locked — True: we hold the lock; False: someone else is in flight; None: Redis unavailable.
        raw, locked = await self._lookup_and_lock(key, lock_key)
        try:
            hit = self._from_cache(raw, key, digest)
        except IdempotencyConflict:
            if locked:
                await self._redis_call(lambda r: r.delete(lock_key))
            raise
        if hit is not None:
            if locked:  # taken in the same round trip, not needed for a replay
                await self._redis_call(lambda r: r.delete(lock_key))
            return hit
        if locked is False:  # wait a little for the winner's outcome, then ask the authority anyway
            deadline = time.monotonic() + self._wait
            while time.monotonic() < deadline:
                await asyncio.sleep(0.01)
                hit = await self._cached(key, digest)
                if hit is not None:
                    return hit
        try:
            outcome = await self._authoritative(key, digest, effect)
        except BaseException:
            if locked:
                await self._redis_call(lambda r: r.delete(lock_key))
            raise
        stored = json.dumps({"hash": digest, "outcome": outcome.value}, default=str)
        # One round trip: store the outcome and release the lock (pipelined SET EX + DEL).
        await self._redis_call(self._store_and_unlock(key, stored, lock_key if locked else None))
        return outcome

    async def _lookup_and_lock(self, key: str, lock_key: str) -> tuple[Any, bool | None]:
        async def both(r: Redis) -> tuple[Any, bool]:
            pipe = r.pipeline(transaction=False)
            pipe.get(self._prefix + key)
            # redis-py answers None, not False, when NX finds the key taken.
            pipe.set(lock_key, "1", nx=True, px=self._lock_ttl)
            raw, took = await pipe.execute()
            return raw, bool(took)

        answer = await self._redis_call(both)
        if answer is None:
            return None, None
        return answer[0], answer[1]

    def _store_and_unlock(
        self, key: str, stored: str, lock_key: str | None
    ) -> Callable[[Redis], Awaitable[Any]]:
        async def both(r: Redis) -> Any:
            pipe = r.pipeline(transaction=False)
            pipe.set(self._prefix + key, stored, ex=self._ttl)
            if lock_key is not None:
                pipe.delete(lock_key)
            return await pipe.execute()

        return both

    async def _authoritative(self, key: str, digest: str, effect: Effect) -> Outcome:
        async with self._pool.acquire() as conn, conn.transaction():
            fresh = await conn.fetchval(
                "INSERT INTO idempotency_keys(scope, key, payload_hash, outcome) VALUES ($1, $2, $3, 'null') "
                "ON CONFLICT DO NOTHING RETURNING true",
                self._scope,
                key,
                digest,
            )
            if not fresh:
                row = await conn.fetchrow(
                    "SELECT payload_hash, outcome FROM idempotency_keys WHERE scope = $1 AND key = $2",
                    self._scope,
                    key,
                )
                assert row is not None
                if row["payload_hash"] != digest:
                    raise IdempotencyConflict(self._scope, key)
                return Outcome(row["outcome"], replayed=True)
            value = await effect(conn)
            await conn.execute(
                "UPDATE idempotency_keys SET outcome = $3 WHERE scope = $1 AND key = $2",
                self._scope,
                key,
                value,
            )
            return Outcome(value, replayed=False)


def redis_client(url: str, *, timeout_s: float = 0.5) -> Redis:
    """A Redis client that fails fast: it is the fast path, PostgreSQL is the authority."""
    return Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
