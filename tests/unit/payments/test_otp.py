"""One-time codes: threshold, keyed hashing, the challenge state and its outcomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.payments.domain import (
    AccountType,
    Channel,
    Exhausted,
    Expired,
    Funding,
    Merchant,
    OtpChallenge,
    PayRedBillRequest,
    PurchaseRequest,
    TopUpRequest,
    Verified,
    Wrong,
    generate_code,
    hash_code,
    needs_otp,
    requires_otp,
    verify_code,
)
from shared.money import Money

pytestmark = pytest.mark.unit

KEY = b"k" * 32
NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
M = Money.parse


def challenge(code: str = "123456") -> OtpChallenge:
    return OtpChallenge.issue("pay-1", code, KEY, NOW)


@pytest.mark.parametrize(
    ("amount", "needed"),
    [("0.01", False), ("4999.99", False), ("5000", False), ("5000.01", True), ("250000", True)],
)
def test_threshold_is_strictly_above_5000(amount: str, needed: bool) -> None:
    # domain §2 step 4: "If the amount exceeds 5,000 ₸".
    assert needs_otp(M(amount)) is needed


def test_threshold_is_configurable() -> None:
    assert needs_otp(M("1000.01"), threshold=M("1000"))
    assert not needs_otp(M("1000"), threshold=M("1000"))


def test_cash_operations_need_no_code() -> None:
    big = M("100000")
    assert not requires_otp(TopUpRequest("c1", Channel.ATM, big, AccountType.GOLD))
    assert not requires_otp(PayRedBillRequest("c1", Channel.ATM, big, Funding.CASH))
    assert requires_otp(PayRedBillRequest("c1", Channel.APP, big, Funding.GOLD))
    assert requires_otp(PurchaseRequest("c1", Channel.APP, big, Funding.RED, Merchant.KASPI_QR))
    assert not requires_otp(PurchaseRequest("c1", Channel.APP, M("5000"), Funding.GOLD, Merchant.KASPI_QR))


def test_generated_codes_are_six_digits() -> None:
    codes = {generate_code() for _ in range(500)}
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(codes) > 450  # random, not a counter or a constant


def test_hash_is_keyed_and_bound_to_the_payment() -> None:
    digest = hash_code("123456", KEY, "pay-1")
    assert len(digest) == 64
    assert "123456" not in digest
    assert digest == hash_code("123456", KEY, "pay-1")
    assert digest != hash_code("123456", KEY, "pay-2")
    assert digest != hash_code("123456", b"other-key", "pay-1")
    assert digest != hash_code("123457", KEY, "pay-1")
    assert verify_code("123456", KEY, "pay-1", digest)
    assert not verify_code("123456", KEY, "pay-2", digest)


def test_empty_key_is_refused() -> None:
    with pytest.raises(ValueError, match="key"):
        hash_code("123456", b"", "pay-1")


def test_state_never_holds_the_plain_code() -> None:
    state = challenge("987654")
    assert "987654" not in repr(state)
    assert state.expires_at == NOW + timedelta(minutes=5)
    assert state.attempts_left == 3


def test_correct_code() -> None:
    assert challenge().verify("123456", NOW, key=KEY) == Verified()


def test_wrong_three_times_exhausts() -> None:
    state = challenge()
    outcomes = []
    for _ in range(3):
        outcome = state.verify("000000", NOW, key=KEY)
        outcomes.append(outcome)
        state = state.after(outcome)
    assert outcomes == [Wrong(2), Wrong(1), Exhausted()]
    assert state.attempts_left == 0
    # Even the right code is too late now.
    assert state.verify("123456", NOW, key=KEY) == Exhausted()


def test_correct_after_one_wrong() -> None:
    state = challenge()
    first = state.verify("654321", NOW, key=KEY)
    assert first == Wrong(2)
    state = state.after(first)
    assert state.verify("123456", NOW + timedelta(minutes=1), key=KEY) == Verified()


def test_expiry_boundary() -> None:
    state = challenge()
    just_before = NOW + timedelta(minutes=5) - timedelta(microseconds=1)
    assert state.verify("123456", just_before, key=KEY) == Verified()
    assert state.verify("123456", NOW + timedelta(minutes=5), key=KEY) == Expired()
    assert state.verify("000000", NOW + timedelta(hours=1), key=KEY) == Expired()


def test_expiry_does_not_spend_an_attempt() -> None:
    state = challenge()
    assert state.after(Expired()) == state


def test_code_for_another_payment_is_wrong() -> None:
    other = OtpChallenge.issue("pay-2", "111111", KEY, NOW)
    assert challenge("111111").code_hash != other.code_hash


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        OtpChallenge.issue("pay-1", "123456", KEY, datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        challenge().verify("123456", datetime(2025, 1, 1), key=KEY)


@given(st.text(alphabet="0123456789", min_size=6, max_size=6))
def test_only_the_issued_code_verifies(guess: str) -> None:
    outcome = challenge("424242").verify(guess, NOW, key=KEY)
    assert outcome == (Verified() if guess == "424242" else Wrong(2))
