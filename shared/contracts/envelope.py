"""The one envelope around every Kafka message, and its encode/decode.

The Kafka record value is the envelope as UTF-8 JSON; the record key is ``Envelope.key`` (the
customer id, so one customer's messages stay ordered on one partition). ``decode`` is the only way
a consumer should read a record: it validates the envelope, finds the payload model by
``type``/``schema_version`` and validates the payload in pydantic's strict JSON mode.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any, Final, Generic, Literal, Self, TypeVar, cast
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.contracts.base import Contract
from shared.contracts.registry import contract_for

P = TypeVar("P", bound=Contract)
C = TypeVar("C", bound=Contract)

HEADER_TYPE: Final = "aqsha-type"
HEADER_EVENT_ID: Final = "aqsha-event-id"
HEADER_CORRELATION_ID: Final = "aqsha-correlation-id"
HEADER_SCHEMA_VERSION: Final = "aqsha-schema-version"

ErrorCode = Literal["invalid_json", "invalid_envelope", "unknown_type", "unexpected_type", "invalid_payload"]


class _EnvelopeFields(BaseModel):
    """Envelope fields shared by the typed and the raw envelope."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    event_id: UUID = Field(
        description="Unique id of this message. Publishing retries keep it, so consumers dedupe on it."
    )
    type: str = Field(min_length=1, description='Contract name of the payload, e.g. "PaymentCompleted".')
    schema_version: int = Field(ge=1, description="Major version of the payload contract.")
    occurred_at: AwareDatetime = Field(
        description="When the fact happened or the command was issued; timezone-aware ISO 8601."
    )
    correlation_id: UUID = Field(
        description="Id of the originating request, kept unchanged across the whole saga."
    )
    causation_id: UUID | None = Field(
        default=None, description="event_id of the message that caused this one; null for a first message."
    )
    producer: str = Field(
        min_length=1, description='Service or tool that produced the message, e.g. "payments".'
    )
    key: str = Field(
        min_length=1,
        description="Kafka record key: the customer id as a string (ordering is per key).",
    )


# The model validator's rule is a plain function, so that mutation testing (make mutation,
# docs/testing.md) reaches it: mutmut leaves decorated functions alone.
def _require_type_matches(type_: str, schema_version: int, payload: Any) -> None:
    if not isinstance(payload, Contract):
        return
    said, actual = (type_, schema_version), (payload.TYPE, payload.VERSION)
    if said != actual:
        raise ValueError(f"envelope says {said[0]} v{said[1]}, payload is {actual[0]} v{actual[1]}")


class Envelope(_EnvelopeFields, Generic[P]):
    """Metadata plus one contract payload; the value of every Kafka record."""

    payload: P = Field(description="The contract instance named by type and schema_version.")

    @model_validator(mode="after")
    def _type_matches_payload(self) -> Self:
        _require_type_matches(self.type, self.schema_version, self.payload)
        return self


class RawEnvelope(_EnvelopeFields):
    """An envelope whose payload is not yet validated; dead-letter handling keeps its ids."""

    payload: dict[str, Any] = Field(
        description="The contract payload; its schema is docs/contracts/<type>.v<schema_version>.json."
    )


class ContractError(ValueError):
    """A record that cannot be decoded; ``code`` is machine-readable, the message is for humans."""

    def __init__(self, code: ErrorCode, message: str, raw_envelope: RawEnvelope | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code: ErrorCode = code
        self.message = message
        #: The envelope when it was valid (codes unknown_type, unexpected_type, invalid_payload).
        self.raw_envelope = raw_envelope


@functools.cache
def envelope_model(model: type[Contract]) -> type[Envelope[Any]]:
    """``Envelope[model]``, built once per contract: pydantic's generic lookup costs ~10 % of a handler."""
    return Envelope[model]  # type: ignore[valid-type]


def new_envelope(
    payload: C,
    *,
    key: str | None = None,
    producer: str,
    occurred_at: datetime,
    correlation_id: UUID | None = None,
    causation: Envelope[Any] | None = None,
    event_id: UUID | None = None,
) -> Envelope[C]:
    """Wrap ``payload`` in an envelope.

    ``key`` defaults to the payload's ``customer_id`` and must equal it when both exist.
    ``correlation_id`` defaults to the causing envelope's, else to the payload's ``request_id``
    (commands), else to a fresh uuid4. ``occurred_at`` must be timezone-aware.
    """
    customer_id = getattr(payload, "customer_id", None)
    if key is None:
        if customer_id is None:
            raise ValueError(f"{payload.TYPE} has no customer_id: pass key= explicitly")
        key = str(customer_id)
    elif customer_id is not None and key != str(customer_id):
        raise ValueError(f"key {key!r} differs from {payload.TYPE}.customer_id {customer_id}")
    if correlation_id is None:
        if causation is not None:
            correlation_id = causation.correlation_id
        else:
            request_id = getattr(payload, "request_id", None)
            correlation_id = request_id if isinstance(request_id, UUID) else uuid4()
    # A string cast: ``type[Envelope[C]]`` as an expression would make pydantic build the
    # parametrised class on every call (2.5 of 20 µs here); the cached model is the same class.
    model = cast("type[Envelope[C]]", envelope_model(type(payload)))
    return model(
        event_id=event_id or uuid4(),
        type=payload.TYPE,
        schema_version=payload.VERSION,
        occurred_at=occurred_at,
        correlation_id=correlation_id,
        causation_id=causation.event_id if causation is not None else None,
        producer=producer,
        key=key,
        payload=payload,
    )


def envelope_headers(env: Envelope[Any] | RawEnvelope) -> dict[str, str]:
    """Kafka headers mirroring the envelope metadata (for routing and tooling without parsing)."""
    return {
        HEADER_TYPE: env.type,
        HEADER_EVENT_ID: str(env.event_id),
        HEADER_CORRELATION_ID: str(env.correlation_id),
        HEADER_SCHEMA_VERSION: str(env.schema_version),
    }


def encode(env: Envelope[Any]) -> bytes:
    """The envelope as UTF-8 JSON bytes (the Kafka record value)."""
    return env.model_dump_json(serialize_as_any=True).encode("utf-8")


def _first_error(exc: ValidationError, drop: int = 0) -> str:
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = ".".join(str(part) for part in first["loc"][drop:]) or "<root>"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{loc}: {first['msg']}{more}"


def _text(raw: bytes | bytearray | memoryview | str) -> str:
    if isinstance(raw, str):
        return raw
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ContractError("invalid_json", f"record value is not UTF-8: {exc.reason}") from None


def _raw(text: str) -> RawEnvelope:
    try:
        return RawEnvelope.model_validate_json(text)
    except ValidationError as exc:
        if any(err["type"] == "json_invalid" for err in exc.errors()):
            raise ContractError("invalid_json", f"record value is not JSON: {_first_error(exc)}") from None
        raise ContractError("invalid_envelope", _first_error(exc)) from None


def _typed(text: str, head: RawEnvelope) -> Envelope[Contract]:
    model = contract_for(head.type, head.schema_version)
    if model is None:
        known = contract_for(head.type)
        hint = f" (known up to v{known.VERSION})" if known is not None else ""
        raise ContractError("unknown_type", f"no contract {head.type} v{head.schema_version}{hint}", head)
    try:
        # One pass in strict *JSON* mode: ISO datetimes/UUIDs are accepted, floats for money are not.
        env = envelope_model(model).model_validate_json(text)
    except ValidationError as exc:
        raise ContractError("invalid_payload", f"{head.type}.{_first_error(exc, drop=1)}", head) from None
    return cast(Envelope[Contract], env)


def decode_raw(raw: bytes | str) -> RawEnvelope:
    """Validate the envelope only, leaving the payload unchecked; raises ``ContractError``."""
    return _raw(_text(raw))


def decode(raw: bytes | str) -> Envelope[Contract]:
    """Decode a record value into a typed envelope; raises ``ContractError``."""
    text = _text(raw)
    return _typed(text, _raw(text))


def decode_as(raw: bytes | str, *models: type[C]) -> Envelope[C]:
    """Like ``decode`` but only for the given payload types; others raise ``unexpected_type``."""
    text = _text(raw)
    head = _raw(text)
    if not any(head.type == m.TYPE and head.schema_version == m.VERSION for m in models):
        expected = ", ".join(f"{m.TYPE} v{m.VERSION}" for m in models)
        raise ContractError(
            "unexpected_type", f"got {head.type} v{head.schema_version}, expected one of: {expected}", head
        )
    return cast(Envelope[C], _typed(text, head))
