"""Idempotent request handling: Redis is the fast path and in-flight lock, PostgreSQL the authority.

``IdempotencyGuard.run(key, payload, effect)``:

1. Redis ``GET`` of the stored outcome: the same payload hash replays it, another hash is an
   ``IdempotencyConflict`` (Mojaloop's "modified request").
2. Redis ``SET NX PX`` takes the in-flight lock; a loser waits briefly for the winner's outcome.
3. PostgreSQL decides: ``INSERT .. ON CONFLICT DO NOTHING`` into ``idempotency_keys`` in the same
   transaction as the effect. A concurrent duplicate blocks on the unique key until the first
   commits, then reads and replays its outcome. So a flushed, slow or stopped Redis can make a
   duplicate slower, never a second effect.

An outcome is whatever JSON the effect returns, declines included: a declined request stays
declined under its key (TigerBeetle's ``id_already_failed``). An effect that *raises* rolls back,
leaving no key, so a technical failure can be retried.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from redis.asyncio import Redis

from shared.db import Conn

log = logging.getLogger("aqsha.idempotency")

Effect = Callable[[Conn], Awaitable[Any]]


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
    ) -> None:
        self._pool = pool
        self._redis = redis
        self._scope = scope
        self._prefix = f"{prefix}idem:{scope}:"
        self._ttl = ttl_s
        self._lock_ttl = lock_ttl_ms
        self._wait = wait_s
        self._breaker = _Breaker(breaker_cooldown_s)

    # -- Redis, every call failure-tolerant --------------------------------------------------------
    async def _redis_call(self, op: Callable[[Redis], Awaitable[Any]]) -> Any:
        if self._redis is None or self._breaker.open:
            return None
        try:
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
        digest = payload_hash(payload)
        hit = await self._cached(key, digest)
        if hit is not None:
            return hit
        lock_key = f"{self._prefix}{key}:lock"
        # True: we hold the lock; False: someone else is in flight; None: Redis unavailable.
        locked = await self._redis_call(self._take_lock(lock_key))
        if locked is False:  # wait a little for the winner's outcome, then ask the authority anyway
            deadline = time.monotonic() + self._wait
            while time.monotonic() < deadline:
                await asyncio.sleep(0.01)
                hit = await self._cached(key, digest)
                if hit is not None:
                    return hit
        try:
            outcome = await self._authoritative(key, digest, effect)
        finally:
            if locked:
                await self._redis_call(lambda r: r.delete(lock_key))
        stored = json.dumps({"hash": digest, "outcome": outcome.value}, default=str)
        await self._redis_call(lambda r: r.set(self._prefix + key, stored, ex=self._ttl))
        return outcome

    def _take_lock(self, lock_key: str) -> Callable[[Redis], Awaitable[bool]]:
        async def take(r: Redis) -> bool:
            # redis-py answers None, not False, when NX finds the key taken.
            return bool(await r.set(lock_key, "1", nx=True, px=self._lock_ttl))

        return take

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
