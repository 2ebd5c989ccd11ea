"""One running bonus app per test module (``tests.support.harness``), the bonus vocabulary, and the
payments events that drive it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest_asyncio

from services.bonus.app import create_app
from services.bonus.settings import BonusSettings
from shared.contracts.common import Funding, Merchant, PaymentKind, PaymentStatus, ServiceCategory
from shared.contracts.payments import (
    BonusRedemptionCancelled,
    BonusRedemptionRequested,
    PaymentCompleted,
    PaymentRefunded,
)
from shared.contracts.samples import sample
from shared.settings import Settings
from tests.support.harness import Service, service_settings, until

#: The day the current program replaced the legacy one, in these tests.
SWITCH_OVER = date(2025, 1, 1)
#: What bonus publishes.
WATCHED = ("aqsha.bonus.events",)


class Bonus(Service):
    """The running bonus app; what it publishes is looked up by customer and payment."""

    def of(self, customer: UUID, type_: str | None = None, payment_id: UUID | None = None) -> list[Any]:
        """Payloads published by bonus for a customer, optionally filtered by type and payment."""
        return [
            e.payload
            for e in self.events.of(customer, type_)
            if payment_id is None or getattr(e.payload, "payment_id", None) == payment_id
        ]

    async def wait_for(
        self, customer: UUID, type_: str, payment_id: UUID | None = None, *, count: int = 1
    ) -> list[Any]:
        """Wait until at least ``count`` matching bonus events arrived; return them."""
        return await self.expect(
            customer,
            type_,
            lambda p: payment_id is None or getattr(p, "payment_id", None) == payment_id,
            count=count,
        )

    async def one(self, customer: UUID, type_: str, payment_id: UUID) -> Any:
        """The first matching event (waits for it)."""
        return (await self.wait_for(customer, type_, payment_id))[0]

    async def balance(self, customer: UUID) -> int:
        """The stored balance (0 when bonus never saw the customer)."""
        return int(
            await self.pool.fetchval("SELECT balance FROM balances WHERE customer_id = $1", customer) or 0
        )

    async def decision(self, payment_id: UUID) -> asyncpg.Record:
        """The accrual decision of a payment (waits for it)."""
        row: asyncpg.Record = await until(
            lambda: self.pool.fetchrow("SELECT * FROM accrual_decisions WHERE payment_id = $1", payment_id),
            what=f"the accrual decision of {payment_id}",
        )
        return row


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def bonus(module_settings: Settings) -> AsyncIterator[Bonus]:
    """The bonus app running on the module's database and topics."""
    settings = service_settings(BonusSettings, module_settings, service="bonus", current_start=SWITCH_OVER)
    async with Bonus.running(create_app(settings), settings, schema="bonus", watch=WATCHED) as svc:
        yield svc


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def ledger_sums_to_balance(bonus: Bonus) -> AsyncIterator[None]:
    """After each test: every stored balance equals the sum of its customer's ledger, and is >= 0."""
    yield
    broken = await bonus.pool.fetch(
        "SELECT b.customer_id, b.balance, COALESCE(l.total, 0) AS total FROM balances b "
        "LEFT JOIN (SELECT customer_id, sum(CASE WHEN kind IN ('ACCRUAL', 'RESTORE') THEN amount "
        "ELSE -amount END) AS total FROM ledger_entries GROUP BY customer_id) l USING (customer_id) "
        "WHERE b.balance <> COALESCE(l.total, 0) OR b.balance < 0"
    )
    assert [dict(r.items()) for r in broken] == []


# -- payloads ------------------------------------------------------------------------------------


def completed(
    customer: UUID,
    *,
    at: datetime,
    amount: int,
    kind: PaymentKind = PaymentKind.SERVICE,
    category: ServiceCategory | None = None,
    provider: str | None = None,
    merchant: Merchant | None = None,
    partner_id: str | None = None,
    funding: Funding = Funding.GOLD,
    bonus_amount: int = 0,
    fee: int = 0,
) -> PaymentCompleted:
    """A PaymentCompleted for ``customer`` with a fresh payment id (from the contract sample)."""
    return sample(PaymentCompleted).model_copy(
        update={
            "payment_id": uuid4(),
            "request_id": uuid4(),
            "customer_id": customer,
            "kind": kind,
            "completed_at": at,
            "amount": amount,
            "fee": fee,
            "total": amount + fee,
            "funding": funding,
            "category": category,
            "provider": provider,
            "merchant": merchant,
            "partner_id": partner_id,
            "bonus_amount": bonus_amount,
        }
    )


def refunded(payment: PaymentCompleted, *, amount: int, total_refunded: int) -> PaymentRefunded:
    """A refund of ``amount`` of a completed payment (``total_refunded`` includes it)."""
    return sample(PaymentRefunded).model_copy(
        update={
            "payment_id": payment.payment_id,
            "refund_id": uuid4(),
            "customer_id": payment.customer_id,
            "kind": payment.kind,
            "amount": amount,
            "total_refunded": total_refunded,
            "original_amount": payment.amount,
            "funding": payment.funding,
            "merchant": payment.merchant,
            "status": PaymentStatus.REFUNDED
            if total_refunded == payment.amount
            else PaymentStatus.PARTIALLY_REFUNDED,
        }
    )


def redemption(
    customer: UUID,
    *,
    amount: int,
    purchase_amount: int,
    merchant: Merchant = Merchant.KASPI_MAGAZIN,
    kind: PaymentKind = PaymentKind.PURCHASE,
    payment_id: UUID | None = None,
) -> BonusRedemptionRequested:
    """Payments asking bonus to pay ``amount`` of a purchase."""
    return BonusRedemptionRequested(
        payment_id=payment_id or uuid4(),
        customer_id=customer,
        amount=amount,
        purchase_amount=purchase_amount,
        merchant=merchant,
        kind=kind,
    )


def cancelled(req: BonusRedemptionRequested) -> BonusRedemptionCancelled:
    """Payments' compensation after the purchase failed."""
    return sample(BonusRedemptionCancelled).model_copy(
        update={"payment_id": req.payment_id, "customer_id": req.customer_id, "amount": req.amount}
    )
