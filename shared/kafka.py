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
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from shared.contracts.envelope import HEADER_CORRELATION_ID, ContractError, Envelope, decode
from shared.logging import bind_correlation
from shared.settings import KafkaSettings
from shared.topics import TopicSpec, all_topics, dlq_name, resolve

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
    """
    names = [resolve(t, settings.topic_suffix) for t in ([topics] if isinstance(topics, str) else topics)]
    accepted = frozenset(accept) if accept is not None else None
    max_attempts = settings.max_handler_attempts
    backoff = settings.retry_backoff_ms / 1000
    dlq_timeout = settings.dlq_publish_timeout_s

    async def _to_dlq(msg: KafkaMessage, *, reason: str, error: str, group: str, attempts: int) -> None:
        await dead_letter(
            broker, msg, reason=reason, error=error, group=group, attempts=attempts, timeout_s=dlq_timeout
        )

    publish_dead_letter: DeadLetterPublisher = dead_letterer or _to_dlq

    @broker.subscriber(
        *names,
        group_id=group,
        ack_policy=AckPolicy.MANUAL,
        auto_offset_reset="earliest",
        title=f"{'+'.join(names)}:{group}",
        **subscriber_options,
    )
    async def _consume(msg: KafkaMessage) -> None:
        record = msg.raw_message
        assert not isinstance(record, tuple)
        where = {
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "group": group,
        }
        try:
            envelope = decode(record.value or b"")
        except ContractError as exc:
            log.warning(
                "malformed message dead-lettered", extra={**where, "reason": exc.code, "error": str(exc)}
            )
            await _dead_letter_or_rewind(
                publish_dead_letter, msg, exc.code, str(exc), group, 0, sleep, backoff
            )
            return
        if accepted is not None and envelope.type not in accepted:
            await msg.ack()
            return
        with bind_correlation(str(envelope.correlation_id)):
            for attempt in range(1, max_attempts + 1):
                try:
                    await handler(envelope)
                except Exception as exc:  # a failing handler is isolated, retried, then dead-lettered
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
                        await sleep(backoff * 2 ** (attempt - 1))
                        continue
                    log.error(
                        "handler failed, dead-lettering",
                        extra={**where, "attempt": attempt, "event_type": envelope.type, "error": repr(exc)},
                    )
                    await _dead_letter_or_rewind(
                        publish_dead_letter, msg, "handler_error", repr(exc), group, attempt, sleep, backoff
                    )
                    return
                else:
                    await msg.ack()
                    return

    return _consume


async def _dead_letter_or_rewind(
    publish: DeadLetterPublisher,
    msg: KafkaMessage,
    reason: str,
    error: str,
    group: str,
    attempts: int,
    sleep: Callable[[float], Awaitable[None]],
    backoff: float,
) -> None:
    try:
        await publish(msg, reason=reason, error=error, group=group, attempts=attempts)
    except Exception:
        # Nothing may be skipped: rewind to this message and try again after a pause.
        log.exception("dead-letter publish failed; rewinding to the message")
        await sleep(max(backoff, 0.5))
        await msg.nack()
        return
    await msg.ack()


async def ensure_topics(settings: KafkaSettings, specs: Iterable[TopicSpec] | None = None) -> list[str]:
    """Create every registry topic and its dead-letter topic that does not exist yet; return those created.

    Topics as code: partitions and retention come from ``shared.topics``. Existing topics are left
    as they are (a partition increase is an operator decision, as it moves keys).
    """
    wanted: list[tuple[str, int, int]] = []
    for spec in specs if specs is not None else all_topics(include_dlq=True):
        wanted.append((resolve(spec.name, settings.topic_suffix), spec.partitions, spec.retention_ms))
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
                topic_configs={"retention.ms": str(retention)},
            )
            for name, parts, retention in wanted
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
