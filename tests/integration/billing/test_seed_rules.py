"""The bill calendar, penalties that never compound, and RepaymentApplied v2, through real Kafka and
PostgreSQL (docs/billing.md §4, §5, §8; seed 001, seed 002 Q1476, Q1486, Q1516, Q2184, Q15762).

One billing app for the module; each test uses fresh customers. The penalty test runs a year of
business days for the whole module's database, so it comes last.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

import pytest

from services.billing.queries import bill_calendar
from services.billing.store import derived_id
from shared.contracts.billing import OverpaymentReason, RepaymentApplied
from shared.money import tenge_to_tiyn as tenge
from tests.integration.billing.conftest import Billing, at

pytestmark = pytest.mark.integration
D = date.fromisoformat


async def calendar_of(b: Billing, customer: UUID) -> dict[str, Any]:
    found = await bill_calendar(b.pool, customer)
    assert found is not None
    return found


async def test_the_bill_calendar_knows_the_next_bill_before_it_is_issued(billing: Billing) -> None:
    # Q1486/Q15762: month by month, which purchases and parts each bill holds, and its amount.
    c = await billing.open(D("2026-01-10"))
    p1 = await billing.buy(c, tenge(40_000), D("2026-01-12"))
    await billing.run_day(D("2026-01-20"))
    cal = await calendar_of(billing, c)
    assert cal["as_of"] == D("2026-01-20")
    assert [(m["statement_date"], m["status"], m["amount"]) for m in cal["months"]] == [
        (D("2026-02-10"), "UPCOMING", tenge(10_000)),
        (D("2026-03-10"), "UPCOMING", tenge(10_000)),
        (D("2026-04-10"), "UPCOMING", tenge(10_000)),
        (D("2026-05-10"), "UPCOMING", tenge(10_000)),
    ]
    assert [(ln["purchase_id"], ln["part_no"], ln["price"]) for m in cal["months"] for ln in m["lines"]] == [
        (p1, k, tenge(40_000)) for k in (1, 2, 3, 4)
    ]
    nxt = cal["next_bill"]
    assert nxt == cal["months"][0]

    # The job, through the RunBusinessDay command, issues exactly that bill.
    await billing.command_day(D("2026-02-10"))
    [issued] = await billing.wait_events("BillIssued", c, 1)
    assert (issued.payload.statement_date, issued.payload.amount, issued.payload.due_at) == (
        nxt["statement_date"],
        nxt["amount"],
        nxt["due_at"],
    )
    assert [(ln.purchase_id, ln.part_no, ln.amount) for ln in issued.payload.lines] == [
        (ln["purchase_id"], ln["part_no"], ln["amount"]) for ln in nxt["lines"]
    ]
    cal = await calendar_of(billing, c)
    assert (cal["months"][0]["status"], cal["months"][0]["bill_id"]) == ("OPEN", issued.payload.bill_id)

    # Seed 001: 15,000 paid on a 10,000 bill → the next bill is 5,000 smaller, known at once.
    await billing.pay(c, tenge(15_000), at(D("2026-02-11")))
    cal = await calendar_of(billing, c)
    assert cal["months"][0]["status"] == "PAID"
    nxt = cal["next_bill"]
    assert (nxt["statement_date"], nxt["amount"], nxt["prepayment"]) == (
        D("2026-03-10"),
        tenge(5_000),
        tenge(5_000),
    )
    await billing.run_day(D("2026-03-10"))
    assert (await billing.bills(c))[-1]["amount"] == tenge(5_000)


async def test_repayment_applied_v2_tells_the_whole_story(billing: Billing) -> None:
    # 7,000 on a 6,000 bill carries 1,000 (001). Then 20,000: with the 1,000 it repays the purchase's
    # 18,000 and 3,000 goes back to Gold (Q2184). v2 says all of it; the Gold credit is the same 3,000.
    c = await billing.open(D("2026-01-10"))
    p = await billing.buy(c, tenge(24_000), D("2026-01-12"))
    await billing.run_day(D("2026-02-10"))
    await billing.pay(c, tenge(7_000), at(D("2026-02-11")))
    payment = await billing.pay(c, tenge(20_000), at(D("2026-02-20")))
    first, second = await billing.wait_events("RepaymentApplied", c, 2)
    assert all(e.schema_version == 2 and isinstance(e.payload, RepaymentApplied) for e in (first, second))
    a1 = first.payload.allocation
    assert (a1.to_bill, a1.carried, a1.prepayment_used, a1.refunded_to_gold) == (
        tenge(6_000),
        tenge(1_000),
        0,
        0,
    )
    a2 = second.payload.allocation
    assert second.payload.amount == tenge(20_000)
    assert [(x.purchase_id, x.amount) for x in a2.to_purchases] == [(p, tenge(18_000))]
    assert (a2.to_bill, a2.carried, a2.prepayment_used, a2.refunded_to_gold) == (
        0,
        0,
        tenge(1_000),
        tenge(3_000),
    )
    assert a2.total == second.payload.amount + a2.prepayment_used
    [gold] = await billing.wait_events("OverpaymentRefunded", c, 1)
    assert (gold.payload.refund_id, gold.payload.amount, gold.payload.reason) == (
        derived_id("overpayment", payment),
        a2.refunded_to_gold,
        OverpaymentReason.OVERPAYMENT,
    )
    # The repayment fact keeps the same allocation (reconcile checks money in = money out with it).
    stored = await billing.pool.fetchval("SELECT allocation FROM repayments WHERE payment_id = $1", payment)
    assert (stored["prepayment_used"], stored["refunded_to_gold"]) == (tenge(1_000), tenge(3_000))
    # Nothing is left to bill.
    assert (await calendar_of(billing, c))["next_bill"] is None


async def test_a_customer_who_stops_paying_is_penalised_once_per_bill_with_parts(billing: Billing) -> None:
    # Q1476/Q1505: one 2,000 penalty per overdue bill with parts. A year without paying: four bills
    # with parts, four penalties; the last two are brought forward onto bills holding nothing else,
    # which are not penalised again (docs/billing.md §4), and no bill follows them.
    c = await billing.open(D("2026-01-05"))
    await billing.buy(c, tenge(40_000), D("2026-01-06"))
    await billing.command_day(D("2026-12-31"))
    listed = await billing.bills(c)
    assert [(b["statement_date"], b["amount"], b["penalty"]) for b in listed] == [
        (D("2026-02-05"), tenge(10_000), 0),
        (D("2026-03-05"), tenge(10_000), 0),
        (D("2026-04-05"), tenge(12_000), tenge(2_000)),
        (D("2026-05-05"), tenge(12_000), tenge(2_000)),
        (D("2026-06-05"), tenge(2_000), tenge(2_000)),
        (D("2026-07-05"), tenge(2_000), tenge(2_000)),
    ]
    penalised = {
        r["bill_id"]
        for r in await billing.pool.fetch("SELECT bill_id FROM penalties WHERE customer_id = $1", c)
    }
    assert penalised == {b["bill_id"] for b in listed[:4]}
    assert len(await billing.wait_events("PenaltyApplied", c, 4)) == 4
    assert await billing.count("overdue_records", c) == 6  # every unpaid bill is recorded overdue
    cal = await calendar_of(billing, c)
    assert cal["next_bill"] is None
    assert [m["status"] for m in cal["months"]] == ["OVERDUE"] * 6
    assert sum(m["owed"] for m in cal["months"]) == tenge(40_000 + 4 * 2_000)
