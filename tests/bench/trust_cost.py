"""What the trust boundary costs per payment: Ed25519 verification and signing, measured in process.

Every record a service consumes is checked before any effect (``shared.kafka.subscribe``:
``TrustRegistry.verify``, then ``check_permitted``), once by each consumer group reading its topic,
and every record is signed once by whoever writes it (``Signer.sign``: a service's outbox relay, or
an outside system). This module reads back every record one measured window of the benchmark
really wrote (the bench mix as it ran, signed by the services and the driver), times those two
steps over them (at most ``SAMPLE_LIMIT``, an even sample) in this process, and counts how many
verifications one payment causes: the window's records on each topic times the groups that consume
the topic (``shared.topics``), divided by the payments sent in the window.

Records are counted by reading them, not from offsets: Tansu answers ``ListOffsets(latest)`` with
the last batch's base offset + 1, so a partition whose last produce batch held five records reports
four too few. The window is therefore read from the ``end_offsets`` snapshot taken before the load
(which may start inside the last setup batch) and kept by record timestamp (``since_ms``).

CPU is ``time.thread_time`` (this thread only, so the gateway simulator's threads never count),
the median of a few rounds after a warm-up round. Decoding is outside the timed part: the kernel
decodes every record anyway, with or without the trust boundary.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.contracts.envelope import ContractError, decode
from shared.topics import TOPICS, TopicSpec, resolve
from shared.trust import Keyring, Signer, TrustRegistry, check_permitted

Offsets = dict[TopicPartition, int]
#: Records read back and measured at most (spread over the partitions in proportion).
SAMPLE_LIMIT = 4000
ROUNDS = 5


def _specs(suffix: str) -> dict[str, TopicSpec]:
    """Concrete topic name -> registry entry (dead-letter topics are not part of the mix)."""
    return {resolve(spec.name, suffix): spec for spec in TOPICS}


async def end_offsets(bootstrap: str, suffix: str) -> Offsets:
    """The end offset of every partition of every registry topic with the suffix."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        await consumer.topics()  # loads the metadata of every topic
        tps = [
            TopicPartition(name, p)
            for name in _specs(suffix)
            for p in sorted(consumer.partitions_for_topic(name) or ())
        ]
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


async def read_window(bootstrap: str, before: Offsets, after: Offsets, since_ms: float) -> list[Any]:
    """Every record from the ``before`` snapshot to the end (``after``, taken when the platform was
    quiet) whose timestamp is at or after ``since_ms`` (the window's start, epoch milliseconds)."""
    ranges = {tp: (before.get(tp, 0), end) for tp, end in after.items() if end > before.get(tp, 0)}
    if not ranges:
        return []
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    out: list[Any] = []
    try:
        consumer.assign(list(ranges))
        for tp, (lo, _) in ranges.items():
            consumer.seek(tp, lo)
        remaining = set(ranges)
        deadline = time.monotonic() + 120
        while remaining and time.monotonic() < deadline:
            batch = await consumer.getmany(*remaining, timeout_ms=500)
            for records in batch.values():
                out += [r for r in records if r.timestamp >= since_ms]
            for tp in list(remaining):
                if await consumer.position(tp) >= ranges[tp][1]:
                    remaining.discard(tp)
        if remaining:
            raise TimeoutError(f"could not read back {len(remaining)} partition(s) of the window")
        return out
    finally:
        await consumer.stop()


def _cpu_us(fn: Callable[[], int], rounds: int = ROUNDS) -> float:
    """Median CPU microseconds per item of ``fn`` (which returns how many items it did)."""
    fn()  # warm-up: key objects, caches
    samples = []
    for _ in range(rounds):
        t0 = time.thread_time()
        n = fn()
        samples.append((time.thread_time() - t0) / max(n, 1) * 1e6)
    return statistics.median(samples)


def measure(
    records: list[Any],
    *,
    registry: TrustRegistry,
    keyring: Keyring,
    suffix: str,
    payments: int,
    limit: int = SAMPLE_LIMIT,
) -> dict[str, Any]:
    """The verification and signing cost of ``records`` (the window) and the verifications per payment.

    Each record is verified as many times as groups consume its topic (as in production), so the
    per-verification figure has the topic mix of the verifications, not just of the records.
    """
    specs = _specs(suffix)
    checks: list[tuple[str, bytes | None, bytes, list[tuple[str, bytes]], TopicSpec, Any]] = []
    signs: list[tuple[Signer, str, bytes | None, bytes]] = []
    types: dict[str, int] = {}
    by_topic: dict[str, int] = {}
    mix = [r for r in records if r.topic in specs]
    step = max(1, -(-len(mix) // limit))  # an even sample of at most ``limit`` keeps the mix
    for i, r in enumerate(mix):
        spec = specs[r.topic]
        value: bytes = r.value or b""
        try:
            env = decode(value)
        except ContractError:
            continue
        by_topic[spec.name] = by_topic.get(spec.name, 0) + 1
        types[env.type] = types.get(env.type, 0) + 1
        if i % step:
            continue
        headers = list(r.headers or ())
        registry.verify(r.topic, r.key, value, headers)  # every record of the mix must be authentic
        signs.append((keyring.signer(env.producer), r.topic, r.key, value))
        checks += [(r.topic, r.key, value, headers, spec, env)] * len(spec.consumers)

    def verify_all() -> int:
        for topic, key, value, headers, spec, env in checks:
            check_permitted(spec, registry.verify(topic, key, value, headers), env, key)
        return len(checks)

    def sign_all() -> int:
        for signer, topic, key, value in signs:
            signer.sign(topic, key, value)
        return len(signs)

    verify_us = _cpu_us(verify_all) if checks else 0.0
    sign_us = _cpu_us(sign_all) if signs else 0.0
    per_topic: dict[str, dict[str, float]] = {}
    records_total = verifications = 0
    for spec in specs.values():
        written = by_topic.get(spec.name, 0)
        if not written:
            continue
        records_total += written
        verifications += written * len(spec.consumers)
        per_topic[spec.name] = {
            "records_per_payment": round(written / max(payments, 1), 3),
            "consumer_groups": len(spec.consumers),
        }
    per_payment = verifications / max(payments, 1)
    records_per_payment = records_total / max(payments, 1)
    per_type = {t: round(n / max(payments, 1), 3) for t, n in sorted(types.items())}
    return {
        "verify_us_per_message": round(verify_us, 1),
        "sign_us_per_message": round(sign_us, 1),
        "verifications_per_payment": round(per_payment, 2),
        "verify_cpu_ms_per_payment": round(verify_us * per_payment / 1000, 3),
        "records_per_payment": round(records_total / max(payments, 1), 2),
        "sign_cpu_ms_per_payment": round(sign_us * records_per_payment / 1000, 3),
        "payments": payments,
        "records_in_window": records_total,
        "records_measured": len(signs),
        "verifications_measured": len(checks),
        "per_topic": per_topic,
        "records_per_payment_by_type": per_type,
        "method": "time.thread_time, median of 5 rounds over the window's records read back from the "
        "broker (an even sample of at most 4000); verification = TrustRegistry.verify + check_permitted, "
        "once per consuming group",
    }


def summary_line(trust: Mapping[str, Any]) -> str:
    """One printed line of the figures."""
    return (
        f"trust boundary: verify+check {trust['verify_us_per_message']} µs/verification, "
        f"sign {trust['sign_us_per_message']} µs/record; {trust['verifications_per_payment']} "
        f"verifications/payment = {trust['verify_cpu_ms_per_payment']} ms CPU/payment "
        f"(+ {trust['sign_cpu_ms_per_payment']} ms signing {trust['records_per_payment']} records); "
        f"{trust['records_measured']} records measured"
    )
