"""Metrics rendering, HTTP parsing and routing, and readiness logic (no infrastructure)."""

from __future__ import annotations

import asyncio
import json

import pytest

from shared.observability import (
    BadRequest,
    Health,
    HealthServer,
    Metrics,
    Response,
    bind_metrics,
    http_get,
    metrics_for,
    parse_request_head,
    render_response,
)

pytestmark = pytest.mark.unit


def test_metrics_render_in_the_prometheus_text_format() -> None:
    m = Metrics("payments")
    m.message("aqsha.payments.commands", "TopUp", "ok")
    m.message("aqsha.payments.commands", "TopUp", "ok")
    m.failure("aqsha.payments.commands", "TopUp", "handler_error")
    m.observe("aqsha.payments.commands", "TopUp", 0.004)
    m.dead_lettered("aqsha.payments.commands", "invalid_json")
    m.set_backlog(7)
    m.set_lag("aqsha-payments", {("aqsha.payments.commands", 3): 5})
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
    # A partition no longer assigned disappears from the lag gauge.
    m.set_lag("aqsha-payments", {("aqsha.payments.commands", 4): 0})
    text = m.render().decode()
    assert 'partition="3"' not in text
    assert 'partition="4"' in text


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


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", ("GET", "/metrics")),
        (b"get /health/ready?verbose=1 HTTP/1.0\r\n\r\n", ("GET", "/health/ready")),
        (b"HEAD /health/live HTTP/1.1\r\n\r\n", ("HEAD", "/health/live")),
    ],
)
def test_request_line_parsing(head: bytes, expected: tuple[str, str]) -> None:
    assert parse_request_head(head) == expected


@pytest.mark.parametrize(
    "head", [b"GET\r\n\r\n", b"GET metrics HTTP/1.1\r\n\r\n", b"GET / SPDY/3\r\n\r\n", b"\r\n\r\n"]
)
def test_bad_request_lines_are_rejected(head: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_request_head(head)


def test_response_rendering() -> None:
    raw = render_response(Response(503, b'{"a":1}', "application/json"))
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"Content-Length: 7" in head
    assert b"Connection: close" in head
    assert body == b'{"a":1}'
    assert render_response(Response(200, b"abc"), head_only=True).endswith(b"\r\n\r\n")


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


async def test_routing() -> None:
    health = Health()
    health.add_check("db", _ok)
    server = HealthServer(health, Metrics("notify"))
    assert (await server.handle("GET", "/nope")).status == 404
    assert (await server.handle("POST", "/metrics")).status == 405
    live = await server.handle("GET", "/health/live")
    assert live.status == 200
    assert json.loads(live.body) == {"status": "ok"}
    ready = await server.handle("GET", "/health/ready")
    assert ready.status == 200
    assert json.loads(ready.body)["checks"]["db"]["status"] == "ok"
    health.add_check("redis", _boom)
    ready = await server.handle("GET", "/health/ready")
    body = json.loads(ready.body)
    assert ready.status == 503
    assert body["status"] == "fail"
    assert body["checks"]["redis"]["status"] == "fail"
    metrics = await server.handle("GET", "/metrics")
    assert metrics.status == 200
    assert metrics.content_type.startswith("text/plain")


async def test_server_over_a_loopback_socket() -> None:
    server = HealthServer(Health(), Metrics("billing"), port=0)
    await server.start()
    try:
        port = server.bound_port
        assert (await http_get("127.0.0.1", port, "/health/live"))[0] == 200
        assert (await http_get("127.0.0.1", port, "/unknown"))[0] == 404
        status, body = await http_get("127.0.0.1", port, "/metrics")
        assert status == 200
        assert b"# TYPE aqsha_messages_handled_total counter" in body
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"garbage\r\n\r\n")
        await writer.drain()
        assert (await reader.read()).startswith(b"HTTP/1.1 400 ")
        writer.close()
    finally:
        await server.stop()
