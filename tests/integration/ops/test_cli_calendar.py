"""``aqsha billing calendar`` against a real PostgreSQL: billing's read model, nothing written."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from uuid import uuid4

import pytest

from services.billing.service import BillingService
from shared.calendar import load_kz_calendar
from shared.clock import ALMATY, SystemClock
from shared.contracts.billing import RedAccountOpened
from shared.contracts.common import Merchant
from shared.contracts.envelope import new_envelope
from shared.contracts.payments import RedPurchaseRequested
from shared.db import create_pool
from shared.money import tenge_to_tiyn as tenge
from shared.settings import Settings
from tests.integration.ops.conftest import ainvoke

pytestmark = pytest.mark.integration


async def test_billing_calendar_reads_the_coming_bills(settings: Settings) -> None:
    pool = await create_pool(settings.db.dsn, "billing")
    try:
        service = BillingService(pool, calendar=load_kz_calendar(), clock=SystemClock())
        customer, purchase = uuid4(), uuid4()
        for payload in (
            RedAccountOpened(
                customer_id=customer,
                limit=tenge(300_000),
                opened_on=date(2025, 9, 22),
                accepted_new_terms=True,
                loan_payment_day=None,
            ),
            RedPurchaseRequested(
                payment_id=purchase,
                customer_id=customer,
                amount=tenge(40_000),
                merchant=Merchant.KASPI_MAGAZIN,
                requested_at=datetime(2025, 10, 20, 12, 0, tzinfo=ALMATY),
            ),
        ):
            async with pool.acquire() as conn, conn.transaction():
                env = new_envelope(payload, producer="test", occurred_at=datetime.now(UTC))
                await service.handle(conn, env)
        await service.run_business_day(date(2025, 10, 21), requested_by="test")
        before = await pool.fetchrow("SELECT version, (SELECT count(*) FROM outbox) AS outbox FROM accounts")

        text = await ainvoke(settings, "billing", "calendar", str(customer))
        assert text.exit_code == 0, text.output
        out = text.stdout.replace("\u00a0", " ")
        assert "closed through 21.10.2025, billing day 22" in out
        assert "next bill 22.10.2025: 10 000 ₸" in out
        # 22.11.2025 is a Saturday: the first bill is due on Monday 24.11 at 20:00.
        assert "22.10.2025  UPCOMING  10 000 ₸, due 24.11.2025 20:00" in out
        assert "part 1/4 of the 40 000 ₸ purchase of 20.10.2025" in out
        assert "22.01.2026  UPCOMING" in out

        as_json = await ainvoke(settings, "billing", "calendar", str(customer), "--json")
        assert as_json.exit_code == 0, as_json.output
        cal = json.loads(as_json.stdout)
        assert cal["next_bill"]["amount"] == tenge(10_000)
        assert cal["next_bill"]["statement_date"] == "2025-10-22"
        assert [m["amount"] for m in cal["months"]] == [tenge(10_000)] * 4
        assert cal["months"][0]["lines"][0]["purchase_id"] == str(purchase)

        # The CLI reads; it never writes.
        after = await pool.fetchrow("SELECT version, (SELECT count(*) FROM outbox) AS outbox FROM accounts")
        assert after is not None
        assert before is not None
        assert dict(after) == dict(before)

        missing = await ainvoke(settings, "billing", "calendar", str(uuid4()))
        assert missing.exit_code == 1
        assert missing.stderr.startswith("aqsha: error: customer ")
        assert "has no Kaspi Red account" in missing.stderr
        assert (await ainvoke(settings, "billing", "calendar", "nope")).exit_code == 2
    finally:
        await pool.close()
