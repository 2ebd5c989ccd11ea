"""Billing's business day over many Red accounts, timed in-process.

Accounts are seeded in bulk the way billing writes them: each snapshot is built with billing's own
domain code (``open_account`` + ``approve_purchase``) and serialised with ``store.account_to_json``,
with the close-of-business watermark at the day before the statement date (as if every earlier
day had run). Then ``BillingService.run_business_day`` is timed for the statement date (bills),
for the first overdue day (overdue records) and the second (penalties).

A database of its own (billing's migrations only): the events the job writes to billing's outbox
stay there, so the running platform's notify does not get 200,000 bills to deliver.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import UUID, uuid5

import asyncpg

from services.billing import store
from services.billing.domain.purchases import PurchaseApproved, approve_purchase, open_account
from services.billing.service import BillingService
from shared.calendar import load_kz_calendar
from shared.clock import ALMATY, ManualClock
from shared.db import create_pool, migrate, service_migrations
from shared.money import Money
from shared.ops.platform import ROOT, recreate_database

NS = UUID("5a1f3c0e-8a57-4bd5-9b0e-00000000b111")
OPENED = date(2025, 9, 22)
PURCHASED = date(2025, 9, 25)
STATEMENT = date(2025, 10, 22)


@dataclass
class BillingResult:
    """What the billing day measured."""

    accounts: int
    seed_s: float
    bills: int
    bill_day_s: float
    overdue: int
    overdue_day_s: float
    penalties: int
    penalty_day_s: float

    @property
    def bills_per_s(self) -> float:
        """Bills issued per second."""
        return self.bills / self.bill_day_s if self.bill_day_s else 0.0

    @property
    def overdue_per_s(self) -> float:
        """Overdue records per second."""
        return self.overdue / self.overdue_day_s if self.overdue_day_s else 0.0

    @property
    def penalties_per_s(self) -> float:
        """Penalties per second."""
        return self.penalties / self.penalty_day_s if self.penalty_day_s else 0.0


def _snapshot(n: int) -> tuple[UUID, str]:
    customer = uuid5(NS, f"red-{n}")
    account = open_account(str(customer), Money(300_000_00), OPENED, new_terms_accepted=True)
    approved = approve_purchase(
        account, str(uuid5(NS, f"purchase-{n}")), Money(40_000_00 + n % 997), PURCHASED
    )
    assert isinstance(approved, PurchaseApproved)
    return customer, json.dumps(store.account_to_json(approved.account))


async def seed(conn: asyncpg.Connection, accounts: int, chunk: int = 10_000) -> None:
    """Insert ``accounts`` Red accounts with one purchase each, watermark the day before the statement."""
    for start in range(0, accounts, chunk):
        rows = [_snapshot(n) for n in range(start, min(accounts, start + chunk))]
        await conn.execute(
            "INSERT INTO billing.accounts(customer_id, snapshot, last_closed_business_date) "
            "SELECT c, s::jsonb, $3 FROM unnest($1::uuid[], $2::text[]) AS x(c, s)",
            [c for c, _ in rows],
            [s for _, s in rows],
            STATEMENT - timedelta(days=1),
        )


async def run(admin_dsn: str, database: str, accounts: int, batch_size: int = 500) -> BillingResult:
    """Seed, then time the bill day, the first overdue day and the penalty day."""
    dsn = await recreate_database(admin_dsn, database)
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn, "billing", service_migrations(ROOT / "services" / "billing"))
        t0 = time.perf_counter()
        await seed(conn, accounts)
        await conn.execute("ANALYZE billing.accounts")
        seed_s = time.perf_counter() - t0
    finally:
        await conn.close()
    pool = await create_pool(dsn, "billing", min_size=1, max_size=2)
    try:
        clock = ManualClock(_at(STATEMENT))
        service = BillingService(pool, calendar=load_kz_calendar(), clock=clock, batch_size=batch_size)
        t0 = time.perf_counter()
        bills = await service.run_business_day(STATEMENT, requested_by="bench")
        bill_s = time.perf_counter() - t0
        due = await pool.fetchval("SELECT min(due_at) FROM bills")
        overdue_day = due.astimezone(ALMATY).date() + timedelta(days=1)
        # The days between had nothing to do for these accounts (no billing date, nothing due):
        # move the watermark as their runs would have, then time the overdue day and the next.
        await pool.execute(
            "UPDATE accounts SET last_closed_business_date = $1", overdue_day - timedelta(days=1)
        )
        await pool.execute("VACUUM ANALYZE accounts")
        clock.set(_at(overdue_day))
        t0 = time.perf_counter()
        overdue = await service.run_business_day(overdue_day, requested_by="bench")
        overdue_s = time.perf_counter() - t0
        clock.set(_at(overdue_day + timedelta(days=1)))
        t0 = time.perf_counter()
        penalties = await service.run_business_day(overdue_day + timedelta(days=1), requested_by="bench")
        penalty_s = time.perf_counter() - t0
    finally:
        await pool.close()
    return BillingResult(
        accounts, seed_s, bills.bills, bill_s, overdue.overdue, overdue_s, penalties.penalties, penalty_s
    )


def _at(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, 9, 0, tzinfo=ALMATY)
