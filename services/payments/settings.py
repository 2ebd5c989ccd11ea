"""Settings of the payments service (``AQSHA_`` prefix, e.g. ``AQSHA_OTP_THRESHOLD_TIYN``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.settings import Settings

ProviderMode = Literal["success", "delay", "fail"]


class PaymentsSettings(Settings):
    """Everything the payments service needs on top of the shared settings."""

    model_config = SettingsConfigDict(env_prefix="AQSHA_", extra="ignore")

    service: str = Field("payments", description="Service name (logs, client ids).")
    consumer_group: str = Field("aqsha-payments", description="Kafka consumer group and inbox group.")
    # domain §2 step 4: amounts above 5,000 ₸ need a one-time code.
    otp_threshold_tiyn: int = Field(500_000, ge=0, description="Amounts above this need a code.")
    otp_ttl_s: float = Field(300.0, gt=0, description="Lifetime of a one-time code (5 minutes).")
    otp_attempts: int = Field(3, ge=1, description="Attempts per one-time code.")
    otp_hash_key: SecretStr = Field(
        SecretStr("dev-only-otp-key-change-me"), description="HMAC key for one-time code hashes."
    )
    saga_timeout_s: float = Field(60.0, gt=0, description="How long Red/bonus replies are awaited.")
    provider_mode: ProviderMode = Field("success", description="Default provider simulator behaviour.")
    provider_delay_s: float = Field(30.0, ge=0, description="Simulated provider delay (mode delay).")
    janitor_interval_s: float = Field(1.0, gt=0, description="How often the janitor looks for due work.")
    idempotency_ttl_s: int = Field(24 * 3600, ge=1, description="Redis TTL of stored outcomes.")
