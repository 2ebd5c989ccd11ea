"""The payments FastStream app: ``faststream run services.payments.app:create_app --factory``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import asyncpg
from faststream import FastStream
from faststream.kafka import KafkaBroker
from redis.asyncio import Redis

from services.payments.handlers import ProcessContext, register_handlers
from services.payments.provider import ProviderAdapter, ProviderSimulator
from services.payments.service import PaymentsService
from services.payments.settings import PaymentsSettings
from shared.clock import Clock, SystemClock
from shared.db import create_pool, migrate, service_migrations
from shared.idempotency import redis_client
from shared.kafka import broker_factory
from shared.logging import configure_logging
from shared.outbox import BrokerPublisher, OutboxRelay

log = logging.getLogger("aqsha.payments")
SCHEMA = "payments"
SERVICE_DIR = Path(__file__).resolve().parent


class PaymentsRuntime:
    """Pool, Redis, service, relay and janitor of one process; the app's hooks and tests drive it."""

    def __init__(
        self,
        settings: PaymentsSettings,
        *,
        clock: Clock | None = None,
        provider: ProviderAdapter | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.provider = provider or ProviderSimulator(settings.provider_mode)
        self.broker: KafkaBroker = broker_factory(
            settings.kafka, client_id=f"{settings.kafka.client_id}-payments"
        )
        self.ctx = ProcessContext(settings)
        register_handlers(self.broker, self.ctx)
        self.pool: asyncpg.Pool | None = None
        self.redis: Redis | None = None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def service(self) -> PaymentsService:
        """The service (after ``open``)."""
        return self.ctx.svc()

    async def open(self) -> None:
        """Create the pool, migrate, connect Redis and build the service (before consuming)."""
        s = self.settings
        self.pool = await create_pool(s.db.dsn, SCHEMA, min_size=s.db.min_size, max_size=s.db.max_size)
        async with self.pool.acquire() as conn:
            await migrate(conn, SCHEMA, service_migrations(SERVICE_DIR))
        self.redis = redis_client(s.redis.url, timeout_s=s.redis.socket_timeout_s)
        self.ctx.service = PaymentsService(self.pool, self.redis, s, self.clock, self.provider)

    async def start_background(self) -> None:
        """Start the outbox relay and the janitor (after the broker is connected)."""
        assert self.pool is not None
        self._stop.clear()
        relay = OutboxRelay(
            self.pool,
            BrokerPublisher(self.broker, self.settings.kafka.topic_suffix),
            schema=SCHEMA,
            batch_size=self.settings.outbox_batch_size,
            poll_interval=self.settings.outbox_poll_interval_s,
        )
        self._tasks = [
            asyncio.create_task(relay.run(self._stop), name="payments-outbox-relay"),
            asyncio.create_task(self._janitor(), name="payments-janitor"),
        ]

    async def _janitor(self) -> None:
        while not self._stop.is_set():
            try:
                await self.service.run_janitor_once()
            except Exception as exc:  # the janitor must outlive a failed round
                log.warning("janitor round failed", extra={"error": repr(exc)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.settings.janitor_interval_s)

    async def stop_background(self) -> None:
        """Stop the relay and the janitor and wait for them."""
        self._stop.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 10)
        self._tasks = []

    async def close(self) -> None:
        """Release Redis and the pool."""
        if self.redis is not None:
            await self.redis.aclose()
            self.redis = None
        if self.pool is not None:
            await self.pool.close()
            self.pool = None

    async def start(self) -> None:
        """Open everything, start consuming and the background tasks (tests use this)."""
        await self.open()
        await self.broker.start()
        await self.start_background()

    async def stop(self) -> None:
        """Reverse of ``start``."""
        await self.stop_background()
        await self.broker.stop()
        await self.close()


def create_app(settings: PaymentsSettings | None = None, *, clock: Clock | None = None) -> FastStream:
    """The FastStream application of the payments service."""
    settings = settings or PaymentsSettings()
    configure_logging(settings.service, settings.log_level)
    runtime = PaymentsRuntime(settings, clock=clock)
    app = FastStream(runtime.broker)
    app.on_startup(runtime.open)
    app.after_startup(runtime.start_background)
    app.on_shutdown(runtime.stop_background)
    app.after_shutdown(runtime.close)
    return app
