"""Proportional clawback on refunds, including partial refunds and bonus already spent."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.bonus.domain import BonusLedger, BonusRules, decide_accrual, plan_clawback
from shared.money import Money

from .builders import qr_purchase

pytestmark = pytest.mark.unit

T = Money.of_tenge


def ledger_with_accrual(rules: BonusRules) -> BonusLedger:
    """A ledger holding one 1 000 ₸ accrual on a 10 000 ₸ promo purchase (pay-1)."""
    accrual = decide_accrual(qr_purchase(), rules)
    assert accrual is not None
    assert accrual.amount == T(1_000)
    return BonusLedger("cust-1").accrue(accrual)


def test_full_refund_reverses_everything(rules: BonusRules) -> None:
    ledger, clawback = ledger_with_accrual(rules).claw_back(
        payment_id="pay-1", refund_id="r1", original_amount=T(10_000), total_refunded=T(10_000)
    )
    assert clawback.reversed == T(1_000)
    assert clawback.shortfall == Money.zero()
    assert ledger.balance == Money.zero()


def test_partial_refund_reverses_the_refunded_share(rules: BonusRules) -> None:
    ledger, clawback = ledger_with_accrual(rules).claw_back(
        payment_id="pay-1", refund_id="r1", original_amount=T(10_000), total_refunded=T(2_500)
    )
    assert clawback.reversed == T(250)
    assert ledger.balance == T(750)


def test_several_partial_refunds_sum_to_exactly_the_accrual() -> None:
    # 10 tiyn accrued on 30 ₸, refunded in thirds: cumulative floors 3, 6, 10 → 3 + 3 + 4.
    steps = []
    claimed = Money.zero()
    for total in (1_000, 2_000, 3_000):
        plan = plan_clawback(
            accrued=Money(10),
            original_amount=Money(3_000),
            total_refunded=Money(total),
            already_claimed=claimed,
            available=Money(10_000),
        )
        claimed += plan.claim
        steps.append(plan.reversed.tiyn)
    assert steps == [3, 3, 4]
    assert claimed == Money(10)


def test_partial_refunds_on_the_ledger_are_cumulative(rules: BonusRules) -> None:
    ledger = ledger_with_accrual(rules)
    reversed_ = []
    for refund_id, total in (("r1", 3_000), ("r2", 7_000), ("r3", 10_000)):
        ledger, clawback = ledger.claw_back(
            payment_id="pay-1", refund_id=refund_id, original_amount=T(10_000), total_refunded=T(total)
        )
        reversed_.append(clawback.reversed)
    assert reversed_ == [T(300), T(400), T(300)]
    assert ledger.reversed_for("pay-1") == T(1_000)
    assert ledger.balance == Money.zero()


def test_replayed_refund_reverses_once(rules: BonusRules) -> None:
    ledger, first = ledger_with_accrual(rules).claw_back(
        payment_id="pay-1", refund_id="r1", original_amount=T(10_000), total_refunded=T(5_000)
    )
    again, second = ledger.claw_back(
        payment_id="pay-1", refund_id="r1", original_amount=T(10_000), total_refunded=T(5_000)
    )
    assert again is ledger
    assert (second.reversed, second.shortfall) == (first.reversed, first.shortfall)


def test_already_spent_bonus_reverses_what_is_left_and_records_the_shortfall(rules: BonusRules) -> None:
    ledger = ledger_with_accrual(rules).redeem("pay-magazin", T(800))  # 200 ₸ left of 1 000 ₸
    ledger, clawback = ledger.claw_back(
        payment_id="pay-1", refund_id="r1", original_amount=T(10_000), total_refunded=T(10_000)
    )
    assert clawback.claim == T(1_000)
    assert clawback.reversed == T(200)
    assert clawback.shortfall == T(800)
    assert ledger.balance == Money.zero(), "the balance never goes below zero"
    assert ledger.shortfall_for("pay-1") == T(800)


def test_shortfall_is_written_off_not_collected_from_later_bonus(rules: BonusRules) -> None:
    ledger = ledger_with_accrual(rules).redeem("pay-magazin", T(1_000))
    ledger, first = ledger.claw_back(
        payment_id="pay-1", refund_id="r1", original_amount=T(10_000), total_refunded=T(5_000)
    )
    assert (first.reversed, first.shortfall) == (Money.zero(), T(500))
    ledger = ledger.restore("pay-magazin")  # the Magazin purchase failed: 1 000 ₸ back
    ledger, second = ledger.claw_back(
        payment_id="pay-1", refund_id="r2", original_amount=T(10_000), total_refunded=T(10_000)
    )
    assert (second.reversed, second.shortfall) == (T(500), Money.zero())
    assert ledger.balance == T(500)


def test_refund_of_a_payment_without_accrual_reverses_nothing() -> None:
    ledger = BonusLedger("cust-1")
    after, clawback = ledger.claw_back(
        payment_id="nothing", refund_id="r1", original_amount=T(100), total_refunded=T(100)
    )
    assert after is ledger
    assert clawback.claim == Money.zero()


def test_refund_larger_than_the_payment_is_refused() -> None:
    with pytest.raises(ValueError, match="total refunded"):
        plan_clawback(
            accrued=T(1),
            original_amount=T(10),
            total_refunded=T(11),
            already_claimed=Money.zero(),
            available=T(1),
        )


@given(
    accrued_share=st.integers(min_value=0, max_value=15),
    original=st.integers(min_value=1, max_value=10**10),
    cuts=st.lists(st.integers(min_value=0, max_value=10**10), max_size=6),
    available=st.integers(min_value=0, max_value=10**9),
)
def test_total_reversed_never_exceeds_accrued(
    accrued_share: int, original: int, cuts: list[int], available: int
) -> None:
    accrued = Money(original * accrued_share // 100)
    totals = [*sorted({min(c, original) for c in cuts}), original]
    claimed = reversed_total = Money.zero()
    balance = Money(available)
    for total in totals:
        plan = plan_clawback(
            accrued=accrued,
            original_amount=Money(original),
            total_refunded=Money(total),
            already_claimed=claimed,
            available=balance,
        )
        assert plan.reversed <= balance
        assert plan.reversed + plan.shortfall == plan.claim
        claimed += plan.claim
        reversed_total += plan.reversed
        balance -= plan.reversed
        assert claimed == plan.target_total
        assert reversed_total <= claimed <= accrued
    assert claimed == accrued, "a full refund claims exactly the whole accrual"
