"""A bill names its purchases the way the customer knows them (real PostgreSQL and Kafka).

The merchant of a Red purchase comes with ``RedPurchaseRequested``; billing keeps it on the plan and
``BillIssued``'s lines (and the stored bill) carry it with the purchase date, the part number and the
number of parts (optional fields of ``BillLine``; docs/billing.md).
"""

from __future__ import annotations

from datetime import date

import pytest

from shared.contracts.common import Merchant
from shared.money import tenge_to_tiyn as tenge
from tests.integration.billing.conftest import Billing

pytestmark = pytest.mark.integration
D = date.fromisoformat


async def test_bill_lines_carry_the_merchant_the_purchase_date_and_the_parts(billing: Billing) -> None:
    c = await billing.open(D("2026-01-10"), limit=tenge(200_000))
    purchase = await billing.buy(c, tenge(40_000), D("2026-01-12"))
    await billing.run_day(D("2026-02-10"))

    [issued] = await billing.wait_events("BillIssued", c, 1)
    [line] = issued.payload.lines
    assert (line.purchase_id, line.part_no, line.amount) == (purchase, 1, tenge(10_000))
    assert (line.merchant, line.partner_id, line.purchased_on, line.parts_total) == (
        Merchant.KASPI_MAGAZIN,
        None,
        D("2026-01-12"),
        4,
    )
    [bill] = await billing.bills(c)
    assert bill["lines"] == [
        {
            "purchase_id": str(purchase),
            "part_no": 1,
            "amount": tenge(10_000),
            "merchant": "KASPI_MAGAZIN",
            "partner_id": None,
            "purchased_on": "2026-01-12",
            "parts_total": 4,
        }
    ]
