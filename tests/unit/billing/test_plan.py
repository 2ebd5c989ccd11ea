"""Purchase approval and the four-part plan (domain brief §4)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.billing.domain import (
    DeclineReason,
    PurchaseApproved,
    PurchaseDeclined,
    approve_purchase,
    open_account,
)
from shared.money import MAX_TIYN, Money

from .conftest import tenge

pytestmark = pytest.mark.unit


@given(st.integers(min_value=0, max_value=MAX_TIYN))
def test_split_into_four_always_sums_to_the_price(tiyn: int) -> None:
    parts = Money(tiyn).split(4)
    assert len(parts) == 4
    assert sum(p.tiyn for p in parts) == tiyn
    assert all(p.tiyn >= 0 for p in parts)
    assert parts[0].tiyn - parts[3].tiyn in range(4)
    assert parts[1] == parts[2] == parts[3]


def test_remainder_tiyn_go_on_the_first_part() -> None:
    account = open_account("c1", tenge(100_000), date(2025, 1, 10), new_terms_accepted=True)
    result = approve_purchase(account, "p1", Money(1_000_003), date(2025, 1, 12))
    assert isinstance(result, PurchaseApproved)
    assert [p.amount.tiyn for p in result.purchase.parts] == [250_003, 250_000, 250_000, 250_000]
    assert [p.statement_date for p in result.purchase.parts] == [
        date(2025, 2, 10),
        date(2025, 3, 10),
        date(2025, 4, 10),
        date(2025, 5, 10),
    ]
    assert result.available == tenge(100_000) - Money(1_000_003)


def test_insufficient_limit_is_declined_with_a_reason() -> None:
    account = open_account("c1", tenge(50_000), date(2025, 1, 10), new_terms_accepted=True)
    first = approve_purchase(account, "p1", tenge(40_000), date(2025, 1, 12))
    assert isinstance(first, PurchaseApproved)
    second = approve_purchase(first.account, "p2", tenge(10_001), date(2025, 1, 13))
    assert isinstance(second, PurchaseDeclined)
    assert second.reason is DeclineReason.INSUFFICIENT_LIMIT
    assert second.available == tenge(10_000)
    exact = approve_purchase(first.account, "p3", tenge(10_000), date(2025, 1, 13))
    assert isinstance(exact, PurchaseApproved)
    assert exact.available == Money.zero()


def test_a_redelivered_approval_creates_no_second_plan() -> None:
    account = open_account("c1", tenge(50_000), date(2025, 1, 10), new_terms_accepted=True)
    first = approve_purchase(account, "p1", tenge(40_000), date(2025, 1, 12))
    assert isinstance(first, PurchaseApproved)
    again = approve_purchase(first.account, "p1", tenge(40_000), date(2025, 1, 12))
    assert isinstance(again, PurchaseApproved)
    assert again.account == first.account


def test_non_positive_price_is_declined() -> None:
    account = open_account("c1", tenge(50_000), date(2025, 1, 10), new_terms_accepted=True)
    result = approve_purchase(account, "p1", Money.zero(), date(2025, 1, 12))
    assert isinstance(result, PurchaseDeclined)
    assert result.reason is DeclineReason.INVALID_AMOUNT
