"""A penalty is never charged on a penalty (seed 002, Q1476, Q1505, Q12370; docs/billing.md §4).

The seed's penalty is "a one-time penalty of 2,000 ₸ on the second day of overdue", added "to the
purchases" of the next bill. A penalty brought forward is debt, not a new bill to penalise: only a bill
whose own purchase parts are still unpaid at the end of the first overdue day is penalised, once.
These tests run long unpaid and partly paid histories through the real daily job.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from services.billing.domain import (
    PENALTY,
    ApplyPenalty,
    BusinessDay,
    PurchaseApproved,
    RecordOverdue,
    RedAccount,
    allocate_repayment,
    approve_purchase,
    open_account,
    run_business_day,
)
from services.billing.domain.schedule import day_after
from shared.money import Money

from .conftest import FakeCalendar, days, run_days, tenge

pytestmark = pytest.mark.unit

CAL = FakeCalendar(frozenset({date(2025, 3, 21), date(2025, 5, 1), date(2025, 5, 9), date(2025, 12, 16)}))
OPENED = date(2025, 1, 10)


def bought(price: int = 40_000) -> RedAccount:
    """Opened on 10 January, one purchase on the 12th: parts billed 10 Feb, 10 Mar, 10 Apr, 10 May."""
    account = open_account("c1", tenge(500_000), OPENED, new_terms_accepted=True)
    result = approve_purchase(account, "p1", tenge(price), date(2025, 1, 12))
    assert isinstance(result, PurchaseApproved)
    return result.account


def penalties(results: list[BusinessDay]) -> list[ApplyPenalty]:
    """The penalties the job charged over these days."""
    return [a for r in results for a in r.actions if isinstance(a, ApplyPenalty)]


def test_a_customer_who_stops_paying_gets_one_penalty_per_bill_with_parts_and_no_more() -> None:
    # Never paid for a year: four bills with parts, each penalised once. The last two penalties are
    # brought forward onto bills that hold nothing else (June, July); those are not penalised again,
    # so no new 2,000 ₸ appears every month with no purchase part due.
    account, results = run_days(bought(), OPENED, date(2026, 1, 31), CAL)
    charged = penalties(results)
    assert [p.bill_id for p in charged] == [
        "c1:2025-02-10",
        "c1:2025-03-10",
        "c1:2025-04-10",
        "c1:2025-05-10",
    ]
    with_parts = [b for b in account.bills if b.lines]
    assert len(with_parts) == 4
    penalty_only = [b for b in account.bills if not b.lines]
    assert [(b.statement_date, b.amount) for b in penalty_only] == [
        (date(2025, 6, 10), tenge(2_000)),
        (date(2025, 7, 10), tenge(2_000)),
    ]
    assert all(not b.penalty_applied for b in penalty_only)
    # The penalty-only bills still go overdue (the credit history records it), without a penalty.
    overdue = [a.bill_id for r in results for a in r.actions if isinstance(a, RecordOverdue)]
    assert overdue == [b.bill_id for b in account.bills]
    # Everything owed: the price and four penalties, nothing more, and no bill after July.
    assert account.outstanding == tenge(40_000) + PENALTY * 4
    assert account.bills[-1].statement_date == date(2025, 7, 10)


def test_a_bill_whose_parts_are_paid_on_time_is_not_penalised_for_its_carried_penalty() -> None:
    # February's bill is paid late (penalised 12 March) without its penalty, which is brought forward
    # onto April's bill: 10,000 of parts + 2,000. March's bill and April's parts are then paid by
    # their due dates; April's carried 2,000 never is. April is not penalised for it.
    account, _ = run_days(bought(), OPENED, date(2025, 3, 13), CAL)
    account = allocate_repayment(account, tenge(10_000), date(2025, 3, 13)).account
    assert account.bills[0].settled
    assert account.penalty_due == PENALTY
    account, _ = run_days(account, date(2025, 3, 14), date(2025, 4, 10), CAL)
    march, april = account.bills[1], account.bills[2]
    assert (april.amount, april.penalty_brought_forward) == (tenge(12_000), PENALTY)
    account = allocate_repayment(account, tenge(10_000), march.due_on).account  # 10 April, on time
    assert account.bills[1].settled
    account, _ = run_days(account, date(2025, 4, 11), april.due_on, CAL)  # 10 May is a Saturday → 12
    assert april.due_on == date(2025, 5, 12)
    account = allocate_repayment(account, tenge(10_000), april.due_on).account
    april = account.bills[2]
    assert (april.principal_owed, april.penalty_owed) == (Money.zero(), PENALTY)
    # The customer stops paying. May's bill has unpaid parts: its one penalty (12 June) is right.
    account, results = run_days(account, day_after(april.due_on), date(2025, 12, 31), CAL)
    assert [p.bill_id for p in penalties(results)] == ["c1:2025-05-10"]
    april = account.bills[2]
    assert april.overdue_recorded  # the carried 2,000 is overdue debt: recorded, not penalised
    assert not april.penalty_applied
    # May's penalty (12 June) lands on July's bill, which holds nothing else: it is not penalised
    # either, and nothing follows it.
    july = account.bills[-1]
    assert (july.statement_date, july.lines, july.amount) == (date(2025, 7, 10), (), PENALTY)
    assert not july.penalty_applied
    assert account.outstanding == tenge(10_000) + PENALTY * 2


def test_parts_paid_on_the_first_overdue_day_escape_the_penalty_even_if_the_carried_one_is_not() -> None:
    # Q1513: paid the day after the due date → no penalty. That holds for the parts of a bill that
    # also carries an earlier penalty: the parts count, the carried penalty does not.
    account, _ = run_days(bought(), OPENED, date(2025, 3, 13), CAL)  # February penalised on 12 March
    account = allocate_repayment(account, tenge(10_000), date(2025, 3, 13)).account  # February's bill
    account, _ = run_days(account, date(2025, 3, 14), date(2025, 4, 10), CAL)
    march, april = account.bills[1], account.bills[2]
    assert april.penalty_brought_forward == PENALTY
    # Pay March (oldest first) by its due date, and April's parts only on its first overdue day.
    account = allocate_repayment(account, tenge(10_000), march.due_on).account
    first_day = day_after(april.due_on)
    account, _ = run_days(account, date(2025, 4, 11), first_day, CAL)
    account = allocate_repayment(account, tenge(10_000), first_day).account
    assert account.bills[2].principal_owed == Money.zero()
    account, results = run_days(account, day_after(first_day), date(2025, 9, 30), CAL)
    assert [p.bill_id for p in penalties(results)] == ["c1:2025-05-10"]  # May's parts: never paid
    assert account.bills[2].overdue_recorded
    assert not account.bills[2].penalty_applied
    # Paid only on the second day: too late, the parts were overdue → the one-time penalty.
    late, _ = run_days(bought(), OPENED, date(2025, 2, 10), CAL)
    second_day = day_after(late.bills[0].due_on, 2)
    late = allocate_repayment(late, tenge(10_000), second_day).account
    late, results = run_days(late, date(2025, 2, 11), date(2025, 3, 31), CAL)
    assert [p.charged_on for p in penalties(results)] == [second_day]


# ------------------------------------------------------------------------------------------ property
@dataclass(frozen=True)
class Pay:
    """A repayment credited ``at`` days after opening: a random amount, the oldest bill, or parts."""

    at: int
    how: str
    amount: int


@dataclass(frozen=True)
class Habit:
    """How the customer treats one bill: pay nothing, its parts only, or all of it, and when
    (``offset`` days after the due date: -3 early, 0 on time, 1 the first overdue day, 2 too late)."""

    what: str
    offset: int


@dataclass(frozen=True)
class History:
    """Purchases in the first months, habits per bill, stray repayments, a long run of business days."""

    purchases: tuple[tuple[int, int], ...]
    habits: tuple[Habit, ...]
    payments: tuple[Pay, ...]
    horizon: int


@st.composite
def histories(draw: st.DrawFn) -> History:
    purchases = draw(
        st.lists(st.tuples(st.integers(1, 120), st.integers(4, 80_000_00)), min_size=1, max_size=4)
    )
    habits = draw(
        st.lists(
            st.builds(
                Habit,
                what=st.sampled_from(["nothing", "parts", "parts", "parts", "all"]),
                offset=st.sampled_from([-3, 0, 0, 1, 2]),
            ),
            min_size=1,
            max_size=8,
        )
    )
    # Often a customer who stops paying: every stray repayment within the first ``stop`` days.
    stop = draw(st.sampled_from([60, 150, 300, 500]))
    payments = draw(
        st.lists(
            st.builds(
                Pay,
                at=st.integers(1, stop),
                how=st.sampled_from(["amount", "oldest", "parts"]),
                amount=st.integers(1, 40_000_00),
            ),
            max_size=6,
        )
    )
    return History(tuple(purchases), tuple(habits), tuple(payments), draw(st.integers(200, 480)))


def _payment(account: RedAccount, pay: Pay) -> Money:
    """What the customer pays: a random amount, the oldest open bill in full, or only its parts
    (money pays the oldest bill's parts first, so its penalty brought forward stays unpaid)."""
    open_bills = account.open_bills
    if pay.how == "amount" or not open_bills:
        return Money(pay.amount)
    bill = open_bills[0]
    wanted = bill.owed if pay.how == "oldest" else bill.principal_owed
    return wanted if wanted.tiyn > 0 else Money(pay.amount)


def _habitual(account: RedAccount, history: History, today: date) -> list[Money]:
    """The repayments the habits make today: for the i-th bill, its parts or all it still owes."""
    out: list[Money] = []
    for i, bill in enumerate(account.bills):
        habit = history.habits[i % len(history.habits)]
        if habit.what == "nothing" or today != bill.due_on + timedelta(days=habit.offset):
            continue
        wanted = bill.owed if habit.what == "all" else bill.principal_owed
        if wanted.tiyn > 0:
            out.append(wanted)
    return out


@settings(max_examples=120, deadline=None)
@given(histories(), st.integers(1, 31))
# One bill paid too late (penalised), the next one's parts on time (the penalty moves onto the bill
# after it), then only that bill's parts on time: its carried penalty stays unpaid, not penalised.
@example(History(((2, 120_000_00),), (Habit("all", 2), Habit("parts", 0), Habit("parts", 0)), (), 400), 10)
def test_penalties_never_compound_over_long_unpaid_and_partly_paid_histories(
    history: History, opened_day: int
) -> None:
    opened = date(2025, 1, opened_day)
    account = open_account("c1", tenge(1_000_000), opened, new_terms_accepted=True)
    charged: Counter[str] = Counter()
    for n, today in enumerate(days(opened + timedelta(days=1), opened + timedelta(days=history.horizon)), 1):
        before = account
        day = run_business_day(account, today, CAL)
        account = day.account
        for action in day.actions:
            if not isinstance(action, ApplyPenalty):
                continue
            charged[action.bill_id] += 1
            bill = before.bill(action.bill_id)
            assert bill is not None
            # No penalty without an overdue purchase part: the bill has parts of its own, and they
            # were still unpaid at the end of the first overdue day (payments are credited after the
            # job of their date, so ``before`` holds every payment credited up to yesterday).
            assert bill.lines, f"penalty on {bill.bill_id}, which holds only {bill.penalty_brought_forward}"
            assert bill.principal_owed.tiyn > 0, f"penalty on {bill.bill_id} whose parts were paid"
            assert action.charged_on == today == day_after(bill.due_on, 2)
            event("penalty")
        # The rule still bites: a bill with parts unpaid at the end of its first overdue day is
        # penalised on the second.
        for bill in before.bills:
            if bill.lines and today == day_after(bill.due_on, 2) and bill.principal_owed.tiyn > 0:
                assert charged[bill.bill_id] == 1, f"{bill.bill_id} overdue without its penalty"
            parts_paid = bill.lines and not bill.principal_owed
            if today == day_after(bill.due_on, 2) and parts_paid and bill.penalty_owed.tiyn > 0:
                event("parts paid, carried penalty overdue")
        for price_day, price in history.purchases:
            if price_day == n:
                result = approve_purchase(account, f"p{price_day}-{price}", Money(price), today)
                if isinstance(result, PurchaseApproved):
                    account = result.account
        for pay in history.payments:
            if pay.at == n:
                account = allocate_repayment(account, _payment(account, pay), today).account
        for amount in _habitual(account, history, today):
            account = allocate_repayment(account, amount, today).account
    if any(not b.lines for b in account.bills):
        event("a bill holding only a carried penalty")
    # At most one penalty per bill, and never more than one per billed month with parts.
    assert all(count == 1 for count in charged.values())
    with_parts = [b for b in account.bills if b.lines]
    assert sum(charged.values()) <= len(with_parts)
    assert all(b.penalty in (Money.zero(), PENALTY) for b in account.bills)
    assert sum(b.penalty.tiyn for b in account.bills) <= PENALTY.tiyn * len(with_parts)
    assert not any(b.penalty_applied for b in account.bills if not b.lines)


# ------------------------------------------------------------------------------------------ snapshot
def test_the_snapshot_keeps_when_the_parts_were_paid_and_reads_older_snapshots() -> None:
    from services.billing.store import account_from_json, account_to_json

    account, _ = run_days(bought(), OPENED, date(2025, 3, 13), CAL)  # February penalised
    account = allocate_repayment(account, tenge(10_000), date(2025, 3, 13)).account
    account, _ = run_days(account, date(2025, 3, 14), date(2025, 4, 10), CAL)
    account = allocate_repayment(account, tenge(20_000), date(2025, 4, 10)).account  # March + April parts
    account, _ = run_days(account, date(2025, 4, 11), date(2025, 8, 31), CAL)
    assert account_from_json(account_to_json(account)) == account
    # A snapshot stored before ``parts_paid_on`` existed: settled bills read ``paid_on``; April's,
    # whose parts are paid but whose carried penalty is not, reads its statement date (not overdue);
    # bills with unpaid parts read ``None``.
    legacy = account_to_json(account)
    for bill in legacy["bills"]:
        del bill["ppo"]
    old = account_from_json(legacy)
    assert [b.parts_paid_on for b in old.bills] == [
        account.bills[0].paid_on,
        account.bills[1].paid_on,
        date(2025, 4, 10),
        None,
        *[b.statement_date for b in account.bills[4:]],
    ]
    # Run on from the old snapshot: the same decisions as from the new one.
    assert run_days(old, date(2025, 9, 1), date(2025, 12, 31), CAL)[0].bills == (
        run_days(account, date(2025, 9, 1), date(2025, 12, 31), CAL)[0].bills
    )
