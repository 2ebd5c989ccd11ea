"""Read-only queries for the ops CLI: a customer's balance and ledger."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

_SIGNED = "CASE WHEN kind IN ('ACCRUAL', 'RESTORE') THEN amount ELSE -amount END"


async def balance(pool: asyncpg.Pool, customer_id: UUID) -> int:
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
