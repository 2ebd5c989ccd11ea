"""What the bonus domain knows about a payment: a local, frozen view of ``PaymentCompleted``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

from shared.clock import ALMATY, business_date_of
from shared.contracts.common import Funding, Merchant, PaymentKind
from shared.money import Money

__all__ = ["ALMATY", "NEVER_ACCRUES", "Funding", "Merchant", "PaymentFacts", "PaymentKind", "business_date"]


# Bonus never accrues on these, under any program: they move the customer's own money or repay
# credit, they are not spending (brief §3 lists only payments and purchases as earning).
NEVER_ACCRUES: Final = frozenset({PaymentKind.RED_BILL, PaymentKind.TOP_UP, PaymentKind.TRANSFER})


def business_date(instant: datetime) -> date:
    """The Asia/Almaty calendar date of an aware instant (naive instants are refused)."""
    # Business time is Asia/Almaty by zone name, never a fixed offset (domain brief, preamble).
    return business_date_of(instant)


@dataclass(frozen=True, slots=True)
class PaymentFacts:
    """A completed payment as the bonus rules see it (``amount`` excludes the fee)."""

    # amount: the principal paid to the provider or merchant, WITHOUT the fee. The fee is deliberately
    # not a field, so it can never become part of the cashback base (docs/bonus.md, "Accrual").
    # bonus_amount_used: the part of amount paid with bonuses.

    payment_id: str
    customer_id: str
    kind: PaymentKind
    category: str | None
    provider: str | None
    merchant: Merchant | None
    partner_id: str | None
    funding: Funding
    amount: Money
    bonus_amount_used: Money
    completed_at: datetime

    def __post_init__(self) -> None:
        if not self.payment_id or not self.customer_id:
            raise ValueError("payment_id and customer_id are required")
        if self.amount.tiyn <= 0:
            raise ValueError(f"amount must be positive, got {self.amount.tiyn} tiyn")
        if self.bonus_amount_used.is_negative or self.bonus_amount_used > self.amount:
            raise ValueError("bonus_amount_used must be within [0, amount]")
        business_date(self.completed_at)  # rejects naive datetimes

    @property
    def business_date(self) -> date:
        """The Asia/Almaty date on which the payment completed."""
        return business_date(self.completed_at)

    @property
    def money_paid(self) -> Money:
        """The part of the amount paid with money, not bonuses: the cashback base."""
        if self.funding is Funding.BONUS:
            # Interpretation: funding BONUS means the whole amount came from the bonus account.
            return Money.zero()
        return self.amount - self.bonus_amount_used
