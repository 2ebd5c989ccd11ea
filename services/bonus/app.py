"""The bonus FastStream app: ``faststream run services.bonus.app:create_app --factory``.

The lifecycle (pool, migrations, outbox relay) is ``shared.runtime.ServiceRuntime``.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg
from faststream import FastStream

from shared.clock import Clock, clock_from_file
from shared.kafka import broker_factory
from shared.logging import configure_logging
from shared.runtime import ServiceRuntime

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
    ctx = BonusContext(settings=settings, rules=rules, clock=clock or clock_from_file(settings.clock_file))
    broker = broker_factory(settings.kafka, client_id=f"{settings.kafka.client_id}-bonus")
    register_handlers(broker, ctx)
    runtime = ServiceRuntime(settings, broker, schema=SCHEMA, service_dir=SERVICE_DIR)

    async def attach(pool: asyncpg.Pool) -> None:
        ctx.pool = pool

    async def detach() -> None:
        ctx.pool = None

    runtime.on_open(attach)
    runtime.on_close(detach)
    return runtime.app()
