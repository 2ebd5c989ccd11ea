"""Kaspi Red value objects: purchase plans, bills and the account snapshot (domain brief §4)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Final

from shared.money import MAX_TIYN, Money

# domain §4 (002 Q1505): "on the second day of overdue a one-time penalty of 2,000 ₸ is charged".
PENALTY: Final = Money.of_tenge(2000)
ZERO: Final = Money.zero()


def total(amounts: list[Money] | tuple[Money, ...]) -> Money:
    """Sum of amounts (zero for none)."""
    for amount in amounts:
        if not isinstance(amount, Money):
            raise TypeError(f"cannot combine Money with {type(amount).__name__}")
    return sum_tiyn([amount.tiyn for amount in amounts])


def in_range(tiyn: int) -> int:
    """``tiyn`` itself if ``Money`` can hold it; else the ``MoneyRangeError`` ``Money(tiyn)`` raises."""
    if not -MAX_TIYN <= tiyn <= MAX_TIYN:
        Money(tiyn)
    return tiyn


def money(tiyn: int) -> Money:
    """``Money(tiyn)``, sharing the ``ZERO`` instance (amounts are immutable values)."""
    return Money(tiyn) if tiyn else ZERO


def sum_int(values: list[int]) -> int:
    """The sum of tiyn amounts, range-checked like ``Money`` arithmetic at every step.

    The hot properties below sum plain ints instead of building a ``Money`` per term and per
    partial sum; every term and every partial sum is still held to ``Money``'s range.
    """
    acc = 0
    for v in values:
        acc = in_range(acc + in_range(v))
    return acc


def sum_tiyn(values: list[int]) -> Money:
    """``Money`` of the sum of tiyn amounts (see ``sum_int``)."""
    return money(sum_int(values))


@dataclass(frozen=True, slots=True)
class Part:
    """One of a plan's four parts: what it asks, what is paid, the bill it falls due in."""

    number: int
    amount: Money
    statement_date: date
    paid: Money = ZERO
    billed: bool = False

    @property
    def owed(self) -> Money:
        """What is still unpaid on this part."""
        return self.amount - self.paid


@dataclass(frozen=True, slots=True)
class Purchase:
    """A Red purchase and its four-part plan; ``limit_held`` is the limit it still takes up."""

    purchase_id: str
    price: Money
    purchased_on: date
    parts: tuple[Part, ...]
    limit_held: Money
    refunded: Money = ZERO
    # What the customer knows the purchase by (RedPurchaseRequested's merchant and partner): printed
    # on its bill lines, never used by a rule. None for plans stored before billing kept them.
    merchant: str | None = None
    partner_id: str | None = None

    @property
    def outstanding(self) -> Money:
        """Unpaid principal over all parts, billed or not."""
        return money(self._outstanding_tiyn())

    def _outstanding_tiyn(self) -> int:
        return sum_int([p.amount.tiyn - p.paid.tiyn for p in self.parts])

    @property
    def settled(self) -> bool:
        """True when nothing is owed on any part (the fourth part included)."""
        return not self._outstanding_tiyn()

    def part(self, number: int) -> Part:
        """The part with this number (1..4)."""
        for p in self.parts:
            if p.number == number:
                return p
        raise KeyError(f"purchase {self.purchase_id} has no part {number}")


@dataclass(frozen=True, slots=True)
class BillLine:
    """A line of a bill: which purchase, which part, how much was billed for it."""

    purchase_id: str
    part_no: int
    amount: Money


@dataclass(frozen=True, slots=True)
class Bill:
    """A monthly Red bill; money applied to it pays its lines first, then the penalty brought forward."""

    bill_id: str
    statement_date: date
    due_on: date
    due_at: datetime
    lines: tuple[BillLine, ...]
    penalty_brought_forward: Money = ZERO
    carry_applied: Money = ZERO
    penalty: Money = ZERO
    paid: Money = ZERO
    paid_on: date | None = None
    overdue_recorded: bool = False
    penalty_applied: bool = False
    # The credited date by which the bill's own purchase parts were paid in full (its penalty brought
    # forward aside); set at issue for a bill without parts. The penalty rule reads it (bills.py).
    parts_paid_on: date | None = None

    @property
    def principal(self) -> Money:
        """Sum of the purchase parts billed."""
        return money(self._principal_tiyn())

    def _principal_tiyn(self) -> int:
        return sum_int([line.amount.tiyn for line in self.lines])

    @property
    def amount(self) -> Money:
        """The amount announced at issue: parts + unpaid penalty brought forward − prepayment."""
        return money(in_range(self._charges_tiyn() - self.carry_applied.tiyn))

    # The int forms below do the ``Money`` arithmetic of the properties step by step on tiyn (each
    # intermediate range-checked): these run for every bill of every account each business day.
    def _charges_tiyn(self) -> int:
        return in_range(self._principal_tiyn() + self.penalty_brought_forward.tiyn)

    def _applied_tiyn(self) -> int:
        return in_range(self.carry_applied.tiyn + self.paid.tiyn)

    def _owed_tiyn(self) -> int:
        return in_range(self._charges_tiyn() - self._applied_tiyn())

    @property
    def charges(self) -> Money:
        """Everything this bill asks for: its parts and the penalty brought forward."""
        # ``penalty`` is the penalty charged because *this* bill was late; it is owed at once on the
        # account (``RedAccount.penalty_due``) and appears on the next bill, not on this one.
        return money(self._charges_tiyn())

    @property
    def applied(self) -> Money:
        """Prepayment applied at issue plus repayments since."""
        return money(self._applied_tiyn())

    @property
    def owed(self) -> Money:
        """What is still unpaid on this bill."""
        return money(self._owed_tiyn())

    @property
    def principal_owed(self) -> Money:
        """Unpaid purchase parts (money pays the lines before the penalties)."""
        rest = self.principal - self.applied
        return rest if rest > ZERO else ZERO

    @property
    def penalty_owed(self) -> Money:
        """Unpaid penalty brought forward onto this bill."""
        return self.owed - self.principal_owed

    @property
    def settled(self) -> bool:
        """True when nothing is owed on this bill."""
        return not self._owed_tiyn()


@dataclass(frozen=True, slots=True)
class RedAccount:
    """Snapshot of one customer's Kaspi Red: limit, plans, bills, carried prepayment, unbilled penalty."""

    customer_id: str
    limit: Money
    opened_on: date
    billing_day: int
    new_terms_accepted: bool
    purchases: tuple[Purchase, ...] = ()
    bills: tuple[Bill, ...] = ()
    carried: Money = ZERO
    penalty_due: Money = ZERO
    cancelled_purchase_ids: frozenset[str] = field(default_factory=frozenset)
    closed: bool = False

    @property
    def limit_held(self) -> Money:
        """Limit taken up by purchases (new terms: until fully repaid; old terms: unpaid principal)."""
        return sum_tiyn([p.limit_held.tiyn for p in self.purchases])

    @property
    def available(self) -> Money:
        """Available amount for purchases: limit − held principal, within ``[0, limit]``."""
        # In tiyn, each step range-checked as the ``Money`` arithmetic it stands for.
        held = sum_int([p.limit_held.tiyn for p in self.purchases])
        if not self.new_terms_accepted:
            # domain §4 (002 Q13488/Q1516): without the new terms "the limit is restored at once by the
            # amount paid"; money carried to the next bill is paid money too, so it counts here.
            held = in_range(held - self.carried.tiyn)
            held = held if held > 0 else 0
        rest = in_range(self.limit.tiyn - held)
        # Only reachable after an old-terms customer with carried prepayment accepts the new terms
        # (carried money stops counting): the available amount is then zero, never negative.
        return money(rest) if rest > 0 else ZERO

    @property
    def outstanding(self) -> Money:
        """Everything owed: unpaid principal, unpaid penalties on bills and the penalty not yet billed."""
        principal = sum_tiyn([p.outstanding.tiyn for p in self.purchases])
        return principal + total([b.penalty_owed for b in self.bills]) + self.penalty_due

    @property
    def open_bills(self) -> tuple[Bill, ...]:
        """Bills with something still owed, oldest first."""
        return tuple(b for b in self.bills if not b.settled)

    def purchase(self, purchase_id: str) -> Purchase | None:
        """The purchase with this id, if it has a live plan."""
        for p in self.purchases:
            if p.purchase_id == purchase_id:
                return p
        return None

    def bill(self, bill_id: str) -> Bill | None:
        """The bill with this id, if issued."""
        for b in self.bills:
            if b.bill_id == bill_id:
                return b
        return None


def bill_id_for(customer_id: str, statement_date: date) -> str:
    """Deterministic bill id, so re-running a business date cannot issue a second bill."""
    return f"{customer_id}:{statement_date.isoformat()}"
