"""``Contract``, the base of every command and event model, and its ``Command``/``Event`` kinds."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

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


class Command(Contract):
    """An imperative request (``PayService``): handled by exactly one service, may be declined."""

    KIND: ClassVar[Kind] = "command"
    ABSTRACT: ClassVar[bool] = True


class Event(Contract):
    """A past-tense fact (``PaymentCompleted``): published once, consumed by any number of services."""

    KIND: ClassVar[Kind] = "event"
    ABSTRACT: ClassVar[bool] = True
