"""Merchant refunds, cancellations, terms and closing (domain brief §4)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from services.billing.domain import (
    AccountClosed,
    PurchaseApproved,
    PurchaseCancelled,
    PurchaseDeclined,
    PurchaseRefunded,
    RedAccount,
    Rejected,
    RejectReason,
    accept_new_terms,
    allocate_repayment,
    approve_purchase,
    cancel_purchase,
    close_account,
    open_account,
    refund_purchase,
)
from shared.money import Money

from .conftest import FakeCalendar, run_days, tenge

pytestmark = pytest.mark.unit


def with_purchase(price: int = 40_000, *, new_terms: bool = True) -> RedAccount:
    """Limit 100,000, one purchase on 12 Jan (parts 10 Feb … 10 May)."""
    account = open_account("c1", tenge(100_000), date(2025, 1, 10), new_terms_accepted=new_terms)
    result = approve_purchase(account, "p1", tenge(price), date(2025, 1, 12))
    assert isinstance(result, PurchaseApproved)
    return result.account


def test_refund_reduces_unbilled_parts_from_the_last_and_restores_the_limit() -> None:
    result = refund_purchase(with_purchase(), "p1", tenge(15_000), date(2025, 1, 20))
    assert isinstance(result, PurchaseRefunded)
    parts = result.account.purchases[0].parts
    assert [p.amount for p in parts] == [tenge(10_000), tenge(10_000), tenge(5_000), Money.zero()]
    assert result.reduced_parts == tenge(15_000)
    assert result.excess is None
    assert result.limit_restored == tenge(15_000)
    assert result.account.available == tenge(75_000)


def test_refund_beyond_unpaid_parts_goes_through_the_rules_then_gold(cal: FakeCalendar) -> None:
    account, _ = run_days(with_purchase(), date(2025, 2, 10), date(2025, 3, 10), cal)
    account = allocate_repayment(account, tenge(20_000), date(2025, 3, 10)).account
    # Parts 1–2 paid (20,000), parts 3–4 unbilled (20,000); refund of the whole 40,000.
    result = refund_purchase(account, "p1", tenge(40_000), date(2025, 3, 11))
    assert isinstance(result, PurchaseRefunded)
    assert result.reduced_parts == tenge(20_000)
    assert result.excess is not None
    assert result.excess.refunded_to_gold == tenge(20_000)
    assert result.account.available == tenge(100_000)
    assert result.account.outstanding == Money.zero()


def test_partial_refund_of_a_paid_part_pays_the_open_bill_first(cal: FakeCalendar) -> None:
    account, _ = run_days(with_purchase(), date(2025, 2, 10), date(2025, 3, 10), cal)
    account = allocate_repayment(account, tenge(10_000), date(2025, 3, 1)).account  # Feb bill paid
    # March bill (part 2, 10,000) is open; parts 3–4 unbilled (20,000); refund 25,000.
    result = refund_purchase(account, "p1", tenge(25_000), date(2025, 3, 11))
    assert isinstance(result, PurchaseRefunded)
    assert result.reduced_parts == tenge(20_000)
    assert result.excess is not None
    assert result.excess.to_bills == tenge(5_000)
    assert result.account.bills[-1].owed == tenge(5_000)
    assert result.limit_restored == tenge(25_000)


def test_refund_larger_than_price_or_unknown_is_rejected() -> None:
    account = with_purchase()
    assert refund_purchase(account, "p1", tenge(40_001), date(2025, 1, 20)) == Rejected(
        RejectReason.REFUND_EXCEEDS_PRICE
    )
    assert refund_purchase(account, "nope", tenge(1), date(2025, 1, 20)) == Rejected(
        RejectReason.UNKNOWN_PURCHASE
    )


def test_old_terms_refund_restores_by_the_refunded_amount() -> None:
    result = refund_purchase(with_purchase(new_terms=False), "p1", tenge(15_000), date(2025, 1, 20))
    assert isinstance(result, PurchaseRefunded)
    assert result.limit_restored == tenge(15_000)


def test_cancellation_releases_the_limit_and_is_idempotent() -> None:
    account = with_purchase()
    first = cancel_purchase(account, "p1")
    assert isinstance(first, PurchaseCancelled)
    assert first.limit_released == tenge(40_000)
    assert first.account.purchases == ()
    again = cancel_purchase(first.account, "p1")
    assert isinstance(again, PurchaseCancelled)
    assert again.already
    assert again.account == first.account
    # A late, redelivered approval of the cancelled purchase does not bring the plan back.
    late = approve_purchase(first.account, "p1", tenge(40_000), date(2025, 1, 12))
    assert isinstance(late, PurchaseDeclined)


def test_cancellation_of_a_billed_plan_is_rejected(cal: FakeCalendar) -> None:
    account, _ = run_days(with_purchase(), date(2025, 2, 10), date(2025, 2, 10), cal)
    assert cancel_purchase(account, "p1") == Rejected(RejectReason.PLAN_ALREADY_BILLED)


def test_accepting_new_terms_changes_the_restore_rule(cal: FakeCalendar) -> None:
    account, _ = run_days(with_purchase(new_terms=False), date(2025, 2, 10), date(2025, 2, 10), cal)
    account = accept_new_terms(account)
    assert accept_new_terms(account) is account
    repayment = allocate_repayment(account, tenge(10_000), date(2025, 2, 11))
    assert repayment.allocation.limit_restored == Money.zero()


def test_closing_sends_the_carried_balance_to_gold(cal: FakeCalendar) -> None:
    account = with_purchase()
    assert close_account(account) == Rejected(RejectReason.OUTSTANDING_DEBT)
    account = allocate_repayment(account, tenge(40_000), date(2025, 1, 13)).account
    assert account.outstanding == Money.zero()
    closed = close_account(account)
    assert isinstance(closed, AccountClosed)
    assert closed.account.closed
    # Carry only exists while something is owed; simulate a leftover balance to check the hand-off.
    leftover = close_account(replace(account, carried=tenge(1_234)))
    assert isinstance(leftover, AccountClosed)
    assert leftover.refunded_to_gold == tenge(1_234)
    assert leftover.account.carried == Money.zero()
    assert close_account(leftover.account) == AccountClosed(leftover.account, Money.zero())


def test_cancel_refunds_a_carry_that_has_nothing_left_to_pay() -> None:
    account = allocate_repayment(with_purchase(), tenge(5_000), date(2025, 1, 13)).account
    assert account.carried == tenge(5_000)
    result = cancel_purchase(account, "p1")
    assert isinstance(result, PurchaseCancelled)
    assert result.refunded_to_gold == tenge(5_000)
    assert result.account.carried == Money.zero()
    assert result.account.available == tenge(100_000)


def test_repayment_to_a_closed_account_goes_back_to_gold() -> None:
    closed = close_account(open_account("c1", tenge(1_000), date(2025, 1, 10), new_terms_accepted=True))
    assert isinstance(closed, AccountClosed)
    repayment = allocate_repayment(closed.account, tenge(500), date(2025, 1, 11))
    assert repayment.allocation.refunded_to_gold == tenge(500)
