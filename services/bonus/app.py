"""The bonus FastStream app: ``faststream run services.bonus.app:create_app --factory``.

Startup (before the broker starts consuming): pool on the ``bonus`` schema, migrations. After the
broker started: the outbox relay task. Shutdown: stop the relay, stop the broker, close the pool.
These are FastStream startup/shutdown hooks rather than ``lifespan=``, because FastStream only runs
``lifespan`` under ``app.run()``; the hooks also run under ``app.start()``/``app.stop()`` (tests).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from faststream import FastStream

from shared.clock import Clock, SystemClock
from shared.db import create_pool, migrate, service_migrations
from shared.kafka import broker_factory
from shared.logging import configure_logging
from shared.outbox import BrokerPublisher, OutboxRelay

from .domain import load_rules
from .handlers import BonusContext, register_handlers
from .settings import BonusSettings

SCHEMA = "bonus"
SERVICE_DIR = Path(__file__).resolve().parent


def create_app(settings: BonusSettings | None = None, *, clock: Clock | None = None) -> FastStream:
    """Build the bonus app; nothing connects until it starts."""
    settings = settings or BonusSettings()
    configure_logging(settings.service, settings.log_level)
    rules = load_rules(settings.rules_path, current_start=settings.current_start)
    ctx = BonusContext(settings=settings, rules=rules, clock=clock or SystemClock())
    broker = broker_factory(settings.kafka, client_id=f"{settings.kafka.client_id}-bonus")
    register_handlers(broker, ctx)
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    async def open_pool() -> None:
        pool = await create_pool(
            settings.db.dsn, SCHEMA, min_size=settings.db.min_size, max_size=settings.db.max_size
        )
        try:
            async with pool.acquire() as conn:
                await migrate(conn, SCHEMA, service_migrations(SERVICE_DIR))
        except BaseException:
            await pool.close()
            raise
        ctx.pool = pool

    async def start_relay() -> None:
        assert ctx.pool is not None
        stop.clear()
        relay = OutboxRelay(
            ctx.pool,
            BrokerPublisher(broker, settings.kafka.topic_suffix),
            schema=SCHEMA,
            batch_size=settings.outbox_batch_size,
            poll_interval=settings.outbox_poll_interval_s,
        )
        tasks.append(asyncio.create_task(relay.run(stop), name="bonus-outbox-relay"))

    async def stop_relay() -> None:
        stop.set()
        for task in tasks:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(task, 10)
        tasks.clear()

    async def close_pool() -> None:
        if ctx.pool is not None:
            await ctx.pool.close()
            ctx.pool = None

    return FastStream(
        broker,
        on_startup=[open_pool],
        after_startup=[start_relay],
        on_shutdown=[stop_relay],
        after_shutdown=[close_pool],
    )
