"""Billing calendar arithmetic: billing day, statement dates, due dates (domain brief §4)."""

from __future__ import annotations

import calendar as _gregorian
from datetime import date, datetime, timedelta
from typing import Final, Protocol
from zoneinfo import ZoneInfo

from shared.clock import cutoff_at

# Business time is Asia/Almaty by tz name, never a fixed offset (domain brief, preamble).
ALMATY: Final = ZoneInfo("Asia/Almaty")
# domain §4: a purchase is split into four parts, one per monthly bill.
PLAN_PARTS: Final = 4


class WorkingDays(Protocol):
    """The slice of the shared Kazakhstan working-day calendar that billing needs."""

    def is_working_day(self, d: date) -> bool:
        """True when ``d`` is a working day (not a weekend or public holiday)."""
        ...

    def roll_forward(self, d: date) -> date:
        """``d`` itself if it is a working day, else the first working day after it."""
        ...


def billing_day_for(opened_on: date, loan_payment_day: int | None = None) -> int:
    """The billing day of month: the Kaspi loan payment day if given, else the opening day."""
    # domain §4 (002 Q1542/Q1541): the bill date is the Red opening date, or the loans' payment date.
    day = opened_on.day if loan_payment_day is None else loan_payment_day
    if not 1 <= day <= 31:
        raise ValueError(f"billing day must be 1..31, got {day}")
    return day


def billing_date_in(year: int, month: int, billing_day: int) -> date:
    """The billing date in a month; a day past the month's end moves to its last day."""
    # domain §4 Interpretation: "if the month is shorter, the date moves to the last day of the month".
    if not 1 <= billing_day <= 31:
        raise ValueError(f"billing day must be 1..31, got {billing_day}")
    last = _gregorian.monthrange(year, month)[1]
    return date(year, month, min(billing_day, last))


def next_billing_date(after: date, billing_day: int) -> date:
    """The first billing date strictly after ``after``."""
    candidate = billing_date_in(after.year, after.month, billing_day)
    if candidate > after:
        return candidate
    year, month = (after.year + 1, 1) if after.month == 12 else (after.year, after.month + 1)
    return billing_date_in(year, month, billing_day)


def is_billing_date(d: date, billing_day: int) -> bool:
    """True when ``d`` is the account's billing date in its month."""
    return d == billing_date_in(d.year, d.month, billing_day)


def plan_statement_dates(purchased_on: date, billing_day: int) -> tuple[date, ...]:
    """Statement dates of the four parts: the 1st..4th billing dates strictly after the purchase."""
    # Interpretation (docs/billing.md §2): a purchase on day D belongs to the first bill whose
    # statement date is strictly after D, so a purchase on a billing day waits for next month's
    # bill whether it came before or after that day's billing job.
    dates: list[date] = []
    d = purchased_on
    for _ in range(PLAN_PARTS):
        d = next_billing_date(d, billing_day)
        dates.append(d)
    return tuple(dates)


def due_date_for(statement_date: date, billing_day: int, calendar: WorkingDays) -> date:
    """The bill's due date: the next billing date, rolled forward past weekends and holidays."""
    # domain §4 Interpretation: due on the next billing day (≈30 days later); 002 Q1538: a due date
    # on a weekend/holiday may be paid on the first working day after it without penalty.
    return calendar.roll_forward(next_billing_date(statement_date, billing_day))


def due_at(due_on: date) -> datetime:
    """The payment deadline: the daily cut-off, 20:00 Asia/Almaty, on the due date.

    domain §4 (002 Q1513/Q1541): "pay the bill on the planned date by 20:00"; money paid after the
    cut-off is credited the next day (``shared.clock.credited_business_date``), so it is late.
    """
    return cutoff_at(due_on)


def day_after(d: date, days: int = 1) -> date:
    """``d`` plus ``days`` calendar days."""
    return d + timedelta(days=days)
