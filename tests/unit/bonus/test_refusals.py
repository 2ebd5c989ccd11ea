"""What the bonus domain refuses and returns, exactly (found by ``make mutation``).

The other modules check the rules' outcomes; these pin the whole returned values (a decline's
payment id and detail, a replayed clawback) and each refusal's message, which is what an operator
reads in the dead-letter reason.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest

from services.bonus.domain import (
    Accrual,
    BonusLedger,
    Clawback,
    Declined,
    DeclineReason,
    EntryKind,
    InsufficientBonusBalance,
    LedgerConflict,
    LedgerEntry,
    LedgerInvariantError,
    Merchant,
    PaymentKind,
    Redeemed,
    RedemptionConflict,
    RedemptionRequest,
    accrual_amount,
    clawback_target,
    decide_accrual,
    decide_redemption,
    parse_rules,
    plan_clawback,
    redemption_cap,
    replay,
)
from shared.money import Money

from .builders import payment

pytestmark = pytest.mark.unit

T = Money.of_tenge
Z = Money.zero()


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


# -- accrual ----------------------------------------------------------------------------------------

ALL_OF_IT = parse_rules(
    """
[[rule_sets]]
id = "all"
effective_from = 2014-01-01
[[rule_sets.rules]]
id = "all.services"
percent = 100
kinds = ["SERVICE"]
[[rule_sets.rules]]
id = "all.purchases"
percent = 1
kinds = ["PURCHASE"]
"""
)


def test_one_tiyn_paid_can_earn_one_tiyn() -> None:
    accrual = decide_accrual(payment(amount=Money(1)), ALL_OF_IT)
    assert accrual is not None
    assert (accrual.amount, accrual.base, accrual.percent) == (Money(1), Money(1), Decimal(100))


def test_one_tiyn_of_bonus_is_still_accrued() -> None:
    # 1 % of 1.00 ₸ is exactly one tiyn: the smallest accrual there is.
    accrual = decide_accrual(payment(kind=PaymentKind.PURCHASE, category=None, amount=T(1)), ALL_OF_IT)
    assert accrual is not None
    assert accrual.amount == Money(1)


def test_accrual_rounds_down_to_the_tiyn() -> None:
    assert accrual_amount(Money(199), Decimal(1)) == Money(1)
    assert accrual_amount(Money(99), Decimal(1)) == Z


def _accrual(amount: Money, base: Money) -> Accrual:
    return Accrual("pay-1", "cust-1", "s", "r", None, Decimal(100), base, amount, base, date(2025, 3, 15))


def test_an_accrual_may_be_the_whole_base_and_no_more() -> None:
    assert _accrual(T(5), T(5)).amount == T(5)
    with pytest.raises(ValueError, match=exactly("an accrual never exceeds its base")):
        _accrual(T(5) + Money(1), T(5))
    for amount in (Z, Money(-1)):
        with pytest.raises(ValueError, match=exactly("an accrual is positive")):
            _accrual(amount, T(5))
    assert _accrual(Money(1), T(5)).amount == Money(1)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"payment_id": ""}, "payment_id and customer_id are required"),
        ({"customer_id": ""}, "payment_id and customer_id are required"),
        ({"bonus_amount_used": Money(-1)}, "bonus_amount_used must be within [0, amount]"),
        ({"bonus_amount_used": T(20_000) + Money(1)}, "bonus_amount_used must be within [0, amount]"),
        ({"amount": Z}, "amount must be positive, got 0 tiyn"),
    ],
    ids=["no-payment-id", "no-customer-id", "negative-bonus", "bonus-over-amount", "zero-amount"],
)
def test_impossible_payment_facts_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        payment(**changes)


# -- clawback ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accrued", "original", "refunded", "message"),
    [
        (T(1), Z, Z, "original amount must be positive"),
        (T(1), T(10), Money(-1), "total refunded must be within [0, original amount]"),
        (T(1), T(10), T(10) + Money(1), "total refunded must be within [0, original amount]"),
        (Money(-1), T(10), T(5), "accrued must not be negative"),
    ],
    ids=["zero-original", "negative-refund", "refund-over-original", "negative-accrual"],
)
def test_impossible_clawback_inputs_are_refused(
    accrued: Money, original: Money, refunded: Money, message: str
) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        clawback_target(accrued, original, refunded)


@pytest.mark.parametrize(("available", "already"), [(Money(-1), Z), (Z, Money(-1))])
def test_a_clawback_plan_refuses_negative_balances(available: Money, already: Money) -> None:
    with pytest.raises(ValueError, match=exactly("available and already_claimed must not be negative")):
        plan_clawback(
            accrued=T(1),
            original_amount=T(10),
            total_refunded=T(10),
            already_claimed=already,
            available=available,
        )


# -- the ledger -------------------------------------------------------------------------------------


def entry(kind: EntryKind, payment_id: str, amount: Money, **kwargs: object) -> LedgerEntry:
    return LedgerEntry(kind, payment_id, amount, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "payment_id", "amount", "kwargs", "message"),
    [
        (EntryKind.ACCRUAL, "", T(1), {}, "payment_id is required"),
        (EntryKind.ACCRUAL, "p", Money(-1), {}, "amount and shortfall are magnitudes, never negative"),
        (
            EntryKind.REVERSAL,
            "p",
            T(1),
            {"refund_id": "r", "shortfall": Money(-1)},
            "amount and shortfall are magnitudes, never negative",
        ),
        (
            EntryKind.ACCRUAL,
            "p",
            T(1),
            {"refund_id": "r"},
            "refund_id is given for REVERSAL entries and only for them",
        ),
        (EntryKind.REVERSAL, "p", T(1), {}, "refund_id is given for REVERSAL entries and only for them"),
        (EntryKind.REDEMPTION, "p", T(1), {"shortfall": T(1)}, "only a REVERSAL records a shortfall"),
        (EntryKind.ACCRUAL, "p", Z, {}, "an entry moves a positive amount"),
        (EntryKind.REVERSAL, "p", Z, {"refund_id": "r"}, "an entry moves a positive amount"),
    ],
)
def test_impossible_entries_are_refused(
    kind: EntryKind, payment_id: str, amount: Money, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        entry(kind, payment_id, amount, **kwargs)


def test_a_reversal_of_spent_bonus_moves_nothing_and_records_the_shortfall() -> None:
    assert entry(EntryKind.REVERSAL, "p", Z, refund_id="r", shortfall=T(1)).signed == Z


def test_an_impossible_history_is_refused_with_its_place() -> None:
    accrual = entry(EntryKind.ACCRUAL, "p1", T(5))
    with pytest.raises(LedgerInvariantError, match=exactly("entry 1: duplicate key ('ACCRUAL', 'p1')")):
        BonusLedger("c1", (accrual, accrual))
    with pytest.raises(LedgerInvariantError, match=exactly("entry 1: balance would be -100 tiyn")):
        BonusLedger("c1", (accrual, entry(EntryKind.REDEMPTION, "p2", T(6))))
    two = BonusLedger("c1", (accrual, entry(EntryKind.ACCRUAL, "p2", T(1))))
    assert two.balance == T(6)


def test_post_refuses_conflicts_overdrafts_and_broken_links() -> None:
    ledger = BonusLedger("c1").post(entry(EntryKind.ACCRUAL, "p1", T(5)))
    assert ledger.customer_id == "c1"
    different = entry(EntryKind.ACCRUAL, "p1", T(6))
    with pytest.raises(LedgerConflict) as conflict:
        ledger.post(different)
    assert str(conflict.value) == f"('ACCRUAL', 'p1') already posted as {ledger.entries[0]}, not {different}"
    with pytest.raises(
        InsufficientBonusBalance, match=exactly(f"REDEMPTION of {T(6)} exceeds the balance {T(5)}")
    ):
        ledger.redeem("p2", T(6))
    with pytest.raises(LedgerInvariantError, match=exactly("RESTORE of p3 must equal its REDEMPTION")):
        ledger.post(entry(EntryKind.RESTORE, "p3", T(1)))
    with pytest.raises(LedgerInvariantError, match=exactly("reversals of p1 would exceed its accrual")):
        ledger.post(entry(EntryKind.REVERSAL, "p1", T(5), refund_id="r", shortfall=Money(1)))


def test_accrual_for_another_customer_is_refused() -> None:
    accrual = decide_accrual(payment(customer_id="cust-2", amount=T(100)), ALL_OF_IT)
    assert accrual is not None
    with pytest.raises(ValueError, match=exactly("accrual belongs to another customer")):
        BonusLedger("cust-1").accrue(accrual)


def test_shortfalls_are_kept_per_payment() -> None:
    ledger = (
        BonusLedger("c1")
        .post(entry(EntryKind.ACCRUAL, "p1", T(5)))
        .post(entry(EntryKind.ACCRUAL, "p2", T(5)))
    )
    ledger = ledger.redeem("p3", T(9))
    ledger, first = ledger.claw_back(
        payment_id="p1", refund_id="r1", original_amount=T(10), total_refunded=T(10)
    )
    assert first == Clawback(target_total=T(5), claim=T(5), reversed=T(1), shortfall=T(4))
    assert (ledger.shortfall_for("p1"), ledger.shortfall_for("p2")) == (T(4), Z)
    # The shortfall counts as claimed: a later reversal of p1 cannot exceed the accrual with it.
    ledger = ledger.post(entry(EntryKind.ACCRUAL, "p4", T(5)))
    with pytest.raises(LedgerInvariantError, match=exactly("reversals of p1 would exceed its accrual")):
        ledger.post(entry(EntryKind.REVERSAL, "p1", Money(1), refund_id="r2"))
    # p2's reversal is judged on p2 alone.
    ledger, second = ledger.claw_back(
        payment_id="p2", refund_id="r3", original_amount=T(10), total_refunded=T(10)
    )
    assert second == Clawback(target_total=T(5), claim=T(5), reversed=T(5), shortfall=Z)


def test_a_replayed_refund_returns_what_it_recorded() -> None:
    ledger = BonusLedger("c1").post(entry(EntryKind.ACCRUAL, "p1", T(10))).redeem("p2", T(8))
    ledger, first = ledger.claw_back(
        payment_id="p1", refund_id="r1", original_amount=T(100), total_refunded=T(50)
    )
    assert first == Clawback(target_total=T(5), claim=T(5), reversed=T(2), shortfall=T(3))
    ledger, second = ledger.claw_back(
        payment_id="p1", refund_id="r2", original_amount=T(100), total_refunded=T(60)
    )
    assert second == Clawback(target_total=T(6), claim=T(1), reversed=Z, shortfall=T(1))
    again, replayed = ledger.claw_back(
        payment_id="p1", refund_id="r1", original_amount=T(100), total_refunded=T(50)
    )
    assert again is ledger
    # The replay reports its own claim and split, against everything claimed for the payment so far.
    assert replayed == Clawback(target_total=T(6), claim=T(5), reversed=T(2), shortfall=T(3))


# -- redemption -------------------------------------------------------------------------------------


PRICE = T(1_000)
BONUS = T(100)


def request(
    kind: PaymentKind = PaymentKind.PURCHASE,
    merchant: Merchant | None = Merchant.KASPI_MAGAZIN,
    amount: Money = PRICE,
    bonus: Money = BONUS,
    payment_id: str = "pay-1",
) -> RedemptionRequest:
    return RedemptionRequest(payment_id, "cust-1", kind, merchant, amount, bonus)


def test_declines_name_the_payment_and_say_why() -> None:
    assert decide_redemption(request(kind=PaymentKind.RED_BILL, merchant=None), T(500)) == Declined(
        "pay-1", DeclineReason.BONUS_NOT_ALLOWED_FOR_RED, "bonuses cannot pay a Kaspi Red bill"
    )
    assert decide_redemption(request(merchant=Merchant.KASPI_QR), T(500)) == Declined(
        "pay-1",
        DeclineReason.BONUS_CATEGORY_NOT_ELIGIBLE,
        "bonuses can pay only for purchases in Kaspi Magazin",
    )
    assert decide_redemption(request(bonus=T(601)), T(5_000)) == Declined(
        "pay-1",
        DeclineReason.BONUS_CAP_EXCEEDED,
        f"at most {T(600)} (60 % of {T(1_000)}) can be paid with bonuses",
    )
    assert decide_redemption(request(), T(99)) == Declined(
        "pay-1", DeclineReason.BONUS_BALANCE_INSUFFICIENT, f"requested {T(100)}, bonus balance is {T(99)}"
    )
    assert decide_redemption(request(), T(100)) == Redeemed("pay-1", T(100))


def test_the_cap_rounds_down_to_the_tiyn() -> None:
    # 60 % of 0.01 ₸ is 0.6 tiyn: nothing can be paid with bonuses.
    assert redemption_cap(Money(1)) == Z
    assert redemption_cap(Money(3)) == Money(1)


def test_replays_are_checked_against_the_request() -> None:
    with pytest.raises(ValueError, match=exactly("existing outcome belongs to another payment")):
        replay(request(), Redeemed("pay-2", T(100)))
    with pytest.raises(
        RedemptionConflict, match=exactly(f"payment pay-1 already redeemed {T(50)}, not {T(100)}")
    ):
        replay(request(), Redeemed("pay-1", T(50)))


@pytest.mark.parametrize(
    ("payment_id", "customer_id", "amount", "bonus", "message"),
    [
        ("", "cust-1", T(1), T(1), "payment_id and customer_id are required"),
        ("pay-1", "", T(1), T(1), "payment_id and customer_id are required"),
        ("pay-1", "cust-1", Z, T(1), "amount and bonus_amount must be positive"),
        ("pay-1", "cust-1", T(1), Z, "amount and bonus_amount must be positive"),
    ],
)
def test_impossible_redemption_requests_are_refused(
    payment_id: str, customer_id: str, amount: Money, bonus: Money, message: str
) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        RedemptionRequest(
            payment_id, customer_id, PaymentKind.PURCHASE, Merchant.KASPI_MAGAZIN, amount, bonus
        )


def test_the_smallest_request_is_one_tiyn_of_one_tiyn() -> None:
    assert RedemptionRequest("p", "c", PaymentKind.PURCHASE, None, Money(1), Money(1)).amount == Money(1)
