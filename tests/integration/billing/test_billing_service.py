"""Billing against real PostgreSQL and Kafka: every acceptance example of issue 5 (domain brief §4).

One billing app per module (one consumer-group join); tests isolate themselves by fresh customer ids
and move the business date themselves, directly (the ops path) or with the RunBusinessDay command.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID

import pytest

from services.billing.queries import account_summary, bills
from services.billing.service import BusinessDayRefused
from services.billing.store import derived_id
from shared.calendar import load_kz_calendar
from shared.clock import ALMATY
from shared.contracts.billing import LimitRestoreReason, OverpaymentReason, RedAccountClosed
from shared.contracts.common import Channel, Funding, ReasonCode
from shared.contracts.payments import RedPurchaseCancelled
from shared.money import tenge_to_tiyn as tenge
from tests.integration.billing.conftest import Billing, at

pytestmark = pytest.mark.integration
D = date.fromisoformat


async def available(b: Billing, customer: UUID) -> int:
    summary = await account_summary(b.pool, customer)
    assert summary is not None
    return int(summary["available"])


async def summary_of(b: Billing, customer: UUID) -> dict[str, Any]:
    summary = await account_summary(b.pool, customer)
    assert summary is not None
    return summary


async def published(b: Billing, type_: str, customer: UUID) -> list[Any]:
    """Events of a type for the customer once the outbox is drained (possibly none)."""
    await b.drained()
    return b.events.of(customer, type_)


async def close(b: Billing, customer: UUID, on: date) -> None:
    closed = await b.publish(RedAccountClosed(customer_id=customer, closed_on=on))
    await b.handled(closed.event_id)


async def test_paying_a_bill_with_a_fourth_part_restores_the_whole_price(billing: Billing) -> None:
    # 002 Q1511: a 35,000 bill includes 7,000, the fourth part of a purchase → available +28,000.
    c = await billing.open(D("2026-01-10"), limit=tenge(200_000))
    first = await billing.buy(c, tenge(28_000), D("2026-01-12"))
    for d in ("2026-02-10", "2026-03-10", "2026-04-10"):
        await billing.run_day(D(d))
        await billing.pay(c, tenge(7_000), at(D(d), 12))
    second = await billing.buy(c, tenge(112_000), D("2026-04-12"))
    await billing.run_day(D("2026-05-10"))
    bill = (await billing.bills(c))[-1]
    assert bill["amount"] == tenge(35_000)
    lines = {(ln["purchase_id"], ln["part_no"], ln["amount"]) for ln in bill["lines"]}
    assert lines == {(str(first), 4, tenge(7_000)), (str(second), 1, tenge(28_000))}
    assert await available(billing, c) == tenge(60_000)

    await billing.pay(c, tenge(35_000), at(D("2026-05-11"), 12))
    assert await available(billing, c) == tenge(88_000)
    restored = await billing.wait_events("LimitRestored", c, 1)
    assert [(e.payload.amount, e.payload.reason, e.payload.purchase_id) for e in restored] == [
        (tenge(28_000), LimitRestoreReason.FOURTH_PART_PAID, first)
    ]
    paid = await billing.wait_events("BillPaid", c, 4)
    assert len(paid) == 4


async def test_cash_at_an_atm_above_the_bill_lowers_the_next_bill(billing: Billing) -> None:
    # 001: a bill of 15,000 paid with 20,000 in cash at an ATM → the next bill is 10,000.
    c = await billing.open(D("2026-01-15"))
    await billing.buy(c, tenge(60_000), D("2026-01-16"))
    await billing.run_day(D("2026-02-15"))
    assert [b["amount"] for b in await billing.bills(c)] == [tenge(15_000)]
    await billing.pay(c, tenge(20_000), at(D("2026-02-16"), 9), funding=Funding.CASH, channel=Channel.ATM)
    await billing.run_day(D("2026-03-15"))
    second = (await billing.bills(c))[-1]
    assert second["amount"] == tenge(10_000)
    assert second["carried_prepayment"] == tenge(5_000)
    applied = await billing.wait_events("RepaymentApplied", c, 1)
    allocation = applied[0].payload.allocation
    assert (allocation.to_bill, allocation.carried, allocation.refunded_to_gold) == (
        tenge(15_000),
        tenge(5_000),
        0,
    )


async def _billed_on_the_14th(billing: Billing) -> UUID:
    """A customer with a 10,000 bill issued 2026-06-14, due 2026-07-14 20:00 (a Tuesday)."""
    c = await billing.open(D("2026-05-14"))
    await billing.buy(c, tenge(40_000), D("2026-05-15"))
    await billing.run_day(D("2026-06-14"))
    [bill] = await billing.bills(c)
    assert bill["due_at"] == datetime(2026, 7, 14, 20, 0, tzinfo=ALMATY)
    return c


async def test_paid_the_day_after_the_due_date_records_overdue_without_penalty(billing: Billing) -> None:
    # 002 Q1513: paying the day after the due date → no penalty, but the overdue is recorded.
    c = await _billed_on_the_14th(billing)
    await billing.run_day(D("2026-07-15"))
    await billing.pay(c, tenge(10_000), at(D("2026-07-15"), 10))
    await billing.run_day(D("2026-07-16"))
    await billing.run_day(D("2026-07-17"))
    assert await billing.count("overdue_records", c) == 1
    assert await billing.count("penalties", c) == 0
    [overdue] = await billing.wait_events("BillOverdueRecorded", c, 1)
    assert overdue.payload.overdue_since == D("2026-07-15")
    assert await billing.emitted("PenaltyApplied", c) == []


async def test_unpaid_on_the_second_day_brings_exactly_one_penalty_onto_the_next_bill(
    billing: Billing,
) -> None:
    # domain §4: second day overdue → one-time 2,000 ₸ penalty, at most one per bill; next bill +2,000.
    c = await _billed_on_the_14th(billing)
    for d in ("2026-07-15", "2026-07-16", "2026-07-16", "2026-07-17", "2026-07-20"):
        await billing.run_day(D(d))
    assert await billing.count("penalties", c) == 1
    await billing.run_day(D("2026-08-14"))
    amounts = [(b["statement_date"], b["amount"], b["penalty"]) for b in await billing.bills(c)]
    assert amounts == [
        (D("2026-06-14"), tenge(10_000), 0),
        (D("2026-07-14"), tenge(10_000), 0),
        (D("2026-08-14"), tenge(12_000), tenge(2_000)),
    ]
    [penalty] = await billing.wait_events("PenaltyApplied", c, 1)
    assert (penalty.payload.amount, penalty.payload.applied_on) == (tenge(2_000), D("2026-07-16"))
    assert len(await billing.emitted("BillOverdueRecorded", c)) == 1


async def test_due_date_on_nauryz_saturday_moves_to_the_next_working_day(billing: Billing) -> None:
    # 002 Q1538: due 2026-03-21 (Saturday, Nauryz) → paying on the first working day is on time.
    calendar = load_kz_calendar()
    working = calendar.roll_forward(D("2026-03-21"))
    assert working > D("2026-03-21")
    c = await billing.open(D("2026-01-21"))
    await billing.buy(c, tenge(40_000), D("2026-01-22"))
    await billing.run_day(D("2026-02-21"))
    [bill] = await billing.bills(c)
    assert bill["due_at"] == datetime.combine(working, time(20, 0), tzinfo=ALMATY)
    await billing.run_day(D("2026-03-23"))
    await billing.pay(c, tenge(10_000), at(working, 19))
    await billing.run_day(working + timedelta(days=2))  # past both overdue days
    assert await billing.count("overdue_records", c) == 0
    assert await billing.count("penalties", c) == 0


async def test_paid_at_19_59_is_on_time_and_at_20_01_is_the_next_day(billing: Billing) -> None:
    # 002 Q1541: money paid after 20:00 is credited the next day.
    on_time = await _billed_on_the_14th(billing)
    late = await _billed_on_the_14th(billing)
    await billing.pay(on_time, tenge(10_000), at(D("2026-07-14"), 19, 59))
    await billing.pay(late, tenge(10_000), at(D("2026-07-14"), 20, 1))
    credited = await billing.pool.fetch(
        "SELECT customer_id, credited_on FROM repayments WHERE customer_id = ANY($1::uuid[])", [on_time, late]
    )
    assert {r["customer_id"]: r["credited_on"] for r in credited} == {
        on_time: D("2026-07-14"),
        late: D("2026-07-15"),
    }
    await billing.run_day(D("2026-07-16"))
    assert (await billing.count("overdue_records", on_time), await billing.count("penalties", on_time)) == (
        0,
        0,
    )
    assert (await billing.count("overdue_records", late), await billing.count("penalties", late)) == (1, 0)


async def test_a_deposit_larger_than_the_bill_repays_oldest_first_then_goes_to_gold(billing: Billing) -> None:
    # 002 Q2184/Q1516: bill first, then purchases old → new; with all repaid, the rest to Gold at once.
    c = await billing.open(D("2026-01-10"), limit=tenge(100_000))
    older = await billing.buy(c, tenge(40_000), D("2026-01-12"))
    newer = await billing.buy(c, tenge(20_000), D("2026-01-13"))
    await billing.run_day(D("2026-02-10"))
    assert [b["amount"] for b in await billing.bills(c)] == [tenge(15_000)]
    await billing.pay(c, tenge(63_000), at(D("2026-02-11"), 12))
    [applied] = await billing.wait_events("RepaymentApplied", c, 1)
    allocation = applied.payload.allocation
    assert allocation.to_bill == tenge(15_000)
    assert [(p.purchase_id, p.amount) for p in allocation.to_purchases] == [
        (older, tenge(30_000)),
        (newer, tenge(15_000)),
    ]
    assert allocation.refunded_to_gold == tenge(3_000)
    [gold] = await billing.wait_events("OverpaymentRefunded", c, 1)
    assert (gold.payload.amount, gold.payload.reason) == (tenge(3_000), OverpaymentReason.OVERPAYMENT)
    summary = await account_summary(billing.pool, c)
    assert summary is not None
    assert (summary["outstanding"], summary["available"]) == (0, tenge(100_000))

    # Not enough for everything: the older purchase is repaid, the rest is carried, nothing to Gold.
    c2 = await billing.open(D("2026-01-10"), limit=tenge(100_000))
    older2 = await billing.buy(c2, tenge(40_000), D("2026-01-12"))
    await billing.buy(c2, tenge(20_000), D("2026-01-13"))
    await billing.run_day(D("2026-02-10"))
    await billing.pay(c2, tenge(46_000), at(D("2026-02-11"), 12))
    [applied2] = await billing.wait_events("RepaymentApplied", c2, 1)
    a2 = applied2.payload.allocation
    assert [(p.purchase_id, p.amount) for p in a2.to_purchases] == [(older2, tenge(30_000))]
    assert (a2.carried, a2.refunded_to_gold) == (tenge(1_000), 0)


async def test_old_terms_restore_the_limit_immediately_by_the_amount_paid(billing: Billing) -> None:
    # domain §4 "Limit" (002 Q13488): not accepted the new terms → restored at once by the amount paid.
    c = await billing.open(D("2026-01-10"), limit=tenge(100_000), accepted_new_terms=False)
    await billing.buy(c, tenge(40_000), D("2026-01-12"))
    assert await available(billing, c) == tenge(60_000)
    await billing.run_day(D("2026-02-10"))
    await billing.pay(c, tenge(10_000), at(D("2026-02-11"), 12))
    assert await available(billing, c) == tenge(70_000)
    [restored] = await billing.wait_events("LimitRestored", c, 1)
    assert (restored.payload.amount, restored.payload.reason) == (
        tenge(10_000),
        LimitRestoreReason.OLD_TERMS_PAYMENT,
    )


async def test_a_purchase_above_the_available_limit_is_declined(billing: Billing) -> None:
    c = await billing.open(D("2026-01-10"), limit=tenge(50_000))
    ok = await billing.buy(c, tenge(30_000), D("2026-01-12"))
    refused = await billing.buy(c, tenge(25_000), D("2026-01-12"))
    [approved] = await billing.wait_events("RedPurchaseApproved", c, 1)
    assert approved.payload.payment_id == ok
    assert approved.payload.parts == [tenge(7_500)] * 4
    [declined] = await billing.wait_events("RedPurchaseDeclined", c, 1)
    assert declined.payload.payment_id == refused
    assert declined.payload.reason_code == ReasonCode.INSUFFICIENT_LIMIT
    assert declined.payload.available == tenge(20_000)


async def test_missed_days_catch_up_in_order_and_re_running_duplicates_nothing(billing: Billing) -> None:
    # Fineract close-of-business: running 2026-04-20 first runs every unclosed date before it.
    c = await billing.open(D("2026-01-05"))
    await billing.buy(c, tenge(40_000), D("2026-01-06"))
    await billing.command_day(D("2026-04-20"))

    async def facts() -> tuple[int, int, int]:
        return (
            await billing.count("bills", c),
            await billing.count("overdue_records", c),
            await billing.count("penalties", c),
        )

    # Bills 02-05, 03-05, 04-05; the first two missed their due dates (03-05; 04-05 Sun → 04-06).
    assert await facts() == (3, 2, 2)
    listed = await bills(billing.pool, c)
    assert [(b["statement_date"], b["amount"]) for b in listed] == [
        (D("2026-02-05"), tenge(10_000)),
        (D("2026-03-05"), tenge(10_000)),
        (D("2026-04-05"), tenge(12_000)),  # the penalty of 03-07 brought forward
    ]
    assert [b["penalty_on"] for b in listed[:2]] == [D("2026-03-07"), D("2026-04-08")]

    await billing.command_day(D("2026-04-20"))  # the same date again
    await billing.run_day(D("2026-03-10"))  # an earlier, already closed date
    # Forget the watermark: the domain's per-bill flags and the unique keys still refuse duplicates.
    await billing.pool.execute(
        "UPDATE accounts SET last_closed_business_date = '2026-01-04' WHERE customer_id = $1", c
    )
    await billing.run_day(D("2026-04-20"))
    assert await facts() == (3, 2, 2)
    assert len(await billing.wait_events("BillIssued", c, 3)) == 3
    assert len(await billing.emitted("BillOverdueRecorded", c)) == 2
    assert len(await billing.emitted("PenaltyApplied", c)) == 2
    summary = await account_summary(billing.pool, c)
    assert summary is not None
    assert summary["last_closed_business_date"] == D("2026-04-20")


async def test_opened_on_the_31st_is_billed_on_the_last_day_of_february(billing: Billing) -> None:
    c = await billing.open(D("2026-01-31"))
    await billing.buy(c, tenge(40_000), D("2026-02-01"))
    await billing.run_day(D("2026-02-27"))
    assert await billing.bills(c) == []
    await billing.run_day(D("2026-03-31"))
    listed = await billing.bills(c)
    assert [b["statement_date"] for b in listed] == [D("2026-02-28"), D("2026-03-31")]
    assert listed[0]["due_at"] == datetime(2026, 3, 31, 20, 0, tzinfo=ALMATY)


async def test_cancellation_releases_the_limit_once_and_closing_returns_the_balance_to_gold(
    billing: Billing,
) -> None:
    c = await billing.open(D("2026-01-10"), limit=tenge(100_000))
    payment = await billing.buy(c, tenge(30_000), D("2026-01-12"))
    assert await available(billing, c) == tenge(70_000)
    for _ in range(2):  # the compensation is idempotent, even under a new event id
        cancelled = await billing.publish(
            RedPurchaseCancelled(payment_id=payment, customer_id=c, reason_code=ReasonCode.PROVIDER_FAILED)
        )
        await billing.handled(cancelled.event_id)
    assert await available(billing, c) == tenge(100_000)
    [released] = await billing.wait_events("LimitRestored", c, 1)
    assert (released.payload.amount, released.payload.reason) == (
        tenge(30_000),
        LimitRestoreReason.CANCELLATION,
    )

    # A prepayment with nothing to pay goes to Gold at once; closing with a zero balance refunds nothing.
    await billing.pay(c, tenge(5_000), at(D("2026-01-13"), 12))
    [gold] = await billing.wait_events("OverpaymentRefunded", c, 1)
    assert gold.payload.amount == tenge(5_000)
    closed = await billing.publish(RedAccountClosed(customer_id=c, closed_on=D("2026-01-14")))
    await billing.handled(closed.event_id)
    summary = await account_summary(billing.pool, c)
    assert summary is not None
    assert summary["closed"] is True


async def test_partial_refund_before_any_bill_lowers_the_last_parts_and_restores_the_limit_once(
    billing: Billing,
) -> None:
    # docs/billing.md §6: a merchant refund lowers the unbilled unpaid parts from the fourth backwards
    # and restores the limit by the refunded amount; a redelivered refund event is skipped (inbox).
    c = await billing.open(D("2026-01-10"), limit=tenge(200_000))
    price = 4_000_003  # 40,000.03 ₸: the 3 tiyn remainder sits on part 1
    p = await billing.buy(c, price, D("2026-01-12"))
    [approved] = await billing.wait_events("RedPurchaseApproved", c, 1)
    assert approved.payload.parts == [1_000_003, 1_000_000, 1_000_000, 1_000_000]
    assert await available(billing, c) == 20_000_000 - 4_000_003

    refund = await billing.refund(c, p, 1_500_050, total_refunded=1_500_050, original_amount=price)
    # Part 4 (1,000,000) goes, part 3 is lowered by 500,050 to 499,950; parts 1–2 stay as they are.
    assert await available(billing, c) == 17_500_047
    [restored] = await billing.wait_events("LimitRestored", c, 1)
    assert (
        restored.payload.amount,
        restored.payload.available_after,
        restored.payload.reason,
        restored.payload.purchase_id,
    ) == (1_500_050, 17_500_047, LimitRestoreReason.REFUND, p)
    summary = await summary_of(billing, c)
    assert (summary["outstanding"], summary["carried"]) == (2_499_953, 0)

    # The same refund event delivered again changes nothing.
    version = await billing.version(c)
    await billing.publish(refund)
    await billing.barrier(c)
    assert await billing.version(c) == version
    assert await available(billing, c) == 17_500_047
    assert len(await published(billing, "LimitRestored", c)) == 1
    assert await published(billing, "OverpaymentRefunded", c) == []

    # The bills follow the lowered plan: part 1, part 2, the lowered part 3, and no fourth bill.
    for d in ("2026-02-10", "2026-03-10", "2026-04-10"):
        await billing.run_day(D(d))
        await billing.pay(c, (await billing.bills(c))[-1]["amount"], at(D(d), 12))
    await billing.run_day(D("2026-05-10"))
    listed = await billing.bills(c)
    assert [
        (
            b["statement_date"],
            b["amount"],
            [(ln["purchase_id"], ln["part_no"], ln["amount"]) for ln in b["lines"]],
        )
        for b in listed
    ] == [
        (D("2026-02-10"), 1_000_003, [(str(p), 1, 1_000_003)]),
        (D("2026-03-10"), 1_000_000, [(str(p), 2, 1_000_000)]),
        (D("2026-04-10"), 499_950, [(str(p), 3, 499_950)]),
    ]
    # Paying the lowered part 3 repays the purchase: the limit it still held (price − refund) comes back.
    restored_all = await billing.wait_events("LimitRestored", c, 2)
    assert [(e.payload.amount, e.payload.reason) for e in restored_all] == [
        (1_500_050, LimitRestoreReason.REFUND),
        (2_499_953, LimitRestoreReason.FOURTH_PART_PAID),
    ]
    summary = await summary_of(billing, c)
    assert (summary["outstanding"], summary["available"], summary["carried"]) == (0, 20_000_000, 0)


async def test_full_refund_before_any_bill_removes_the_plan_and_restores_the_price(billing: Billing) -> None:
    c = await billing.open(D("2026-01-10"), limit=tenge(100_000))
    refunded = await billing.buy(c, tenge(30_000), D("2026-01-12"))
    kept = await billing.buy(c, tenge(20_000), D("2026-01-13"))
    assert await available(billing, c) == tenge(50_000)

    await billing.refund(
        c, refunded, tenge(30_000), total_refunded=tenge(30_000), original_amount=tenge(30_000)
    )
    assert await available(billing, c) == tenge(80_000)
    [restored] = await billing.wait_events("LimitRestored", c, 1)
    assert (
        restored.payload.amount,
        restored.payload.available_after,
        restored.payload.reason,
        restored.payload.purchase_id,
    ) == (tenge(30_000), tenge(80_000), LimitRestoreReason.REFUND, refunded)
    assert (await summary_of(billing, c))["outstanding"] == tenge(20_000)

    # Nothing of the refunded plan is billed any more; the other purchase is billed as planned.
    await billing.run_day(D("2026-02-10"))
    [bill] = await billing.bills(c)
    assert bill["amount"] == tenge(5_000)
    assert [(ln["purchase_id"], ln["part_no"], ln["amount"]) for ln in bill["lines"]] == [
        (str(kept), 1, tenge(5_000))
    ]
    assert await published(billing, "OverpaymentRefunded", c) == []


async def test_full_refund_of_a_partly_paid_purchase_returns_the_paid_part_to_gold_once(
    billing: Billing,
) -> None:
    # docs/billing.md §6: the refund beyond the unbilled unpaid parts is money the customer already
    # paid; with nothing owed it goes to Gold. The price can never be refunded more than once in total.
    c = await billing.open(D("2026-01-10"), limit=tenge(100_000))
    p = await billing.buy(c, tenge(40_000), D("2026-01-12"))
    await billing.run_day(D("2026-02-10"))
    await billing.pay(c, tenge(10_000), at(D("2026-02-11"), 12))
    assert await available(billing, c) == tenge(60_000)

    refund = await billing.refund(
        c, p, tenge(40_000), total_refunded=tenge(40_000), original_amount=tenge(40_000)
    )
    assert await available(billing, c) == tenge(100_000)
    [restored] = await billing.wait_events("LimitRestored", c, 1)
    assert (restored.payload.amount, restored.payload.reason, restored.payload.purchase_id) == (
        tenge(40_000),
        LimitRestoreReason.REFUND,
        p,
    )
    [gold] = await billing.wait_events("OverpaymentRefunded", c, 1)
    assert (gold.payload.refund_id, gold.payload.amount, gold.payload.reason) == (
        derived_id("refund", refund.payload.refund_id),
        tenge(10_000),
        OverpaymentReason.OVERPAYMENT,
    )

    # Another refund of the same purchase exceeds the price still refundable: rejected, no effect.
    version = await billing.version(c)
    await billing.refund(c, p, 1, total_refunded=tenge(40_000), original_amount=tenge(40_000))
    assert await billing.version(c) == version
    assert len(await published(billing, "OverpaymentRefunded", c)) == 1
    await billing.run_day(D("2026-03-10"))
    assert len(await billing.bills(c)) == 1
    summary = await summary_of(billing, c)
    assert (summary["outstanding"], summary["carried"], summary["available"]) == (0, 0, tenge(100_000))


async def test_closing_is_refused_while_owed_and_the_carry_goes_to_gold_on_full_repayment(
    billing: Billing,
) -> None:
    # docs/billing.md §5/§7: a prepayment is carried only while something is owed; closing is refused
    # then; the full repayment sends whatever is left to Gold at once, so closing refunds nothing more.
    c = await billing.open(D("2026-01-10"), limit=tenge(100_000))
    p = await billing.buy(c, tenge(40_000), D("2026-01-12"))
    await billing.pay(c, tenge(5_000), at(D("2026-01-13"), 12))
    [first] = await billing.wait_events("RepaymentApplied", c, 1)
    assert (first.payload.allocation.carried, first.payload.allocation.refunded_to_gold) == (tenge(5_000), 0)
    assert (await summary_of(billing, c))["carried"] == tenge(5_000)

    version = await billing.version(c)
    await close(billing, c, D("2026-01-14"))
    assert await billing.version(c) == version
    assert (await summary_of(billing, c))["closed"] is False

    # 40,000 more: with the 5,000 carried the purchase is repaid in full and 5,000 is left over.
    payment = await billing.pay(c, tenge(40_000), at(D("2026-01-15"), 12))
    [gold] = await billing.wait_events("OverpaymentRefunded", c, 1)
    assert (gold.payload.refund_id, gold.payload.amount, gold.payload.reason) == (
        derived_id("overpayment", payment),
        tenge(5_000),
        OverpaymentReason.OVERPAYMENT,
    )
    applied = await billing.wait_events("RepaymentApplied", c, 2)
    second = applied[1].payload.allocation
    assert [(x.purchase_id, x.amount) for x in second.to_purchases] == [(p, tenge(40_000))]
    # RepaymentApplied v2 (docs/billing.md §5): the 5,000 prepaid earlier joined this payment and
    # went back to Gold; the allocation says so, as the OverpaymentRefunded does.
    assert (second.to_bill, second.carried, second.refunded_to_gold) == (0, 0, tenge(5_000))
    assert second.prepayment_used == tenge(5_000)
    summary = await summary_of(billing, c)
    assert (summary["outstanding"], summary["carried"], summary["available"]) == (0, 0, tenge(100_000))

    await close(billing, c, D("2026-01-16"))
    assert (await summary_of(billing, c))["closed"] is True
    assert [e.payload.reason for e in await published(billing, "OverpaymentRefunded", c)] == [
        OverpaymentReason.OVERPAYMENT
    ]


async def test_closing_with_a_positive_balance_returns_it_to_gold_exactly_once(billing: Billing) -> None:
    # The rules never leave a carry with nothing owed (the test above), so the leftover balance the
    # closing hands to Gold (§7, 002 Q15293) is put into the snapshot directly, as in the unit test.
    c = await billing.open(D("2026-01-10"), limit=tenge(100_000))
    await billing.buy(c, tenge(40_000), D("2026-01-12"))
    await billing.pay(c, tenge(40_000), at(D("2026-01-13"), 12))
    assert (await summary_of(billing, c))["outstanding"] == 0
    await billing.pool.execute(
        "UPDATE accounts SET snapshot = jsonb_set(snapshot, '{carried}', '123456') WHERE customer_id = $1", c
    )

    await close(billing, c, D("2026-01-14"))
    summary = await summary_of(billing, c)
    assert (summary["closed"], summary["carried"]) == (True, 0)
    [gold] = await billing.wait_events("OverpaymentRefunded", c, 1)
    assert (gold.payload.refund_id, gold.payload.amount, gold.payload.reason) == (
        derived_id("closed", c),
        123_456,
        OverpaymentReason.ACCOUNT_CLOSED,
    )

    # Closing again (a new event) changes nothing.
    version = await billing.version(c)
    await close(billing, c, D("2026-01-15"))
    assert await billing.version(c) == version
    assert [e.payload.amount for e in await published(billing, "OverpaymentRefunded", c)] == [123_456]


async def test_a_far_future_business_date_is_refused_before_any_work(billing: Billing) -> None:
    # Found by the input fuzzing review: 9999-12-31 would close millions of days per account in one
    # transaction and block billing's consumer. It is refused up front and changes nothing.
    c = await billing.open(D("2026-06-01"))
    before = await summary_of(billing, c)
    with pytest.raises(BusinessDayRefused, match="at most 400 days"):
        await billing.run_day(D("9999-12-31"))
    assert await billing.runs(D("9999-12-31")) == 0
    assert await summary_of(billing, c) == before
