"""payments and notify refuse to start with missing or development-only OTP keys outside development
mode; notify refuses ``OtpRequested`` v1 and sealed codes that do not open."""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from services.notify.app import create_app as create_notify_app
from services.notify.service import NotifyService
from services.notify.settings import NotifySettings
from services.payments.app import PaymentsRuntime
from services.payments.settings import DEV_ONLY_OTP_HASH_KEY, PaymentsSettings
from shared import otp_seal
from shared.clock import SystemClock
from shared.contracts.envelope import new_envelope
from shared.contracts.payments import OtpRequested, OtpRequestedV1
from shared.contracts.samples import SAMPLE_OTP_CODE, sample
from shared.kafka import Refused
from shared.otp_seal import DEV_ONLY_OTP_TRANSPORT_KEY, InsecureConfiguration, generate_key, parse_key

pytestmark = pytest.mark.unit

_VARS = ("AQSHA_DEV_MODE", "AQSHA_OTP_HASH_KEY", "AQSHA_OTP_TRANSPORT_KEY")
HASH_KEY = SecretStr(secrets.token_urlsafe(32))


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No OTP variables from the session's environment; warnings not yet given in this process."""
    for name in _VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(otp_seal, "_warned", set())
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in [h for h in root.handlers if h not in handlers]:  # create_app configures logging
        root.removeHandler(handler)
    root.setLevel(level)


# -------------------------------------------------------------------------------------- payments


def test_payments_refuses_the_built_in_hash_key() -> None:
    settings = PaymentsSettings(otp_transport_key=SecretStr(generate_key()))
    assert settings.otp_hash_key.get_secret_value() == DEV_ONLY_OTP_HASH_KEY
    with pytest.raises(
        InsecureConfiguration, match="AQSHA_OTP_HASH_KEY is the built-in development-only key"
    ):
        settings.otp_keys()
    with pytest.raises(InsecureConfiguration, match="AQSHA_OTP_HASH_KEY"):
        PaymentsRuntime(settings)  # at construction: before anything connects or consumes


def test_payments_refuses_a_short_hash_key() -> None:
    settings = PaymentsSettings(otp_hash_key=SecretStr("short"), otp_transport_key=SecretStr(generate_key()))
    with pytest.raises(InsecureConfiguration, match="AQSHA_OTP_HASH_KEY is shorter than 16 bytes"):
        settings.otp_keys()


def test_payments_refuses_to_start_without_a_transport_key() -> None:
    settings = PaymentsSettings(otp_hash_key=HASH_KEY)
    with pytest.raises(InsecureConfiguration, match="payments refuses to start: AQSHA_OTP_TRANSPORT_KEY"):
        PaymentsRuntime(settings)


def test_payments_reads_its_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    transport = generate_key()
    monkeypatch.setenv("AQSHA_OTP_HASH_KEY", HASH_KEY.get_secret_value())
    monkeypatch.setenv("AQSHA_OTP_TRANSPORT_KEY", transport)
    keys = PaymentsSettings().otp_keys()
    assert keys.hash_key == HASH_KEY.get_secret_value().encode()
    assert keys.transport_key == parse_key(transport)
    assert transport not in repr(keys)
    assert HASH_KEY.get_secret_value() not in repr(keys)


def test_payments_in_dev_mode_accepts_development_keys_with_warnings(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AQSHA_DEV_MODE", "1")
    settings = PaymentsSettings()
    assert settings.dev_mode is True
    with caplog.at_level(logging.WARNING):
        keys = settings.otp_keys()
    assert keys.hash_key == DEV_ONLY_OTP_HASH_KEY.encode()
    assert keys.transport_key == DEV_ONLY_OTP_TRANSPORT_KEY
    text = "\n".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "AQSHA_OTP_HASH_KEY" in text
    assert "AQSHA_OTP_TRANSPORT_KEY" in text
    assert "never in production" in text


# ---------------------------------------------------------------------------------------- notify


def test_notify_refuses_to_start_without_a_transport_key() -> None:
    with pytest.raises(InsecureConfiguration, match="notify refuses to start: AQSHA_OTP_TRANSPORT_KEY"):
        NotifySettings().otp_transport_secret()
    with pytest.raises(InsecureConfiguration, match="AQSHA_OTP_TRANSPORT_KEY"):
        create_notify_app(NotifySettings())  # what `faststream run` and the tests' apps call
    dev_key = SecretStr(base64.b64encode(DEV_ONLY_OTP_TRANSPORT_KEY).decode())
    with pytest.raises(InsecureConfiguration, match="development-only"):
        NotifySettings(otp_transport_key=dev_key).otp_transport_secret()


def test_notify_in_dev_mode_agrees_with_payments_on_the_development_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AQSHA_DEV_MODE", "true")
    assert NotifySettings().otp_transport_secret() == DEV_ONLY_OTP_TRANSPORT_KEY
    assert PaymentsSettings().otp_keys().transport_key == DEV_ONLY_OTP_TRANSPORT_KEY


def _notify(key: bytes | None) -> NotifyService:
    """A notify service with ``key``, or in development mode (the development-only key) for None."""
    if key is None:
        settings = NotifySettings(dev_mode=True)
    else:
        settings = NotifySettings(otp_transport_key=SecretStr(base64.b64encode(key).decode()))
    pool: Any = None  # the refusals below happen before any database work
    return NotifyService(pool, settings, {}, SystemClock())


def test_notify_refuses_otp_requested_v1_as_an_insecure_contract() -> None:
    service = _notify(secrets.token_bytes(32))
    v1 = new_envelope(sample(OtpRequestedV1), producer="payments", occurred_at=datetime.now(UTC))
    with pytest.raises(Refused) as info:
        asyncio.run(service.handle(v1))
    assert info.value.reason == "insecure_contract"
    assert sample(OtpRequestedV1).code not in str(info.value)


def test_notify_opens_the_code_only_in_memory_and_refuses_one_that_does_not_open() -> None:
    env = new_envelope(sample(OtpRequested), producer="payments", occurred_at=datetime.now(UTC))
    ctx = _notify(None)._context(env)  # the sample is sealed under the development-only key
    assert ctx["code"] == SAMPLE_OTP_CODE
    assert "sealed_code" not in ctx
    with pytest.raises(Refused) as info:
        _notify(secrets.token_bytes(32))._context(env)  # another key (or tampered, or moved)
    assert info.value.reason == "invalid_sealed_code"
