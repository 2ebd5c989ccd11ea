"""Small pieces shared by the ``aqsha`` operator commands: errors, JSON, tables, topic names, clients."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from shared.settings import KafkaSettings
from shared.topics import DAY_MS, DLQ_SUFFIX, FOREVER, MINUTE_MS, TopicSpec, all_topics, topic_by_name

#: Exit code of a usage or validation error (nothing was done).
EXIT_USAGE = 2
#: Exit code of an operational failure (broker or database unreachable, record not found...).
EXIT_FAILURE = 1


class OpsError(Exception):
    """A one-line, operator-facing error with the process exit code to use."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def jsonable(value: Any) -> Any:
    """``value`` with UUIDs, dates, decimals, enums, bytes, models and dataclasses made JSON-friendly."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if is_dataclass(value) and not isinstance(value, type):
        return jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (UUID, Decimal, PurePath)):
        return str(value)
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    return value


def dumps(value: Any, *, indent: int | None = None) -> str:
    """JSON text of ``value`` (see ``jsonable``), non-ASCII kept readable."""
    return json.dumps(jsonable(value), ensure_ascii=False, indent=indent)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain left-aligned text table (numbers right-aligned) with a header rule."""
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [
        all(isinstance(row[i], (int, float)) and not isinstance(row[i], bool) for row in rows) and bool(rows)
        for i in range(len(headers))
    ]

    def line(row: list[str]) -> str:
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    out = [line(cells[0]), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in cells[1:]]
    return "\n".join(out)


def fmt_retention(ms: int) -> str:
    """``-1`` → ``forever``, whole days → ``7 d``, else minutes → ``10 min`` (or ms)."""
    if ms == FOREVER:
        return "forever"
    if ms % DAY_MS == 0:
        return f"{ms // DAY_MS} d"
    if ms % (60 * MINUTE_MS) == 0:
        return f"{ms // (60 * MINUTE_MS)} h"
    if ms % MINUTE_MS == 0:
        return f"{ms // MINUTE_MS} min"
    return f"{ms} ms"


def key_field(spec: TopicSpec) -> str:
    """The payload field a topic is keyed by (``customer_id``, ``business_date``), from the registry."""
    return spec.key.split(":", 1)[0].strip()


def base_topic(name: str, suffix: str = "") -> TopicSpec:
    """The registry spec of a topic name given by an operator.

    Accepts the registry name (``aqsha.payments.commands``) or the concrete one with this
    environment's suffix, for a base or a dead-letter topic; ``OpsError`` (usage) if unknown.
    """
    candidate = name
    if suffix:
        is_dlq = candidate.endswith(DLQ_SUFFIX)
        stem = candidate.removesuffix(DLQ_SUFFIX) if is_dlq else candidate
        if stem.endswith(suffix):
            stem = stem.removesuffix(suffix)
            candidate = f"{stem}{DLQ_SUFFIX}" if is_dlq else stem
    try:
        return topic_by_name(candidate)
    except KeyError:
        hint = did_you_mean(candidate, [spec.name for spec in all_topics(include_dlq=True)])
        raise OpsError(
            f"unknown topic {name!r}{hint} (see `aqsha topics list` for the registry)", EXIT_USAGE
        ) from None


def did_you_mean(given: str, known: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``known`` (case-insensitive), or ``""``."""
    names = list(known)
    by_lower = {n.lower(): n for n in names}
    close = difflib.get_close_matches(given.lower(), list(by_lower), n=1, cutoff=0.6)
    return f"; did you mean {by_lower[close[0]]!r}?" if close else ""


def kafka_client_kwargs(settings: KafkaSettings, role: str) -> dict[str, Any]:
    """Keyword arguments for an aiokafka client: bootstrap servers, client id, SASL/TLS from settings."""
    from shared.kafka import _admin_security

    return {
        "bootstrap_servers": settings.bootstrap.split(","),
        "client_id": f"{settings.client_id}-ops-{role}",
        **_admin_security(settings),
    }
