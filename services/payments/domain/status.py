"""The payment status machine (domain §2 step 6 and its interpretation).

Every status the payments store writes goes through it (``services.payments.store``): a new payment
through ``start``, every change through ``transition``, so an illegal change raises and its
transaction rolls back instead of recording a status the machine forbids.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

from shared.money import Money


class PaymentStatus(StrEnum):
    """Where a payment stands; the value is the wire string."""

    PENDING_CONFIRMATION = "PENDING_CONFIRMATION"
    PENDING_PROVIDER = "PENDING_PROVIDER"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    REFUNDED = "REFUNDED"


S = PaymentStatus

# domain §2 interpretation: PENDING_CONFIRMATION → COMPLETED | FAILED, PENDING_PROVIDER for a
# provider delay. A confirmed payment may still meet a provider delay, hence
# PENDING_CONFIRMATION → PENDING_PROVIDER. Cancel is only possible before confirmation (§2 step 5:
# the customer "may cancel without penalty" before the debit). Refunds follow completion.
TRANSITIONS: Final[Mapping[PaymentStatus, frozenset[PaymentStatus]]] = {
    S.PENDING_CONFIRMATION: frozenset({S.PENDING_PROVIDER, S.COMPLETED, S.FAILED, S.CANCELLED}),
    S.PENDING_PROVIDER: frozenset({S.COMPLETED, S.FAILED}),
    S.COMPLETED: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED}),
    S.PARTIALLY_REFUNDED: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED}),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REFUNDED: frozenset(),
}

# Where a payment may start: awaiting a code, awaiting the provider (or the issuer, or a saga), or
# done at once (a top-up). A refused command is a PaymentRejected, never a payment, so none starts FAILED.
INITIAL: Final = frozenset({S.PENDING_CONFIRMATION, S.PENDING_PROVIDER, S.COMPLETED})


class IllegalTransition(ValueError):
    """A status change the machine does not allow."""

    def __init__(self, current: PaymentStatus, target: PaymentStatus) -> None:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none, it is final"
        hint = " (cancel is allowed only before confirmation)" if target == S.CANCELLED else ""
        super().__init__(f"payment cannot go {current} → {target}{hint}; allowed: {allowed}")
        self.current = current
        self.target = target


class IllegalStart(ValueError):
    """A payment written in a status no payment starts in."""

    def __init__(self, status: PaymentStatus) -> None:
        super().__init__(f"a payment cannot start {status}; it starts {', '.join(sorted(INITIAL))}")
        self.status = status


class RefundTooLarge(ValueError):
    """A refund would return more than was paid."""


def start(status: PaymentStatus) -> PaymentStatus:
    """Return ``status`` if a payment may start in it, else raise ``IllegalStart``."""
    if status not in INITIAL:
        raise IllegalStart(status)
    return status


def can_transition(current: PaymentStatus, target: PaymentStatus) -> bool:
    """True when ``current → target`` is allowed."""
    return target in TRANSITIONS[current]


def transition(current: PaymentStatus, target: PaymentStatus) -> PaymentStatus:
    """Return ``target`` if ``current → target`` is allowed, else raise ``IllegalTransition``."""
    if not can_transition(current, target):
        raise IllegalTransition(current, target)
    return target


def refund_status(
    current: PaymentStatus, paid: Money, refunded_before: Money, refund: Money
) -> PaymentStatus:
    """The status after refunding ``refund`` more of ``paid``; rejects over-refunds and bad states."""
    if refund.tiyn <= 0:
        raise ValueError("a refund must be positive")
    refunded = refunded_before + refund
    if refunded > paid:
        raise RefundTooLarge(f"refunding {refunded} of a {paid} payment")
    target = S.REFUNDED if refunded == paid else S.PARTIALLY_REFUNDED
    return transition(current, target)
