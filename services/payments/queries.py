"""Read-only queries for operators (the ops CLI): a customer's payments with their statuses."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from shared.db import Queryable


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


#: Payment statuses that still hold or may still move money.
IN_FLIGHT = ("PENDING_CONFIRMATION", "PENDING_PROVIDER")


async def customer_summary(db: Queryable, customer_id: UUID) -> dict[str, Any] | None:
    """The customer as payments knows them: registration, Kaspi Gold/Wallet balances (tiyn) and what is
    in flight (payments awaiting a code or a provider, and the money they hold). ``None`` when payments
    has no registration for this customer. Give a connection in a transaction for one snapshot."""
    row = await db.fetchrow(
        "SELECT customer_id, phone, full_name, tariff_profile, registered_at, phone_changed_at "
        "FROM customers WHERE customer_id = $1",
        customer_id,
    )
    if row is None:
        return None
    accounts = await db.fetch(
        "SELECT kind, balance FROM accounts WHERE customer_id = $1 ORDER BY kind", customer_id
    )
    pending = await db.fetchrow(
        "SELECT count(*) AS payments, COALESCE(sum(held), 0) AS held FROM payments "
        "WHERE customer_id = $1 AND status = ANY($2::text[])",
        customer_id,
        list(IN_FLIGHT),
    )
    assert pending is not None
    return {
        **dict(row),
        "accounts": {r["kind"]: int(r["balance"]) for r in accounts},
        "in_flight": {"payments": int(pending["payments"]), "held": int(pending["held"])},
    }
