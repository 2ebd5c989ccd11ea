"""One running billing app per test module (``tests.support.harness``), and the billing vocabulary."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime
from datetime import time as dtime
from functools import cached_property
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest_asyncio

from services.billing.app import create_app
from services.billing.service import BillingService
from services.billing.settings import BillingSettings
from shared.calendar import load_kz_calendar
from shared.clock import ALMATY, SystemClock
from shared.contracts.billing import RedAccountOpened, RunBusinessDay
from shared.contracts.common import Channel, Funding, Merchant, PaymentKind, PaymentStatus
from shared.contracts.envelope import Envelope
from shared.contracts.payments import PaymentCompleted, PaymentRefunded, Receipt, RedPurchaseRequested
from shared.money import tenge_to_tiyn as tenge
from shared.settings import Settings
from tests.support.harness import Service, service_settings, until

GROUP = "aqsha-billing"
#: What billing publishes.
WATCHED = ("aqsha.billing.events",)


def at(d: date, hh: int = 12, mm: int = 0) -> datetime:
    """An Almaty wall-clock instant on ``d``."""
    return datetime.combine(d, dtime(hh, mm), tzinfo=ALMATY)


class Billing(Service):
    """The running billing app, and the billing service on the test's pool for the ops path."""

    @cached_property
    def service(self) -> BillingService:
        """Billing's service object (what ``aqsha billing run-day`` calls)."""
        return BillingService(self.pool, calendar=load_kz_calendar(), clock=SystemClock())

    async def refund(
        self, customer: UUID, payment: UUID, amount: int, *, total_refunded: int, original_amount: int
    ) -> Envelope[Any]:
        """A merchant refund of a RED purchase; waits until billing handled it; returns the envelope."""
        env = await self.publish(
            PaymentRefunded(
                payment_id=payment,
                refund_id=uuid4(),
                customer_id=customer,
                kind=PaymentKind.PURCHASE,
                amount=amount,
                total_refunded=total_refunded,
                original_amount=original_amount,
                funding=Funding.RED,
                merchant=Merchant.KASPI_MAGAZIN,
                status=(
                    PaymentStatus.REFUNDED
                    if total_refunded == original_amount
                    else PaymentStatus.PARTIALLY_REFUNDED
                ),
            )
        )
        await self.handled(env.event_id)
        return env

    async def barrier(self, customer: UUID) -> None:
        """Wait until billing consumed everything published so far on the customer's payments partition.

        Publishes an event billing must ignore (a refund of a GOLD-funded payment) with the customer's
        key, so it lands behind earlier payments events of that customer; once it is in the inbox,
        every earlier one (e.g. a redelivery the inbox skips) has been consumed too.
        """
        env = await self.publish(
            PaymentRefunded(
                payment_id=uuid4(),
                refund_id=uuid4(),
                customer_id=customer,
                kind=PaymentKind.PURCHASE,
                amount=1,
                total_refunded=1,
                original_amount=1,
                funding=Funding.GOLD,
                status=PaymentStatus.REFUNDED,
            )
        )
        await self.handled(env.event_id)

    async def version(self, customer: UUID) -> int:
        """The account row's version (bumped on every write)."""
        return int(await self.pool.fetchval("SELECT version FROM accounts WHERE customer_id = $1", customer))

    async def handled(self, event_id: UUID, group: str | None = GROUP, timeout_s: float = 30.0) -> None:
        """Wait until billing's inbox recorded the event (its effects committed with it)."""
        await super().handled(event_id, group, timeout_s)

    async def open(
        self,
        opened_on: date,
        *,
        limit: int = tenge(200_000),
        accepted_new_terms: bool = True,
        loan_payment_day: int | None = None,
    ) -> UUID:
        """Open a Red account for a fresh customer and wait until billing has it."""
        customer = uuid4()
        env = await self.publish(
            RedAccountOpened(
                customer_id=customer,
                limit=limit,
                opened_on=opened_on,
                accepted_new_terms=accepted_new_terms,
                loan_payment_day=loan_payment_day,
            )
        )
        await self.handled(env.event_id)
        return customer

    async def buy(self, customer: UUID, amount: int, on: date) -> UUID:
        """Request a Red purchase and wait for billing's decision (approved or declined)."""
        payment = uuid4()
        env = await self.publish(
            RedPurchaseRequested(
                payment_id=payment,
                customer_id=customer,
                amount=amount,
                merchant=Merchant.KASPI_MAGAZIN,
                requested_at=at(on, 12),
            )
        )
        await self.handled(env.event_id)
        return payment

    async def pay(
        self,
        customer: UUID,
        amount: int,
        paid_at: datetime,
        *,
        funding: Funding = Funding.GOLD,
        channel: Channel = Channel.APP,
    ) -> UUID:
        """A completed RED_BILL payment; waits until billing recorded the repayment."""
        payment = uuid4()
        receipt = Receipt(
            receipt_number=payment.hex[:16],
            created_at=paid_at,
            completed_at=paid_at,
            payer_masked="+7 701 *** ** 67",
            payee="Kaspi Red",
            amount=amount,
            fee=0,
            total=amount,
            funding=funding,
            channel=channel,
            status=PaymentStatus.COMPLETED,
        )
        env = await self.publish(
            PaymentCompleted(
                payment_id=payment,
                request_id=uuid4(),
                customer_id=customer,
                kind=PaymentKind.RED_BILL,
                completed_at=paid_at,
                amount=amount,
                fee=0,
                total=amount,
                funding=funding,
                channel=channel,
                paid_at=paid_at,
                receipt=receipt,
            )
        )
        await self.handled(env.event_id)
        return payment

    async def run_day(self, d: date) -> None:
        """Run the business day directly (the ops path)."""
        await self.service.run_business_day(d, requested_by="test")

    async def command_day(self, d: date) -> None:
        """Run the business day through the RunBusinessDay command; waits for its run record."""
        before = await self.runs(d)
        await self.publish(RunBusinessDay(business_date=d, requested_by="test"), key=d.isoformat())

        async def done() -> bool:
            return await self.runs(d) > before

        await until(done, what=f"a business-day run of {d}")

    async def runs(self, d: date) -> int:
        """How many times the job ran for ``d``."""
        return int(
            await self.pool.fetchval("SELECT count(*) FROM business_day_runs WHERE business_date = $1", d)
        )

    async def emitted(self, type_: str, customer: UUID) -> list[Envelope[Any]]:
        """Billing's events of ``type_`` for ``customer`` on the topic now (the collector caught up)."""
        await self.events.caught_up()
        return self.events.of(customer, type_)

    async def wait_events(self, type_: str, customer: UUID, n: int) -> list[Envelope[Any]]:
        """Wait until the outbox is drained and at least ``n`` such events are on the topic."""

        async def check() -> list[Envelope[Any]] | None:
            if await self.pool.fetchval("SELECT count(*) FROM outbox"):
                return None
            found = await self.emitted(type_, customer)
            return found if len(found) >= n else None

        return await until(check, what=f"{n} × {type_} for {customer}")

    async def bills(self, customer: UUID) -> list[asyncpg.Record]:
        """The customer's bills, oldest first."""
        return list(
            await self.pool.fetch(
                "SELECT * FROM bills WHERE customer_id = $1 ORDER BY statement_date", customer
            )
        )

    async def count(self, table: str, customer: UUID) -> int:
        """Rows of a fact table for the customer."""
        assert table in {"bills", "overdue_records", "penalties", "repayments"}
        return int(await self.pool.fetchval(f"SELECT count(*) FROM {table} WHERE customer_id = $1", customer))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def billing(module_settings: Settings) -> AsyncIterator[Billing]:
    """The billing app, started once for the module (one consumer-group join)."""
    settings = service_settings(BillingSettings, module_settings)
    async with Billing.running(create_app(settings), settings, schema="billing", watch=WATCHED) as svc:
        yield svc
