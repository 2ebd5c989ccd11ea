"""Transactional outbox: write events with the state change, publish them with a relay.

Writer: ``Outbox.add(conn, envelope)`` inside the caller's transaction. The contract's topic comes
from the registry (``shared.topics``), the key from the envelope.

Relay: one leader per schema (a session advisory lock; other instances stand by). It reads rows in
id order, publishes a batch without waiting per message, waits for every broker ack, then deletes
exactly the rows it published. Killed anywhere in between, the next leader republishes the
undeleted rows: consumers may see duplicates (same ``event_id``), never a gap. Order per key holds
because rows are read in id order by a single publisher and aiokafka keeps per-partition order;
against Apache Kafka enable the idempotent producer so that broker-side retries cannot reorder.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg

from shared.contracts.envelope import Envelope, encode, envelope_headers
from shared.db import Conn
from shared.topics import resolve, topic_for_contract
from shared.trust import Signer, load_signer

log = logging.getLogger("aqsha.outbox")
NOTIFY_CHANNEL = "aqsha_outbox"


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """One row to publish."""

    id: int
    topic: str
    key: str
    headers: dict[str, str]
    payload: bytes


class Publisher(Protocol):
    """Publishes a batch and returns only when the broker acknowledged every record."""

    async def publish_batch(self, records: Sequence[OutboxRecord]) -> None:
        """Publish all; raise if any failed."""


class Outbox:
    """Writes envelopes to the outbox table within the caller's transaction."""

    async def add(self, conn: Conn, envelope: Envelope[Any], *, topic: str | None = None) -> None:
        """Queue one envelope; ``topic`` (a base name) defaults to the contract's registered topic."""
        await self.add_many(conn, [envelope], topic=topic)

    async def add_many(
        self, conn: Conn, envelopes: Sequence[Envelope[Any]], *, topic: str | None = None
    ) -> None:
        """Queue several envelopes in one statement, in the given order.

        One set-based ``INSERT`` (``unnest``) rather than one per row: ``WITH ORDINALITY ...
        ORDER BY`` feeds the rows in list order, so the ``bigserial`` ids the relay publishes by
        follow it, and the statement-level NOTIFY trigger fires once.
        """
        if not envelopes:
            return
        topics: dict[str, str] = {}
        names: list[str] = []
        headers: list[str] = []
        for env in envelopes:
            name = topic or topics.get(env.type)
            if name is None:
                name = topics[env.type] = topic_for_contract(env.type).name
            names.append(name)
            headers.append(json.dumps(envelope_headers(env)))
        await conn.execute(
            "INSERT INTO outbox(topic, key, event_id, event_type, headers, payload) "
            "SELECT t, k, e, y, h::jsonb, p FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], "
            "$5::text[], $6::bytea[]) WITH ORDINALITY AS u(t, k, e, y, h, p, n) ORDER BY n",
            names,
            [env.key for env in envelopes],
            [env.event_id for env in envelopes],
            [env.type for env in envelopes],
            headers,
            [encode(env) for env in envelopes],
        )


class BrokerPublisher:
    """A ``Publisher`` over a FastStream KafkaBroker; base topic names get the configured suffix.

    Every record is signed here, as the service's principal, over the concrete topic, key and
    value (``shared.trust``): the relay is the one place a service's records leave it.
    """

    def __init__(self, broker: Any, topic_suffix: str = "", *, signer: Signer) -> None:
        self._broker = broker
        self._suffix = topic_suffix
        self._signer = signer

    async def publish_batch(self, records: Sequence[OutboxRecord]) -> None:
        """Send all records without waiting per record, then wait for every acknowledgement."""
        futures = []
        for r in records:
            topic = resolve(r.topic, self._suffix)
            key = r.key.encode()
            fut = await self._broker.publish(
                r.payload,
                topic=topic,
                key=key,
                headers={**r.headers, **self._signer.sign(topic, key, r.payload)},
                no_confirm=True,
            )
            futures.append(fut)
        await asyncio.gather(*futures)


class OutboxRelay:
    """Publishes a schema's outbox rows in order; only the holder of the schema's lock publishes."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        publisher: Publisher,
        *,
        schema: str,
        batch_size: int = 500,
        poll_interval: float = 0.2,
        on_published: Callable[[int], Awaitable[None] | None] | None = None,
    ) -> None:
        self._pool = pool
        self._publisher = publisher
        self._schema = schema
        self._batch_size = batch_size
        self._poll = poll_interval
        self._wake = asyncio.Event()
        self._on_published = on_published

    async def publish_once(self, conn: Conn) -> int:
        """Publish one batch using ``conn`` (the lock holder's connection); return rows published."""
        rows = await conn.fetch(
            "SELECT id, topic, key, headers::text AS headers, payload FROM outbox ORDER BY id LIMIT $1",
            self._batch_size,
        )
        if not rows:
            return 0
        records = [
            OutboxRecord(r["id"], r["topic"], r["key"], json.loads(r["headers"]), r["payload"]) for r in rows
        ]
        await self._publisher.publish_batch(records)
        await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r.id for r in records])
        if self._on_published is not None:
            result = self._on_published(len(records))
            if result is not None:
                await result
        return len(records)

    async def backlog(self) -> int:
        """Rows waiting to be published."""
        async with self._pool.acquire() as conn:
            return int(await conn.fetchval("SELECT count(*) FROM outbox"))

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: object) -> None:
        if payload == self._schema:
            self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set: wait for leadership, then publish whenever rows exist."""
        lock_key = f"aqsha.outbox.{self._schema}"
        while not stop.is_set():
            try:
                async with self._pool.acquire() as conn:
                    if not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", lock_key):
                        await _wait(stop, self._wake, self._poll * 5)
                        continue
                    await conn.add_listener(NOTIFY_CHANNEL, self._notified)
                    try:
                        await self._lead(conn, stop)
                    finally:
                        with contextlib.suppress(Exception):
                            await conn.remove_listener(NOTIFY_CHANNEL, self._notified)
                            await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", lock_key)
            except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
                log.warning(
                    "outbox relay error; retrying", extra={"error": repr(exc), "schema": self._schema}
                )
                await _wait(stop, self._wake, 1.0)
            except Exception as exc:  # broker errors: keep the rows, try again
                log.warning(
                    "outbox publish failed; retrying", extra={"error": repr(exc), "schema": self._schema}
                )
                await _wait(stop, self._wake, 1.0)

    async def _lead(self, conn: Conn, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._wake.clear()
            published = await self.publish_once(conn)
            if published < self._batch_size:
                await _wait(stop, self._wake, self._poll)


async def _wait(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    stopper = asyncio.ensure_future(stop.wait())
    waker = asyncio.ensure_future(wake.wait())
    try:
        await asyncio.wait({stopper, waker}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        waker.cancel()


async def run_relay(settings: Any, schema: str, stop: asyncio.Event | None = None) -> None:
    """Run a relay for ``schema`` with its own pool and broker until ``stop`` is set (or forever)."""
    from shared.db import create_pool
    from shared.kafka import broker_factory

    stop = stop or asyncio.Event()
    pool = await create_pool(settings.db.dsn, schema, min_size=1, max_size=2)
    broker = broker_factory(settings.kafka, client_id=f"{settings.kafka.client_id}-relay-{schema}")
    await broker.connect()
    try:
        relay = OutboxRelay(
            pool,
            BrokerPublisher(broker, settings.kafka.topic_suffix, signer=load_signer(settings.trust, schema)),
            schema=schema,
            batch_size=settings.outbox_batch_size,
            poll_interval=settings.outbox_poll_interval_s,
        )
        await relay.run(stop)
    finally:
        await broker.stop()
        await pool.close()


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m shared.outbox --schema NAME``: a standalone relay (settings from ``AQSHA_*``)."""
    import argparse
    import signal

    from shared.logging import configure_logging
    from shared.settings import Settings

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--schema", required=True)
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging(f"outbox-relay-{args.schema}", settings.log_level)

    async def _run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_relay(settings, args.schema, stop)

    asyncio.run(_run())


if __name__ == "__main__":
    main()
