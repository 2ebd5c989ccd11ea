"""Outbox relay under SIGKILL: every event arrives, in order per key, signed by the service; duplicates
carry the same id."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime
from uuid import UUID, uuid4

import asyncpg
import pytest

from shared.contracts.common import AccountKind, Channel
from shared.contracts.envelope import Envelope, decode, envelope_headers
from shared.contracts.payments import TopUpCompleted
from shared.outbox import Outbox
from shared.settings import Settings
from shared.topics import resolve, topic_for_contract
from shared.trust import HEADER_KEY_ID, check_permitted
from tests.support.kafka import create_topics, read_records
from tests.support.trust import envelope, registry

pytestmark = pytest.mark.integration

EVENTS = 10_000
KEYS = 50
KILLS = 3
#: The relay runs as a service's (``python -m shared.outbox --schema payments``): the schema names
#: the principal it signs as, so it publishes what payments publishes.
SCHEMA = "payments"


def _events() -> tuple[list[Envelope[TopUpCompleted]], dict[str, list[UUID]]]:
    customers = [uuid4() for _ in range(KEYS)]
    now = datetime.now(UTC)
    envelopes, expected = [], defaultdict(list)
    for i in range(EVENTS):
        customer = customers[i % KEYS]
        payload = TopUpCompleted(
            payment_id=uuid4(),
            request_id=uuid4(),
            customer_id=customer,
            account=AccountKind.WALLET,
            amount=100,
            channel=Channel.ATM,
            balance_after=100 * (i // KEYS + 1),
            completed_at=now,
        )
        env = envelope(payload, occurred_at=now)  # producer: payments
        envelopes.append(env)
        expected[str(customer)].append(env.event_id)
    return envelopes, expected


def _relay(settings: Settings) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "AQSHA_PG_DSN": settings.db.dsn,
        "AQSHA_KAFKA_BOOTSTRAP": settings.kafka.bootstrap,
        "AQSHA_KAFKA_TOPIC_SUFFIX": settings.kafka.topic_suffix,
        "AQSHA_OUTBOX_BATCH_SIZE": "200",
        "AQSHA_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen([sys.executable, "-m", "shared.outbox", "--schema", SCHEMA], env=env)


async def _backlog(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.outbox"))


async def test_relay_killed_three_times_loses_nothing_and_keeps_key_order(settings: Settings) -> None:
    spec = topic_for_contract(TopUpCompleted.TYPE)
    topic = spec.name
    await create_topics(settings.kafka, topic)
    envelopes, expected = _events()
    conn = await asyncpg.connect(settings.db.dsn, server_settings={"search_path": SCHEMA})
    try:
        async with conn.transaction():
            await Outbox().add_many(conn, envelopes)
        assert await _backlog(conn) == EVENTS

        kills = 0
        jitter = random.Random(20261121)
        thresholds = [EVENTS * (KILLS - k) // (KILLS + 1) for k in range(KILLS)]  # 7500, 5000, 2500
        proc = _relay(settings)
        for threshold in thresholds:
            while await _backlog(conn) > threshold:
                assert proc.poll() is None, "relay died on its own"
                await asyncio.sleep(0.01)
            await asyncio.sleep(jitter.uniform(0.0, 0.03))  # land inside a later batch, not at its edge
            proc.kill()  # SIGKILL: no cleanup, possibly between publish and delete
            proc.wait()
            kills += 1
            proc = _relay(settings)
        try:
            for _ in range(1200):
                if await _backlog(conn) == 0:
                    break
                await asyncio.sleep(0.05)
            assert await _backlog(conn) == 0
        finally:
            proc.terminate()
            proc.wait(10)
    finally:
        await conn.close()
    assert kills == KILLS

    concrete = resolve(topic, settings.kafka.topic_suffix)
    records = await read_records(settings.kafka.bootstrap, concrete, until=EVENTS)
    trust = registry()
    seen: dict[str, list[UUID]] = defaultdict(list)
    first: set[UUID] = set()
    duplicates = 0
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        env = decode(record.value)
        assert record.key is not None
        assert record.key.decode() == env.key
        # Signed by the relay as payments, over this topic, key and value: consumers accept it.
        origin = trust.verify(record.topic, record.key, record.value, record.headers)
        assert origin.principal == SCHEMA
        assert dict(record.headers)[HEADER_KEY_ID].decode() == origin.key_id
        check_permitted(spec, origin, env, record.key)
        if env.event_id in first:
            duplicates += 1  # recognisable: the same event id again
            continue
        first.add(env.event_id)
        seen[env.key].append(env.event_id)
    assert len(first) == EVENTS, f"lost {EVENTS - len(first)} events"
    for key, ids in expected.items():
        assert seen[key] == ids, f"order broken for key {key}"
    print(f"outbox: {EVENTS} events, {kills} kills, {duplicates} duplicates")


async def test_add_many_writes_one_row_per_envelope_in_list_order(pg_dsn: str) -> None:
    # One set-based INSERT: the ids (the relay's publishing order) must follow the list.
    envelopes, _ = _events()
    batch = envelopes[:300]
    random.Random(3).shuffle(batch)
    conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": "kernel"})
    try:
        async with conn.transaction():
            await Outbox().add_many(conn, batch)
            await Outbox().add_many(conn, [])
            await Outbox().add(conn, envelopes[300], topic="aqsha.payments.events")
        rows = await conn.fetch(
            "SELECT topic, key, event_id, event_type, headers, payload FROM outbox ORDER BY id"
        )
    finally:
        await conn.close()
    written = [*batch, envelopes[300]]
    assert [r["event_id"] for r in rows] == [e.event_id for e in written]
    for row, env in zip(rows, written, strict=True):
        assert row["topic"] == topic_for_contract(env.type).name
        assert row["key"] == env.key
        assert row["event_type"] == env.type
        assert decode(row["payload"]) == env
        assert json.loads(row["headers"]) == envelope_headers(env)  # a plain connection: jsonb as text
