"""Redemption: paying part of a Kaspi Magazin purchase with bonuses (brief §3, seed 004)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Final

from shared.money import Money

from .facts import Merchant, PaymentKind

# "Customers can spend bonuses on up to 60 % of a purchase in Kaspi Magazin" (brief §3, seed 004).
REDEMPTION_CAP_PERCENT: Final = Decimal(60)


class DeclineReason(StrEnum):
    """Why a redemption was declined; the codes travel in ``BonusRedemptionDeclined``."""

    BONUS_CATEGORY_NOT_ELIGIBLE = "BONUS_CATEGORY_NOT_ELIGIBLE"
    BONUS_NOT_ALLOWED_FOR_RED = "BONUS_NOT_ALLOWED_FOR_RED"
    BONUS_BALANCE_INSUFFICIENT = "BONUS_BALANCE_INSUFFICIENT"
    BONUS_CAP_EXCEEDED = "BONUS_CAP_EXCEEDED"


@dataclass(frozen=True, slots=True)
class RedemptionRequest:
    """A customer's request to pay ``bonus_amount`` of a payment's ``amount`` with bonuses."""

    payment_id: str
    customer_id: str
    kind: PaymentKind
    merchant: Merchant | None
    amount: Money
    bonus_amount: Money

    def __post_init__(self) -> None:
        if not self.payment_id or not self.customer_id:
            raise ValueError("payment_id and customer_id are required")
        if self.amount.tiyn <= 0 or self.bonus_amount.tiyn <= 0:
            raise ValueError("amount and bonus_amount must be positive")


@dataclass(frozen=True, slots=True)
class Redeemed:
    """The bonus was taken: exactly the amount the customer asked for."""

    payment_id: str
    amount: Money


@dataclass(frozen=True, slots=True)
class Declined:
    """The bonus was not taken, with a reason code and a human-readable detail."""

    payment_id: str
    reason: DeclineReason
    detail: str


RedemptionOutcome = Redeemed | Declined


class RedemptionConflict(ValueError):
    """A payment id already has a redemption outcome for a different request."""


def redemption_cap(purchase_amount: Money) -> Money:
    """The most bonus a Kaspi Magazin purchase can take: 60 % of it, rounded DOWN to the tiyn."""
    return purchase_amount.percent(REDEMPTION_CAP_PERCENT, "down")


def replay(request: RedemptionRequest, existing: RedemptionOutcome | None) -> RedemptionOutcome | None:
    """The stored outcome for this payment id, if any: redemption is idempotent by payment id."""
    # A decline stays a decline (README, idempotency); a stored Redeemed for a different bonus
    # amount is a conflict, never a second redemption.
    if existing is None:
        return None
    if existing.payment_id != request.payment_id:
        raise ValueError("existing outcome belongs to another payment")
    if isinstance(existing, Redeemed) and existing.amount != request.bonus_amount:
        raise RedemptionConflict(
            f"payment {request.payment_id} already redeemed {existing.amount}, not {request.bonus_amount}"
        )
    return existing


def decide_redemption(
    request: RedemptionRequest, balance: Money, existing: RedemptionOutcome | None = None
) -> RedemptionOutcome:
    """Decide a redemption request against the rules and the balance (checks in the order below)."""
    # A request above the cap or the balance is declined, never clamped: the customer approved a
    # specific split of the price, and silently changing it would charge their money for a part
    # they meant to pay with bonuses (docs/bonus.md, "Redemption").
    stored = replay(request, existing)
    if stored is not None:
        return stored
    pid = request.payment_id
    # Bonuses never pay a Kaspi Red bill (brief §3 and §4, seed 002). Checked first so every Red
    # bill gets this specific reason rather than the generic category one.
    if request.kind is PaymentKind.RED_BILL:
        return Declined(pid, DeclineReason.BONUS_NOT_ALLOWED_FOR_RED, "bonuses cannot pay a Kaspi Red bill")
    # Only purchases in Kaspi Magazin can be paid with bonuses (brief §3, seed 004).
    if request.kind is not PaymentKind.PURCHASE or request.merchant is not Merchant.KASPI_MAGAZIN:
        return Declined(
            pid,
            DeclineReason.BONUS_CATEGORY_NOT_ELIGIBLE,
            "bonuses can pay only for purchases in Kaspi Magazin",
        )
    cap = redemption_cap(request.amount)
    if request.bonus_amount > cap:
        return Declined(
            pid,
            DeclineReason.BONUS_CAP_EXCEEDED,
            f"at most {cap} (60 % of {request.amount}) can be paid with bonuses",
        )
    if request.bonus_amount > balance:
        return Declined(
            pid,
            DeclineReason.BONUS_BALANCE_INSUFFICIENT,
            f"requested {request.bonus_amount}, bonus balance is {balance}",
        )
    return Redeemed(pid, request.bonus_amount)
