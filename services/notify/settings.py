"""notify's settings (``AQSHA_`` prefix): channel endpoints, retries and per-event channel routing."""

from __future__ import annotations

from typing import Final

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.otp_seal import transport_key
from shared.settings import Settings

INBOX: Final = "inbox"
PUSH: Final = "push"
SMS: Final = "sms"
EMAIL: Final = "email"
CHANNEL_NAMES: Final = (INBOX, PUSH, SMS, EMAIL)

_RECEIPT_EVENTS = ("BillIssued", "PaymentCompleted", "RepaymentApplied")
_OTHER_EVENTS = (
    "PaymentFailed",
    "TopUpCompleted",
    "TransferCompleted",
    # The recipient's message about a TransferCompleted (services/notify/service.py).
    "TransferReceived",
    "BillOverdueRecorded",
    "PenaltyApplied",
    "LimitRestored",
    "OverpaymentRefunded",
    "BonusAccrued",
    "BonusReversed",
)


def default_routes() -> dict[str, list[str]]:
    """OTP by SMS only; bills and receipts in-app, push and e-mail (if known); the rest in-app and push."""
    routes: dict[str, list[str]] = {"OtpRequested": [SMS]}
    routes.update({event: [INBOX, PUSH, EMAIL] for event in _RECEIPT_EVENTS})
    routes.update({event: [INBOX, PUSH] for event in _OTHER_EVENTS})
    return routes


class NotifySettings(Settings):
    """Everything notify needs. Env: ``AQSHA_*`` (``AQSHA_PUSH_WEBHOOK_URL``, ``AQSHA_ROUTES`` as JSON...)."""

    model_config = SettingsConfigDict(env_prefix="AQSHA_", extra="ignore")

    service: str = "notify"
    group: str = Field("aqsha-notify", description="Kafka consumer group and inbox group.")
    push_webhook_url: str = Field("http://127.0.0.1:8081/push", description="Push gateway webhook.")
    sms_webhook_url: str = Field("http://127.0.0.1:8082/sms", description="SMS gateway webhook.")
    webhook_timeout_s: float = Field(5.0, gt=0, description="Timeout of one webhook call.")
    smtp_host: str = Field("127.0.0.1", description="SMTP relay host.")
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_from: str = Field("noreply@aqsha.kz", description="From address of e-mails.")
    smtp_timeout_s: float = Field(10.0, gt=0)
    delivery_max_attempts: int = Field(
        4, ge=1, description="Attempts per (event, channel) before dead letter."
    )
    delivery_backoff_ms: int = Field(200, ge=0, description="First retry delay; doubles per attempt.")
    resume_interval_s: float = Field(5.0, gt=0, description="How often PENDING deliveries are resumed.")
    receipt_url_base: str = Field("aqsha://receipts/", description="Link prefix of an e-receipt.")
    routes: dict[str, list[str]] = Field(
        default_factory=default_routes,
        description='Channels per event type, e.g. {"BillIssued": ["inbox", "push", "email"]}. '
        "OtpRequested is always SMS only, whatever is configured.",
    )
    otp_transport_key: SecretStr | None = Field(
        None,
        description="Key that opens the one-time codes payments seals (AQSHA_OTP_TRANSPORT_KEY, base64 of 32 "
        "bytes, the same as payments'; shared.otp_seal). Required unless AQSHA_DEV_MODE.",
    )

    def otp_transport_secret(self) -> bytes:
        """The checked transport key: notify refuses to start (``InsecureConfiguration``, naming
        ``AQSHA_OTP_TRANSPORT_KEY``) without a valid one unless ``dev_mode`` (then the
        development-only key and a WARNING)."""
        return transport_key(self.otp_transport_key, dev_mode=self.dev_mode, service=self.service)

    def channels_for(self, event_type: str) -> list[str]:
        """The configured channels of an event type (OTP: SMS only, always)."""
        if event_type == "OtpRequested":
            return [SMS]
        return [c for c in self.routes.get(event_type, [INBOX, PUSH]) if c in CHANNEL_NAMES]
