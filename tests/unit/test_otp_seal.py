"""shared.otp_seal: one-time codes sealed for notify (ChaCha20-Poly1305), and the transport key's rules."""

from __future__ import annotations

import base64
import logging
from datetime import UTC, timedelta
from uuid import uuid4

import pytest
from pydantic import SecretStr

from shared import otp_seal
from shared.contracts.payments import OtpRequested
from shared.contracts.samples import SAMPLE_OTP_CODE, sample
from shared.otp_seal import (
    DEV_ONLY_OTP_TRANSPORT_KEY,
    InsecureConfiguration,
    SealError,
    associated_data,
    generate_key,
    open_code,
    open_sealed,
    parse_key,
    seal,
    seal_code,
    transport_key,
)

pytestmark = pytest.mark.unit

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def _fields(otp: OtpRequested) -> dict[str, object]:
    return {
        "payment_id": otp.payment_id,
        "customer_id": otp.customer_id,
        "phone": otp.phone,
        "expires_at": otp.expires_at,
        "amount": otp.amount,
    }


def _flip(sealed: str, index: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4)))
    raw[index] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def test_round_trip_and_the_wire_form() -> None:
    aad = b"bound to this"
    sealed = seal("482915", KEY, aad)
    assert open_sealed(sealed, KEY, aad) == "482915"
    assert "482915" not in sealed
    assert "=" not in sealed
    assert set(sealed) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert len(base64.urlsafe_b64decode(sealed + "==")) == 12 + 6 + 16  # nonce || ciphertext || tag
    assert seal("482915", KEY, aad) != sealed  # a fresh random nonce every time


def test_tampered_ciphertext_nonce_or_tag_does_not_open() -> None:
    sealed = seal("482915", KEY, b"ad")
    for index in (0, 11, 12, 17, 18, 33):  # nonce, ciphertext, tag
        with pytest.raises(SealError):
            open_sealed(_flip(sealed, index), KEY, b"ad")
    for broken in (sealed[:-2], sealed[:20], "", "!!!!" * 12):
        with pytest.raises(SealError):
            open_sealed(broken, KEY, b"ad")


def test_wrong_associated_data_or_key_does_not_open() -> None:
    otp = sample(OtpRequested)
    fields = _fields(otp)
    sealed = seal_code("482915", KEY, **fields)  # type: ignore[arg-type]
    assert open_code(otp.model_copy(update={"sealed_code": sealed}), KEY) == "482915"
    with pytest.raises(SealError):
        open_code(otp.model_copy(update={"sealed_code": sealed}), OTHER_KEY)
    # Moved into another message, or any bound field changed: it does not open.
    for change in (
        {"payment_id": uuid4()},
        {"customer_id": uuid4()},
        {"phone": "+77019999999"},
        {"expires_at": otp.expires_at + timedelta(seconds=1)},
        {"amount": otp.amount + 1},
    ):
        moved = otp.model_copy(update={**change, "sealed_code": sealed})
        with pytest.raises(SealError):
            open_code(moved, KEY)
    with pytest.raises(ValueError, match="32 bytes"):
        open_sealed(sealed, KEY[:16], b"")


def test_the_same_instant_in_another_offset_binds_the_same() -> None:
    otp = sample(OtpRequested)
    utc = otp.expires_at.astimezone(UTC)
    assert associated_data(**{**_fields(otp), "expires_at": utc}) == associated_data(**_fields(otp))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timezone-aware"):
        associated_data(**{**_fields(otp), "expires_at": utc.replace(tzinfo=None)})  # type: ignore[arg-type]


def test_the_sample_opens_under_the_development_key_after_a_json_round_trip() -> None:
    otp = OtpRequested.model_validate_json(sample(OtpRequested).model_dump_json())
    assert open_code(otp, DEV_ONLY_OTP_TRANSPORT_KEY) == SAMPLE_OTP_CODE


def test_keys_parse_from_standard_or_url_safe_base64_of_32_bytes() -> None:
    raw = bytes(range(200, 232))
    for text in (
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        f"  {base64.b64encode(raw).decode()}\n",
    ):
        assert parse_key(text) == raw
    assert len(parse_key(generate_key())) == 32
    assert generate_key() != generate_key()
    with pytest.raises(ValueError, match="32 bytes"):
        parse_key(base64.b64encode(b"short").decode())
    with pytest.raises(ValueError, match="base64"):
        parse_key("not base64 at all!")


def test_transport_key_refuses_missing_malformed_or_development_keys_outside_dev_mode() -> None:
    good = generate_key()
    assert transport_key(SecretStr(good), dev_mode=False, service="payments") == parse_key(good)
    for missing in (None, SecretStr(""), SecretStr("  ")):
        with pytest.raises(InsecureConfiguration, match="AQSHA_OTP_TRANSPORT_KEY is not set") as info:
            transport_key(missing, dev_mode=False, service="payments")
        assert "payments refuses to start" in str(info.value)
        assert "AQSHA_DEV_MODE" in str(info.value)
    dev = SecretStr(base64.b64encode(DEV_ONLY_OTP_TRANSPORT_KEY).decode())
    with pytest.raises(InsecureConfiguration, match="development-only"):
        transport_key(dev, dev_mode=False, service="notify")
    for dev_mode in (False, True):  # a malformed key is an error even in development mode
        with pytest.raises(InsecureConfiguration, match="AQSHA_OTP_TRANSPORT_KEY must be base64 of 32"):
            transport_key(
                SecretStr(base64.b64encode(b"x" * 16).decode()), dev_mode=dev_mode, service="notify"
            )


def test_dev_mode_uses_the_development_key_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(otp_seal, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="aqsha.secrets"):
        assert transport_key(None, dev_mode=True, service="payments") == DEV_ONLY_OTP_TRANSPORT_KEY
        assert transport_key(None, dev_mode=True, service="payments") == DEV_ONLY_OTP_TRANSPORT_KEY
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "DEVELOPMENT MODE" in warnings[0].getMessage()
    assert "AQSHA_OTP_TRANSPORT_KEY" in warnings[0].getMessage()
    # Deterministic: payments and notify in development mode agree without configuration.
    assert transport_key(None, dev_mode=True, service="notify") == DEV_ONLY_OTP_TRANSPORT_KEY
    assert len(DEV_ONLY_OTP_TRANSPORT_KEY) == 32
