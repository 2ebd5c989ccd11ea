"""Private, restartable infrastructure for the chaos suite.

Everything here is started by the suite on free loopback ports and owned by it, so the faults can
stop and start it without touching anything else on the machine (never the shared PostgreSQL on
5432 or Redis on 6379):

* a moto S3 endpoint (``moto_server``) with a ``tansu`` bucket, and Tansu with ``s3://tansu/``
  storage on it, so a broker restart on the same port keeps every topic, record and committed
  offset (../shared/brief/infra.md);
* a private PostgreSQL cluster (``PostgresCluster``: ``stop(mode="immediate")`` is a crash), with
  ``synchronous_commit=on`` as in production: an acknowledged commit survives the crash. (Off, the
  first full run lost a Purchase: its transaction was acknowledged, the offset was committed, and
  the immediate stop undid the commit. No service can defend against a database that forgets.)
* a private ``redis-server`` (``RedisServer``: non-persistent, so a stop loses everything).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from shared.devinfra import LOOPBACK, PostgresCluster, RedisServer, TansuBroker, free_port, wait_port
from shared.ops.platform import ROOT, Endpoints

S3_BUCKET = "tansu"


@dataclass
class MotoS3:
    """``moto_server`` on loopback: a local S3 endpoint for Tansu's storage."""

    port: int = field(default_factory=free_port)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="aqsha-moto-")))
    popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """http://host:port."""
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> MotoS3:
        """Start the server and create the bucket (an S3 ``PUT /bucket``)."""
        # moto_server with prefix listings by index (tests/chaos/s3server.py explains why).
        cmd = [sys.executable, "-m", "tests.chaos.s3server", "-H", LOOPBACK, "-p", str(self.port)]
        with (self.workdir / "moto.log").open("ab") as out:
            self.popen = subprocess.Popen(
                cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_port(self.port)
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.put(f"{self.url}/{S3_BUCKET}", timeout=5.0)
                if answer.status_code in (200, 409):
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"moto S3 did not create bucket {S3_BUCKET!r}")
            time.sleep(0.2)

    def tansu_env(self) -> dict[str, str]:
        """The environment Tansu needs for ``s3://`` storage on this endpoint."""
        return {
            "AWS_ACCESS_KEY_ID": "chaos",
            "AWS_SECRET_ACCESS_KEY": "chaos",
            "AWS_DEFAULT_REGION": "eu-west-2",
            "AWS_ENDPOINT": self.url,
            "AWS_ALLOW_HTTP": "true",
        }

    def stop(self) -> None:
        """Stop the server."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


@dataclass
class ChaosInfra:
    """The suite's own broker (durable), PostgreSQL and Redis, each restartable in place."""

    s3: MotoS3
    broker: TansuBroker
    postgres: PostgresCluster
    redis: RedisServer

    @classmethod
    def start(cls) -> ChaosInfra:
        """Start all four; stop whatever started if one fails."""
        started: list[MotoS3 | TansuBroker | PostgresCluster | RedisServer] = []
        try:
            s3 = MotoS3().start()
            started.append(s3)
            broker = TansuBroker(storage=f"s3://{S3_BUCKET}/", env=s3.tansu_env()).start()
            started.append(broker)
            if not PostgresCluster.available():
                raise RuntimeError("the chaos suite needs initdb/pg_ctl for a private PostgreSQL")
            postgres = PostgresCluster(durable_commits=True).start()
            started.append(postgres)
            if shutil.which("redis-server") is None:
                raise RuntimeError("the chaos suite needs redis-server for a private Redis")
            redis = RedisServer().start()
            started.append(redis)
        except BaseException:
            for thing in reversed(started):
                with contextlib.suppress(Exception):
                    thing.stop()
            raise
        return cls(s3, broker, postgres, redis)

    def endpoints(self) -> Endpoints:
        """Endpoints for :class:`shared.ops.platform.Platform` (it does not own these)."""
        return Endpoints(
            kafka=self.broker.bootstrap,
            pg_admin_dsn=self.postgres.dsn,
            redis_url=self.redis.url,
            kinds={
                "kafka": f"Tansu {self.broker.bootstrap} (s3://{S3_BUCKET}/ on moto {self.s3.url})",
                "postgres": f"private initdb cluster on {self.postgres.port} (synchronous_commit=on)",
                "redis": f"private redis-server on {self.redis.port}",
            },
        )

    # -- faults ------------------------------------------------------------------------------------
    def restart_broker(self, *, down_s: float = 0.0) -> None:
        """Stop Tansu (SIGTERM) and start it again on the SAME port and storage."""
        self.broker.stop()
        time.sleep(down_s)
        self.broker.start()

    def restart_postgres(self, *, down_s: float = 0.0) -> None:
        """Crash PostgreSQL (``pg_ctl stop -m immediate``) and start it again on the same port."""
        self.postgres.stop(mode="immediate")
        time.sleep(down_s)
        self.postgres.start()

    def stop_redis(self) -> None:
        """Stop Redis (its data is gone: it keeps nothing on disk)."""
        self.redis.stop()

    def start_redis(self) -> None:
        """Start Redis again on the same port."""
        self.redis.start()

    def flushall_redis(self) -> None:
        """``FLUSHALL`` on the private Redis."""
        import redis as redis_sync

        client = redis_sync.Redis.from_url(self.redis.url, socket_timeout=5)
        try:
            client.flushall()
        finally:
            client.close()

    def stop(self) -> None:
        """Stop everything, newest first, and remove the working directories."""
        for thing in (self.redis, self.postgres, self.broker, self.s3):
            with contextlib.suppress(Exception):
                thing.stop()
            workdir = getattr(thing, "workdir", None)
            if (
                isinstance(workdir, Path)
                and workdir.name.startswith("aqsha-")
                and not os.environ.get("AQSHA_CHAOS_KEEP")
            ):
                shutil.rmtree(workdir, ignore_errors=True)
