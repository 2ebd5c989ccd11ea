"""Repayment allocation as an ordered rule list, Fineract style (domain brief §4, 002 Q2184/Q1516)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from shared.money import Money

from .ledger import Ledger
from .model import ZERO, RedAccount, total


@dataclass(frozen=True, slots=True)
class Allocation:
    """Where one repayment went; ``paid = to_bills + to_penalty + to_purchases + carried + refunded``."""

    paid: Money
    credited_on: date
    to_bills: Money = ZERO
    to_penalty: Money = ZERO
    to_purchases: Mapping[str, Money] = field(default_factory=dict)
    carried: Money = ZERO
    carried_balance: Money = ZERO
    refunded_to_gold: Money = ZERO
    limit_restored: Money = ZERO
    bills_settled: tuple[str, ...] = ()
    purchases_settled: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Money never vanishes nor appears: every tiyn paid is placed somewhere (RepaymentApplied
        # checks the same sum on the wire; here a wrong allocation fails before it is stored).
        placed = (
            self.to_bills + self.to_penalty + self.to_purchases_total + self.carried + self.refunded_to_gold
        )
        if placed != self.paid:
            raise ValueError(f"an allocation of {self.paid} places {placed}")

    @property
    def to_purchases_total(self) -> Money:
        """Early repayment over all purchases."""
        return total(list(self.to_purchases.values()))


@dataclass(frozen=True, slots=True)
class Repayment:
    """The account after a repayment and the allocation breakdown."""

    account: RedAccount
    allocation: Allocation


@dataclass(frozen=True, slots=True)
class _Split:
    to_bills: Money
    to_penalty: Money
    to_purchases: dict[str, Money]
    carried: Money
    refunded: Money


def run_waterfall(ledger: Ledger, money: Money, credited_on: date) -> _Split:
    """Apply ``money`` plus any carried prepayment through the ordered rules; mutate ``ledger``."""
    carried_before = ledger.carried
    # Earlier prepayment joins the pool: with it, everything may now be repaid (→ Gold at once).
    pool = money + carried_before
    ledger.carried = ZERO

    # Rule 1 (002 Q2184): "first the monthly bill" — every issued unpaid bill, oldest first, its parts
    # before the penalty brought forward onto it; then the penalty charged but not yet billed.
    # The penalty not yet billed belongs to the overdue bill that caused it, so it is paid right after
    # that bill ("oldest bill first, with its penalty") and before any newer bill.
    penalised = [i for i, b in enumerate(ledger.bills) if b.penalty_applied]
    penalty_after = penalised[-1] if ledger.penalty_due and penalised else -1
    to_bills = ZERO
    to_penalty = ZERO
    for i in range(-1, len(ledger.bills)):
        if i >= 0 and pool and not ledger.bills[i].settled:
            used = ledger.apply_to_bill(i, pool, credited_on)
            to_bills = to_bills + used
            pool = pool - used
        if i == penalty_after:
            to_penalty = pool if pool <= ledger.penalty_due else ledger.penalty_due
            ledger.penalty_due = ledger.penalty_due - to_penalty
            pool = pool - to_penalty

    # Rule 2 (002 Q2184): "then the purchases, from old to new". A purchase the money repays in full is
    # repaid now (its limit comes back, 002 Q1516); the first one it cannot repay in full stops the walk
    # (no skipping to a newer one) and the rest is carried (rule 4).
    to_purchases: dict[str, Money] = {}
    if all(b.settled for b in ledger.bills):
        for purchase in list(ledger.purchases):
            rest = purchase.outstanding
            if not rest:
                continue
            if rest > pool:
                break
            to_purchases[purchase.purchase_id] = ledger.pay_purchase_in_full(purchase.purchase_id)
            pool = pool - rest

    # Rule 3 (002 Q2184/Q1516): once ALL Red purchases are repaid, the rest goes to Kaspi Gold at once.
    refunded = ZERO
    if pool and ledger.nothing_owed():
        refunded, pool = pool, ZERO
    # Rule 4 (001, 002 Q1516/Q13066): otherwise it counts toward the next bill.
    ledger.carried = pool
    return _Split(to_bills, to_penalty, to_purchases, ledger.carried - carried_before, refunded)


def allocate_repayment(account: RedAccount, amount: Money, credited_on: date) -> Repayment:
    """Allocate a Red repayment credited on ``credited_on`` (the 20:00 cut-off already applied)."""
    if amount <= ZERO:
        raise ValueError(f"a repayment must be positive, got {amount}")
    if account.closed:
        # Money never vanishes: a repayment reaching a closed Red goes back to Gold.
        return Repayment(account, Allocation(amount, credited_on, refunded_to_gold=amount))
    ledger = Ledger(account)
    split = run_waterfall(ledger, amount, credited_on)
    after = ledger.freeze()
    allocation = Allocation(
        paid=amount,
        credited_on=credited_on,
        to_bills=split.to_bills,
        to_penalty=split.to_penalty,
        to_purchases=split.to_purchases,
        carried=split.carried,
        carried_balance=after.carried,
        refunded_to_gold=split.refunded,
        limit_restored=after.available - account.available,
        bills_settled=newly_settled_bills(account, after),
        purchases_settled=newly_settled_purchases(account, after),
    )
    return Repayment(after, allocation)


def newly_settled_bills(before: RedAccount, after: RedAccount) -> tuple[str, ...]:
    """Bills settled in ``after`` that were not settled in ``before``."""
    was = {b.bill_id for b in before.bills if b.settled}
    return tuple(b.bill_id for b in after.bills if b.settled and b.bill_id not in was)


def newly_settled_purchases(before: RedAccount, after: RedAccount) -> tuple[str, ...]:
    """Purchases fully repaid in ``after`` that still owed something in ``before``."""
    owing = {p.purchase_id for p in before.purchases if not p.settled}
    if not owing:
        return ()
    return tuple(p.purchase_id for p in after.purchases if p.purchase_id in owing and p.settled)
