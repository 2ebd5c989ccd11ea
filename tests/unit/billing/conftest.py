"""Fakes and helpers for the pure billing domain tests."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

import pytest

from services.billing.domain import BusinessDay, RedAccount, run_business_day
from shared.money import Money


@dataclass(frozen=True)
class FakeCalendar:
    """Weekends plus the holidays passed in."""

    holidays: frozenset[date] = field(default_factory=frozenset)

    def is_working_day(self, d: date) -> bool:
        """Mon–Fri and not a holiday."""
        return d.weekday() < 5 and d not in self.holidays

    def roll_forward(self, d: date) -> date:
        """``d`` or the next working day."""
        while not self.is_working_day(d):
            d += timedelta(days=1)
        return d


def tenge(n: int) -> Money:
    """Whole tenge."""
    return Money.of_tenge(n)


def days(start: date, end: date) -> Iterable[date]:
    """Every date from ``start`` to ``end`` inclusive."""
    d = start
    while d <= end:
        yield d
        d += timedelta(days=1)


def run_days(
    account: RedAccount, start: date, end: date, cal: FakeCalendar
) -> tuple[RedAccount, list[BusinessDay]]:
    """Run the business-date job for each date in order (Fineract close-of-business)."""
    out: list[BusinessDay] = []
    for d in days(start, end):
        result = run_business_day(account, d, cal)
        account = result.account
        out.append(result)
    return account, out


@pytest.fixture
def cal() -> FakeCalendar:
    """A calendar with weekends only."""
    return FakeCalendar()
