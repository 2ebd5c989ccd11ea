"""Bonus contracts: accrual on completed payments, clawback on refunds, redemption for Kaspi Magazin.

1 bonus = 1 ₸, so bonus amounts are tiyn like every other amount (domain brief §3).
"""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from shared.contracts.base import Event
from shared.contracts.common import Message, PercentStr, ReasonCode
from shared.money import PositiveTiyn, Tiyn

_CUSTOMER_ID = "The customer; the Kafka key."


class BonusAccrued(Event):
    """Bonus was credited for a completed payment (exactly once per payment)."""

    payment_id: UUID = Field(description="The payment that earned the bonus.")
    customer_id: UUID = Field(description=_CUSTOMER_ID)
    amount: PositiveTiyn = Field(description="Bonus credited, in tiyn (rounded down to the tiyn).")
    rule_set: str = Field(
        min_length=1, max_length=64, description='Rule set in force at completion, e.g. "2024".'
    )
    rule_id: str = Field(
        min_length=1, max_length=64, description="The rule or partner promotion that matched."
    )
    percent: PercentStr = Field(description='Bonus rate applied, as a decimal string, e.g. "1" or "12.5".')
    base_amount: PositiveTiyn = Field(description="Amount the percent was applied to, in tiyn.")
    balance_after: Tiyn = Field(description="Bonus balance after the credit, in tiyn.")


class BonusReversed(Event):
    """Bonus was clawed back in proportion to a refund."""

    payment_id: UUID = Field(description="The refunded payment.")
    refund_id: UUID = Field(description="The refund that caused the clawback.")
    customer_id: UUID = Field(description=_CUSTOMER_ID)
    amount: Tiyn = Field(description="Bonus actually taken back, in tiyn.")
    shortfall: Tiyn = Field(
        description="Part of the clawback that could not be taken because the balance was too low, in tiyn."
    )
    balance_after: Tiyn = Field(description="Bonus balance after the clawback, in tiyn.")


class BonusRedeemed(Event):
    """Bonus was debited to pay part of a purchase (answer to BonusRedemptionRequested)."""

    payment_id: UUID = Field(description="The purchase.")
    customer_id: UUID = Field(description=_CUSTOMER_ID)
    amount: PositiveTiyn = Field(description="Bonus debited, in tiyn.")
    balance_after: Tiyn = Field(description="Bonus balance after the debit, in tiyn.")


class BonusRedemptionDeclined(Event):
    """Bonus refused a redemption (answer to BonusRedemptionRequested); nothing was debited."""

    payment_id: UUID = Field(description="The purchase.")
    customer_id: UUID = Field(description=_CUSTOMER_ID)
    reason_code: ReasonCode = Field(description="Machine reason for the decline.")
    message: Message = Field(description="Human-readable explanation of the decline.")


class BonusRestored(Event):
    """A redemption was returned to the balance (answer to BonusRedemptionCancelled)."""

    payment_id: UUID = Field(description="The purchase that did not complete.")
    customer_id: UUID = Field(description=_CUSTOMER_ID)
    amount: PositiveTiyn = Field(description="Bonus returned, in tiyn.")
    balance_after: Tiyn = Field(description="Bonus balance after the return, in tiyn.")
