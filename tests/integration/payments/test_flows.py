"""Each request type end to end through Kafka, OTP, sagas, provider outcomes, refunds and bad input."""

from __future__ import annotations

import json
from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from services.payments import store
from services.payments.domain import IllegalStart, IllegalTransition, hash_code
from services.payments.queries import payment_history
from shared.contracts.billing import (
    OverpaymentReason,
    OverpaymentRefunded,
    RedPurchaseApproved,
    RedPurchaseDeclined,
)
from shared.contracts.bonus import BonusRedeemed, BonusRedemptionDeclined
from shared.contracts.common import (
    AccountKind,
    Channel,
    Funding,
    Merchant,
    PaymentKind,
    ReasonCode,
    ServiceCategory,
    TariffProfile,
)
from shared.contracts.envelope import encode
from shared.contracts.payments import (
    BonusRedemptionCancelled,
    BonusRedemptionRequested,
    CancelPayment,
    ConfirmPayment,
    OtpRequested,
    PaymentCancelled,
    PaymentCompleted,
    PaymentFailed,
    PaymentPending,
    PaymentRefunded,
    PaymentRejected,
    PayRedBill,
    PayService,
    Purchase,
    RedPurchaseCancelled,
    RedPurchaseRequested,
    Refund,
    TopUp,
    TopUpCompleted,
    Transfer,
    TransferCompleted,
)
from shared.money import MAX_TIYN
from shared.otp_seal import open_code
from tests.integration.payments.conftest import Payments
from tests.support.harness import until

pytestmark = pytest.mark.integration
T = 100  # tiyn per tenge


def pay_service(customer: UUID, amount: int, **kw: object) -> PayService:
    """A PayService command with sensible defaults."""
    fields: dict[str, object] = {
        "request_id": uuid4(),
        "customer_id": customer,
        "category": ServiceCategory.ELECTRICITY,
        "provider": "almaty-energo",
        "provider_account": "1234567890",
        "amount": amount,
    }
    fields.update(kw)
    return PayService.model_validate(fields)


async def test_top_up_credits_wallet_and_gold(payments: Payments) -> None:
    c = await payments.customer()
    rid = uuid4()
    await payments.publish(
        TopUp(request_id=rid, customer_id=c, channel=Channel.ATM, account=AccountKind.WALLET, amount=12_345)
    )
    [done] = await payments.expect(c, TopUpCompleted.TYPE, lambda p: p.request_id == rid)
    assert done.balance_after == 12_345
    assert await payments.balance(c, "WALLET") == 12_345


async def test_a_top_up_past_the_largest_balance_is_declined_not_crashed(payments: Payments) -> None:
    # Found by the fuzz suite: an authentic cash top-up that would overflow the balance failed in the
    # handler until it was dead-lettered; it is now a decline with a reason, and nothing is credited.
    c = await payments.customer()
    first, second = uuid4(), uuid4()
    await payments.publish(
        TopUp(request_id=first, customer_id=c, channel=Channel.ATM, account=AccountKind.GOLD, amount=MAX_TIYN)
    )
    await payments.expect(c, TopUpCompleted.TYPE, lambda p: p.request_id == first)
    await payments.publish(
        TopUp(request_id=second, customer_id=c, channel=Channel.ATM, account=AccountKind.GOLD, amount=1)
    )
    [rejected] = await payments.expect(c, PaymentRejected.TYPE, lambda p: p.request_id == second)
    assert rejected.reason_code == ReasonCode.INVALID_AMOUNT
    assert await payments.balance(c, "GOLD") == MAX_TIYN


async def test_service_payment_completes_with_receipt_and_homebank_fee(payments: Payments) -> None:
    c = await payments.customer(profile=TariffProfile.HOMEBANK, gold=2_000 * T)
    cmd = pay_service(c, 1_000 * T, category=ServiceCategory.MOBILE, provider="beeline")
    await payments.publish(cmd)
    [done] = await payments.expect(c, PaymentCompleted.TYPE, lambda p: p.request_id == cmd.request_id)
    assert (done.amount, done.fee, done.total) == (1_000 * T, 35 * T, 1_035 * T)
    assert done.receipt.fee == 35 * T
    assert done.receipt.receipt_number.startswith("AQ-")
    assert done.receipt.payer_masked == "Aigerim S."
    assert done.receipt.provider_account == "1234567890"
    assert await payments.balance(c) == 2_000 * T - 1_035 * T
    history = await payment_history(payments.pool, c)
    service = [h for h in history if h["kind"] == "SERVICE"]
    assert service[0]["status"] == "COMPLETED"
    assert [h["status"] for h in service[0]["history"]] == ["PENDING_PROVIDER", "COMPLETED"]


async def test_every_status_written_goes_through_the_status_machine(payments: Payments) -> None:
    """The store refuses what the status machine forbids, and writes nothing: a completed payment is
    not cancelled, a payment does not start FAILED; a delayed payment waits once, then completes."""
    c = await payments.customer(gold=1_000 * T)
    cmd = pay_service(c, 300 * T, provider="delay-energo")
    await payments.publish(cmd)
    [pending] = await payments.expect(c, PaymentPending.TYPE, lambda p: p.request_id == cmd.request_id)
    payments.clock.advance(timedelta(seconds=31))
    await payments.expect(c, PaymentCompleted.TYPE, lambda p: p.request_id == cmd.request_id)
    [row] = [h for h in await payment_history(payments.pool, c) if h["payment_id"] == pending.payment_id]
    assert [h["status"] for h in row["history"]] == ["PENDING_PROVIDER", "COMPLETED"]
    now = payments.clock.now()
    async with payments.pool.acquire() as conn:
        with pytest.raises(IllegalTransition, match="COMPLETED → CANCELLED"):
            async with conn.transaction():
                await store.update_payment(
                    conn, pending.payment_id, {"status": "CANCELLED", "updated_at": now}
                )
        with pytest.raises(IllegalStart, match="cannot start FAILED"):
            async with conn.transaction():
                await store.insert_payment(conn, {"payment_id": uuid4(), "status": "FAILED"})
    assert await payments.status(pending.payment_id) == "COMPLETED"
    [again] = [h for h in await payment_history(payments.pool, c) if h["payment_id"] == pending.payment_id]
    assert again["history"] == row["history"]


async def test_external_card_payment_needs_no_balance(payments: Payments) -> None:
    c = await payments.customer()
    # The card is named by its token; its issuer decides (seed 003: tests/integration/payments/test_cards.py).
    cmd = pay_service(c, 700 * T, funding=Funding.EXTERNAL_CARD, card_token="tok_halyk_mc_plain")
    await payments.publish(cmd)
    [done] = await payments.expect(c, PaymentCompleted.TYPE)
    assert done.funding == Funding.EXTERNAL_CARD
    assert await payments.balance(c) == 0


async def test_purchase_with_gold(payments: Payments) -> None:
    c = await payments.customer(gold=3_000 * T)
    rid = uuid4()
    await payments.publish(
        Purchase(
            request_id=rid,
            customer_id=c,
            merchant=Merchant.KASPI_QR,
            partner_id="p1",
            order_id="o1",
            amount=2_500 * T,
        )
    )
    [done] = await payments.expect(c, PaymentCompleted.TYPE, lambda p: p.request_id == rid)
    assert done.kind == PaymentKind.PURCHASE
    assert done.merchant == Merchant.KASPI_QR
    assert await payments.balance(c) == 500 * T


async def test_transfers_to_another_customer_and_between_own_accounts(payments: Payments) -> None:
    sender = await payments.customer(profile=TariffProfile.HOMEBANK, gold=1_000 * T)
    recipient = await payments.customer()
    rid = uuid4()
    await payments.publish(
        Transfer(request_id=rid, customer_id=sender, to_customer_id=recipient, amount=400 * T)
    )
    [done] = await payments.expect(sender, TransferCompleted.TYPE)
    assert (done.fee, done.total) == (95 * T, 495 * T)  # homebank card-to-card inside the bank
    assert await payments.balance(recipient) == 400 * T
    own = uuid4()
    await payments.publish(
        Transfer(
            request_id=own,
            customer_id=sender,
            from_account=AccountKind.GOLD,
            to_account=AccountKind.WALLET,
            amount=100 * T,
        )
    )
    [moved] = await payments.expect(sender, TransferCompleted.TYPE, lambda p: p.request_id == own)
    assert moved.fee == 0
    assert await payments.balance(sender, "WALLET") == 100 * T
    assert await payments.balance(sender) == 1_000 * T - 495 * T - 100 * T


async def test_red_bill_from_gold_and_cash_carry_paid_at(payments: Payments) -> None:
    c = await payments.customer(gold=1_000 * T)
    app, cash = uuid4(), uuid4()
    await payments.publish(PayRedBill(request_id=app, customer_id=c, amount=600 * T))
    await payments.publish(
        PayRedBill(
            request_id=cash, customer_id=c, channel=Channel.TERMINAL, funding=Funding.CASH, amount=800 * T
        )
    )
    done = await payments.expect(c, PaymentCompleted.TYPE, count=2)
    assert {d.funding for d in done} == {Funding.GOLD, Funding.CASH}
    assert all(d.kind == PaymentKind.RED_BILL and d.paid_at == payments.clock.now() for d in done)
    assert await payments.balance(c) == 400 * T


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("cashier_red", ReasonCode.CASHIER_NOT_ALLOWED_FOR_RED),
        ("bonus_red", ReasonCode.BONUS_NOT_ALLOWED_FOR_RED),
        ("unknown_customer", ReasonCode.UNKNOWN_CUSTOMER),
        ("unknown_provider", ReasonCode.UNKNOWN_PROVIDER),
        ("service_at_terminal", ReasonCode.CHANNEL_NOT_ALLOWED),
        ("red_funding_service", ReasonCode.FUNDING_NOT_ALLOWED),
        ("unknown_recipient", ReasonCode.UNKNOWN_CUSTOMER),
        ("same_account", ReasonCode.SAME_ACCOUNT_TRANSFER),
        ("no_funds", ReasonCode.INSUFFICIENT_FUNDS),
        ("unknown_payment", ReasonCode.UNKNOWN_PAYMENT),
    ],
)
async def test_business_invalid_requests_are_rejected_with_a_reason(
    payments: Payments, command: str, reason: ReasonCode
) -> None:
    c = await payments.customer(gold=100 * T)
    rid = uuid4()
    cmd = {
        "cashier_red": PayRedBill(request_id=rid, customer_id=c, channel=Channel.CASHIER, amount=10 * T),
        "bonus_red": PayRedBill(request_id=rid, customer_id=c, use_bonus=True, amount=10 * T),
        "unknown_customer": pay_service(c, 10 * T, request_id=rid),
        "unknown_provider": pay_service(c, 10 * T, request_id=rid, provider="unknown-x"),
        # Signed by cash-network (its channel): authentic, but service payments are made in the app.
        "service_at_terminal": pay_service(c, 10 * T, request_id=rid, channel=Channel.TERMINAL),
        "red_funding_service": pay_service(c, 10 * T, request_id=rid, funding=Funding.RED),
        "unknown_recipient": Transfer(request_id=rid, customer_id=c, to_customer_id=uuid4(), amount=10 * T),
        "same_account": Transfer(request_id=rid, customer_id=c, amount=10 * T),
        "no_funds": pay_service(c, 500 * T, request_id=rid),
        "unknown_payment": ConfirmPayment(request_id=rid, customer_id=c, payment_id=uuid4(), code="123456"),
    }[command]
    if command == "unknown_customer":
        cmd = cmd.model_copy(update={"customer_id": uuid4()})
        c = cmd.customer_id
    await payments.publish(cmd)
    [rejected] = await payments.expect(c, PaymentRejected.TYPE, lambda p: p.request_id == rid)
    assert rejected.reason_code == reason
    assert rejected.command_type == cmd.TYPE


async def test_a_top_up_in_the_app_is_refused_before_it_reaches_payments(payments: Payments) -> None:
    """Only the cash network may command a top-up: an APP top-up, signed by the app gateway, never
    reaches the service (dead letter ``not_permitted``); nothing is credited and nothing answered."""
    c = await payments.customer()
    rid = uuid4()
    cmd = TopUp(request_id=rid, customer_id=c, account=AccountKind.GOLD, amount=10 * T)
    assert cmd.channel == Channel.APP
    await payments.publish(cmd, producer="app-gateway")

    def mine() -> list[dict[str, str]] | None:
        hits = [d.headers for d in payments.events.dead(c)]
        return hits or None

    [refused] = await until(mine)
    assert refused["aqsha-dlq-reason"] == "not_permitted"
    assert await payments.balance(c) == 0
    assert [e for e in payments.events.of(c) if getattr(e.payload, "request_id", None) == rid] == []


async def test_schema_invalid_and_non_json_commands_are_dead_lettered(payments: Payments) -> None:
    c = uuid4()
    # Signed by a principal that may write commands: what is refused is the content.
    await payments.publish_raw(
        "aqsha.payments.commands", b"not json", str(c).encode(), signed_by="app-gateway"
    )
    bad = payments.envelope(pay_service(c, 10 * T))
    raw = json.loads(encode(bad))
    raw["payload"]["amount"] = -5  # a negative amount fails the contract
    await payments.publish_raw(
        "aqsha.payments.commands", json.dumps(raw).encode(), str(c).encode(), signed_by=bad.producer
    )
    raw["payload"]["amount"] = 10.5  # floats are never money
    await payments.publish_raw(
        "aqsha.payments.commands", json.dumps(raw).encode(), str(c).encode(), signed_by=bad.producer
    )

    def mine() -> list[dict[str, str]] | None:
        hits = [d.headers for d in payments.events.dead(c)]
        return hits if len(hits) >= 3 else None

    hits = await until(mine)
    assert {h["aqsha-dlq-reason"] for h in hits} == {"invalid_json", "invalid_payload"}


# ------------------------------------------------------------------------------------------- OTP


async def _otp_payment(payments: Payments, c: UUID, amount: int = 6_000 * T) -> tuple[UUID, str]:
    cmd = pay_service(c, amount)
    await payments.publish(cmd)
    [pending] = await payments.expect(c, PaymentPending.TYPE, lambda p: p.request_id == cmd.request_id)
    assert pending.status == "PENDING_CONFIRMATION"
    [otp] = await payments.expect(c, OtpRequested.TYPE, lambda p: p.payment_id == pending.payment_id)
    assert otp.phone == "+77011234567"
    assert otp.amount == amount
    # OtpRequested v2 carries the code sealed for notify: open it as notify does.
    code = open_code(otp, payments.settings.otp_keys().transport_key)
    assert code not in otp.model_dump_json()  # never on Kafka in clear
    return pending.payment_id, code


async def test_otp_correct_code_completes_and_only_a_hash_is_stored(payments: Payments) -> None:
    c = await payments.customer(gold=10_000 * T)
    pid, code = await _otp_payment(payments, c)
    assert await payments.balance(c) == 4_000 * T  # on hold
    stored = await payments.pool.fetchval("SELECT code_hash FROM otp_challenges WHERE payment_id = $1", pid)
    assert code not in stored
    key = payments.settings.otp_hash_key.get_secret_value().encode()
    assert stored == hash_code(code, key, str(pid))
    await payments.publish(ConfirmPayment(request_id=uuid4(), customer_id=c, payment_id=pid, code=code))
    [done] = await payments.expect(c, PaymentCompleted.TYPE, lambda p: p.payment_id == pid)
    assert done.total == 6_000 * T
    assert await payments.balance(c) == 4_000 * T
    held = "SELECT sum(amount) FROM ledger_entries WHERE account = 'HOLDS' AND payment_id = $1"
    assert await payments.pool.fetchval(held, pid) == 0  # the hold was captured


async def test_otp_three_wrong_codes_fail_and_release_the_hold(payments: Payments) -> None:
    c = await payments.customer(gold=10_000 * T)
    pid, code = await _otp_payment(payments, c)
    wrong = "000000" if code != "000000" else "111111"
    for attempt in range(3):
        rid = uuid4()
        await payments.publish(ConfirmPayment(request_id=rid, customer_id=c, payment_id=pid, code=wrong))
        out = await payments.for_request(c, rid) if attempt < 2 else None
        if out is not None:
            assert out.payload.reason_code == ReasonCode.WRONG_CODE
    [failed] = await payments.expect(c, PaymentFailed.TYPE, lambda p: p.payment_id == pid)
    assert failed.reason_code == ReasonCode.TOO_MANY_ATTEMPTS
    assert await payments.balance(c) == 10_000 * T
    # The right code after that is too late.
    rid = uuid4()
    await payments.publish(ConfirmPayment(request_id=rid, customer_id=c, payment_id=pid, code=code))
    late = await payments.for_request(c, rid)
    assert late.payload.reason_code == ReasonCode.INVALID_PAYMENT_STATE


async def test_otp_expiry_by_the_janitor_with_an_injected_clock(payments: Payments) -> None:
    c = await payments.customer(gold=10_000 * T)
    pid, _ = await _otp_payment(payments, c)
    payments.clock.advance(timedelta(minutes=5, seconds=1))
    [failed] = await payments.expect(c, PaymentFailed.TYPE, lambda p: p.payment_id == pid)
    assert failed.reason_code == ReasonCode.CODE_EXPIRED
    assert await payments.balance(c) == 10_000 * T


async def test_cancel_before_confirmation(payments: Payments) -> None:
    c = await payments.customer(gold=10_000 * T)
    pid, code = await _otp_payment(payments, c)
    await payments.publish(CancelPayment(request_id=uuid4(), customer_id=c, payment_id=pid))
    await payments.expect(c, PaymentCancelled.TYPE, lambda p: p.payment_id == pid)
    assert await payments.balance(c) == 10_000 * T
    assert await payments.status(pid) == "CANCELLED"
    rid = uuid4()
    await payments.publish(ConfirmPayment(request_id=rid, customer_id=c, payment_id=pid, code=code))
    assert (await payments.for_request(c, rid)).payload.reason_code == ReasonCode.INVALID_PAYMENT_STATE


# ------------------------------------------------------------------------------------------ sagas


def _red_purchase(c: UUID, amount: int, bonus: int = 0, funding: Funding = Funding.RED) -> Purchase:
    return Purchase(
        request_id=uuid4(),
        customer_id=c,
        merchant=Merchant.KASPI_MAGAZIN,
        order_id="o-1",
        amount=amount,
        funding=funding,
        bonus_amount=bonus,
    )


async def test_red_purchase_approved(payments: Payments) -> None:
    c = await payments.customer()
    cmd = _red_purchase(c, 4_000 * T)
    await payments.publish(cmd)
    [asked] = await payments.expect(c, RedPurchaseRequested.TYPE)
    plan = uuid4()
    await payments.publish(
        RedPurchaseApproved(
            payment_id=asked.payment_id,
            customer_id=c,
            plan_id=plan,
            amount=asked.amount,
            parts=[100_000] * 4,
            available_after=0,
        )
    )
    [done] = await payments.expect(c, PaymentCompleted.TYPE)
    assert done.red_plan_id == plan
    assert done.funding == Funding.RED


async def test_red_purchase_declined(payments: Payments) -> None:
    c = await payments.customer()
    await payments.publish(_red_purchase(c, 4_000 * T))
    [asked] = await payments.expect(c, RedPurchaseRequested.TYPE)
    await payments.publish(
        RedPurchaseDeclined(
            payment_id=asked.payment_id,
            customer_id=c,
            reason_code=ReasonCode.INSUFFICIENT_LIMIT,
            message="limit",
            available=0,
        )
    )
    [failed] = await payments.expect(c, PaymentFailed.TYPE)
    assert failed.reason_code == ReasonCode.RED_DECLINED


async def test_bonus_and_red_purchase_red_declined_compensates_the_bonus(payments: Payments) -> None:
    c = await payments.customer()
    await payments.publish(_red_purchase(c, 4_000 * T, bonus=1_000 * T))
    [bonus] = await payments.expect(c, BonusRedemptionRequested.TYPE)
    [red] = await payments.expect(c, RedPurchaseRequested.TYPE)
    assert red.amount == 3_000 * T
    assert bonus.purchase_amount == 4_000 * T
    await payments.publish(
        BonusRedeemed(payment_id=bonus.payment_id, customer_id=c, amount=1_000 * T, balance_after=0)
    )
    await until(
        lambda: payments.pool.fetchval(
            "SELECT bonus_state = 'REDEEMED' FROM payments WHERE payment_id = $1", bonus.payment_id
        )
    )
    await payments.publish(
        RedPurchaseDeclined(
            payment_id=red.payment_id,
            customer_id=c,
            reason_code=ReasonCode.INSUFFICIENT_LIMIT,
            message="limit",
            available=0,
        )
    )
    [cancelled] = await payments.expect(c, BonusRedemptionCancelled.TYPE)
    assert cancelled.amount == 1_000 * T
    assert (await payments.expect(c, PaymentFailed.TYPE))[0].reason_code == ReasonCode.RED_DECLINED


async def test_bonus_purchase_with_gold_redeemed_then_declined(payments: Payments) -> None:
    c = await payments.customer(gold=5_000 * T)
    ok = _red_purchase(c, 2_000 * T, bonus=500 * T, funding=Funding.GOLD)
    await payments.publish(ok)
    [asked] = await payments.expect(c, BonusRedemptionRequested.TYPE)
    assert await payments.balance(c) == 3_500 * T  # the funded part is held
    await payments.publish(
        BonusRedeemed(payment_id=asked.payment_id, customer_id=c, amount=500 * T, balance_after=0)
    )
    [done] = await payments.expect(c, PaymentCompleted.TYPE)
    assert done.bonus_amount == 500 * T
    assert await payments.balance(c) == 3_500 * T
    no = _red_purchase(c, 2_000 * T, bonus=500 * T, funding=Funding.GOLD)
    await payments.publish(no)
    [_, asked2] = await payments.expect(c, BonusRedemptionRequested.TYPE, count=2)
    await payments.publish(
        BonusRedemptionDeclined(
            payment_id=asked2.payment_id,
            customer_id=c,
            reason_code=ReasonCode.BONUS_BALANCE_INSUFFICIENT,
            message="no bonus",
        )
    )
    [failed] = await payments.expect(c, PaymentFailed.TYPE)
    assert failed.reason_code == ReasonCode.BONUS_DECLINED
    assert await payments.balance(c) == 3_500 * T


async def test_saga_timeout_compensates_and_a_late_approval_is_cancelled(payments: Payments) -> None:
    c = await payments.customer(gold=5_000 * T)
    await payments.publish(_red_purchase(c, 2_000 * T, bonus=500 * T))
    [red] = await payments.expect(c, RedPurchaseRequested.TYPE)
    payments.clock.advance(timedelta(seconds=61))
    [failed] = await payments.expect(c, PaymentFailed.TYPE)
    assert failed.reason_code == ReasonCode.RED_TIMEOUT
    await payments.expect(c, BonusRedemptionCancelled.TYPE)
    await payments.expect(c, RedPurchaseCancelled.TYPE)
    await payments.publish(
        RedPurchaseApproved(
            payment_id=red.payment_id,
            customer_id=c,
            plan_id=uuid4(),
            amount=red.amount,
            parts=[37_500] * 4,
            available_after=0,
        )
    )
    await payments.expect(c, RedPurchaseCancelled.TYPE, count=2)  # the late approval is compensated
    assert await payments.balance(c) == 5_000 * T


# --------------------------------------------------------------------------------------- provider


async def test_provider_delay_is_resolved_by_the_janitor(payments: Payments) -> None:
    c = await payments.customer(gold=1_000 * T)
    cmd = pay_service(c, 300 * T, provider="delay-energo")
    await payments.publish(cmd)
    [pending] = await payments.expect(c, PaymentPending.TYPE)
    assert pending.status == "PENDING_PROVIDER"
    assert await payments.balance(c) == 700 * T
    payments.clock.advance(timedelta(seconds=31))
    [done] = await payments.expect(c, PaymentCompleted.TYPE)
    assert done.payment_id == pending.payment_id
    assert await payments.balance(c) == 700 * T


async def test_provider_failure_returns_the_debit(payments: Payments) -> None:
    c = await payments.customer(gold=1_000 * T)
    await payments.publish(pay_service(c, 300 * T, provider="fail-energo"))
    [failed] = await payments.expect(c, PaymentFailed.TYPE)
    assert failed.reason_code == ReasonCode.PROVIDER_FAILED
    assert await payments.balance(c) == 1_000 * T
    await payments.publish(pay_service(c, 300 * T, provider="delay-fail-energo"))
    await payments.expect(c, PaymentPending.TYPE)
    payments.clock.advance(timedelta(seconds=31))
    await payments.expect(c, PaymentFailed.TYPE, count=2)
    assert await payments.balance(c) == 1_000 * T


# ---------------------------------------------------------------------------------------- refunds


async def test_partial_then_full_refund_and_over_refund_rejected(payments: Payments) -> None:
    c = await payments.customer(gold=3_000 * T)
    buy = _red_purchase(c, 2_000 * T, funding=Funding.GOLD)
    await payments.publish(buy)
    [done] = await payments.expect(c, PaymentCompleted.TYPE)
    await payments.publish(
        Refund(
            request_id=uuid4(),
            customer_id=c,
            payment_id=done.payment_id,
            amount=500 * T,
            reason="one item returned",
        )
    )
    [part] = await payments.expect(c, PaymentRefunded.TYPE)
    assert part.status == "PARTIALLY_REFUNDED"
    assert await payments.balance(c) == 1_500 * T
    too_much = uuid4()
    await payments.publish(
        Refund(request_id=too_much, customer_id=c, payment_id=done.payment_id, amount=1_600 * T, reason="x")
    )
    assert (await payments.for_request(c, too_much)).payload.reason_code == ReasonCode.REFUND_EXCEEDS_PAYMENT
    await payments.publish(
        Refund(request_id=uuid4(), customer_id=c, payment_id=done.payment_id, amount=1_500 * T, reason="rest")
    )
    [_, full] = await payments.expect(c, PaymentRefunded.TYPE, count=2)
    assert full.status == "REFUNDED"
    assert full.total_refunded == 2_000 * T
    assert await payments.balance(c) == 3_000 * T


async def test_overpayment_refunded_by_billing_credits_gold_once(payments: Payments) -> None:
    c = await payments.customer()
    ev = OverpaymentRefunded(
        refund_id=uuid4(), customer_id=c, amount=250 * T, reason=next(iter(OverpaymentReason))
    )
    env = payments.envelope(ev)
    assert env.producer == "billing"
    await payments.publish(env, times=2)  # a redelivery has no effect
    await payments.handled(env.event_id)
    await until(
        lambda: payments.pool.fetchval(
            "SELECT count(*) = 2 FROM ledger_entries WHERE payment_id = $1", ev.refund_id
        )
    )
    assert await payments.balance(c) == 250 * T


async def test_idempotency_conflict_and_a_decline_stays_a_decline(payments: Payments) -> None:
    c = await payments.customer(gold=50 * T)
    declined = pay_service(c, 100 * T)
    await payments.publish(declined)
    first = await payments.for_request(c, declined.request_id)
    assert first.payload.reason_code == ReasonCode.INSUFFICIENT_FUNDS
    # Money arrives, the client retries the same request: still the original decline, same event id.
    rid = uuid4()
    await payments.publish(
        TopUp(request_id=rid, customer_id=c, channel=Channel.ATM, account=AccountKind.GOLD, amount=500 * T)
    )
    await payments.expect(c, TopUpCompleted.TYPE, lambda p: p.request_id == rid)
    await payments.publish(declined)
    replays = await payments.expect(
        c, PaymentRejected.TYPE, lambda p: p.request_id == declined.request_id, count=2
    )
    assert {r.reason_code for r in replays} == {ReasonCode.INSUFFICIENT_FUNDS}
    ids = {e.event_id for e in payments.events.of(c, PaymentRejected.TYPE)}
    assert ids == {first.event_id}
    # Same request id, different payload: a conflict, and no money moves.
    await payments.publish(declined.model_copy(update={"amount": 10 * T}))
    conflict = await payments.expect(
        c, PaymentRejected.TYPE, lambda p: p.reason_code == "IDEMPOTENCY_CONFLICT"
    )
    assert conflict[0].request_id == declined.request_id
    assert await payments.balance(c) == 550 * T
