"""Metrics rendering, the ASGI app's routing, the uvicorn server, and readiness logic (no infrastructure)."""

from __future__ import annotations

import asyncio
import errno
import signal
from datetime import date

import httpx
import pytest

from shared.observability import (
    OUTCOMES,
    Health,
    HealthApp,
    HealthServer,
    Metrics,
    bind_metrics,
    metrics_for,
)
from tests.support.http import http_get

pytestmark = pytest.mark.unit


def test_metrics_render_in_the_prometheus_text_format() -> None:
    m = Metrics("payments")
    m.message("aqsha.payments.commands", "TopUp", "ok")
    m.message("aqsha.payments.commands", "TopUp", "ok")
    m.failure("aqsha.payments.commands", "TopUp", "handler_error")
    m.observe("aqsha.payments.commands", "TopUp", 0.004)
    m.dead_lettered("aqsha.payments.commands", "invalid_json")
    m.set_backlog(7)
    m.set_lag("aqsha-payments", {("aqsha.payments.commands", 3): 5}, {("aqsha.payments.commands", 3): 40})
    text = m.render().decode()
    assert (
        'aqsha_messages_handled_total{outcome="ok",service="payments",topic="aqsha.payments.commands",'
        'type="TopUp"} 2.0' in text
    )
    assert 'aqsha_messages_failed_total{reason="handler_error"' in text
    assert 'aqsha_handler_duration_seconds_bucket{le="0.005",service="payments"' in text
    assert 'aqsha_dead_letters_total{reason="invalid_json",service="payments"' in text
    assert 'aqsha_outbox_backlog{service="payments"} 7.0' in text
    assert 'aqsha_consumer_lag{group="aqsha-payments",partition="3"' in text
    assert (
        'aqsha_consumer_committed_offset{group="aqsha-payments",partition="3",service="payments",'
        'topic="aqsha.payments.commands"} 40.0' in text
    )
    # A partition no longer assigned disappears from the lag and offset gauges.
    m.set_lag("aqsha-payments", {("aqsha.payments.commands", 4): 0}, {("aqsha.payments.commands", 4): 9})
    text = m.render().decode()
    assert 'partition="3"' not in text
    assert 'partition="4"' in text


def _samples(m: Metrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in m.registry.collect()
        for s in family.samples
        if s.name == name
    }


def test_retries_are_not_outcomes_so_a_plain_sum_counts_each_record_once() -> None:
    # One record: two failed attempts retried, then handled; another dead-lettered on its last attempt.
    m = Metrics("bonus")
    m.retry("aqsha.payments.events", "PaymentCompleted", "handler_error")
    m.retry("aqsha.payments.events", "PaymentCompleted", "transient")
    m.message("aqsha.payments.events", "PaymentCompleted", "ok")
    m.message("aqsha.payments.events", "PaymentCompleted", "dead_lettered")
    assert sum(_samples(m, "aqsha_messages_handled_total").values()) == 2
    assert sum(_samples(m, "aqsha_handler_retries_total").values()) == 2
    assert {dict(k)["reason"] for k in _samples(m, "aqsha_handler_retries_total")} == {
        "handler_error",
        "transient",
    }
    assert "retried" not in OUTCOMES
    with pytest.raises(ValueError, match="not a final outcome"):
        m.message("aqsha.payments.events", "PaymentCompleted", "retried")


def test_readiness_and_business_day_metrics() -> None:
    m = Metrics("billing")
    m.set_readiness({"postgres": {"status": "ok"}, "kafka": {"status": "fail", "error": "x"}})
    assert _samples(m, "aqsha_ready") == {(("service", "billing"),): 0.0}
    checks = {dict(k)["check"]: v for k, v in _samples(m, "aqsha_readiness_check").items()}
    assert checks == {"postgres": 1.0, "kafka": 0.0}
    m.business_day_run(date(2025, 10, 22), {"accounts": 4, "bills": 3, "overdue": 0, "penalties": 0})
    m.set_business_day_closed(date(2025, 10, 21))  # an older date never moves the gauge back
    # 22.10.2025 00:00 in Asia/Almaty (UTC+5) is 21.10.2025 19:00 UTC.
    assert _samples(m, "aqsha_business_day_closed_timestamp_seconds") == {
        (("service", "billing"),): 1761073200.0
    }
    facts = {dict(k)["fact"]: v for k, v in _samples(m, "aqsha_business_day_facts_total").items()}
    assert facts == {"accounts": 4.0, "bills": 3.0, "overdue": 0.0, "penalties": 0.0}
    assert _samples(m, "aqsha_business_day_runs_total") == {(("service", "billing"),): 1.0}


def test_several_metrics_sets_in_one_process_do_not_collide() -> None:
    a, b = Metrics("payments"), Metrics("payments")
    a.message("t", "X", "ok")
    assert "aqsha_messages_handled_total" in a.render().decode()
    assert 'type="X"' not in b.render().decode()


def test_metrics_are_bound_per_broker() -> None:
    class Broker:
        pass

    broker, other = Broker(), Broker()
    bound = Metrics("bonus")
    bind_metrics(broker, bound)
    assert metrics_for(broker) is bound
    fallback = metrics_for(other)
    assert fallback.service == "unknown"
    assert metrics_for(other) is fallback


async def _ok() -> None:
    return None


async def _false() -> bool:
    return False


async def _boom() -> None:
    raise ConnectionError("refused")


async def _slow() -> None:
    await asyncio.sleep(5)


async def test_ready_only_when_every_check_passes() -> None:
    health = Health(timeout_s=0.1)
    health.add_check("postgres", _ok)
    assert (await health.ready())[0]
    health.add_check("redis", _boom)
    health.add_check("kafka", _false)
    health.add_check("slow", _slow)
    ok, report = await health.ready()
    assert not ok
    assert report["postgres"]["status"] == "ok"
    assert report["redis"] == {"status": "fail", "error": "ConnectionError: refused", **_ms(report["redis"])}
    assert report["kafka"]["error"] == "check returned false"
    assert "timed out" in str(report["slow"]["error"])


def _ms(entry: dict[str, object]) -> dict[str, object]:
    return {"duration_ms": entry["duration_ms"]}


async def test_liveness_follows_the_heartbeat() -> None:
    health = Health(heartbeat_s=0.01, max_loop_lag_s=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(health.heartbeat(stop))
    await asyncio.sleep(0.05)
    assert health.live()
    stop.set()
    await task
    await asyncio.sleep(0.1)
    assert not health.live()


def _client(app: HealthApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://aqsha")


async def test_routing() -> None:
    health = Health()
    health.add_check("db", _ok)
    metrics = Metrics("notify")
    health.metrics = metrics
    async with _client(HealthApp(health, metrics)) as client:
        assert (await client.get("/nope")).status_code == 404
        post = await client.post("/metrics")
        assert post.status_code == 405
        assert post.headers["allow"] == "GET, HEAD"
        live = await client.get("/health/live")
        assert live.status_code == 200
        assert live.json() == {"status": "ok"}
        assert live.headers["cache-control"] == "no-store"
        ready = await client.get("/health/ready?verbose=1")  # the query string is ignored
        assert ready.status_code == 200
        assert ready.headers["content-type"] == "application/json"
        assert ready.json()["checks"]["db"]["status"] == "ok"
        health.add_check("redis", _boom)
        ready = await client.get("/health/ready")
        body = ready.json()
        assert ready.status_code == 503
        assert body["status"] == "fail"
        assert body["checks"]["redis"]["status"] == "fail"
        assert body["checks"]["redis"]["error"] == "ConnectionError: refused"
        exposition = await client.get("/metrics")
        assert exposition.status_code == 200
        assert exposition.headers["content-type"].startswith("text/plain")
        # The readiness just evaluated is a metric too.
        assert 'aqsha_readiness_check{check="redis",service="notify"} 0.0' in exposition.text
        assert 'aqsha_ready{service="notify"} 0.0' in exposition.text
        # prometheus-client's negotiation: OpenMetrics for a scraper that asks for it.
        openmetrics = await client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
        assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
        assert openmetrics.text.endswith("# EOF\n")


async def test_liveness_fails_when_the_heartbeat_stalls() -> None:
    health = Health(heartbeat_s=0.01, max_loop_lag_s=0.01)
    async with _client(HealthApp(health, Metrics("bonus"))) as client:
        assert (await client.get("/health/live")).status_code == 200
        await asyncio.sleep(0.05)  # no heartbeat task: the beat is stale
        live = await client.get("/health/live")
        assert live.status_code == 503
        assert live.json() == {"status": "fail"}


async def test_server_over_a_loopback_socket() -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    server = HealthServer(Health(), Metrics("billing"), port=0)
    await server.start()
    try:
        port = server.bound_port
        # uvicorn must leave the process's signals to FastStream's runner.
        assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
        assert server.url == f"http://127.0.0.1:{port}"
        assert (await http_get("127.0.0.1", port, "/health/live"))[0] == 200
        assert (await http_get("127.0.0.1", port, "/unknown"))[0] == 404
        status, body = await http_get("127.0.0.1", port, "/metrics")
        assert status == 200
        assert b"# TYPE aqsha_messages_handled_total counter" in body
        async with httpx.AsyncClient(base_url=server.url, trust_env=False) as client:
            head = await client.head("/health/live")
            assert head.status_code == 200
            assert head.content == b""
            assert (await client.put("/health/ready")).status_code == 405
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"garbage\r\n\r\n")
        await writer.drain()
        assert (await asyncio.wait_for(reader.read(), 5)).startswith(b"HTTP/1.1 400 ")
        writer.close()
        # A second server cannot take a port in use.
        taken = HealthServer(Health(), Metrics("billing"), port=port)
        with pytest.raises(OSError, match="in use") as refused:
            await taken.start()
        assert refused.value.errno == errno.EADDRINUSE
    finally:
        await server.stop()
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
    with pytest.raises(httpx.ConnectError):  # stopped: nothing listens any more
        await http_get("127.0.0.1", port, "/health/live", timeout_s=2)
    await server.stop()  # idempotent
