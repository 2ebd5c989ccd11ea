"""The notify FastStream app: ``faststream run services.notify.app:create_app --factory``.

Startup (before consuming): pool on the ``notify`` schema, migrations, channels. After the broker
started: the outbox relay and the resume loop (PENDING deliveries left by a crash are sent again).
Shutdown: stop both tasks, close the HTTP client and the pool. Startup/shutdown hooks rather than
``lifespan=``, because FastStream runs ``lifespan`` only under ``app.run()`` (same as bonus).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from pathlib import Path

import httpx
from faststream import FastStream

from services.notify.channels import Channel, default_channels
from services.notify.handlers import NotifyContext, register_handlers
from services.notify.service import NotifyService
from services.notify.settings import NotifySettings
from shared.clock import Clock, SystemClock
from shared.db import create_pool, migrate, service_migrations
from shared.kafka import broker_factory
from shared.logging import configure_logging
from shared.outbox import BrokerPublisher, OutboxRelay

SCHEMA = "notify"
SERVICE_DIR = Path(__file__).resolve().parent
log = logging.getLogger("aqsha.notify")


def create_app(
    settings: NotifySettings | None = None,
    *,
    clock: Clock | None = None,
    channels: Mapping[str, Channel] | None = None,
) -> FastStream:
    """Build the notify app; nothing connects until it starts. ``channels`` overrides the defaults."""
    settings = settings or NotifySettings()
    configure_logging(settings.service, settings.log_level)
    ctx = NotifyContext(settings=settings)
    broker = broker_factory(settings.kafka, client_id=f"{settings.kafka.client_id}-notify")
    register_handlers(broker, ctx)
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    client: list[httpx.AsyncClient] = []

    async def open_service() -> None:
        pool = await create_pool(
            settings.db.dsn, SCHEMA, min_size=settings.db.min_size, max_size=settings.db.max_size
        )
        try:
            async with pool.acquire() as conn:
                await migrate(conn, SCHEMA, service_migrations(SERVICE_DIR))
        except BaseException:
            await pool.close()
            raise
        http = httpx.AsyncClient(timeout=settings.webhook_timeout_s)
        client.append(http)
        chosen = dict(channels) if channels is not None else default_channels(settings, http)
        ctx.service = NotifyService(pool, settings, chosen, clock or SystemClock())

    async def resume_loop() -> None:
        service = ctx.require()
        while not stop.is_set():
            try:
                resumed = await service.resume_pending()
                if resumed:
                    log.info("resumed pending deliveries", extra={"count": resumed})
            except Exception as exc:  # the next round retries
                log.warning("resuming pending deliveries failed", extra={"error": repr(exc)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.resume_interval_s)

    async def start_tasks() -> None:
        service = ctx.require()
        stop.clear()
        relay = OutboxRelay(
            service.pool,
            BrokerPublisher(broker, settings.kafka.topic_suffix),
            schema=SCHEMA,
            batch_size=settings.outbox_batch_size,
            poll_interval=settings.outbox_poll_interval_s,
        )
        tasks.append(asyncio.create_task(relay.run(stop), name="notify-outbox-relay"))
        tasks.append(asyncio.create_task(resume_loop(), name="notify-resume"))

    async def stop_tasks() -> None:
        stop.set()
        for task in tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(task, 10)
        tasks.clear()

    async def close_service() -> None:
        for http in client:
            await http.aclose()
        client.clear()
        if ctx.service is not None:
            await ctx.service.pool.close()
            ctx.service = None

    return FastStream(
        broker,
        on_startup=[open_service],
        after_startup=[start_tasks],
        on_shutdown=[stop_tasks],
        after_shutdown=[close_service],
    )
