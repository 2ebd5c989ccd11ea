"""The notify FastStream app: ``faststream run services.notify.app:create_app --factory``.

Startup (before consuming): pool on the ``notify`` schema, migrations, channels. After the broker
started: the outbox relay and the resume loop (PENDING deliveries left by a crash are sent again).
Shutdown: stop both tasks, close the HTTP client and the pool. The lifecycle is
``shared.runtime.ServiceRuntime``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import asyncpg
import httpx
from faststream import FastStream

from services.notify.channels import Channel, default_channels
from services.notify.handlers import NotifyContext, register_handlers
from services.notify.service import NotifyService
from services.notify.settings import NotifySettings
from shared.clock import Clock, clock_from_file
from shared.kafka import broker_factory
from shared.logging import configure_logging
from shared.runtime import ServiceRuntime

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
    # Before anything connects: no start without the OTP transport key outside development mode
    # (InsecureConfiguration names AQSHA_OTP_TRANSPORT_KEY).
    settings.otp_transport_secret()
    ctx = NotifyContext(settings=settings)
    broker = broker_factory(settings.kafka, client_id=f"{settings.kafka.client_id}-notify")
    register_handlers(broker, ctx)
    runtime = ServiceRuntime(settings, broker, schema=SCHEMA, service_dir=SERVICE_DIR)
    client: list[httpx.AsyncClient] = []

    async def attach(pool: asyncpg.Pool) -> None:
        http = httpx.AsyncClient(timeout=settings.webhook_timeout_s)
        client.append(http)
        chosen = dict(channels) if channels is not None else default_channels(settings, http)
        ctx.service = NotifyService(pool, settings, chosen, clock or clock_from_file(settings.clock_file))

    async def resume() -> None:
        resumed = await ctx.require().resume_pending()
        if resumed:
            log.info("resumed pending deliveries", extra={"count": resumed})

    async def detach() -> None:
        for http in client:
            await http.aclose()
        client.clear()
        ctx.service = None

    runtime.on_open(attach)
    runtime.on_close(detach)
    runtime.every("resume", settings.resume_interval_s, resume)
    return runtime.app()
