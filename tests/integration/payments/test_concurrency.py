"""Exactly-once debits and never-negative balances, through Kafka and under real concurrency."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any
from uuid import UUID, uuid4

import pytest

from shared.contracts.common import ReasonCode, ServiceCategory
from shared.contracts.envelope import Envelope
from shared.contracts.payments import PaymentCompleted, PaymentRejected, PayService
from tests.integration.payments.conftest import Payments
from tests.support.harness import until

pytestmark = pytest.mark.integration
T = 100


def _pay(customer: UUID, amount: int) -> PayService:
    return PayService(
        request_id=uuid4(),
        customer_id=customer,
        category=ServiceCategory.WATER,
        provider="almaty-su",
        provider_account="77",
        amount=amount,
    )


def _env(payments: Payments, cmd: PayService) -> Envelope[PayService]:
    return payments.envelope(cmd)


async def _holds(payments: Payments, customers: list[UUID]) -> int:
    """Debits taken from these customers (one HOLD posting debit per payment)."""
    return int(
        await payments.pool.fetchval(
            "SELECT count(*) FROM ledger_entries "
            "WHERE posting_kind = 'HOLD' AND customer_id = ANY($1::uuid[])",
            customers,
        )
    )


async def test_100_payments_submitted_10_times_each_debit_exactly_once(payments: Payments) -> None:
    customers = [await payments.customer(gold=1_000 * T) for _ in range(10)]
    commands = [_pay(customers[i % 10], 10 * T) for i in range(100)]
    envelopes = [_env(payments, cmd) for cmd in commands for _ in range(10)]  # 1,000 messages
    await asyncio.gather(*(payments.publish(e) for e in envelopes))
    wanted = {cmd.request_id for cmd in commands}

    def answers() -> list[Envelope[Any]] | None:
        hits = [
            e
            for c in customers
            for e in payments.events.of(c, PaymentCompleted.TYPE)
            if e.payload.request_id in wanted
        ]
        return hits if len(hits) >= 1_000 else None

    hits = await until(answers, timeout_s=60)
    assert len(hits) == 1_000
    by_request: dict[UUID, set[UUID]] = {}
    for e in hits:
        by_request.setdefault(e.payload.request_id, set()).add(e.event_id)
    # Every duplicate was answered by the ORIGINAL outcome (same event id).
    assert len(by_request) == 100
    assert all(len(ids) == 1 for ids in by_request.values())
    assert await _holds(payments, customers) == 100
    for c in customers:
        assert await payments.balance(c) == 1_000 * T - 10 * 10 * T


async def test_concurrent_duplicates_inside_the_service_run_once(payments: Payments) -> None:
    """Ten copies of each request run truly concurrently (not serialised by a partition)."""
    c = await payments.customer(gold=1_000 * T)
    commands = [_pay(c, 10 * T) for _ in range(20)]
    service = payments.runtime.service
    await asyncio.gather(
        *(service.handle_command(_env(payments, cmd)) for cmd in commands for _ in range(10))
    )
    assert await _holds(payments, [c]) == 20
    assert await payments.balance(c) == 1_000 * T - 20 * 10 * T
    await payments.expect(c, PaymentCompleted.TYPE, count=200)
    envs = payments.events.of(c, PaymentCompleted.TYPE)
    per_request = Counter(e.payload.request_id for e in envs)
    assert set(per_request.values()) == {10}  # every copy was answered ...
    assert len({e.event_id for e in envs}) == 20  # ... by the original outcome


async def test_50_concurrent_payments_against_a_balance_for_10(payments: Payments) -> None:
    c = await payments.customer(gold=100 * T)
    commands = [_pay(c, 10 * T) for _ in range(50)]
    service = payments.runtime.service
    await asyncio.gather(*(service.handle_command(_env(payments, cmd)) for cmd in commands))
    done = await payments.expect(c, PaymentCompleted.TYPE, count=10)
    rejected = await payments.expect(c, PaymentRejected.TYPE, count=40)
    assert len(done) == 10
    assert len(rejected) == 40
    assert {r.reason_code for r in rejected} == {ReasonCode.INSUFFICIENT_FUNDS}
    assert await payments.balance(c) == 0


async def test_50_payments_through_kafka_against_a_balance_for_10(payments: Payments) -> None:
    c = await payments.customer(gold=100 * T)
    envs = [_env(payments, _pay(c, 10 * T)) for _ in range(50)]
    await asyncio.gather(*(payments.publish(e) for e in envs))
    rejected = await payments.expect(c, PaymentRejected.TYPE, count=40)
    assert {r.reason_code for r in rejected} == {ReasonCode.INSUFFICIENT_FUNDS}
    assert len(await payments.expect(c, PaymentCompleted.TYPE, count=10)) == 10
    assert await payments.balance(c) == 0
