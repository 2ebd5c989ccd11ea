"""payments through Kafka, signed as production would: the recorded origin of a payment, and a
registration replay dead-lettered as ``customer_conflict`` while ``CustomerPhoneChanged`` applies."""

from __future__ import annotations

from uuid import uuid4

import pytest

from shared.contracts.common import AccountKind, Channel
from shared.contracts.customers import CustomerPhoneChanged, CustomerRegistered
from shared.contracts.payments import TopUp, TopUpCompleted
from shared.kafka import DLQ_REASON
from shared.topics import dlq_name
from tests.integration.payments.conftest import START, Payments
from tests.support.harness import until

pytestmark = pytest.mark.integration


async def test_a_top_up_records_the_verified_principal_and_key_that_commanded_it(payments: Payments) -> None:
    customer = await payments.customer()
    rid = uuid4()
    await payments.publish(
        TopUp(
            request_id=rid,
            customer_id=customer,
            channel=Channel.ATM,
            account=AccountKind.GOLD,
            amount=5_000_00,
        )
    )
    (done,) = await payments.expect(customer, TopUpCompleted.TYPE, lambda p: p.request_id == rid)
    row = await payments.pool.fetchrow(
        "SELECT commanded_by, key_id FROM payments WHERE payment_id = $1", done.payment_id
    )
    assert row is not None
    assert row["commanded_by"] == "cash-network"
    assert row["key_id"].startswith("cash-network:")


async def test_a_registration_replay_is_dead_lettered_and_a_phone_change_applies(payments: Payments) -> None:
    cid = await payments.customer()
    original = await payments.pool.fetchrow("SELECT * FROM customers WHERE customer_id = $1", cid)
    assert original is not None
    hijack = CustomerRegistered(
        customer_id=cid, phone="+77479990000", iin="900101300123", full_name="Aigerim Sultanova"
    )
    env = await payments.publish(hijack)
    dlq = payments.topic(dlq_name("aqsha.customers.events"))

    def dead_lettered() -> dict[str, str] | None:
        for letter in payments.events.dead(cid):
            if letter.topic == dlq and str(env.event_id) in letter.value.decode():
                return letter.headers
        return None

    headers: dict[str, str] = await until(dead_lettered)
    assert headers[DLQ_REASON] == "customer_conflict"
    assert "9990000" not in headers.get("aqsha-dlq-error", "")
    assert (
        await payments.pool.fetchval("SELECT phone FROM customers WHERE customer_id = $1", cid)
        == original["phone"]
    )

    await payments.publish(
        CustomerPhoneChanged(
            customer_id=cid, phone="+77479990000", changed_at=START, verification_ref="branch-1:7"
        )
    )
    await until(
        lambda: payments.pool.fetchval(
            "SELECT phone = '+77479990000' FROM customers WHERE customer_id = $1", cid
        )
    )
