"""Bill issue, overdue and penalty: the pure steps of the daily business-date job (brief §4)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from shared.money import Money

from .allocation import newly_settled_purchases
from .ledger import Ledger
from .model import PENALTY, ZERO, Bill, BillLine, Part, Purchase, RedAccount, bill_id_for
from .schedule import WorkingDays, day_after, due_at, due_date_for, is_billing_date


@dataclass(frozen=True, slots=True)
class BillIssue:
    """A bill issued on a business date, with what the carried prepayment did."""

    account: RedAccount
    bill: Bill
    limit_restored: Money = ZERO
    refunded_to_gold: Money = ZERO
    purchases_settled: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RecordOverdue:
    """Record the overdue fact in the credit history (first day after the due date, no penalty)."""

    bill_id: str
    overdue_on: date


@dataclass(frozen=True, slots=True)
class ApplyPenalty:
    """Charge the one-time penalty (second day of overdue)."""

    bill_id: str
    amount: Money
    charged_on: date


Action = RecordOverdue | ApplyPenalty


@dataclass(frozen=True, slots=True)
class BusinessDay:
    """What one business date did to one account: overdue actions first, then the bill issue."""

    account: RedAccount
    actions: tuple[Action, ...]
    issue: BillIssue | None


# ``dataclasses.replace`` for the copies the daily job makes for every account, spelled out: the
# generic one inspects the fields on each call. ``tests/unit/billing/test_copies.py`` holds
# them to ``replace`` (and fails when a field is added).
def billed(part: Part) -> Part:
    """``replace(part, billed=True)``."""
    return Part(part.number, part.amount, part.statement_date, part.paid, True)


def with_parts(p: Purchase, parts: tuple[Part, ...]) -> Purchase:
    """``replace(p, parts=parts)``."""
    return Purchase(
        p.purchase_id, p.price, p.purchased_on, parts, p.limit_held, p.refunded, p.merchant, p.partner_id
    )


def with_overdue_flags(
    b: Bill,
    *,
    overdue_recorded: bool | None = None,
    penalty_applied: bool | None = None,
    penalty: Money | None = None,
) -> Bill:
    """``replace(b, ...)`` for the overdue flags and the penalty (``None``: unchanged)."""
    return Bill(
        b.bill_id,
        b.statement_date,
        b.due_on,
        b.due_at,
        b.lines,
        b.penalty_brought_forward,
        b.carry_applied,
        b.penalty if penalty is None else penalty,
        b.paid,
        b.paid_on,
        b.overdue_recorded if overdue_recorded is None else overdue_recorded,
        b.penalty_applied if penalty_applied is None else penalty_applied,
        b.parts_paid_on,
    )


def issue_bill(account: RedAccount, business_date: date, calendar: WorkingDays) -> BillIssue | None:
    """Issue the bill due on this billing date; ``None`` when there is none or it already exists."""
    if account.closed or not is_billing_date(business_date, account.billing_day):
        return None
    bill_id = bill_id_for(account.customer_id, business_date)
    if account.bill(bill_id) is not None:
        return None  # Re-running a business date never issues a second bill.
    if account.bills and business_date < account.bills[-1].statement_date:
        # Business dates run forward (close-of-business); re-running an older date must not issue a
        # bill behind a newer one (it would bring a later penalty back onto an earlier bill).
        return None
    ledger = Ledger(account)
    # domain §4 Interpretation: the bill is issued on the billing day "for the parts that fall due in it".
    # ``<=`` lets a missed date caught up later still bill every part exactly once (``billed`` flag).
    lines: list[BillLine] = []
    for i, p in enumerate(ledger.purchases):
        due_now = [part for part in p.parts if not part.billed and part.statement_date <= business_date]
        if not due_now:
            continue
        for part in due_now:
            owed = part.owed
            if owed:
                lines.append(BillLine(p.purchase_id, part.number, owed))
        # ``x in due_now`` by value is the due test itself (an equal part is due alike), done directly.
        parts = tuple(billed(x) if not x.billed and x.statement_date <= business_date else x for x in p.parts)
        ledger.purchases[i] = with_parts(p, parts)
    # domain §4 (002 Q12370): an unpaid penalty makes the next bill larger than the customer calculated.
    brought_forward = ledger.penalty_due
    ledger.penalty_due = ZERO
    if not lines and not brought_forward:
        return None
    due_on = due_date_for(business_date, account.billing_day, calendar)
    bill = Bill(
        bill_id=bill_id,
        statement_date=business_date,
        due_on=due_on,
        due_at=due_at(due_on),
        lines=tuple(lines),
        penalty_brought_forward=brought_forward,
        # A bill holding only a penalty brought forward has no purchase part to fall overdue.
        parts_paid_on=None if lines else business_date,
    )
    ledger.bills.append(bill)
    # domain §4 (001): prepayment carried over is subtracted from the bill; what exceeds it stays carried.
    index = len(ledger.bills) - 1
    if ledger.carried:
        used = ledger.apply_to_bill(index, ledger.carried, business_date, from_carry=True)
        ledger.carried = ledger.carried - used
    elif not ledger.bills[index].owed:
        ledger.bills[index] = replace(ledger.bills[index], paid_on=business_date)
    refunded = ZERO
    if ledger.carried and ledger.nothing_owed():
        # 002 Q1516: with every purchase paid the rest goes to Kaspi Gold at once.
        refunded, ledger.carried = ledger.carried, ZERO
    after = ledger.freeze()
    return BillIssue(
        account=after,
        bill=ledger.bills[index],
        limit_restored=after.available - account.available,
        refunded_to_gold=refunded,
        purchases_settled=newly_settled_purchases(account, after),
    )


def _unpaid_at_end_of(bill: Bill, d: date) -> bool:
    """True when the bill was not fully paid with money credited on or before ``d``."""
    return bill.paid_on is None or bill.paid_on > d


def _parts_overdue_at_end_of(bill: Bill, d: date) -> bool:
    """True when the bill has purchase parts of its own still unpaid with money credited by ``d``."""
    return bool(bill.lines) and (bill.parts_paid_on is None or bill.parts_paid_on > d)


def overdue_actions(bill: Bill, business_date: date) -> list[Action]:
    """What the job must do for this bill on this date; nothing again once the flags are recorded."""
    actions: list[Action] = []
    # The due date is already rolled past weekends and holidays, so paying on the first working day
    # after a holiday due date is on time (002 Q1538). Overdue days are calendar days after it.
    first_day = day_after(bill.due_on)
    second_day = day_after(bill.due_on, 2)
    # The decision uses the credited date of the payment that settled the bill, not the job's timing:
    # a payment at 20:01 on the due date is credited the next day (002 Q1541) and is overdue.
    if business_date >= first_day and not bill.overdue_recorded and _unpaid_at_end_of(bill, bill.due_on):
        # 002 Q1513: paid the day after the due date → no penalty, but the overdue is recorded.
        actions.append(RecordOverdue(bill.bill_id, first_day))
    if business_date >= second_day and not bill.penalty_applied and _parts_overdue_at_end_of(bill, first_day):
        # 002 Q1476/Q1505: second day overdue → one-time 2,000 ₸ penalty; at most one per bill, and
        # only for the bill's own purchase parts: a penalty brought forward onto it is debt, never a
        # reason for a new penalty (docs/billing.md §4), so penalties do not compound.
        actions.append(ApplyPenalty(bill.bill_id, PENALTY, second_day))
    return actions


def apply_overdue_actions(account: RedAccount, actions: list[Action] | tuple[Action, ...]) -> RedAccount:
    """Record overdue actions on the account; an action already recorded changes nothing."""
    if not actions:
        return account  # the same snapshot a ledger round trip would rebuild
    ledger = Ledger(account)
    for action in actions:
        index = next(i for i, b in enumerate(ledger.bills) if b.bill_id == action.bill_id)
        bill = ledger.bills[index]
        if isinstance(action, RecordOverdue):
            if not bill.overdue_recorded:
                ledger.bills[index] = with_overdue_flags(bill, overdue_recorded=True)
        elif not bill.penalty_applied:
            # The penalty is owed at once and lands on the next bill if still unpaid (docs/billing.md §4).
            ledger.bills[index] = with_overdue_flags(bill, penalty_applied=True, penalty=action.amount)
            ledger.penalty_due = ledger.penalty_due + action.amount
    return ledger.freeze()


def run_business_day(account: RedAccount, business_date: date, calendar: WorkingDays) -> BusinessDay:
    """One account's close-of-business step for ``business_date``: overdue, penalty, bill issue."""
    actions: list[Action] = []
    for bill in account.bills:
        actions.extend(overdue_actions(bill, business_date))
    after = apply_overdue_actions(account, actions)
    # Overdue first, so that a penalty charged today is brought forward onto a bill issued today.
    issue = issue_bill(after, business_date, calendar)
    return BusinessDay(issue.account if issue else after, tuple(actions), issue)
