"""Read-side queries for the ops CLI: an account summary, its bills and its bill calendar (no locks,
no writes)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from services.billing.domain import CalendarMonth, WorkingDays
from services.billing.domain import bill_calendar as calendar_of
from services.billing.store import account_from_json, bill_uuid
from shared.calendar import load_kz_calendar
from shared.db import Queryable


async def account_summary(pool: Queryable, customer_id: UUID) -> dict[str, Any] | None:
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


def _month(m: CalendarMonth) -> dict[str, Any]:
    return {
        "statement_date": m.statement_date,
        "status": m.status.value,
        "bill_id": bill_uuid(m.bill_id) if m.bill_id is not None else None,
        "due_on": m.due_on,
        "due_at": m.due_at,
        "amount": m.amount.tiyn,
        "owed": m.owed.tiyn,
        "penalty": m.penalty.tiyn,
        "prepayment": m.prepayment.tiyn,
        "penalty_charged": m.penalty_charged.tiyn,
        "lines": [
            {
                "purchase_id": UUID(ln.purchase_id),
                "part_no": ln.part_no,
                "amount": ln.amount.tiyn,
                "price": ln.price.tiyn if ln.price is not None else None,
                "purchased_on": ln.purchased_on,
            }
            for ln in m.lines
        ],
    }


async def bill_calendar(
    pool: asyncpg.Pool, customer_id: UUID, *, calendar: WorkingDays | None = None
) -> dict[str, Any] | None:
    """The customer's bill calendar (seed 002, Q1486, Q15762; docs/billing.md §8), amounts in tiyn.

    Every bill issued, then the bills to come as the daily job will issue them from the account's
    close-of-business watermark on, if nothing else happens first; ``next_bill`` is the first to come.
    ``None`` when the customer has no Red account.
    """
    row = await pool.fetchrow(
        "SELECT snapshot, last_closed_business_date FROM accounts WHERE customer_id = $1", customer_id
    )
    if row is None:
        return None
    account = account_from_json(row["snapshot"])
    cal = calendar_of(account, row["last_closed_business_date"], calendar or load_kz_calendar())
    months = [_month(m) for m in cal.months]
    upcoming = [m for m in months if m["status"] == "UPCOMING"]
    return {
        "customer_id": customer_id,
        "as_of": cal.as_of,
        "billing_day": account.billing_day,
        "closed": account.closed,
        "carried": account.carried.tiyn,
        "penalty_due": account.penalty_due.tiyn,
        "next_bill": upcoming[0] if upcoming else None,
        "months": months,
    }


async def issued_bills(
    db: Queryable, customer_id: UUID, *, calendar: WorkingDays | None = None
) -> dict[str, Any] | None:
    """Every bill issued to the customer, oldest first, with its status and what is still owed (tiyn).

    A bill is ``PAID``, ``OPEN`` (not yet due) or ``OVERDUE`` (past its due date, the overdue recorded
    or about to be), as in the bill calendar; ``overdue_since`` and ``penalty_on`` are the dates billing
    recorded the overdue and charged the one-time penalty. ``None`` when the customer has no Red account.
    """
    row = await db.fetchrow(
        "SELECT snapshot, last_closed_business_date FROM accounts WHERE customer_id = $1", customer_id
    )
    if row is None:
        return None
    facts = await db.fetch(
        "SELECT b.bill_id, o.overdue_since, p.applied_on AS penalty_on FROM bills b "
        "LEFT JOIN overdue_records o USING (bill_id) LEFT JOIN penalties p USING (bill_id) "
        "WHERE b.customer_id = $1",
        customer_id,
    )
    account = account_from_json(row["snapshot"])
    cal = calendar_of(account, row["last_closed_business_date"], calendar or load_kz_calendar())
    known = {r["bill_id"]: r for r in facts}
    out = []
    for month in cal.months:
        if month.bill_id is None:
            continue  # still to come
        view = _month(month)
        fact = known.get(view["bill_id"])
        view["overdue_since"] = fact["overdue_since"] if fact is not None else None
        view["penalty_on"] = fact["penalty_on"] if fact is not None else None
        out.append(view)
    return {
        "customer_id": customer_id,
        "as_of": cal.as_of,
        "billing_day": account.billing_day,
        "closed": account.closed,
        "bills": out,
    }


async def customer_red(db: Queryable, customer_id: UUID) -> dict[str, Any] | None:
    """The customer's Kaspi Red at a glance (tiyn): limit, available, outstanding, carried prepayment,
    the penalty not yet billed, the open bills with their due dates and what each still owes, and every
    penalty charged. ``None`` when the customer has no Red account. Give a connection in a transaction
    for one snapshot."""
    summary = await account_summary(db, customer_id)
    if summary is None:
        return None
    issued = await issued_bills(db, customer_id)
    penalties = await db.fetch(
        "SELECT p.bill_id, b.statement_date, p.amount, p.applied_on FROM penalties p JOIN bills b "
        "USING (bill_id) WHERE p.customer_id = $1 ORDER BY p.applied_on, b.statement_date",
        customer_id,
    )
    bills_ = issued["bills"] if issued is not None else []
    return {
        **summary,
        "open_bills": [b for b in bills_ if b["status"] != "PAID"],
        "penalties": [dict(r) for r in penalties],
    }
