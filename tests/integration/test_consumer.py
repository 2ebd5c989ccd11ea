"""The subscriber helper on a real broker: inbox de-duplication, dead letters, and no skipped offsets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import asyncpg
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, TopicPartition
from faststream.kafka import KafkaBroker, KafkaMessage

from shared.contracts.customers import CustomerRegistered
from shared.contracts.envelope import Envelope, encode, new_envelope
from shared.db import Conn, create_pool
from shared.inbox import Inbox
from shared.kafka import DLQ_ERROR, DLQ_REASON, DLQ_TOPIC, broker_factory, dead_letter, subscribe
from shared.settings import Settings
from shared.topics import dlq_name, resolve
from tests.support.harness import until
from tests.support.kafka import create_topics, read_records, spec
from tests.support.trust import publish, registry, signed

pytestmark = pytest.mark.integration
TOPIC = "aqsha.customers.events"


@pytest.fixture(params=["per_message", "batch"], autouse=True)
def consume_mode(request: pytest.FixtureRequest, settings: Settings) -> str:
    """Every guarantee is tested in both consume modes (``KafkaSettings.consume_mode``)."""
    mode: str = request.param
    settings.kafka.consume_mode = mode  # type: ignore[assignment]
    return mode


@pytest_asyncio.fixture(loop_scope="session")
async def pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """Kernel-schema pool with an effects table."""
    p = await create_pool(pg_dsn, "kernel", max_size=5)
    await p.execute("CREATE TABLE effects (event_id uuid NOT NULL, name text NOT NULL)")
    yield p
    await p.close()


def _customer(name: str, customer: Any = None) -> Envelope[CustomerRegistered]:
    payload = CustomerRegistered(
        customer_id=customer or uuid4(), phone="+77012345678", iin="900101300123", full_name=name
    )
    return new_envelope(payload, producer="onboarding", occurred_at=datetime.now(UTC))


def _group(settings: Settings, name: str) -> str:
    """A consumer group of this test only: reusing one across tests (on another topic) makes the
    broker wait out a rebalance of the stale member before the next join (~13 s on Tansu)."""
    return f"{name}{settings.kafka.topic_suffix}"


@asynccontextmanager
async def running(broker: KafkaBroker) -> AsyncIterator[KafkaBroker]:
    """Start (joins the group) and stop a broker."""
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()


async def _committed_and_end(settings: Settings, group: str) -> tuple[dict[int, int | None], dict[int, int]]:
    topic = resolve(TOPIC, settings.kafka.topic_suffix)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(spec(TOPIC).partitions)]
        committed = {tp.partition: await consumer.committed(tp) for tp in tps}
        ends = {tp.partition: off for tp, off in (await consumer.end_offsets(tps)).items()}
        return committed, ends
    finally:
        await consumer.stop()


async def test_every_message_redelivered_twice_has_its_effect_once(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    await create_topics(settings.kafka, TOPIC)
    inbox = Inbox("test-inbox")
    envelopes = [_customer(f"c{i}") for i in range(60)]

    async def handle(env: Envelope[Any]) -> None:
        async def effect(conn: Conn) -> None:
            await conn.execute("INSERT INTO effects VALUES ($1, $2)", env.event_id, env.payload.full_name)

        await inbox.once(pool, env, effect)

    broker = broker_factory(settings.kafka)
    subscribe(
        broker,
        TOPIC,
        group=_group(settings, "test-inbox"),
        handler=handle,
        settings=settings.kafka,
        trust=registry(),
    )
    async with running(broker):
        for _ in range(3):  # the original and two redeliveries
            for env in envelopes:
                await publish(broker, env, resolve(TOPIC, settings.kafka.topic_suffix))

        async def all_committed() -> bool:
            committed, ends = await _committed_and_end(settings, _group(settings, "test-inbox"))
            return all((committed[p] or 0) == ends[p] for p in ends)

        await until(all_committed)
    assert await pool.fetchval("SELECT count(*) FROM effects") == 60
    assert await pool.fetchval("SELECT count(DISTINCT event_id) FROM effects") == 60
    assert await pool.fetchval("SELECT count(*) FROM inbox WHERE consumer_group = 'test-inbox'") == 60


async def test_malformed_and_failing_messages_go_to_the_dead_letter_topic(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    await create_topics(settings.kafka, TOPIC)
    customer = uuid4()
    key = str(customer).encode()
    good1, poison, good2 = (
        _customer("first", customer),
        _customer("poison", customer),
        _customer("second", customer),
    )
    schema_invalid = json.loads(encode(_customer("x", customer)))
    schema_invalid["payload"]["phone"] = 12345  # wrong type
    processed: list[str] = []
    attempts = {"poison": 0}

    async def handle(env: Envelope[Any]) -> None:
        if env.payload.full_name == "poison":
            attempts["poison"] += 1
            raise RuntimeError("handler bug")
        processed.append(env.payload.full_name)

    broker = broker_factory(settings.kafka)
    subscribe(
        broker,
        TOPIC,
        group=_group(settings, "test-dlq"),
        handler=handle,
        settings=settings.kafka,
        trust=registry(),
    )
    topic = resolve(TOPIC, settings.kafka.topic_suffix)
    async with running(broker):
        for value in (
            encode(good1),
            b"{not json",
            json.dumps(schema_invalid).encode(),
            encode(poison),
            encode(good2),
        ):
            # The onboarding system signs what it writes, garbage included: what is refused here is
            # the content, not the sender (test_trust.py covers senders).
            headers = {"x-origin": "test", **signed(topic, key, value, "onboarding")}
            await broker.publish(value, topic=topic, key=key, headers=headers)

        async def drained() -> bool:
            return processed == ["first", "second"]

        await until(drained)
    dead = await read_records(settings.kafka.bootstrap, dlq_name(topic), until=3, timeout_s=15)
    assert len(dead) == 3
    by_reason = {dict(r.headers)[DLQ_REASON].decode(): r for r in dead}
    assert set(by_reason) == {"invalid_json", "invalid_payload", "handler_error"}
    for record in dead:
        headers = {k: v.decode() for k, v in record.headers}
        assert record.key == key, "original key kept"
        assert headers["x-origin"] == "test", "original headers kept"
        assert headers[DLQ_TOPIC] == topic
        assert headers[DLQ_ERROR]
    assert by_reason["invalid_json"].value == b"{not json", "original bytes kept"
    assert "phone" in dict(by_reason["invalid_payload"].headers)[DLQ_ERROR].decode()
    assert attempts["poison"] == settings.kafka.max_handler_attempts


async def test_nothing_is_committed_past_a_message_that_could_not_be_dead_lettered(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    await create_topics(settings.kafka, TOPIC)
    customer = uuid4()
    poison, after = _customer("poison", customer), _customer("after", customer)
    processed: list[str] = []
    dlq_down = True
    dlq_attempts = 0

    async def handle(env: Envelope[Any]) -> None:
        if env.payload.full_name == "poison":
            raise RuntimeError("always fails")
        processed.append(env.payload.full_name)

    broker = broker_factory(settings.kafka)

    async def flaky_dead_letter(
        msg: KafkaMessage, *, reason: str, error: str, group: str, attempts: int
    ) -> None:
        nonlocal dlq_attempts
        dlq_attempts += 1
        if dlq_down:  # the dead-letter topic is unreachable
            raise ConnectionError("dead-letter topic unreachable")
        await dead_letter(broker, msg, reason=reason, error=error, group=group, attempts=attempts)

    subscribe(broker, TOPIC, group=_group(settings, "test-rewind"), handler=handle, settings=settings.kafka,
              trust=registry(), dead_letterer=flaky_dead_letter)  # fmt: skip
    topic = resolve(TOPIC, settings.kafka.topic_suffix)
    async with running(broker):
        meta = await publish(broker, poison, topic)
        await publish(broker, after, topic)
        await until(lambda: dlq_attempts >= 3)  # rewound and retried several times
        committed, _ = await _committed_and_end(settings, _group(settings, "test-rewind"))
        assert (committed[meta.partition] or 0) <= meta.offset, "offset committed past an unhandled message"
        assert processed == [], "a later message was handled while an earlier one is unresolved"

        dlq_down = False  # the operator fixes the cause

        async def resolved() -> bool:
            return processed == ["after"]

        await until(resolved, timeout_s=60)
    dead = await read_records(settings.kafka.bootstrap, dlq_name(topic), until=1, timeout_s=15)
    assert [r.value for r in dead] == [encode(poison)]


async def test_one_key_is_handled_in_order_and_keys_run_side_by_side(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    await create_topics(settings.kafka, TOPIC)
    customers = [uuid4() for _ in range(6)]
    envelopes = [_customer(f"{i}:{n}", c) for n in range(15) for i, c in enumerate(customers)]
    seen: dict[str, list[int]] = {}

    async def handle(env: Envelope[Any]) -> None:
        who, n = env.payload.full_name.split(":")
        await asyncio.sleep(0.001 * (int(n) % 3))  # uneven handler times must not reorder a key
        seen.setdefault(who, []).append(int(n))

    broker = broker_factory(settings.kafka)
    subscribe(
        broker,
        TOPIC,
        group=_group(settings, "test-order"),
        handler=handle,
        settings=settings.kafka,
        trust=registry(),
    )
    topic = resolve(TOPIC, settings.kafka.topic_suffix)
    async with running(broker):
        for env in envelopes:
            await publish(broker, env, topic)

        async def all_committed() -> bool:
            committed, ends = await _committed_and_end(settings, _group(settings, "test-order"))
            return all((committed[p] or 0) == ends[p] for p in ends)

        await until(all_committed)
    assert seen == {str(i): list(range(15)) for i in range(len(customers))}


async def test_an_unreachable_database_is_waited_out_and_never_dead_letters(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    # Found by the chaos suite: during a PostgreSQL restart every handler failed its three attempts
    # within ~150 ms and valid commands were dead-lettered like poison. Infrastructure errors now
    # neither use up attempts nor dead-letter; past transient_retry_s the partition is rewound.
    settings.kafka.transient_retry_s = 0.4
    await create_topics(settings.kafka, TOPIC)
    customer = uuid4()
    first, second = _customer("first", customer), _customer("second", customer)
    failures = {"left": 3 * settings.kafka.max_handler_attempts}
    processed: list[str] = []

    async def handle(env: Envelope[Any]) -> None:
        if env.payload.full_name == "first" and failures["left"] > 0:
            failures["left"] -= 1
            raise asyncpg.exceptions.CannotConnectNowError("the database system is starting up")
        processed.append(env.payload.full_name)

    broker = broker_factory(settings.kafka)
    subscribe(
        broker,
        TOPIC,
        group=_group(settings, "test-outage"),
        handler=handle,
        settings=settings.kafka,
        trust=registry(),
    )
    topic = resolve(TOPIC, settings.kafka.topic_suffix)
    async with running(broker):
        for env in (first, second):
            await publish(broker, env, topic)

        async def both() -> bool:
            return processed == ["first", "second"]

        await until(both)
    assert failures["left"] == 0
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        dlq = [TopicPartition(dlq_name(topic), p) for p in range(spec(TOPIC).partitions)]
        assert sum((await consumer.end_offsets(dlq)).values()) == 0, "nothing dead-lettered"
    finally:
        await consumer.stop()
