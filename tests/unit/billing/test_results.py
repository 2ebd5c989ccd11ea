"""The whole result of each Red operation, field by field (found by ``make mutation``).

The other modules follow the brief's stories; these pin every field a handler publishes from a
result (a cancellation's released limit, a refund's re-allocated excess, a repayment's settled bills),
so that none can silently go missing or wrong.
"""

from __future__ import annotations

from datetime import date

import pytest

from services.billing.domain import (
    Allocation,
    DeclineReason,
    PurchaseApproved,
    PurchaseCancelled,
    PurchaseDeclined,
    PurchaseRefunded,
    RedAccount,
    Rejected,
    RejectReason,
    Repayment,
    allocate_repayment,
    approve_purchase,
    cancel_purchase,
    close_account,
    open_account,
    refund_purchase,
    run_business_day,
)
from services.billing.domain.model import ZERO, in_range, money, total
from shared.money import MAX_TIYN, Money, MoneyRangeError

from .conftest import FakeCalendar, run_days, tenge

pytestmark = pytest.mark.unit

OPENED = date(2025, 1, 10)
BOUGHT = date(2025, 1, 12)


def opened(*, new_terms: bool = True, limit: int = 100_000) -> RedAccount:
    return open_account("c1", tenge(limit), OPENED, new_terms_accepted=new_terms)


def bought(price: int = 40_000, *, new_terms: bool = True) -> RedAccount:
    result = approve_purchase(opened(new_terms=new_terms), "p1", tenge(price), BOUGHT)
    assert isinstance(result, PurchaseApproved)
    return result.account


def test_open_account_keeps_what_it_was_given() -> None:
    account = open_account("c1", tenge(100_000), OPENED, new_terms_accepted=False, loan_payment_day=25)
    assert (account.customer_id, account.limit, account.opened_on) == ("c1", tenge(100_000), OPENED)
    assert (account.billing_day, account.new_terms_accepted) == (25, False)
    assert account.available == tenge(100_000)
    with pytest.raises(ValueError, match=r"^a Red limit cannot be negative$"):
        open_account("c1", Money(-1), OPENED, new_terms_accepted=True)
    assert open_account("c1", Money.zero(), OPENED, new_terms_accepted=True).limit == Money.zero()


def test_a_redelivered_approval_answers_the_same_and_adds_nothing() -> None:
    account = bought()
    again = approve_purchase(account, "p1", tenge(40_000), BOUGHT)
    assert again == PurchaseApproved(account, account.purchases[0], tenge(60_000))


@pytest.mark.parametrize(
    ("account", "purchase_id", "price", "declined"),
    [
        (opened(), "p1", Money.zero(), PurchaseDeclined(DeclineReason.INVALID_AMOUNT, tenge(100_000))),
        (opened(), "p1", tenge(100_001), PurchaseDeclined(DeclineReason.INSUFFICIENT_LIMIT, tenge(100_000))),
    ],
)
def test_declines_carry_the_reason_and_the_available_limit(
    account: RedAccount, purchase_id: str, price: Money, declined: PurchaseDeclined
) -> None:
    assert approve_purchase(account, purchase_id, price, BOUGHT) == declined


def test_a_closed_account_or_a_cancelled_purchase_is_declined() -> None:
    closed = close_account(opened())
    assert not isinstance(closed, Rejected)
    assert approve_purchase(closed.account, "p1", tenge(1), BOUGHT) == PurchaseDeclined(
        DeclineReason.ACCOUNT_CLOSED, Money.zero()
    )
    early = cancel_purchase(opened(), "p1")
    assert early == PurchaseCancelled(early.account, "p1", Money.zero(), already=False)  # type: ignore[union-attr]
    assert isinstance(early, PurchaseCancelled)
    assert early.account.cancelled_purchase_ids == frozenset({"p1"})
    assert approve_purchase(early.account, "p1", tenge(1), BOUGHT) == PurchaseDeclined(
        DeclineReason.PURCHASE_CANCELLED, tenge(100_000)
    )
    # A second early cancellation changes nothing and says so.
    assert cancel_purchase(early.account, "p1") == PurchaseCancelled(
        early.account, "p1", Money.zero(), already=True
    )
    # Another purchase id is remembered beside the first.
    other = cancel_purchase(early.account, "p2")
    assert isinstance(other, PurchaseCancelled)
    assert other.account.cancelled_purchase_ids == frozenset({"p1", "p2"})


def test_a_cancellation_releases_the_whole_hold() -> None:
    account = bought()
    result = cancel_purchase(account, "p1")
    assert isinstance(result, PurchaseCancelled)
    assert (result.purchase_id, result.limit_released, result.already) == ("p1", tenge(40_000), False)
    assert result.refunded_to_gold == Money.zero()
    assert result.account.purchases == ()
    assert result.account.available == tenge(100_000)


def test_a_cancellation_keeps_a_carry_while_something_is_still_owed() -> None:
    account = bought()
    second = approve_purchase(account, "p2", tenge(10_000), BOUGHT)
    assert isinstance(second, PurchaseApproved)
    prepaid = allocate_repayment(second.account, tenge(5_000), BOUGHT).account
    assert prepaid.carried == tenge(5_000)
    result = cancel_purchase(prepaid, "p2")
    assert isinstance(result, PurchaseCancelled)
    assert result.refunded_to_gold == Money.zero()
    assert result.account.carried == tenge(5_000)


def test_a_refund_within_the_unbilled_parts_returns_the_full_result() -> None:
    result = refund_purchase(bought(), "p1", tenge(15_000), date(2025, 1, 20))
    assert isinstance(result, PurchaseRefunded)
    assert (result.purchase_id, result.amount, result.reduced_parts) == ("p1", tenge(15_000), tenge(15_000))
    assert (result.excess, result.limit_restored) == (None, tenge(15_000))
    purchase = result.account.purchases[0]
    assert (purchase.refunded, purchase.limit_held) == (tenge(15_000), tenge(25_000))


def test_refunds_add_up_to_at_most_the_price() -> None:
    first = refund_purchase(bought(), "p1", tenge(30_000), date(2025, 1, 20))
    assert isinstance(first, PurchaseRefunded)
    assert refund_purchase(first.account, "p1", tenge(10_001), date(2025, 1, 21)) == Rejected(
        RejectReason.REFUND_EXCEEDS_PRICE
    )
    second = refund_purchase(first.account, "p1", tenge(10_000), date(2025, 1, 21))
    assert isinstance(second, PurchaseRefunded)
    assert second.account.purchases[0].refunded == tenge(40_000)
    assert second.account.purchases[0].limit_held == Money.zero()
    assert refund_purchase(bought(), "p1", Money.zero(), date(2025, 1, 20)) == Rejected(
        RejectReason.INVALID_AMOUNT
    )


def test_a_refund_of_paid_parts_reallocates_the_excess_in_full(cal: FakeCalendar) -> None:
    account, _ = run_days(bought(), date(2025, 2, 10), date(2025, 3, 10), cal)
    account = allocate_repayment(account, tenge(10_000), date(2025, 3, 1)).account  # February's bill
    # March's bill (10,000) is open; parts 3-4 (20,000) unbilled; a refund of 25,000.
    result = refund_purchase(account, "p1", tenge(25_000), date(2025, 3, 11))
    assert isinstance(result, PurchaseRefunded)
    assert result.excess == Allocation(
        paid=tenge(5_000),
        credited_on=date(2025, 3, 11),
        to_bills=tenge(5_000),
        to_penalty=Money.zero(),
        to_purchases={},
        carried=Money.zero(),
        carried_balance=Money.zero(),
        refunded_to_gold=Money.zero(),
        # New terms: paying a bill without a fourth part restores nothing (the refund itself did).
        limit_restored=Money.zero(),
        purchases_settled=(),
    )
    assert result.limit_restored == tenge(25_000)


def test_a_refund_that_leaves_nothing_owed_sends_the_carry_to_gold() -> None:
    account = bought()
    prepaid = allocate_repayment(account, tenge(10_000), BOUGHT).account
    assert prepaid.carried == tenge(10_000)
    # The refund cuts the unbilled parts to 10,000: exactly what is carried, so nothing is owed.
    result = refund_purchase(prepaid, "p1", tenge(30_000), date(2025, 1, 20))
    assert isinstance(result, PurchaseRefunded)
    assert result.excess is None
    still = refund_purchase(result.account, "p1", tenge(10_000), date(2025, 1, 21))
    assert isinstance(still, PurchaseRefunded)
    assert still.excess == Allocation(
        paid=Money.zero(),
        credited_on=date(2025, 1, 21),
        carried=-tenge(10_000),
        refunded_to_gold=tenge(10_000),
    )
    assert still.account.carried == Money.zero()


def test_a_repayment_reports_every_destination(cal: FakeCalendar) -> None:
    account, _ = run_days(bought(), date(2025, 2, 10), date(2025, 2, 10), cal)
    repayment = allocate_repayment(account, tenge(12_000), date(2025, 2, 20))
    assert repayment.allocation == Allocation(
        paid=tenge(12_000),
        credited_on=date(2025, 2, 20),
        to_bills=tenge(10_000),
        carried=tenge(2_000),
        carried_balance=tenge(2_000),
        limit_restored=Money.zero(),
        bills_settled=("c1:2025-02-10",),
    )
    # A second payment settles no bill again.
    again = allocate_repayment(repayment.account, tenge(1_000), date(2025, 2, 21))
    assert again.allocation.bills_settled == ()
    assert again.allocation.carried_balance == tenge(3_000)


def test_a_repayment_to_a_closed_account_is_returned_whole() -> None:
    closed = close_account(opened())
    assert not isinstance(closed, Rejected)
    assert allocate_repayment(closed.account, tenge(7), date(2025, 2, 1)) == Repayment(
        closed.account, Allocation(tenge(7), date(2025, 2, 1), refunded_to_gold=tenge(7))
    )


def test_an_issued_bill_reports_what_the_carry_did(cal: FakeCalendar) -> None:
    account = bought()
    prepaid = allocate_repayment(account, tenge(4_000), BOUGHT).account
    day = run_business_day(prepaid, date(2025, 2, 10), cal)
    assert day.issue is not None
    # The carried 4,000 is subtracted from February's 10,000 (001): the bill asks for 6,000.
    assert day.issue.bill.amount == tenge(6_000)
    assert day.issue.bill.owed == tenge(6_000)
    assert (day.issue.limit_restored, day.issue.refunded_to_gold, day.issue.purchases_settled) == (
        Money.zero(),
        Money.zero(),
        (),
    )
    assert day.account.carried == Money.zero()


def test_a_bill_the_carry_pays_in_full_is_paid_on_its_statement_date(cal: FakeCalendar) -> None:
    account = bought(new_terms=False)
    prepayment = allocate_repayment(account, tenge(10_000), BOUGHT)
    # Old terms: the limit grows by what is paid, at once.
    assert prepayment.allocation.limit_restored == tenge(10_000)
    day = run_business_day(prepayment.account, date(2025, 2, 10), cal)
    assert day.issue is not None
    assert day.issue.bill.paid_on == date(2025, 2, 10)
    assert (day.issue.bill.amount, day.issue.bill.owed) == (Money.zero(), Money.zero())
    assert day.issue.limit_restored == Money.zero()


def test_a_carry_pays_bill_after_bill_until_it_runs_out(cal: FakeCalendar) -> None:
    account = bought(4_000)
    prepaid = allocate_repayment(account, tenge(3_500), BOUGHT).account  # parts: 1,000 each
    account, days = run_days(prepaid, date(2025, 2, 1), date(2025, 5, 10), cal)
    issues = [d.issue for d in days if d.issue is not None]
    assert [i.bill.paid_on for i in issues] == [
        date(2025, 2, 10),
        date(2025, 3, 10),
        date(2025, 4, 10),
        None,
    ]
    assert issues[-1].bill.owed == tenge(500)
    assert account.carried == Money.zero()


def test_the_model_helpers_keep_money_in_range_and_say_why() -> None:
    assert (in_range(MAX_TIYN), in_range(-MAX_TIYN)) == (MAX_TIYN, -MAX_TIYN)
    for outside in (MAX_TIYN + 1, -MAX_TIYN - 1):
        with pytest.raises(MoneyRangeError):
            in_range(outside)
    assert money(0) is ZERO
    assert money(5) == Money(5)
    with pytest.raises(TypeError, match=r"^cannot combine Money with int$"):
        total([Money(1), 2])  # type: ignore[list-item]
    purchase = bought().purchases[0]
    assert purchase.part(4).number == 4
    with pytest.raises(KeyError) as raised:
        purchase.part(5)
    assert raised.value.args == ("purchase p1 has no part 5",)


def test_a_billing_date_with_nothing_due_issues_no_bill(cal: FakeCalendar) -> None:
    day = run_business_day(opened(), date(2025, 2, 10), cal)
    assert (day.issue, day.actions, day.account.bills) == (None, (), ())


def test_a_purchase_with_nothing_due_does_not_hide_the_next_ones(cal: FakeCalendar) -> None:
    # p1 (12 Jan) is billed Feb-May; p2 (12 Feb) Mar-Jun: in June only p2 has a part left.
    second = approve_purchase(bought(4_000), "p2", tenge(8_000), date(2025, 2, 12))
    assert isinstance(second, PurchaseApproved)
    _, days = run_days(second.account, date(2025, 2, 1), date(2025, 6, 10), cal)
    june = [d.issue for d in days if d.issue is not None][-1]
    assert june.bill.statement_date == date(2025, 6, 10)
    assert [(line.purchase_id, line.part_no) for line in june.bill.lines] == [("p2", 4)]
