"""Clawback: reversing bonus in proportion to what was refunded (brief §3 interpretation)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.money import Money


@dataclass(frozen=True, slots=True)
class Clawback:
    """What one refund takes back: ``reversed`` from the balance, ``shortfall`` that was not there."""

    target_total: Money
    claim: Money
    reversed: Money
    shortfall: Money


def clawback_target(accrued: Money, original_amount: Money, total_refunded: Money) -> Money:
    """``floor(accrued * total_refunded / original_amount)``: the bonus owed back so far."""
    # Cumulative over all refunds of the payment (brief §3: "in proportion to the amount refunded"),
    # so several partial refunds never take back more than the accrual and a full refund all of it.
    if original_amount.tiyn <= 0:
        raise ValueError("original amount must be positive")
    if total_refunded.is_negative or total_refunded > original_amount:
        raise ValueError("total refunded must be within [0, original amount]")
    if accrued.is_negative:
        raise ValueError("accrued must not be negative")
    # Integer floor division on tiyn: exact, and it rounds toward the customer.
    return Money(accrued.tiyn * total_refunded.tiyn // original_amount.tiyn, accrued.currency)


def plan_clawback(
    *,
    accrued: Money,
    original_amount: Money,
    total_refunded: Money,
    already_claimed: Money,
    available: Money,
) -> Clawback:
    """Split this refund's claim into what the balance covers and the shortfall."""
    # Rule (issue 4, "the balance may not go below zero: reverse what is available and record the
    # shortfall"): claim = target_total - already_claimed, where already_claimed is everything earlier
    # refunds reversed PLUS their recorded shortfalls; reversed = min(claim, available) and
    # shortfall = claim - reversed. A shortfall is written off, not collected from later bonus, so
    # reversed + shortfall over all refunds equals the target, never more. A late or replayed refund
    # whose target is already claimed claims nothing.
    if available.is_negative or already_claimed.is_negative:
        raise ValueError("available and already_claimed must not be negative")
    target = clawback_target(accrued, original_amount, total_refunded)
    claim = max(target - already_claimed, Money.zero(accrued.currency))
    reversed_ = min(claim, available)
    return Clawback(target_total=target, claim=claim, reversed=reversed_, shortfall=claim - reversed_)
