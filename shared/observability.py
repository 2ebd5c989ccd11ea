"""Metrics and health of one service process: Prometheus metrics and an HTTP endpoint.

Every service gets the same instruments (``docs/observability.md``):

* ``aqsha_messages_handled_total{service,topic,type,outcome}``: exactly one final outcome per
  delivered record (``ok``, ``skipped``, ``dead_lettered``, ``rewound``), so a plain sum counts
  deliveries.
* ``aqsha_handler_retries_total{service,topic,type,reason}``: every failed attempt that is retried
  (``handler_error``, ``transient``); never part of the outcomes above.
* ``aqsha_messages_failed_total{service,topic,type,reason}``: every failed handler attempt and
  every undecodable or refused message.
* ``aqsha_handler_duration_seconds{service,topic,type}``: handler latency per attempt.
* ``aqsha_dead_letters_total{service,topic,reason}``: records published to a dead-letter topic.
* ``aqsha_outbox_backlog{service}``: rows waiting in the service's outbox (sampled).
* ``aqsha_consumer_lag{service,group,topic,partition}`` and
  ``aqsha_consumer_committed_offset{...}``: end offset minus committed offset, and the committed
  offset, of the partitions assigned to this process's consumers (sampled).
* ``aqsha_ready{service}`` and ``aqsha_readiness_check{service,check}``: the last readiness result.
* ``aqsha_event_loop_lag_seconds{service}``: how late the heartbeat woke up.
* ``aqsha_business_day_*`` (billing): the last closed business date, runs and facts recorded.

Each ``Metrics`` owns its ``CollectorRegistry``, so several runtimes in one process (tests) never
collide on registration. The subscriber helper finds the metrics of its broker with
``metrics_for(broker)``: ``ServiceRuntime`` binds them when it is built.

The HTTP endpoint is an ASGI app (``HealthApp``: FastStream's ASGI handlers for
``GET /health/live`` and ``GET /health/ready``, prometheus-client's ASGI app for ``GET /metrics``)
served by uvicorn as a task of the service's own event loop (``HealthServer``), so the readiness
checks run on the loop that owns the pool and the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from datetime import time as time_of_day
from typing import Any

import uvicorn
from faststream.asgi import AsgiResponse, get
from faststream.asgi.types import ASGIApp, Receive, Scope, Send
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_asgi_app
from prometheus_client.exposition import generate_latest

from shared.clock import ALMATY

log = logging.getLogger("aqsha.observability")

#: Handler latency buckets, seconds: handlers are millisecond-level database transactions.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: The final outcomes of one delivered record (``aqsha_messages_handled_total``): exactly one each.
OUTCOMES = ("ok", "dead_lettered", "rewound", "skipped")
#: Why a failed attempt is retried (``aqsha_handler_retries_total``).
RETRY_REASONS = ("handler_error", "transient")
#: What a business-day run counts (billing's ``DayReport.counts()``): accounts closed through the
#: date, and bills, overdue records and penalties newly recorded.
BUSINESS_DAY_FACTS = ("accounts", "bills", "overdue", "penalties")

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
            "Records handled by the subscriber helper: exactly one final outcome per delivery.",
            ["service", "topic", "type", "outcome"],
            registry=r,
        )
        self.retries = Counter(
            "aqsha_handler_retries",
            "Failed handler attempts that are retried (not outcomes: a record's outcome comes once).",
            ["service", "topic", "type", "reason"],
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
        self.committed_offset = Gauge(
            "aqsha_consumer_committed_offset",
            "Committed offset of the group per assigned partition (sampled; flat while lag > 0: stalled).",
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
        self.ready = Gauge(
            "aqsha_ready",
            "1 when the last readiness evaluation passed every check, else 0.",
            ["service"],
            registry=r,
        )
        self.readiness_check = Gauge(
            "aqsha_readiness_check",
            "1 when the readiness check passed at its last run, else 0.",
            ["service", "check"],
            registry=r,
        )
        self.business_day_closed = Gauge(
            "aqsha_business_day_closed_timestamp_seconds",
            "The last closed business date (00:00 Asia/Almaty of it, Unix time); billing only.",
            ["service"],
            registry=r,
        )
        self._business_day_closed = 0.0
        self.business_day_runs = Counter(
            "aqsha_business_day_runs",
            "Business-day runs completed by this process; billing only.",
            ["service"],
            registry=r,
        )
        self.business_day_facts = Counter(
            "aqsha_business_day_facts",
            "Facts newly recorded by business-day runs of this process, by kind; billing only.",
            ["service", "fact"],
            registry=r,
        )

    # -- recording (the subscriber helper calls these) ---------------------------------------------

    def message(self, topic: str, type_: str, outcome: str) -> None:
        """Count the final outcome of one delivered record (one of ``OUTCOMES``)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"{outcome!r} is not a final outcome {OUTCOMES}; retries go to retry()")
        self.handled.labels(self.service, topic, type_, outcome).inc()

    def retry(self, topic: str, type_: str, reason: str) -> None:
        """Count one failed attempt that is retried (one of ``RETRY_REASONS``)."""
        self.retries.labels(self.service, topic, type_, reason).inc()

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

    def set_lag(
        self,
        group: str,
        lags: Mapping[tuple[str, int], int],
        committed: Mapping[tuple[str, int], int] | None = None,
    ) -> None:
        """Replace the lag (and committed offset) samples of ``group``; unassigned partitions disappear."""
        for topic, partition in self._lag_keys.get(group, set()) - set(lags):
            for gauge in (self.consumer_lag, self.committed_offset):
                with contextlib.suppress(KeyError):
                    gauge.remove(self.service, group, topic, str(partition))
        for (topic, partition), lag in lags.items():
            self.consumer_lag.labels(self.service, group, topic, str(partition)).set(lag)
            if committed is not None and (topic, partition) in committed:
                offset = committed[(topic, partition)]
                self.committed_offset.labels(self.service, group, topic, str(partition)).set(offset)
        self._lag_keys[group] = set(lags)

    def set_readiness(self, report: Mapping[str, Mapping[str, object]]) -> None:
        """Record a readiness evaluation (``Health.ready``'s per-check report)."""
        passed = [entry.get("status") == "ok" for entry in report.values()]
        self.ready.labels(self.service).set(1 if all(passed) else 0)
        for name, ok in zip(report, passed, strict=True):
            self.readiness_check.labels(self.service, name).set(1 if ok else 0)

    def set_business_day_closed(self, business_date: date) -> None:
        """Set the last closed business date (never moves it back)."""
        stamp = datetime.combine(business_date, time_of_day(0, 0), tzinfo=ALMATY).timestamp()
        if stamp > self._business_day_closed:
            self._business_day_closed = stamp
            self.business_day_closed.labels(self.service).set(stamp)

    def business_day_run(self, business_date: date, facts: Mapping[str, int]) -> None:
        """Count one completed business-day run and what it recorded (keys of ``BUSINESS_DAY_FACTS``)."""
        self.business_day_runs.labels(self.service).inc()
        for fact in BUSINESS_DAY_FACTS:
            self.business_day_facts.labels(self.service, fact).inc(facts.get(fact, 0))
        self.set_business_day_closed(business_date)

    def render(self) -> bytes:
        """The registry in the Prometheus text exposition format."""
        return generate_latest(self.registry)

    def exported(self) -> dict[str, tuple[str, ...]]:
        """Every series name this set can expose, with its label names (``le`` for buckets).

        Dashboards and alert rules may use only these (``tests/unit/test_monitoring.py``).
        """
        found: dict[str, tuple[str, ...]] = {}
        for instrument in self._instruments():
            labels = tuple(instrument._labelnames)
            for family in instrument.describe():
                if family.type == "counter":
                    found[family.name + "_total"] = found[family.name + "_created"] = labels
                elif family.type == "histogram":
                    found[family.name + "_bucket"] = (*labels, "le")
                    for suffix in ("_count", "_sum", "_created"):
                        found[family.name + suffix] = labels
                else:
                    found[family.name] = labels
        return found

    def _instruments(self) -> list[Counter | Gauge | Histogram]:
        return [v for v in vars(self).values() if isinstance(v, Counter | Gauge | Histogram)]


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


def prime_dead_letters(metrics: Metrics, broker: Any, reasons: Iterable[str]) -> None:
    """Create ``aqsha_dead_letters_total`` at 0 for every topic subscribed on ``broker`` and reason.

    ``increase()`` cannot see the first increment of a series that did not exist before it, so an
    alert on the very first forged record needs the series to be there, at 0, from the start.
    """
    for sub in getattr(broker, "subscribers", []):
        for topic in getattr(sub, "topic_names", None) or []:
            for reason in reasons:
                metrics.dead_letters.labels(metrics.service, topic, reason)


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
    """End offset minus committed offset for each partition assigned to ``consumer``."""
    return {tp: lag for tp, (lag, _) in (await consumer_positions(consumer)).items()}


async def consumer_positions(consumer: Any) -> dict[tuple[str, int], tuple[int, int]]:
    """``(lag, committed offset)`` for each partition assigned to ``consumer``.

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
    return {(tp.topic, tp.partition): (max(0, ends[tp] - committed[tp]), committed[tp]) for tp in tps}


async def sample_lag(metrics: Metrics, broker: Any) -> None:
    """Sample the lag and committed offsets of every started consumer of ``broker`` into ``metrics``."""
    by_group: dict[str, dict[tuple[str, int], tuple[int, int]]] = {}
    for group, consumer in broker_consumers(broker):
        by_group.setdefault(group, {}).update(await consumer_positions(consumer))
    for group, positions in by_group.items():
        lags = {tp: lag for tp, (lag, _) in positions.items()}
        committed = {tp: offset for tp, (_, offset) in positions.items()}
        metrics.set_lag(group, lags, committed)


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
        if self.metrics is not None:
            self.metrics.set_readiness(report)
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

#: Health answers must never be served from a cache.
_NO_STORE = {"Cache-Control": "no-store"}


def _json(status: int, body: Mapping[str, object]) -> AsgiResponse:
    payload = json.dumps(body, sort_keys=True).encode()
    return AsgiResponse(payload, status, {"Content-Type": "application/json", **_NO_STORE})


class HealthApp:
    """The ASGI app: ``/health/live``, ``/health/ready`` and ``/metrics``, anything else ``404``.

    Each path is a FastStream ASGI ``get`` handler (``GET``/``HEAD``; another method is ``405`` with
    ``Allow``; an exception in a handler is a logged ``500``). ``/metrics`` answers with
    prometheus-client's own ASGI app (content negotiation, OpenMetrics, gzip). HTTP parsing and
    connections are uvicorn's (``HealthServer``).
    """

    PATHS = ("/health/live", "/health/ready", "/metrics")

    def __init__(self, health: Health, metrics: Metrics) -> None:
        self.health = health
        self.metrics = metrics
        exposition = make_asgi_app(metrics.registry)

        async def live(scope: Scope) -> ASGIApp:
            ok = self.health.live()
            return _json(200 if ok else 503, {"status": "ok" if ok else "fail"})

        async def ready(scope: Scope) -> ASGIApp:
            ok, report = await self.health.ready()
            return _json(200 if ok else 503, {"status": "ok" if ok else "fail", "checks": report})

        async def metrics_app(scope: Scope) -> ASGIApp:
            return exposition

        handlers = {"/health/live": get(live), "/health/ready": get(ready), "/metrics": get(metrics_app)}
        for handler in handlers.values():
            handler.set_logger(log)  # a failing handler is a 500 and a logged traceback
        self.routes: dict[str, ASGIApp] = dict(handlers)
        self._not_found = AsgiResponse(b"not found\n", 404)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point (HTTP only: the server runs without lifespan and websockets)."""
        if scope["type"] != "http":
            return
        route = self.routes.get(scope["path"], self._not_found)
        await route(scope, receive, send)


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn inside an event loop it does not own: signals stay with the FastStream runner.

    ``uvicorn.Server.serve`` would replace the process's SIGINT/SIGTERM handlers and re-raise the
    signal when it stops; here the runtime stops the server itself (``should_exit``).
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HealthServer:
    """Serves ``HealthApp`` with uvicorn on ``host:port`` (0 = any free port), as a task of this loop."""

    PATHS = HealthApp.PATHS

    def __init__(
        self, health: Health, metrics: Metrics, *, host: str = "127.0.0.1", port: int = 0,
        shutdown_timeout_s: float = 5.0,
    ) -> None:  # fmt: skip
        self.health = health
        self.metrics = metrics
        self.app = HealthApp(health, metrics)
        self.host = host
        self.port = port
        self._shutdown_timeout = shutdown_timeout_s
        self._socket: socket.socket | None = None
        self._server: _EmbeddedUvicorn | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def bound_port(self) -> int:
        """The port actually listened on (after ``start``)."""
        if self._socket is None:
            raise RuntimeError("health server is not started")
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        """``http://host:port``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.bound_port}"

    async def start(self) -> None:
        """Bind (an ``OSError`` if the port is taken), then serve until ``stop``."""
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self.port,
            http="h11",
            ws="none",
            lifespan="off",
            log_config=None,  # the service's JSON logging handles uvicorn's records
            log_level="warning",
            access_log=False,  # probes every few seconds would drown the service's log
            server_header=False,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=int(self._shutdown_timeout),
        )
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.create_server((self.host, self.port), family=family)
        server = _EmbeddedUvicorn(config)
        task = asyncio.create_task(server.serve(sockets=[sock]), name="aqsha-health-http")
        deadline = time.monotonic() + 10
        while not server.started:
            if task.done() or time.monotonic() > deadline:
                server.should_exit = True
                sock.close()
                with contextlib.suppress(asyncio.CancelledError):
                    await task  # re-raises what stopped it
                raise RuntimeError("the health endpoint did not start")
            await asyncio.sleep(0.01)
        self._socket, self._server, self._task = sock, server, task
        log.info("health and metrics endpoint listening", extra={"url": self.url})

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (bounded), close connections."""
        server, task = self._server, self._task
        if server is None or task is None:
            return
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), self._shutdown_timeout + 2)
        except TimeoutError:
            server.force_exit = True
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        except Exception:  # the endpoint must not break the service's shutdown
            log.exception("health endpoint stopped with an error")
        finally:
            if self._socket is not None:
                self._socket.close()
            self._socket = self._server = self._task = None
