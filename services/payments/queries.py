"""Read-only queries for operators (the ops CLI): a customer's payments with their statuses."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg


async def payment_history(pool: asyncpg.Pool, customer_id: UUID) -> list[dict[str, Any]]:
    """The customer's payments, newest first, each with its status history (oldest first)."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT payment_id, request_id, kind, status, amount, fee, total, funding, channel, category, "
            "provider, merchant, reason_code, receipt_number, refunded, created_at, completed_at "
            "FROM payments WHERE customer_id = $1 ORDER BY created_at DESC, payment_id",
            customer_id,
        )
        history = await conn.fetch(
            "SELECT h.payment_id, h.status, h.reason_code, h.at FROM payment_status_history h "
            "JOIN payments p USING (payment_id) WHERE p.customer_id = $1 ORDER BY h.id",
            customer_id,
        )
    by_payment: dict[UUID, list[dict[str, Any]]] = {}
    for h in history:
        by_payment.setdefault(h["payment_id"], []).append(
            {"status": h["status"], "reason_code": h["reason_code"], "at": h["at"]}
        )
    return [{**dict(r), "history": by_payment.get(r["payment_id"], [])} for r in rows]
