"""The bill calendar (seed 002, Q1486, Q15762; docs/billing.md §8): month by month, the parts and
amount of each bill, and the next bill's amount known before it is issued."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from services.billing.domain import (
    PENALTY,
    ApplyPenalty,
    Bill,
    BillCalendar,
    MonthStatus,
    PurchaseApproved,
    RedAccount,
    allocate_repayment,
    approve_purchase,
    bill_calendar,
    close_account,
    open_account,
    run_business_day,
)
from services.billing.domain.purchases import AccountClosed
from shared.money import Money

from .conftest import FakeCalendar, run_days, tenge

pytestmark = pytest.mark.unit

CAL = FakeCalendar(frozenset({date(2025, 3, 21), date(2025, 5, 1), date(2025, 5, 9)}))
OPENED = date(2025, 1, 10)


def buy(account: RedAccount, pid: str, price: int, on: date) -> RedAccount:
    result = approve_purchase(account, pid, tenge(price), on)
    assert isinstance(result, PurchaseApproved)
    return result.account


def fresh() -> RedAccount:
    return open_account("c1", tenge(500_000), OPENED, new_terms_accepted=True)


def amounts(cal: BillCalendar) -> list[tuple[date, MonthStatus, Money]]:
    return [(m.statement_date, m.status, m.amount) for m in cal.months]


def test_a_purchase_shows_its_four_parts_month_by_month_before_any_bill() -> None:
    # Q1486: "какие суммы и за какие покупки входят в счёт", one month at a time.
    account = buy(fresh(), "p1", 40_001, date(2025, 1, 12))
    cal = bill_calendar(account, date(2025, 1, 20), CAL)
    assert cal.issued == ()
    assert amounts(cal) == [
        (date(2025, 2, 10), MonthStatus.UPCOMING, Money(1_000_025)),  # remainder tiyn on part 1
        (date(2025, 3, 10), MonthStatus.UPCOMING, Money(1_000_025)),
        (date(2025, 4, 10), MonthStatus.UPCOMING, Money(1_000_025)),
        (date(2025, 5, 10), MonthStatus.UPCOMING, Money(1_000_025)),
    ]
    lines = [ln for m in cal.months for ln in m.lines]
    assert [(ln.purchase_id, ln.part_no, ln.price, ln.purchased_on) for ln in lines] == [
        ("p1", k, tenge(40_001), date(2025, 1, 12)) for k in (1, 2, 3, 4)
    ]
    # Due on the next billing date, moved off the weekend (10 May 2025 is a Saturday → 12 May).
    assert [m.due_on for m in cal.months] == [date(2025, 3, 10), date(2025, 4, 10), date(2025, 5, 12),
                                              date(2025, 6, 10)]  # fmt: skip
    # Q15762: the next bill's amount, known in advance, is the bill then issued.
    assert cal.next_bill is cal.months[0]
    account, _ = run_days(account, date(2025, 1, 11), date(2025, 2, 10), CAL)
    issued = account.bills[0]
    assert (issued.statement_date, issued.amount, issued.due_at) == (
        cal.months[0].statement_date,
        cal.months[0].amount,
        cal.months[0].due_at,
    )


def test_two_purchases_share_a_month_and_the_calendar_follows_the_bills() -> None:
    account = buy(fresh(), "p1", 40_000, date(2025, 1, 12))
    account, _ = run_days(account, date(2025, 1, 11), date(2025, 2, 12), CAL)
    account = buy(account, "p2", 20_000, date(2025, 2, 12))  # after February's bill: from March on
    account, _ = run_days(account, date(2025, 2, 13), date(2025, 2, 20), CAL)
    cal = bill_calendar(account, date(2025, 2, 20), CAL)
    assert amounts(cal) == [
        (date(2025, 2, 10), MonthStatus.OPEN, tenge(10_000)),
        (date(2025, 3, 10), MonthStatus.UPCOMING, tenge(15_000)),
        (date(2025, 4, 10), MonthStatus.UPCOMING, tenge(15_000)),
        (date(2025, 5, 10), MonthStatus.UPCOMING, tenge(15_000)),
        (date(2025, 6, 10), MonthStatus.UPCOMING, tenge(5_000)),
    ]
    march = cal.months[1]
    assert [(ln.purchase_id, ln.part_no, ln.amount) for ln in march.lines] == [
        ("p1", 2, tenge(10_000)),
        ("p2", 1, tenge(5_000)),
    ]
    assert march.principal == tenge(15_000)
    assert march.bill_id is None
    assert cal.months[0].bill_id == "c1:2025-02-10"


def test_a_prepayment_is_subtracted_from_the_next_bill_in_the_calendar() -> None:
    # Seed 001: a bill of 15,000 paid with 20,000 → the next bill is 5,000 smaller: 10,000.
    account = buy(fresh(), "p1", 60_000, date(2025, 1, 12))
    account, _ = run_days(account, date(2025, 1, 11), date(2025, 2, 10), CAL)
    account = allocate_repayment(account, tenge(20_000), date(2025, 2, 11)).account
    cal = bill_calendar(account, date(2025, 2, 11), CAL)
    assert cal.months[0].status is MonthStatus.PAID
    nxt = cal.next_bill
    assert nxt is not None
    assert (nxt.statement_date, nxt.amount, nxt.prepayment, nxt.owed) == (
        date(2025, 3, 10),
        tenge(10_000),
        tenge(5_000),
        tenge(10_000),
    )
    assert [m.amount for m in cal.upcoming[1:]] == [tenge(15_000), tenge(15_000)]
    account, _ = run_days(account, date(2025, 2, 12), date(2025, 3, 10), CAL)
    assert account.bills[-1].amount == tenge(10_000)


def test_a_penalty_already_charged_makes_the_next_bill_larger_by_2000() -> None:
    # Q12370: "why is my bill larger than I calculated": the one-time penalty was added.
    account = buy(fresh(), "p1", 40_000, date(2025, 1, 12))
    account, _ = run_days(account, date(2025, 1, 11), date(2025, 3, 12), CAL)
    cal = bill_calendar(account, date(2025, 3, 12), CAL)
    february, march, april = cal.months[:3]
    assert (february.status, february.penalty_charged, february.owed) == (
        MonthStatus.OVERDUE,
        PENALTY,
        tenge(10_000),
    )
    assert march.status is MonthStatus.OPEN
    assert (april.status, april.penalty, april.amount) == (MonthStatus.UPCOMING, PENALTY, tenge(12_000))
    account, _ = run_days(account, date(2025, 3, 13), date(2025, 4, 10), CAL)
    assert (account.bills[-1].amount, account.bills[-1].penalty_brought_forward) == (tenge(12_000), PENALTY)
    # Paid with its penalty: the coming bills are back to the parts alone.
    paid = allocate_repayment(account, tenge(22_000), date(2025, 4, 10)).account
    assert [m.amount for m in bill_calendar(paid, date(2025, 4, 10), CAL).upcoming] == [tenge(10_000)]


def test_nothing_to_come_when_everything_is_repaid_or_red_is_closed() -> None:
    account = buy(fresh(), "p1", 40_000, date(2025, 1, 12))
    account, _ = run_days(account, date(2025, 1, 11), date(2025, 2, 10), CAL)
    repaid = allocate_repayment(account, tenge(40_000), date(2025, 2, 11)).account
    cal = bill_calendar(repaid, date(2025, 2, 11), CAL)
    assert (cal.next_bill, [m.status for m in cal.months]) == (None, [MonthStatus.PAID])
    closed = close_account(repaid)
    assert isinstance(closed, AccountClosed)
    assert bill_calendar(closed.account, date(2025, 2, 11), CAL).upcoming == ()
    assert bill_calendar(fresh(), OPENED, CAL).months == ()


def test_the_calendar_projects_from_the_closed_business_date_not_the_wall_clock() -> None:
    # A billing date whose job has not run yet is still to come, even if the day has begun.
    account = buy(fresh(), "p1", 40_000, date(2025, 1, 12))
    account, _ = run_days(account, date(2025, 1, 11), date(2025, 2, 9), CAL)
    nxt = bill_calendar(account, date(2025, 2, 9), CAL).next_bill
    assert nxt is not None
    assert nxt.statement_date == date(2025, 2, 10)
    account = run_business_day(account, date(2025, 2, 10), CAL).account
    after = bill_calendar(account, date(2025, 2, 10), CAL)
    assert after.issued[0].statement_date == date(2025, 2, 10)
    assert after.next_bill is not None
    assert after.next_bill.statement_date == date(2025, 3, 10)


def test_projecting_changes_nothing_on_the_account() -> None:
    account = buy(fresh(), "p1", 40_000, date(2025, 1, 12))
    account, _ = run_days(account, date(2025, 1, 11), date(2025, 3, 12), CAL)
    snapshot = account
    bill_calendar(account, date(2025, 3, 12), CAL)
    assert account == snapshot


# ------------------------------------------------------------------------------------------ property
@dataclass(frozen=True)
class Step:
    """After ``wait`` business days: buy, repay, or only look at the calendar."""

    wait: int
    kind: str
    amount: int


steps = st.lists(
    st.builds(
        Step,
        wait=st.integers(0, 40),
        kind=st.sampled_from(["buy", "buy", "pay", "pay", "look"]),
        amount=st.integers(1, 60_000_00),
    ),
    min_size=1,
    max_size=14,
)


def _check_against_the_future(account: RedAccount, today: date) -> None:
    """The calendar as of ``today`` against what the daily job really does with nothing new."""
    cal = bill_calendar(account, today, CAL)
    assert [m.bill_id for m in cal.issued] == [b.bill_id for b in account.bills]
    assert [m.amount for m in cal.issued] == [b.amount for b in account.bills]
    statements = [m.statement_date for m in cal.months]
    assert statements == sorted(set(statements))
    assert all(m.statement_date > today for m in cal.upcoming)
    future, d, penalties = account, today, 0
    horizon = (cal.upcoming[-1].statement_date if cal.upcoming else today) + timedelta(days=70)
    issued: dict[date, Bill] = {}
    while d < horizon:
        d += timedelta(days=1)
        day = run_business_day(future, d, CAL)
        future = day.account
        if day.issue is not None:
            issued[d] = day.issue.bill
            if cal.next_bill is not None and d == cal.next_bill.statement_date:
                # Q15762: the next bill's amount known in advance; only a penalty charged in between
                # (an open bill not paid on time; the projection assumes it is) can add to it.
                bill = day.issue.bill
                nxt = cal.next_bill
                assert [(ln.purchase_id, ln.part_no, ln.amount) for ln in bill.lines] == [
                    (ln.purchase_id, ln.part_no, ln.amount) for ln in nxt.lines
                ]
                assert (bill.due_on, bill.due_at) == (nxt.due_on, nxt.due_at)
                assert bill.carry_applied == nxt.prepayment
                assert bill.penalty_brought_forward == nxt.penalty + PENALTY * penalties
                assert bill.amount == nxt.amount + PENALTY * penalties
                event("next bill exact" if not penalties else "next bill + penalty charged in between")
        if cal.next_bill is not None and d < cal.next_bill.statement_date:
            penalties += sum(isinstance(a, ApplyPenalty) for a in day.actions)
    # Every upcoming month is issued on its date with the same parts and due date; a bill the
    # calendar does not show holds only penalties charged after it was computed.
    for month in cal.upcoming:
        came = issued.get(month.statement_date)
        assert came is not None, f"no bill issued on {month.statement_date}"
        assert [(ln.purchase_id, ln.part_no, ln.amount) for ln in came.lines] == [
            (ln.purchase_id, ln.part_no, ln.amount) for ln in month.lines
        ]
        assert came.due_on == month.due_on
    shown = {m.statement_date for m in cal.upcoming}
    assert all(not came.lines for d, came in issued.items() if d not in shown)


@settings(max_examples=80, deadline=None)
@given(steps, st.integers(1, 31))
def test_the_calendar_shows_exactly_the_bills_the_job_will_issue(ops: list[Step], opened_day: int) -> None:
    opened = date(2025, 1, opened_day)
    account = open_account("c1", tenge(1_000_000), opened, new_terms_accepted=True)
    today = opened
    for n, op in enumerate(ops):
        for _ in range(op.wait):
            today += timedelta(days=1)
            account = run_business_day(account, today, CAL).account
        if op.kind == "buy":
            result = approve_purchase(account, f"p{n}", Money(op.amount), today)
            if isinstance(result, PurchaseApproved):
                account = result.account
        elif op.kind == "pay":
            account = allocate_repayment(account, Money(op.amount), today).account
        _check_against_the_future(account, today)
