"""The Kazakhstan working-day calendar read from shared/data/kz_calendar.toml."""

from __future__ import annotations

import tomllib
from datetime import date, datetime, timedelta
from importlib import resources
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.calendar import CalendarDataError, WorkingCalendar, load_kz_calendar, parse_calendar

pytestmark = pytest.mark.unit

CAL = load_kz_calendar()
# Covered years plus a year either side, so the fallback and the year boundaries are exercised.
dates = st.dates(min_value=date(2023, 1, 1), max_value=date(2028, 12, 31))


def raw_data() -> dict[str, Any]:
    text = resources.files("shared").joinpath("data/kz_calendar.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def listed(key: str) -> list[date]:
    return [item["date"] for year in raw_data()["years"].values() for item in year[key]]


def test_covered_years_and_sources() -> None:
    assert CAL.covered_years == frozenset({2024, 2025, 2026, 2027})
    assert load_kz_calendar() is CAL
    for year in CAL.covered_years:
        assert CAL.years[year].sources, year
    assert CAL.years[2027].status == "provisional"
    assert "no transfer decree" in CAL.years[2027].notes.lower()


@pytest.mark.parametrize(
    ("day", "working", "name"),
    [
        # 2024
        (date(2024, 1, 1), False, "New Year"),
        (date(2024, 3, 25), False, None),  # Nauryz Saturday 23 March -> Monday 25 March
        (date(2024, 5, 8), False, None),  # MTSZN order: day off moved from Saturday 4 May
        (date(2024, 6, 16), False, "Kurban Ait (first day)"),  # a Sunday
        (date(2024, 6, 17), True, None),  # religious day off on Sunday is NOT transferred
        (date(2024, 7, 8), False, None),  # Capital Day Saturday 6 July -> Monday 8 July
        (date(2024, 12, 16), False, "Independence Day"),
        # 2025 (brief: Nauryz 21-23 March)
        (date(2025, 1, 3), False, None),  # MTSZN order: day off moved from Sunday 5 January
        (date(2025, 1, 7), False, "Orthodox Christmas"),
        (date(2025, 3, 10), False, None),  # 8 March is a Saturday
        (date(2025, 3, 21), False, "Nauryz meiramy"),
        (date(2025, 3, 22), False, "Nauryz meiramy"),
        (date(2025, 3, 23), False, "Nauryz meiramy"),
        (date(2025, 3, 24), False, None),
        (date(2025, 3, 25), False, None),
        (date(2025, 3, 26), True, None),
        (date(2025, 5, 8), True, None),  # no transfer in 2025
        (date(2025, 6, 6), False, "Kurban Ait (first day)"),
        (date(2025, 9, 1), False, None),  # Constitution Day Saturday 30 August
        (date(2025, 10, 27), False, None),
        # 2026
        (date(2026, 1, 2), False, "New Year"),
        (date(2026, 1, 5), True, None),
        (date(2026, 3, 9), False, None),
        (date(2026, 3, 24), False, None),
        (date(2026, 3, 25), False, None),
        (date(2026, 3, 26), True, None),
        (date(2026, 5, 11), False, None),
        (date(2026, 5, 27), False, "Kurban Ait (first day)"),
        (date(2026, 8, 31), True, None),  # 30 August no longer a holiday (new Constitution)
        (date(2026, 10, 26), False, None),
        # 2027 (provisional)
        (date(2027, 1, 4), False, None),  # New Year 2 January is a Saturday
        (date(2027, 3, 15), False, "Constitution Day"),
        (date(2027, 3, 24), False, None),  # Nauryz Sunday 21 March
        (date(2027, 5, 3), False, None),
        (date(2027, 5, 10), False, None),
        (date(2027, 8, 30), True, None),
    ],
)
def test_known_days(day: date, working: bool, name: str | None) -> None:
    assert CAL.is_working_day(day) is working
    assert CAL.holiday_name(day) == name


@pytest.mark.parametrize(
    ("weekend_day", "day_off"),
    [
        (date(2024, 5, 4), date(2024, 5, 8)),  # Saturday worked
        (date(2025, 1, 5), date(2025, 1, 3)),  # Sunday worked
    ],
)
def test_moved_working_weekend_days(weekend_day: date, day_off: date) -> None:
    assert weekend_day.weekday() >= 5
    assert CAL.is_working_day(weekend_day)
    assert not CAL.is_working_day(day_off)
    assert CAL.years[weekend_day.year].working_days[weekend_day].reason == "decree"


def test_no_moved_working_days_in_2026_2027() -> None:
    assert not CAL.years[2026].working_days
    assert not CAL.years[2027].working_days


def test_every_listed_holiday_and_day_off_is_not_working() -> None:
    for d in listed("holidays") + listed("days_off"):
        assert not CAL.is_working_day(d), d


def test_roll_forward_due_dates() -> None:
    # Brief §4: a due date on a weekend/holiday moves to the first working day after it.
    assert CAL.roll_forward(date(2025, 3, 21)) == date(2025, 3, 26)
    assert CAL.roll_forward(date(2025, 12, 31)) == date(2025, 12, 31)
    assert CAL.roll_forward(date(2026, 1, 1)) == date(2026, 1, 5)
    assert CAL.roll_forward(date(2024, 12, 28)) == date(2024, 12, 30)
    assert CAL.next_working_day(date(2024, 12, 31)) == date(2025, 1, 5)


def test_add_working_days_edges() -> None:
    assert CAL.add_working_days(date(2025, 3, 20), 1) == date(2025, 3, 26)
    assert CAL.add_working_days(date(2025, 3, 22), 0) == date(2025, 3, 26)
    assert CAL.add_working_days(date(2025, 3, 26), 0) == date(2025, 3, 26)
    assert CAL.add_working_days(date(2025, 3, 26), -1) == date(2025, 3, 20)
    assert CAL.add_working_days(date(2024, 12, 30), 2) == date(2025, 1, 5)
    with pytest.raises(TypeError):
        CAL.add_working_days(date(2025, 1, 1), 1.0)  # type: ignore[arg-type]


def test_outside_covered_years_falls_back_to_weekends_and_fixed_holidays() -> None:
    assert not CAL.is_covered(date(2030, 3, 21))
    assert CAL.holiday_name(date(2030, 3, 21)) == "Nauryz meiramy"
    assert not CAL.is_working_day(date(2030, 3, 21))
    # No weekend transfers in the fallback: New Year 2028 falls on Sat/Sun, Monday 3 Jan works.
    assert CAL.holiday_name(date(2028, 1, 1)) == "New Year"
    assert CAL.is_working_day(date(2028, 1, 3))
    assert not CAL.is_working_day(date(2028, 7, 6))  # Capital Day, a Thursday
    assert CAL.holiday_name(date(2023, 8, 30)) == "Constitution Day"
    assert CAL.holiday_name(date(2028, 8, 30)) is None
    assert CAL.holiday_name(date(2028, 3, 15)) == "Constitution Day"
    assert CAL.next_working_day(date(2027, 12, 31)) == date(2028, 1, 3)


def test_datetimes_are_refused() -> None:
    with pytest.raises(TypeError, match="business_date_of"):
        CAL.is_working_day(datetime(2025, 1, 1, 12))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda y: y["working_days"].append({"date": date(2025, 3, 12), "reason": "decree"}),
        lambda y: y["days_off"].append({"date": date(2025, 3, 15), "reason": "transfer"}),
        lambda y: y["days_off"].append({"date": date(2026, 3, 12), "reason": "transfer"}),
        lambda y: y["days_off"].append({"date": date(2025, 4, 1), "reason": "whim"}),
        lambda y: y.update(sources=[]),
    ],
)
def test_inconsistent_data_is_rejected(mutate: Any) -> None:
    raw = raw_data()
    mutate(raw["years"]["2025"])
    with pytest.raises(CalendarDataError):
        parse_calendar(raw)


def test_calendar_from_custom_data() -> None:
    cal: WorkingCalendar = parse_calendar({"schema": 1, "years": {}})
    assert cal.covered_years == frozenset()
    assert cal.is_working_day(date(2025, 3, 21))  # no fallback holidays given: weekends only


@given(dates)
def test_next_working_day_is_first_working_day_after(d: date) -> None:
    nxt = CAL.next_working_day(d)
    assert nxt > d
    assert CAL.is_working_day(nxt)
    gap = d + timedelta(days=1)
    while gap < nxt:
        assert not CAL.is_working_day(gap)
        gap += timedelta(days=1)
    assert CAL.previous_working_day(nxt) <= d


@given(dates)
def test_roll_forward_idempotent(d: date) -> None:
    rolled = CAL.roll_forward(d)
    assert CAL.is_working_day(rolled)
    assert rolled >= d
    assert CAL.roll_forward(rolled) == rolled
    assert (rolled == d) is CAL.is_working_day(d)
    if rolled != d:
        assert rolled == CAL.next_working_day(d)


@given(dates, st.integers(min_value=1, max_value=60))
def test_add_working_days_counts_exactly_n(d: date, n: int) -> None:
    result = CAL.add_working_days(d, n)
    assert result > d
    assert CAL.is_working_day(result)
    assert CAL.working_days_between(d, result) == n
    back = CAL.add_working_days(d, -n)
    assert back < d
    assert CAL.is_working_day(back)
    # Exactly n working days in [back, d).
    assert CAL.working_days_between(back - timedelta(days=1), d - timedelta(days=1)) == n


@given(dates, st.integers(min_value=0, max_value=40), st.integers(min_value=0, max_value=40))
def test_add_working_days_monotone(d: date, a: int, b: int) -> None:
    lo, hi = sorted((a, b))
    assert CAL.add_working_days(d, lo) <= CAL.add_working_days(d, hi)
    if lo < hi:
        assert CAL.add_working_days(d, lo) < CAL.add_working_days(d, hi)
    assert CAL.add_working_days(d, 0) == CAL.roll_forward(d)
