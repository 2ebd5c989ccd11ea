"""shared.calendar: what a calendar file parses into, and each refusal (found by ``make mutation``).

``test_calendar.py`` checks the shipped Kazakhstan calendar; these parse small documents made here,
so every field and every check of ``parse_calendar`` is read by a test.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import pytest

from shared.calendar import (
    CalendarDataError,
    DayEntry,
    FixedHoliday,
    WorkingCalendar,
    YearData,
    parse_calendar,
)

pytestmark = pytest.mark.unit

Doc = dict[str, Any]
# 2030: 1 January (Tuesday) a holiday, Monday 31 December 2029 is not in the year; Friday 4 January
# a day off moved to Saturday 12 January.
DOC: Doc = {
    "schema": 1,
    "years": {
        "2030": {
            "holidays": [{"date": date(2030, 1, 1), "name": "New Year"}],
            "days_off": [{"date": date(2030, 1, 4), "reason": "transfer", "note": "bridge"}],
            "working_days": [{"date": date(2030, 1, 12), "reason": "transfer"}],
            "sources": ["decree 1"],
            "status": "provisional",
            "notes": "test year",
        }
    },
    "fallback_holidays": [
        {"month": 3, "day": 8, "name": "Women's Day"},
        {"month": 12, "day": 16, "name": "Independence Day", "from_year": 1991, "until_year": 2040},
    ],
}


def parsed(change: Callable[[Doc], object] = lambda d: None) -> WorkingCalendar:
    doc = copy.deepcopy(DOC)
    change(doc)
    return parse_calendar(doc)


def test_a_calendar_document_parses_into_exactly_these_values() -> None:
    calendar = parsed()
    assert calendar.years == {
        2030: YearData(
            year=2030,
            holidays={date(2030, 1, 1): "New Year"},
            days_off={date(2030, 1, 4): DayEntry(date(2030, 1, 4), "transfer", "bridge")},
            working_days={date(2030, 1, 12): DayEntry(date(2030, 1, 12), "transfer", "")},
            sources=("decree 1",),
            status="provisional",
            notes="test year",
        )
    }
    assert calendar.fallback_holidays == (
        FixedHoliday(3, 8, "Women's Day"),
        FixedHoliday(12, 16, "Independence Day", 1991, 2040),
    )


def test_a_year_without_optional_parts_gets_the_defaults() -> None:
    calendar = parse_calendar({"schema": 1, "years": {"2031": {"sources": ["s"]}}})
    assert calendar.years[2031] == YearData(2031, {}, {}, {}, ("s",), "verified", "")
    assert parse_calendar({"schema": 1}).years == {}


def test_the_parsed_days_are_what_the_calendar_answers() -> None:
    calendar = parsed()
    assert not calendar.is_working_day(date(2030, 1, 1))
    assert not calendar.is_working_day(date(2030, 1, 4))
    assert calendar.is_working_day(date(2030, 1, 12))
    assert not calendar.is_working_day(date(2030, 1, 13))
    assert calendar.holiday_name(date(2030, 1, 1)) == "New Year"
    assert calendar.holiday_name(date(2030, 3, 8)) is None  # covered year: the data decides
    # Outside the covered years the fixed holidays apply, inside their years of force only.
    assert calendar.holiday_name(date(2031, 3, 8)) == "Women's Day"
    assert calendar.is_working_day(date(2029, 12, 17))  # a Monday, no holiday
    assert not calendar.is_working_day(date(2032, 3, 8))  # a Monday, but a fixed holiday
    assert calendar.holiday_name(date(2040, 12, 16)) == "Independence Day"
    assert calendar.holiday_name(date(2041, 12, 16)) is None
    assert calendar.holiday_name(date(1990, 12, 16)) is None
    assert calendar.holiday_name(date(1991, 12, 16)) == "Independence Day"


def test_counting_working_days() -> None:
    calendar = parsed()
    # Mon 7 … Sat 12 January 2030: six working days (the Saturday works, 4 Jan was before).
    assert calendar.working_days_between(date(2030, 1, 6), date(2030, 1, 12)) == 6
    assert calendar.working_days_between(date(2030, 1, 12), date(2030, 1, 12)) == 0
    assert calendar.working_days_between(date(2030, 1, 13), date(2030, 1, 12)) == 0
    assert calendar.add_working_days(date(2030, 1, 11), 1) == date(2030, 1, 12)
    assert calendar.add_working_days(date(2030, 1, 14), -2) == date(2030, 1, 11)
    with pytest.raises(TypeError, match=r"^n must be an int, got bool$"):
        calendar.add_working_days(date(2030, 1, 1), True)
    with pytest.raises(TypeError, match=r"^expected a date, got datetime; use clock\.business_date_of\(\)$"):
        calendar.is_working_day(datetime(2030, 1, 1))


def _year(**changes: Any) -> Callable[[Doc], object]:
    return lambda d: d["years"]["2030"].update(changes)


REFUSED: list[tuple[str, Callable[[Doc], object], str]] = [
    ("another schema", lambda d: d.update(schema=2), "unsupported calendar schema 2"),
    ("no schema", lambda d: d.pop("schema"), "unsupported calendar schema None"),
    (
        "a holiday without a date",
        _year(holidays=[{"date": "2030-01-01", "name": "x"}]),
        "holiday entry {'date': '2030-01-01', 'name': 'x'} needs a TOML date",
    ),
    (
        "a holiday at a time",
        _year(holidays=[{"date": datetime(2030, 1, 1), "name": "x"}]),
        f"holiday entry {{'date': {datetime(2030, 1, 1)!r}, 'name': 'x'}} needs a TOML date",
    ),
    (
        "a holiday twice",
        _year(holidays=[{"date": date(2030, 1, 1), "name": "a"}, {"date": date(2030, 1, 1), "name": "b"}]),
        "holiday 2030-01-01 is listed twice",
    ),
    (
        "a day off without a date",
        _year(days_off=[{"date": "x", "reason": "transfer"}]),
        "day off entry {'date': 'x', 'reason': 'transfer'} needs a TOML date",
    ),
    (
        "a day off for no reason",
        _year(days_off=[{"date": date(2030, 1, 4), "reason": "whim"}]),
        "day off 2030-01-04: reason must be 'transfer' or 'decree'",
    ),
    (
        "a working day twice",
        _year(
            working_days=[
                {"date": date(2030, 1, 12), "reason": "decree"},
                {"date": date(2030, 1, 12), "reason": "decree"},
            ]
        ),
        "working day 2030-01-12 is listed twice",
    ),
    (
        "a date under another year",
        _year(holidays=[{"date": date(2031, 1, 1), "name": "x"}]),
        "2031-01-01 is listed under year 2030",
    ),
    (
        "a day off on a weekend",
        _year(days_off=[{"date": date(2030, 1, 5), "reason": "transfer"}]),
        "day off 2030-01-05 is already a weekend day",
    ),
    (
        "a day off on a holiday",
        _year(days_off=[{"date": date(2030, 1, 1), "reason": "transfer"}]),
        "day off 2030-01-01 is also a holiday",
    ),
    (
        "a working weekday",
        _year(working_days=[{"date": date(2030, 1, 11), "reason": "transfer"}]),
        "working day 2030-01-11 is not a Saturday or Sunday",
    ),
    ("no source", _year(sources=[]), "year 2030 cites no source"),
]


@pytest.mark.parametrize(
    ("change", "message"), [(c, m) for _, c, m in REFUSED], ids=[n for n, _, _ in REFUSED]
)
def test_inconsistent_calendar_data_is_refused(change: Callable[[Doc], object], message: str) -> None:
    with pytest.raises(CalendarDataError, match=f"^{re.escape(message)}$"):
        parsed(change)


def test_a_working_day_on_a_holiday_is_refused() -> None:
    data = YearData(
        2030,
        {date(2030, 1, 12): "x"},
        {},
        {date(2030, 1, 12): DayEntry(date(2030, 1, 12), "decree")},
        ("s",),
    )
    with pytest.raises(CalendarDataError, match=r"^working day 2030-01-12 is a holiday$"):
        WorkingCalendar({2030: data})
