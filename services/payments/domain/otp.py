"""One-time confirmation codes (domain §2 step 4, §6).

domain §2: amounts above 5,000 ₸ need an SMS code; interpretation: it expires after 5 minutes and
allows 3 attempts. The code is kept only as an HMAC-SHA256 keyed hash bound to the payment id, so
neither a database dump nor a log line reveals it, and a hash cannot be replayed on another payment.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final

from services.payments.domain.requests import (
    Funding,
    PaymentRequest,
    PayRedBillRequest,
    TopUpRequest,
)
from shared.money import Money

# domain §2 step 4: "If the amount exceeds 5,000 ₸" — strictly greater, so 5,000.00 needs none.
DEFAULT_OTP_THRESHOLD: Final = Money.of_tenge(5_000)
OTP_TTL: Final = timedelta(minutes=5)
OTP_ATTEMPTS: Final = 3
CODE_DIGITS: Final = 6
_DOMAIN_TAG: Final = b"aqsha/payments/otp/v1"


def needs_otp(amount: Money, threshold: Money = DEFAULT_OTP_THRESHOLD) -> bool:
    """True when ``amount`` exceeds the threshold and so needs a one-time code."""
    return amount > threshold


def requires_otp(request: PaymentRequest, threshold: Money = DEFAULT_OTP_THRESHOLD) -> bool:
    """Whether a request needs a code: app-side debits above the threshold do, cash never does.

    Interpretation: cash inserted at a terminal or ATM (top-ups, cash Red bill payments) debits
    no account, so there is nothing to confirm by SMS.
    """
    if isinstance(request, TopUpRequest):
        return False
    if isinstance(request, PayRedBillRequest) and request.funding == Funding.CASH:
        return False
    return needs_otp(request.amount, threshold)


def generate_code() -> str:
    """A uniformly random 6-digit code from the OS CSPRNG."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def hash_code(code: str, key: bytes, payment_id: str) -> str:
    """HMAC-SHA256 of the code under ``key``, bound to ``payment_id``; hex digest."""
    if not key:
        raise ValueError("the OTP hashing key must not be empty")
    # NUL separators: neither a payment id nor a code contains one, so fields cannot run together.
    message = b"\x00".join((_DOMAIN_TAG, payment_id.encode(), code.encode()))
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def verify_code(code: str, key: bytes, payment_id: str, expected_hash: str) -> bool:
    """Constant-time check of ``code`` against a stored hash."""
    return hmac.compare_digest(hash_code(code, key, payment_id), expected_hash)


@dataclass(frozen=True, slots=True)
class Verified:
    """The code was right and in time."""


@dataclass(frozen=True, slots=True)
class Wrong:
    """The code was wrong; ``attempts_left`` more tries remain (always at least one)."""

    attempts_left: int


@dataclass(frozen=True, slots=True)
class Expired:
    """The challenge expired; the payment fails with CODE_EXPIRED."""


@dataclass(frozen=True, slots=True)
class Exhausted:
    """No attempts left; the payment fails with TOO_MANY_ATTEMPTS."""


OtpOutcome = Verified | Wrong | Expired | Exhausted


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return moment


@dataclass(frozen=True, slots=True)
class OtpChallenge:
    """The stored state of one code: its keyed hash, expiry and remaining attempts."""

    payment_id: str
    code_hash: str
    expires_at: datetime
    attempts_left: int = OTP_ATTEMPTS

    def __post_init__(self) -> None:
        _aware(self.expires_at, "expires_at")
        if self.attempts_left < 0:
            raise ValueError("attempts_left cannot be negative")

    @classmethod
    def issue(
        cls,
        payment_id: str,
        code: str,
        key: bytes,
        now: datetime,
        ttl: timedelta = OTP_TTL,
        attempts: int = OTP_ATTEMPTS,
    ) -> OtpChallenge:
        """A fresh challenge for ``code``; the plain code is hashed and not kept."""
        expires_at = _aware(now, "now") + ttl
        return cls(payment_id, hash_code(code, key, payment_id), expires_at, attempts)

    def verify(self, code: str, now: datetime, *, key: bytes) -> OtpOutcome:
        """Judge one attempt at ``now``; pass the outcome to ``after`` to get the next state.

        The key is an argument, not state: the challenge is persisted and must not carry it.
        Order: an exhausted challenge stays exhausted; at or after ``expires_at`` it is expired
        (valid while ``now < expires_at``); then the code is compared. The third wrong code
        answers ``Exhausted`` directly, so the caller fails the payment on that attempt.
        """
        if self.attempts_left <= 0:
            return Exhausted()
        if _aware(now, "now") >= self.expires_at:
            return Expired()
        if verify_code(code, key, self.payment_id, self.code_hash):
            return Verified()
        left = self.attempts_left - 1
        return Wrong(left) if left > 0 else Exhausted()

    def after(self, outcome: OtpOutcome) -> OtpChallenge:
        """The state after ``outcome``: a wrong code spends an attempt, an exhausted one all."""
        if isinstance(outcome, Wrong):
            return replace(self, attempts_left=outcome.attempts_left)
        if isinstance(outcome, Exhausted):
            return replace(self, attempts_left=0)
        return self
