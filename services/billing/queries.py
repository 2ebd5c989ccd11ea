"""Read-side queries for the ops CLI: an account summary and its bills (no locks, no writes)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from services.billing.store import account_from_json


async def account_summary(pool: asyncpg.Pool, customer_id: UUID) -> dict[str, Any] | None:
    """Limit, available, outstanding, carried prepayment and watermark of a Red account (tiyn)."""
    row = await pool.fetchrow(
        "SELECT snapshot, version, last_closed_business_date FROM accounts WHERE customer_id = $1",
        customer_id,
    )
    if row is None:
        return None
    account = account_from_json(row["snapshot"])
    return {
        "customer_id": customer_id,
        "limit": account.limit.tiyn,
        "available": account.available.tiyn,
        "outstanding": account.outstanding.tiyn,
        "carried": account.carried.tiyn,
        "penalty_due": account.penalty_due.tiyn,
        "billing_day": account.billing_day,
        "new_terms_accepted": account.new_terms_accepted,
        "closed": account.closed,
        "purchases": len(account.purchases),
        "open_bills": len(account.open_bills),
        "last_closed_business_date": row["last_closed_business_date"],
        "version": row["version"],
    }


async def bills(pool: asyncpg.Pool, customer_id: UUID) -> list[dict[str, Any]]:
    """The customer's bills, oldest first, with overdue and penalty facts."""
    rows = await pool.fetch(
        "SELECT b.bill_id, b.statement_date, b.due_at, b.amount, b.penalty, b.carried_prepayment, b.lines, "
        "o.overdue_since, p.amount AS penalty_charged, p.applied_on AS penalty_on "
        "FROM bills b LEFT JOIN overdue_records o USING (bill_id) LEFT JOIN penalties p USING (bill_id) "
        "WHERE b.customer_id = $1 ORDER BY b.statement_date",
        customer_id,
    )
    return [dict(r) for r in rows]
