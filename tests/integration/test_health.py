"""The health and metrics endpoint of a real service runtime (payments: PostgreSQL, Redis, Kafka)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from services.payments.app import PaymentsRuntime
from services.payments.settings import PaymentsSettings
from shared.contracts.customers import CustomerRegistered
from shared.idempotency import redis_client
from shared.settings import Settings
from shared.topics import resolve
from tests.support.http import http_get
from tests.support.kafka import create_topics
from tests.support.trust import envelope, publish

pytestmark = pytest.mark.integration
CUSTOMERS = "aqsha.customers.events"


async def _get(runtime: PaymentsRuntime, path: str) -> tuple[int, bytes]:
    server = runtime.runtime.http
    assert server is not None
    return await http_get(server.host, server.bound_port, path)


def _sample(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_ready_live_and_metrics_of_a_running_service(settings: Settings) -> None:
    await create_topics(settings.kafka)
    fields = {k: getattr(settings, k) for k in type(settings).model_fields} | {"http_port": 0}
    payments_settings = PaymentsSettings(**fields, janitor_interval_s=0.5)
    runtime = PaymentsRuntime(payments_settings)
    await runtime.start()
    try:
        status, body = await _get(runtime, "/health/live")
        assert status == 200, body
        status, body = await _get(runtime, "/health/ready")
        report = json.loads(body)
        assert status == 200, report
        assert {name: c["status"] for name, c in report["checks"].items()} == {
            "kafka": "ok",
            "postgres": "ok",
            "redis": "ok",
            "started": "ok",
        }
        assert (await _get(runtime, "/nothing-here"))[0] == 404

        # A real message consumed shows up in the handled-messages counter.
        topic = resolve(CUSTOMERS, settings.kafka.topic_suffix)
        customer = uuid4()
        payload = CustomerRegistered(
            customer_id=customer, phone="+77012345678", iin="900101300123", full_name="Dana Abenova"
        )
        env = envelope(payload, occurred_at=datetime.now(UTC))  # from onboarding, signed
        await publish(runtime.broker, env, topic)
        deadline = time.monotonic() + 60
        handled = None
        while time.monotonic() < deadline:
            _, metrics = await _get(runtime, "/metrics")
            labels = {"service": "payments", "topic": topic, "type": "CustomerRegistered", "outcome": "ok"}
            handled = _sample(metrics.decode(), "aqsha_messages_handled_total", **labels)
            if handled:
                break
            await asyncio.sleep(0.2)
        assert handled == 1.0
        text = metrics.decode()
        assert _sample(text, "aqsha_handler_duration_seconds_count", topic=topic, type="CustomerRegistered")

        # Outbox backlog and consumer lag are sampled (here on demand rather than waiting a round).
        await runtime.runtime.sample_metrics()
        _, metrics = await _get(runtime, "/metrics")
        text = metrics.decode()
        assert _sample(text, "aqsha_outbox_backlog", service="payments") is not None
        lag_lines = [line for line in text.splitlines() if line.startswith("aqsha_consumer_lag{")]
        assert lag_lines, "no consumer lag sampled"
        assert all(line.endswith(" 0.0") or 'topic="' in line for line in lag_lines)
        # The committed offset of every partition with a lag sample (a flat one with lag > 0: stalled).
        committed = [
            line for line in text.splitlines() if line.startswith("aqsha_consumer_committed_offset{")
        ]
        assert len(committed) == len(lag_lines)
        # The sampling round evaluated readiness too, so it is a metric even where no probe asks.
        assert _sample(text, "aqsha_ready", service="payments") == 1.0
        assert _sample(text, "aqsha_readiness_check", service="payments", check="redis") == 1.0

        # Redis unreachable: not ready, and the report says why.
        healthy_redis = runtime.redis
        runtime.redis = redis_client("redis://127.0.0.1:1/0", timeout_s=0.3)
        try:
            status, body = await _get(runtime, "/health/ready")
            report = json.loads(body)
            assert status == 503, report
            assert report["status"] == "fail"
            assert report["checks"]["redis"]["status"] == "fail"
            assert report["checks"]["postgres"]["status"] == "ok"
        finally:
            await runtime.redis.aclose()
            runtime.redis = healthy_redis
        assert (await _get(runtime, "/health/ready"))[0] == 200

        # The database pool gone: not ready; liveness is unaffected.
        runtime.pool.terminate()  # close() would wait for the relay to release its connection
        status, body = await _get(runtime, "/health/ready")
        report = json.loads(body)
        assert status == 503, report
        assert report["checks"]["postgres"]["status"] == "fail"
        assert (await _get(runtime, "/health/live"))[0] == 200
    finally:
        await runtime.stop()
    assert runtime.runtime.http is None


async def test_a_stop_that_arrives_during_startup_starts_nothing_and_still_closes(settings: Settings) -> None:
    # A signal during FastStream's startup (e.g. a slow group join) runs the shutdown hooks before
    # after_startup. The relay must then not start, or it would hold a connection and hang close().
    fields = {k: getattr(settings, k) for k in type(settings).model_fields} | {"http_port": 0}
    runtime = PaymentsRuntime(PaymentsSettings(**fields)).runtime
    await runtime.open()
    try:
        server = runtime.http
        assert server is not None
        status, body = await http_get(server.host, server.bound_port, "/health/ready")
        assert status == 503
        assert json.loads(body)["checks"]["started"]["status"] != "ok"
        await runtime.stop_background()  # on_shutdown first ...
        await runtime.start_background()  # ... then the late after_startup
        assert [t for t in runtime._tasks if not t.done()] == []
    finally:
        await asyncio.wait_for(runtime.close(), 15)
    assert runtime.http is None
