"""Kafka subscriptions of notify: thin adapters from envelopes to ``NotifyService.handle``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from faststream.kafka import KafkaBroker

from services.notify.service import NotifyService
from services.notify.settings import NotifySettings
from shared.contracts.envelope import Envelope
from shared.kafka import subscribe
from shared.trust import load_registry

#: Topic -> the event types notify reads from it (others on the topic are skipped).
SUBSCRIPTIONS: dict[str, tuple[str, ...]] = {
    "aqsha.customers.events": ("CustomerRegistered", "CustomerPhoneChanged"),
    "aqsha.payments.events": ("PaymentCompleted", "PaymentFailed", "TopUpCompleted", "TransferCompleted"),
    "aqsha.payments.otp": ("OtpRequested",),
    "aqsha.billing.events": (
        "BillIssued",
        "BillOverdueRecorded",
        "PenaltyApplied",
        "RepaymentApplied",
        "LimitRestored",
        "OverpaymentRefunded",
    ),
    "aqsha.bonus.events": ("BonusAccrued", "BonusReversed"),
}


@dataclass
class NotifyContext:
    """What handlers need; ``service`` is set at startup, once the pool exists."""

    settings: NotifySettings
    service: NotifyService | None = None

    def require(self) -> NotifyService:
        """The running service."""
        if self.service is None:
            raise RuntimeError("notify is not started")
        return self.service


def register_handlers(broker: KafkaBroker, ctx: NotifyContext) -> None:
    """Subscribe to each topic notify reads, at least once, de-duplicated by the shared inbox."""

    async def handle(env: Envelope[Any]) -> None:
        await ctx.require().handle(env)

    subscribe(
        broker,
        list(SUBSCRIPTIONS),
        group=ctx.settings.group,
        handler=handle,
        settings=ctx.settings.kafka,
        trust=load_registry(ctx.settings.trust),
        accept=[t for types in SUBSCRIPTIONS.values() for t in types],
    )
