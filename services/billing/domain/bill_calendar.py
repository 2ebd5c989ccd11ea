"""The bill calendar: month by month, the bills issued and the bills to come (seed 002, Q1486, Q15762).

"Мой Банк → Kaspi Red → Инфо → Календарь счетов. Нажмите на нужный месяц, чтобы увидеть детали
счёта": which purchases and which amounts each bill holds (Q1486), and so the amount of the next
bill before it is issued (Q15762). Pure: computed from the account snapshot alone.

A coming bill is projected with the very rule that will issue it (``issue_bill``) run forward on a
copy of the account, billing date by billing date, so the calendar cannot disagree with the bill
later issued unless something happens in between: a purchase, a repayment, a refund, or a penalty
charged after the projection (the projection assumes the open bills are paid on time). A penalty
already charged and not yet billed is on the next bill; a carried prepayment is subtracted from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from shared.money import Money

from .bills import issue_bill
from .model import ZERO, Bill, RedAccount, total
from .schedule import PLAN_PARTS, WorkingDays, next_billing_date

#: A guard on the projection: every part is billed within four billing dates of its purchase
#: (``PLAN_PARTS``), and the loop stops as soon as nothing is left to bill.
MAX_PROJECTED_MONTHS = 6 * PLAN_PARTS


class MonthStatus(StrEnum):
    """Where a month's bill stands."""

    #: Issued and paid in full.
    PAID = "PAID"
    #: Issued, not paid in full, not yet past its due date.
    OPEN = "OPEN"
    #: Issued, not paid in full, past its due date (the overdue is recorded).
    OVERDUE = "OVERDUE"
    #: Not issued yet: what it will be if nothing else happens before its billing date.
    UPCOMING = "UPCOMING"


@dataclass(frozen=True, slots=True)
class CalendarLine:
    """One purchase part on a month's bill; ``price`` and ``purchased_on`` name the purchase."""

    purchase_id: str
    part_no: int
    amount: Money
    price: Money | None
    purchased_on: date | None


@dataclass(frozen=True, slots=True)
class CalendarMonth:
    """One month of the calendar: a bill issued or to come, its parts, penalty and amount."""

    statement_date: date
    due_on: date
    due_at: datetime
    status: MonthStatus
    lines: tuple[CalendarLine, ...]
    #: The unpaid penalty brought forward onto this bill (002 Q12370).
    penalty: Money
    #: The carried prepayment subtracted from this bill (001).
    prepayment: Money
    #: The amount announced at issue, or for an upcoming bill the amount it will be issued with.
    amount: Money
    #: What is still to pay on it (an upcoming bill: its amount).
    owed: Money
    #: The domain bill id (``customer:statement-date``) of an issued bill; ``None`` when upcoming.
    bill_id: str | None = None
    #: The one-time penalty charged because this bill was paid late (it is owed on a later bill).
    penalty_charged: Money = ZERO

    @property
    def principal(self) -> Money:
        """The purchase parts of the month."""
        return total([line.amount for line in self.lines])


@dataclass(frozen=True, slots=True)
class BillCalendar:
    """A customer's bill calendar as of a closed business date, oldest month first."""

    customer_id: str
    as_of: date
    months: tuple[CalendarMonth, ...]

    @property
    def issued(self) -> tuple[CalendarMonth, ...]:
        """The months whose bill has been issued."""
        return tuple(m for m in self.months if m.status is not MonthStatus.UPCOMING)

    @property
    def upcoming(self) -> tuple[CalendarMonth, ...]:
        """The bills still to come, as they will be issued if nothing else happens."""
        return tuple(m for m in self.months if m.status is MonthStatus.UPCOMING)

    @property
    def next_bill(self) -> CalendarMonth | None:
        """The next bill to be issued (Q15762: its amount is known in advance), if any."""
        upcoming = self.upcoming
        return upcoming[0] if upcoming else None


def _lines(account: RedAccount, bill: Bill) -> tuple[CalendarLine, ...]:
    out: list[CalendarLine] = []
    for line in bill.lines:
        purchase = account.purchase(line.purchase_id)
        out.append(
            CalendarLine(
                purchase_id=line.purchase_id,
                part_no=line.part_no,
                amount=line.amount,
                price=purchase.price if purchase is not None else None,
                purchased_on=purchase.purchased_on if purchase is not None else None,
            )
        )
    return tuple(out)


def _issued(account: RedAccount, bill: Bill, as_of: date) -> CalendarMonth:
    if bill.settled:
        status = MonthStatus.PAID
    elif bill.overdue_recorded or as_of > bill.due_on:
        status = MonthStatus.OVERDUE
    else:
        status = MonthStatus.OPEN
    return CalendarMonth(
        statement_date=bill.statement_date,
        due_on=bill.due_on,
        due_at=bill.due_at,
        status=status,
        lines=_lines(account, bill),
        penalty=bill.penalty_brought_forward,
        prepayment=bill.carry_applied,
        amount=bill.amount,
        owed=bill.owed,
        bill_id=bill.bill_id,
        penalty_charged=bill.penalty,
    )


def _upcoming(account: RedAccount, bill: Bill) -> CalendarMonth:
    return CalendarMonth(
        statement_date=bill.statement_date,
        due_on=bill.due_on,
        due_at=bill.due_at,
        status=MonthStatus.UPCOMING,
        lines=_lines(account, bill),
        penalty=bill.penalty_brought_forward,
        prepayment=bill.carry_applied,
        amount=bill.amount,
        owed=bill.amount,
    )


def _left_to_bill(account: RedAccount) -> bool:
    """True while an unpaid part is not yet on a bill or a charged penalty waits for the next one."""
    return bool(account.penalty_due) or any(
        not part.billed and part.owed for purchase in account.purchases for part in purchase.parts
    )


def bill_calendar(account: RedAccount, as_of: date, calendar: WorkingDays) -> BillCalendar:
    """The calendar of ``account`` whose business days are closed through ``as_of``.

    Every issued bill (paid, open or overdue), then each coming billing date after ``as_of`` on
    which a bill will be issued, projected with ``issue_bill`` itself: its parts, the penalty brought
    forward, the carried prepayment subtracted, its amount and due date. Nothing is projected for a
    closed account.
    """
    months = [_issued(account, bill, as_of) for bill in account.bills]
    projected = account
    d = as_of
    for _ in range(MAX_PROJECTED_MONTHS):
        if projected.closed or not _left_to_bill(projected):
            break
        d = next_billing_date(d, projected.billing_day)
        issue = issue_bill(projected, d, calendar)
        if issue is None:
            continue
        projected = issue.account
        months.append(_upcoming(projected, issue.bill))
    return BillCalendar(account.customer_id, as_of, tuple(months))
