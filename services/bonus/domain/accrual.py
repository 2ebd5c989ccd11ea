"""Accrual: which rule a completed payment earns under, and how much bonus."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from shared.money import Money

from .facts import NEVER_ACCRUES, PaymentFacts
from .rules import BonusRules


@dataclass(frozen=True, slots=True)
class Accrual:
    """Bonus earned by one payment, with the rule that matched (1 bonus = 1 ₸, brief §1)."""

    payment_id: str
    customer_id: str
    rule_set: str
    rule_id: str
    promotion_id: str | None
    percent: Decimal
    base: Money
    amount: Money
    payment_amount: Money
    business_date: date

    def __post_init__(self) -> None:
        if self.amount.tiyn <= 0:
            raise ValueError("an accrual is positive")
        if self.amount > self.base:
            raise ValueError("an accrual never exceeds its base")


def accrual_amount(base: Money, percent: Decimal) -> Money:
    """``percent`` of ``base``, rounded DOWN to the tiyn."""
    # Rounding rule (issue 4, "rounding is down to the tiyn"): never pay out a fraction of a tiyn
    # that was not earned, so 1 % of 0,99 ₸ is 0 and 5 % of 10,19 ₸ is 0,50 ₸.
    return base.percent(percent, "down")


def decide_accrual(payment: PaymentFacts, rules: BonusRules) -> Accrual | None:
    """The accrual ``payment`` earns under the rule set in force when it completed, or ``None``."""
    # None = nothing accrued: an excluded kind, no money paid, no rule set or rule, or an amount
    # that rounds down to zero tiyn.
    # Red bill payments, top-ups and transfers never earn bonus, whatever the data says.
    if payment.kind in NEVER_ACCRUES:
        return None
    # Base = money actually paid: the part paid with bonuses is excluded, and the fee is not part
    # of PaymentFacts.amount at all (brief §3: "1 % of the amount paid"; the fee is the bank's).
    base = payment.money_paid
    if base.tiyn <= 0:
        return None
    # Judged by the rule set in force at completion (brief §3 interpretation), on the Asia/Almaty
    # calendar date: a set starting on day D covers payments completed from 00:00 Almaty on D.
    rule_set = rules.rule_set_at(payment.completed_at)
    if rule_set is None:
        return None
    match = rule_set.match(payment)
    if match is None:
        return None
    amount = accrual_amount(base, match.percent)
    if amount.tiyn <= 0:
        return None
    return Accrual(
        payment_id=payment.payment_id,
        customer_id=payment.customer_id,
        rule_set=match.rule_set,
        rule_id=match.rule.rule_id,
        promotion_id=match.promotion.promotion_id if match.promotion else None,
        percent=match.percent,
        base=base,
        amount=amount,
        payment_amount=payment.amount,
        business_date=payment.business_date,
    )
