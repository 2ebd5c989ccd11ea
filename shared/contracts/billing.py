"""Kaspi Red billing contracts (domain brief §4).

Inbound: Red account facts from origination (``aqsha.red.accounts``) and the ``RunBusinessDay``
command (``aqsha.billing.commands``). Outbound: plan decisions, bills, overdue facts, penalties,
repayment allocation and limit changes (``aqsha.billing.events``).
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, ClassVar, Self
from uuid import UUID

from pydantic import AwareDatetime, Field, model_validator

from shared.contracts.base import Command, Event, Value
from shared.contracts.common import Merchant, Message, ReasonCode
from shared.money import PositiveTiyn, Tiyn

_CUSTOMER_ID = "The customer; the Kafka key."


# The model validators' rules are plain functions, so that mutation testing (make mutation,
# docs/testing.md) reaches them: mutmut leaves decorated functions alone.
def _require_parts_sum(parts: list[int], amount: int) -> None:
    if sum(parts) != amount:
        raise ValueError("parts must sum to amount")


def _require_allocation_sum(allocation: RepaymentAllocation, amount: int) -> None:
    if allocation.total != amount:
        raise ValueError(f"allocation sums to {allocation.total}, amount is {amount}")


def _require_allocation_v2_sum(allocation: RepaymentAllocationV2, amount: int) -> None:
    money_in = amount + allocation.prepayment_used
    if allocation.total != money_in:
        raise ValueError(f"allocation sums to {allocation.total}, amount + prepayment_used is {money_in}")


class LimitRestoreReason(StrEnum):
    """Why the available Red limit grew (domain brief §4 "Limit")."""

    #: New terms: a paid bill held the fourth part of a purchase; the whole price comes back.
    FOURTH_PART_PAID = "FOURTH_PART_PAID"
    #: Old terms (new terms not accepted): the limit grows by the amount paid, immediately.
    OLD_TERMS_PAYMENT = "OLD_TERMS_PAYMENT"
    REFUND = "REFUND"
    CANCELLATION = "CANCELLATION"


class OverpaymentReason(StrEnum):
    """Why money went back from Red to Kaspi Gold."""

    #: Everything was repaid and money was left (domain brief §4 allocation step 3).
    OVERPAYMENT = "OVERPAYMENT"
    #: Red was closed with a positive balance.
    ACCOUNT_CLOSED = "ACCOUNT_CLOSED"


# ---------------------------------------------------------------------------------------- inbound


class RedAccountOpened(Event):
    """Origination opened Kaspi Red for the customer."""

    customer_id: UUID = Field(description=_CUSTOMER_ID)
    limit: PositiveTiyn = Field(description="Purchase limit, in tiyn.")
    opened_on: date = Field(description="Opening date (Asia/Almaty); its day of month is the billing day.")
    accepted_new_terms: bool = Field(
        default=True, description="Whether the customer is on the new (improved) Red terms."
    )
    loan_payment_day: Annotated[int, Field(ge=1, le=31)] | None = Field(
        default=None,
        description="Monthly payment day of the customer's Kaspi loans; when set it is the billing day.",
    )


class RedTermsAccepted(Event):
    """The customer accepted the new Red terms (limit restores on fourth parts from now on)."""

    customer_id: UUID = Field(description=_CUSTOMER_ID)
    accepted_on: date = Field(description="Date of acceptance (Asia/Almaty).")


class RedAccountClosed(Event):
    """Origination closed the customer's Kaspi Red; any positive balance goes back to Gold."""

    customer_id: UUID = Field(description=_CUSTOMER_ID)
    closed_on: date = Field(description="Closing date (Asia/Almaty).")


class RunBusinessDay(Command):
    """Run billing's end-of-day for one business date (issue bills, record overdue, charge penalties).

    Keyed by the ISO business date. Re-running a date is safe: every effect is once per bill.
    """

    business_date: date = Field(description="The Asia/Almaty business date to process.")
    requested_by: str = Field(
        default="scheduler", min_length=1, max_length=64, description="Operator or scheduler that asked."
    )


# --------------------------------------------------------------------------------------- outbound


class RedPurchaseApproved(Event):
    """Billing funded a purchase with Red: a plan of four monthly parts."""

    payment_id: UUID = Field(description="The purchase (from RedPurchaseRequested).")
    customer_id: UUID = Field(description=_CUSTOMER_ID)
    plan_id: UUID = Field(description="The Red purchase plan; bill lines refer to it as purchase_id.")
    amount: PositiveTiyn = Field(description="Amount funded, in tiyn.")
    parts: list[Tiyn] = Field(
        min_length=4,
        max_length=4,
        description="The four monthly parts, in tiyn; they sum to amount, remainder tiyn on the first.",
    )
    available_after: Tiyn = Field(description="Available Red limit after the purchase, in tiyn.")

    @model_validator(mode="after")
    def _parts_sum(self) -> Self:
        _require_parts_sum(self.parts, self.amount)
        return self


class RedPurchaseDeclined(Event):
    """Billing refused to fund a purchase with Red."""

    payment_id: UUID = Field(description="The purchase (from RedPurchaseRequested).")
    customer_id: UUID = Field(description=_CUSTOMER_ID)
    reason_code: ReasonCode = Field(description="INSUFFICIENT_LIMIT, NO_RED_ACCOUNT, RED_ACCOUNT_CLOSED, ...")
    message: Message = Field(description="Human-readable explanation of the decline.")
    available: Tiyn = Field(description="Available Red limit at the time of the decision, in tiyn.")


class BillLine(Value):
    """One part of one purchase on a bill."""

    purchase_id: UUID = Field(description="The Red purchase plan (plan_id of RedPurchaseApproved).")
    part_no: int = Field(ge=1, le=4, description="Which of the four parts (4 = the last).")
    amount: Tiyn = Field(description="Amount of the part still due on this bill, in tiyn.")
    # Optional (added after v1 shipped): what a customer recognises a purchase by. Absent on bills of
    # plans made before billing kept them; consumers must cope without.
    merchant: Merchant | None = Field(
        default=None, description="Commerce channel of the purchase (from RedPurchaseRequested), if known."
    )
    partner_id: str | None = Field(
        default=None, description="Partner id of a Kaspi QR or Travel purchase, if known."
    )
    purchased_on: date | None = Field(
        default=None, description="Business date of the purchase (Asia/Almaty), if known."
    )
    parts_total: int | None = Field(
        default=None, ge=1, le=4, description="How many parts the purchase was split into (4), if known."
    )


class BillIssued(Event):
    """A monthly Red bill was issued; the customer is told its amount and due date."""

    bill_id: UUID = Field(description="The bill.")
    customer_id: UUID = Field(description=_CUSTOMER_ID)
    statement_date: date = Field(description="Billing day the bill was issued on (Asia/Almaty).")
    due_at: AwareDatetime = Field(
        description="Deadline: 20:00 Asia/Almaty on the next billing day; later money is credited next day."
    )
    amount: Tiyn = Field(
        description="Amount to pay, in tiyn: lines + penalty - carried_prepayment, not below 0."
    )
    penalty: Tiyn = Field(default=0, description="Penalty included in the amount, in tiyn.")
    carried_prepayment: Tiyn = Field(
        default=0, description="Earlier excess repayment counted toward this bill, in tiyn."
    )
    lines: list[BillLine] = Field(description="The purchase parts falling due in this bill.")


class BillOverdueRecorded(Event):
    """A bill was not paid by its deadline; the overdue fact goes to the credit history."""

    bill_id: UUID = Field(description="The overdue bill.")
    customer_id: UUID = Field(description=_CUSTOMER_ID)
    due_at: AwareDatetime = Field(description="The missed deadline.")
    overdue_since: date = Field(description="First day of overdue (Asia/Almaty).")
    outstanding: PositiveTiyn = Field(description="Amount still unpaid on the bill, in tiyn.")


class PenaltyApplied(Event):
    """The one-time 2,000 ₸ penalty was added to a bill on the second day of overdue."""

    bill_id: UUID = Field(description="The penalised bill (at most one penalty per bill).")
    customer_id: UUID = Field(description=_CUSTOMER_ID)
    amount: PositiveTiyn = Field(description="Penalty charged, in tiyn (200000 = 2,000 ₸).")
    applied_on: date = Field(description="Business date the penalty was charged on (Asia/Almaty).")
    outstanding_after: PositiveTiyn = Field(
        description="Amount unpaid on the bill including the penalty, in tiyn."
    )


class PurchaseRepayment(Value):
    """Early repayment of one purchase."""

    purchase_id: UUID = Field(description="The Red purchase plan repaid.")
    amount: PositiveTiyn = Field(description="Amount applied to it, in tiyn.")


# The allocation of RepaymentApplied v1, unchanged (its schema, docs/contracts/RepaymentApplied.v1.json,
# stays as committed): only the repayment's own money, so an earlier carried prepayment it released
# (often sent back to Gold) shows only in a separate OverpaymentRefunded. v2 (below) shows it.
class RepaymentAllocation(Value):
    """Where a repayment went, in order (domain brief §4 allocation); the parts sum to the repayment."""

    bill_id: UUID | None = Field(default=None, description="The current bill paid first, if there is one.")
    to_bill: Tiyn = Field(description="Applied to the current bill, in tiyn.")
    to_purchases: list[PurchaseRepayment] = Field(
        default_factory=list, description="Early repayment of purchases, oldest first."
    )
    carried: Tiyn = Field(default=0, description="Excess kept as prepayment toward the next bill, in tiyn.")
    refunded_to_gold: Tiyn = Field(
        default=0, description="Left after all purchases were repaid, returned to Kaspi Gold, in tiyn."
    )

    @property
    def total(self) -> int:
        """Sum of all destinations, in tiyn."""
        return self.to_bill + sum(p.amount for p in self.to_purchases) + self.carried + self.refunded_to_gold


class RepaymentAllocationV2(Value):
    """Everything a repayment moved, in order (``RepaymentApplied`` v2; docs/billing.md §5).

    The money is this repayment's ``amount`` plus ``prepayment_used``, an earlier carried prepayment
    that the repayment released; the destinations sum to both. ``refunded_to_gold`` is exactly what
    went back to Kaspi Gold (the amount of the ``OverpaymentRefunded`` billing emits with it).
    """

    bill_id: UUID | None = Field(default=None, description="The current bill paid first, if there is one.")
    to_bill: Tiyn = Field(
        description="Applied to the issued bills and their penalties, oldest first, in tiyn."
    )
    to_purchases: list[PurchaseRepayment] = Field(
        default_factory=list, description="Early repayment of purchases, oldest first."
    )
    carried: Tiyn = Field(
        default=0, description="New prepayment kept toward the next bill, in tiyn (002 Q1516, seed 001)."
    )
    refunded_to_gold: Tiyn = Field(
        default=0,
        description="Returned to Kaspi Gold because everything is repaid, in tiyn (002 Q2184): the whole "
        "OverpaymentRefunded amount, including any earlier prepayment released (prepayment_used).",
    )
    prepayment_used: Tiyn = Field(
        default=0,
        description="Earlier carried prepayment released by this repayment and allocated with it, in tiyn; "
        "the destinations sum to amount + prepayment_used.",
    )

    @property
    def total(self) -> int:
        """Sum of all destinations, in tiyn (= amount + prepayment_used)."""
        return self.to_bill + sum(p.amount for p in self.to_purchases) + self.carried + self.refunded_to_gold


class RepaymentAppliedV1(Event):
    """OBSOLETE (v1): a Red bill payment was credited and allocated; only its own money is shown.

    Kept registered so records already on the topic still decode and the contract's history stays
    checked. billing emits v2 since it was added; notify renders both.
    """

    TYPE: ClassVar[str] = "RepaymentApplied"
    VERSION: ClassVar[int] = 1

    repayment_id: UUID = Field(description="Id of this repayment in billing.")
    payment_id: UUID = Field(description="The RED_BILL payment that brought the money.")
    customer_id: UUID = Field(description=_CUSTOMER_ID)
    amount: PositiveTiyn = Field(description="Amount repaid, in tiyn.")
    credited_on: date = Field(
        description="Credit date: paid after 20:00 Asia/Almaty counts for the next day."
    )
    allocation: RepaymentAllocation = Field(description="How the amount was allocated.")

    @model_validator(mode="after")
    def _allocation_sums(self) -> Self:
        _require_allocation_sum(self.allocation, self.amount)
        return self


class RepaymentApplied(Event):
    """A Red bill payment was credited and allocated: the whole story (v2).

    The allocation shows this payment's money together with any earlier carried prepayment it
    released, and the part returned to Kaspi Gold, so "8,000 paid" never reads as "8,000 to
    purchases" beside an unexplained "1,000 returned" (docs/billing.md §5).
    """

    VERSION: ClassVar[int] = 2

    repayment_id: UUID = Field(description="Id of this repayment in billing.")
    payment_id: UUID = Field(description="The RED_BILL payment that brought the money.")
    customer_id: UUID = Field(description=_CUSTOMER_ID)
    amount: PositiveTiyn = Field(description="Amount repaid, in tiyn.")
    credited_on: date = Field(
        description="Credit date: paid after 20:00 Asia/Almaty counts for the next day."
    )
    allocation: RepaymentAllocationV2 = Field(
        description="Where the amount and any earlier prepayment it released went."
    )

    @model_validator(mode="after")
    def _allocation_sums(self) -> Self:
        _require_allocation_v2_sum(self.allocation, self.amount)
        return self


class BillPaid(Event):
    """A bill was paid in full."""

    bill_id: UUID = Field(description="The paid bill.")
    customer_id: UUID = Field(description=_CUSTOMER_ID)
    paid_on: date = Field(description="Credit date of the payment that settled it (Asia/Almaty).")


class LimitRestored(Event):
    """The available Red limit grew."""

    customer_id: UUID = Field(description=_CUSTOMER_ID)
    amount: PositiveTiyn = Field(description="Increase of the available limit, in tiyn.")
    available_after: Tiyn = Field(description="Available limit after the increase, in tiyn.")
    reason: LimitRestoreReason = Field(description="Why the limit grew.")
    purchase_id: UUID | None = Field(
        default=None, description="The purchase whose fourth part, refund or cancellation restored it."
    )


class OverpaymentRefunded(Event):
    """Money on Red beyond everything owed went back to Kaspi Gold."""

    refund_id: UUID = Field(description="Id of this refund in billing.")
    customer_id: UUID = Field(description=_CUSTOMER_ID)
    amount: PositiveTiyn = Field(description="Amount returned to Gold, in tiyn.")
    reason: OverpaymentReason = Field(description="Why the money was returned.")


class BusinessDayClosed(Event):
    """Billing finished a run of its end-of-day for one business date (on ``aqsha.billing.days``).

    Keyed by the ISO business date. One per run: a re-run of a date (or a redelivered
    ``RunBusinessDay``) emits another with the facts that run newly recorded (zero when nothing was
    left to do). Its ``causation_id`` is the ``RunBusinessDay`` that asked for it, so the operator
    who sent the command can wait for exactly this run (``aqsha billing run-day --wait``).
    """

    business_date: date = Field(description="The Asia/Almaty business date closed; the Kafka key.")
    requested_by: str = Field(
        min_length=1, max_length=64, description="Operator or scheduler that asked for the run."
    )
    accounts: int = Field(ge=0, description="Red accounts closed through the date.")
    bills: int = Field(ge=0, description="Bills newly issued by this run.")
    overdue: int = Field(ge=0, description="Overdue records newly made by this run.")
    penalties: int = Field(ge=0, description="Penalties newly charged by this run.")
