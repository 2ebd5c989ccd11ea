"""Thin Kafka handlers: the subscriber helper decodes, these route to the service."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from faststream.kafka import KafkaBroker

from services.payments.service import PaymentsService
from services.payments.settings import PaymentsSettings
from shared.contracts.billing import OverpaymentRefunded, RedPurchaseApproved, RedPurchaseDeclined
from shared.contracts.bonus import BonusRedeemed, BonusRedemptionDeclined
from shared.contracts.customers import CustomerPhoneChanged, CustomerRegistered
from shared.contracts.envelope import Envelope
from shared.contracts.payments import (
    CancelPayment,
    ConfirmPayment,
    LookupDebt,
    PayRedBill,
    PayService,
    Purchase,
    Refund,
    TopUp,
    Transfer,
)
from shared.kafka import subscribe
from shared.trust import load_registry

TOPICS = ("aqsha.payments.commands", "aqsha.customers.events", "aqsha.bonus.events", "aqsha.billing.events")
COMMANDS = (TopUp, PayService, Purchase, Transfer, PayRedBill, ConfirmPayment, CancelPayment, Refund)


@dataclass
class ProcessContext:
    """The process singletons handlers need; filled in by the app's startup before consuming."""

    settings: PaymentsSettings
    service: PaymentsService | None = field(default=None)

    def svc(self) -> PaymentsService:
        """The service; raises if startup has not run (the message is then retried, not lost)."""
        if self.service is None:
            raise RuntimeError("payments service not started")
        return self.service


def register_handlers(broker: KafkaBroker, ctx: ProcessContext) -> None:
    """Subscribe the payments consumer group to its four topics (one consumer)."""
    group = ctx.settings.consumer_group
    kafka = ctx.settings.kafka

    commands = frozenset(c.TYPE for c in COMMANDS)
    saga_replies = frozenset(
        t.TYPE for t in (BonusRedeemed, BonusRedemptionDeclined, RedPurchaseApproved, RedPurchaseDeclined)
    )

    async def on_message(env: Envelope[Any]) -> None:
        service = ctx.svc()
        if env.type in commands:
            await service.handle_command(env)
        elif env.type == LookupDebt.TYPE:
            await service.lookups.handle(env)
        elif env.type == CustomerRegistered.TYPE:
            await service.on_customer(env)
        elif env.type == CustomerPhoneChanged.TYPE:
            await service.on_phone_changed(env)
        elif env.type in saga_replies:
            await service.on_saga_reply(env)
        elif env.type == OverpaymentRefunded.TYPE:
            await service.on_overpayment(env)

    # One consumer for the four topics: the group is joined once (each join is a rebalance).
    subscribe(
        broker,
        TOPICS,
        group=group,
        handler=on_message,
        settings=kafka,
        trust=load_registry(ctx.settings.trust),
        accept=[
            *commands,
            LookupDebt.TYPE,
            CustomerRegistered.TYPE,
            CustomerPhoneChanged.TYPE,
            *saga_replies,
            OverpaymentRefunded.TYPE,
        ],
    )
