"""Card payments through Kafka, PostgreSQL and Redis: the card's issuer decides (seed 003).

A restricted payment is declined, an enrolled card is confirmed with the issuer's 3-D Secure code,
an unavailable issuer is declined with nothing debited, and an unknown outcome is resolved by the
janitor with exactly one charge at the issuer.
"""

from __future__ import annotations

import re
from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from services.payments.issuer import IssuerSimulator, MemoryCourier
from shared.contracts.common import Funding, ReasonCode, ServiceCategory
from shared.contracts.payments import (
    ConfirmPayment,
    OtpRequested,
    PaymentCompleted,
    PaymentFailed,
    PaymentPending,
    PaymentRejected,
    PayService,
)
from shared.otp_seal import open_code
from tests.integration.payments.conftest import Payments
from tests.support.harness import until

pytestmark = pytest.mark.integration
T = 100  # tiyn per tenge
# The harness clock is 02.03.2026: the rate in force is 540.00 ₸/USD, so 100 USD = 54 000 ₸.
OVER_100_USD = 60_000 * T
UNDER_100_USD = 1_500 * T


def card_payment(customer: UUID, amount: int, token: str | None, **kw: object) -> PayService:
    fields: dict[str, object] = {
        "request_id": uuid4(),
        "customer_id": customer,
        "category": ServiceCategory.FLIGHT,
        "provider": "air-astana",
        "provider_account": "PNR7Q2X",
        "amount": amount,
        "funding": Funding.EXTERNAL_CARD,
        "card_token": token,
    }
    fields.update(kw)
    return PayService.model_validate(fields)


def issuer(payments: Payments) -> IssuerSimulator:
    sim = payments.runtime.issuer
    assert isinstance(sim, IssuerSimulator)
    return sim


def issuer_code(payments: Payments, payment_id: UUID) -> str:
    """The code the simulated issuer sent to the cardholder (its SMS, kept in memory in tests)."""
    courier = issuer(payments).courier
    assert isinstance(courier, MemoryCourier)
    [text] = courier.texts_for(str(payment_id))
    found = re.search(r"(?<!\d)\d{6}(?!\d)", text)
    assert found is not None
    return found.group(0)


async def ledger(payments: Payments, payment_id: UUID) -> list[tuple[str, str, int]]:
    query = "SELECT posting_kind, account, amount FROM ledger_entries WHERE payment_id = $1 ORDER BY id"
    rows = await payments.pool.fetch(query, payment_id)
    return [(r["posting_kind"], r["account"], r["amount"]) for r in rows]


async def card_row(payments: Payments, payment_id: UUID) -> dict[str, object]:
    row = await payments.pool.fetchrow("SELECT * FROM card_payments WHERE payment_id = $1", payment_id)
    assert row is not None
    return dict(row)


async def test_over_100_usd_without_3ds_is_declined_with_nothing_debited(payments: Payments) -> None:
    c = await payments.customer(gold=1_000 * T)
    cmd = card_payment(c, OVER_100_USD, "tok_qazkom_visa_plain")
    await payments.publish(cmd)
    [failed] = await payments.expect(c, PaymentFailed.TYPE, lambda p: p.request_id == cmd.request_id)
    assert failed.reason_code == ReasonCode.ISSUER_RESTRICTION
    assert "100 USD need 3-D Secure" in failed.message
    assert "111.11 USD" in failed.message
    assert "nothing was charged" in failed.message
    assert await payments.status(failed.payment_id) == "FAILED"
    assert await ledger(payments, failed.payment_id) == []
    assert await payments.balance(c) == 1_000 * T
    assert issuer(payments).charges_for(str(failed.payment_id)) == 0
    assert (await card_row(payments, failed.payment_id))["state"] == "NOT_CHARGED"
    # The same card under the limit goes through (by the janitor, under a committed payment id).
    small = card_payment(c, UNDER_100_USD, "tok_qazkom_visa_plain")
    await payments.publish(small)
    [done] = await payments.expect(c, PaymentCompleted.TYPE, lambda p: p.request_id == small.request_id)
    assert done.funding == Funding.EXTERNAL_CARD
    assert issuer(payments).charges_for(str(done.payment_id)) == 1
    assert await payments.balance(c) == 1_000 * T  # the card paid, not Gold


async def test_an_enrolled_card_is_confirmed_with_the_issuers_code(payments: Payments) -> None:
    c = await payments.customer()
    cmd = card_payment(c, OVER_100_USD, "tok_qazkom_visa_3ds")
    await payments.publish(cmd)
    [pending] = await payments.expect(c, PaymentPending.TYPE, lambda p: p.request_id == cmd.request_id)
    assert pending.status == "PENDING_CONFIRMATION"
    assert pending.confirmation_expires_at is not None
    pid = pending.payment_id
    code = issuer_code(payments, pid)
    # The code is the issuer's: payments sent none of its own and keeps no challenge for it.
    assert not [e for e in payments.events.of(c, OtpRequested.TYPE) if e.payload.payment_id == pid]
    assert await payments.pool.fetchval("SELECT count(*) FROM otp_challenges WHERE payment_id = $1", pid) == 0
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    rid = uuid4()
    await payments.publish(ConfirmPayment(request_id=rid, customer_id=c, payment_id=pid, code=wrong))
    rejected = (await payments.for_request(c, rid)).payload
    assert isinstance(rejected, PaymentRejected)
    assert rejected.reason_code == ReasonCode.WRONG_CODE
    assert "2 attempt(s) left" in rejected.message
    await payments.publish(ConfirmPayment(request_id=uuid4(), customer_id=c, payment_id=pid, code=code))
    [done] = await payments.expect(c, PaymentCompleted.TYPE, lambda p: p.payment_id == pid)
    assert (done.funding, done.total) == (Funding.EXTERNAL_CARD, OVER_100_USD)
    assert issuer(payments).charges_for(str(pid)) == 1
    assert await ledger(payments, pid) == [
        ("HOLD", "EXTERNAL_CARDS", -OVER_100_USD),
        ("HOLD", "HOLDS", OVER_100_USD),
        ("CAPTURE", "HOLDS", -OVER_100_USD),
        ("CAPTURE", "PROVIDER_SETTLEMENT", OVER_100_USD),
    ]
    row = await card_row(payments, pid)
    assert (row["state"], row["attempts"]) == ("CHARGED", 1)


async def test_wrong_issuer_codes_fail_the_payment_like_other_codes(payments: Payments) -> None:
    c = await payments.customer()
    cmd = card_payment(c, OVER_100_USD, "tok_halyk_visa_3ds")
    await payments.publish(cmd)
    [pending] = await payments.expect(c, PaymentPending.TYPE, lambda p: p.request_id == cmd.request_id)
    pid = pending.payment_id
    wrong = f"{(int(issuer_code(payments, pid)) + 1) % 1_000_000:06d}"
    for _ in range(3):
        await payments.publish(ConfirmPayment(request_id=uuid4(), customer_id=c, payment_id=pid, code=wrong))
    [failed] = await payments.expect(c, PaymentFailed.TYPE, lambda p: p.payment_id == pid)
    assert failed.reason_code == ReasonCode.TOO_MANY_ATTEMPTS
    assert issuer(payments).charges_for(str(pid)) == 0
    assert await ledger(payments, pid) == []


async def test_an_unavailable_issuer_is_declined_with_nothing_debited(payments: Payments) -> None:
    c = await payments.customer(gold=500 * T)
    cmd = card_payment(c, UNDER_100_USD, "tok_down_visa")
    await payments.publish(cmd)
    [failed] = await payments.expect(c, PaymentFailed.TYPE, lambda p: p.request_id == cmd.request_id)
    assert failed.reason_code == ReasonCode.ISSUER_UNAVAILABLE
    assert "nothing was charged" in failed.message
    assert await ledger(payments, failed.payment_id) == []
    assert await payments.balance(c) == 500 * T
    assert issuer(payments).charges_for(str(failed.payment_id)) == 0


async def test_an_unknown_outcome_is_resolved_by_the_janitor_with_one_charge(payments: Payments) -> None:
    c = await payments.customer()
    cmd = card_payment(c, UNDER_100_USD, "tok_slow_mc")
    await payments.publish(cmd)
    [pending] = await payments.expect(c, PaymentPending.TYPE, lambda p: p.request_id == cmd.request_id)
    assert pending.status == "PENDING_PROVIDER"
    pid = pending.payment_id
    sim = issuer(payments)

    # The janitor's first charge: the issuer charged the card, but its answer was lost.
    unknown = "SELECT state = 'UNKNOWN' FROM card_payments WHERE payment_id = $1"
    await until(lambda: payments.pool.fetchval(unknown, pid))
    assert sim.charges_for(str(pid)) == 1
    assert await payments.status(pid) == "PENDING_PROVIDER"
    assert await ledger(payments, pid) == []  # nothing held while the outcome is unknown
    payments.clock.advance(timedelta(seconds=payments.settings.issuer_retry_s))
    [done] = await payments.expect(c, PaymentCompleted.TYPE, lambda p: p.payment_id == pid)
    assert done.total == UNDER_100_USD
    assert sim.charges_for(str(pid)) == 1  # asked twice with the same payment id: one charge
    assert sim.charge_calls[str(pid)] == 2
    row = await card_row(payments, pid)
    assert (row["state"], row["attempts"]) == ("CHARGED", 2)
    holds = [e for e in await ledger(payments, pid) if e[0] == "HOLD" and e[1] == "EXTERNAL_CARDS"]
    assert holds == [("HOLD", "EXTERNAL_CARDS", -UNDER_100_USD)]


async def test_a_card_without_3ds_above_5000_uses_payments_own_code(payments: Payments) -> None:
    c = await payments.customer()
    cmd = card_payment(c, 10_000 * T, "tok_halyk_mc_plain")
    await payments.publish(cmd)
    [pending] = await payments.expect(c, PaymentPending.TYPE, lambda p: p.request_id == cmd.request_id)
    assert pending.status == "PENDING_CONFIRMATION"
    pid = pending.payment_id
    [otp] = await payments.expect(c, OtpRequested.TYPE, lambda p: p.payment_id == pid)
    assert issuer(payments).charges_for(str(pid)) == 0  # not before the code
    code = open_code(otp, payments.settings.otp_keys().transport_key)
    await payments.publish(ConfirmPayment(request_id=uuid4(), customer_id=c, payment_id=pid, code=code))
    [done] = await payments.expect(c, PaymentCompleted.TYPE, lambda p: p.payment_id == pid)
    assert done.funding == Funding.EXTERNAL_CARD
    assert issuer(payments).charges_for(str(pid)) == 1


async def test_a_provider_failure_after_the_charge_returns_it_to_the_card(payments: Payments) -> None:
    c = await payments.customer()
    cmd = card_payment(c, UNDER_100_USD, "tok_halyk_mc_plain", provider="fail-airline")
    await payments.publish(cmd)
    [failed] = await payments.expect(c, PaymentFailed.TYPE, lambda p: p.request_id == cmd.request_id)
    assert failed.reason_code == ReasonCode.PROVIDER_FAILED
    pid = str(failed.payment_id)
    assert issuer(payments).charges_for(pid) == 1
    assert issuer(payments).refunds.count(pid) == 1
    kinds = [(k, a) for k, a, _ in await ledger(payments, failed.payment_id)]
    held, voided = (
        [("HOLD", "EXTERNAL_CARDS"), ("HOLD", "HOLDS")],
        [("VOID", "HOLDS"), ("VOID", "EXTERNAL_CARDS")],
    )
    assert kinds == held + voided
    assert (await card_row(payments, failed.payment_id))["state"] == "REFUNDED"


@pytest.mark.parametrize(
    ("token", "funding", "why"),
    [
        (None, Funding.EXTERNAL_CARD, "needs a card_token"),
        ("tok_nobody_issued_this", Funding.EXTERNAL_CARD, "no issuer knows"),
        ("tok_qazkom_visa_plain", Funding.GOLD, "only for EXTERNAL_CARD"),
    ],
)
async def test_a_card_payment_names_a_known_card(
    payments: Payments, token: str | None, funding: Funding, why: str
) -> None:
    c = await payments.customer(gold=1_000 * T)
    cmd = card_payment(c, UNDER_100_USD, token, funding=funding)
    await payments.publish(cmd)
    rejected = (await payments.for_request(c, cmd.request_id)).payload
    assert isinstance(rejected, PaymentRejected)
    assert rejected.reason_code == ReasonCode.FUNDING_NOT_ALLOWED
    assert why in rejected.message
    assert await payments.balance(c) == 1_000 * T


async def test_an_unanswered_3ds_code_expires_and_nothing_is_charged(payments: Payments) -> None:
    c = await payments.customer()
    cmd = card_payment(c, OVER_100_USD, "tok_halyk_visa_3ds")
    await payments.publish(cmd)
    [pending] = await payments.expect(c, PaymentPending.TYPE, lambda p: p.request_id == cmd.request_id)
    assert pending.confirmation_expires_at is not None
    payments.clock.set(pending.confirmation_expires_at)  # the janitor: the issuer's code expired
    [failed] = await payments.expect(c, PaymentFailed.TYPE, lambda p: p.payment_id == pending.payment_id)
    assert failed.reason_code == ReasonCode.CODE_EXPIRED
    assert issuer(payments).charges_for(str(pending.payment_id)) == 0
    assert await ledger(payments, pending.payment_id) == []
    assert (await card_row(payments, pending.payment_id))["state"] == "NOT_CHARGED"
