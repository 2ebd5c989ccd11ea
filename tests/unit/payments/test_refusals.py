"""What the payments domain refuses, and what it says when it does (found by ``make mutation``).

Each refusal is checked with its exact message: operators and logs read them, and a refusal that
says the wrong thing (or names the wrong field) is a bug as much as a missing one.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, tzinfo

import pytest

from services.payments.domain import (
    Channel,
    Exhausted,
    Funding,
    IllegalTransition,
    Merchant,
    OtpChallenge,
    PurchaseRequest,
    RefundTooLarge,
    Verified,
    Wrong,
    hash_code,
    receipt_number,
    refund_status,
    requires_otp,
    transition,
)
from services.payments.domain.receipts import business_date
from services.payments.domain.status import PaymentStatus as S
from shared.money import Money

pytestmark = pytest.mark.unit

KEY = b"k" * 32
NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)


class NoOffset(tzinfo):
    """A zone that does not know its offset: attached, yet not an aware datetime."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        return None


UNKNOWN_OFFSET = datetime(2025, 3, 14, 12, 0, tzinfo=NoOffset())


# -- one-time codes ---------------------------------------------------------------------------------


def test_the_code_hash_is_stable_across_releases() -> None:
    # Hashes are stored while a code is pending: a release that hashed differently would fail every
    # code issued before it. HMAC-SHA256 under the key of "aqsha/payments/otp/v1\0<payment>\0<code>".
    assert (
        hash_code("123456", KEY, "pay-1")
        == "55eb2f29afd2ba1f4249f93f9f45d75468ce605741eaca6926b86ebb01d7383e"
    )


def test_an_empty_hashing_key_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^the OTP hashing key must not be empty$"):
        hash_code("123456", b"", "pay-1")


def test_the_threshold_is_the_one_given() -> None:
    request = PurchaseRequest("c1", Channel.APP, Money.of_tenge(1_000), Funding.GOLD, Merchant.KASPI_MAGAZIN)
    assert requires_otp(request, threshold=Money.of_tenge(999)) is True
    assert requires_otp(request, threshold=Money.of_tenge(1_000)) is False


def test_issue_keeps_the_number_of_attempts_given() -> None:
    assert OtpChallenge.issue("pay-1", "123456", KEY, NOW, attempts=5).attempts_left == 5


def test_the_last_attempt_can_still_verify() -> None:
    last = OtpChallenge.issue("pay-1", "123456", KEY, NOW, attempts=1)
    assert last.verify("123456", NOW, key=KEY) == Verified()
    assert last.verify("000000", NOW, key=KEY) == Exhausted()
    assert OtpChallenge.issue("pay-1", "123456", KEY, NOW, attempts=2).verify("0", NOW, key=KEY) == Wrong(1)


@pytest.mark.parametrize("moment", [NOW.replace(tzinfo=None), UNKNOWN_OFFSET])
def test_challenge_times_must_be_aware(moment: datetime) -> None:
    with pytest.raises(ValueError, match=r"^now must be timezone-aware$"):
        OtpChallenge.issue("pay-1", "123456", KEY, moment)
    with pytest.raises(ValueError, match=r"^now must be timezone-aware$"):
        OtpChallenge.issue("pay-1", "123456", KEY, NOW).verify("123456", moment, key=KEY)
    with pytest.raises(ValueError, match=r"^expires_at must be timezone-aware$"):
        OtpChallenge("pay-1", "hash", moment)


def test_negative_attempts_are_refused() -> None:
    with pytest.raises(ValueError, match=r"^attempts_left cannot be negative$"):
        OtpChallenge("pay-1", "hash", NOW, -1)
    assert OtpChallenge("pay-1", "hash", NOW, 0).attempts_left == 0


# -- receipts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("moment", [datetime(2025, 3, 14, 12, 0), UNKNOWN_OFFSET])
def test_a_receipt_time_must_be_aware(moment: datetime) -> None:
    with pytest.raises(ValueError, match=r"^a receipt time must be timezone-aware$"):
        business_date(moment)


@pytest.mark.parametrize("sequence", [True, False, 1.0, "1"])
def test_a_receipt_sequence_is_an_int_and_not_a_bool(sequence: object) -> None:
    with pytest.raises(TypeError, match=r"^sequence must be an int$"):
        receipt_number(sequence, date(2025, 3, 14))  # type: ignore[arg-type]


@pytest.mark.parametrize("sequence", [0, -1, 100_000_000])
def test_a_receipt_sequence_is_eight_digits(sequence: int) -> None:
    message = f"sequence must be 1..99999999, got {sequence}"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        receipt_number(sequence, date(2025, 3, 14))


# -- statuses and refunds ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "target", "message"),
    [
        (
            S.COMPLETED,
            S.CANCELLED,
            "payment cannot go COMPLETED → CANCELLED (cancel is allowed only before confirmation); "
            "allowed: PARTIALLY_REFUNDED, REFUNDED",
        ),
        (S.FAILED, S.COMPLETED, "payment cannot go FAILED → COMPLETED; allowed: none, it is final"),
        (
            S.PENDING_CONFIRMATION,
            S.REFUNDED,
            "payment cannot go PENDING_CONFIRMATION → REFUNDED; "
            "allowed: CANCELLED, COMPLETED, FAILED, PENDING_PROVIDER",
        ),
    ],
)
def test_an_illegal_transition_says_what_is_allowed(current: S, target: S, message: str) -> None:
    with pytest.raises(IllegalTransition) as raised:
        transition(current, target)
    assert str(raised.value) == message
    assert (raised.value.current, raised.value.target) == (current, target)


def test_refund_refusals_say_why() -> None:
    paid = Money.of_tenge(10_000)
    with pytest.raises(ValueError, match=r"^a refund must be positive$"):
        refund_status(S.COMPLETED, paid, Money.zero(), Money.zero())
    with pytest.raises(RefundTooLarge) as raised:
        refund_status(S.PARTIALLY_REFUNDED, paid, Money.of_tenge(4_000), Money(600_001))
    assert str(raised.value) == f"refunding {Money(1_000_001)} of a {paid} payment"
