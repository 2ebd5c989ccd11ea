"""Seed 000 through real Kafka, PostgreSQL and Redis: check the debt before paying ("Checkskuld"), and
the IIN that must match the registered one for taxes and fines."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID, uuid4

import pytest

from shared.contracts.common import Funding, ReasonCode, ServiceCategory, TariffProfile
from shared.contracts.customers import CustomerRegistered
from shared.contracts.payments import (
    DebtLookedUp,
    DebtLookupFailed,
    LookupDebt,
    PaymentCompleted,
    PaymentRejected,
    PayService,
)
from shared.kafka import DLQ_REASON
from tests.integration.ops.conftest import ainvoke
from tests.integration.payments.conftest import Payments
from tests.support.harness import until

pytestmark = pytest.mark.integration
T = 100  # tiyn per tenge
REGISTERED_IIN = "900101300123"  # the IIN the harness registers every customer with
WRONG_IIN = "900101300132"


def ask(customer: UUID, provider: str = "almaty-energo", account: str = "1234567890") -> LookupDebt:
    """A LookupDebt with a fresh request_id."""
    return LookupDebt(request_id=uuid4(), customer_id=customer, provider=provider, provider_account=account)


def pay(customer: UUID, amount: int, **kw: Any) -> PayService:
    """A PayService (a tax to kgd-almaty unless told otherwise)."""
    fields: dict[str, Any] = {
        "request_id": uuid4(),
        "customer_id": customer,
        "category": ServiceCategory.TAX,
        "provider": "kgd-almaty",
        "provider_account": "KBK-104402",
        "amount": amount,
    }
    fields.update(kw)
    return PayService(**fields)


async def reply(payments: Payments, customer: UUID, request_id: UUID, count: int = 1) -> list[Any]:
    """The first ``count`` lookup replies carrying ``request_id``."""

    def found() -> list[Any] | None:
        hits = [
            e
            for e in payments.events.of(customer)
            if e.type in (DebtLookedUp.TYPE, DebtLookupFailed.TYPE) and e.payload.request_id == request_id
        ]
        return hits if len(hits) >= count else None

    return await until(found)


async def payment_rows(payments: Payments, customer: UUID) -> int:
    return int(await payments.pool.fetchval("SELECT count(*) FROM payments WHERE customer_id = $1", customer))


# ---------------------------------------------------------------------------------------- the debt
async def test_the_debt_is_shown_with_the_owner_and_paying_exactly_it_completes(payments: Payments) -> None:
    c = await payments.customer(gold=10_000 * T)
    question = ask(c)
    sent = await payments.publish(question)
    [env] = await reply(payments, c, question.request_id)
    assert env.type == DebtLookedUp.TYPE
    assert (env.causation_id, env.correlation_id) == (sent.event_id, sent.correlation_id)
    shown = env.payload
    assert (shown.provider, shown.provider_account) == ("almaty-energo", "1234567890")
    assert shown.debt == 3_120 * T + 50  # down to the tiyn
    assert shown.category == ServiceCategory.ELECTRICITY
    assert shown.provider_name == "АО «Алматыэнергосбыт»"
    assert shown.owner_name == "Султанова Айгерим"
    assert shown.owner_address is not None
    assert shown.iin_required is False
    # A lookup moves no money and makes no payment.
    assert await payments.balance(c) == 10_000 * T
    assert await payment_rows(payments, c) == 1  # the top-up only

    command = pay(
        c,
        shown.debt,
        category=ServiceCategory.ELECTRICITY,
        provider=shown.provider,
        provider_account=shown.provider_account,
    )
    await payments.publish(command)
    [done] = await payments.expect(c, PaymentCompleted.TYPE, lambda p: p.request_id == command.request_id)
    assert done.amount == shown.debt
    assert await payments.balance(c) == 10_000 * T - shown.debt


async def test_a_provider_without_owner_details_answers_the_debt_only(payments: Payments) -> None:
    c = await payments.customer()
    question = ask(c, "kgd-almaty", "KBK-104402")
    await payments.publish(question)
    [env] = await reply(payments, c, question.request_id)
    assert env.type == DebtLookedUp.TYPE
    assert env.payload.debt == 4_500 * T
    assert (env.payload.owner_name, env.payload.owner_address) == (None, None)
    assert env.payload.iin_required is True  # a tax: the payment must carry the payer's IIN


@pytest.mark.parametrize(
    ("provider", "account", "reason"),
    [
        ("almaty-energo", "4400123465", ReasonCode.UNKNOWN_PROVIDER_ACCOUNT),
        ("unknown-energo", "4400123456", ReasonCode.UNKNOWN_PROVIDER),
        ("fail-energo", "4400123456", ReasonCode.PROVIDER_FAILED),
    ],
)
async def test_no_debt_is_a_failed_lookup_with_its_reason(
    payments: Payments, provider: str, account: str, reason: ReasonCode
) -> None:
    c = await payments.customer()
    question = ask(c, provider, account)
    await payments.publish(question)
    [env] = await reply(payments, c, question.request_id)
    assert env.type == DebtLookupFailed.TYPE
    assert env.payload.reason_code == reason
    assert (env.payload.provider, env.payload.provider_account) == (provider, account)


async def test_an_unknown_customer_gets_no_debt(payments: Payments) -> None:
    stranger = uuid4()
    question = ask(stranger)
    await payments.publish(question)
    [env] = await reply(payments, stranger, question.request_id)
    assert env.type == DebtLookupFailed.TYPE
    assert env.payload.reason_code == ReasonCode.UNKNOWN_CUSTOMER


async def test_a_lookup_is_answered_once_per_request_id(payments: Payments) -> None:
    c = await payments.customer()
    question = ask(c)
    await payments.publish(question)
    await payments.publish(question)  # resent: a new envelope, the same request
    first, again = await reply(payments, c, question.request_id, count=2)
    assert first.type == again.type == DebtLookedUp.TYPE
    assert first.event_id == again.event_id  # the stored reply, replayed byte for byte
    other = ask(c, account="4400123456").model_copy(update={"request_id": question.request_id})
    await payments.publish(other)
    replies = await reply(payments, c, question.request_id, count=3)
    assert replies[-1].type == DebtLookupFailed.TYPE
    assert replies[-1].payload.reason_code == ReasonCode.IDEMPOTENCY_CONFLICT


async def test_support_may_look_up_but_not_pay(payments: Payments) -> None:
    c = await payments.customer(gold=1_000 * T)
    question = ask(c)
    await payments.publish(question, producer="ops")
    [env] = await reply(payments, c, question.request_id)
    assert env.type == DebtLookedUp.TYPE
    # ops is a producer of the commands topic for LookupDebt only: a payment it signs is refused.
    command = pay(c, 100 * T, category=ServiceCategory.ELECTRICITY, provider="almaty-energo")
    forged = payments.envelope(command, producer="ops")
    await payments.publish(forged)

    def refused() -> dict[str, str] | None:
        for letter in payments.events.dead(c):
            if str(forged.event_id).encode() in letter.value:
                return letter.headers
        return None

    headers = await until(refused)
    assert headers[DLQ_REASON] == "not_permitted"
    assert await payments.balance(c) == 1_000 * T


async def test_aqsha_payments_lookup_prints_the_reply_masked(payments: Payments) -> None:
    c = await payments.customer()
    found = await ainvoke(
        payments.settings, "payments", "lookup", "almaty-energo", "4400123456", "--customer", str(c), "--json"
    )
    assert found.exit_code == 0, found.output
    doc = json.loads(found.stdout)
    assert doc["found"] is True
    assert doc["sent"]["type"] == "LookupDebt"
    answer = doc["reply"]
    assert answer["type"] == "DebtLookedUp"
    assert answer["producer"] == "payments"
    assert answer["payload"]["debt"] == 8_450 * T
    assert answer["payload"]["owner_name"] == answer["payload"]["owner_address"] == "***"
    assert "Ли Дмитрий" not in found.stdout
    human = await ainvoke(payments.settings, "payments", "lookup", "almaty-energo", "1", "--customer", str(c))
    assert human.exit_code == 1, human.output
    assert "not found: almaty-energo account 1: UNKNOWN_PROVIDER_ACCOUNT" in human.stdout

    # The CLI's lookups were signed by ops and answered like the app's.
    def asked() -> list[Any]:
        return [e for e in payments.events.of(c) if e.type in (DebtLookedUp.TYPE, DebtLookupFailed.TYPE)]

    # The CLI read its replies itself; the test's collector may still be a poll behind.
    await until(lambda: len(asked()) >= 2, what="both replies on the collector")
    assert len(asked()) == 2


# ----------------------------------------------------------------------------------------- the IIN
async def test_a_tax_with_the_registered_iin_is_paid(payments: Payments) -> None:
    c = await payments.customer(profile=TariffProfile.HOMEBANK, gold=10_000 * T)
    command = pay(c, 4_500 * T, iin=REGISTERED_IIN)
    await payments.publish(command)
    [done] = await payments.expect(c, PaymentCompleted.TYPE, lambda p: p.request_id == command.request_id)
    assert (done.amount, done.fee) == (4_500 * T, 25 * T)
    assert await payments.balance(c) == 10_000 * T - 4_525 * T


@pytest.mark.parametrize(
    ("what", "fields"),
    [
        ("a wrong IIN for a tax", {"iin": WRONG_IIN}),
        ("no IIN for a tax", {}),
        ("no IIN for a fine", {"category": ServiceCategory.FINE, "provider": "police-almaty"}),
        ("no IIN for a tax office named under another category", {"category": ServiceCategory.OTHER}),
        (
            "a wrong IIN for electricity (an IIN given is always checked)",
            {"category": ServiceCategory.ELECTRICITY, "provider": "almaty-energo", "iin": WRONG_IIN},
        ),
        ("a wrong IIN paid with another bank's card", {"iin": WRONG_IIN, "funding": Funding.EXTERNAL_CARD}),
    ],
)
async def test_an_iin_that_does_not_match_declines_and_debits_nothing(
    payments: Payments, what: str, fields: dict[str, Any]
) -> None:
    c = await payments.customer(gold=10_000 * T)
    command = pay(c, 4_500 * T, **fields)
    await payments.publish(command)
    [rejected] = await payments.expect(c, PaymentRejected.TYPE, lambda p: p.request_id == command.request_id)
    assert rejected.reason_code == ReasonCode.IDENTITY_MISMATCH, what
    assert rejected.command_type == "PayService"
    assert REGISTERED_IIN not in rejected.message
    assert WRONG_IIN not in rejected.message
    assert await payments.balance(c) == 10_000 * T
    assert await payment_rows(payments, c) == 1  # the top-up only: no payment, no hold
    # The decline stays a decline: the same request again replays it.
    await payments.publish(command)
    first, again = await payments.expect(
        c, PaymentRejected.TYPE, lambda p: p.request_id == command.request_id, count=2
    )
    assert first == again


async def test_the_iin_given_is_compared_never_kept(payments: Payments) -> None:
    c = await payments.customer(gold=10_000 * T)
    command = pay(c, 100 * T, iin=WRONG_IIN)
    await payments.publish(command)
    await payments.expect(c, PaymentRejected.TYPE, lambda p: p.request_id == command.request_id)
    stored = await payments.pool.fetchval(
        "SELECT count(*) FROM idempotency_keys WHERE key = $1 AND outcome::text LIKE '%' || $2 || '%'",
        str(command.request_id),
        WRONG_IIN,
    )
    assert stored == 0
    assert (
        await payments.pool.fetchval("SELECT iin FROM customers WHERE customer_id = $1", c) == REGISTERED_IIN
    )


async def test_a_customer_stored_before_the_iin_was_kept_learns_it_from_the_same_registration(
    payments: Payments,
) -> None:
    c = await payments.customer(gold=10_000 * T)
    # As if registered before migration 004: the IIN is unknown, so no IIN can be matched.
    await payments.pool.execute("UPDATE customers SET iin = NULL WHERE customer_id = $1", c)
    blocked = pay(c, 100 * T, iin=REGISTERED_IIN)
    await payments.publish(blocked)
    [rejected] = await payments.expect(c, PaymentRejected.TYPE, lambda p: p.request_id == blocked.request_id)
    assert rejected.reason_code == ReasonCode.IDENTITY_MISMATCH
    assert "not known" in rejected.message
    # Onboarding sends the same registration again (a new envelope): its digest proves the IIN.
    await payments.publish(
        CustomerRegistered(
            customer_id=c, phone="+77011234567", iin=REGISTERED_IIN, full_name="Aigerim Sultanova"
        )
    )
    await until(
        lambda: payments.pool.fetchval("SELECT iin IS NOT NULL FROM customers WHERE customer_id = $1", c)
    )
    assert (
        await payments.pool.fetchval("SELECT iin FROM customers WHERE customer_id = $1", c) == REGISTERED_IIN
    )
    command = pay(c, 100 * T, iin=REGISTERED_IIN)
    await payments.publish(command)
    await payments.expect(c, PaymentCompleted.TYPE, lambda p: p.request_id == command.request_id)
    assert await payments.balance(c) == 9_900 * T
