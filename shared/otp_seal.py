"""One-time codes sealed for their trip from payments to notify (``OtpRequested`` v2), and their keys.

payments seals the code it generated; only notify, holding the same transport key, opens it to
send the SMS. So the code is never on Kafka in clear: not on ``aqsha.payments.otp``, not in its
dead letters, not in ``aqsha tail``.

AEAD: **ChaCha20-Poly1305** (RFC 8439) from ``cryptography``. Chosen over AES-GCM because it is
constant-time in software on every CPU (AES-GCM is only safe and fast with AES-NI/PMULL, which not
every node type guarantees), with the same 256-bit key, 96-bit nonce and 128-bit tag. Nonces are
random (``os.urandom``): the 2^32-messages-per-key bound for random 96-bit nonces is centuries of
one-time codes.

Wire form of ``sealed_code``: unpadded base64url of ``nonce (12 bytes) || ciphertext || tag``. The
associated data binds it to the message's payment id, customer id, phone, expiry and amount, so a
sealed code cannot be moved into another message (nor those fields changed) without failing to open.

The key, ``AQSHA_OTP_TRANSPORT_KEY``: base64 (standard or url-safe) of 32 random bytes, the same for
payments and notify; make one with ``python -m shared.otp_seal``. A service refuses to start without
it unless ``AQSHA_DEV_MODE`` is on; then it uses ``DEV_ONLY_OTP_TRANSPORT_KEY``, derived from a
public string so every development process agrees, and logs a WARNING.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from pydantic import SecretStr

if TYPE_CHECKING:
    from shared.contracts.payments import OtpRequested

log = logging.getLogger("aqsha.secrets")

KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
TRANSPORT_KEY_ENV: Final = "AQSHA_OTP_TRANSPORT_KEY"
DEV_MODE_ENV: Final = "AQSHA_DEV_MODE"
#: The development-only transport key (AQSHA_DEV_MODE): derived from a public string, so it is
#: NOT a secret; every service in development mode agrees on it. Refused outside development mode.
DEV_ONLY_OTP_TRANSPORT_KEY: Final = hashlib.sha256(
    b"aqsha DEV-ONLY one-time-code transport key: public, never for production"
).digest()
_AD_TAG: Final = b"aqsha/OtpRequested/v2/sealed_code"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class SealError(ValueError):
    """A sealed code that does not open: tampered, moved to another message, or sealed under another key."""


class InsecureConfiguration(RuntimeError):
    """A service was configured with a missing, malformed or built-in development secret."""


# ---------------------------------------------------------------------------------------- sealing


def associated_data(
    *, payment_id: UUID, customer_id: UUID, phone: str, expires_at: datetime, amount: int
) -> bytes:
    """What a sealed code is bound to: the clear fields of its ``OtpRequested``, canonically encoded.

    The expiry is taken as integer microseconds since the epoch, so the same instant written with
    another UTC offset (a JSON round trip) binds the same. NUL separators: no field contains one.
    """
    if expires_at.tzinfo is None or expires_at.utcoffset() is None:
        raise ValueError("expires_at must be timezone-aware")
    micros = (expires_at - _EPOCH) // timedelta(microseconds=1)
    fields = (str(payment_id), str(customer_id), phone, str(micros), str(amount))
    return b"\x00".join((_AD_TAG, *(f.encode() for f in fields)))


def _aead(key: bytes) -> ChaCha20Poly1305:
    if len(key) != KEY_BYTES:
        raise ValueError(f"the OTP transport key must be {KEY_BYTES} bytes, got {len(key)}")
    return ChaCha20Poly1305(key)


def seal(code: str, key: bytes, aad: bytes) -> str:
    """``code`` encrypted and authenticated under ``key`` and bound to ``aad``: base64url text."""
    nonce = os.urandom(NONCE_BYTES)
    sealed = nonce + _aead(key).encrypt(nonce, code.encode(), aad)
    return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")


def open_sealed(sealed: str, key: bytes, aad: bytes) -> str:
    """The code inside ``sealed``; ``SealError`` unless it was sealed under ``key`` with this ``aad``."""
    aead = _aead(key)
    try:
        raw = base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
    except (binascii.Error, ValueError):
        raise SealError("sealed code is not base64url") from None
    if len(raw) < NONCE_BYTES + TAG_BYTES + 1:
        raise SealError("sealed code is too short")
    try:
        plain = aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad)
    except InvalidTag:
        raise SealError(
            "sealed code does not open: wrong key, tampered, or bound to another message"
        ) from None
    return plain.decode("ascii", errors="replace")


def seal_code(
    code: str,
    key: bytes,
    *,
    payment_id: UUID,
    customer_id: UUID,
    phone: str,
    expires_at: datetime,
    amount: int,
) -> str:
    """The ``sealed_code`` of an ``OtpRequested`` with these fields (what payments emits)."""
    aad = associated_data(
        payment_id=payment_id, customer_id=customer_id, phone=phone, expires_at=expires_at, amount=amount
    )
    return seal(code, key, aad)


def open_code(event: OtpRequested, key: bytes) -> str:
    """The clear code of an ``OtpRequested`` v2 (what notify sends); ``SealError`` if it does not open."""
    aad = associated_data(
        payment_id=event.payment_id,
        customer_id=event.customer_id,
        phone=event.phone,
        expires_at=event.expires_at,
        amount=event.amount,
    )
    return open_sealed(event.sealed_code, key, aad)


# ------------------------------------------------------------------------------------------ keys


def generate_key() -> str:
    """A fresh transport key as ``AQSHA_OTP_TRANSPORT_KEY`` takes it (standard base64 of 32 bytes)."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def parse_key(text: str) -> bytes:
    """A transport key from base64 (standard or url-safe, padding optional); ValueError unless 32 bytes."""
    compact = "".join(text.split()).replace("-", "+").replace("_", "/")
    try:
        key = base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("is not base64") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"must be base64 of {KEY_BYTES} bytes, got {len(key)}")
    return key


_warned: set[tuple[str, str]] = set()


def refuse_unless_dev(service: str, env_var: str, problem: str, *, dev_mode: bool) -> None:
    """Raise ``InsecureConfiguration`` naming ``env_var``; in development mode, warn (once) instead."""
    if not dev_mode:
        raise InsecureConfiguration(
            f"{service} refuses to start: {env_var} {problem}. Set it from the secret store "
            f"(docs/security.md); only for development, {DEV_MODE_ENV}=1 accepts development-only keys."
        )
    if (service, env_var) not in _warned:
        _warned.add((service, env_var))
        log.warning(
            "DEVELOPMENT MODE: %s %s; using a development-only key (never in production)",
            env_var,
            problem,
            extra={"service": service, "setting": env_var},
        )


def transport_key(value: SecretStr | None, *, dev_mode: bool, service: str) -> bytes:
    """The checked ``AQSHA_OTP_TRANSPORT_KEY`` of a service.

    Unset, or the development-only key: ``InsecureConfiguration`` unless ``dev_mode`` (then
    ``DEV_ONLY_OTP_TRANSPORT_KEY`` and a WARNING). Malformed: ``InsecureConfiguration`` always.
    """
    text = value.get_secret_value() if value is not None else ""
    if not text.strip():
        refuse_unless_dev(service, TRANSPORT_KEY_ENV, "is not set", dev_mode=dev_mode)
        return DEV_ONLY_OTP_TRANSPORT_KEY
    try:
        key = parse_key(text)
    except ValueError as exc:
        raise InsecureConfiguration(f"{service} refuses to start: {TRANSPORT_KEY_ENV} {exc}") from None
    if hmac.compare_digest(key, DEV_ONLY_OTP_TRANSPORT_KEY):
        refuse_unless_dev(service, TRANSPORT_KEY_ENV, "is the public development-only key", dev_mode=dev_mode)
    return key


if __name__ == "__main__":  # python -m shared.otp_seal: print a fresh AQSHA_OTP_TRANSPORT_KEY
    print(generate_key())
