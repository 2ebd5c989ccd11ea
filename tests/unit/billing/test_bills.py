"""Bill issue, overdue and penalty on business dates (domain brief §4)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.billing.domain import (
    PENALTY,
    Action,
    ApplyPenalty,
    PurchaseApproved,
    RecordOverdue,
    RedAccount,
    allocate_repayment,
    approve_purchase,
    issue_bill,
    open_account,
    overdue_actions,
    run_business_day,
)
from shared.clock import ALMATY, credited_business_date
from shared.money import Money

from .conftest import FakeCalendar, days, run_days, tenge

pytestmark = pytest.mark.unit


def account_with_purchase(price: int = 60_000, *, billing_open: date = date(2025, 1, 10)) -> RedAccount:
    """Opened on the 10th, a purchase two days later (parts due 10 Feb, 10 Mar, 10 Apr, 10 May)."""
    account = open_account("c1", tenge(500_000), billing_open, new_terms_accepted=True)
    result = approve_purchase(account, "p1", tenge(price), billing_open + timedelta(days=2))
    assert isinstance(result, PurchaseApproved)
    return result.account


def test_bill_is_issued_on_the_billing_day_with_lines_and_due_date(cal: FakeCalendar) -> None:
    account = account_with_purchase()
    assert issue_bill(account, date(2025, 2, 9), cal) is None
    issue = issue_bill(account, date(2025, 2, 10), cal)
    assert issue is not None
    bill = issue.bill
    assert bill.amount == tenge(15_000)
    assert [(line.purchase_id, line.part_no, line.amount) for line in bill.lines] == [
        ("p1", 1, tenge(15_000))
    ]
    assert bill.due_on == date(2025, 3, 10)  # a Monday
    assert bill.due_at == datetime(2025, 3, 10, 20, 0, tzinfo=ALMATY)


def test_rerunning_a_business_date_issues_nothing_twice(cal: FakeCalendar) -> None:
    account = account_with_purchase()
    account, _ = run_days(account, date(2025, 2, 1), date(2025, 4, 20), cal)
    again, results = run_days(account, date(2025, 2, 1), date(2025, 4, 20), cal)
    assert again == account
    assert all(r.issue is None and not r.actions for r in results)
    assert [b.statement_date for b in account.bills] == [
        date(2025, 2, 10),
        date(2025, 3, 10),
        date(2025, 4, 10),
    ]


BILLING_DATES = (date(2025, 2, 10), date(2025, 3, 10), date(2025, 4, 10))


def sparse_run(account: RedAccount, run_on: list[date], cal: FakeCalendar) -> tuple[RedAccount, list[Action]]:
    """The job run only on ``run_on`` (in order), every other date missed; the actions it took."""
    actions: list[Action] = []
    for d in run_on:
        result = run_business_day(account, d, cal)
        account = result.account
        actions.extend(result.actions)
    return account, actions


def test_missed_dates_caught_up_later_give_the_same_result(cal: FakeCalendar) -> None:
    account = account_with_purchase()
    daily, results = run_days(account, date(2025, 2, 1), date(2025, 4, 20), cal)
    # What the daily job does: three bills, none paid: each overdue the day after its due date and
    # penalised the day after that; February's penalty is brought forward onto the April bill.
    assert [b.statement_date for b in daily.bills] == list(BILLING_DATES)
    assert [a for r in results for a in r.actions] == [
        RecordOverdue("c1:2025-02-10", date(2025, 3, 11)),
        ApplyPenalty("c1:2025-02-10", PENALTY, date(2025, 3, 12)),
        RecordOverdue("c1:2025-03-10", date(2025, 4, 11)),
        ApplyPenalty("c1:2025-03-10", PENALTY, date(2025, 4, 12)),
    ]
    assert daily.bills[2].penalty_brought_forward == PENALTY
    assert daily.penalty_due == PENALTY
    # The job ran only on the billing dates and once more on 20 April, missing every other date:
    # the late run catches up the overdue and the penalty with their own dates, and the account ends
    # exactly as the daily job left it.
    caught_up, actions = sparse_run(account, [*BILLING_DATES, date(2025, 4, 20)], cal)
    assert actions == [a for r in results for a in r.actions]
    assert caught_up == daily
    # Even jumping straight to a late date records overdue and charges the penalty, once each.
    first = run_business_day(account, date(2025, 2, 10), cal).account
    jumped = run_business_day(first, date(2025, 3, 13), cal)
    assert [type(a) for a in jumped.actions] == [RecordOverdue, ApplyPenalty]
    assert not run_business_day(jumped.account, date(2025, 3, 14), cal).actions


def issued(cal: FakeCalendar) -> RedAccount:
    account, _ = run_days(account_with_purchase(), date(2025, 2, 10), date(2025, 2, 10), cal)
    return account


@given(
    missed=st.sets(
        st.sampled_from([d for d in days(date(2025, 2, 1), date(2025, 4, 19)) if d not in BILLING_DATES])
    )
)
def test_any_missed_non_billing_dates_change_nothing(missed: set[date]) -> None:
    cal = FakeCalendar()
    account = account_with_purchase()
    daily, _ = run_days(account, date(2025, 2, 1), date(2025, 4, 20), cal)
    run_on = [d for d in days(date(2025, 2, 1), date(2025, 4, 20)) if d not in missed]
    assert sparse_run(account, run_on, cal)[0] == daily


def test_paid_at_19_59_on_the_due_date_is_on_time(cal: FakeCalendar) -> None:
    account = issued(cal)
    paid_at = datetime(2025, 3, 10, 19, 59, tzinfo=ALMATY)
    assert paid_at == account.bills[0].due_at - timedelta(minutes=1)
    # The production cut-off rule (shared.clock), not a copy of it.
    on = credited_business_date(paid_at)
    assert on == date(2025, 3, 10)
    account = allocate_repayment(account, tenge(15_000), on).account
    account, results = run_days(account, date(2025, 3, 10), date(2025, 3, 15), cal)
    assert all(not r.actions for r in results)
    assert not account.bills[0].overdue_recorded


def test_paid_at_20_01_counts_next_day_overdue_recorded_without_penalty(cal: FakeCalendar) -> None:
    account = issued(cal)
    paid_at = datetime(2025, 3, 10, 20, 1, tzinfo=ALMATY)
    assert paid_at == account.bills[0].due_at + timedelta(minutes=1)
    on = credited_business_date(paid_at)
    assert on == date(2025, 3, 11)
    # The payment arrives before the day-1 job runs; the credited date still decides.
    account = allocate_repayment(account, tenge(15_000), on).account
    account, results = run_days(account, date(2025, 3, 10), date(2025, 3, 15), cal)
    actions = [a for r in results for a in r.actions]
    assert actions == [RecordOverdue("c1:2025-02-10", date(2025, 3, 11))]
    assert account.bills[0].overdue_recorded
    assert not account.bills[0].penalty_applied
    assert account.penalty_due == Money.zero()


def test_paid_the_day_after_due_no_penalty_overdue_recorded(cal: FakeCalendar) -> None:
    account = issued(cal)
    account, _ = run_days(account, date(2025, 3, 10), date(2025, 3, 11), cal)
    assert account.bills[0].overdue_recorded
    account = allocate_repayment(account, tenge(15_000), date(2025, 3, 11)).account
    account, results = run_days(account, date(2025, 3, 12), date(2025, 4, 9), cal)
    assert all(not r.actions for r in results)
    assert not account.bills[0].penalty_applied


def test_unpaid_on_the_second_day_one_penalty_and_next_bill_larger_by_2000(cal: FakeCalendar) -> None:
    account = issued(cal)
    account, results = run_days(account, date(2025, 3, 10), date(2025, 3, 20), cal)
    penalties = [a for r in results for a in r.actions if isinstance(a, ApplyPenalty)]
    assert penalties == [ApplyPenalty("c1:2025-02-10", PENALTY, date(2025, 3, 12))]
    assert tenge(2_000) == PENALTY
    # The customer pays what they calculated, 15,000, late: the bill's parts are paid first.
    account = allocate_repayment(account, tenge(15_000), date(2025, 3, 20)).account
    assert account.bills[0].settled
    account, results = run_days(account, date(2025, 3, 21), date(2025, 4, 10), cal)
    assert not [a for r in results for a in r.actions if isinstance(a, ApplyPenalty)]
    april = account.bills[-1]
    assert april.statement_date == date(2025, 4, 10)
    assert april.amount == tenge(17_000)
    assert april.penalty_brought_forward == tenge(2_000)


def test_paying_penalty_with_the_overdue_bill_keeps_next_bill_normal(cal: FakeCalendar) -> None:
    account = issued(cal)
    account, _ = run_days(account, date(2025, 3, 10), date(2025, 3, 13), cal)
    repayment = allocate_repayment(account, tenge(17_000), date(2025, 3, 13))
    assert repayment.allocation.to_bills == tenge(15_000)
    assert repayment.allocation.to_penalty == tenge(2_000)
    account, _ = run_days(repayment.account, date(2025, 3, 14), date(2025, 4, 10), cal)
    assert account.bills[-1].amount == tenge(15_000)


def test_paid_on_the_second_day_is_too_late(cal: FakeCalendar) -> None:
    account = issued(cal)
    account = allocate_repayment(account, tenge(15_000), date(2025, 3, 12)).account
    account, results = run_days(account, date(2025, 3, 10), date(2025, 3, 14), cal)
    assert [type(a) for r in results for a in r.actions] == [RecordOverdue, ApplyPenalty]


@pytest.mark.parametrize(
    ("holidays", "due_on"),
    [
        (frozenset(), date(2025, 3, 17)),  # due Saturday 15 March → Monday 17
        (frozenset({date(2025, 3, 17)}), date(2025, 3, 18)),  # …and a holiday Monday → Tuesday 18
    ],
)
def test_due_date_on_weekend_or_holiday_paying_on_first_working_day_has_no_penalty(
    holidays: frozenset[date], due_on: date
) -> None:
    cal = FakeCalendar(holidays)
    account = account_with_purchase(billing_open=date(2025, 1, 15))
    account, _ = run_days(account, date(2025, 2, 15), date(2025, 2, 15), cal)
    assert account.bills[0].due_on == due_on
    account, results = run_days(account, date(2025, 3, 15), due_on, cal)
    assert all(not r.actions for r in results)
    account = allocate_repayment(account, tenge(15_000), due_on).account
    account, results = run_days(account, due_on, date(2025, 4, 1), cal)
    assert all(not r.actions for r in results)
    assert not account.bills[0].overdue_recorded


def test_overdue_step_twice_for_a_date_yields_nothing_new(cal: FakeCalendar) -> None:
    account = issued(cal)
    first = run_business_day(account, date(2025, 3, 12), cal)
    assert len(first.actions) == 2
    bill = first.account.bills[0]
    assert overdue_actions(bill, date(2025, 3, 12)) == []
    assert run_business_day(first.account, date(2025, 3, 12), cal).account == first.account


def test_opened_on_the_31st_bills_on_the_last_day_of_february(cal: FakeCalendar) -> None:
    account = open_account("c1", tenge(500_000), date(2025, 1, 31), new_terms_accepted=True)
    result = approve_purchase(account, "p1", tenge(40_000), date(2025, 2, 3))
    assert isinstance(result, PurchaseApproved)
    account, results = run_days(result.account, date(2025, 2, 1), date(2025, 3, 31), cal)
    issued_on = [r.issue.bill.statement_date for r in results if r.issue]
    assert issued_on == [date(2025, 2, 28), date(2025, 3, 31)]
    assert account.bills[0].due_on == date(2025, 3, 31)
