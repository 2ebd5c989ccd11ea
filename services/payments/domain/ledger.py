"""Double-entry ledger postings (issue #3 "Accounts and ledger").

Sign convention: an entry's amount is what flows *into* its account; negative flows out. A
customer account's balance is the sum of its entries and must never go below zero (the store
enforces that under concurrency). System accounts may run negative: CASH_IN, for instance, is the
source of every cash top-up. Every posting sums to zero, so the whole ledger always does.

Every debit of a customer account is a hold first (``hold_posting`` to HOLDS), then a capture into
its destination or a void back to its source: so no posting debits a customer straight into a
provider, and none is ever reversed (a failure voids the hold; a refund is its own posting).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from services.payments.domain.requests import AccountType, Funding
from shared.money import Money


class SystemAccount(StrEnum):
    """The bank's side of every movement."""

    PROVIDER_SETTLEMENT = "PROVIDER_SETTLEMENT"  # owed to providers and merchants
    FEE_INCOME = "FEE_INCOME"
    CASH_IN = "CASH_IN"  # cash inserted at terminals and ATMs
    RED_FUNDING = "RED_FUNDING"  # the Red credit line: pays merchants, receives bill payments
    BONUS_FUNDING = "BONUS_FUNDING"  # covers the bonus part of a purchase
    REFUNDS = "REFUNDS"  # merchant refunds clearing
    HOLDS = "HOLDS"  # funds held while a one-time code is awaited
    EXTERNAL_CARDS = "EXTERNAL_CARDS"  # clearing with other banks' cards (EXTERNAL_CARD funding)


@dataclass(frozen=True, slots=True)
class CustomerAccount:
    """A customer's GOLD or WALLET account."""

    customer_id: str
    type: AccountType

    def __str__(self) -> str:
        return f"{self.customer_id}/{self.type}"


Account = SystemAccount | CustomerAccount


class PostingKind(StrEnum):
    """What a posting records."""

    TOP_UP = "TOP_UP"
    HOLD = "HOLD"
    VOID = "VOID"
    CAPTURE = "CAPTURE"
    PURCHASE = "PURCHASE"
    TRANSFER = "TRANSFER"
    RED_BILL_PAYMENT = "RED_BILL_PAYMENT"
    REFUND = "REFUND"
    OVERPAYMENT_CREDIT = "OVERPAYMENT_CREDIT"


class UnbalancedPosting(ValueError):
    """A posting whose entries do not sum to zero, or that is otherwise malformed."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One leg of a posting: ``amount`` flows into ``account`` (negative: out of it)."""

    account: Account
    amount: Money


@dataclass(frozen=True, slots=True)
class Posting:
    """A balanced set of entries for one payment."""

    payment_id: str
    kind: PostingKind
    entries: tuple[Entry, ...]

    def __post_init__(self) -> None:
        if len(self.entries) < 2:
            raise UnbalancedPosting(f"{self.kind} posting needs at least two entries")
        if any(entry.amount.tiyn == 0 for entry in self.entries):
            raise UnbalancedPosting(f"{self.kind} posting has a zero entry")
        total = sum((entry.amount for entry in self.entries), Money.zero())
        if total.tiyn != 0:
            raise UnbalancedPosting(f"{self.kind} posting for {self.payment_id} is off by {total}")


def posting(payment_id: str, kind: PostingKind, legs: Iterable[tuple[Account, Money]]) -> Posting:
    """Build a posting from legs, leaving out zero legs (a zero fee, a zero bonus part)."""
    return Posting(payment_id, kind, tuple(Entry(a, m) for a, m in legs if m.tiyn != 0))


def funding_account(customer_id: str, funding: Funding) -> Account:
    """The account a funding source debits."""
    if funding in (Funding.GOLD, Funding.WALLET):
        return CustomerAccount(customer_id, AccountType(funding.value))
    return _SYSTEM_FUNDING[funding]


_SYSTEM_FUNDING: Final = {
    Funding.RED: SystemAccount.RED_FUNDING,
    Funding.BONUS: SystemAccount.BONUS_FUNDING,
    Funding.EXTERNAL_CARD: SystemAccount.EXTERNAL_CARDS,
    Funding.CASH: SystemAccount.CASH_IN,
}


def _positive(amount: Money, name: str = "amount") -> None:
    if amount.tiyn <= 0:
        raise ValueError(f"{name} must be positive, got {amount}")


def _non_negative(amount: Money, name: str) -> None:
    if amount.is_negative:
        raise ValueError(f"{name} cannot be negative, got {amount}")


def top_up_posting(payment_id: str, customer_id: str, account: AccountType, amount: Money) -> Posting:
    """Cash in at a terminal or ATM: the whole amount is credited (no change is given)."""
    _positive(amount)
    return posting(
        payment_id,
        PostingKind.TOP_UP,
        [(SystemAccount.CASH_IN, -amount), (CustomerAccount(customer_id, account), amount)],
    )


def hold_posting(payment_id: str, source: Account, total: Money) -> Posting:
    """Put ``total`` (amount + fee) on hold while the one-time code is awaited (issue #3 step 4)."""
    _positive(total, "total")
    return posting(payment_id, PostingKind.HOLD, [(source, -total), (SystemAccount.HOLDS, total)])


def void_hold_posting(payment_id: str, source: Account, total: Money) -> Posting:
    """Release a hold back to its source (cancel, expiry, too many attempts)."""
    _positive(total, "total")
    return posting(payment_id, PostingKind.VOID, [(SystemAccount.HOLDS, -total), (source, total)])


def capture_posting(
    payment_id: str,
    amount: Money,
    fee: Money,
    destination: Account = SystemAccount.PROVIDER_SETTLEMENT,
) -> Posting:
    """Settle a held ``amount + fee``: amount to ``destination``, fee to fee income.

    For a held purchase with a bonus part, use ``purchase_posting`` with ``SystemAccount.HOLDS``
    as the source instead.
    """
    _positive(amount)
    _non_negative(fee, "fee")
    return posting(
        payment_id,
        PostingKind.CAPTURE,
        [
            (SystemAccount.HOLDS, -(amount + fee)),
            (destination, amount),
            (SystemAccount.FEE_INCOME, fee),
        ],
    )


def purchase_posting(
    payment_id: str, source: Account, amount: Money, bonus_part: Money | None = None
) -> Posting:
    """A merchant purchase: ``source`` (GOLD, RED_FUNDING or HOLDS) pays all but the bonus part.

    domain §3 (004): bonuses may pay part of a Kaspi Magazin purchase; BONUS_FUNDING covers it.
    With Red, RED_FUNDING pays the merchant and billing records the customer's debt.
    """
    bonus = bonus_part if bonus_part is not None else Money.zero()
    _positive(amount)
    _non_negative(bonus, "bonus_part")
    if bonus > amount:
        raise ValueError(f"bonus part {bonus} exceeds the purchase {amount}")
    return posting(
        payment_id,
        PostingKind.PURCHASE,
        [
            (source, -(amount - bonus)),
            (SystemAccount.BONUS_FUNDING, -bonus),
            (SystemAccount.PROVIDER_SETTLEMENT, amount),
        ],
    )


def transfer_posting(
    payment_id: str, source: Account, destination: Account, amount: Money, fee: Money
) -> Posting:
    """A transfer: the source pays amount + fee, the destination receives the amount."""
    _positive(amount)
    _non_negative(fee, "fee")
    if source == destination:
        raise ValueError("a transfer needs two different accounts")
    return posting(
        payment_id,
        PostingKind.TRANSFER,
        [(source, -(amount + fee)), (destination, amount), (SystemAccount.FEE_INCOME, fee)],
    )


def red_bill_posting(payment_id: str, source: Account, amount: Money) -> Posting:
    """A Red bill payment from GOLD (or HOLDS) or cash (CASH_IN) into the Red credit line."""
    _positive(amount)
    return posting(
        payment_id,
        PostingKind.RED_BILL_PAYMENT,
        [(source, -amount), (SystemAccount.RED_FUNDING, amount)],
    )


def refund_split(
    paid: Money, bonus_part: Money, refunded_before: Money, refund: Money
) -> tuple[Money, Money]:
    """Split a refund into (to the original funding, back to bonus funding), in proportion.

    Interpretation: the bonus share is computed on the cumulative refund and rounded down, so
    partial refunds never drift and a full refund returns exactly the bonus part.
    """
    _positive(paid, "paid")
    _positive(refund, "refund")
    if refunded_before + refund > paid:
        raise ValueError(f"refunding {refunded_before + refund} of a {paid} payment")

    def bonus_upto(refunded: Money) -> int:
        return refunded.tiyn * bonus_part.tiyn // paid.tiyn

    bonus = Money(bonus_upto(refunded_before + refund) - bonus_upto(refunded_before))
    return refund - bonus, bonus


def refund_posting(
    payment_id: str, destination: Account, amount: Money, bonus_part: Money | None = None
) -> Posting:
    """A merchant refund back to the original funding (and the bonus share to bonus funding)."""
    bonus = bonus_part if bonus_part is not None else Money.zero()
    _positive(amount)
    _non_negative(bonus, "bonus_part")
    if bonus > amount:
        raise ValueError(f"bonus share {bonus} exceeds the refund {amount}")
    return posting(
        payment_id,
        PostingKind.REFUND,
        [
            (SystemAccount.REFUNDS, -amount),
            (destination, amount - bonus),
            (SystemAccount.BONUS_FUNDING, bonus),
        ],
    )


def overpayment_credit_posting(payment_id: str, customer_id: str, amount: Money) -> Posting:
    """domain §4: what remains after all Red purchases are repaid goes to the customer's Gold."""
    _positive(amount)
    return posting(
        payment_id,
        PostingKind.OVERPAYMENT_CREDIT,
        [(SystemAccount.RED_FUNDING, -amount), (CustomerAccount(customer_id, AccountType.GOLD), amount)],
    )
