"""Kafka helpers for tests: topic creation and group-less reading (no 3-5 s group join on Tansu)."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, ConsumerRecord

from shared.kafka import assign_from_beginning, ensure_topics
from shared.settings import KafkaSettings
from shared.topics import TopicSpec, all_topics, dlq_name


async def create_topics(settings: KafkaSettings, *names: str, with_dlq: bool = True) -> None:
    """Create the named registry topics (all when none named), with their dead-letter topics."""
    specs = [s for s in all_topics(include_dlq=True) if not names or s.name in names]
    if with_dlq and names:
        specs += [s for s in all_topics(include_dlq=True) if s.name in {dlq_name(n) for n in names}]
    await ensure_topics(settings, list({s.name: s for s in specs}.values()))


async def read_records(
    bootstrap: str, topic: str, *, until: int, timeout_s: float = 60.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic``, read to the end offsets once at least ``until`` records exist."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = await assign_from_beginning(consumer, [topic])
        deadline = time.monotonic() + timeout_s
        ends = await consumer.end_offsets(tps)
        while sum(ends.values()) < until and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            ends = await consumer.end_offsets(tps)
        out: list[ConsumerRecord[bytes, bytes]] = []
        # The deadline only ends a read that stopped making progress: a slow broker under load is
        # not a lost record.
        idle_until = time.monotonic() + timeout_s
        while True:
            positions = {tp: await consumer.position(tp) for tp in tps}
            if all(positions[tp] >= ends[tp] for tp in tps):
                break
            if time.monotonic() > idle_until:
                raise AssertionError(
                    f"reader stalled on {topic}: read {len(out)} of {sum(ends.values())} records; "
                    f"positions {[positions[tp] for tp in tps]} vs ends {[ends[tp] for tp in tps]}"
                )
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            for records in batch.values():
                out.extend(records)
            if batch:
                idle_until = time.monotonic() + timeout_s
        return out
    finally:
        await consumer.stop()


def spec(name: str) -> TopicSpec:
    """The registry entry of a topic."""
    return next(s for s in all_topics(include_dlq=True) if s.name == name)
