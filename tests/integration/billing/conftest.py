"""One running billing app per test module, driven through Kafka; helpers to publish and to poll."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as dtime
from typing import Any, TypeVar
from uuid import UUID, uuid4

import asyncpg
import pytest_asyncio
from faststream import FastStream
from faststream.kafka import KafkaBroker

from services.billing.app import create_app
from services.billing.service import BillingService
from services.billing.settings import BillingSettings
from shared.calendar import load_kz_calendar
from shared.clock import ALMATY, SystemClock
from shared.contracts.base import Contract
from shared.contracts.billing import RedAccountOpened, RunBusinessDay
from shared.contracts.common import Channel, Funding, Merchant, PaymentKind, PaymentStatus
from shared.contracts.envelope import Envelope, decode
from shared.contracts.payments import PaymentCompleted, PaymentRefunded, Receipt, RedPurchaseRequested
from shared.db import create_pool
from shared.money import tenge_to_tiyn as tenge
from shared.settings import Settings
from shared.topics import resolve, topic_for_contract
from tests.support.kafka import create_topics, read_records
from tests.support.trust import envelope, publish

T = TypeVar("T")


def at(d: date, hh: int = 12, mm: int = 0) -> datetime:
    """An Almaty wall-clock instant on ``d``."""
    return datetime.combine(d, dtime(hh, mm), tzinfo=ALMATY)


async def until(check: Callable[[], Awaitable[T | None]], timeout_s: float = 30.0) -> T:
    """Poll ``check`` until it returns something truthy; return it."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


@dataclass
class Billing:
    """The running billing app and what tests need to drive and observe it."""

    app: FastStream
    settings: Settings
    pool: asyncpg.Pool
    service: BillingService

    async def publish(self, payload: Contract, *, key: str | None = None) -> UUID:
        """Publish an envelope to the contract's topic, as its producer would (signed by it); return its
        event id."""
        env = envelope(payload, key=key, occurred_at=datetime.now(UTC))
        await self.publish_envelope(env)
        return env.event_id

    async def publish_envelope(self, env: Envelope[Any]) -> None:
        """Publish this exact envelope (same event id), e.g. to redeliver it, signed by its producer."""
        topic = resolve(topic_for_contract(env.type).name, self.settings.kafka.topic_suffix)
        broker = self.app.broker
        assert isinstance(broker, KafkaBroker)
        await publish(broker, env, topic)

    async def refund(
        self, customer: UUID, payment: UUID, amount: int, *, total_refunded: int, original_amount: int
    ) -> Envelope[Any]:
        """A merchant refund of a RED purchase; waits until billing handled it; returns the envelope."""
        env = envelope(
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
            ),
            occurred_at=datetime.now(UTC),
        )
        await self.publish_envelope(env)
        await self.handled(env.event_id)
        return env

    async def barrier(self, customer: UUID) -> None:
        """Wait until billing consumed everything published so far on the customer's payments partition.

        Publishes an event billing must ignore (a refund of a GOLD-funded payment) with the customer's
        key, so it lands behind earlier payments events of that customer; once it is in the inbox,
        every earlier one (e.g. a redelivery the inbox skips) has been consumed too.
        """
        event_id = await self.publish(
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
        await self.handled(event_id)

    async def version(self, customer: UUID) -> int:
        """The account row's version (bumped on every write)."""
        return int(await self.pool.fetchval("SELECT version FROM accounts WHERE customer_id = $1", customer))

    async def handled(self, event_id: UUID) -> None:
        """Wait until billing's inbox recorded the event (its effects committed with it)."""
        await until(
            lambda: self.pool.fetchval(
                "SELECT true FROM inbox WHERE consumer_group = 'aqsha-billing' AND event_id = $1", event_id
            )
        )

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
        event_id = await self.publish(
            RedAccountOpened(
                customer_id=customer,
                limit=limit,
                opened_on=opened_on,
                accepted_new_terms=accepted_new_terms,
                loan_payment_day=loan_payment_day,
            )
        )
        await self.handled(event_id)
        return customer

    async def buy(self, customer: UUID, amount: int, on: date) -> UUID:
        """Request a Red purchase and wait for billing's decision (approved or declined)."""
        payment = uuid4()
        event_id = await self.publish(
            RedPurchaseRequested(
                payment_id=payment,
                customer_id=customer,
                amount=amount,
                merchant=Merchant.KASPI_MAGAZIN,
                requested_at=at(on, 12),
            )
        )
        await self.handled(event_id)
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
        event_id = await self.publish(
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
        await self.handled(event_id)
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

        await until(done)

    async def runs(self, d: date) -> int:
        """How many times the job ran for ``d``."""
        return int(
            await self.pool.fetchval("SELECT count(*) FROM business_day_runs WHERE business_date = $1", d)
        )

    async def events(self, type_: str, customer: UUID | None = None) -> list[Any]:
        """Billing events of a type (for a customer) published so far."""
        topic = resolve("aqsha.billing.events", self.settings.kafka.topic_suffix)
        records = await read_records(self.settings.kafka.bootstrap, topic, until=0, timeout_s=10)
        out = []
        for r in records:
            env = decode(r.value or b"")
            if env.type == type_ and (customer is None or env.key == str(customer)):
                out.append(env)
        return out

    async def wait_events(self, type_: str, customer: UUID, n: int) -> list[Any]:
        """Wait until the outbox is drained and at least ``n`` such events are on the topic."""

        async def check() -> list[Any] | None:
            if await self.pool.fetchval("SELECT count(*) FROM outbox"):
                return None
            found = await self.events(type_, customer)
            return found if len(found) >= n else None

        return await until(check)

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
    await create_topics(module_settings.kafka)
    settings = BillingSettings(**module_settings.model_dump())
    app = create_app(settings)
    pool = await create_pool(settings.db.dsn, "billing", max_size=4)
    service = BillingService(pool, calendar=load_kz_calendar(), clock=SystemClock())
    async with app.lifespan_context():
        await app.start()
        try:
            yield Billing(app, settings, pool, service)
        finally:
            await app.stop()
    await pool.close()
