"""Configuration from the environment (``AQSHA_`` prefix) with pydantic-settings."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseSettings):
    """How to reach the broker. Env: ``AQSHA_KAFKA_*``."""

    model_config = SettingsConfigDict(env_prefix="AQSHA_KAFKA_", extra="ignore")

    bootstrap: str = Field("127.0.0.1:9092", description="Comma-separated bootstrap servers.")
    client_id: str = Field("aqsha", description="Kafka client id prefix.")
    topic_suffix: str = Field("", description="Appended to every topic name (test isolation).")
    # Against Apache Kafka turn these on; Tansu rejects the idempotent producer (docs/infrastructure.md).
    idempotent_producer: bool = Field(False, description="enable.idempotence for the producer.")
    acks: Literal["all", "1", "0"] = Field("all", description="Producer acks.")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = Field(None, description="CA bundle for TLS.")
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    replication_factor: int = Field(1, ge=1, description="Replication factor for topics we create.")
    min_insync_replicas: int = Field(
        1, ge=1, description="min.insync.replicas of topics we create (at most replication_factor)."
    )
    max_handler_attempts: int = Field(3, ge=1, description="Attempts before a message is dead-lettered.")
    dlq_publish_timeout_s: float = Field(10.0, gt=0, description="Bound on one dead-letter publish.")
    retry_backoff_ms: int = Field(50, ge=0, description="First retry delay; doubles per attempt.")
    transient_retry_s: float = Field(
        30.0,
        gt=0,
        description="How long a handler is retried while PostgreSQL/Redis are unreachable before the "
        "partition is rewound (such failures never dead-letter a message).",
    )
    # docs/performance.md: ``batch`` polls up to ``batch_max_records`` records at once and handles
    # different keys concurrently (same key strictly in order), with the same guarantees.
    consume_mode: Literal["per_message", "batch"] = Field(
        "batch",
        description="per_message: one record at a time; batch: polled batches, keys concurrent.",
    )
    batch_max_records: int = Field(500, ge=1, description="Batch mode: records per poll.")
    batch_timeout_ms: int = Field(10, ge=0, description="Batch mode: how long a poll waits for records.")
    batch_concurrency: int = Field(64, ge=1, description="Batch mode: keys handled concurrently.")


class DatabaseSettings(BaseSettings):
    """How to reach PostgreSQL. Env: ``AQSHA_PG_*``."""

    model_config = SettingsConfigDict(env_prefix="AQSHA_PG_", extra="ignore")

    dsn: str = Field("postgresql://postgres@127.0.0.1:5432/aqsha", description="asyncpg DSN.")
    min_size: int = 1
    max_size: int = 10


class RedisSettings(BaseSettings):
    """How to reach Redis. Env: ``AQSHA_REDIS_*``."""

    model_config = SettingsConfigDict(env_prefix="AQSHA_REDIS_", extra="ignore")

    url: str = Field("redis://127.0.0.1:6379/0", description="Redis URL.")
    prefix: str = Field("aqsha:", description="Prefix of every key (test isolation).")
    socket_timeout_s: float = Field(0.5, description="Fail fast: Redis is only the fast path.")


class TrustSettings(BaseSettings):
    """Who may write what (docs/security.md). Env: ``AQSHA_TRUST_*``.

    ``registry_file`` is the public trust registry (JSON: key id, principal, Ed25519 public key,
    expiry, revocation). A service signs what it emits with ``signing_key_file``, or with
    ``<keys_dir>/<principal>.pem`` (one directory may hold several principals' keys: development and
    tests; in production it holds only the service's own).
    """

    model_config = SettingsConfigDict(env_prefix="AQSHA_TRUST_", extra="ignore")

    registry_file: Path | None = Field(None, description="The trust registry (public keys and principals).")
    keys_dir: Path | None = Field(None, description="Directory of private keys, <principal>.pem.")
    signing_key_file: Path | None = Field(
        None, description="This process's private key (PEM, Ed25519); overrides keys_dir."
    )


class Settings(BaseSettings):
    """Everything a service needs. Env: ``AQSHA_*`` (nested groups have their own prefixes)."""

    model_config = SettingsConfigDict(env_prefix="AQSHA_", extra="ignore")

    service: str = Field("aqsha", description="Service name (logs, client ids, inbox group).")
    log_level: str = "INFO"
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    trust: TrustSettings = Field(default_factory=TrustSettings)
    dev_mode: bool = Field(
        False,
        description="Development mode: development-only defaults (e.g. the OTP keys) are accepted with a "
        "warning instead of refusing to start. Never in production.",
    )
    outbox_batch_size: int = Field(500, ge=1, description="Rows the relay publishes per batch.")
    outbox_poll_interval_s: float = Field(0.2, gt=0, description="Idle poll interval of the relay.")
    http_host: str = Field("127.0.0.1", description="Interface of the health and metrics endpoint.")
    http_port: int | None = Field(
        None, ge=0, le=65535, description="Port of /health/live, /health/ready and /metrics; unset = none."
    )
    clock_file: Path | None = Field(
        None,
        description="File holding a clock offset in seconds (simulated time for the demo and chaos runs); "
        "unset = the system clock.",
    )
