"""Drive a running bonus app through Kafka and watch what it publishes (group-less, no rebalances)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.contracts.base import Contract
from shared.contracts.common import Funding, Merchant, PaymentKind, PaymentStatus, ServiceCategory
from shared.contracts.envelope import Envelope, decode
from shared.contracts.payments import (
    BonusRedemptionCancelled,
    BonusRedemptionRequested,
    PaymentCompleted,
    PaymentRefunded,
)
from shared.contracts.samples import sample
from shared.kafka import assign_from_beginning
from shared.settings import KafkaSettings
from shared.topics import BONUS_EVENTS, PAYMENTS_EVENTS, resolve
from tests.support import trust


class Harness:
    """Publishes payments' events and collects bonus events by customer key."""

    def __init__(self, kafka: KafkaSettings, pool: asyncpg.Pool, dsn: str) -> None:
        self.kafka = kafka
        self.pool = pool
        self.dsn = dsn
        self.events: dict[str, list[Envelope[Any]]] = defaultdict(list)
        self._producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
        self._consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect the producer and start reading the bonus topic from the beginning."""
        await self._producer.start()
        await self._consumer.start()
        topic = resolve(BONUS_EVENTS.name, self.kafka.topic_suffix)
        await assign_from_beginning(self._consumer, [topic], timeout_s=20)
        self._task = asyncio.create_task(self._collect())

    async def stop(self) -> None:
        """Stop reading and publishing."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()
        await self._producer.stop()

    async def _collect(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=100)
            for records in batch.values():
                for record in records:
                    env = decode(record.value or b"")
                    self.events[env.key].append(env)

    # -- publishing ----------------------------------------------------------------------------
    def envelope(self, payload: Contract) -> Envelope[Any]:
        """A fresh envelope from payments around ``payload``."""
        return trust.envelope(payload, producer="payments", occurred_at=datetime.now(UTC))

    async def publish(self, payload: Contract | Envelope[Any], *, times: int = 1) -> Envelope[Any]:
        """Publish to aqsha.payments.events ``times`` times (the same envelope: redeliveries), signed
        by the envelope's producer (payments)."""
        env = payload if isinstance(payload, Envelope) else self.envelope(payload)
        topic = resolve(PAYMENTS_EVENTS.name, self.kafka.topic_suffix)
        value, key, headers = trust.record(env, topic)
        for _ in range(times):
            await self._producer.send_and_wait(
                topic, value, key=key, headers=[(k, v.encode()) for k, v in headers.items()]
            )
        return env

    # -- waiting ---------------------------------------------------------------------------------
    def of(self, customer: UUID, type_: str | None = None, payment_id: UUID | None = None) -> list[Any]:
        """Payloads published by bonus for a customer, optionally filtered by type and payment."""
        return [
            e.payload
            for e in self.events.get(str(customer), [])
            if (type_ is None or e.type == type_)
            and (payment_id is None or getattr(e.payload, "payment_id", None) == payment_id)
        ]

    async def wait_for(
        self, customer: UUID, type_: str, payment_id: UUID | None = None, *, count: int = 1
    ) -> list[Any]:
        """Poll until at least ``count`` matching bonus events arrived; return them."""
        await until(lambda: _ready(len(self.of(customer, type_, payment_id)) >= count))
        return self.of(customer, type_, payment_id)

    async def one(self, customer: UUID, type_: str, payment_id: UUID) -> Any:
        """The single matching event (waits for it)."""
        found = await self.wait_for(customer, type_, payment_id)
        return found[0]

    async def balance(self, customer: UUID) -> int:
        """The stored balance (0 when bonus never saw the customer)."""
        return int(
            await self.pool.fetchval("SELECT balance FROM balances WHERE customer_id = $1", customer) or 0
        )

    async def decision(self, payment_id: UUID) -> asyncpg.Record:
        """The accrual decision of a payment (waits for it)."""
        row: list[asyncpg.Record] = []

        async def found() -> bool:
            r = await self.pool.fetchrow("SELECT * FROM accrual_decisions WHERE payment_id = $1", payment_id)
            if r is not None:
                row.append(r)
            return r is not None

        await until(found)
        return row[0]


async def _ready(value: bool) -> bool:
    return value


async def until(predicate: Callable[[], Awaitable[bool]], timeout_s: float = 20.0) -> None:
    """Poll ``predicate`` until it holds (no fixed sleeps in tests)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


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
