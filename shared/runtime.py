"""One service process's lifecycle, the same for every service.

Startup, before the broker consumes: the asyncpg pool on the service's schema, its migrations, then
the service's own ``on_open`` hooks (build the service object, connect Redis, ...). After the
broker is connected: the outbox relay and any periodic loops (``every``). Shutdown in reverse: the
loops and the relay stop first (the relay finishes its in-flight batch; unacked rows stay in the
outbox), then the broker, then ``on_close`` hooks and the pool.

These are FastStream startup/shutdown hooks rather than ``lifespan=``: FastStream runs ``lifespan``
only under ``app.run()``, while the hooks also run under ``app.start()``/``app.stop()``.

Observability (``shared.observability``, ``docs/observability.md``): every runtime owns a
``Metrics`` registry bound to its broker (the subscriber helper records into it) and a ``Health``
with the built-in readiness checks ``postgres`` and ``kafka``; services add theirs with
``add_check`` (payments: ``redis``). With ``settings.http_port`` set, ``open`` starts the HTTP
endpoint (``/health/live``, ``/health/ready``, ``/metrics``: an ASGI app served by uvicorn in this
event loop) and the background phase samples the outbox backlog, consumer lag, readiness and the
service's own samplers (``on_sample``; billing: the last closed business date) every
``metrics_interval_s``.
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
from shared.kafka import document_publishers
from shared.logging import faststream_logger
from shared.observability import (
    Check,
    Health,
    HealthServer,
    Metrics,
    bind_metrics,
    prime_dead_letters,
    sample_lag,
)
from shared.outbox import BrokerPublisher, OutboxRelay
from shared.settings import Settings
from shared.trust import REASONS as TRUST_REASONS
from shared.trust import load_signer

log = logging.getLogger("aqsha.runtime")

OpenHook = Callable[[asyncpg.Pool], Awaitable[None]]
#: A service's own metrics sampler, run each sampling round with the pool.
Sampler = Callable[[asyncpg.Pool], Awaitable[None]]
CloseHook = Callable[[], Awaitable[None]]


class ServiceRuntime:
    """Pool, migrations, outbox relay and periodic loops of one service, wired into FastStream."""

    def __init__(
        self,
        settings: Settings,
        broker: KafkaBroker,
        *,
        schema: str,
        service_dir: Path,
        metrics_interval_s: float = 5.0,
        check_timeout_s: float = 2.0,
    ) -> None:
        self.settings = settings
        self.broker = broker
        self.schema = schema
        self._service_dir = service_dir
        self.metrics = Metrics(schema)
        bind_metrics(broker, self.metrics)
        self.health = Health(timeout_s=check_timeout_s, metrics=self.metrics)
        self.health.add_check("postgres", self._check_postgres)
        self.health.add_check("kafka", self._check_kafka)
        self.health.add_check("started", self._check_started)
        self.http: HealthServer | None = None
        self._metrics_interval = metrics_interval_s
        self._heartbeat_stop = asyncio.Event()
        self._heartbeat: asyncio.Task[None] | None = None
        # The service's identity: it signs everything its relay publishes (shared.trust). Loaded at
        # construction, so a missing or unreadable key stops the process before it consumes.
        self.signer = load_signer(settings.trust, schema)
        # AsyncAPI: the topics this service writes through its outbox (never published through these).
        document_publishers(broker, schema, settings.kafka.topic_suffix)
        self._pool: asyncpg.Pool | None = None
        self._open_hooks: list[OpenHook] = []
        self._close_hooks: list[CloseHook] = []
        self._samplers: list[Sampler] = []
        self._loops: list[tuple[str, float, Callable[[], Awaitable[object]]]] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        # A stop can arrive while FastStream is still starting (a signal during a slow group join):
        # FastStream then runs the shutdown hooks *before* after_startup. Without these flags the relay
        # and loops would start after stop_background, hold a pool connection and hang close() forever.
        self._started = False
        self._stopping = False

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

    def on_sample(self, sampler: Sampler) -> None:
        """Run ``sampler(pool)`` in every metrics sampling round (only with the HTTP endpoint)."""
        self._samplers.append(sampler)

    def every(self, name: str, interval_s: float, job: Callable[[], Awaitable[object]]) -> None:
        """Run ``job`` every ``interval_s`` while the service runs; a failed round is logged, not fatal."""
        self._loops.append((name, interval_s, job))

    def add_check(self, name: str, check: Check) -> None:
        """Add a readiness check for ``/health/ready``: it fails by raising, timing out or returning False."""
        self.health.add_check(name, check)

    async def _check_postgres(self) -> None:
        if self._pool is None:
            raise RuntimeError("pool is not open")
        async with self._pool.acquire(timeout=self.health.timeout_s) as conn:
            if await conn.fetchval("SELECT 1") != 1:
                raise RuntimeError("select 1 did not return 1")

    async def _check_started(self) -> None:
        if self._stopping:
            raise RuntimeError("stopping")
        if not self._started:
            raise RuntimeError("still starting (outbox relay and loops not running yet)")

    async def _check_kafka(self) -> bool:
        return bool(await self.broker.ping(self.health.timeout_s / 2))

    async def sample_metrics(self) -> None:
        """One sampling round: outbox backlog, consumer lag, readiness and the service's samplers."""
        if self._pool is not None:
            async with self._pool.acquire() as conn:
                self.metrics.set_backlog(int(await conn.fetchval("SELECT count(*) FROM outbox")))
        await sample_lag(self.metrics, self.broker)
        await self.health.ready()  # records aqsha_ready even where no probe asks
        if self._pool is not None:
            for sampler in self._samplers:
                await sampler(self._pool)

    async def open(self) -> None:
        """Pool, migrations, the ``on_open`` hooks, then the HTTP endpoint (if ``http_port`` is set)."""
        s = self.settings
        self._started = self._stopping = False
        pool = await create_pool(s.db.dsn, self.schema, min_size=s.db.min_size, max_size=s.db.max_size)
        try:
            async with pool.acquire() as conn:
                await migrate(conn, self.schema, service_migrations(self._service_dir))
            self._pool = pool
            for hook in self._open_hooks:
                await hook(pool)
            await self._start_http()
        except BaseException:
            self._pool = None
            await pool.close()
            raise

    async def _start_http(self) -> None:
        if self.settings.http_port is None or self.http is not None:
            return
        server = HealthServer(
            self.health, self.metrics, host=self.settings.http_host, port=self.settings.http_port
        )
        await server.start()
        self.http = server
        # The series the forged-record alert watches exist at 0 before the first one arrives.
        prime_dead_letters(self.metrics, self.broker, (*TRUST_REASONS, "handler_error"))
        self._heartbeat_stop.clear()
        self._heartbeat = asyncio.create_task(
            self.health.heartbeat(self._heartbeat_stop), name=f"{self.schema}-heartbeat"
        )

    async def _stop_http(self) -> None:
        self._heartbeat_stop.set()
        if self._heartbeat is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._heartbeat, 5)
            self._heartbeat = None
        if self.http is not None:
            await self.http.stop()
            self.http = None

    async def start_background(self) -> None:
        """Start the outbox relay and the periodic loops (after the broker connected)."""
        if self._stopping:
            log.warning("stop requested during startup: not starting the outbox relay and loops")
            return
        self._stop.clear()
        relay = OutboxRelay(
            self.pool,
            BrokerPublisher(self.broker, self.settings.kafka.topic_suffix, signer=self.signer),
            schema=self.schema,
            batch_size=self.settings.outbox_batch_size,
            poll_interval=self.settings.outbox_poll_interval_s,
        )
        self._tasks = [asyncio.create_task(relay.run(self._stop), name=f"{self.schema}-outbox-relay")]
        for name, interval, job in self._loops:
            loop = self._loop(name, interval, job)
            self._tasks.append(asyncio.create_task(loop, name=f"{self.schema}-{name}"))
        if self.settings.http_port is not None:
            sampler = self._loop("metrics", self._metrics_interval, self.sample_metrics)
            self._tasks.append(asyncio.create_task(sampler, name=f"{self.schema}-metrics"))
        self._started = True

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
        self._stopping = True
        self._stop.set()
        for task in self._tasks:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(task, 10)
        self._tasks = []

    async def close(self) -> None:
        """The HTTP endpoint, the ``on_close`` hooks (reverse order), then the pool."""
        try:
            await self._stop_http()
        finally:
            for hook in reversed(self._close_hooks):
                await hook()
            if self._pool is not None:
                try:
                    await asyncio.wait_for(self._pool.close(), 10)
                except TimeoutError:  # a connection still checked out must not hang shutdown
                    log.warning("pool did not close in 10 s; terminating its connections")
                    self._pool.terminate()
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
            logger=faststream_logger(),  # "FastStream app starting...", as JSON (shared/logging.py)
            on_startup=[self.open],
            after_startup=[self.start_background],
            on_shutdown=[self.stop_background],
            after_shutdown=[self.close],
        )
