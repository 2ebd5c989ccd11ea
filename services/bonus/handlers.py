"""Kafka wiring of the bonus service: which topic, which group, which event types (thin)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg
from faststream.kafka import KafkaBroker

from shared.clock import Clock
from shared.contracts.envelope import Envelope
from shared.contracts.payments import (
    BonusRedemptionCancelled,
    BonusRedemptionRequested,
    PaymentCompleted,
    PaymentRefunded,
)
from shared.kafka import subscribe
from shared.topics import PAYMENTS_EVENTS
from shared.trust import load_registry

from .domain import BonusRules
from .service import BonusService
from .settings import GROUP, BonusSettings

#: The types bonus reacts to on aqsha.payments.events; every other type there is acked and skipped.
ACCEPTED = frozenset(
    m.TYPE for m in (PaymentCompleted, PaymentRefunded, BonusRedemptionRequested, BonusRedemptionCancelled)
)


@dataclass
class BonusContext:
    """What handlers need; ``pool`` is set by the app's startup hook before the broker starts."""

    settings: BonusSettings
    rules: BonusRules
    clock: Clock
    pool: asyncpg.Pool | None = None
    _service: BonusService | None = field(default=None, repr=False)

    @property
    def service(self) -> BonusService:
        """The service over the started pool."""
        if self._service is None:
            if self.pool is None:
                raise RuntimeError("bonus pool is not started")
            self._service = BonusService(self.pool, self.rules, self.clock, group=GROUP)
        return self._service


def register_handlers(broker: KafkaBroker, ctx: BonusContext) -> None:
    """Subscribe the bonus consumer group to payments' events (at-least-once, inbox-deduplicated)."""

    async def on_payment_event(envelope: Envelope[Any]) -> None:
        await ctx.service.handle(envelope)

    subscribe(
        broker,
        PAYMENTS_EVENTS.name,
        group=GROUP,
        handler=on_payment_event,
        settings=ctx.settings.kafka,
        trust=load_registry(ctx.settings.trust),
        accept=ACCEPTED,
    )
