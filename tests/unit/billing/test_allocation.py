"""Repayment allocation and the limit rule (domain brief §4, seeds 001 and 002)."""

from __future__ import annotations

from datetime import date

import pytest

from services.billing.domain import (
    Allocation,
    PurchaseApproved,
    RedAccount,
    allocate_repayment,
    approve_purchase,
    open_account,
)
from shared.money import Money

from .conftest import FakeCalendar, run_days, tenge

pytestmark = pytest.mark.unit


def buy(account: RedAccount, purchase_id: str, price: int, on: date) -> RedAccount:
    """Approve a purchase or fail the test."""
    result = approve_purchase(account, purchase_id, tenge(price), on)
    assert isinstance(result, PurchaseApproved)
    return result.account


def pay(account: RedAccount, amount: int, on: date) -> RedAccount:
    """Repay and return the account."""
    return allocate_repayment(account, tenge(amount), on).account


def test_example_001_bill_15000_paid_with_20000_next_bill_is_10000(cal: FakeCalendar) -> None:
    account = buy(
        open_account("c1", tenge(500_000), date(2025, 1, 10), new_terms_accepted=True),
        "p1",
        60_000,
        date(2025, 1, 12),
    )
    account, _ = run_days(account, date(2025, 2, 10), date(2025, 2, 10), cal)
    assert account.bills[0].amount == tenge(15_000)
    # Cash at an ATM: no change is given, the whole 20,000 goes to Red (001, 002 Q13066).
    repayment = allocate_repayment(account, tenge(20_000), date(2025, 2, 20))
    alloc = repayment.allocation
    assert alloc.to_bills == tenge(15_000)
    assert alloc.to_purchases == {}
    assert alloc.carried == tenge(5_000)
    assert alloc.refunded_to_gold == Money.zero()
    account, _ = run_days(repayment.account, date(2025, 2, 21), date(2025, 3, 10), cal)
    march = account.bills[-1]
    assert march.amount == tenge(10_000)
    assert march.carry_applied == tenge(5_000)
    assert account.carried == Money.zero()


def example_002(*, new_terms: bool, cal: FakeCalendar) -> RedAccount:
    """A 28,000 purchase in January and a 112,000 one in April: May's bill is 7,000 + 28,000."""
    account = open_account("c1", tenge(500_000), date(2025, 1, 10), new_terms_accepted=new_terms)
    account = buy(account, "small", 28_000, date(2025, 1, 20))
    for bill_day in (date(2025, 2, 10), date(2025, 3, 10), date(2025, 4, 10)):
        account, _ = run_days(account, bill_day, bill_day, cal)
        account = pay(account, 7_000, bill_day)
    account = buy(account, "big", 112_000, date(2025, 4, 15))
    account, _ = run_days(account, date(2025, 4, 11), date(2025, 5, 10), cal)
    may = account.bills[-1]
    assert may.amount == tenge(35_000)
    assert [(line.purchase_id, line.part_no, line.amount) for line in may.lines] == [
        ("small", 4, tenge(7_000)),
        ("big", 1, tenge(28_000)),
    ]
    return account


def test_example_002_fourth_part_raises_available_by_the_whole_price(cal: FakeCalendar) -> None:
    account = example_002(new_terms=True, cal=cal)
    assert account.available == tenge(500_000 - 28_000 - 112_000)
    repayment = allocate_repayment(account, tenge(35_000), date(2025, 5, 12))
    assert repayment.allocation.limit_restored == tenge(28_000)
    assert repayment.allocation.purchases_settled == ("small",)
    assert repayment.account.available == tenge(500_000 - 112_000)


def test_new_terms_paying_a_bill_without_a_fourth_part_leaves_available_unchanged(cal: FakeCalendar) -> None:
    account = buy(
        open_account("c1", tenge(100_000), date(2025, 1, 10), new_terms_accepted=True),
        "p1",
        40_000,
        date(2025, 1, 12),
    )
    account, _ = run_days(account, date(2025, 2, 10), date(2025, 2, 10), cal)
    repayment = allocate_repayment(account, tenge(10_000), date(2025, 2, 11))
    assert repayment.allocation.limit_restored == Money.zero()
    assert repayment.account.available == tenge(60_000)


def test_old_terms_restore_the_limit_immediately_by_the_amount_paid(cal: FakeCalendar) -> None:
    account = example_002(new_terms=False, cal=cal)
    # Under the old terms the three 7,000 payments already came back.
    assert account.available == tenge(500_000 - 7_000 - 112_000)
    repayment = allocate_repayment(account, tenge(35_000), date(2025, 5, 12))
    assert repayment.allocation.limit_restored == tenge(35_000)
    # A deposit larger than the bill: the excess is carried and, being paid money, restores too.
    more = allocate_repayment(repayment.account, tenge(5_000), date(2025, 5, 13))
    assert more.allocation.carried == tenge(5_000)
    assert more.allocation.limit_restored == tenge(5_000)


def test_deposit_larger_than_everything_bill_then_purchases_oldest_first_rest_to_gold(
    cal: FakeCalendar,
) -> None:
    account = open_account("c1", tenge(500_000), date(2025, 1, 10), new_terms_accepted=True)
    account = buy(account, "old", 40_000, date(2025, 1, 12))
    account = buy(account, "new", 80_000, date(2025, 1, 25))
    account, _ = run_days(account, date(2025, 2, 10), date(2025, 2, 10), cal)
    assert account.bills[0].amount == tenge(30_000)
    repayment = allocate_repayment(account, tenge(150_000), date(2025, 2, 15))
    alloc = repayment.allocation
    assert alloc.to_bills == tenge(30_000)
    assert dict(alloc.to_purchases) == {"old": tenge(30_000), "new": tenge(60_000)}
    assert list(alloc.to_purchases) == ["old", "new"]
    assert alloc.refunded_to_gold == tenge(30_000)
    assert alloc.carried == Money.zero()
    assert alloc.limit_restored == tenge(120_000)
    assert repayment.account.available == tenge(500_000)
    assert repayment.account.outstanding == Money.zero()


def test_early_repayment_stops_at_the_first_purchase_it_cannot_repay_in_full(cal: FakeCalendar) -> None:
    account = open_account("c1", tenge(500_000), date(2025, 1, 10), new_terms_accepted=True)
    account = buy(account, "old", 40_000, date(2025, 1, 12))
    account = buy(account, "mid", 80_000, date(2025, 1, 20))
    account = buy(account, "new", 4_000, date(2025, 1, 25))
    account, _ = run_days(account, date(2025, 2, 10), date(2025, 2, 10), cal)
    bill = account.bills[0].amount  # 10,000 + 20,000 + 1,000
    assert bill == tenge(31_000)
    repayment = allocate_repayment(account, bill + tenge(30_000 + 10_000), date(2025, 2, 15))
    alloc = repayment.allocation
    # "old" (30,000 left) is repaid in full; "mid" (60,000 left) is not, so "new" is not jumped to.
    assert dict(alloc.to_purchases) == {"old": tenge(30_000)}
    assert alloc.carried == tenge(10_000)
    assert alloc.limit_restored == tenge(40_000)


def test_prepayment_larger_than_next_bill_stays_carried(cal: FakeCalendar) -> None:
    account = buy(
        open_account("c1", tenge(500_000), date(2025, 1, 10), new_terms_accepted=True),
        "p1",
        100_000,
        date(2025, 1, 12),
    )
    account = pay(account, 40_000, date(2025, 1, 13))  # nothing billed yet: paid early (002 Q13488)
    assert account.carried == tenge(40_000)
    account, results = run_days(account, date(2025, 1, 14), date(2025, 3, 10), cal)
    feb, mar = account.bills
    assert (feb.amount, mar.amount) == (Money.zero(), tenge(10_000))
    assert feb.settled
    assert account.carried == Money.zero()
    assert all(not r.actions for r in results)


def test_carried_prepayment_with_a_new_payment_can_repay_everything(cal: FakeCalendar) -> None:
    account = buy(
        open_account("c1", tenge(500_000), date(2025, 1, 10), new_terms_accepted=True),
        "p1",
        100_000,
        date(2025, 1, 12),
    )
    account = pay(account, 60_000, date(2025, 1, 13))
    repayment = allocate_repayment(account, tenge(50_000), date(2025, 1, 14))
    alloc = repayment.allocation
    assert dict(alloc.to_purchases) == {"p1": tenge(100_000)}
    assert alloc.carried == tenge(-60_000)
    assert alloc.refunded_to_gold == tenge(10_000)
    assert (
        alloc.paid
        == alloc.to_bills
        + alloc.to_penalty
        + alloc.to_purchases_total
        + alloc.carried
        + alloc.refunded_to_gold
    )


def test_repayment_must_be_positive() -> None:
    account = open_account("c1", tenge(1_000), date(2025, 1, 10), new_terms_accepted=True)
    with pytest.raises(ValueError, match="positive"):
        allocate_repayment(account, Money.zero(), date(2025, 1, 10))


def test_an_allocation_that_does_not_place_every_tiyn_is_refused() -> None:
    paid = tenge(100)
    with pytest.raises(ValueError, match=r"^an allocation of .+ places .+$"):
        Allocation(paid, date(2025, 1, 1), to_bills=tenge(60), carried=tenge(39))
    placed = Allocation(paid, date(2025, 1, 1), to_bills=tenge(60), to_purchases={"p": tenge(40)})
    assert placed.to_purchases_total == tenge(40)
