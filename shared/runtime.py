"""One service process's lifecycle, the same for every service.

Startup, before the broker consumes: the asyncpg pool on the service's schema, its migrations, then
the service's own ``on_open`` hooks (build the service object, connect Redis, ...). After the
broker is connected: the outbox relay and any periodic loops (``every``). Shutdown in reverse: the
loops and the relay stop first (the relay finishes its in-flight batch; unacked rows stay in the
outbox), then the broker, then ``on_close`` hooks and the pool.

These are FastStream startup/shutdown hooks rather than ``lifespan=``: FastStream runs ``lifespan``
only under ``app.run()``, while the hooks also run under ``app.start()``/``app.stop()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
from faststream import FastStream
from faststream.kafka import KafkaBroker

from shared.db import create_pool, migrate, service_migrations
from shared.outbox import BrokerPublisher, OutboxRelay
from shared.settings import Settings

log = logging.getLogger("aqsha.runtime")

OpenHook = Callable[[asyncpg.Pool], Awaitable[None]]
CloseHook = Callable[[], Awaitable[None]]


class ServiceRuntime:
    """Pool, migrations, outbox relay and periodic loops of one service, wired into FastStream."""

    def __init__(self, settings: Settings, broker: KafkaBroker, *, schema: str, service_dir: Path) -> None:
        self.settings = settings
        self.broker = broker
        self.schema = schema
        self._service_dir = service_dir
        self._pool: asyncpg.Pool | None = None
        self._open_hooks: list[OpenHook] = []
        self._close_hooks: list[CloseHook] = []
        self._loops: list[tuple[str, float, Callable[[], Awaitable[object]]]] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def pool(self) -> asyncpg.Pool:
        """The pool (between ``open`` and ``close``)."""
        if self._pool is None:
            raise RuntimeError(f"{self.schema} is not started")
        return self._pool

    def on_open(self, hook: OpenHook) -> None:
        """Run ``hook(pool)`` after the pool is migrated, before consuming starts."""
        self._open_hooks.append(hook)

    def on_close(self, hook: CloseHook) -> None:
        """Run ``hook()`` after consuming stopped, before the pool closes (reverse order)."""
        self._close_hooks.append(hook)

    def every(self, name: str, interval_s: float, job: Callable[[], Awaitable[object]]) -> None:
        """Run ``job`` every ``interval_s`` while the service runs; a failed round is logged, not fatal."""
        self._loops.append((name, interval_s, job))

    async def open(self) -> None:
        """Pool, migrations, then the ``on_open`` hooks."""
        s = self.settings
        pool = await create_pool(s.db.dsn, self.schema, min_size=s.db.min_size, max_size=s.db.max_size)
        try:
            async with pool.acquire() as conn:
                await migrate(conn, self.schema, service_migrations(self._service_dir))
            self._pool = pool
            for hook in self._open_hooks:
                await hook(pool)
        except BaseException:
            self._pool = None
            await pool.close()
            raise

    async def start_background(self) -> None:
        """Start the outbox relay and the periodic loops (after the broker connected)."""
        self._stop.clear()
        relay = OutboxRelay(
            self.pool,
            BrokerPublisher(self.broker, self.settings.kafka.topic_suffix),
            schema=self.schema,
            batch_size=self.settings.outbox_batch_size,
            poll_interval=self.settings.outbox_poll_interval_s,
        )
        self._tasks = [asyncio.create_task(relay.run(self._stop), name=f"{self.schema}-outbox-relay")]
        for name, interval, job in self._loops:
            loop = self._loop(name, interval, job)
            self._tasks.append(asyncio.create_task(loop, name=f"{self.schema}-{name}"))

    async def _loop(self, name: str, interval_s: float, job: Callable[[], Awaitable[object]]) -> None:
        while not self._stop.is_set():
            try:
                await job()
            except Exception as exc:  # the loop must outlive a failed round
                log.warning("background round failed", extra={"loop": name, "error": repr(exc)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), interval_s)

    async def stop_background(self) -> None:
        """Stop the relay and the loops and wait for them."""
        self._stop.set()
        for task in self._tasks:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(task, 10)
        self._tasks = []

    async def close(self) -> None:
        """The ``on_close`` hooks (reverse order), then the pool."""
        for hook in reversed(self._close_hooks):
            await hook()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def start(self) -> None:
        """Open, start consuming, start the background tasks (what ``faststream run`` does)."""
        await self.open()
        await self.broker.start()
        await self.start_background()

    async def stop(self) -> None:
        """Reverse of ``start``."""
        await self.stop_background()
        await self.broker.stop()
        await self.close()

    def app(self) -> FastStream:
        """A FastStream app over the broker with this lifecycle attached to its hooks."""
        return FastStream(
            self.broker,
            on_startup=[self.open],
            after_startup=[self.start_background],
            on_shutdown=[self.stop_background],
            after_shutdown=[self.close],
        )
