"""Thin Kafka handlers: decode (done by ``shared.kafka.subscribe``), claim in the inbox, call the service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from faststream.kafka import KafkaBroker

from services.billing.service import BillingService
from shared.contracts.billing import RunBusinessDay
from shared.contracts.envelope import Envelope
from shared.db import Conn
from shared.inbox import Inbox
from shared.kafka import subscribe
from shared.observability import metrics_for
from shared.settings import KafkaSettings
from shared.trust import TrustRegistry

ACCOUNTS_TOPIC = "aqsha.red.accounts"
PAYMENTS_TOPIC = "aqsha.payments.events"
COMMANDS_TOPIC = "aqsha.billing.commands"


@dataclass
class BillingContext:
    """The singletons handlers need; ``service`` is set by the app's lifespan (after the pool exists)."""

    kafka: KafkaSettings
    group: str
    trust: TrustRegistry
    service: BillingService | None = None

    @property
    def svc(self) -> BillingService:
        """The running service (the lifespan has started)."""
        assert self.service is not None, "billing service not started"
        return self.service


def register_handlers(broker: KafkaBroker, ctx: BillingContext) -> None:
    """Subscribe billing's three inputs, at-least-once, each effect once via the inbox."""
    inbox = Inbox(ctx.group)

    async def on_event(env: Envelope[Any]) -> None:
        service = ctx.svc

        async def effect(conn: Conn) -> None:
            await service.handle(conn, env)

        await inbox.once(service.pool, env, effect)

    async def on_command(env: Envelope[Any]) -> None:
        command = env.payload
        assert isinstance(command, RunBusinessDay)
        # Idempotent by construction (per-account watermark + unique fact keys), so a redelivered
        # command re-runs harmlessly (announcing a run with nothing new); the job spans many
        # transactions, so no single inbox claim.
        report = await ctx.svc.run_business_day(
            command.business_date, requested_by=command.requested_by, causation=env
        )
        metrics_for(broker).business_day_run(report.business_date, report.counts())

    async def dispatch(env: Envelope[Any]) -> None:
        await (on_command if env.type == "RunBusinessDay" else on_event)(env)

    # One consumer for all three topics: one group join instead of three rebalancing members.
    subscribe(
        broker,
        [ACCOUNTS_TOPIC, PAYMENTS_TOPIC, COMMANDS_TOPIC],
        group=ctx.group,
        handler=dispatch,
        settings=ctx.kafka,
        trust=ctx.trust,
        accept=[
            "RedAccountOpened",
            "RedTermsAccepted",
            "RedAccountClosed",
            "RedPurchaseRequested",
            "RedPurchaseCancelled",
            "PaymentRefunded",
            "PaymentCompleted",
            "RunBusinessDay",
        ],
    )
