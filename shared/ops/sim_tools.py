"""The simulated parts of a development platform, for the CLI: its clock and its SMS gateway.

``make run`` simulates time with one offset file every service reads (``AQSHA_CLOCK_FILE``,
``shared.clock.OffsetFileClock``) and simulates notify's SMS gateway in its supervisor
(``shared.ops.platform.Gateways``, ``AQSHA_GATEWAYS_URL``). Both are named in the CLI's profile.
A real-time platform has no clock file, and a real SMS gateway cannot be read: the commands say so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Final

import httpx

from shared.clock import ALMATY, CUTOFF, OffsetFileClock, business_date_of, ensure_aware, write_clock_offset
from shared.ops.common import EXIT_USAGE, OpsError
from shared.ops.profile import GATEWAYS_ENV
from shared.settings import Settings

_DURATION_RE: Final = re.compile(r"(\d+)\s*(w|d|h|m|s)")
_UNITS: Final = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
#: A one-time code in an SMS (payments' own, or a card issuer's 3-D Secure code).
CODE_RE: Final = re.compile(r"(?<!\d)\d{6}(?!\d)")


# -------------------------------------------------------------------------------------------- clock
def clock_file(settings: Settings) -> Path:
    """The platform's clock file; ``OpsError`` (usage) on a real-time platform (none configured)."""
    if settings.clock_file is None:
        raise OpsError(
            "no simulated clock: this platform runs on real time (AQSHA_CLOCK_FILE is not set; "
            "`make run` sets it in its profile)",
            EXIT_USAGE,
        )
    return Path(settings.clock_file)


def clock_state(path: Path) -> dict[str, Any]:
    """The simulated time now: instant (Asia/Almaty), business date, cut-off, offset from real time."""
    clock = OffsetFileClock(path)
    try:
        offset = clock.offset()
    except (OSError, ValueError) as exc:
        raise OpsError(f"cannot read the clock file {path}: {exc}") from None
    now = (datetime.now(UTC) + offset).astimezone(ALMATY)
    return {
        "clock_file": path,
        "now": now,
        "business_date": business_date_of(now),
        "after_cutoff": now.time() > CUTOFF,
        "offset_s": round(offset.total_seconds(), 3),
    }


def parse_moment(text: str) -> datetime:
    """``2025-11-24`` (00:00), ``2025-11-24T19:59`` or ``2025-11-24 19:59:30``: Asia/Almaty unless the text
    names a zone (``...Z``, ``+05:00``); ``OpsError`` (usage) otherwise."""
    value = text.strip()
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(0, 0), tzinfo=ALMATY)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise OpsError(
            f"invalid time {text!r}: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS] (Asia/Almaty)", EXIT_USAGE
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=ALMATY)


def parse_duration(text: str) -> timedelta:
    """``90m``, ``3h``, ``2d``, ``1w``, ``1d12h`` (weeks, days, hours, minutes, seconds), else OpsError."""
    value = text.strip().lower().replace(" ", "")
    parts = _DURATION_RE.findall(value)
    if not value or "".join(n + u for n, u in parts) != value:
        raise OpsError(f"invalid duration {text!r}: expected e.g. 90m, 3h, 2d, 1w or 1d12h", EXIT_USAGE)
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise OpsError(f"invalid duration {text!r}: the clock only moves forward by advance", EXIT_USAGE)
    return timedelta(seconds=seconds)


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``tail --since``: a moment (``parse_moment``) or a duration ago (``15m``, ``2h``, ``1d``) of real time:
    record timestamps are the producers' wall clock, not the simulated clock."""
    value = text.strip()
    if value and value[0].isdigit() and value[-1].lower() in _UNITS and "-" not in value:
        return (now or datetime.now(UTC)) - parse_duration(value)
    return parse_moment(value)


def set_clock(path: Path, target: datetime, *, backwards: bool = False) -> dict[str, Any]:
    """Make every service's clock read ``target`` now (and run on from there); return the new state.

    The first move of a run may go anywhere (a fresh platform runs at real time); once the clock was
    set, moving it back needs ``backwards`` (bills and watermarks already recorded stay as they are).
    """
    target = ensure_aware(target, "target")
    before = clock_state(path)["now"]
    if target < before and path.exists() and not backwards:
        raise OpsError(
            f"{target.astimezone(ALMATY):%d.%m.%Y %H:%M} is before the simulated now "
            f"({before:%d.%m.%Y %H:%M}); pass --backwards to move the clock back",
            EXIT_USAGE,
        )
    try:
        write_clock_offset(path, target)
    except OSError as exc:
        raise OpsError(f"cannot write the clock file {path}: {exc.strerror}") from None
    return clock_state(path)


def advance_clock(path: Path, delta: timedelta) -> dict[str, Any]:
    """Move the simulated clock forward by ``delta``; return the new state."""
    return set_clock(path, clock_state(path)["now"] + delta)


def render_clock(state: dict[str, Any]) -> str:
    """The simulated time for humans."""
    now = state["now"]
    cut = "after" if state["after_cutoff"] else "before"
    offset = timedelta(seconds=abs(state["offset_s"]))
    ahead = "ahead of" if state["offset_s"] >= 0 else "behind"
    days, rest = divmod(int(offset.total_seconds()), 86400)
    hours, rest = divmod(rest, 3600)
    return (
        f"simulated time {now:%a %d.%m.%Y %H:%M:%S} Asia/Almaty (business date {state['business_date']}, "
        f"{cut} the 20:00 cut-off), {days} d {hours} h {rest // 60} min {ahead} real time; "
        f"clock file {state['clock_file']}"
    )


# ---------------------------------------------------------------------------------------------- SMS
def gateways_url(environ: Mapping[str, str]) -> str:
    """The simulated gateways' base URL; ``OpsError`` (usage) when there is none."""
    url = environ.get(GATEWAYS_ENV, "").strip().rstrip("/")
    if not url:
        raise OpsError(
            f"no simulated SMS gateway: {GATEWAYS_ENV} is not set (`make run` sets it in its profile; "
            "a real SMS gateway cannot be read back)",
            EXIT_USAGE,
        )
    return url


async def read_sms(url: str, phone: str | None = None) -> list[dict[str, Any]]:
    """The SMS the simulated gateway received (for ``phone``: by its last ten digits), oldest first."""
    params = {"to": phone} if phone else None
    try:
        async with httpx.AsyncClient(timeout=10.0) as client:
            answer = await client.get(f"{url}/sms", params=params)
    except httpx.HTTPError as exc:
        raise OpsError(f"cannot reach the simulated SMS gateway at {url}: {exc!r}") from None
    if answer.status_code != 200:
        raise OpsError(
            f"the SMS gateway at {url} answered {answer.status_code}: not make run's simulated one?"
        )
    messages = answer.json()
    if not isinstance(messages, list):
        raise OpsError(f"the SMS gateway at {url} did not answer with a list")
    return [m for m in messages if isinstance(m, dict)]


def last_code(messages: list[dict[str, Any]]) -> str | None:
    """The one-time code of the newest SMS that carries one."""
    for message in reversed(messages):
        found = CODE_RE.search(str(message.get("text", "")))
        if found:
            return found.group(0)
    return None


def render_sms(messages: list[dict[str, Any]], phone: str | None) -> str:
    """The SMS for humans, oldest first (a simulated phone: texts as the customer reads them)."""
    if not messages:
        return f"no SMS to {phone}" if phone else "no SMS sent yet"
    lines = []
    for m in messages:
        kind = m.get("event_type") or "-"
        text = " ".join(str(m.get("text", "")).split())
        lines.append(f"{m.get('to', '?')}  {kind:<20} {text}")
    return "\n".join(lines)
