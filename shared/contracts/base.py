"""``Contract``, the base of every command and event model, and its ``Command``/``Event`` kinds."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any, ClassVar, Final, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from shared.contracts.registry import register

Kind = Literal["command", "event"]


_CONFIG = ConfigDict(frozen=True, extra="forbid", strict=True)


def _refuse_nul(value: Any) -> Any:
    """No text field may hold U+0000: PostgreSQL text/jsonb cannot store it, so such a message would
    otherwise pass validation and then fail in every handler (retries, then a ``handler_error``
    dead letter) instead of being refused up front as ``invalid_payload``."""
    texts = value if isinstance(value, list | tuple) else (value,)
    if any(isinstance(t, str) and "\x00" in t for t in texts):
        raise ValueError("text must not contain NUL (U+0000)")
    return value


class Value(BaseModel):
    """A value nested inside a contract (a receipt, a bill line): same strictness, not registered."""

    model_config = _CONFIG

    _no_nul = field_validator("*", mode="after")(_refuse_nul)


class Contract(BaseModel):
    """A versioned message payload: frozen, strict, and closed to unknown fields.

    Strictness: from JSON (``model_validate_json``, ``decode``) ISO strings are accepted for
    datetimes, dates and UUIDs and plain values for enums; from Python objects
    (``Model(...)``, ``model_validate(dict)``) those fields need real ``datetime``/``date``/
    ``UUID``/enum members. Money fields reject floats, bools and strings in both modes.
    """

    model_config = _CONFIG

    _no_nul = field_validator("*", mode="after")(_refuse_nul)

    #: Contract name carried in ``Envelope.type``; defaults to the class name.
    TYPE: ClassVar[str]
    #: Major version carried in ``Envelope.schema_version``; bump it for a breaking change.
    VERSION: ClassVar[int] = 1
    #: ``command`` (imperative, one handler) or ``event`` (past tense, any number of consumers).
    KIND: ClassVar[Kind]
    #: True on intermediate bases (``Command``, ``Event``) that are never sent on their own.
    ABSTRACT: ClassVar[bool] = True

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """Default ``TYPE`` to the class name and register concrete contracts."""
        super().__pydantic_init_subclass__(**kwargs)
        if "ABSTRACT" not in cls.__dict__:
            cls.ABSTRACT = False
        if cls.ABSTRACT:
            return
        if "TYPE" not in cls.__dict__:
            cls.TYPE = cls.__name__
        if not isinstance(cls.VERSION, int) or isinstance(cls.VERSION, bool) or cls.VERSION < 1:
            raise TypeError(f"{cls.__name__}.VERSION must be an int >= 1")
        if getattr(cls, "KIND", None) not in ("command", "event"):
            raise TypeError(f"{cls.__name__} must derive from Command or Event")
        register(cls)


#: JSON-schema key of the fields that must never be shown in clear (``common.SENSITIVE``).
SENSITIVE_KEY: Final = "x-aqsha-sensitive"
#: What a masked value reads as (a phone keeps its last two digits: ``+7 *** *** ** 67``).
MASK: Final = "***"
_PHONE_RE: Final = re.compile(r"^\+7\d{10}$")
#: Names masked when a payload carries fields its schema does not know (an invalid payload).
_SECRET_NAMES: Final = frozenset({"code", "otp", "otp_code", "sealed_code", "pin", "password", "secret"})


@functools.cache
def _schema_of(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(mode="validation")


def _resolve(root: dict[str, Any], node: Any) -> dict[str, Any]:
    seen: set[str] = set()
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"] not in seen:
        ref: str = node["$ref"]
        seen.add(ref)
        target: Any = root
        for part in ref.removeprefix("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        node = {**(target if isinstance(target, dict) else {}), **siblings}
    return node if isinstance(node, dict) else {}


def _alternatives(root: dict[str, Any], node: dict[str, Any]) -> list[dict[str, Any]]:
    """The node and every branch of its ``anyOf``/``oneOf``/``allOf``, resolved (one level of unions)."""
    out = [node]
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in node.get(key) or ():
            out.append(_resolve(root, branch))
    return out


def _masked(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str) and _PHONE_RE.fullmatch(value):
        return f"+7 *** *** ** {value[-2:]}"
    return MASK


def _mask_node(root: dict[str, Any], node: Any, value: Any) -> Any:
    node = _resolve(root, node)
    if node.get(SENSITIVE_KEY):
        return _masked(value)
    branches = _alternatives(root, node)
    if isinstance(value, dict):
        props: dict[str, Any] = {}
        for branch in branches:
            props.update(branch.get("properties") or {})
        return {
            k: _mask_node(root, props[k], v)
            if k in props
            else (_masked(v) if str(k).lower() in _SECRET_NAMES else v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        items: dict[str, Any] = next((b["items"] for b in branches if isinstance(b.get("items"), dict)), {})
        return [_mask_node(root, items, v) for v in value]
    return value


def mask_sensitive(model: type[BaseModel], payload: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``payload`` (a contract or value decoded to plain data, e.g. ``model_dump(mode="json")``)
    with every field marked sensitive in ``model``'s schema masked, at any depth (nested values, lists).

    Phones keep their last two digits (``+7 *** *** ** 67``); any other sensitive value reads ``***``;
    ``None`` stays ``None``. Keys the schema does not know (an invalid payload) named like a secret
    (``code``, ``sealed_code``, ...) are masked too. Used by ``aqsha tail`` and ``aqsha dlq show``.
    """
    schema = _schema_of(model)
    masked: dict[str, Any] = _mask_node(schema, schema, dict(payload))
    return masked


class Command(Contract):
    """An imperative request (``PayService``): handled by exactly one service, may be declined."""

    KIND: ClassVar[Kind] = "command"
    ABSTRACT: ClassVar[bool] = True


class Event(Contract):
    """A past-tense fact (``PaymentCompleted``): published once, consumed by any number of services."""

    KIND: ClassVar[Kind] = "event"
    ABSTRACT: ClassVar[bool] = True
