"""shared.clock: the file-driven clock of ``make run`` and the chaos runs, and what the clock refuses.

Found by ``make mutation``: the offset file had no unit test at all, and the refusals' messages
(which name the argument at fault) were never read.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from shared.clock import (
    ALMATY,
    ManualClock,
    OffsetFileClock,
    SystemClock,
    clock_from_file,
    cutoff_at,
    ensure_aware,
    local,
    write_clock_offset,
)

pytestmark = pytest.mark.unit

NAIVE = datetime(2025, 6, 10, 12, 0)
NAIVE_HINT = "attach a zone, e.g. datetime.now(UTC) or dt.replace(tzinfo=ALMATY)"


def naive_message(name: str) -> str:
    return f"^{re.escape(f'{name} must be timezone-aware (got naive {NAIVE.isoformat()}); {NAIVE_HINT}')}$"


def test_a_missing_or_empty_offset_file_is_no_offset(tmp_path: Path) -> None:
    clock = OffsetFileClock(tmp_path / "offset")
    assert clock.offset() == timedelta(0)
    (tmp_path / "offset").write_text("\n", encoding="ascii")
    assert clock.offset() == timedelta(0)


def test_the_offset_is_read_in_seconds_and_reread_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "offset"
    path.write_text("90.5\n", encoding="ascii")
    clock = OffsetFileClock(path)
    assert clock.offset() == timedelta(seconds=90.5)
    path.write_text("-3600\n", encoding="ascii")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    assert clock.offset() == timedelta(hours=-1)
    before = datetime.now(UTC)
    now = clock.now()
    assert now.tzinfo is UTC
    assert (
        before - timedelta(hours=1, seconds=1)
        <= now
        <= datetime.now(UTC) - timedelta(hours=1) + timedelta(seconds=1)
    )
    path.unlink()
    assert clock.offset() == timedelta(0)


def test_the_file_is_read_only_when_it_changed(tmp_path: Path) -> None:
    path = tmp_path / "offset"
    path.write_text("60\n", encoding="ascii")
    clock = OffsetFileClock(path)
    assert clock.offset() == timedelta(seconds=60)
    stamp = path.stat().st_mtime_ns
    path.write_text("120\n", encoding="ascii")
    os.utime(path, ns=(stamp, stamp))  # same mtime: the cached offset stands
    assert clock.offset() == timedelta(seconds=60)


def test_write_clock_offset_makes_every_file_clock_read_the_target(tmp_path: Path) -> None:
    path = tmp_path / "offset"
    target = datetime(2030, 1, 1, 20, 0, tzinfo=ALMATY)
    write_clock_offset(path, target)
    assert not (tmp_path / "offset.tmp").exists()
    text = path.read_text(encoding="ascii")
    assert re.fullmatch(r"-?\d+\.\d{6}\n", text)
    read = OffsetFileClock(path).now()
    assert abs(read - target) < timedelta(seconds=5)
    with pytest.raises(ValueError, match=naive_message("target")):
        write_clock_offset(path, NAIVE)


def test_clock_from_file_chooses_by_the_path(tmp_path: Path) -> None:
    assert isinstance(clock_from_file(None), SystemClock)
    clock = clock_from_file(tmp_path / "offset")
    assert isinstance(clock, OffsetFileClock)
    (tmp_path / "offset").write_text("7\n", encoding="ascii")
    assert clock.offset() == timedelta(seconds=7)


def test_naive_instants_are_refused_with_the_argument_named() -> None:
    with pytest.raises(ValueError, match=naive_message("datetime")):
        ensure_aware(NAIVE)
    with pytest.raises(ValueError, match=naive_message("dt")):
        local(NAIVE)
    with pytest.raises(ValueError, match=naive_message("start")):
        ManualClock(NAIVE)
    with pytest.raises(ValueError, match=naive_message("dt")):
        ManualClock(datetime(2025, 1, 1, tzinfo=UTC)).set(NAIVE)


def test_what_is_not_a_datetime_or_a_date_is_named() -> None:
    with pytest.raises(TypeError, match=r"^datetime must be a datetime, got date$"):
        ensure_aware(date(2025, 1, 1))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^expected a date, got datetime$"):
        cutoff_at(datetime(2025, 1, 1, tzinfo=UTC))
    with pytest.raises(TypeError, match=r"^expected a date, got str$"):
        cutoff_at("2025-01-01")  # type: ignore[arg-type]
    clock = ManualClock(datetime(2025, 1, 1, tzinfo=UTC))
    with pytest.raises(TypeError, match=r"^delta must be a timedelta, got int$"):
        clock.advance(5)  # type: ignore[arg-type]


def test_the_manual_clock_moves_only_forward_by_advance() -> None:
    clock = ManualClock(datetime(2025, 1, 1, 6, 0, tzinfo=ALMATY))
    assert clock.now() == datetime(2025, 1, 1, 1, 0, tzinfo=UTC)
    assert clock.advance(timedelta(0)) == datetime(2025, 1, 1, 1, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match=r"only moves forward"):
        clock.advance(timedelta(microseconds=-1))
    clock.set(datetime(2024, 12, 31, 23, 0, tzinfo=ALMATY))
    assert clock.now() == datetime(2024, 12, 31, 18, 0, tzinfo=UTC)
    assert clock.now().tzinfo is UTC


def test_the_cutoff_is_an_almaty_time() -> None:
    assert cutoff_at(date(2025, 3, 1)) == datetime(2025, 3, 1, 15, 0, tzinfo=UTC)
