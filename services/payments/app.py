"""The payments FastStream app: ``faststream run services.payments.app:create_app --factory``."""

from __future__ import annotations

from pathlib import Path

import asyncpg
from faststream import FastStream
from faststream.kafka import KafkaBroker
from redis.asyncio import Redis

from services.payments.handlers import ProcessContext, register_handlers
from services.payments.issuer import IssuerAdapter, IssuerSimulator, WebhookCourier
from services.payments.provider import ProviderAdapter, ProviderSimulator
from services.payments.service import PaymentsService
from services.payments.settings import PaymentsSettings
from shared.clock import Clock, clock_from_file
from shared.idempotency import redis_client
from shared.kafka import broker_factory
from shared.logging import configure_logging
from shared.runtime import ServiceRuntime

SCHEMA = "payments"
SERVICE_DIR = Path(__file__).resolve().parent


class PaymentsRuntime:
    """The shared service runtime plus Redis, the service object and the janitor; tests drive it."""

    def __init__(
        self,
        settings: PaymentsSettings,
        *,
        clock: Clock | None = None,
        provider: ProviderAdapter | None = None,
        issuer: IssuerAdapter | None = None,
    ) -> None:
        # Before anything connects: no start with a missing or development-only OTP key outside
        # development mode (InsecureConfiguration names the variable).
        settings.otp_keys()
        self.settings = settings
        self.clock = clock or clock_from_file(settings.clock_file)
        self.provider = provider or ProviderSimulator(settings.provider_mode)
        # seed 003: the issuers of other banks' cards (a simulator unless one is injected).
        sms_url = settings.issuer_sms_webhook_url
        courier = WebhookCourier(sms_url) if sms_url else None
        cards = settings.issuer_cards_file
        self.issuer: IssuerAdapter = issuer or IssuerSimulator.load(cards, courier=courier)
        self.broker: KafkaBroker = broker_factory(
            settings.kafka, client_id=f"{settings.kafka.client_id}-payments"
        )
        self.ctx = ProcessContext(settings)
        register_handlers(self.broker, self.ctx)
        self.redis: Redis | None = None
        self.runtime = ServiceRuntime(settings, self.broker, schema=SCHEMA, service_dir=SERVICE_DIR)
        self.runtime.on_open(self._attach)
        self.runtime.on_close(self._detach)
        self.runtime.every("janitor", settings.janitor_interval_s, self._janitor_round)
        self.runtime.add_check("redis", self._redis_ready)

    @property
    def pool(self) -> asyncpg.Pool:
        """The pool (after ``open``)."""
        return self.runtime.pool

    @property
    def service(self) -> PaymentsService:
        """The service (after ``open``)."""
        return self.ctx.svc()

    async def _attach(self, pool: asyncpg.Pool) -> None:
        s = self.settings
        self.redis = redis_client(s.redis.url, timeout_s=s.redis.socket_timeout_s)
        self.ctx.service = PaymentsService(pool, self.redis, s, self.clock, self.provider, issuer=self.issuer)

    async def _detach(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
            self.redis = None

    async def _redis_ready(self) -> bool:
        """Readiness: Redis answers PING (it is only the fast path, but a dead one slows every command)."""
        if self.redis is None:
            raise RuntimeError("redis client is not open")
        return bool(await self.redis.ping())

    async def _janitor_round(self) -> None:
        await self.service.run_janitor_once()

    async def start(self) -> None:
        """Open everything, start consuming and the background tasks (tests use this)."""
        await self.runtime.start()

    async def stop(self) -> None:
        """Reverse of ``start``."""
        await self.runtime.stop()


def create_app(settings: PaymentsSettings | None = None, *, clock: Clock | None = None) -> FastStream:
    """The FastStream application of the payments service."""
    settings = settings or PaymentsSettings()
    configure_logging(settings.service, settings.log_level)
    return PaymentsRuntime(settings, clock=clock).runtime.app()
