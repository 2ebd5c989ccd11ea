"""Red account lifecycle and purchase plans: open, terms, approve, refund, cancel, close (brief §4)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum

from shared.money import Money

from .allocation import Allocation, newly_settled_purchases, run_waterfall
from .ledger import Ledger
from .model import ZERO, Part, Purchase, RedAccount
from .schedule import PLAN_PARTS, billing_day_for, plan_statement_dates


class DeclineReason(StrEnum):
    """Why a Red purchase was declined."""

    INSUFFICIENT_LIMIT = "INSUFFICIENT_LIMIT"
    ACCOUNT_CLOSED = "ACCOUNT_CLOSED"
    INVALID_AMOUNT = "INVALID_AMOUNT"
    PURCHASE_CANCELLED = "PURCHASE_CANCELLED"


class RejectReason(StrEnum):
    """Why a refund, cancellation or closing was not applied."""

    UNKNOWN_PURCHASE = "UNKNOWN_PURCHASE"
    INVALID_AMOUNT = "INVALID_AMOUNT"
    REFUND_EXCEEDS_PRICE = "REFUND_EXCEEDS_PRICE"
    PLAN_ALREADY_BILLED = "PLAN_ALREADY_BILLED"
    OUTSTANDING_DEBT = "OUTSTANDING_DEBT"


@dataclass(frozen=True, slots=True)
class PurchaseApproved:
    """The purchase fits the available limit; its plan is on the account."""

    account: RedAccount
    purchase: Purchase
    available: Money


@dataclass(frozen=True, slots=True)
class PurchaseDeclined:
    """The purchase was refused, with a reason code."""

    reason: DeclineReason
    available: Money


@dataclass(frozen=True, slots=True)
class PurchaseRefunded:
    """A merchant refund applied to a plan; ``excess`` is the already-paid part, re-allocated."""

    account: RedAccount
    purchase_id: str
    amount: Money
    reduced_parts: Money
    excess: Allocation | None
    limit_restored: Money


@dataclass(frozen=True, slots=True)
class PurchaseCancelled:
    """A cancelled plan; ``already`` is True on a redelivered cancellation (no effect)."""

    account: RedAccount
    purchase_id: str
    limit_released: Money
    already: bool
    refunded_to_gold: Money = ZERO


@dataclass(frozen=True, slots=True)
class AccountClosed:
    """A closed Red account; the carried balance went to Kaspi Gold."""

    account: RedAccount
    refunded_to_gold: Money


@dataclass(frozen=True, slots=True)
class Rejected:
    """An operation that was not applied, with a reason code."""

    reason: RejectReason


def open_account(
    customer_id: str,
    limit: Money,
    opened_on: date,
    *,
    new_terms_accepted: bool,
    loan_payment_day: int | None = None,
) -> RedAccount:
    """A new Red account; the billing day comes from the opening date or the loan payment day."""
    if limit.is_negative:
        raise ValueError("a Red limit cannot be negative")
    return RedAccount(
        customer_id=customer_id,
        limit=limit,
        opened_on=opened_on,
        billing_day=billing_day_for(opened_on, loan_payment_day),
        new_terms_accepted=new_terms_accepted,
    )


def accept_new_terms(account: RedAccount) -> RedAccount:
    """The customer accepted the new Red terms: from now on the limit grows on fourth parts only."""
    if account.new_terms_accepted:
        return account
    return replace(account, new_terms_accepted=True)


def approve_purchase(
    account: RedAccount,
    purchase_id: str,
    price: Money,
    purchased_on: date,
    *,
    merchant: str | None = None,
    partner_id: str | None = None,
) -> PurchaseApproved | PurchaseDeclined:
    """Approve a Red purchase only if the available amount covers the whole price.

    ``merchant`` and ``partner_id`` are kept on the plan only to name the purchase on its bills.
    """
    existing = account.purchase(purchase_id)
    if existing is not None:
        # A redelivered request for the same purchase: same answer, no second plan.
        return PurchaseApproved(account, existing, account.available)
    if account.closed:
        return PurchaseDeclined(DeclineReason.ACCOUNT_CLOSED, ZERO)
    if purchase_id in account.cancelled_purchase_ids:
        return PurchaseDeclined(DeclineReason.PURCHASE_CANCELLED, account.available)
    if price <= ZERO:
        return PurchaseDeclined(DeclineReason.INVALID_AMOUNT, account.available)
    if account.available < price:
        # domain §4: a purchase reduces the available amount; it must fit in it.
        return PurchaseDeclined(DeclineReason.INSUFFICIENT_LIMIT, account.available)
    # domain §4 Interpretation: four integer-tiyn parts summing to the price, remainder on part 1.
    amounts = price.split(PLAN_PARTS)
    dates = plan_statement_dates(purchased_on, account.billing_day)
    parts = tuple(
        Part(number=i + 1, amount=a, statement_date=d)
        for i, (a, d) in enumerate(zip(amounts, dates, strict=True))
    )
    purchase = Purchase(
        purchase_id, price, purchased_on, parts, limit_held=price, merchant=merchant, partner_id=partner_id
    )
    # Keep purchases oldest first (002 Q2184: early repayment goes "from old to new").
    purchases = sorted([*account.purchases, purchase], key=lambda p: p.purchased_on)
    after = replace(account, purchases=tuple(purchases))
    return PurchaseApproved(after, purchase, after.available)


def refund_purchase(
    account: RedAccount, purchase_id: str, amount: Money, refunded_on: date
) -> PurchaseRefunded | Rejected:
    """Apply a merchant refund of a Red purchase (rule in docs/billing.md §6)."""
    purchase = account.purchase(purchase_id)
    if purchase is None:
        return Rejected(RejectReason.UNKNOWN_PURCHASE)
    if amount <= ZERO:
        return Rejected(RejectReason.INVALID_AMOUNT)
    if amount > purchase.price - purchase.refunded:
        return Rejected(RejectReason.REFUND_EXCEEDS_PRICE)
    ledger = Ledger(account)
    # The refund lowers the purchase's unbilled parts from the fourth backwards, so the next bills
    # stay as announced as long as possible; the limit it held comes back by the refunded amount.
    reduced = ledger.reduce_from_last(purchase_id, amount)
    # The whole refund counts against the price, including the excess over the unbilled parts (money
    # already paid, returned below): otherwise a later refund could return more than the price.
    current = ledger.get(purchase_id)
    ledger.put(replace(current, refunded=purchase.refunded + amount))
    if account.new_terms_accepted:
        # Old terms already re-derive the hold from the unpaid principal (Ledger.rehold).
        current = ledger.get(purchase_id)
        held = current.limit_held - amount
        ledger.put(replace(current, limit_held=held if held > ZERO else ZERO))
    excess_money = amount - reduced
    excess: Allocation | None = None
    if excess_money:
        # The customer already paid this much of the purchase (billed parts): the money is theirs and
        # goes through the repayment rules like a deposit (bill, purchases old→new, carry, or Gold).
        before = ledger.freeze()
        split = run_waterfall(ledger, excess_money, refunded_on)
        mid = ledger.freeze()
        excess = Allocation(
            paid=excess_money,
            credited_on=refunded_on,
            to_bills=split.to_bills,
            to_penalty=split.to_penalty,
            to_purchases=split.to_purchases,
            carried=split.carried,
            carried_balance=mid.carried,
            refunded_to_gold=split.refunded,
            limit_restored=mid.available - before.available,
            purchases_settled=newly_settled_purchases(before, mid),
        )
    surplus = carried_surplus(ledger.freeze())
    if surplus:
        # The refund left less owed than the carried prepayment: what no bill can ever use goes to
        # Kaspi Gold (002 Q1516, "purchases fully paid → the rest goes to Kaspi Gold"). Found by the
        # property test: kept as carried, it held the available amount at the limit, so a new
        # purchase did not lower it.
        ledger.carried = ledger.carried - surplus
        if excess is None:
            excess = Allocation(
                paid=ZERO, credited_on=refunded_on, carried=-surplus, refunded_to_gold=surplus
            )
        else:
            excess = replace(
                excess,
                carried=excess.carried - surplus,
                carried_balance=ledger.carried,
                refunded_to_gold=excess.refunded_to_gold + surplus,
            )
    after = ledger.freeze()
    return PurchaseRefunded(
        account=after,
        purchase_id=purchase_id,
        amount=amount,
        reduced_parts=reduced,
        excess=excess,
        limit_restored=after.available - account.available,
    )


def carried_surplus(account: RedAccount) -> Money:
    """The part of the carried prepayment beyond everything still owed (no bill can ever use it)."""
    surplus = account.carried - account.outstanding
    return surplus if surplus > ZERO else ZERO


def cancel_purchase(account: RedAccount, purchase_id: str) -> PurchaseCancelled | Rejected:
    """Compensate an approved purchase that failed downstream: drop its plan, release its limit."""
    if purchase_id in account.cancelled_purchase_ids:
        return PurchaseCancelled(account, purchase_id, ZERO, already=True)
    purchase = account.purchase(purchase_id)
    if purchase is None:
        # Cancellation before (or without) the approval: remember it so a late approval is refused.
        after = replace(account, cancelled_purchase_ids=account.cancelled_purchase_ids | {purchase_id})
        return PurchaseCancelled(after, purchase_id, ZERO, already=False)
    if any(p.billed or p.paid for p in purchase.parts):
        # A billed plan is no longer a failed purchase; it is undone by a merchant refund instead.
        return Rejected(RejectReason.PLAN_ALREADY_BILLED)
    after = replace(
        account,
        purchases=tuple(p for p in account.purchases if p.purchase_id != purchase_id),
        cancelled_purchase_ids=account.cancelled_purchase_ids | {purchase_id},
    )
    # With the plan gone, the part of a carried prepayment that nothing left can use goes to Kaspi
    # Gold at once (002 Q1516, "purchases fully paid → the rest goes to Kaspi Gold").
    refunded = carried_surplus(after)
    if refunded:
        after = replace(after, carried=after.carried - refunded)
    released = after.available - account.available
    return PurchaseCancelled(after, purchase_id, released, already=False, refunded_to_gold=refunded)


def close_account(account: RedAccount) -> AccountClosed | Rejected:
    """Close Red: only with nothing owed; the carried balance goes to Kaspi Gold."""
    if account.closed:
        return AccountClosed(account, ZERO)
    if account.outstanding:
        return Rejected(RejectReason.OUTSTANDING_DEBT)
    # domain §4 (002 Q15293): on closing, the remaining balance goes to Kaspi Gold.
    after = replace(account, carried=ZERO, closed=True)
    return AccountClosed(after, account.carried)
