"""The payment status machine."""

from __future__ import annotations

import itertools

import pytest

from services.payments.domain import (
    IllegalStart,
    IllegalTransition,
    PaymentStatus,
    RefundTooLarge,
    can_transition,
    refund_status,
    start,
    transition,
)
from shared.money import Money

pytestmark = pytest.mark.unit

S = PaymentStatus
LEGAL = {
    (S.PENDING_CONFIRMATION, S.COMPLETED),
    (S.PENDING_CONFIRMATION, S.FAILED),
    (S.PENDING_CONFIRMATION, S.CANCELLED),
    (S.PENDING_CONFIRMATION, S.PENDING_PROVIDER),
    (S.PENDING_PROVIDER, S.COMPLETED),
    (S.PENDING_PROVIDER, S.FAILED),
    (S.COMPLETED, S.PARTIALLY_REFUNDED),
    (S.COMPLETED, S.REFUNDED),
    (S.PARTIALLY_REFUNDED, S.PARTIALLY_REFUNDED),
    (S.PARTIALLY_REFUNDED, S.REFUNDED),
}
ALL_PAIRS = list(itertools.product(S, S))


@pytest.mark.parametrize(("current", "target"), sorted(LEGAL))
def test_legal_transitions(current: PaymentStatus, target: PaymentStatus) -> None:
    assert transition(current, target) is target


@pytest.mark.parametrize(("current", "target"), [p for p in ALL_PAIRS if p not in LEGAL])
def test_illegal_transitions_are_rejected(current: PaymentStatus, target: PaymentStatus) -> None:
    assert not can_transition(current, target)
    with pytest.raises(IllegalTransition, match=f"{current} → {target}"):
        transition(current, target)


@pytest.mark.parametrize("current", [S.PENDING_PROVIDER, S.COMPLETED, S.FAILED])
def test_cancel_only_before_confirmation(current: PaymentStatus) -> None:
    with pytest.raises(IllegalTransition, match="only before confirmation"):
        transition(current, S.CANCELLED)


@pytest.mark.parametrize("status", [S.PENDING_CONFIRMATION, S.PENDING_PROVIDER, S.COMPLETED])
def test_where_a_payment_starts(status: PaymentStatus) -> None:
    assert start(status) is status


@pytest.mark.parametrize("status", [S.FAILED, S.CANCELLED, S.PARTIALLY_REFUNDED, S.REFUNDED])
def test_no_payment_starts_failed_cancelled_or_refunded(status: PaymentStatus) -> None:
    message = f"a payment cannot start {status}; it starts COMPLETED, PENDING_CONFIRMATION, PENDING_PROVIDER"
    with pytest.raises(IllegalStart, match=f"^{message}$"):
        start(status)


@pytest.mark.parametrize("final", [S.FAILED, S.CANCELLED, S.REFUNDED])
def test_final_statuses_go_nowhere(final: PaymentStatus) -> None:
    assert not any(can_transition(final, target) for target in S)


def test_refunds() -> None:
    paid = Money.of_tenge(10_000)
    assert refund_status(S.COMPLETED, paid, Money.zero(), Money.of_tenge(4_000)) is S.PARTIALLY_REFUNDED
    assert (
        refund_status(S.PARTIALLY_REFUNDED, paid, Money.of_tenge(4_000), Money.of_tenge(6_000)) is S.REFUNDED
    )
    assert refund_status(S.COMPLETED, paid, Money.zero(), paid) is S.REFUNDED
    with pytest.raises(RefundTooLarge):
        refund_status(S.PARTIALLY_REFUNDED, paid, Money.of_tenge(4_000), Money(600_001))
    with pytest.raises(IllegalTransition):
        refund_status(S.FAILED, paid, Money.zero(), Money(1))
    with pytest.raises(ValueError, match="positive"):
        refund_status(S.COMPLETED, paid, Money.zero(), Money.zero())
