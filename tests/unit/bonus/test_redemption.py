"""Spending bonuses: 60 % of a Kaspi Magazin purchase, never a Red bill, idempotent by payment."""

from __future__ import annotations

from typing import Any

import pytest

from services.bonus.domain import (
    BonusLedger,
    Declined,
    DeclineReason,
    LedgerEntry,
    Merchant,
    PaymentKind,
    Redeemed,
    RedemptionConflict,
    RedemptionRequest,
    decide_redemption,
    redemption_cap,
)
from services.bonus.domain.ledger import EntryKind, InsufficientBonusBalance
from shared.money import Money

pytestmark = pytest.mark.unit

T = Money.of_tenge


def request(**overrides: Any) -> RedemptionRequest:
    """A request to pay 6 000 ₸ of a 10 000 ₸ Kaspi Magazin purchase with bonuses."""
    fields: dict[str, Any] = {
        "payment_id": "pay-m1",
        "customer_id": "cust-1",
        "kind": PaymentKind.PURCHASE,
        "merchant": Merchant.KASPI_MAGAZIN,
        "amount": T(10_000),
        "bonus_amount": T(6_000),
    }
    fields.update(overrides)
    return RedemptionRequest(**fields)


def test_up_to_sixty_percent_of_a_magazin_purchase() -> None:
    assert decide_redemption(request(), balance=T(50_000)) == Redeemed("pay-m1", T(6_000))


def test_above_sixty_percent_is_declined_not_clamped() -> None:
    outcome = decide_redemption(request(bonus_amount=Money(600_001)), balance=T(50_000))
    assert isinstance(outcome, Declined)
    assert outcome.reason is DeclineReason.BONUS_CAP_EXCEEDED
    assert "6\u00a0000" in outcome.detail


def test_cap_rounds_down_to_the_tiyn() -> None:
    # 60 % of 0,99 ₸ = 59.4 tiyn → 59 tiyn.
    assert redemption_cap(Money(99)) == Money(59)
    assert decide_redemption(request(amount=Money(99), bonus_amount=Money(59)), balance=T(1)) == Redeemed(
        "pay-m1", Money(59)
    )
    declined = decide_redemption(request(amount=Money(99), bonus_amount=Money(60)), balance=T(1))
    assert isinstance(declined, Declined)
    assert declined.reason is DeclineReason.BONUS_CAP_EXCEEDED


def test_more_than_the_balance_is_declined() -> None:
    outcome = decide_redemption(request(), balance=Money(599_999))
    assert isinstance(outcome, Declined)
    assert outcome.reason is DeclineReason.BONUS_BALANCE_INSUFFICIENT


def test_exactly_the_balance_is_allowed() -> None:
    assert decide_redemption(request(), balance=T(6_000)) == Redeemed("pay-m1", T(6_000))


def test_cap_is_checked_before_the_balance() -> None:
    outcome = decide_redemption(request(bonus_amount=T(7_000)), balance=T(1))
    assert isinstance(outcome, Declined)
    assert outcome.reason is DeclineReason.BONUS_CAP_EXCEEDED


@pytest.mark.parametrize(
    ("kind", "merchant"),
    [
        (PaymentKind.PURCHASE, Merchant.KASPI_QR),
        (PaymentKind.PURCHASE, Merchant.KASPI_TRAVEL),
        (PaymentKind.PURCHASE, None),
        (PaymentKind.SERVICE, None),
        (PaymentKind.SERVICE, Merchant.KASPI_MAGAZIN),
        (PaymentKind.TRANSFER, None),
        (PaymentKind.TOP_UP, None),
    ],
)
def test_other_merchants_and_categories_are_declined(kind: PaymentKind, merchant: Merchant | None) -> None:
    outcome = decide_redemption(request(kind=kind, merchant=merchant), balance=T(50_000))
    assert isinstance(outcome, Declined)
    assert outcome.reason is DeclineReason.BONUS_CATEGORY_NOT_ELIGIBLE


@pytest.mark.parametrize("merchant", [None, Merchant.KASPI_MAGAZIN])
def test_every_red_bill_is_declined(merchant: Merchant | None) -> None:
    # Bonuses cannot pay a Kaspi Red bill (brief §3, §4; seed 002), even a tiny one with a big balance.
    outcome = decide_redemption(
        request(kind=PaymentKind.RED_BILL, merchant=merchant, bonus_amount=Money(1)), balance=T(50_000)
    )
    assert isinstance(outcome, Declined)
    assert outcome.reason is DeclineReason.BONUS_NOT_ALLOWED_FOR_RED


def test_replay_returns_the_stored_outcome() -> None:
    first = decide_redemption(request(), balance=T(6_000))
    # The balance has since dropped (the redemption itself took it): the replay must not decline.
    assert decide_redemption(request(), balance=Money.zero(), existing=first) == first


def test_a_decline_stays_a_decline_on_replay() -> None:
    first = decide_redemption(request(), balance=Money.zero())
    assert isinstance(first, Declined)
    assert decide_redemption(request(), balance=T(50_000), existing=first) == first


def test_replay_with_a_different_amount_is_a_conflict() -> None:
    first = decide_redemption(request(), balance=T(6_000))
    with pytest.raises(RedemptionConflict):
        decide_redemption(request(bonus_amount=T(5_000)), balance=T(6_000), existing=first)


def test_request_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        request(bonus_amount=Money.zero())


# -- on the ledger --------------------------------------------------------------------------------
def funded_ledger(amount: Money) -> BonusLedger:
    """A ledger with one accrual of ``amount``."""
    return BonusLedger.from_entries("cust-1", [LedgerEntry(EntryKind.ACCRUAL, "pay-earn", amount)])


def test_redeem_then_restore_after_a_failed_purchase() -> None:
    ledger = funded_ledger(T(6_000))
    outcome = decide_redemption(request(), ledger.balance)
    assert isinstance(outcome, Redeemed)
    ledger = ledger.redeem(outcome.payment_id, outcome.amount)
    assert ledger.balance == Money.zero()
    assert ledger.redemption_for("pay-m1") == T(6_000)
    restored = ledger.restore("pay-m1")
    assert restored.balance == T(6_000)
    assert restored.restore("pay-m1") is restored, "restore is idempotent"
    assert restored.redeem("pay-m1", T(6_000)) is restored, "a replayed redemption is a no-op"


def test_restore_without_redemption_is_a_no_op() -> None:
    ledger = funded_ledger(T(1))
    assert ledger.restore("pay-never") is ledger


def test_ledger_refuses_a_redemption_beyond_the_balance() -> None:
    with pytest.raises(InsufficientBonusBalance):
        funded_ledger(T(100)).redeem("pay-m1", Money(10_001))
