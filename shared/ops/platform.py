"""The whole platform on one machine: infrastructure, topics, migrations and four service processes.

``make run`` (``python -m shared.ops.platform``) and the chaos suite drive the same :class:`Platform`:

1. **Infrastructure.** With a Docker engine, ``deploy/compose.yaml`` runs Apache Kafka (KRaft),
   PostgreSQL, Redis and the services (:func:`run_compose`). Without one, local processes: Tansu
   from the pinned wheel as the broker, and the machine's PostgreSQL and Redis (or private ones
   when none answers); ``AQSHA_KAFKA_BOOTSTRAP`` / ``AQSHA_PG_DSN`` / ``AQSHA_REDIS_URL`` override
   each (:func:`local_endpoints`).
2. **Topics and migrations**: every registry topic and its ``.dlq``, every service's schema, in a
   fresh database (``aqsha_run`` by default: a run starts from nothing, as the broker does).
3. **Services**: ``faststream run services.<name>.app:create_app --factory``, one process each, in
   their own session (Ctrl-C reaches this supervisor only, which then stops them in order), logs in
   ``.run/logs/<name>.log``, each with its health/metrics port.
4. **Gateways**: notify's push and SMS webhooks and SMTP relay are simulated here (:class:`Gateways`),
   so a demo can read the one-time code a customer "received" by SMS.

Stopping is graceful: :meth:`Platform.quiesce` waits until every outbox is empty and every consumer
group has no lag, then each service gets SIGTERM (FastStream finishes the in-flight message, the
outbox relay its batch), and only then the broker stops.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import asyncpg
import httpx

from shared.db import migrate, service_migrations
from shared.devinfra import (
    LOOPBACK,
    PostgresCluster,
    RedisServer,
    TansuBroker,
    docker_available,
    free_port,
    stop_owned,
)
from shared.kafka import ensure_topics
from shared.ops.common import kafka_client_kwargs
from shared.ops.devsecrets import SECRET_VARIABLES, write_dev_secrets
from shared.ops.kafka_tools import compute_lag, consumer_groups
from shared.ops.profile import (
    GATEWAYS_ENV,
    PROFILE_ENV,
    PROFILE_NAME,
    RUN_DIR,
    mask_secrets,
    remove_profile,
    write_profile,
)
from shared.settings import DatabaseSettings, KafkaSettings, RedisSettings, Settings, TrustSettings
from shared.topics import TOPICS

log = logging.getLogger("aqsha.platform")

ROOT = Path(__file__).resolve().parents[2]
SERVICES: tuple[str, ...] = ("payments", "bonus", "billing", "notify")
SCHEMAS: dict[str, str] = {name: name for name in SERVICES}
#: Service name → its consumer group (and inbox group), from the services' settings.
GROUPS: dict[str, str] = consumer_groups()


#: Caller variables ``make run`` never hands to a service: each service has its own name, port and
#: consumer group (one value would give all four the same), signs with its own key from the run's
#: keyring (an operator's AQSHA_TRUST_SIGNING_KEY_FILE would make it sign as the operator), and the
#: CLI's profile is the CLI's.
PASSED_THROUGH_NEVER: frozenset[str] = frozenset(
    {
        "AQSHA_SERVICE",
        "AQSHA_HTTP_PORT",
        "AQSHA_GROUP",
        "AQSHA_CONSUMER_GROUP",
        "AQSHA_TRUST_SIGNING_KEY_FILE",
        PROFILE_ENV,
        GATEWAYS_ENV,
    }
)


# -- infrastructure ---------------------------------------------------------------------------------
@dataclass
class Endpoints:
    """Where the broker, PostgreSQL (an admin DSN) and Redis are, and what we started to provide them."""

    kafka: str
    pg_admin_dsn: str
    redis_url: str
    kinds: dict[str, str]
    owned: list[Any] = field(default_factory=list)
    #: ``AQSHA_KAFKA_*`` login settings per client: ``""`` for the platform's own tools (topics, the
    #: demo, lag), a service name for that service. None at all: PLAINTEXT (the local broker).
    kafka_auth: dict[str, dict[str, str]] = field(default_factory=dict)

    def stop(self) -> None:
        """Stop what we started (newest first) and remove its temporary directory."""
        stop_owned(self.owned)

    def kafka_settings(self, who: str = "", **changes: Any) -> KafkaSettings:
        """Kafka settings of a client of this platform (``who``: a service, or "" for the tools)."""
        auth = {k.removeprefix("AQSHA_KAFKA_").lower(): v for k, v in self.kafka_auth.get(who, {}).items()}
        return KafkaSettings(bootstrap=self.kafka, **{**auth, **changes})

    def client_kwargs(self, role: str = "platform") -> dict[str, Any]:
        """aiokafka keyword arguments (bootstrap, client id, login) for the platform's own tools."""
        return kafka_client_kwargs(self.kafka_settings(), role)


def _answers(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def local_endpoints(
    *, tansu_storage: str = "memory://tansu/", tansu_env: dict[str, str] | None = None
) -> Endpoints:
    """Resolve Kafka, PostgreSQL and Redis without Docker (module docstring, step 1)."""
    owned: list[Any] = []
    kinds: dict[str, str] = {}
    try:
        pg = os.environ.get("AQSHA_PG_DSN")
        if pg:
            kinds["postgres"] = "env"
        elif _answers(LOOPBACK, 5432):
            pg, kinds["postgres"] = (
                f"postgresql://postgres@{LOOPBACK}:5432/postgres",
                "machine (127.0.0.1:5432)",
            )
        elif PostgresCluster.available():
            cluster = PostgresCluster().start()
            owned.append(cluster)
            pg, kinds["postgres"] = cluster.dsn, "private initdb cluster"
        else:
            raise RuntimeError("no PostgreSQL: set AQSHA_PG_DSN, start one on 5432, or install initdb")

        redis_url = os.environ.get("AQSHA_REDIS_URL")
        if redis_url:
            kinds["redis"] = "env"
        elif _answers(LOOPBACK, 6379):
            redis_url, kinds["redis"] = f"redis://{LOOPBACK}:6379/0", "machine (127.0.0.1:6379)"
        elif shutil.which("redis-server"):
            rs = RedisServer().start()
            owned.append(rs)
            redis_url, kinds["redis"] = rs.url, "private redis-server"
        else:
            raise RuntimeError("no Redis: set AQSHA_REDIS_URL, start one on 6379, or install redis-server")

        kafka = os.environ.get("AQSHA_KAFKA_BOOTSTRAP")
        if kafka:
            kinds["kafka"] = "env"
        else:
            tansu = TansuBroker(storage=tansu_storage, env=tansu_env or {}).start()
            owned.append(tansu)
            kafka, kinds["kafka"] = tansu.bootstrap, f"Tansu {tansu.bootstrap} ({tansu_storage})"
    except BaseException:
        stop_owned(owned)
        raise
    return Endpoints(kafka, pg, redis_url, kinds, owned)


def with_database(dsn: str, database: str) -> str:
    """``dsn`` pointing at another database."""
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


async def recreate_database(admin_dsn: str, database: str) -> str:
    """Drop and create ``database`` (a run starts from nothing); return its DSN."""
    if not database.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name {database!r}")
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
    return with_database(admin_dsn, database)


# -- simulated gateways -----------------------------------------------------------------------------
def _national(recipient: str) -> str:
    """The last ten digits of a phone number (the recipient itself when it has fewer)."""
    digits = "".join(ch for ch in recipient if ch.isdigit())
    return digits[-10:] if len(digits) >= 10 else recipient


@dataclass
class Gateways:
    """notify's push and SMS webhooks (HTTP) and SMTP relay, recording what they receive.

    Like real gateways they de-duplicate on the ``Idempotency-Key`` header (notify repeats a send
    after a crash with the same key): ``sms``/``push`` hold each key once, ``attempts`` counts every
    POST per key. Indexed and keep-alive, so a benchmark's hundred thousand pushes stay cheap.
    """

    push: list[dict[str, Any]] = field(default_factory=list)
    sms: list[dict[str, Any]] = field(default_factory=list)
    mail: list[tuple[list[str], str]] = field(default_factory=list)
    attempts: dict[tuple[str, str], int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _by_phone: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _http: ThreadingHTTPServer | None = None
    _smtp: Any = None

    def _receive(self, path: str, key: str | None, body: dict[str, Any]) -> None:
        is_sms = path.endswith("/sms")
        with self.lock:
            if key is not None:
                seen = (path, key) in self.attempts
                self.attempts[(path, key)] = self.attempts.get((path, key), 0) + 1
                if seen:
                    return
            message = {**body, "_key": key}
            (self.sms if is_sms else self.push).append(message)
            if is_sms:
                self._by_phone.setdefault(str(body.get("to")), []).append(message)

    def start(self) -> Gateways:
        """Start the webhook server and the SMTP sink on free loopback ports."""
        gateways = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: notify's httpx client reuses connections

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    self.send_response(400)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                gateways._receive(self.path, self.headers.get("Idempotency-Key"), body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                # Reading what the gateways received: ``aqsha sms`` (the customer's phone, simulated).
                parts = urlsplit(self.path)
                kind = parts.path.rstrip("/").rsplit("/", 1)[-1]
                if kind not in ("sms", "push"):
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                wanted = parse_qs(parts.query).get("to", [None])[0]
                body = json.dumps(gateways.received(kind, to=wanted), ensure_ascii=False).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._http = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, name="gateways-http", daemon=True).start()

        from aiosmtpd.controller import Controller

        class Mailbox:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                text = envelope.content.decode("utf-8", "replace")
                with gateways.lock:
                    gateways.mail.append((list(envelope.rcpt_tos), text))
                return "250 OK"

        self._smtp = Controller(Mailbox(), hostname=LOOPBACK, port=free_port())
        self._smtp.start()
        return self

    @property
    def base_url(self) -> str:
        """http://host:port of the webhooks."""
        assert self._http is not None
        return f"http://{LOOPBACK}:{self._http.server_address[1]}"

    @property
    def smtp_port(self) -> int:
        """Port of the SMTP sink."""
        return int(self._smtp.port)

    def env(self) -> dict[str, str]:
        """notify's (and the card-issuer simulator's) settings pointing at these gateways."""
        return {
            "AQSHA_PUSH_WEBHOOK_URL": f"{self.base_url}/push",
            "AQSHA_SMS_WEBHOOK_URL": f"{self.base_url}/sms",
            # payments' card-issuer simulator sends its 3-D Secure codes to the same phones (seed 003).
            "AQSHA_ISSUER_SMS_WEBHOOK_URL": f"{self.base_url}/sms",
            "AQSHA_SMTP_HOST": LOOPBACK,
            "AQSHA_SMTP_PORT": str(self.smtp_port),
        }

    @property
    def running(self) -> bool:
        """The webhook server is started."""
        return self._http is not None

    def received(self, kind: str, *, to: str | None = None) -> list[dict[str, Any]]:
        """What the SMS (``kind="sms"``) or push gateway received, oldest first; ``to`` filters by recipient.

        A phone matches by its last ten digits, so ``+77011234567`` and ``87011234567`` are one phone.
        """
        with self.lock:
            messages = list(self.sms if kind == "sms" else self.push)
        if to is not None:
            wanted = _national(to)
            messages = [m for m in messages if _national(str(m.get("to", ""))) == wanted]
        return [{k: v for k, v in m.items() if k != "_key"} for m in messages]

    def sms_to(self, phone: str) -> list[dict[str, Any]]:
        """Every SMS sent to ``phone``, oldest first."""
        with self.lock:
            return list(self._by_phone.get(phone, ()))

    def stop(self) -> None:
        """Stop both servers."""
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._smtp is not None:
            with contextlib.suppress(Exception):
                self._smtp.stop()
            self._smtp = None


# -- service processes ------------------------------------------------------------------------------
@dataclass
class ServiceProcess:
    """One ``faststream run`` process of a service."""

    name: str
    env: dict[str, str]
    log_path: Path
    http_port: int
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        """Start (or restart) the process in its own session."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "faststream", "run", f"services.{self.name}.app:create_app", "--factory"]
        with self.log_path.open("ab") as out:
            self.popen = subprocess.Popen(
                cmd, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.starts += 1

    @property
    def alive(self) -> bool:
        """The process is running."""
        return self.popen is not None and self.popen.poll() is None

    @property
    def pid(self) -> int | None:
        """Process id, when started."""
        return self.popen.pid if self.popen is not None else None

    async def ready(self, timeout_s: float = 60.0) -> None:
        """Wait until ``/health/ready`` answers 200 (PostgreSQL, Redis and the broker checked)."""
        url = f"http://{LOOPBACK}:{self.http_port}/health/ready"
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if not self.alive:
                    raise RuntimeError(f"{self.name} exited with {self.returncode()}; see {self.log_path}")
                with contextlib.suppress(httpx.HTTPError):
                    answer = await client.get(url)
                    if answer.status_code == 200:
                        return
                    last = f"{answer.status_code} {answer.text[:200]}"
                await asyncio.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready within {timeout_s}s ({last}); see {self.log_path}")

    def returncode(self) -> int | None:
        """Exit code, if it exited."""
        return self.popen.poll() if self.popen is not None else None

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the process."""
        if self.alive:
            assert self.popen is not None
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(sig)

    async def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM and wait (FastStream's graceful shutdown), SIGKILL after ``timeout_s``."""
        if self.popen is None:
            return None
        self.signal(signal.SIGTERM)
        assert self.popen is not None
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(self.popen.wait, timeout_s)
        if self.alive:
            log.warning("service did not stop in time; killing", extra={"service": self.name})
            self.kill()
        return self.returncode()

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.alive:
            assert self.popen is not None
            self.popen.kill()
            self.popen.wait()


# -- the platform -----------------------------------------------------------------------------------
@dataclass
class Platform:
    """Topics, migrations, gateways and the four service processes over resolved endpoints."""

    endpoints: Endpoints
    database: str = "aqsha_run"
    run_dir: Path = field(default_factory=lambda: ROOT / ".run")
    redis_prefix: str = "aqsha:run:"
    topic_suffix: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)
    service_env: dict[str, dict[str, str]] = field(default_factory=dict)
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    extras: list[ServiceProcess] = field(default_factory=list)
    gateways: Gateways = field(default_factory=Gateways)
    dsn: str = ""
    #: The run's keys (signing keyring, trust registry, OTP keys) as ``AQSHA_*`` variables: the
    #: caller's when its environment has a trust registry (tests), else fresh ones per run.
    secrets: dict[str, str] = field(default_factory=dict)

    @property
    def clock_file(self) -> Path:
        """The simulated-time offset file every service reads (``shared.clock.OffsetFileClock``)."""
        return self.run_dir / "clock"

    @property
    def log_dir(self) -> Path:
        """Where each service's log goes."""
        return self.run_dir / "logs"

    @property
    def profile_path(self) -> Path:
        """The CLI's profile of this run (``shared.ops.profile``): ``<run dir>/aqsha.env``."""
        return self.run_dir / PROFILE_NAME

    def profile_env(self) -> dict[str, str]:
        """What the ``aqsha`` CLI needs to drive this platform, as ``AQSHA_*`` variables.

        The broker (and the tools' login on a compose broker), the run's database, Redis, the clock
        file, the run's keyring (the operator signs as ``ops``; ``--as PRINCIPAL`` picks another key of
        the keyring) and the simulated gateways.
        """
        root = Path.cwd()
        env = {"AQSHA_KAFKA_BOOTSTRAP": self.endpoints.kafka}
        if self.topic_suffix:
            env["AQSHA_KAFKA_TOPIC_SUFFIX"] = self.topic_suffix
        env.update(self.endpoints.kafka_auth.get("", {}))
        env.update(
            {
                "AQSHA_PG_DSN": self.dsn,
                "AQSHA_REDIS_URL": self.endpoints.redis_url,
                "AQSHA_REDIS_PREFIX": self.redis_prefix,
                "AQSHA_CLOCK_FILE": str((root / self.clock_file).resolve()),
            }
        )
        keys_dir = self.secrets.get("AQSHA_TRUST_KEYS_DIR")
        if keys_dir:
            keys = (root / keys_dir).resolve()
            env["AQSHA_TRUST_KEYS_DIR"] = str(keys)
            env["AQSHA_TRUST_SIGNING_KEY_FILE"] = str(keys / "ops.pem")
        registry = self.secrets.get("AQSHA_TRUST_REGISTRY_FILE")
        if registry:
            env["AQSHA_TRUST_REGISTRY_FILE"] = str((root / registry).resolve())
        if self.gateways.running:
            env[GATEWAYS_ENV] = self.gateways.base_url
        return env

    def write_profile(self) -> Path:
        """Write the CLI's profile of this run (removed again by ``make run`` when it stops)."""
        return write_profile(self.profile_path, self.profile_env(), pid=os.getpid())

    def settings(self, **changes: Any) -> Settings:
        """Client settings for this platform (demo, CLI, auditors)."""
        return Settings(
            kafka=self.endpoints.kafka_settings(topic_suffix=self.topic_suffix),
            db=DatabaseSettings(dsn=self.dsn),
            redis=RedisSettings(url=self.endpoints.redis_url, prefix=self.redis_prefix),
            clock_file=self.clock_file,
            trust=TrustSettings(
                keys_dir=self.secrets.get("AQSHA_TRUST_KEYS_DIR"),
                registry_file=self.secrets.get("AQSHA_TRUST_REGISTRY_FILE"),
            ),
            **changes,
        )

    def env(self) -> dict[str, str]:
        """The environment every service process gets.

        The caller's ``AQSHA_*`` settings pass through (an OTP threshold, the bonus switch-over date,
        a log level ...), except those that belong to one process (``PASSED_THROUGH_NEVER``); the
        platform's own endpoints, clock, keys and gateways then win over anything the caller set.
        """
        env = {k: v for k, v in os.environ.items() if k not in PASSED_THROUGH_NEVER}
        env.update(
            {
                "AQSHA_KAFKA_BOOTSTRAP": self.endpoints.kafka,
                "AQSHA_KAFKA_TOPIC_SUFFIX": self.topic_suffix,
                "AQSHA_PG_DSN": self.dsn,
                "AQSHA_REDIS_URL": self.endpoints.redis_url,
                "AQSHA_REDIS_PREFIX": self.redis_prefix,
                "AQSHA_CLOCK_FILE": str(self.clock_file),
                "AQSHA_HTTP_HOST": LOOPBACK,
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.gateways.env())
        env.update(self.secrets)
        env.update(self.extra_env)
        return env

    async def prepare(self) -> None:
        """Fresh database, topics, every service's migrations, an empty clock and clean Redis keys."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.clock_file.unlink(missing_ok=True)
        if os.environ.get("AQSHA_TRUST_REGISTRY_FILE"):
            self.secrets = {k: v for k, v in os.environ.items() if k in SECRET_VARIABLES}
        else:  # a fresh keyring per run, never committed (.run/ is ignored)
            shutil.rmtree(self.run_dir / "secrets", ignore_errors=True)
            self.secrets = write_dev_secrets(self.run_dir / "secrets")
        for old_log in self.log_dir.glob("*.log"):  # a run's logs are its own (the log audit reads them)
            old_log.unlink()
        self.dsn = await recreate_database(self.endpoints.pg_admin_dsn, self.database)
        await ensure_topics(self.endpoints.kafka_settings(topic_suffix=self.topic_suffix))
        conn = await asyncpg.connect(self.dsn)
        try:
            for name in SERVICES:
                await migrate(conn, SCHEMAS[name], service_migrations(ROOT / "services" / name))
        finally:
            await conn.close()
        await self._clear_redis()

    async def _clear_redis(self) -> None:
        from redis.asyncio import Redis

        client = Redis.from_url(self.endpoints.redis_url)
        try:
            keys = [key async for key in client.scan_iter(match=f"{self.redis_prefix}*", count=1000)]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()

    def _process(self, name: str) -> ServiceProcess:
        port = free_port()
        env = {
            **self.env(),
            **self.endpoints.kafka_auth.get(name, {}),
            "AQSHA_HTTP_PORT": str(port),
            **self.service_env.get(name, {}),
        }
        suffix = "" if name not in self.services else f"-{len(self.extras) + 2}"
        return ServiceProcess(name, env, self.log_dir / f"{name}{suffix}.log", port)

    async def start(self, timeout_s: float = 90.0) -> None:
        """Gateways, then every service process; returns when all four are ready."""
        if not self.dsn:
            await self.prepare()
        self.gateways.start()
        for name in SERVICES:
            proc = self._process(name)
            self.services[name] = proc
            proc.start()
        await asyncio.gather(*(p.ready(timeout_s) for p in self.services.values()))

    async def restart(self, name: str, timeout_s: float = 60.0) -> None:
        """Start a stopped or killed service again and wait until it is ready."""
        proc = self.services[name]
        if proc.alive:
            raise RuntimeError(f"{name} is running")
        proc.start()
        await proc.ready(timeout_s)

    async def add_instance(self, name: str, timeout_s: float = 60.0) -> ServiceProcess:
        """A second instance of a service (same consumer group: the partitions are rebalanced)."""
        proc = self._process(name)
        self.extras.append(proc)
        proc.start()
        await proc.ready(timeout_s)
        return proc

    def crashed(self) -> list[str]:
        """Services whose process exited on its own."""
        return [name for name, p in self.services.items() if p.popen is not None and not p.alive]

    async def backlog(self) -> dict[str, int]:
        """Outbox rows waiting per service plus the consumer lag per group (``lag:<group>``)."""
        out: dict[str, int] = {}
        conn = await asyncpg.connect(self.dsn)
        try:
            for name in SERVICES:
                out[f"outbox:{name}"] = int(
                    await conn.fetchval(f"SELECT count(*) FROM {SCHEMAS[name]}.outbox")
                )
        finally:
            await conn.close()
        lags = await consumer_lag(self.endpoints.kafka, self.topic_suffix, self.endpoints.kafka_settings())
        for name, lag in lags.items():
            out[f"lag:{name}"] = lag
        return out

    async def quiesce(self, timeout_s: float = 60.0, *, settle_s: float = 1.0) -> dict[str, int]:
        """Wait until every outbox is empty and no group has lag, twice ``settle_s`` apart."""
        deadline = time.monotonic() + timeout_s
        quiet_since: float | None = None
        backlog: dict[str, int] = {}
        while time.monotonic() < deadline:
            backlog = await self.backlog()
            if any(backlog.values()):
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= settle_s:
                return backlog
            await asyncio.sleep(0.25)
        raise TimeoutError(f"the platform did not quiesce within {timeout_s}s: {backlog}")

    async def stop(self, *, drain_s: float = 30.0) -> dict[str, int | None]:
        """Drain (outboxes empty, no lag), then SIGTERM every service; return their exit codes."""
        if self.dsn and any(p.alive for p in self.services.values()):
            with contextlib.suppress(Exception):
                await self.quiesce(drain_s, settle_s=0.5)
        procs = [*self.extras, *self.services.values()]
        codes = await asyncio.gather(*(p.stop() for p in procs))
        self.gateways.stop()
        return {f"{p.name}:{p.pid}": code for p, code in zip(procs, codes, strict=True)}


async def consumer_lag(
    bootstrap: str, suffix: str = "", login: KafkaSettings | None = None
) -> dict[str, int]:
    """Total lag per service consumer group over the topics it reads (``aqsha lag``'s numbers)."""
    groups = tuple(GROUPS.values())
    base = login or KafkaSettings(bootstrap=bootstrap)
    settings = base.model_copy(update={"bootstrap": bootstrap, "topic_suffix": suffix})
    rows, _ = await compute_lag(settings, only_groups=groups)
    out = dict.fromkeys(groups, 0)
    for row in rows:
        out[row.group] += row.lag
    return out


# -- compose (where a Docker engine exists) --------------------------------------------------------
COMPOSE_FILE = ROOT / "deploy" / "compose.yaml"
#: The infrastructure services of deploy/compose.yaml and the host ports they publish.
COMPOSE_INFRA = ("kafka", "postgres", "redis")
#: DEVELOPMENT ONLY, as in deploy/.env.example: the compose broker's SCRAM logins (deploy/kafka/).
#: Each service logs in as its own user with its ACLs; the platform's tools (topics, the demo acting
#: as every outside system, lag) as the broker's super user ``admin``.
COMPOSE_KAFKA_LOGIN = {
    "AQSHA_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
    "AQSHA_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
}


def compose_kafka_auth() -> dict[str, dict[str, str]]:
    """``Endpoints.kafka_auth`` for the compose broker (passwords from the environment or dev-only)."""

    def login(user: str, variable: str, default: str) -> dict[str, str]:
        password = os.environ.get(variable, default)
        return {
            **COMPOSE_KAFKA_LOGIN,
            "AQSHA_KAFKA_SASL_USERNAME": user,
            "AQSHA_KAFKA_SASL_PASSWORD": password,
        }

    auth = {"": login("admin", "AQSHA_KAFKA_PASSWORD_ADMIN", "dev-only-kafka-admin")}
    for name in SERVICES:
        auth[name] = login(f"aqsha-{name}", f"AQSHA_KAFKA_PASSWORD_{name.upper()}", f"dev-only-kafka-{name}")
    return auth


COMPOSE_PORTS = {"kafka": 9094, "postgres": 15432, "redis": 16379}


def compose_available() -> bool:
    """A Docker engine answers and ``docker compose`` exists."""
    if not docker_available() or shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    return probe.returncode == 0


@dataclass
class ComposeInfra:
    """Apache Kafka (KRaft), PostgreSQL and Redis from deploy/compose.yaml; ``down`` on stop."""

    project: str = "aqsha-run"

    def _base(self) -> list[str]:
        return ["docker", "compose", "-f", str(COMPOSE_FILE), "-p", self.project]

    def start(self) -> ComposeInfra:
        """``up --wait`` the infrastructure services only (the services run as local processes)."""
        subprocess.run([*self._base(), "up", "--detach", "--wait", *COMPOSE_INFRA], check=True, cwd=ROOT)
        # The SCRAM users and their ACLs (a one-shot; `up --wait` would treat its exit as a failure).
        subprocess.run([*self._base(), "run", "--rm", "kafka-init"], check=True, cwd=ROOT)
        return self

    def stop(self) -> None:
        """``down --volumes``."""
        subprocess.run([*self._base(), "down", "--volumes"], check=False, cwd=ROOT)


def compose_endpoints() -> Endpoints:
    """Step 1 with a Docker engine: the compose infrastructure on its published ports."""
    stack = ComposeInfra().start()
    return Endpoints(
        kafka=f"{LOOPBACK}:{COMPOSE_PORTS['kafka']}",
        pg_admin_dsn=f"postgresql://aqsha:aqsha@{LOOPBACK}:{COMPOSE_PORTS['postgres']}/aqsha",
        redis_url=f"redis://{LOOPBACK}:{COMPOSE_PORTS['redis']}/0",
        kinds={"kafka": "compose: Apache Kafka (KRaft)", "postgres": "compose", "redis": "compose"},
        owned=[stack],
        kafka_auth=compose_kafka_auth(),
    )


# -- command line -----------------------------------------------------------------------------------
def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m shared.ops.platform",
        description="Start the broker, PostgreSQL, Redis and the four services, then drive the demo.",
    )
    parser.add_argument("--no-demo", action="store_true", help="run only the platform, without the demo")
    parser.add_argument("--once", action="store_true", help="run the demo, print the summary, stop, exit")
    parser.add_argument("--database", default="aqsha_run", help="database to (re)create for this run")
    parser.add_argument("--local", action="store_true", help="local processes even where Docker exists")
    parser.add_argument("--run-dir", type=Path, default=ROOT / ".run", help="logs and the clock file")
    return parser.parse_args(argv)


def _say(text: str) -> None:
    print(text, flush=True)


async def _wait_for_signal(stop: asyncio.Event, platform: Platform) -> None:
    while not stop.is_set():
        crashed = platform.crashed()
        if crashed:
            raise RuntimeError(f"service(s) exited unexpectedly: {', '.join(crashed)} (logs in .run/logs)")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


async def run(args: argparse.Namespace) -> int:
    """The module docstring, steps 1–4, then the demo; until Ctrl-C unless ``--once``."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    use_compose = not args.local and await asyncio.to_thread(compose_available)
    endpoints = await asyncio.to_thread(compose_endpoints if use_compose else local_endpoints)
    # A run in another database is another platform: its own Redis keys too (a shared Redis is cleared
    # of this run's prefix only).
    prefix = "aqsha:run:" if args.database == "aqsha_run" else f"aqsha:{args.database}:"
    platform = Platform(
        endpoints, database=args.database, run_dir=args.run_dir.resolve(), redis_prefix=prefix
    )
    code = 0
    try:
        _say("aqsha: infrastructure")
        for what, kind in endpoints.kinds.items():
            _say(f"  {what:<9} {kind}")
        await platform.prepare()
        _say(f"  topics    {len(TOPICS)} topics and their dead-letter topics applied")
        _say(f"  database  {platform.database}: every service's migrations applied")
        await platform.start()
        for name, proc in platform.services.items():
            health = f"http://{LOOPBACK}:{proc.http_port}/health/ready"
            _say(f"  {name:<9} pid {proc.pid}, {health}, log {proc.log_path}")
        profile = platform.write_profile()
        where = (
            f"by default in {profile.parent.parent} and below; elsewhere"
            if profile.parent.name == RUN_DIR
            else "with"
        )
        _say(
            f"aqsha: the aqsha CLI reads {profile} ({where}: export "
            f"{PROFILE_ENV}={shlex.quote(str(profile))}); explicit AQSHA_* variables win over it. It holds:"
        )
        for name, value in platform.profile_env().items():  # passwords only in the file (owner-only)
            _say(f"  export {name}={shlex.quote(mask_secrets(name, value) or '')}")
        if not args.no_demo:
            from shared.ops.demo import run_demo

            code = await run_demo(platform, stop=stop)
        if not args.once and not stop.is_set():
            _say("aqsha: the platform is running; Ctrl-C stops it")
            await _wait_for_signal(stop, platform)
    except Exception as exc:
        _say(f"aqsha: {exc}")
        code = code or 1
    finally:
        remove_profile(platform.profile_path, pid=os.getpid())
        _say("aqsha: stopping (draining outboxes and consumer lag first)")
        codes = await platform.stop()
        await asyncio.to_thread(endpoints.stop)
        bad = {name: c for name, c in codes.items() if c not in (0, None, -signal.SIGTERM)}
        _say("aqsha: stopped" + (f" (unclean exits: {bad})" if bad else " cleanly"))
        if bad:
            code = code or 1
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """``make run``."""
    args = _parse(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
