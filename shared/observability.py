"""Metrics and health of one service process: Prometheus metrics and a tiny HTTP endpoint.

Every service gets the same instruments (``docs/observability.md``):

* ``aqsha_messages_handled_total{service,topic,type,outcome}``: one per message outcome
  (``ok``, ``skipped``, ``dead_lettered``, ``rewound``) and one per failed attempt that is retried
  (``retried``).
* ``aqsha_messages_failed_total{service,topic,type,reason}``: every failed handler attempt and
  every undecodable message.
* ``aqsha_handler_duration_seconds{service,topic,type}``: handler latency per attempt.
* ``aqsha_dead_letters_total{service,topic,reason}``: records published to a dead-letter topic.
* ``aqsha_outbox_backlog{service}``: rows waiting in the service's outbox (sampled).
* ``aqsha_consumer_lag{service,group,topic,partition}``: end offset minus committed offset of the
  partitions assigned to this process's consumers (sampled).

Each ``Metrics`` owns its ``CollectorRegistry``, so several runtimes in one process (tests) never
collide on registration. The subscriber helper finds the metrics of its broker with
``metrics_for(broker)``: ``ServiceRuntime`` binds them when it is built.

The HTTP server is plain asyncio (HTTP/1.1, one request per connection): ``GET /health/live``,
``GET /health/ready`` and ``GET /metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger("aqsha.observability")

#: Handler latency buckets, seconds: handlers are millisecond-level database transactions.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

OUTCOMES = ("ok", "retried", "dead_lettered", "rewound", "skipped")

#: A readiness check: returns normally (a true or ``None`` result) when healthy; ``False`` or an
#: exception means not ready.
Check = Callable[[], Awaitable[object]]


class Metrics:
    """The Prometheus instruments of one service, in their own registry."""

    def __init__(self, service: str, registry: CollectorRegistry | None = None) -> None:
        self.service = service
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.handled = Counter(
            "aqsha_messages_handled",
            "Messages handled by the subscriber helper, by outcome (retried counts failed attempts).",
            ["service", "topic", "type", "outcome"],
            registry=r,
        )
        self.failed = Counter(
            "aqsha_messages_failed",
            "Failed handler attempts and undecodable messages.",
            ["service", "topic", "type", "reason"],
            registry=r,
        )
        self.latency = Histogram(
            "aqsha_handler_duration_seconds",
            "Duration of one handler attempt.",
            ["service", "topic", "type"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.dead_letters = Counter(
            "aqsha_dead_letters",
            "Records published to a dead-letter topic.",
            ["service", "topic", "reason"],
            registry=r,
        )
        self.outbox_backlog = Gauge(
            "aqsha_outbox_backlog",
            "Rows waiting in the service's outbox table (sampled periodically).",
            ["service"],
            registry=r,
        )
        self.consumer_lag = Gauge(
            "aqsha_consumer_lag",
            "End offset minus committed offset per assigned partition (sampled periodically).",
            ["service", "group", "topic", "partition"],
            registry=r,
        )
        self._lag_keys: dict[str, set[tuple[str, int]]] = {}
        self.loop_lag = Gauge(
            "aqsha_event_loop_lag_seconds",
            "How late the event loop's last heartbeat woke up.",
            ["service"],
            registry=r,
        )

    # -- recording (the subscriber helper calls these) ---------------------------------------------

    def message(self, topic: str, type_: str, outcome: str) -> None:
        """Count one message outcome."""
        self.handled.labels(self.service, topic, type_, outcome).inc()

    def failure(self, topic: str, type_: str, reason: str) -> None:
        """Count one failed attempt or undecodable message."""
        self.failed.labels(self.service, topic, type_, reason).inc()

    def observe(self, topic: str, type_: str, seconds: float) -> None:
        """Record one handler attempt's duration."""
        self.latency.labels(self.service, topic, type_).observe(seconds)

    def dead_lettered(self, topic: str, reason: str) -> None:
        """Count one record published to its dead-letter topic."""
        self.dead_letters.labels(self.service, topic, reason).inc()

    def set_backlog(self, rows: int) -> None:
        """Set the sampled outbox backlog."""
        self.outbox_backlog.labels(self.service).set(rows)

    def set_lag(self, group: str, lags: Mapping[tuple[str, int], int]) -> None:
        """Replace the lag samples of ``group`` (partitions no longer assigned disappear)."""
        for topic, partition in self._lag_keys.get(group, set()) - set(lags):
            with contextlib.suppress(KeyError):
                self.consumer_lag.remove(self.service, group, topic, str(partition))
        for (topic, partition), lag in lags.items():
            self.consumer_lag.labels(self.service, group, topic, str(partition)).set(lag)
        self._lag_keys[group] = set(lags)

    def render(self) -> bytes:
        """The registry in the Prometheus text exposition format."""
        return generate_latest(self.registry)


_BOUND: weakref.WeakKeyDictionary[Any, Metrics] = weakref.WeakKeyDictionary()


def bind_metrics(broker: Any, metrics: Metrics) -> None:
    """Make ``metrics`` the instruments of everything subscribed on ``broker``."""
    _BOUND[broker] = metrics


def metrics_for(broker: Any) -> Metrics:
    """The metrics bound to ``broker``; a private unbound set (service ``unknown``) if none was."""
    found = _BOUND.get(broker)
    if found is None:
        found = _BOUND[broker] = Metrics("unknown")
    return found


# -- consumer lag ----------------------------------------------------------------------------------


def broker_consumers(broker: Any) -> list[tuple[str, Any]]:
    """``(group, AIOKafkaConsumer)`` of every started subscriber of a FastStream Kafka broker."""
    found: list[tuple[str, Any]] = []
    for sub in getattr(broker, "subscribers", []):
        group = getattr(sub, "group_id", None) or ""
        consumers = list(getattr(sub, "consumer_subgroup", None) or [])
        single = getattr(sub, "consumer", None)
        if single is not None and single not in consumers:
            consumers.append(single)
        found.extend((group, c) for c in consumers)
    return found


async def consumer_lag(consumer: Any) -> dict[tuple[str, int], int]:
    """End offset minus committed offset for each partition assigned to ``consumer``.

    Uses ``committed`` and ``end_offsets`` (Tansu cannot list a group's offsets through the admin
    client). A partition without a committed offset counts from its beginning offset.
    """
    tps = sorted(consumer.assignment(), key=lambda tp: (tp.topic, tp.partition))
    if not tps:
        return {}
    ends = await consumer.end_offsets(tps)
    missing = []
    committed: dict[Any, int] = {}
    for tp in tps:
        offset = await consumer.committed(tp)
        if offset is None:
            missing.append(tp)
        else:
            committed[tp] = offset
    if missing:
        committed.update(await consumer.beginning_offsets(missing))
    return {(tp.topic, tp.partition): max(0, ends[tp] - committed[tp]) for tp in tps}


async def sample_lag(metrics: Metrics, broker: Any) -> None:
    """Sample the lag of every started consumer of ``broker`` into ``metrics``."""
    by_group: dict[str, dict[tuple[str, int], int]] = {}
    for group, consumer in broker_consumers(broker):
        by_group.setdefault(group, {}).update(await consumer_lag(consumer))
    for group, lags in by_group.items():
        metrics.set_lag(group, lags)


# -- health ----------------------------------------------------------------------------------------


@dataclass
class Health:
    """Liveness (an event-loop heartbeat) and readiness (named checks with a timeout each)."""

    checks: dict[str, Check] = field(default_factory=dict)
    timeout_s: float = 2.0
    heartbeat_s: float = 0.5
    max_loop_lag_s: float = 5.0
    metrics: Metrics | None = None
    _last_beat: float = field(default_factory=time.monotonic)

    def add_check(self, name: str, check: Check) -> None:
        """Add a readiness check (a later one under the same name replaces it)."""
        self.checks[name] = check

    async def heartbeat(self, stop: asyncio.Event) -> None:
        """Record the loop's responsiveness until ``stop`` is set."""
        while not stop.is_set():
            before = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.heartbeat_s)
            now = time.monotonic()
            self._last_beat = now
            if self.metrics is not None:
                self.metrics.loop_lag.labels(self.metrics.service).set(
                    max(0.0, now - before - self.heartbeat_s)
                )

    def live(self) -> bool:
        """True unless the heartbeat stalled (the loop was blocked or the heartbeat task died)."""
        return time.monotonic() - self._last_beat <= self.max_loop_lag_s + self.heartbeat_s

    async def ready(self) -> tuple[bool, dict[str, dict[str, object]]]:
        """Run every check concurrently; ready only when all pass. Returns the per-check report."""
        names = sorted(self.checks)
        results = await asyncio.gather(*(self._run(self.checks[n]) for n in names))
        report = dict(zip(names, results, strict=True))
        return all(r["status"] == "ok" for r in report.values()), report

    async def _run(self, check: Check) -> dict[str, object]:
        started = time.monotonic()
        try:
            result = await asyncio.wait_for(check(), self.timeout_s)
        except TimeoutError:
            outcome: dict[str, object] = {"status": "fail", "error": f"timed out after {self.timeout_s}s"}
        except Exception as exc:
            outcome = {"status": "fail", "error": f"{type(exc).__name__}: {exc}"[:300]}
        else:
            outcome = (
                {"status": "fail", "error": "check returned false"} if result is False else {"status": "ok"}
            )
        outcome["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
        return outcome


# -- HTTP ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Response:
    """An HTTP response."""

    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}
MAX_HEADER_BYTES = 16 * 1024


class BadRequest(ValueError):
    """The request could not be parsed."""


def parse_request_head(head: bytes) -> tuple[str, str]:
    """``(method, path)`` from an HTTP/1.x request head; the query string is dropped."""
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError as exc:  # pragma: no cover - latin-1 decodes every byte
        raise BadRequest(str(exc)) from None
    request_line = text.split("\r\n", 1)[0]
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[1].startswith("/"):
        raise BadRequest(f"bad request line: {request_line[:100]!r}")
    method, target, _ = parts
    return method.upper(), target.split("?", 1)[0].split("#", 1)[0]


def render_response(response: Response, *, head_only: bool = False) -> bytes:
    """The bytes of an HTTP/1.1 response with ``Connection: close``."""
    reason = REASONS.get(response.status, "Unknown")
    headers = (
        f"HTTP/1.1 {response.status} {reason}\r\n"
        f"Content-Type: {response.content_type}\r\n"
        f"Content-Length: {len(response.body)}\r\n"
        "Cache-Control: no-store\r\n"
        "Connection: close\r\n\r\n"
    )
    return headers.encode("latin-1") + (b"" if head_only else response.body)


def _json(status: int, body: Mapping[str, object]) -> Response:
    return Response(status, json.dumps(body, sort_keys=True).encode(), "application/json")


class HealthServer:
    """Serves ``/health/live``, ``/health/ready`` and ``/metrics`` on ``host:port`` (0 = any free port)."""

    PATHS = ("/health/live", "/health/ready", "/metrics")

    def __init__(
        self, health: Health, metrics: Metrics, *, host: str = "127.0.0.1", port: int = 0,
        read_timeout_s: float = 5.0,
    ) -> None:  # fmt: skip
        self.health = health
        self.metrics = metrics
        self.host = host
        self.port = port
        self._read_timeout = read_timeout_s
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()

    @property
    def bound_port(self) -> int:
        """The port actually listened on (after ``start``)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("health server is not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.host}:{self.bound_port}"

    async def start(self) -> None:
        """Listen."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        log.info("health and metrics endpoint listening", extra={"url": self.url})

    async def stop(self) -> None:
        """Stop listening and drop open connections."""
        if self._server is None:
            return
        self._server.close()
        for task in list(self._clients):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 5)
        self._server = None

    async def handle(self, method: str, path: str) -> Response:
        """The response to ``method path`` (routing, no I/O on the socket)."""
        if path not in self.PATHS:
            return Response(404, b"not found\n")
        if method not in ("GET", "HEAD"):
            return Response(405, b"method not allowed\n")
        if path == "/health/live":
            ok = self.health.live()
            return _json(200 if ok else 503, {"status": "ok" if ok else "fail"})
        if path == "/health/ready":
            ok, report = await self.health.ready()
            return _json(200 if ok else 503, {"status": "ok" if ok else "fail", "checks": report})
        return Response(200, self.metrics.render(), CONTENT_TYPE_LATEST)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._clients.add(task)
        try:
            method = "GET"
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self._read_timeout)
                if len(head) > MAX_HEADER_BYTES:
                    raise BadRequest("request head too large")
                method, path = parse_request_head(head)
                response = await self.handle(method, path)
            except (BadRequest, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                response = Response(400, b"bad request\n")
            writer.write(render_response(response, head_only=method == "HEAD"))
            await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception:  # one bad connection must not take the endpoint down
            log.exception("health endpoint request failed")
        finally:
            if task is not None:
                self._clients.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def http_get(host: str, port: int, path: str, *, timeout_s: float = 10.0) -> tuple[int, bytes]:
    """A minimal HTTP GET (tests, probes): ``(status, body)``."""

    async def _get() -> tuple[int, bytes]:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
            raw = await reader.read()
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        head, _, body = raw.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        return status, body

    return await asyncio.wait_for(_get(), timeout_s)
