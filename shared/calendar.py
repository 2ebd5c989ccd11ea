"""The Kazakhstan working-day calendar (five-day week), loaded from data.

Domain brief §4 (002): if a Red bill's due date falls on a weekend or public holiday, paying on
the first working day after it incurs no penalty; that needs public holidays and government-moved
working days per year, as data. The data is ``shared/data/kz_calendar.toml``; this module never
computes a holiday for a covered year, it only reads the file (see ``docs/calendar.md``).

Outside the covered years the calendar does not raise: it falls back to Saturday/Sunday plus the
fixed-date statutory holidays listed in the data file (``fallback_holidays``), without weekend
transfers, Kurban Ait or decrees. ``is_covered`` tells callers which regime answered.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any, Final, Literal

_ONE_DAY: Final = timedelta(days=1)
# A working day is always found within a couple of weeks; the cap turns corrupt data (every day
# off) into an error instead of an endless loop.
_MAX_SCAN_DAYS: Final = 366
DATA_PACKAGE: Final = "shared"
DATA_FILE: Final = "data/kz_calendar.toml"


class CalendarDataError(ValueError):
    """Raised when the calendar data file is inconsistent."""


@dataclass(frozen=True, slots=True)
class FixedHoliday:
    """A statutory holiday on a fixed month/day, used only outside the covered years."""

    month: int
    day: int
    name: str
    from_year: int | None = None
    until_year: int | None = None

    def applies_to(self, year: int) -> bool:
        """Return whether the holiday is in force in ``year``."""
        if self.from_year is not None and year < self.from_year:
            return False
        return self.until_year is None or year <= self.until_year


@dataclass(frozen=True, slots=True)
class DayEntry:
    """One dated entry from the data file: a day off or a working weekend day, with its reason."""

    day: date
    reason: Literal["transfer", "decree"]
    note: str = ""


@dataclass(frozen=True, slots=True)
class YearData:
    """Everything the data file says about one year."""

    year: int
    holidays: Mapping[date, str]
    days_off: Mapping[date, DayEntry]
    working_days: Mapping[date, DayEntry]
    sources: tuple[str, ...]
    status: str = "verified"
    notes: str = ""


@dataclass(frozen=True, slots=True)
class WorkingCalendar:
    """Answers "is this a working day?" for Kazakhstan; build it with ``load_kz_calendar``."""

    years: Mapping[int, YearData]
    fallback_holidays: tuple[FixedHoliday, ...] = ()
    _non_working: frozenset[date] = field(init=False, repr=False, compare=False)
    _working_weekend: frozenset[date] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        non_working: set[date] = set()
        working_weekend: set[date] = set()
        for year, data in self.years.items():
            _validate_year(year, data)
            non_working.update(data.holidays)
            non_working.update(data.days_off)
            working_weekend.update(data.working_days)
        object.__setattr__(self, "_non_working", frozenset(non_working))
        object.__setattr__(self, "_working_weekend", frozenset(working_weekend))

    @property
    def covered_years(self) -> frozenset[int]:
        """Return the years for which the data file holds the full calendar."""
        return frozenset(self.years)

    def is_covered(self, d: date) -> bool:
        """Return whether ``d`` is answered from data (True) or from the Sat/Sun fallback."""
        return _plain(d).year in self.years

    def is_working_day(self, d: date) -> bool:
        """Return whether ``d`` is a working day under a five-day week."""
        d = _plain(d)
        if d.year in self.years:
            if d in self._working_weekend:
                return True
            return d.weekday() < 5 and d not in self._non_working
        return d.weekday() < 5 and self._fallback_name(d) is None

    def holiday_name(self, d: date) -> str | None:
        """Return the holiday's name if ``d`` is a public holiday or religious day off, else None."""
        d = _plain(d)
        data = self.years.get(d.year)
        if data is not None:
            return data.holidays.get(d)
        return self._fallback_name(d)

    def next_working_day(self, d: date) -> date:
        """Return the first working day strictly after ``d``."""
        return self._scan(_plain(d) + _ONE_DAY, _ONE_DAY)

    def previous_working_day(self, d: date) -> date:
        """Return the last working day strictly before ``d``."""
        return self._scan(_plain(d) - _ONE_DAY, -_ONE_DAY)

    def roll_forward(self, d: date) -> date:
        """Return ``d`` if it is a working day, else the next working day after it.

        Domain brief §4 (002): a due date on a weekend or holiday moves to the first working day
        after it, and paying then incurs no penalty.
        """
        return self._scan(_plain(d), _ONE_DAY)

    def add_working_days(self, d: date, n: int) -> date:
        """Return the ``n``-th working day after ``d`` (``d`` itself never counts).

        * ``n >= 1``: exactly ``n`` working days lie in ``(d, result]`` and ``result`` is working.
        * ``n == 0``: ``roll_forward(d)``, so the result is always a working day.
        * ``n < 0``: the ``|n|``-th working day strictly before ``d`` (counting backwards).
        """
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"n must be an int, got {type(n).__name__}")
        current = _plain(d)
        if n == 0:
            return self.roll_forward(current)
        step = self.next_working_day if n > 0 else self.previous_working_day
        for _ in range(abs(n)):
            current = step(current)
        return current

    def working_days_between(self, start: date, end: date) -> int:
        """Return how many working days lie in the half-open range ``(start, end]``."""
        start, end = _plain(start), _plain(end)
        if end <= start:
            return 0
        count = 0
        current = start + _ONE_DAY
        while current <= end:
            count += self.is_working_day(current)
            current += _ONE_DAY
        return count

    def _fallback_name(self, d: date) -> str | None:
        for holiday in self.fallback_holidays:
            if holiday.month == d.month and holiday.day == d.day and holiday.applies_to(d.year):
                return holiday.name
        return None

    def _scan(self, start: date, step: timedelta) -> date:
        current = start
        for _ in range(_MAX_SCAN_DAYS):
            if self.is_working_day(current):
                return current
            current += step
        raise CalendarDataError(f"no working day within {_MAX_SCAN_DAYS} days of {start}")


def _plain(d: date) -> date:
    # A datetime is a date subclass: an instant must first be turned into an Almaty business
    # date (shared.clock.business_date_of), never truncated here in some other zone.
    if isinstance(d, datetime) or not isinstance(d, date):
        raise TypeError(f"expected a date, got {type(d).__name__}; use clock.business_date_of()")
    return d


def _validate_year(year: int, data: YearData) -> None:
    dated: Iterable[date] = (*data.holidays, *data.days_off, *data.working_days)
    for d in dated:
        if d.year != year:
            raise CalendarDataError(f"{d} is listed under year {year}")
    for d in data.days_off:
        if d.weekday() >= 5:
            raise CalendarDataError(f"day off {d} is already a weekend day")
        if d in data.holidays:
            raise CalendarDataError(f"day off {d} is also a holiday")
    for d in data.working_days:
        if d.weekday() < 5:
            raise CalendarDataError(f"working day {d} is not a Saturday or Sunday")
        if d in data.holidays:
            raise CalendarDataError(f"working day {d} is a holiday")
    if not data.sources:
        raise CalendarDataError(f"year {year} cites no source")


def _entries(raw: list[dict[str, Any]], what: str) -> dict[date, DayEntry]:
    out: dict[date, DayEntry] = {}
    for item in raw:
        day, reason = item["date"], item["reason"]
        if not isinstance(day, date) or isinstance(day, datetime):
            raise CalendarDataError(f"{what} entry {item!r} needs a TOML date")
        if reason not in ("transfer", "decree"):
            raise CalendarDataError(f"{what} {day}: reason must be 'transfer' or 'decree'")
        if day in out:
            raise CalendarDataError(f"{what} {day} is listed twice")
        out[day] = DayEntry(day=day, reason=reason, note=str(item.get("note", "")))
    return out


def parse_calendar(raw: Mapping[str, Any]) -> WorkingCalendar:
    """Build a calendar from the parsed TOML document (see ``shared/data/kz_calendar.toml``)."""
    if raw.get("schema") != 1:
        raise CalendarDataError(f"unsupported calendar schema {raw.get('schema')!r}")
    years: dict[int, YearData] = {}
    for key, body in raw.get("years", {}).items():
        year = int(key)
        holidays: dict[date, str] = {}
        for item in body.get("holidays", []):
            day = item["date"]
            if not isinstance(day, date) or isinstance(day, datetime):
                raise CalendarDataError(f"holiday entry {item!r} needs a TOML date")
            if day in holidays:
                raise CalendarDataError(f"holiday {day} is listed twice")
            holidays[day] = str(item["name"])
        years[year] = YearData(
            year=year,
            holidays=holidays,
            days_off=_entries(body.get("days_off", []), "day off"),
            working_days=_entries(body.get("working_days", []), "working day"),
            sources=tuple(str(s) for s in body.get("sources", [])),
            status=str(body.get("status", "verified")),
            notes=str(body.get("notes", "")),
        )
    fallback = tuple(
        FixedHoliday(
            month=int(h["month"]),
            day=int(h["day"]),
            name=str(h["name"]),
            from_year=h.get("from_year"),
            until_year=h.get("until_year"),
        )
        for h in raw.get("fallback_holidays", [])
    )
    return WorkingCalendar(years=years, fallback_holidays=fallback)


@cache
def load_kz_calendar() -> WorkingCalendar:
    """Return the packaged Kazakhstan calendar (parsed once per process)."""
    text = resources.files(DATA_PACKAGE).joinpath(DATA_FILE).read_text(encoding="utf-8")
    return parse_calendar(tomllib.loads(text))
