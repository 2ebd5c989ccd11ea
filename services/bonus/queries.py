"""Read-only queries for the ops CLI: a customer's balance and ledger."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from shared.db import Queryable

_SIGNED = "CASE WHEN kind IN ('ACCRUAL', 'RESTORE') THEN amount ELSE -amount END"


async def balance(pool: Queryable, customer_id: UUID) -> int:
    """The customer's bonus balance in tiyn (0 for a customer bonus never saw)."""
    value = await pool.fetchval("SELECT balance FROM balances WHERE customer_id = $1", customer_id)
    return int(value or 0)


async def ledger_sum(pool: asyncpg.Pool, customer_id: UUID) -> int:
    """The sum of the customer's signed ledger entries, in tiyn (equals ``balance``)."""
    value = await pool.fetchval(
        f"SELECT COALESCE(sum({_SIGNED}), 0) FROM ledger_entries WHERE customer_id = $1", customer_id
    )
    return int(value)


async def ledger(pool: asyncpg.Pool, customer_id: UUID) -> list[dict[str, Any]]:
    """The customer's ledger entries, oldest first, each with its signed effect and running balance."""
    rows = await pool.fetch(
        f"SELECT id, kind, payment_id, refund_id, amount, shortfall, rule_set, rule_id, promotion_id, "
        f"percent, event_id, created_at, {_SIGNED} AS signed, "
        f"sum({_SIGNED}) OVER (ORDER BY id) AS running_balance "
        "FROM ledger_entries WHERE customer_id = $1 ORDER BY id",
        customer_id,
    )
    return [dict(r.items()) for r in rows]


async def history(db: Queryable, customer_id: UUID, *, limit: int | None = None) -> dict[str, Any]:
    """The customer's bonus balance and ledger, newest entry first (at most ``limit``), in tiyn.

    Each entry carries its signed effect and the running balance after it; ``known`` is false for a
    customer bonus never saw (balance 0, no entries). Give a connection in a transaction for one snapshot.
    """
    value = await db.fetchval("SELECT balance FROM balances WHERE customer_id = $1", customer_id)
    rows = await db.fetch(
        f"SELECT * FROM (SELECT id, kind, payment_id, refund_id, amount, shortfall, rule_set, rule_id, "
        f"promotion_id, percent, created_at, {_SIGNED} AS signed, "
        f"sum({_SIGNED}) OVER (ORDER BY id) AS running_balance "
        "FROM ledger_entries WHERE customer_id = $1) e ORDER BY id DESC LIMIT $2",
        customer_id,
        limit,
    )
    return {
        "customer_id": customer_id,
        "known": value is not None,
        "balance": int(value or 0),
        "entries": [{**dict(r), "running_balance": int(r["running_balance"])} for r in rows],
    }
