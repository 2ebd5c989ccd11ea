"""Clock, Asia/Almaty business dates and the 20:00 cut-off (domain brief §4, Q1541)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.clock import (
    ALMATY,
    CUTOFF,
    Clock,
    ManualClock,
    SystemClock,
    business_date_of,
    credited_business_date,
    cutoff_at,
    ensure_aware,
    local,
)

pytestmark = pytest.mark.unit


def at_almaty(y: int, m: int, d: int, hh: int, mm: int = 0, ss: int = 0, us: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, us, tzinfo=ALMATY)


def test_almaty_is_the_zone_name_not_an_offset() -> None:
    assert ALMATY.key == "Asia/Almaty"
    assert CUTOFF.hour == 20
    assert CUTOFF.minute == 0
    # Almaty moved from UTC+6 to UTC+5 on 2024-03-01; a fixed offset would get one side wrong.
    assert at_almaty(2024, 2, 15, 12).utcoffset() == timedelta(hours=6)
    assert at_almaty(2025, 6, 1, 12).utcoffset() == timedelta(hours=5)


@pytest.mark.parametrize(
    ("paid_at", "credited"),
    [
        (at_almaty(2025, 6, 10, 19, 59), date(2025, 6, 10)),
        (at_almaty(2025, 6, 10, 19, 59, 59, 999_999), date(2025, 6, 10)),
        (at_almaty(2025, 6, 10, 20, 0), date(2025, 6, 10)),
        (at_almaty(2025, 6, 10, 20, 0, 0, 1), date(2025, 6, 11)),
        (at_almaty(2025, 6, 10, 20, 1), date(2025, 6, 11)),
        (at_almaty(2025, 6, 10, 23, 59, 59), date(2025, 6, 11)),
        (at_almaty(2025, 6, 11, 0, 0), date(2025, 6, 11)),
        # Around New Year: 31 December after 20:00 is credited on 1 January.
        (at_almaty(2025, 12, 31, 19, 59), date(2025, 12, 31)),
        (at_almaty(2025, 12, 31, 20, 0), date(2025, 12, 31)),
        (at_almaty(2025, 12, 31, 20, 1), date(2026, 1, 1)),
        (at_almaty(2024, 2, 28, 20, 1), date(2024, 2, 29)),
    ],
)
def test_cutoff_boundaries(paid_at: datetime, credited: date) -> None:
    assert credited_business_date(paid_at) == credited
    # The same instant expressed in UTC gives the same answer.
    assert credited_business_date(paid_at.astimezone(UTC)) == credited


def test_cutoff_in_utc_terms() -> None:
    # 2025: Almaty is UTC+5, so the cut-off is 15:00 UTC.
    assert cutoff_at(date(2025, 6, 10)).astimezone(UTC) == datetime(2025, 6, 10, 15, 0, tzinfo=UTC)
    assert credited_business_date(datetime(2025, 6, 10, 15, 0, tzinfo=UTC)) == date(2025, 6, 10)
    assert credited_business_date(datetime(2025, 6, 10, 15, 1, tzinfo=UTC)) == date(2025, 6, 11)
    # Before 2024-03-01 Almaty was UTC+6: cut-off at 14:00 UTC.
    assert cutoff_at(date(2024, 1, 10)).astimezone(UTC) == datetime(2024, 1, 10, 14, 0, tzinfo=UTC)
    # 19:30 UTC on 31 Dec is already 00:30 on 1 Jan in Almaty (after midnight, before cut-off).
    assert credited_business_date(datetime(2025, 12, 31, 19, 30, tzinfo=UTC)) == date(2026, 1, 1)


def test_business_date_and_local() -> None:
    instant = datetime(2025, 12, 31, 19, 30, tzinfo=UTC)
    assert business_date_of(instant) == date(2026, 1, 1)
    assert local(instant).tzinfo is ALMATY
    assert local(instant).hour == 0
    assert business_date_of(datetime(2025, 12, 31, 18, 59, tzinfo=UTC)) == date(2025, 12, 31)
    # Another aware zone is fine; only naive values are refused.
    assert business_date_of(datetime(2025, 12, 31, 22, 0, tzinfo=timezone(timedelta(hours=3)))) == date(
        2026, 1, 1
    )


def test_cutoff_is_20_00_aware_almaty() -> None:
    c = cutoff_at(date(2026, 1, 1))
    assert c.tzinfo is ALMATY
    assert (c.hour, c.minute) == (20, 0)
    assert c - datetime(2025, 12, 31, 19, 0, tzinfo=UTC) == timedelta(hours=20)  # Almaty midnight
    with pytest.raises(TypeError):
        cutoff_at(datetime(2026, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    "call",
    [
        lambda: local(datetime(2025, 1, 1, 12)),
        lambda: business_date_of(datetime(2025, 1, 1, 12)),
        lambda: credited_business_date(datetime(2025, 1, 1, 20, 1)),
        lambda: ManualClock(datetime(2025, 1, 1)),
        lambda: ManualClock(datetime(2025, 1, 1, tzinfo=UTC)).set(datetime(2025, 1, 2)),
        lambda: ensure_aware(datetime(2025, 1, 1)),
    ],
)
def test_naive_datetimes_rejected(call: object) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        call()  # type: ignore[operator]


def test_manual_clock() -> None:
    clock = ManualClock(at_almaty(2025, 6, 10, 19, 59))
    assert isinstance(clock, Clock)
    assert clock.now() == datetime(2025, 6, 10, 14, 59, tzinfo=UTC)
    assert clock.now().tzinfo is UTC
    assert business_date_of(clock.now()) == date(2025, 6, 10)
    assert clock.advance(timedelta(minutes=2)) == datetime(2025, 6, 10, 15, 1, tzinfo=UTC)
    assert credited_business_date(clock.now()) == date(2025, 6, 11)
    clock.set(datetime(2024, 1, 1, tzinfo=UTC))
    assert clock.now() == datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="forward"):
        clock.advance(timedelta(seconds=-1))


def test_system_clock_is_aware_utc() -> None:
    clock = SystemClock()
    assert isinstance(clock, Clock)
    now = clock.now()
    assert now.tzinfo is UTC
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)))
def test_credited_date_is_business_date_or_next(instant: datetime) -> None:
    credited = credited_business_date(instant)
    day = business_date_of(instant)
    if local(instant) > cutoff_at(day):
        assert credited == day + timedelta(days=1)
    else:
        assert credited == day
    midnight = datetime.combine(day, time(0), tzinfo=ALMATY)
    assert midnight <= instant < midnight + timedelta(days=1)
