"""The billing FastStream app: ``faststream run services.billing.app:create_app --factory``."""

from __future__ import annotations

from pathlib import Path

import asyncpg
from faststream import FastStream

from services.billing.domain import WorkingDays
from services.billing.handlers import BillingContext, register_handlers
from services.billing.service import BillingService
from services.billing.settings import BillingSettings
from shared.calendar import load_kz_calendar
from shared.clock import Clock, clock_from_file
from shared.kafka import broker_factory
from shared.logging import configure_logging
from shared.runtime import ServiceRuntime
from shared.trust import load_registry

SCHEMA = "billing"
SERVICE_DIR = Path(__file__).resolve().parent


def create_app(
    settings: BillingSettings | None = None,
    *,
    clock: Clock | None = None,
    calendar: WorkingDays | None = None,
) -> FastStream:
    """Build the app: broker, handlers, and the shared runtime (pool, migrations, outbox relay)."""
    settings = settings or BillingSettings()
    configure_logging(settings.service, settings.log_level)
    broker = broker_factory(settings.kafka, client_id=f"{settings.kafka.client_id}-billing")
    ctx = BillingContext(kafka=settings.kafka, group=settings.group, trust=load_registry(settings.trust))
    register_handlers(broker, ctx)
    the_clock = clock or clock_from_file(settings.clock_file)
    the_calendar: WorkingDays = calendar or load_kz_calendar()
    runtime = ServiceRuntime(settings, broker, schema=SCHEMA, service_dir=SERVICE_DIR)

    async def attach(pool: asyncpg.Pool) -> None:
        ctx.service = BillingService(
            pool,
            calendar=the_calendar,
            clock=the_clock,
            batch_size=settings.business_day_batch,
            max_catch_up_days=settings.max_catch_up_days,
        )

    async def detach() -> None:
        ctx.service = None

    async def sample_business_day(pool: asyncpg.Pool) -> None:
        # The last closed business date, whoever ran it (this process, another replica, the CLI).
        async with pool.acquire() as conn:
            last = await conn.fetchval("SELECT max(business_date) FROM business_day_runs")
        if last is not None:
            runtime.metrics.set_business_day_closed(last)

    runtime.on_open(attach)
    runtime.on_close(detach)
    runtime.on_sample(sample_business_day)
    return runtime.app()
