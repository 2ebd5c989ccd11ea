"""Kafka plumbing: the broker factory, the at-least-once subscriber helper and dead letters.

The subscriber helper is the one way services consume (README, "How a message is handled"):

* ``AckPolicy.MANUAL``: the offset is committed by ``msg.ack()`` only after the handler returned,
  i.e. after its database transaction committed. Never FastStream's at-most-once ``ACK_FIRST``.
* A message that is not valid JSON or fails its contract goes to ``<topic>.dlq`` at once, with the
  error, the original key, headers and bytes.
* A handler that raises is retried ``max_handler_attempts`` times with exponential backoff, then
  dead-lettered. If the dead-letter publish fails too, the message is nacked: FastStream seeks the
  partition back to it, so the offset is never committed past an unhandled message
  (faststream issue #2618).
* Every message ends in exactly one explicit ``ack()`` or ``nack()``; an unset ack status is what
  lets a later success commit past a failure.

``KafkaSettings.consume_mode = "batch"`` (``AQSHA_KAFKA_CONSUME_MODE``, docs/performance.md) polls
up to ``batch_max_records`` records at once and runs each record through the same steps; records
with the same key strictly in order, different keys concurrently (``batch_concurrency``). Offsets
are committed explicitly per partition, only past the longest prefix of finished records; a record
whose dead-letter publish failed is sought back to, with everything after it in its partition.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import inspect
import logging
import operator
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg
import redis.exceptions
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.kafka.message import FAKE_CONSUMER
from faststream.kafka.message import KafkaMessage as RecordMessage
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from shared.contracts.envelope import HEADER_CORRELATION_ID, ContractError, Envelope, decode
from shared.contracts.registry import contract_for
from shared.logging import bind_correlation, faststream_logger
from shared.observability import metrics_for
from shared.settings import KafkaSettings
from shared.topics import TOPICS, TopicSpec, all_topics, dlq_name, resolve
from shared.trust import TrustRegistry, Untrusted, check_permitted, origin_scope, verification_disabled

log = logging.getLogger("aqsha.kafka")

# Headers added to a dead letter; the original headers are kept beside them.
DLQ_REASON = "aqsha-dlq-reason"
DLQ_ERROR = "aqsha-dlq-error"
DLQ_TOPIC = "aqsha-dlq-original-topic"
DLQ_PARTITION = "aqsha-dlq-original-partition"
DLQ_OFFSET = "aqsha-dlq-original-offset"
DLQ_GROUP = "aqsha-dlq-group"
DLQ_FAILED_AT = "aqsha-dlq-failed-at"
DLQ_ATTEMPTS = "aqsha-dlq-attempts"

Handler = Callable[[Envelope[Any]], Awaitable[None]]


class Refused(Exception):
    """Raised by a handler for a valid, authentic record it must not apply (e.g. a replayed
    ``CustomerRegistered`` with different data): the transaction rolls back and the record goes to
    the dead-letter topic at once, with ``reason`` as its ``aqsha-dlq-reason``; it is never retried.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class DeadLetterPublisher(Protocol):
    """Publishes a failed record to its dead-letter topic, raising if it could not."""

    async def __call__(
        self, msg: KafkaMessage, *, reason: str, error: str, group: str, attempts: int
    ) -> None:
        """Dead-letter ``msg``."""


def _security(settings: KafkaSettings) -> BaseSecurity | None:
    proto = settings.security_protocol
    if proto == "PLAINTEXT":
        return None
    context: ssl.SSLContext | None = None
    if proto in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(cafile=settings.ssl_cafile)
        if settings.ssl_certfile:
            context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile)
    if proto == "SSL":
        return BaseSecurity(ssl_context=context, use_ssl=True)
    user = settings.sasl_username or ""
    password = settings.sasl_password.get_secret_value() if settings.sasl_password else ""
    use_ssl = proto == "SASL_SSL"
    mechanism = settings.sasl_mechanism or "PLAIN"
    cls = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}[mechanism]
    return cls(user, password, ssl_context=context, use_ssl=use_ssl)


def broker_factory(settings: KafkaSettings, *, client_id: str | None = None, **extra: Any) -> KafkaBroker:
    """A FastStream KafkaBroker from settings (bootstrap, client id, SASL/TLS, idempotence, acks)."""
    acks: Any = -1 if settings.acks == "all" else int(settings.acks)
    return KafkaBroker(
        settings.bootstrap.split(","),
        client_id=client_id or settings.client_id,
        security=_security(settings),
        enable_idempotence=settings.idempotent_producer,
        acks=acks,
        allow_auto_create_topics=False,
        # FastStream's own per-message INFO lines duplicate ours; keep its warnings and errors.
        log_level=logging.DEBUG,
        # Its logger without its plain-text handler: the broker's lines are JSON like ours.
        logger=faststream_logger("faststream.access.kafka"),
        **extra,
    )


async def dead_letter(
    broker: KafkaBroker,
    msg: KafkaMessage,
    *,
    reason: str,
    error: str,
    group: str,
    attempts: int,
    timeout_s: float = 10.0,
) -> None:
    """Publish the original record, byte for byte, to its topic's dead-letter topic and wait for the ack."""
    record = msg.raw_message
    assert not isinstance(record, tuple)
    headers = {k: (v.decode(errors="replace") if isinstance(v, bytes) else str(v)) for k, v in record.headers}
    headers.update(
        {
            DLQ_REASON: reason,
            DLQ_ERROR: error[:2000],
            DLQ_TOPIC: record.topic,
            DLQ_PARTITION: str(record.partition),
            DLQ_OFFSET: str(record.offset),
            DLQ_GROUP: group,
            DLQ_FAILED_AT: datetime.now(UTC).isoformat(),
            DLQ_ATTEMPTS: str(attempts),
        }
    )
    publish = broker.publish(
        record.value or b"",
        topic=dlq_name(record.topic),
        key=record.key,
        headers=headers,
        correlation_id=headers.get(HEADER_CORRELATION_ID) or headers.get("correlation_id"),
    )
    # Bounded: a missing dead-letter topic would otherwise hang on metadata for request_timeout_ms.
    await asyncio.wait_for(publish, timeout_s)


def subscribe(
    broker: KafkaBroker,
    topics: str | Sequence[str],
    *,
    group: str,
    handler: Handler,
    settings: KafkaSettings,
    trust: TrustRegistry,
    accept: Iterable[str] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    dead_letterer: DeadLetterPublisher | None = None,
    **subscriber_options: Any,
) -> Any:
    """Register an at-least-once handler for envelopes on one or more topics (``shared.topics`` names).

    Several topics share one consumer, so a service joins its group once (each join costs a
    rebalance, and ~3 s on Tansu). ``accept`` limits the contract types the handler sees; other
    (known) types on the topics are acknowledged and skipped: consumers are tolerant readers of
    topics they share.

    Every record is untrusted until ``trust`` has verified its signature and the registry allows its
    producer to write its contract on that topic under that key (``shared.trust``); a record that
    fails is dead-lettered with the reason and never reaches ``handler``. The handler runs with the
    verified sender as ``shared.trust.current_origin()``. A handler that raises ``Refused`` has
    its record dead-lettered at once with the refusal's reason.
    """
    names = [resolve(t, settings.topic_suffix) for t in ([topics] if isinstance(topics, str) else topics)]
    specs: dict[str, TopicSpec] = {}
    for name in names:
        found = _topic_spec(name, settings.topic_suffix)
        if found is None:
            raise ValueError(f"{name} is not a registry topic (shared.topics): no contract may be read there")
        specs[name] = found
    checks_off = verification_disabled()
    if checks_off:
        log.warning("TEST-ONLY: record verification is switched off", extra={"group": group})
    accepted = frozenset(accept) if accept is not None else None
    max_attempts = settings.max_handler_attempts
    backoff = settings.retry_backoff_ms / 1000
    transient_budget = settings.transient_retry_s
    dlq_timeout = settings.dlq_publish_timeout_s

    async def _to_dlq(msg: KafkaMessage, *, reason: str, error: str, group: str, attempts: int) -> None:
        await dead_letter(
            broker, msg, reason=reason, error=error, group=group, attempts=attempts, timeout_s=dlq_timeout
        )

    publish_dead_letter: DeadLetterPublisher = dead_letterer or _to_dlq
    batch = settings.consume_mode == "batch"
    concurrency = settings.batch_concurrency

    description, payload_schema = _subscriber_docs(names, accepted, group, settings.topic_suffix)
    subscriber_options.setdefault("description", description)
    if batch:
        subscriber_options.update(
            batch=True, max_records=settings.batch_max_records, batch_timeout_ms=settings.batch_timeout_ms
        )
    subscriber = broker.subscriber(
        *names,
        group_id=group,
        ack_policy=AckPolicy.MANUAL,
        auto_offset_reset="earliest",
        # AsyncAPI channel keys: FastStream appends ":<topic>" itself when there are several.
        title=group if len(names) > 1 else f"{group}:{names[0]}",
        **subscriber_options,
    )

    async def _refuse(msg: KafkaMessage, type_: str, exc: Untrusted | Refused, where: dict[str, Any]) -> str:
        """Dead-letter a refused record with its reason; nothing of it was applied."""
        metrics = metrics_for(broker)
        topic = where["topic"]
        log.warning(
            "record refused and dead-lettered", extra={**where, "reason": exc.reason, "error": exc.message}
        )
        metrics.failure(topic, type_, exc.reason)
        outcome = await _dead_letter_or_rewind(
            publish_dead_letter, msg, exc.reason, exc.message, group, 0, sleep, backoff
        )
        if outcome == "dead_lettered":
            metrics.dead_lettered(topic, exc.reason)
        metrics.message(topic, type_, outcome)
        return outcome

    async def _handle(msg: KafkaMessage, record: ConsumerRecord[Any, Any]) -> str:
        """Handle one record to its end, without acking; return its outcome (a metrics label).

        ``rewound`` means it could be neither handled nor dead-lettered: the caller must not commit
        past it and must seek its partition back to it.
        """
        metrics = metrics_for(broker)
        topic = record.topic
        where = {
            "topic": topic,
            "partition": record.partition,
            "offset": record.offset,
            "group": group,
        }
        origin = None
        if not checks_off:
            try:
                origin = trust.verify(topic, record.key, record.value or b"", record.headers)
            except Untrusted as exc:
                return await _refuse(msg, "unknown", exc, where)
        try:
            envelope = decode(record.value or b"")
        except ContractError as exc:
            log.warning(
                "malformed message dead-lettered", extra={**where, "reason": exc.code, "error": str(exc)}
            )
            raw = exc.raw_envelope
            type_ = raw.type if raw is not None and contract_for(raw.type) is not None else "unknown"
            metrics.failure(topic, type_, exc.code)
            outcome = await _dead_letter_or_rewind(
                publish_dead_letter, msg, exc.code, str(exc), group, 0, sleep, backoff
            )
            if outcome == "dead_lettered":
                metrics.dead_lettered(topic, exc.code)
            metrics.message(topic, type_, outcome)
            return outcome
        if origin is not None:
            try:
                check_permitted(specs[topic], origin, envelope, record.key)
            except Untrusted as exc:
                return await _refuse(msg, envelope.type, exc, where)
        if accepted is not None and envelope.type not in accepted:
            metrics.message(topic, envelope.type, "skipped")
            return "skipped"
        with bind_correlation(str(envelope.correlation_id)), origin_scope(origin):
            attempt = 0
            outage_since: float | None = None
            while attempt < max_attempts:
                attempt += 1
                started = time.perf_counter()
                try:
                    await handler(envelope)
                except Refused as exc:  # valid and authentic, but not to be applied: never retried
                    metrics.observe(topic, envelope.type, time.perf_counter() - started)
                    return await _refuse(msg, envelope.type, exc, where)
                except Exception as exc:  # a failing handler is isolated, retried, then dead-lettered
                    metrics.observe(topic, envelope.type, time.perf_counter() - started)
                    if is_transient(exc):
                        # The database or Redis is unreachable (a restart, a failover): the message is
                        # fine, so it is never dead-lettered for this. Retry without using up an
                        # attempt; after transient_retry_s give the partition back (rewind), so the
                        # message is redelivered and nothing after it is committed.
                        metrics.failure(topic, envelope.type, "transient")
                        attempt -= 1
                        now = time.monotonic()
                        outage_since = outage_since if outage_since is not None else now
                        if now - outage_since >= transient_budget:
                            log.warning("infrastructure still unavailable; rewinding", extra={**where,
                                        "event_type": envelope.type, "error": repr(exc)})  # fmt: skip
                            metrics.message(topic, envelope.type, "rewound")
                            return "rewound"
                        log.warning("infrastructure unavailable, retrying", extra={**where,
                                    "event_type": envelope.type, "error": repr(exc)})  # fmt: skip
                        metrics.retry(topic, envelope.type, "transient")
                        await sleep(min(max(backoff, 0.05) * 2 ** min(int(now - outage_since), 5), 2.0))
                        continue
                    metrics.failure(topic, envelope.type, "handler_error")
                    if attempt < max_attempts:
                        log.warning(
                            "handler failed, retrying",
                            extra={
                                **where,
                                "attempt": attempt,
                                "event_type": envelope.type,
                                "error": repr(exc),
                            },
                        )
                        metrics.retry(topic, envelope.type, "handler_error")
                        await sleep(backoff * 2 ** (attempt - 1))
                        continue
                    log.error(
                        "handler failed, dead-lettering",
                        extra={**where, "attempt": attempt, "event_type": envelope.type, "error": repr(exc)},
                    )
                    outcome = await _dead_letter_or_rewind(
                        publish_dead_letter, msg, "handler_error", repr(exc), group, attempt, sleep, backoff
                    )
                    if outcome == "dead_lettered":
                        metrics.dead_lettered(topic, "handler_error")
                    metrics.message(topic, envelope.type, outcome)
                    return outcome
                metrics.observe(topic, envelope.type, time.perf_counter() - started)
                metrics.message(topic, envelope.type, "ok")
                return "ok"
        raise AssertionError("unreachable: the last attempt returns")

    if not batch:

        @subscriber
        async def _consume(msg: KafkaMessage) -> None:
            record = msg.raw_message
            assert not isinstance(record, tuple)
            # Exactly one explicit ack() or nack() per message (module docstring).
            if await _handle(msg, record) == "rewound":
                await msg.nack()
            else:
                await msg.ack()

        _document_subscriber(broker, subscriber, names, payload_schema, group)
        return _consume

    @subscriber
    async def _consume_batch(msg: KafkaMessage) -> None:
        records = msg.raw_message if isinstance(msg.raw_message, tuple) else (msg.raw_message,)
        await _run_batch(msg, records, _handle, concurrency)

    _document_subscriber(broker, subscriber, names, payload_schema, group)
    return _consume_batch


def _chain_key(record: ConsumerRecord[Any, Any]) -> Any:
    """Records with the same key are handled in order; keyless ones in their partition's order."""
    if record.key is not None:
        return record.key
    return (record.topic, record.partition)


def _record_message(batch: KafkaMessage, record: ConsumerRecord[Any, Any]) -> KafkaMessage:
    """A one-record message of a batch, for dead-letter publishers (they read ``raw_message``)."""
    headers = {k: (v.decode(errors="replace") if isinstance(v, bytes) else str(v)) for k, v in record.headers}
    return RecordMessage(
        raw_message=record, body=record.value or b"", headers=headers, consumer=FAKE_CONSUMER
    )


async def _run_batch(
    batch: KafkaMessage,
    records: Sequence[ConsumerRecord[Any, Any]],
    handle: Callable[[KafkaMessage, ConsumerRecord[Any, Any]], Awaitable[str]],
    concurrency: int,
) -> None:
    """Handle a polled batch: one key strictly in order, different keys concurrently (bounded).

    Then, per partition, commit the offset after the longest prefix of finished records and seek
    back to the first unfinished one (a record whose dead-letter publish failed, or a later record
    of its partition that was not started because of it). So nothing is committed past an
    unhandled record; records after it that did run are redelivered and de-duplicated by the inbox,
    as after any crash.
    """
    chains: dict[Any, list[ConsumerRecord[Any, Any]]] = {}
    for record in records:
        chains.setdefault(_chain_key(record), []).append(record)
    finished: set[tuple[str, int, int]] = set()
    rewind: dict[tuple[str, int], int] = {}
    gate = asyncio.Semaphore(concurrency)

    async def run_chain(chain: list[ConsumerRecord[Any, Any]]) -> None:
        async with gate:
            for record in chain:
                tp = (record.topic, record.partition)
                stop_at = rewind.get(tp)
                if stop_at is not None and record.offset > stop_at:
                    return  # its partition is sought back before it: it is redelivered
                try:
                    outcome = await handle(_record_message(batch, record), record)
                except Exception:  # never expected (handle() isolates failures): keep the record
                    log.exception("unexpected error in a batch; rewinding to the record")
                    outcome = "rewound"
                if outcome == "rewound":
                    rewind[tp] = min(rewind.get(tp, record.offset), record.offset)
                    return  # later records of this key wait for it (strict order per key)
                finished.add((record.topic, record.partition, record.offset))

    await asyncio.gather(*(run_chain(chain) for chain in chains.values()))

    offsets: dict[tuple[str, int], list[int]] = {}
    for record in records:
        offsets.setdefault((record.topic, record.partition), []).append(record.offset)
    commits: dict[TopicPartition, int] = {}
    seeks: dict[TopicPartition, int] = {}
    for (topic, partition), offs in offsets.items():
        tp = TopicPartition(topic, partition)
        for offset in sorted(offs):
            if (topic, partition, offset) not in finished:
                seeks[tp] = offset
                break
            commits[tp] = offset + 1
    consumer: Any = batch.consumer
    if commits:
        try:
            await consumer.commit(commits)
        except Exception as exc:  # e.g. a rebalance took the partition: its new owner redelivers
            log.warning("batch offset commit failed", extra={"error": repr(exc)})
    for tp, offset in seeks.items():
        consumer.seek(tp, offset)


_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    ConnectionError,  # refused, reset, aborted, broken pipe
    TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # shutting down / cannot connect now
    asyncpg.exceptions.TooManyConnectionsError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


_NETWORK_ERRNOS = frozenset(
    {errno.ECONNREFUSED, errno.ECONNRESET, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT}
)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) means "infrastructure unavailable", not "bad message".

    Those are retried until the infrastructure is back and never dead-letter a valid message.
    asyncpg's ``InterfaceError`` counts only for closed connections or pools, since it is otherwise a
    programming error that retrying cannot fix.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _TRANSIENT_TYPES):
            return True
        if isinstance(current, asyncpg.exceptions.InterfaceError) and "clos" in str(current):
            return True
        if isinstance(current, OSError) and (
            current.errno in _NETWORK_ERRNOS or str(current).startswith("Multiple exceptions")
        ):  # asyncpg's connect() to several addresses
            return True
        current = current.__cause__ or current.__context__
    return False


async def _dead_letter_or_rewind(
    publish: DeadLetterPublisher,
    msg: KafkaMessage,
    reason: str,
    error: str,
    group: str,
    attempts: int,
    sleep: Callable[[float], Awaitable[None]],
    backoff: float,
) -> str:
    """Dead-letter ``msg``; return the outcome (a metrics label): ``dead_lettered`` or ``rewound``.

    ``rewound``: the publish failed; after a pause the caller seeks back to the message (nothing may
    be skipped) and it is tried again.
    """
    try:
        await publish(msg, reason=reason, error=error, group=group, attempts=attempts)
    except Exception:
        log.exception("dead-letter publish failed; rewinding to the message")
        await sleep(max(backoff, 0.5))
        return "rewound"
    return "dead_lettered"


# -- AsyncAPI documentation (no effect on consuming or publishing) ------------------------------------


def _never(_msg: Any) -> bool:
    return False


def envelope_schema(types: Iterable[str]) -> Any:
    """The union of ``Envelope[<contract>]`` of the named contracts (sorted), for AsyncAPI payloads."""
    models = [Envelope[m] for m in (contract_for(t) for t in sorted(set(types))) if m is not None]  # type: ignore[valid-type]
    if not models:
        return None
    return functools.reduce(operator.or_, models)


def _topic_spec(name: str, suffix: str) -> TopicSpec | None:
    for spec in TOPICS:
        if resolve(spec.name, suffix) == name:
            return spec
    return None


def _subscriber_docs(
    names: Sequence[str], accepted: frozenset[str] | None, group: str, suffix: str
) -> tuple[str, Any]:
    """The AsyncAPI description of a ``subscribe()`` consumer and the union of envelopes it reads."""
    lines = [f"Consumer group `{group}`: at-least-once, inbox-deduplicated; failures go to `<topic>.dlq`."]
    types: set[str] = set()
    for name in names:
        spec = _topic_spec(name, suffix)
        if spec is None:
            continue
        read = [c for c in spec.contracts if accepted is None or c in accepted]
        types.update(read)
        lines.append(f"`{name}`: {', '.join(read) or '(none)'}; other types are acknowledged and skipped.")
    return "\n".join(lines), envelope_schema(types)


def _document_subscriber(
    broker: KafkaBroker, subscriber: Any, names: Sequence[str], schema: Any, group: str
) -> None:
    """Give a ``subscribe()`` consumer typed payloads in AsyncAPI and declare its dead-letter topics.

    The real handler decodes envelopes itself, so FastStream sees no payload type. A second,
    documentation-only handler whose filter never matches carries the schema: FastStream tries
    handlers in registration order and the real one, registered first, takes every message.
    """
    if schema is not None:

        async def envelope(envelope: Any) -> None:  # never called: its filter never matches
            raise AssertionError("documentation-only handler")

        envelope.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter("envelope", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=schema)],
            return_annotation=None,
        )
        subscriber(envelope, filter=_never)
    for name in names:
        dlq = dlq_name(name)
        broker.publisher(
            dlq,
            title=f"{dlq}:{group}",
            description=f"Dead letters of `{name}` from group `{group}`: the original key, headers and "
            "bytes, plus aqsha-dlq-reason/-error/-original-topic/-partition/-offset/-group/-failed-at/"
            "-attempts headers.",
            include_in_schema=True,
        )


def document_publishers(broker: KafkaBroker, service: str, topic_suffix: str = "") -> list[str]:
    """Declare, for AsyncAPI only, the topics ``service`` produces (``shared.topics`` producers).

    Services publish through the outbox relay (``broker.publish``), which FastStream cannot see;
    these publishers are never called. Returns the documented topic names.
    """
    documented: list[str] = []
    for spec in TOPICS:
        if service not in spec.producers:
            continue
        name = resolve(spec.name, topic_suffix)
        broker.publisher(
            name,
            title=f"{name}:{service}",
            description=f"{spec.description} Key: {spec.key}. Written via the transactional outbox.",
            schema=envelope_schema(spec.contracts),
            include_in_schema=True,
        )
        documented.append(name)
    return documented


async def assign_from_beginning(
    consumer: AIOKafkaConsumer, topics: Iterable[str], *, timeout_s: float = 5.0
) -> list[TopicPartition]:
    """Assign every partition of ``topics`` to a started group-less consumer and seek to the start.

    Tools and tests read this way (no consumer group, so no slow group join). A topic created a
    moment ago may not be in the client's metadata yet: it is refreshed until the partitions appear,
    and ``LookupError`` is raised if a topic has none after ``timeout_s``.
    """
    tps: list[TopicPartition] = []
    for topic in topics:
        deadline = time.monotonic() + timeout_s
        partitions = consumer.partitions_for_topic(topic)
        while not partitions and time.monotonic() < deadline:
            await consumer._client.force_metadata_update()
            await asyncio.sleep(0.1)
            partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise LookupError(f"topic {topic} has no partitions after {timeout_s:.0f}s")
        tps += [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    return tps


async def ensure_topics(settings: KafkaSettings, specs: Iterable[TopicSpec] | None = None) -> list[str]:
    """Create every registry topic and its dead-letter topic that does not exist yet; return those created.

    Topics as code: partitions, retention and ``segment.ms`` come from ``shared.topics``, the
    replication factor and ``min.insync.replicas`` from ``settings`` (``shared.topic_config``, the rule
    the Strimzi manifests follow too). Existing topics are left as they are (a partition increase is
    an operator decision, as it moves keys).
    """
    from shared.topic_config import topic_config

    wanted: list[tuple[str, int, dict[str, str]]] = []
    for spec in specs if specs is not None else all_topics(include_dlq=True):
        rf, min_isr = settings.replication_factor, settings.min_insync_replicas
        config = topic_config(spec, replication_factor=rf, min_insync_replicas=min_isr)
        name = resolve(spec.name, settings.topic_suffix)
        wanted.append((name, spec.partitions, {key: str(value) for key, value in config.items()}))
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap.split(","), client_id=settings.client_id,
                                **_admin_security(settings))  # fmt: skip
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(
                name,
                num_partitions=parts,
                replication_factor=settings.replication_factor,
                topic_configs=config,
            )
            for name, parts, config in wanted
            if name not in existing
        ]
        if new:
            await admin.create_topics(new)
        return [t.name for t in new]
    finally:
        await admin.close()


def _admin_security(settings: KafkaSettings) -> dict[str, Any]:
    security = _security(settings)
    if security is None:
        return {}
    from faststream.kafka.security import parse_security

    return dict(parse_security(security))
