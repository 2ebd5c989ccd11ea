"""Kafka side of the operator CLI: topics as code, ``send``, ``tail``, dead letters and consumer lag.

Nothing here joins a consumer group: reads assign partitions directly (a join costs seconds on
Tansu and would disturb the services' groups), and group offsets are read and committed by a
group-id consumer that never subscribes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from uuid import UUID

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from pydantic import ValidationError

from shared.contracts.base import Contract, mask_sensitive
from shared.contracts.envelope import (
    HEADER_TYPE,
    ContractError,
    Envelope,
    decode,
    encode,
    envelope_headers,
    new_envelope,
)
from shared.contracts.registry import CONTRACTS, contract_for
from shared.kafka import (
    DLQ_ATTEMPTS,
    DLQ_ERROR,
    DLQ_FAILED_AT,
    DLQ_GROUP,
    DLQ_OFFSET,
    DLQ_PARTITION,
    DLQ_REASON,
    DLQ_TOPIC,
    ensure_topics,
)
from shared.logging import mask_text, mask_value
from shared.ops.common import (
    EXIT_USAGE,
    OpsError,
    base_topic,
    did_you_mean,
    dumps,
    fmt_retention,
    kafka_client_kwargs,
    key_field,
    table,
)
from shared.ops.render import decode_headers, display_payload, fmt_ts_ms, short
from shared.settings import KafkaSettings, TrustSettings
from shared.topics import (
    PRINCIPALS,
    TOPICS,
    TopicSpec,
    all_topics,
    dlq_name,
    dlq_spec,
    resolve,
    topic_for_contract,
)
from shared.trust import Origin, Signer, TrustRegistry, Untrusted, check_permitted

Echo = Callable[[str], None]

#: Where ``aqsha send`` and ``aqsha billing run-day`` find the operator's signing key.
SIGNING_KEY_ENV: Final = "AQSHA_TRUST_SIGNING_KEY_FILE"
#: Consumer group whose committed offsets on ``<topic>.dlq`` mark what ``dlq redrive`` already resent.
REDRIVE_GROUP: Final = "aqsha-ops-redrive"
#: Headers added to a redriven record.
REDRIVEN_FROM: Final = "aqsha-redriven-from"
REDRIVEN_AT: Final = "aqsha-redriven-at"
DLQ_HEADER_PREFIX: Final = "aqsha-dlq-"
#: Bound on waiting for broker metadata or acks, so a wrong bootstrap fails instead of hanging.
TIMEOUT_S: Final = 30.0


# ------------------------------------------------------------------------------------------ clients
async def _consumer(settings: KafkaSettings, role: str, group: str | None = None) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(
        group_id=group, enable_auto_commit=False, **kafka_client_kwargs(settings, role)
    )
    try:
        await asyncio.wait_for(consumer.start(), TIMEOUT_S)
    except Exception as exc:
        await consumer.stop()
        raise OpsError(f"cannot reach Kafka at {settings.bootstrap}: {exc!r}") from None
    return consumer


async def _producer(settings: KafkaSettings) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(
        acks=-1 if settings.acks == "all" else int(settings.acks),
        enable_idempotence=settings.idempotent_producer,
        **kafka_client_kwargs(settings, "producer"),
    )
    try:
        await asyncio.wait_for(producer.start(), TIMEOUT_S)
    except Exception as exc:
        await producer.stop()
        raise OpsError(f"cannot reach Kafka at {settings.bootstrap}: {exc!r}") from None
    return producer


async def _broker_topics(client: AIOKafkaConsumer | AIOKafkaProducer) -> dict[str, int]:
    """Every topic on the broker with its partition count (one metadata request, no auto-creation)."""
    inner = client._client if isinstance(client, AIOKafkaConsumer) else client.client
    metadata = await asyncio.wait_for(inner.fetch_all_metadata(), TIMEOUT_S)
    return {t: len(metadata.partitions_for_topic(t) or ()) for t in metadata.topics()}


def _require(topics: dict[str, int], name: str) -> int:
    if name not in topics:
        raise OpsError(f"topic {name} does not exist on the broker (run `aqsha topics apply`)")
    return topics[name]


# ------------------------------------------------------------------------------------------- topics
@dataclass(frozen=True, slots=True)
class TopicState:
    """A registry topic and what the broker has of it."""

    spec: TopicSpec
    name: str
    partitions_on_broker: int | None

    @property
    def exists(self) -> bool:
        """True when the broker has the topic."""
        return self.partitions_on_broker is not None

    def as_dict(self) -> dict[str, Any]:
        """For ``--json``."""
        return {
            "name": self.name,
            "registry_name": self.spec.name,
            "partitions": self.spec.partitions,
            "retention_ms": self.spec.retention_ms,
            "retention": fmt_retention(self.spec.retention_ms),
            "key": key_field(self.spec),
            "producers": list(self.spec.producers),
            "consumers": list(self.spec.consumers),
            "contracts": list(self.spec.contracts),
            "dlq": self.spec.is_dlq,
            "exists": self.exists,
            "partitions_on_broker": self.partitions_on_broker,
        }


async def topic_states(settings: KafkaSettings) -> list[TopicState]:
    """Every registry topic (with dead-letter topics) and whether/how it exists on the broker."""
    consumer = await _consumer(settings, "topics")
    try:
        existing = await _broker_topics(consumer)
    finally:
        await consumer.stop()
    out = []
    for spec in all_topics(include_dlq=True):
        name = resolve(spec.name, settings.topic_suffix)
        out.append(TopicState(spec, name, existing.get(name)))
    return out


def render_topics(states: Sequence[TopicState]) -> str:
    """The ``topics list`` table; partition drift is shown as ``12 (broker 6)``."""
    rows: list[list[object]] = []
    for s in states:
        parts = str(s.spec.partitions)
        if s.exists and s.partitions_on_broker != s.spec.partitions:
            parts += f" (broker {s.partitions_on_broker})"
        rows.append(
            [
                s.name,
                parts,
                fmt_retention(s.spec.retention_ms),
                key_field(s.spec),
                ", ".join(s.spec.producers) or "-",
                ", ".join(s.spec.consumers) or "-",
                "yes" if s.exists else "MISSING",
            ]
        )
    missing = sum(1 for s in states if not s.exists)
    footer = f"\n{len(states)} topics, {missing} missing" + (" (run `aqsha topics apply`)" if missing else "")
    return (
        table(["topic", "partitions", "retention", "key", "producers", "consumers", "exists"], rows) + footer
    )


async def apply_topics(settings: KafkaSettings) -> tuple[list[str], list[TopicState]]:
    """Create every missing registry topic (and dead-letter topic); return (created, state after)."""
    created = await ensure_topics(settings, all_topics(include_dlq=True))
    return created, await topic_states(settings)


# --------------------------------------------------------------------------------------------- send
@dataclass(frozen=True, slots=True)
class Outgoing:
    """A validated envelope, where it goes and, once ``signed_by`` its producer, its signed bytes."""

    envelope: Envelope[Any]
    topic: str
    #: The record value (the envelope JSON) the signature covers; empty until signed.
    value: bytes = b""
    #: The ``aqsha-key-id``/``aqsha-signature`` headers; empty until signed.
    signature: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> bytes:
        """The record key (the envelope key)."""
        return self.envelope.key.encode()

    @property
    def headers(self) -> dict[str, str]:
        """The aqsha-* headers mirroring the envelope, and the signature headers once signed."""
        return {**envelope_headers(self.envelope), **self.signature}

    def signed_by(self, signer: Signer) -> Outgoing:
        """This message signed for its concrete topic by ``signer``, who must be the envelope's producer."""
        if signer.principal != self.envelope.producer:
            raise ValueError(
                f"envelope producer {self.envelope.producer!r} is not the signer {signer.principal!r}"
            )
        value = encode(self.envelope)
        return replace(self, value=value, signature=signer.sign(self.topic, self.key, value))


def operator_signer(
    trust: TrustSettings,
    *,
    key_file: Path | None = None,
    principal: str | None = None,
    key_option: bool = True,
) -> Signer:
    """The key an operator command signs with; ``OpsError`` (2) when there is none or it is unusable.

    The key is ``key_file`` (``--key``), else ``AQSHA_TRUST_SIGNING_KEY_FILE``, else, when
    ``principal`` is named, ``<AQSHA_TRUST_KEYS_DIR>/<principal>.pem`` (a development keyring). A
    keyring's ``<principal>.pem`` also wins over a signing key file named after another principal
    (``make run``'s profile sets both: ``ops.pem`` for the operator, the keyring for ``--as``). The
    principal is ``principal`` (``--as``), else the key file's stem (``ops.pem`` signs as ``ops``).
    When a trust registry is configured the key must be in it: consumers refuse any other.
    """
    path = key_file
    if path is None:
        path = trust.signing_key_file
        if principal is not None and trust.keys_dir is not None:
            own = Path(trust.keys_dir) / f"{principal}.pem"
            if path is None or (Path(path).stem != principal and own.is_file()):
                path = own
    if path is None:
        how = f"set {SIGNING_KEY_ENV}" + (" or pass --key FILE" if key_option else "")
        if key_option and trust.keys_dir is not None:
            how += " (or name a principal of AQSHA_TRUST_KEYS_DIR with --as PRINCIPAL)"
        for_ = f" for {principal}" if principal else ""
        raise OpsError(f"no signing key{for_}: {how}; nothing was sent", EXIT_USAGE)
    path = Path(path)
    name = principal or path.stem
    if name not in PRINCIPALS:
        hint = "" if principal else " (the key file's stem; --as PRINCIPAL names another)"
        raise OpsError(f"unknown principal {name!r}{hint}; known: {', '.join(PRINCIPALS)}", EXIT_USAGE)
    try:
        signer = Signer.from_file(path, name)
    except RuntimeError as exc:  # unreadable: the message names the file
        raise OpsError(str(exc), EXIT_USAGE) from None
    except (ValueError, TypeError):  # malformed, encrypted, or not Ed25519
        raise OpsError(
            f"cannot sign with {path}: not an unencrypted Ed25519 private key (PEM)", EXIT_USAGE
        ) from None
    if trust.registry_file is not None:
        try:
            registry = TrustRegistry.load(Path(trust.registry_file))
        except RuntimeError as exc:
            raise OpsError(str(exc), EXIT_USAGE) from None
        if signer.key_id not in registry.keys:
            raise OpsError(
                f"key {signer.key_id} ({path}) is not in the trust registry {trust.registry_file}: "
                "consumers would dead-letter everything it signs (unknown_key)",
                EXIT_USAGE,
            )
    return signer


def _validation_message(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = ".".join(str(part) for part in first["loc"]) or "<root>"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{loc}: {first['msg']}{more}"


def load_documents(text: str) -> list[dict[str, Any]]:
    """The JSON input of ``send``: one object, an array of objects, or one object per line."""
    text = text.strip()
    if not text:
        raise OpsError("no input: expected a JSON object", EXIT_USAGE)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as whole:
        try:
            doc = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError:
            raise OpsError(f"input is not JSON: {whole.msg} at line {whole.lineno}", EXIT_USAGE) from None
    docs = doc if isinstance(doc, list) else [doc]
    for i, d in enumerate(docs):
        if not isinstance(d, dict):
            raise OpsError(f"message {i + 1}: expected a JSON object, got {type(d).__name__}", EXIT_USAGE)
    return docs


_SHORT_FIELDS = frozenset({"type", "schema_version", "payload", "data", "key", "correlation_id"})


def prepare(
    doc: dict[str, Any],
    *,
    producer: str,
    suffix: str = "",
    force: bool = False,
    now: datetime | None = None,
) -> Outgoing:
    """Validate one ``send`` input against its contract and build its envelope; ``OpsError`` (2) if invalid.

    Two forms: a full envelope (has ``event_id``), sent as it is after validation; or the short
    form ``{"type": "PayService", "payload": {...}}`` (``data`` is accepted for ``payload``;
    optional ``schema_version``, ``correlation_id``, and ``key`` for a topic not keyed by a
    payload field), wrapped by ``new_envelope``. Only commands unless ``force``.

    ``producer`` is the principal that signs it: the short form's envelope names it, a full
    envelope must already name it, and the registry must let it write the contract (incl. the
    channel rule): what consumers would refuse is refused here, before anything is sent.
    """
    type_name = doc.get("type")
    if not isinstance(type_name, str) or not type_name:
        raise OpsError('missing "type" (e.g. {"type": "PayService", "payload": {...}})', EXIT_USAGE)
    version = doc.get("schema_version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        raise OpsError('"schema_version" must be an integer', EXIT_USAGE)
    model = contract_for(type_name, version)
    if model is None:
        known = contract_for(type_name)
        hint = f" (known up to v{known.VERSION})" if known is not None else did_you_mean(type_name, CONTRACTS)
        raise OpsError(
            f"unknown contract type {type_name!r}{' v' + str(version) if version else ''}{hint}", EXIT_USAGE
        )
    if model.KIND != "command" and not force:
        raise OpsError(
            f"{type_name} is an {model.KIND}, not a command: only commands may be sent (--force to override)",
            EXIT_USAGE,
        )
    spec = topic_for_contract(type_name)
    field_name = key_field(spec)
    if "event_id" in doc:
        try:
            env: Envelope[Any] = decode(json.dumps(doc))
        except ContractError as exc:
            raise OpsError(f"invalid envelope: {exc}", EXIT_USAGE) from None
        expected = getattr(env.payload, field_name, None)
        if expected is not None and env.key != str(expected):
            raise OpsError(
                f"envelope key {env.key!r} differs from payload {field_name} {expected} "
                f"({spec.name} is keyed by {field_name})",
                EXIT_USAGE,
            )
        return _permitted(Outgoing(env, resolve(spec.name, suffix)), spec, producer)
    unknown = sorted(set(doc) - _SHORT_FIELDS)
    if unknown:
        raise OpsError(
            f"unexpected field(s) {', '.join(unknown)} (a full envelope needs event_id)", EXIT_USAGE
        )
    if "payload" in doc and "data" in doc:
        raise OpsError('give either "payload" or "data", not both', EXIT_USAGE)
    data = doc.get("payload", doc.get("data"))
    if not isinstance(data, dict):
        raise OpsError(f'{type_name}: "payload" must be a JSON object', EXIT_USAGE)
    try:
        payload: Contract = model.model_validate_json(json.dumps(data))
    except ValidationError as exc:
        raise OpsError(f"invalid {type_name} payload: {_validation_message(exc)}", EXIT_USAGE) from None
    key_value = getattr(payload, field_name, None)
    key = str(key_value) if key_value is not None else doc.get("key")
    if not isinstance(key, str) or not key:
        raise OpsError(f'{type_name} has no {field_name}: pass "key"', EXIT_USAGE)
    correlation: UUID | None = None
    if doc.get("correlation_id") is not None:
        try:
            correlation = UUID(str(doc["correlation_id"]))
        except ValueError:
            raise OpsError('"correlation_id" must be a UUID', EXIT_USAGE) from None
    try:
        env = new_envelope(
            payload,
            key=key,
            producer=producer,
            occurred_at=now or datetime.now(UTC),
            correlation_id=correlation,
        )
    except (ValueError, ValidationError) as exc:
        raise OpsError(f"invalid {type_name}: {exc}", EXIT_USAGE) from None
    return _permitted(Outgoing(env, resolve(spec.name, suffix)), spec, producer)


def _permitted(out: Outgoing, spec: TopicSpec, producer: str) -> Outgoing:
    """``out`` if ``producer`` may write it (``shared.trust.check_permitted``), else ``OpsError`` (2)."""
    try:
        check_permitted(spec, Origin(producer, f"{producer}:local"), out.envelope, out.key)
    except Untrusted as exc:
        raise OpsError(
            f"refused: {exc.message} (signing as {producer}; consumers would dead-letter it as {exc.reason})",
            EXIT_USAGE,
        ) from None
    return out


@dataclass(frozen=True, slots=True)
class Sent:
    """Where a message landed."""

    type: str
    event_id: UUID
    key: str
    topic: str
    partition: int
    offset: int


async def produce(settings: KafkaSettings, messages: Sequence[Outgoing]) -> list[Sent]:
    """Produce signed envelopes (value = envelope JSON, key, aqsha-* and signature headers); wait for acks.

    Every message must be ``signed_by`` its producer first: consumers dead-letter unsigned records.
    """
    unsigned = [m.envelope.type for m in messages if not m.signature]
    if unsigned:
        raise ValueError(f"unsigned message(s) {', '.join(unsigned)}: sign them (Outgoing.signed_by) first")
    producer = await _producer(settings)
    try:
        topics = await _broker_topics(producer)
        for m in messages:
            _require(topics, m.topic)
        out: list[Sent] = []
        for m in messages:
            meta = await asyncio.wait_for(
                producer.send_and_wait(
                    m.topic,
                    m.value,
                    key=m.key,
                    headers=[(k, v.encode()) for k, v in m.headers.items()],
                ),
                TIMEOUT_S,
            )
            out.append(
                Sent(
                    m.envelope.type, m.envelope.event_id, m.envelope.key, m.topic, meta.partition, meta.offset
                )
            )
        return out
    finally:
        await producer.stop()


def render_sent(sent: Sent) -> str:
    """One line per produced message."""
    return (
        f"sent {sent.type} event_id={sent.event_id} key={sent.key} "
        f"to {sent.topic}[{sent.partition}]@{sent.offset}"
    )


async def request_reply(
    settings: KafkaSettings,
    message: Outgoing,
    reply_topic: str,
    is_reply: Callable[[Envelope[Any]], bool],
    *,
    timeout_s: float = TIMEOUT_S,
) -> tuple[Sent, Envelope[Any]]:
    """Produce a signed command and wait for the first envelope on ``reply_topic`` that ``is_reply``.

    ``reply_topic`` is a registry name. Its partitions are assigned at their end offsets *before* the
    command is sent, so a reply cannot be missed, however fast it comes; nothing joins a group. ``OpsError``
    when no reply arrives within ``timeout_s`` (the command was sent: its handler may still be down).
    """
    name = resolve(base_topic(reply_topic, settings.topic_suffix).name, settings.topic_suffix)
    consumer = await _consumer(settings, "reply")
    try:
        tps = await _partitions(consumer, name)
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:  # resolve the end offsets now, before the command can be answered
            await consumer.position(tp)
        [sent] = await produce(settings, [message])
        deadline = asyncio.get_running_loop().time() + timeout_s
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            batch = await consumer.getmany(timeout_ms=int(min(left, 0.5) * 1000), max_records=1000)
            for records in batch.values():
                for record in records:
                    item = to_item(record)
                    if item.envelope is not None and is_reply(item.envelope):
                        return sent, item.envelope
        raise OpsError(
            f"sent {sent.type} (event_id={sent.event_id}), but no reply on {name} within {timeout_s:.0f}s"
        )
    finally:
        await consumer.stop()


# --------------------------------------------------------------------------------------------- tail
@dataclass(frozen=True, slots=True)
class Item:
    """One record of a topic, decoded as far as possible."""

    topic: str
    partition: int
    offset: int
    timestamp: int | None
    key: str | None
    headers: dict[str, str]
    value: bytes
    envelope: Envelope[Any] | None
    error: str | None

    @property
    def type(self) -> str | None:
        """The contract type (envelope, else the aqsha-type header)."""
        return self.envelope.type if self.envelope is not None else self.headers.get(HEADER_TYPE)

    def customer(self) -> str | None:
        """The payload's customer id, if any."""
        if self.envelope is None:
            return None
        value = getattr(self.envelope.payload, "customer_id", None)
        return str(value) if value is not None else None

    def as_dict(self) -> dict[str, Any]:
        """For ``--json``: the record coordinates, headers and the envelope (raw tiyn)."""
        out: dict[str, Any] = {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp": fmt_ts_ms(self.timestamp),
            "key": self.key,
            "type": self.type,
            "headers": self.headers,
        }
        if self.envelope is not None:
            out["envelope"] = masked_envelope(self.envelope)
        else:
            out["error"] = self.error
            out["value"] = masked_value(self.value)
        return out


# Operators see records masked: fields marked sensitive in the contracts (codes, sealed codes,
# phones, IINs, names, e-mails) never reach a terminal in clear (shared.contracts.base.mask_sensitive).
def masked_envelope(env: Envelope[Any]) -> dict[str, Any]:
    """The envelope as JSON data (raw tiyn) with the payload's sensitive fields masked."""
    out = env.model_dump(mode="json", serialize_as_any=True)
    out["payload"] = mask_sensitive(type(env.payload), out["payload"])
    return out


def masked_display(payload: Contract) -> dict[str, Any]:
    """A payload for humans (money formatted) with its sensitive fields masked."""
    return mask_sensitive(type(payload), display_payload(payload))


def masked_value(value: bytes) -> str:
    """A raw record value as text, masked: the payload by its contract's schema when the envelope names a
    known contract, else by field names and digit patterns (``shared.logging``); text that is not JSON
    by digit and ``code=`` patterns. Unchanged, byte for byte, when nothing in it is sensitive."""
    text = value.decode("utf-8", errors="replace")
    try:
        doc = json.loads(text)
    except ValueError:
        return mask_text(text)
    masked: Any
    if isinstance(doc, dict) and isinstance(doc.get("payload"), dict):
        type_name, version = doc.get("type"), doc.get("schema_version")
        model = (
            contract_for(type_name, version)
            if isinstance(type_name, str) and isinstance(version, int) and not isinstance(version, bool)
            else None
        )
        payload = mask_sensitive(model, doc["payload"]) if model is not None else mask_value(doc["payload"])
        masked = {**doc, "payload": payload}
    else:
        masked = mask_value(doc)
    return text if masked == doc else json.dumps(masked, ensure_ascii=False)


def to_item(record: ConsumerRecord[bytes, bytes]) -> Item:
    """Decode a consumer record (never raises: undecodable values keep their error)."""
    value = record.value or b""
    envelope: Envelope[Any] | None = None
    error: str | None = None
    try:
        envelope = decode(value)
    except ContractError as exc:
        error = str(exc)
    return Item(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        timestamp=record.timestamp,
        key=record.key.decode("utf-8", errors="replace") if record.key is not None else None,
        headers=decode_headers(record.headers),
        value=value,
        envelope=envelope,
        error=error,
    )


def matches(item: Item, *, customer: str | None = None, types: Iterable[str] = ()) -> bool:
    """The ``tail`` filters: customer id (record key or payload) and contract types."""
    wanted = set(types)
    if wanted and item.type not in wanted:
        return False
    if customer is not None:
        return customer.lower() in {(item.key or "").lower(), (item.customer() or "").lower()}
    return True


def render_item(item: Item) -> str:
    """A record for humans: a header line, the envelope ids and the payload with money formatted."""
    kind = f"{item.type or '?'}"
    if item.envelope is not None:
        kind += f" v{item.envelope.schema_version}"
    head = (
        f"{fmt_ts_ms(item.timestamp)}  {item.topic}[{item.partition}]@{item.offset}  {kind}  key={item.key}"
    )
    lines = [head]
    dlq = {k: v for k, v in item.headers.items() if k.startswith(DLQ_HEADER_PREFIX)}
    if dlq:
        lines.append(
            "  dead letter: "
            + ", ".join(f"{k.removeprefix(DLQ_HEADER_PREFIX)}={short(v, 120)}" for k, v in dlq.items())
        )
    if item.envelope is None:
        lines.append(f"  undecodable: {item.error}")
        lines.append(f"  value: {short(masked_value(item.value), 300)}")
        return "\n".join(lines)
    env = item.envelope
    lines.append(
        f"  event_id={env.event_id} correlation_id={env.correlation_id} producer={env.producer} "
        f"occurred_at={env.occurred_at.isoformat()}"
    )
    body = json.dumps(masked_display(env.payload), ensure_ascii=False, indent=2)
    lines.extend("  " + line for line in body.splitlines())
    return "\n".join(lines)


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    topics = await _broker_topics(consumer)
    count = _require(topics, topic)
    return [TopicPartition(topic, p) for p in range(count)]


def check_types(types: Iterable[str]) -> None:
    """``OpsError`` (usage) for a contract type no topic carries, with the closest known one."""
    for name in types:
        if name not in CONTRACTS:
            raise OpsError(f"unknown contract type {name!r}{did_you_mean(name, CONTRACTS)}", EXIT_USAGE)


def check_start(*, from_beginning: bool, offset: int | None, since: datetime | None) -> None:
    """At most one start position (``--from-beginning``, ``--offset``, ``--since``); ``OpsError`` (usage)."""
    given = [name for name, on in (("--from-beginning", from_beginning), ("--offset", offset is not None),
                                   ("--since", since is not None)) if on]  # fmt: skip
    if len(given) > 1:
        raise OpsError(f"choose one start position: {' or '.join(given)}", EXIT_USAGE)


async def _seek_start(
    consumer: AIOKafkaConsumer,
    tps: Sequence[TopicPartition],
    *,
    from_beginning: bool,
    offset: int | None,
    since: datetime | None,
) -> None:
    """Position every partition: the log start, an offset (negative: that many before the end), the
    first record at or after ``since`` (its timestamp), or the end."""
    if from_beginning:
        await consumer.seek_to_beginning(*tps)
        return
    if offset is None and since is None:
        await consumer.seek_to_end(*tps)
        return
    starts = await consumer.beginning_offsets(list(tps))
    ends = await consumer.end_offsets(list(tps))
    if since is not None:
        found = await consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in tps})
        for tp in tps:
            hit = found.get(tp)
            # No record that late: None (Kafka), or a timestamp of -1 (Tansu): start at the end.
            late_enough = hit is not None and hit.timestamp >= 0
            consumer.seek(tp, hit.offset if late_enough and hit is not None else ends[tp])
        return
    assert offset is not None
    for tp in tps:
        wanted = ends[tp] + offset if offset < 0 else offset
        consumer.seek(tp, min(max(wanted, starts[tp]), ends[tp]))


async def tail(
    settings: KafkaSettings,
    topic: str,
    *,
    echo: Echo,
    from_beginning: bool = False,
    customer: str | None = None,
    types: Sequence[str] = (),
    limit: int | None = None,
    follow: bool = True,
    as_json: bool = False,
    partitions: Sequence[int] = (),
    offset: int | None = None,
    since: datetime | None = None,
) -> int:
    """Print decoded records of ``topic`` (registry or concrete name); return how many were printed.

    Starts at the end (only new records) unless ``from_beginning``, an ``offset`` (in each partition
    read; negative: that many records before the end, as kcat's ``-o -N``) or ``since`` (the first
    record whose timestamp is at or after it); ``partitions`` limits the partitions read.
    ``follow=False`` stops at the end offsets taken when it started. Records of different
    partitions interleave; each partition's are in order.
    """
    spec = base_topic(topic, settings.topic_suffix)
    check_types(types)
    check_start(from_beginning=from_beginning, offset=offset, since=since)
    name = resolve(spec.name, settings.topic_suffix)
    consumer = await _consumer(settings, "tail")
    printed = 0
    try:
        tps = await _partitions(consumer, name)
        if partitions:
            missing = sorted(set(partitions) - {tp.partition for tp in tps})
            if missing:
                raise OpsError(
                    f"{name} has partitions 0..{len(tps) - 1}; no partition "
                    f"{', '.join(str(p) for p in missing)}",
                    EXIT_USAGE,
                )
            tps = [tp for tp in tps if tp.partition in set(partitions)]
        consumer.assign(tps)
        await _seek_start(consumer, tps, from_beginning=from_beginning, offset=offset, since=since)
        since_ms = int(since.timestamp() * 1000) if since is not None else None
        ends = await consumer.end_offsets(tps)
        while True:
            if not follow:
                positions = {tp: await consumer.position(tp) for tp in tps}
                if all(positions[tp] >= ends[tp] for tp in tps):
                    break
            batch = await consumer.getmany(timeout_ms=500, max_records=1000)
            for tp in sorted(batch, key=lambda t: t.partition):
                for record in batch[tp]:
                    if not follow and record.offset >= ends[tp]:
                        continue
                    if since_ms is not None and record.timestamp is not None and record.timestamp < since_ms:
                        continue
                    item = to_item(record)
                    if not matches(item, customer=customer, types=types):
                        continue
                    echo(dumps(item.as_dict()) if as_json else render_item(item))
                    printed += 1
                    if limit is not None and printed >= limit:
                        return printed
    finally:
        await consumer.stop()
    return printed


# ---------------------------------------------------------------------------------------------- dlq
@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record of a dead-letter topic with its ``aqsha-dlq-*`` facts."""

    item: Item
    redriven: bool = False

    @property
    def reason(self) -> str:
        """Machine-readable reason (``invalid_json``, ``handler_error``...)."""
        return self.item.headers.get(DLQ_REASON, "?")

    @property
    def error(self) -> str:
        """The error text."""
        return self.item.headers.get(DLQ_ERROR, "")

    @property
    def original(self) -> tuple[str | None, int | None, int | None]:
        """Original topic, partition and offset."""
        h = self.item.headers

        def as_int(name: str) -> int | None:
            try:
                return int(h[name])
            except (KeyError, ValueError):
                return None

        return h.get(DLQ_TOPIC), as_int(DLQ_PARTITION), as_int(DLQ_OFFSET)

    def as_dict(self) -> dict[str, Any]:
        """For ``--json``."""
        topic, partition, offset = self.original
        h = self.item.headers
        return {
            "dlq_topic": self.item.topic,
            "partition": self.item.partition,
            "offset": self.item.offset,
            "timestamp": fmt_ts_ms(self.item.timestamp),
            "key": self.item.key,
            "type": self.item.type,
            "reason": self.reason,
            "error": self.error,
            "original_topic": topic,
            "original_partition": partition,
            "original_offset": offset,
            "group": h.get(DLQ_GROUP),
            "failed_at": h.get(DLQ_FAILED_AT),
            "attempts": h.get(DLQ_ATTEMPTS),
            "redriven": self.redriven,
            "headers": h,
            "value": masked_value(self.item.value),
        }


@dataclass
class DlqView:
    """A dead-letter topic: its records and the redrive watermark per partition."""

    topic: str
    original_topic: str
    letters: list[DeadLetter]
    watermarks: dict[int, int]
    ends: dict[int, int] = field(default_factory=dict)


def _dlq_names(spec: TopicSpec, suffix: str) -> tuple[str, str]:
    base = spec if not spec.is_dlq else next(t for t in TOPICS if dlq_name(t.name) == spec.name)
    return resolve(dlq_name(base.name), suffix), resolve(base.name, suffix)


async def _read_all(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition]
) -> list[ConsumerRecord[bytes, bytes]]:
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    ends = await consumer.end_offsets(tps)
    out: list[ConsumerRecord[bytes, bytes]] = []
    while True:
        positions = {tp: await consumer.position(tp) for tp in tps}
        if all(positions[tp] >= ends[tp] for tp in tps):
            break
        batch = await consumer.getmany(timeout_ms=500, max_records=5000)
        for tp, records in batch.items():
            out.extend(r for r in records if r.offset < ends[tp])
    out.sort(key=lambda r: (r.partition, r.offset))
    return out


async def _watermarks(consumer: AIOKafkaConsumer, tps: Sequence[TopicPartition]) -> dict[int, int]:
    committed = await asyncio.gather(*(consumer.committed(tp) for tp in tps))
    return {tp.partition: int(c) for tp, c in zip(tps, committed, strict=True) if c is not None}


async def read_dlq(settings: KafkaSettings, topic: str) -> DlqView:
    """Every dead letter of ``topic`` (the base topic or its ``.dlq``) and what was already redriven."""
    dlq, original = _dlq_names(base_topic(topic, settings.topic_suffix), settings.topic_suffix)
    consumer = await _consumer(settings, "dlq", group=REDRIVE_GROUP)
    try:
        tps = await _partitions(consumer, dlq)
        records = await _read_all(consumer, tps)
        watermarks = await _watermarks(consumer, tps)
        ends = {tp.partition: off for tp, off in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()
    letters = [DeadLetter(to_item(r), r.offset < watermarks.get(r.partition, 0)) for r in records]
    return DlqView(dlq, original, letters, watermarks, ends)


async def dlq_summary(settings: KafkaSettings) -> list[dict[str, Any]]:
    """Per dead-letter topic: records held and records not yet redriven."""
    consumer = await _consumer(settings, "dlq", group=REDRIVE_GROUP)
    try:
        existing = await _broker_topics(consumer)
        out = []
        for spec in TOPICS:
            name = resolve(dlq_name(spec.name), settings.topic_suffix)
            if name not in existing:
                out.append({"topic": name, "exists": False, "records": 0, "pending": 0})
                continue
            tps = [TopicPartition(name, p) for p in range(existing[name])]
            begins = await consumer.beginning_offsets(tps)
            ends = await consumer.end_offsets(tps)
            marks = await _watermarks(consumer, tps)
            records = sum(ends[tp] - begins[tp] for tp in tps)
            pending = sum(ends[tp] - max(begins[tp], marks.get(tp.partition, 0)) for tp in tps)
            out.append({"topic": name, "exists": True, "records": records, "pending": max(pending, 0)})
        return out
    finally:
        await consumer.stop()


def render_dlq_summary(rows: Sequence[dict[str, Any]]) -> str:
    """The ``dlq list`` overview."""
    body = table(
        ["dead-letter topic", "records", "not redriven"],
        [[r["topic"], r["records"] if r["exists"] else "MISSING", r["pending"]] for r in rows],
    )
    return body + "\n(`aqsha dlq list TOPIC` lists one topic's dead letters)"


def render_dlq_list(view: DlqView) -> str:
    """The dead letters of one topic as a table."""
    if not view.letters:
        return f"{view.topic}: no dead letters"
    rows: list[list[object]] = []
    for d in view.letters:
        topic, partition, offset = d.original
        where = f"{topic}[{partition}]@{offset}" if topic else "-"
        h = d.item.headers
        rows.append(
            [
                d.item.partition,
                d.item.offset,
                h.get(DLQ_FAILED_AT, "-")[:19],
                d.item.type or "?",
                d.reason,
                h.get(DLQ_ATTEMPTS, "-"),
                h.get(DLQ_GROUP, "-"),
                where,
                "yes" if d.redriven else "no",
                short(d.error, 60),
            ]
        )
    pending = sum(1 for d in view.letters if not d.redriven)
    head = f"{view.topic}: {len(view.letters)} dead letters, {pending} not redriven"
    cols = ["part", "offset", "failed at", "type", "reason", "att", "group", "original", "redriven", "error"]
    return head + "\n" + table(cols, rows)


def select_letter(view: DlqView, offset: int, partition: int | None) -> DeadLetter:
    """The dead letter at ``offset`` (and ``partition``); ``OpsError`` if none or ambiguous."""
    hits = [d for d in view.letters if d.item.offset == offset and partition in (None, d.item.partition)]
    if not hits:
        where = f"partition {partition} " if partition is not None else ""
        raise OpsError(f"{view.topic}: no dead letter at {where}offset {offset}")
    if len(hits) > 1:
        parts = ", ".join(str(d.item.partition) for d in hits)
        raise OpsError(
            f"{view.topic}: offset {offset} exists in partitions {parts}; add --partition", EXIT_USAGE
        )
    return hits[0]


def render_dlq_show(letter: DeadLetter) -> str:
    """One dead letter in full: the failure, the headers and the decoded envelope (or raw value)."""
    d = letter.as_dict()
    lines = [
        f"{d['dlq_topic']}[{d['partition']}]@{d['offset']}  {d['type'] or '?'}  key={d['key']}",
        f"  reason:    {d['reason']}",
        f"  error:     {d['error']}",
        f"  original:  {d['original_topic']}[{d['original_partition']}]@{d['original_offset']}",
        f"  group:     {d['group']}",
        f"  failed at: {d['failed_at']}",
        f"  attempts:  {d['attempts']}",
        f"  redriven:  {'yes' if letter.redriven else 'no'}",
        "  headers:",
    ]
    lines += [
        f"    {k}: {short(v, 200)}" for k, v in d["headers"].items() if not k.startswith(DLQ_HEADER_PREFIX)
    ]
    if letter.item.envelope is not None:
        lines.append("  payload:")
        body = json.dumps(masked_display(letter.item.envelope.payload), ensure_ascii=False, indent=2)
        lines.extend("    " + line for line in body.splitlines())
    else:
        lines.append(f"  value ({letter.item.error}):")
        lines.append("    " + d["value"][:4000])
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Redriven:
    """One dead letter sent back."""

    dlq_partition: int
    dlq_offset: int
    type: str | None
    topic: str
    partition: int
    offset: int


def redrive_headers(letter: DeadLetter, now: datetime) -> list[tuple[str, bytes]]:
    """The original headers without ``aqsha-dlq-*``, plus where and when it was redriven.

    The producer's ``aqsha-key-id``/``aqsha-signature`` stay: they sign the original topic, key and
    value, which a redrive keeps, so the record verifies again (``shared.trust``).
    """
    dropped = (REDRIVEN_FROM, REDRIVEN_AT)  # a letter redriven before gets fresh ones
    kept = [
        (k, v.encode())
        for k, v in letter.item.headers.items()
        if not k.startswith(DLQ_HEADER_PREFIX) and k not in dropped
    ]
    kept.append(
        (REDRIVEN_FROM, f"{letter.item.topic}[{letter.item.partition}]@{letter.item.offset}".encode())
    )
    kept.append((REDRIVEN_AT, now.isoformat().encode()))
    return kept


def require_selection(*, all_: bool, offset: int | None, reasons: Sequence[str]) -> None:
    """``OpsError`` (usage) unless a redrive says what to send: checked before connecting to Kafka."""
    if not all_ and offset is None and not reasons:
        raise OpsError("say what to redrive: --all, --offset N [--partition P] or --reason R", EXIT_USAGE)


def select_for_redrive(
    view: DlqView,
    *,
    all_: bool,
    offset: int | None,
    partition: int | None,
    reasons: Sequence[str],
    include_redriven: bool,
) -> list[DeadLetter]:
    """The dead letters a redrive would send; at least one of all/offset/reason must be given."""
    require_selection(all_=all_, offset=offset, reasons=reasons)
    chosen = []
    for d in view.letters:
        if d.redriven and not include_redriven:
            continue
        if offset is not None and d.item.offset != offset:
            continue
        if partition is not None and d.item.partition != partition:
            continue
        if reasons and d.reason not in reasons:
            continue
        chosen.append(d)
    return chosen


def _advance(view: DlqView, redriven: set[tuple[int, int]]) -> dict[int, int]:
    """New watermarks: per partition, past the contiguous run of redriven (or earlier) letters."""
    moved: dict[int, int] = {}
    by_partition: dict[int, list[DeadLetter]] = {}
    for d in view.letters:
        by_partition.setdefault(d.item.partition, []).append(d)
    for partition, letters in by_partition.items():
        mark = view.watermarks.get(partition, 0)
        new = mark
        for d in letters:
            if d.item.offset < mark:
                continue
            if (partition, d.item.offset) not in redriven:
                break
            new = d.item.offset + 1
        if new > mark:
            moved[partition] = new
    return moved


async def redrive(
    settings: KafkaSettings, view: DlqView, letters: Sequence[DeadLetter], *, now: datetime | None = None
) -> list[Redriven]:
    """Send dead letters back to their original topic, then remember them (redrive group offsets).

    Key, value and headers are the original ones (minus ``aqsha-dlq-*``, plus ``aqsha-redriven-*``),
    so the producer's signature still verifies; the original topic and partition are kept. Produce
    first, commit after: a crash in between resends, which the consumers' inbox and idempotency
    keys make harmless.
    """
    if not letters:
        return []
    when = now or datetime.now(UTC)
    producer = await _producer(settings)
    out: list[Redriven] = []
    try:
        topics = await _broker_topics(producer)
        for d in letters:
            target, partition, _ = d.original
            target = target or view.original_topic
            count = _require(topics, target)
            meta = await asyncio.wait_for(
                producer.send_and_wait(
                    target,
                    d.item.value,
                    key=d.item.key.encode() if d.item.key is not None else None,
                    headers=redrive_headers(d, when),
                    partition=partition if partition is not None and 0 <= partition < count else None,
                ),
                TIMEOUT_S,
            )
            out.append(
                Redriven(d.item.partition, d.item.offset, d.item.type, target, meta.partition, meta.offset)
            )
    finally:
        await producer.stop()
    moved = _advance(view, {(r.dlq_partition, r.dlq_offset) for r in out})
    if moved:
        consumer = await _consumer(settings, "dlq", group=REDRIVE_GROUP)
        try:
            offsets = {TopicPartition(view.topic, p): off for p, off in moved.items()}
            consumer.assign(list(offsets))  # a manual assignment: commits without joining the group
            await consumer.commit(offsets)
        finally:
            await consumer.stop()
        view.watermarks.update(moved)
    return out


def render_redriven(view: DlqView, done: Sequence[Redriven], *, dry_run: bool = False) -> str:
    """What a redrive did (or would do)."""
    verb = "would redrive" if dry_run else "redrove"
    if not done:
        return f"{view.topic}: nothing to redrive (already redriven letters need --include-redriven)"
    lines = [f"{view.topic}: {verb} {len(done)} dead letter(s) to {view.original_topic}"]
    for r in done:
        to = f"{r.topic}[{r.partition}]" + (f"@{r.offset}" if r.offset >= 0 else "")
        lines.append(f"  [{r.dlq_partition}]@{r.dlq_offset} {r.type or '?'} -> {to}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- lag
def consumer_groups() -> dict[str, str]:
    """Service name → Kafka consumer group id, from each service's settings (env overrides apply)."""
    from services.billing.settings import BillingSettings
    from services.bonus.settings import GROUP as BONUS_GROUP
    from services.notify.settings import NotifySettings
    from services.payments.settings import PaymentsSettings

    return {
        "payments": PaymentsSettings().consumer_group,
        "bonus": BONUS_GROUP,
        "billing": BillingSettings().group,
        "notify": NotifySettings().group,
    }


def group_topics(groups: dict[str, str] | None = None) -> list[tuple[str, list[str]]]:
    """Every consumer group with the registry topics it reads, plus the redrive group on the DLQs."""
    groups = groups if groups is not None else consumer_groups()
    out = []
    for service, group in groups.items():
        out.append((group, [t.name for t in TOPICS if service in t.consumers]))
    out.append((REDRIVE_GROUP, [dlq_spec(t).name for t in TOPICS]))
    return out


@dataclass(frozen=True, slots=True)
class LagRow:
    """Committed vs end offset of one group on one partition."""

    group: str
    topic: str
    partition: int
    committed: int | None
    start: int
    end: int

    @property
    def lag(self) -> int:
        """Records the group has still to consume (from the log start when nothing is committed)."""
        return max(self.end - (self.committed if self.committed is not None else self.start), 0)

    def as_dict(self) -> dict[str, Any]:
        """For ``--json``."""
        return {
            "group": self.group,
            "topic": self.topic,
            "partition": self.partition,
            "committed": self.committed,
            "end": self.end,
            "lag": self.lag,
        }


async def compute_lag(
    settings: KafkaSettings, *, only_groups: Sequence[str] = (), only_topics: Sequence[str] = ()
) -> tuple[list[LagRow], list[str]]:
    """Lag rows for every registry group (optionally filtered) and the topics that do not exist.

    A group the registry does not know (a tool's, a migration's, another team's) is looked up on the
    broker: its lag is shown on every registry topic and dead-letter topic where it has committed
    offsets (or on ``only_topics``).
    """
    wanted_topics = {base_topic(t, settings.topic_suffix).name for t in only_topics}
    registry = group_topics()
    plan = [
        (g, [t for t in topics if not wanted_topics or t in wanted_topics], False)
        for g, topics in registry
        if not only_groups or g in only_groups
    ]
    others = [g for g in dict.fromkeys(only_groups) if g not in {name for name, _ in registry}]
    if others:
        on_broker = await list_groups(settings)
        absent = [g for g in others if g not in on_broker]
        if absent:
            known = sorted({*on_broker, *(name for name, _ in registry)})
            raise OpsError(
                f"no consumer group {absent[0]!r} on the broker{did_you_mean(absent[0], known)} "
                f"(known: {', '.join(known)})",
                EXIT_USAGE,
            )
        every = [t.name for t in all_topics(include_dlq=True) if not wanted_topics or t.name in wanted_topics]
        plan += [(g, every, True) for g in others]
    rows: list[LagRow] = []
    missing: set[str] = set()
    for group, topics, discovered in plan:
        consumer = await _consumer(settings, "lag", group=group)
        try:
            existing = await _broker_topics(consumer)
            tps = []
            for t in topics:
                name = resolve(t, settings.topic_suffix)
                if name not in existing:
                    missing.add(name)
                    continue
                tps += [TopicPartition(name, p) for p in range(existing[name])]
            if not tps:
                continue
            starts = await consumer.beginning_offsets(tps)
            ends = await consumer.end_offsets(tps)
            committed = await asyncio.gather(*(consumer.committed(tp) for tp in tps))
        finally:
            await consumer.stop()
        for tp, c in zip(tps, committed, strict=True):
            if discovered and c is None:
                continue  # a group outside the registry: only where it has committed something
            rows.append(LagRow(group, tp.topic, tp.partition, c, starts[tp], ends[tp]))
    return rows, sorted(missing)


async def list_groups(settings: KafkaSettings) -> set[str]:
    """Every consumer group the broker lists (that these credentials may describe)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**kafka_client_kwargs(settings, "groups"))
    try:
        await asyncio.wait_for(admin.start(), TIMEOUT_S)
        listed = await asyncio.wait_for(admin.list_consumer_groups(), TIMEOUT_S)
    except Exception as exc:
        raise OpsError(f"cannot list the consumer groups at {settings.bootstrap}: {exc!r}") from None
    finally:
        await admin.close()
    return {str(entry[0]) for entry in listed}


def render_lag(
    rows: Sequence[LagRow],
    missing: Sequence[str],
    *,
    all_partitions: bool = False,
    requested: Sequence[str] = (),
) -> str:
    """Per group: partitions with records (or every partition) and the group's total lag."""
    out: list[str] = []
    groups: dict[str, list[LagRow]] = {}
    for r in rows:
        groups.setdefault(r.group, []).append(r)
    for group in requested:
        if group not in groups:
            out += [f"{group}: no committed offsets on these topics", ""]
    for group, grows in groups.items():
        total = sum(r.lag for r in grows)
        shown = [r for r in grows if all_partitions or r.end > 0 or r.committed is not None]
        out.append(f"{group}: total lag {total}")
        if shown:
            body = table(
                ["topic", "partition", "committed", "end", "lag"],
                [[r.topic, r.partition, r.committed, r.end, r.lag] for r in shown],
            )
            out.extend("  " + line for line in body.splitlines())
        out.append("")
    if missing:
        out.append("missing topics (run `aqsha topics apply`): " + ", ".join(missing))
    return "\n".join(out).rstrip() or "no consumer groups"
