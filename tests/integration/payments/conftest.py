"""One running payments service per test module, driven through Kafka; a group-less event collector."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID, uuid4

import asyncpg
import pytest_asyncio
from aiokafka import AIOKafkaConsumer

from services.payments.app import PaymentsRuntime
from services.payments.settings import PaymentsSettings
from shared.clock import ManualClock
from shared.contracts.base import Contract
from shared.contracts.common import AccountKind, Channel, TariffProfile
from shared.contracts.customers import CustomerRegistered
from shared.contracts.envelope import Envelope, decode, encode
from shared.contracts.payments import TopUp, TopUpCompleted
from shared.kafka import assign_from_beginning
from shared.settings import Settings
from shared.topics import dlq_name, resolve, topic_for_contract
from tests.support.kafka import create_topics
from tests.support.trust import envelope, signed

T = TypeVar("T")
START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
WATCHED = ("aqsha.payments.events", "aqsha.payments.otp")


async def until(check: Callable[[], Awaitable[T | None] | T | None], timeout_s: float = 30.0) -> T:
    """Poll ``check`` until it returns something truthy; return it."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.03)


@dataclass
class Collector:
    """Reads the payments event/OTP topics and the commands DLQ without a group (no join pause)."""

    bootstrap: str
    topics: list[str]
    envelopes: list[Envelope[Any]] = field(default_factory=list)
    dead_letters: list[tuple[bytes | None, bytes | None, dict[str, str]]] = field(default_factory=list)
    dlq_topic: str = ""
    _task: asyncio.Task[None] | None = None
    _consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        """Assign every partition from the beginning and poll in the background."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        await assign_from_beginning(consumer, self.topics)
        self._consumer = consumer
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=100, max_records=5000)
            for records in batch.values():
                for r in records:
                    if r.topic == self.dlq_topic:
                        headers = {k: v.decode() for k, v in r.headers}
                        self.dead_letters.append((r.key, r.value, headers))
                    else:
                        self.envelopes.append(decode(r.value or b""))

    async def stop(self) -> None:
        """Stop polling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    def of(self, customer: UUID, type_: str | None = None) -> list[Envelope[Any]]:
        """Collected envelopes of a customer (optionally of one type), in arrival order."""
        key = str(customer)
        return [e for e in self.envelopes if e.key == key and (type_ is None or e.type == type_)]


@dataclass
class Payments:
    """The running payments service and what tests need to drive and observe it."""

    runtime: PaymentsRuntime
    settings: PaymentsSettings
    clock: ManualClock
    pool: asyncpg.Pool
    events: Collector

    async def publish(self, payload: Contract, *, key: str | None = None) -> Envelope[Any]:
        """Publish an envelope to the contract's topic as its producer would, signed by it."""
        env = envelope(payload, key=key, occurred_at=self.clock.now())
        await self.publish_envelope(env)
        return env

    async def publish_envelope(self, env: Envelope[Any]) -> None:
        """Publish an envelope to its contract's topic, signed by its ``producer``."""
        await self.publish_raw(topic_for_contract(env.type).name, encode(env), env.key.encode(), env.producer)

    async def publish_raw(self, topic: str, value: bytes, key: bytes, principal: str) -> None:
        """Publish bytes to a base-named topic, signed by ``principal`` (the concrete topic's name)."""
        name = resolve(topic, self.settings.kafka.topic_suffix)
        headers = signed(name, key, value, principal)
        await self.runtime.broker.publish(value, topic=name, key=key, headers=headers)

    async def outcome(
        self, customer: UUID, type_: str, where: Callable[[Any], bool] = lambda _: True, count: int = 1
    ) -> list[Any]:
        """Wait for ``count`` events of ``type_`` matching ``where``; return the payloads."""

        def found() -> list[Any] | None:
            hits = [e.payload for e in self.events.of(customer, type_) if where(e.payload)]
            return hits if len(hits) >= count else None

        try:
            return await until(found)
        except AssertionError:
            errors = [h.get("aqsha-dlq-error") for _, _, h in self.events.dead_letters]
            raise AssertionError(f"no {type_} for {customer}; dead letters: {errors}") from None

    async def for_request(self, customer: UUID, request_id: UUID) -> Envelope[Any]:
        """The first outcome event carrying ``request_id``."""

        def found() -> Envelope[Any] | None:
            for e in self.events.of(customer):
                if getattr(e.payload, "request_id", None) == request_id:
                    return e
            return None

        return await until(found)

    async def customer(self, *, profile: TariffProfile = TariffProfile.KASPI, gold: int = 0) -> UUID:
        """Register a fresh customer, wait until payments has it, optionally top up GOLD."""
        cid = uuid4()
        await self.publish(
            CustomerRegistered(
                customer_id=cid,
                phone="+77011234567",
                iin="900101300123",
                full_name="Aigerim Sultanova",
                tariff_profile=profile,
            )
        )
        await until(
            lambda: self.pool.fetchval("SELECT count(*) = 2 FROM accounts WHERE customer_id = $1", cid)
        )
        if gold:
            rid = uuid4()
            await self.publish(
                TopUp(
                    request_id=rid,
                    customer_id=cid,
                    channel=Channel.TERMINAL,
                    account=AccountKind.GOLD,
                    amount=gold,
                )
            )
            await self.outcome(cid, TopUpCompleted.TYPE, lambda p: p.request_id == rid)
        return cid

    async def balance(self, customer: UUID, kind: str = "GOLD") -> int:
        """A customer account balance."""
        return int(
            await self.pool.fetchval(
                "SELECT balance FROM accounts WHERE customer_id = $1 AND kind = $2", customer, kind
            )
        )

    async def status(self, payment_id: UUID) -> str | None:
        """A payment's status."""
        value = await self.pool.fetchval("SELECT status FROM payments WHERE payment_id = $1", payment_id)
        return str(value) if value is not None else None


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def payments(module_settings: Settings) -> AsyncIterator[Payments]:
    """The payments service, started once for the module (one consumer-group join)."""
    await create_topics(module_settings.kafka)
    settings = PaymentsSettings(
        **{k: getattr(module_settings, k) for k in type(module_settings).model_fields},
        otp_ttl_s=300,
        saga_timeout_s=60,
        provider_delay_s=30,
        janitor_interval_s=0.05,
    )
    settings.db.max_size = 20
    clock = ManualClock(START)
    runtime = PaymentsRuntime(settings, clock=clock)
    suffix = settings.kafka.topic_suffix
    dlq_topic = resolve(dlq_name("aqsha.payments.commands"), suffix)  # created by create_topics
    collector = Collector(
        settings.kafka.bootstrap, [*(resolve(t, suffix) for t in WATCHED), dlq_topic], dlq_topic=dlq_topic
    )
    await collector.start()
    await runtime.start()
    assert runtime.pool is not None
    try:
        yield Payments(runtime, settings, clock, runtime.pool, collector)
    finally:
        await runtime.stop()
        await collector.stop()


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def balanced_ledger(request: Any) -> AsyncIterator[None]:
    """After every test that used the service: the ledger sums to zero and no balance is negative."""
    yield
    if "payments" not in request.fixturenames:
        return
    svc: Payments = request.getfixturevalue("payments")
    assert await svc.pool.fetchval("SELECT coalesce(sum(amount), 0) FROM ledger_entries") == 0
    assert await svc.pool.fetchval("SELECT count(*) FROM accounts WHERE balance < 0") == 0
    # Customer balances equal the sum of their ledger entries.
    mismatched = await svc.pool.fetchval(
        "SELECT count(*) FROM accounts a LEFT JOIN (SELECT customer_id, account, sum(amount) AS s "
        "FROM ledger_entries WHERE customer_id IS NOT NULL GROUP BY 1, 2) l "
        "ON l.customer_id = a.customer_id AND l.account = a.kind WHERE a.balance <> coalesce(l.s, 0)"
    )
    assert mismatched == 0
