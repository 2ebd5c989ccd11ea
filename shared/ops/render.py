"""Pure rendering for the operator CLI: payload display with money formatted, record headers, durations."""

from __future__ import annotations

import types
from datetime import UTC, date, datetime
from enum import Enum
from typing import Annotated, Any, Union, get_args, get_origin
from uuid import UUID

from annotated_types import Le
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from shared.money import MAX_TIYN, Money, fmt_tiyn


def _is_tiyn_meta(items: list[Any] | tuple[Any, ...]) -> bool:
    for item in items:
        if isinstance(item, Le) and item.le == MAX_TIYN:
            return True
        if isinstance(item, FieldInfo) and _is_tiyn_meta(item.metadata):
            return True
    return False


def is_tiyn(annotation: Any, metadata: list[Any] | tuple[Any, ...] = ()) -> bool:
    """True when a field annotation (or its collected metadata) is one of the ``shared.money`` tiyn types."""
    if _is_tiyn_meta(metadata):
        return True
    origin = get_origin(annotation)
    if origin is Annotated:
        args = get_args(annotation)
        return _is_tiyn_meta(args[1:]) or is_tiyn(args[0])
    if origin is Union or origin is types.UnionType:
        return any(is_tiyn(arg) for arg in get_args(annotation))
    return False


def _element(annotation: Any) -> Any:
    """The element annotation of ``list[X]``/``tuple[X, ...]`` (through Optional), else None."""
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        for arg in get_args(annotation):
            found = _element(arg)
            if found is not None:
                return found
        return None
    if origin in (list, tuple, set, frozenset):
        args = get_args(annotation)
        return args[0] if args else None
    return None


def _display(value: Any, annotation: Any, metadata: list[Any] | tuple[Any, ...]) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, Money):
        return value.format()
    if isinstance(value, BaseModel):
        return display_payload(value)
    if isinstance(value, int) and is_tiyn(annotation, metadata):
        return fmt_tiyn(value)
    if isinstance(value, (list, tuple)):
        inner = _element(annotation)
        return [_display(v, inner, ()) for v in value]
    if isinstance(value, dict):
        return {str(k): _display(v, None, ()) for k, v in value.items()}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value


def display_payload(model: BaseModel) -> dict[str, Any]:
    """A contract (or nested value) as a dict for humans: tiyn amounts as ``15 000,50 ₸``."""
    out: dict[str, Any] = {}
    for name, info in type(model).model_fields.items():
        out[name] = _display(getattr(model, name), info.annotation, info.metadata)
    return out


def fmt_ts_ms(ms: int | None) -> str:
    """A Kafka record timestamp (ms since epoch) as an ISO UTC instant with milliseconds."""
    if ms is None or ms < 0:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def decode_headers(headers: Any) -> dict[str, str]:
    """Kafka record headers (``[(name, bytes)]``) as a dict of text (last value wins)."""
    out: dict[str, str] = {}
    for name, value in headers or ():
        if isinstance(value, (bytes, bytearray)):
            out[name] = bytes(value).decode("utf-8", errors="replace")
        else:
            out[name] = "" if value is None else str(value)
    return out


def short(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: max(width - 1, 0)] + "…"
