"""Injectable time, Asia/Almaty business dates and the 20:00 payment cut-off.

Every instant in aqsha is an *aware* datetime; naive datetimes are rejected with ``ValueError``
everywhere in this module, because a naive value silently means "whatever zone the host runs
in". Business time is ``Asia/Almaty`` **by zone name**, never a fixed offset: Kazakhstan moved
Almaty from UTC+6 to UTC+5 on 2024-03-01 (IANA tzdata 2024a), and only the named zone knows that.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Final, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

ALMATY: Final = ZoneInfo("Asia/Almaty")
# Domain brief §4 (002): a bill must be paid "by 20:00 on the planned date"; money paid after
# 20:00 is credited the next day (Q1541).
CUTOFF: Final = time(20, 0)


def ensure_aware(dt: datetime, name: str = "datetime") -> datetime:
    """Return ``dt`` unchanged if it is timezone-aware, else raise ``ValueError``."""
    if not isinstance(dt, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(dt).__name__}")
    if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
        raise ValueError(
            f"{name} must be timezone-aware (got naive {dt.isoformat()}); "
            "attach a zone, e.g. datetime.now(UTC) or dt.replace(tzinfo=ALMATY)"
        )
    return dt


@runtime_checkable
class Clock(Protocol):
    """A source of the current instant; inject it instead of calling ``datetime.now``."""

    def now(self) -> datetime:
        """Return the current instant as an aware UTC datetime."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        """Return the current instant as an aware UTC datetime."""
        return datetime.now(UTC)


class ManualClock:
    """A clock that tests and operators move by hand; it never moves on its own."""

    def __init__(self, start: datetime) -> None:
        self._now = ensure_aware(start, "start").astimezone(UTC)

    def now(self) -> datetime:
        """Return the clock's current instant in UTC."""
        return self._now

    def set(self, dt: datetime) -> None:
        """Move the clock to ``dt`` (aware; backwards is allowed)."""
        self._now = ensure_aware(dt, "dt").astimezone(UTC)

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward by ``delta`` (must not be negative) and return the new instant."""
        if not isinstance(delta, timedelta):
            raise TypeError(f"delta must be a timedelta, got {type(delta).__name__}")
        if delta < timedelta(0):
            raise ValueError(f"advance() only moves forward, got {delta}; use set() to go back")
        self._now = self._now + delta
        return self._now


class OffsetFileClock:
    """The system clock shifted by an offset (seconds) read from a file: one simulated time, many processes.

    ``make run``'s demo and the chaos runs move business time for four service processes at once by
    rewriting one small file (:func:`write_clock_offset`); every process sees the change on its next
    ``now()``. The file is re-read only when its mtime changes. A missing or empty file means no offset.
    Time keeps flowing at the normal rate in between, so timeouts and ordering behave as in production.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._mtime_ns: int | None = None
        self._offset = timedelta(0)

    def offset(self) -> timedelta:
        """The current offset (re-read if the file changed)."""
        try:
            mtime = self._path.stat().st_mtime_ns
        except FileNotFoundError:
            self._mtime_ns, self._offset = None, timedelta(0)
            return self._offset
        if mtime != self._mtime_ns:
            text = self._path.read_text(encoding="ascii").strip()
            self._offset = timedelta(seconds=float(text)) if text else timedelta(0)
            self._mtime_ns = mtime
        return self._offset

    def now(self) -> datetime:
        """Return the shifted current instant as an aware UTC datetime."""
        return datetime.now(UTC) + self.offset()


def write_clock_offset(path: Path, target: datetime) -> None:
    """Make every :class:`OffsetFileClock` on ``path`` read ``target`` now (and move on from there)."""
    offset = (ensure_aware(target, "target") - datetime.now(UTC)).total_seconds()
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{offset:.6f}\n", encoding="ascii")
    tmp.replace(path)


def clock_from_file(path: Path | None) -> Clock:
    """``OffsetFileClock(path)`` when a path is configured, else the system clock."""
    return OffsetFileClock(path) if path is not None else SystemClock()


def local(dt: datetime) -> datetime:
    """Return the same instant expressed in Asia/Almaty."""
    return ensure_aware(dt, "dt").astimezone(ALMATY)


def business_date_of(dt: datetime) -> date:
    """Return the Almaty calendar date on which the instant ``dt`` falls."""
    return local(dt).date()


def credited_business_date(paid_at: datetime) -> date:
    """Return the business date a payment made at ``paid_at`` is credited on.

    Rule (domain brief §4, product 002, Q1541): money paid **after** 20:00 Asia/Almaty is
    credited the next calendar day. The cut-off instant itself belongs to the same day:
    19:59:59 and 20:00:00.000000 are credited today, 20:00:00.000001 is credited tomorrow.
    """
    at = local(paid_at)
    if at.time() > CUTOFF:
        return at.date() + timedelta(days=1)
    return at.date()


def cutoff_at(d: date) -> datetime:
    """Return 20:00 Asia/Almaty on ``d`` as an aware datetime (the daily payment cut-off)."""
    return datetime.combine(_plain_date(d), CUTOFF, tzinfo=ALMATY)


def _plain_date(d: date) -> date:
    # A datetime is a date subclass; accepting one here would silently drop its time and zone.
    if isinstance(d, datetime) or not isinstance(d, date):
        raise TypeError(f"expected a date, got {type(d).__name__}")
    return d
