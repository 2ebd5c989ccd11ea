"""SQL of card payments (``card_payments``, migration 005); every function runs on the caller's connection."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from shared.db import Conn

_COLUMNS = frozenset(
    {
        "card_token", "issuer", "state", "challenge_expires_at", "charge_due_at", "attempts", "charge_ref",
        "last_answer", "updated_at",
    }
)  # fmt: skip


async def insert(
    conn: Conn, payment_id: UUID, card_token: str, issuer: str, at: datetime, **fields: Any
) -> None:
    """Record a card payment (its ``state`` and any other column in ``fields``)."""
    unknown = set(fields) - _COLUMNS
    assert not unknown, unknown
    names = ["payment_id", "card_token", "issuer", "created_at", "updated_at", *fields]
    values = [payment_id, card_token, issuer, at, at, *fields.values()]
    placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    await conn.execute(
        f"INSERT INTO card_payments({', '.join(names)}) VALUES ({placeholders})",  # names checked
        *values,
    )


async def get(conn: Conn, payment_id: UUID) -> dict[str, Any] | None:
    """The card payment of ``payment_id``, or None (not a card payment)."""
    row = await conn.fetchrow("SELECT * FROM card_payments WHERE payment_id = $1", payment_id)
    return dict(row) if row is not None else None


async def update(conn: Conn, payment_id: UUID, fields: dict[str, Any]) -> None:
    """Update columns of a card payment."""
    unknown = set(fields) - _COLUMNS
    assert not unknown, unknown
    names = list(fields)
    sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, start=2))
    await conn.execute(
        f"UPDATE card_payments SET {sets} WHERE payment_id = $1",  # names checked
        payment_id,
        *fields.values(),
    )


async def due(conn: Conn, now: datetime) -> list[tuple[UUID, str]]:
    """Open card payments the janitor must look at: ``(payment id, why)``.

    ``challenge``: the issuer's 3-D Secure code expired unanswered; ``charge``: a charge is due (the
    first one of a payment without any code, or asking again after an unknown outcome).
    """
    rows = await conn.fetch(
        """
        SELECT c.payment_id, 'challenge' AS why FROM card_payments c JOIN payments p USING (payment_id)
         WHERE c.state = 'CHALLENGE' AND c.challenge_expires_at <= $1 AND p.status = 'PENDING_CONFIRMATION'
        UNION ALL
        SELECT c.payment_id, 'charge' FROM card_payments c JOIN payments p USING (payment_id)
         WHERE c.state IN ('AUTHORISED', 'UNKNOWN') AND c.charge_due_at <= $1
           AND p.status = 'PENDING_PROVIDER'
        """,
        now,
    )
    return [(r["payment_id"], r["why"]) for r in rows]
