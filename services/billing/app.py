"""The billing FastStream app: ``faststream run services.billing.app:create_app --factory``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from faststream import FastStream

from services.billing.domain import WorkingDays
from services.billing.handlers import BillingContext, register_handlers
from services.billing.service import BillingService
from services.billing.settings import BillingSettings
from shared.calendar import load_kz_calendar
from shared.clock import Clock, SystemClock
from shared.db import create_pool, migrate, service_migrations
from shared.kafka import broker_factory
from shared.logging import configure_logging
from shared.outbox import BrokerPublisher, OutboxRelay

SCHEMA = "billing"
SERVICE_DIR = Path(__file__).resolve().parent


def create_app(
    settings: BillingSettings | None = None,
    *,
    clock: Clock | None = None,
    calendar: WorkingDays | None = None,
) -> FastStream:
    """Build the app: broker, handlers, and a lifespan owning the pool, migrations and outbox relay."""
    settings = settings or BillingSettings()
    configure_logging(settings.service, settings.log_level)
    broker = broker_factory(settings.kafka, client_id=f"{settings.kafka.client_id}-billing")
    ctx = BillingContext(kafka=settings.kafka, group=settings.group)
    register_handlers(broker, ctx)
    the_clock = clock or SystemClock()
    the_calendar: WorkingDays = calendar or load_kz_calendar()

    relay_state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        pool = await create_pool(
            settings.db.dsn, SCHEMA, min_size=settings.db.min_size, max_size=settings.db.max_size
        )
        try:
            async with pool.acquire() as conn:
                await migrate(conn, SCHEMA, service_migrations(SERVICE_DIR))
            ctx.service = BillingService(
                pool, calendar=the_calendar, clock=the_clock, batch_size=settings.business_day_batch
            )
            yield
        finally:
            ctx.service = None
            await pool.close()

    async def start_relay() -> None:
        # After the broker connected, so the relay's first publish does not race the connection.
        relay = OutboxRelay(
            ctx.svc.pool,
            BrokerPublisher(broker, settings.kafka.topic_suffix),
            schema=SCHEMA,
            batch_size=settings.outbox_batch_size,
            poll_interval=settings.outbox_poll_interval_s,
        )
        stop = asyncio.Event()
        relay_state["stop"] = stop
        relay_state["task"] = asyncio.create_task(relay.run(stop), name="billing-outbox-relay")

    async def stop_relay() -> None:
        # Before the broker stops: the relay finishes its in-flight batch (rows stay until acked).
        if "task" in relay_state:
            relay_state["stop"].set()
            await asyncio.wait_for(relay_state.pop("task"), timeout=10)

    return FastStream(broker, lifespan=lifespan, after_startup=[start_relay], on_shutdown=[stop_relay])
