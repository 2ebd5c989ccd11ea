"""A mutable working copy of a ``RedAccount``, used inside one pure operation and then frozen."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from shared.money import Money

from .model import ZERO, Bill, Part, Purchase, RedAccount


def _min(a: Money, b: Money) -> Money:
    return a if a <= b else b


class Ledger:
    """Working state for one operation; callers never see it, they get a new frozen snapshot."""

    def __init__(self, account: RedAccount) -> None:
        """Copy the snapshot's collections so that changes stay local until ``freeze``."""
        self.base = account
        self.new_terms = account.new_terms_accepted
        self.purchases: list[Purchase] = list(account.purchases)
        self.bills: list[Bill] = list(account.bills)
        self.carried = account.carried
        self.penalty_due = account.penalty_due
        self.cancelled: set[str] = set(account.cancelled_purchase_ids)

    # -- purchases ------------------------------------------------------------------------------
    def index_of(self, purchase_id: str) -> int:
        """Position of a live purchase."""
        for i, p in enumerate(self.purchases):
            if p.purchase_id == purchase_id:
                return i
        raise KeyError(purchase_id)

    def get(self, purchase_id: str) -> Purchase:
        """A live purchase by id."""
        return self.purchases[self.index_of(purchase_id)]

    def put(self, purchase: Purchase) -> None:
        """Replace a purchase, re-deriving how much limit it still holds."""
        self.purchases[self.index_of(purchase.purchase_id)] = self.rehold(purchase)

    def rehold(self, p: Purchase) -> Purchase:
        """Apply the limit rule to a purchase after its parts changed."""
        if p.settled:
            # domain §4 (002 Q1511): paying the fourth part raises the available amount by the whole
            # purchase price: the purchase releases all the limit it still holds.
            return replace(p, limit_held=ZERO)
        if not self.new_terms and p.limit_held > p.outstanding:
            # domain §4 (002 Q13488): old terms restore the limit at once by the principal paid.
            return replace(p, limit_held=p.outstanding)
        return p

    def pay_part(self, purchase_id: str, part_no: int, money: Money) -> Money:
        """Pay up to ``money`` on one part; returns what was used."""
        p = self.get(purchase_id)
        part = p.part(part_no)
        used = _min(money, part.owed)
        if not used:
            return ZERO
        parts = tuple(replace(x, paid=x.paid + used) if x.number == part_no else x for x in p.parts)
        self.put(replace(p, parts=parts))
        return used

    def pay_purchase_in_full(self, purchase_id: str) -> Money:
        """Pay every part of a purchase, next part first (so the fourth is paid last)."""
        paid = ZERO
        for part in self.get(purchase_id).parts:
            paid = paid + self.pay_part(purchase_id, part.number, part.owed)
        return paid

    def reduce_from_last(self, purchase_id: str, money: Money) -> Money:
        """Lower the unpaid, unbilled parts from the fourth part backwards; returns the reduction."""
        p = self.get(purchase_id)
        left = money
        new_parts: list[Part] = []
        for part in reversed(p.parts):
            cut = ZERO if part.billed else _min(left, part.owed)
            left = left - cut
            new_parts.append(replace(part, amount=part.amount - cut) if cut else part)
        reduced = money - left
        self.put(replace(p, parts=tuple(reversed(new_parts))))
        return reduced

    # -- bills ----------------------------------------------------------------------------------
    def apply_to_bill(self, index: int, money: Money, on: date, *, from_carry: bool = False) -> Money:
        """Apply up to ``money`` to a bill: its lines in order, then the penalty brought forward."""
        bill = self.bills[index]
        left = _min(money, bill.owed)
        principal = _min(left, bill.principal_owed)
        rest = principal
        for line in bill.lines:
            if not rest:
                break
            rest = rest - self.pay_part(line.purchase_id, line.part_no, rest)
        if rest:
            raise AssertionError(f"bill {bill.bill_id} lines and purchase parts disagree by {rest}")
        used = left
        if from_carry:
            bill = replace(bill, carry_applied=bill.carry_applied + used)
        else:
            bill = replace(bill, paid=bill.paid + used)
        if bill.settled and bill.paid_on is None:
            # The credited business date decides overdue and penalty (domain §4, 20:00 cut-off).
            bill = replace(bill, paid_on=on)
        if bill.parts_paid_on is None and not bill.principal_owed:
            # The date the bill's own purchase parts were paid decides the penalty (docs/billing.md §4).
            bill = replace(bill, parts_paid_on=on)
        self.bills[index] = bill
        return used

    # -- whole account --------------------------------------------------------------------------
    def nothing_owed(self) -> bool:
        """True when every purchase is repaid and no bill or penalty is unpaid."""
        return (
            all(p.settled for p in self.purchases)
            and all(b.settled for b in self.bills)
            and not self.penalty_due
        )

    def freeze(self) -> RedAccount:
        """The new immutable snapshot."""
        base = self.base
        return RedAccount(
            customer_id=base.customer_id,
            limit=base.limit,
            opened_on=base.opened_on,
            billing_day=base.billing_day,
            new_terms_accepted=base.new_terms_accepted,
            purchases=tuple(self.purchases),
            bills=tuple(self.bills),
            carried=self.carried,
            penalty_due=self.penalty_due,
            cancelled_purchase_ids=frozenset(self.cancelled),
            closed=base.closed,
        )
