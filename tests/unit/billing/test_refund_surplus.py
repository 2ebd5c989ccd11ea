"""A refund or cancellation that leaves less owed than the carried prepayment returns the surplus to Gold.

Found by the property test (test_properties.py): an old-terms customer prepaid 2 tiyn (carried to the
next bill), a merchant refunded a whole purchase, and 1 tiyn of prepayment was then more than
everything still owed. Kept as carried, it held the available amount at the limit, so a later
purchase did not lower it. Seed 002 (Q1516): once the purchases are paid, the rest goes to Kaspi Gold.
"""

from __future__ import annotations

from datetime import date

import pytest

from services.billing.domain import (
    PurchaseApproved,
    PurchaseCancelled,
    PurchaseRefunded,
    RedAccount,
    allocate_repayment,
    approve_purchase,
    cancel_purchase,
    open_account,
)
from services.billing.domain.purchases import refund_purchase
from shared.money import Money

pytestmark = pytest.mark.unit
DAY = date(2025, 1, 1)


def _prepaid_account() -> RedAccount:
    account = open_account("c1", Money(100_000), DAY, new_terms_accepted=False)
    for pid, price in (("p1", 3), ("p2", 1)):
        approved = approve_purchase(account, pid, Money(price), DAY)
        assert isinstance(approved, PurchaseApproved)
        account = approved.account
    account = allocate_repayment(account, Money(2), DAY).account
    assert account.carried == Money(2)
    return account


def test_a_refund_below_the_prepayment_returns_the_surplus_and_purchases_lower_the_limit_again() -> None:
    account = _prepaid_account()
    refunded = refund_purchase(account, "p1", Money(3), DAY)  # p1 refunded whole: only p2 (1) owed
    assert isinstance(refunded, PurchaseRefunded)
    assert refunded.excess is not None
    assert refunded.excess.refunded_to_gold == Money(1)
    assert refunded.account.carried == Money(1) == refunded.account.outstanding
    before = refunded.account.available
    bought = approve_purchase(refunded.account, "p3", Money(1), DAY)
    assert isinstance(bought, PurchaseApproved)
    assert bought.account.available == before - Money(1)


def test_a_cancellation_below_the_prepayment_returns_the_surplus() -> None:
    account = _prepaid_account()
    cancelled = cancel_purchase(account, "p1")
    assert isinstance(cancelled, PurchaseCancelled)
    assert cancelled.refunded_to_gold == Money(1)
    assert cancelled.account.carried == Money(1)
