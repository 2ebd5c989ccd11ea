"""Billing day, statement dates and due dates (domain brief §4)."""

from __future__ import annotations

import calendar as gregorian
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.billing.domain import (
    billing_date_in,
    billing_day_for,
    due_at,
    due_date_for,
    next_billing_date,
    plan_statement_dates,
)

from .conftest import FakeCalendar

pytestmark = pytest.mark.unit


def test_billing_day_is_the_opening_day_or_the_loan_payment_day() -> None:
    assert billing_day_for(date(2025, 1, 31)) == 31
    assert billing_day_for(date(2025, 1, 31), loan_payment_day=5) == 5
    with pytest.raises(ValueError, match="billing day"):
        billing_day_for(date(2025, 1, 1), loan_payment_day=32)


@pytest.mark.parametrize(
    ("year", "month", "expected"),
    [
        (2025, 2, date(2025, 2, 28)),
        (2024, 2, date(2024, 2, 29)),
        (2025, 3, date(2025, 3, 31)),
        (2025, 4, date(2025, 4, 30)),
    ],
)
def test_opened_on_the_31st_moves_to_the_last_day_of_shorter_months(
    year: int, month: int, expected: date
) -> None:
    assert billing_date_in(year, month, billing_day_for(date(2025, 1, 31))) == expected


def test_next_billing_date_is_strictly_after() -> None:
    assert next_billing_date(date(2025, 1, 31), 31) == date(2025, 2, 28)
    assert next_billing_date(date(2025, 2, 28), 31) == date(2025, 3, 31)
    assert next_billing_date(date(2025, 3, 30), 31) == date(2025, 3, 31)
    assert next_billing_date(date(2025, 12, 15), 15) == date(2026, 1, 15)


def test_a_purchase_on_the_billing_day_waits_for_next_months_bill() -> None:
    assert plan_statement_dates(date(2025, 3, 9), 10)[0] == date(2025, 3, 10)
    assert plan_statement_dates(date(2025, 3, 10), 10) == (
        date(2025, 4, 10),
        date(2025, 5, 10),
        date(2025, 6, 10),
        date(2025, 7, 10),
    )


def test_due_date_is_the_next_billing_day_rolled_past_weekends_and_holidays() -> None:
    # 2025-03-15 is a Saturday → Monday 17th; with the 17th a holiday too → Tuesday 18th.
    assert due_date_for(date(2025, 2, 15), 15, FakeCalendar()) == date(2025, 3, 17)
    assert due_date_for(date(2025, 2, 15), 15, FakeCalendar(frozenset({date(2025, 3, 17)}))) == date(
        2025, 3, 18
    )
    assert due_date_for(date(2025, 3, 10), 10, FakeCalendar()) == date(2025, 4, 10)


def test_due_at_is_20_00_almaty_by_tz_name() -> None:
    at = due_at(date(2025, 4, 10))
    assert str(at.tzinfo) == "Asia/Almaty"
    assert (at.hour, at.minute) == (20, 0)
    assert at.utcoffset() == timedelta(hours=5)


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)), st.integers(1, 31))
def test_next_billing_date_properties(after: date, billing_day: int) -> None:
    nxt = next_billing_date(after, billing_day)
    assert after < nxt <= after + timedelta(days=31)
    assert nxt.day == min(billing_day, gregorian.monthrange(nxt.year, nxt.month)[1])
