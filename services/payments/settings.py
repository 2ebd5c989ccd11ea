"""Settings of the payments service (``AQSHA_`` prefix, e.g. ``AQSHA_OTP_THRESHOLD_TIYN``)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.otp_seal import refuse_unless_dev, transport_key
from shared.settings import Settings

ProviderMode = Literal["success", "delay", "fail"]
OTP_HASH_KEY_ENV: Final = "AQSHA_OTP_HASH_KEY"
#: The built-in ``otp_hash_key``: public, so only ever accepted in development mode.
DEV_ONLY_OTP_HASH_KEY: Final = "dev-only-otp-key-change-me"
MIN_OTP_HASH_KEY_BYTES: Final = 16


@dataclass(frozen=True, slots=True)
class OtpKeys:
    """payments' one-time-code keys, checked (``PaymentsSettings.otp_keys``); never in a repr."""

    #: HMAC key of the stored code hashes (``otp_challenges.code_hash``).
    hash_key: bytes = field(repr=False)
    #: ChaCha20-Poly1305 key sealing codes for notify (``OtpRequested.sealed_code``).
    transport_key: bytes = field(repr=False)


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
        SecretStr(DEV_ONLY_OTP_HASH_KEY),
        description="HMAC key of the stored one-time-code hashes (AQSHA_OTP_HASH_KEY, at least 16 bytes). "
        "The built-in default is for development only: refused unless AQSHA_DEV_MODE.",
    )
    otp_transport_key: SecretStr | None = Field(
        None,
        description="Key that seals one-time codes for notify (AQSHA_OTP_TRANSPORT_KEY, base64 of 32 bytes, "
        "the same in notify; shared.otp_seal). Required unless AQSHA_DEV_MODE.",
    )
    saga_timeout_s: float = Field(60.0, gt=0, description="How long Red/bonus replies are awaited.")
    provider_mode: ProviderMode = Field("success", description="Default provider simulator behaviour.")
    provider_delay_s: float = Field(30.0, ge=0, description="Simulated provider delay (mode delay).")
    janitor_interval_s: float = Field(1.0, gt=0, description="How often the janitor looks for due work.")
    # seed 003: an EXTERNAL_CARD payment is decided by the card's issuer (services/payments/cards.py).
    issuer_cards_file: Path | None = Field(
        None, description="Test cards of the issuer simulator (default services/payments/issuer_cards.toml)."
    )
    issuer_retry_s: float = Field(
        2.0, gt=0, description="Wait before asking a card's issuer again about a charge with no answer."
    )
    issuer_sms_webhook_url: str | None = Field(
        None,
        description="SMS gateway webhook of the issuer simulator's 3-D Secure codes (make run: the "
        "platform's simulated gateway); unset: kept in memory (tests).",
    )
    idempotency_ttl_s: int = Field(24 * 3600, ge=1, description="Redis TTL of stored outcomes.")

    def otp_keys(self) -> OtpKeys:
        """The one-time-code keys, checked: payments refuses to start (``InsecureConfiguration``, naming
        the variable) with the built-in or a short ``AQSHA_OTP_HASH_KEY``, or without a valid
        ``AQSHA_OTP_TRANSPORT_KEY``, unless ``dev_mode`` (then development-only keys and a WARNING)."""
        hash_key = self.otp_hash_key.get_secret_value().encode()
        if hmac.compare_digest(hash_key, DEV_ONLY_OTP_HASH_KEY.encode()):
            refuse_unless_dev(
                self.service, OTP_HASH_KEY_ENV, "is the built-in development-only key", dev_mode=self.dev_mode
            )
        elif len(hash_key) < MIN_OTP_HASH_KEY_BYTES:
            refuse_unless_dev(
                self.service,
                OTP_HASH_KEY_ENV,
                f"is shorter than {MIN_OTP_HASH_KEY_BYTES} bytes",
                dev_mode=self.dev_mode,
            )
        transport = transport_key(self.otp_transport_key, dev_mode=self.dev_mode, service=self.service)
        return OtpKeys(hash_key=hash_key, transport_key=transport)
