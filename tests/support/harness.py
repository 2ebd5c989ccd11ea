"""One harness for service tests: start a service on the module's infrastructure, publish, collect, wait.

Every service's integration tests stand on these four pieces:

- ``until(check)``: poll a sync or async ``check`` until it returns something truthy and return it;
  ``NotReached`` (an ``AssertionError``) after ``timeout_s``. The only polling loop the tests use.
- ``Collector``: reads topics from the beginning without a consumer group (no group join), decodes
  envelopes, keeps dead letters with their headers; ``of(key, type)``, ``dead(key)``, and
  ``caught_up()`` to know it has read everything the broker holds.
- ``Service.publish(payload)``: an envelope signed by the principal that sends ``payload`` in
  production (``tests.support.trust``); ``producer=``/``signed_by=`` forge on purpose.
- ``Service.running(app, settings, schema=..., watch=[...])``: the topics, a pool on the service's
  schema, a producer and a collector around a started service (a FastStream app or anything with
  ``start()``/``stop()``), stopped afterwards. A service's fixture is::

      settings = service_settings(BonusSettings, module_settings, current_start=SWITCH_OVER)
      async with Bonus.running(create_app(settings), settings, schema="bonus", watch=[...]) as bonus:
          yield bonus

  where ``Bonus`` subclasses ``Service`` with the service's own vocabulary (``balance()``, ...).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Self, TypeVar, overload
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from faststream.kafka import KafkaBroker

from shared.clock import Clock, SystemClock
from shared.contracts.base import Contract
from shared.contracts.envelope import ContractError, Envelope, decode, encode, envelope_headers
from shared.db import create_pool
from shared.kafka import DLQ_ERROR, DLQ_REASON, assign_from_beginning, broker_factory
from shared.settings import Settings
from shared.topics import DLQ_SUFFIX, resolve, topic_for_contract
from tests.support import trust
from tests.support.kafka import create_topics

T = TypeVar("T")
SettingsT = TypeVar("SettingsT", bound=Settings)


# ---------------------------------------------------------------------------------------- waiting
class NotReached(AssertionError):
    """``until`` ran out of time."""


@overload
async def until(
    check: Callable[[], Awaitable[T | None]],
    timeout_s: float = ...,
    *,
    what: str = ...,
    interval_s: float = ...,
) -> T: ...


@overload
async def until(
    check: Callable[[], T | None],
    timeout_s: float = ...,
    *,
    what: str = ...,
    interval_s: float = ...,
) -> T: ...


async def until(
    check: Callable[[], Any],
    timeout_s: float = 30.0,
    *,
    what: str = "the condition",
    interval_s: float = 0.05,
) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy; return that value.

    ``check`` runs at least once, and once more after the deadline, so a slow last poll still
    counts. Raises ``NotReached`` naming ``what`` when it never holds.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        expired = time.monotonic() > deadline
        value = check()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return value
        if expired:
            raise NotReached(f"not reached in {timeout_s:g} s: {what}")
        await asyncio.sleep(interval_s)


# -------------------------------------------------------------------------------------- collecting
@dataclass(frozen=True)
class Record:
    """One record read back: raw, and decoded when it is an envelope on an ordinary topic."""

    topic: str
    key: bytes | None
    value: bytes
    headers: dict[str, str]
    envelope: Envelope[Any] | None = None

    @property
    def is_dead_letter(self) -> bool:
        """True for a record on a dead-letter topic."""
        return self.topic.endswith(DLQ_SUFFIX)

    @property
    def reason(self) -> str | None:
        """A dead letter's ``aqsha-dlq-reason``."""
        return self.headers.get(DLQ_REASON)

    @property
    def error(self) -> str | None:
        """A dead letter's ``aqsha-dlq-error``."""
        return self.headers.get(DLQ_ERROR)


class Collector:
    """Reads concrete topics from the beginning without a consumer group and keeps every record.

    Records on ``*.dlq`` topics are dead letters (kept raw, with their headers); records elsewhere
    are decoded into envelopes (a record that does not decode is kept raw in ``undecodable``).
    """

    def __init__(self, bootstrap: str, topics: Iterable[str]) -> None:
        self.bootstrap = bootstrap
        self.topics = list(topics)
        self.records: list[Record] = []
        self.envelopes: list[Envelope[Any]] = []
        self.dead_letters: list[Record] = []
        self.undecodable: list[Record] = []
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._partitions: list[TopicPartition] = []

    async def start(self) -> None:
        """Assign every partition of the topics from the beginning and poll in the background."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, fetch_max_bytes=8 * 1024 * 1024
        )
        await consumer.start()
        try:
            self._partitions = await assign_from_beginning(consumer, self.topics, timeout_s=20)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self._task = asyncio.create_task(self._run(), name="test-collector")

    async def stop(self) -> None:
        """Stop polling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=100, max_records=5000)
            for records in batch.values():
                for r in records:
                    self._keep(r.topic, r.key, r.value or b"", r.headers)

    def _keep(self, topic: str, key: bytes | None, value: bytes, raw: Sequence[tuple[str, bytes]]) -> None:
        headers = {k: v.decode(errors="replace") for k, v in raw}
        if topic.endswith(DLQ_SUFFIX):
            record = Record(topic, key, value, headers)
            self.dead_letters.append(record)
        else:
            try:
                env: Envelope[Any] | None = decode(value)
            except ContractError:
                env = None
            record = Record(topic, key, value, headers, env)
            if env is None:
                self.undecodable.append(record)
            else:
                self.envelopes.append(env)
        self.records.append(record)

    def of(
        self, key: object = None, type_: str | None = None, *, topic: str | None = None
    ) -> list[Envelope[Any]]:
        """Collected envelopes with record key ``key`` (a customer id, a date; any when None), of
        ``type_`` (any when None), on the concrete ``topic`` (any when None), in arrival order."""
        if topic is not None:
            found = [r.envelope for r in self.on(topic) if r.envelope is not None]
        else:
            found = list(self.envelopes)
        wanted = None if key is None else str(key)
        return [
            e for e in found if (wanted is None or e.key == wanted) and (type_ is None or e.type == type_)
        ]

    def dead(self, key: object = None) -> list[Record]:
        """Dead letters whose record key is ``key`` (every one when None), in arrival order."""
        wanted = None if key is None else str(key).encode()
        return [r for r in self.dead_letters if wanted is None or r.key == wanted]

    def on(self, topic: str) -> list[Record]:
        """Every record read from the concrete ``topic`` so far."""
        return [r for r in self.records if r.topic == topic]

    async def caught_up(self, timeout_s: float = 30.0) -> None:
        """Wait until everything the broker holds now on the watched topics has been collected.

        After it, a record that is not collected had not been published when it was called: use
        it before asserting that something did *not* happen, or how many times it did.
        """
        consumer = self._consumer
        assert consumer is not None, "the collector is not started"
        ends = await consumer.end_offsets(self._partitions)

        async def read_to_ends() -> bool:
            for tp, end in ends.items():
                if await consumer.position(tp) < end:
                    return False
            return True

        await until(read_to_ends, timeout_s, what=f"the collector read to the end of {self.topics}")


# ---------------------------------------------------------------------------------------- services
class Startable(Protocol):
    """A service under test: a FastStream app, or a runtime object with the same two methods."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def service_settings(cls: type[SettingsT], base: Settings, **overrides: Any) -> SettingsT:
    """A service's settings (``cls``) on ``base``'s broker, database, Redis prefix and topic suffix
    (``module_settings``), with ``overrides``; the rest from the environment and defaults."""
    return cls(**{**base.model_dump(), **overrides})


class Service:
    """A service started on the module's infrastructure, and what tests need to drive and observe it.

    ``pool`` is the test's own pool on the service's schema; ``events`` collects the ``watch``ed
    topics; ``clock`` is the service's clock (envelopes are stamped with it).
    """

    def __init__(
        self,
        app: Startable,
        settings: Settings,
        pool: asyncpg.Pool,
        events: Collector,
        producer: KafkaBroker,
        clock: Clock,
    ) -> None:
        self.app = app
        self.settings = settings
        self.pool = pool
        self.events = events
        self.producer = producer
        self.clock = clock

    @classmethod
    @contextlib.asynccontextmanager
    async def running(
        cls,
        app: Startable,
        settings: Settings,
        *,
        schema: str,
        watch: Iterable[str] = (),
        clock: Clock | None = None,
        pool_size: int = 4,
    ) -> AsyncIterator[Self]:
        """Create every topic, start collecting ``watch`` (base names, dead-letter topics included by
        their names), then start ``app``; stop all of it afterwards."""
        suffix = settings.kafka.topic_suffix
        await create_topics(settings.kafka)
        async with contextlib.AsyncExitStack() as stack:
            pool = await create_pool(settings.db.dsn, schema, max_size=pool_size)
            stack.push_async_callback(pool.close)
            producer = broker_factory(settings.kafka, client_id=f"{schema}-test-producer")
            await producer.connect()
            stack.push_async_callback(producer.stop)
            events = await stack.enter_async_context(
                Collector(settings.kafka.bootstrap, [resolve(t, suffix) for t in watch])
            )
            await app.start()
            stack.push_async_callback(app.stop)
            yield cls(app, settings, pool, events, producer, clock or SystemClock())

    # -- publishing ---------------------------------------------------------------------------------
    def topic(self, base: str) -> str:
        """The concrete name of a registry topic in this module."""
        return resolve(base, self.settings.kafka.topic_suffix)

    def envelope(
        self, payload: Contract, *, key: str | None = None, producer: str | None = None
    ) -> Envelope[Any]:
        """An envelope around ``payload`` as the principal that sends it in production (or
        ``producer``) would write it, stamped with the service's clock."""
        return trust.envelope(payload, key=key, producer=producer, occurred_at=self.clock.now())

    async def publish(
        self,
        message: Contract | Envelope[Any],
        *,
        key: str | None = None,
        producer: str | None = None,
        signed_by: str | None = None,
        times: int = 1,
    ) -> Envelope[Any]:
        """Publish to the contract's topic, signed by the envelope's producer; return the envelope.

        A contract gets a fresh envelope (``self.envelope``); an envelope is published as it is
        (``times`` > 1: the same event id again, i.e. redeliveries). To forge on purpose, name the
        envelope's ``producer`` or sign as another principal with ``signed_by``.
        """
        env = message if isinstance(message, Envelope) else self.envelope(message, key=key, producer=producer)
        topic = topic_for_contract(env.type).name
        value = encode(env)
        for _ in range(times):
            await self.publish_raw(
                topic,
                value,
                env.key.encode(),
                signed_by=signed_by or env.producer,
                headers=envelope_headers(env),
            )
        return env

    async def publish_raw(
        self,
        topic: str,
        value: bytes,
        key: bytes | None,
        *,
        signed_by: str | None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Publish bytes to a registry topic (base name), signed by ``signed_by`` (None: unsigned)."""
        name = self.topic(topic)
        signature = trust.signed(name, key, value, signed_by) if signed_by is not None else {}
        merged = {**(headers or {}), **signature}
        await self.producer.publish(value, topic=name, key=key, headers=merged or None)

    # -- observing ----------------------------------------------------------------------------------
    async def expect(
        self,
        key: object,
        type_: str,
        where: Callable[[Any], bool] | None = None,
        *,
        count: int = 1,
        timeout_s: float = 30.0,
    ) -> list[Any]:
        """Wait for ``count`` collected events of ``type_`` with record key ``key`` whose payload
        matches ``where``; return their payloads (at least ``count``, in arrival order)."""

        def found() -> list[Any] | None:
            hits = [e.payload for e in self.events.of(key, type_) if where is None or where(e.payload)]
            return hits if len(hits) >= count else None

        try:
            return await until(found, timeout_s, what=f"{count} × {type_} for {key}")
        except NotReached:
            letters = [(d.topic, d.reason, d.error) for d in self.events.dead(key)]
            got = [e.type for e in self.events.of(key)]
            raise NotReached(
                f"no {count} × {type_} for {key}; collected {got}; dead letters {letters}"
            ) from None

    async def handled(self, event_id: UUID, group: str | None = None, timeout_s: float = 30.0) -> None:
        """Wait until the service's inbox recorded ``event_id`` (its effects committed with it)."""

        async def recorded() -> bool:
            return bool(
                await self.pool.fetchval(
                    "SELECT true FROM inbox WHERE event_id = $1 "
                    "AND ($2::text IS NULL OR consumer_group = $2)",
                    event_id,
                    group,
                )
            )

        await until(recorded, timeout_s, what=f"event {event_id} in the inbox")

    async def drained(self, timeout_s: float = 30.0) -> None:
        """Wait until the service's outbox is empty and the collector read everything published."""

        async def empty() -> bool:
            return not await self.pool.fetchval("SELECT count(*) FROM outbox")

        await until(empty, timeout_s, what="the outbox drained")
        await self.events.caught_up(timeout_s)
