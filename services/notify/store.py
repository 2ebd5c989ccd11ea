"""notify's SQL: customers, deliveries, receipts, dead letters (schema ``notify``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from shared.db import Conn


@dataclass(frozen=True, slots=True)
class CustomerRow:
    """The local copy of a customer (from CustomerRegistered)."""

    customer_id: UUID
    locale: str
    phone: str
    email: str | None
    #: Given name and surname initial ("Айгерим К."), for the other side of a transfer; None if unknown.
    short_name: str | None = None


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """A delivery to claim."""

    channel: str
    address: str | None
    title: str
    body: str
    data: dict[str, Any]
    #: A one-time-code SMS: ``body`` is redacted and only the event can send it (nothing of the code is kept).
    secret: bool = False
    secret_expires_at: datetime | None = None


async def insert_customer(
    conn: Conn,
    customer_id: UUID,
    locale: str,
    phone: str,
    email: str | None,
    registration_sha256: str,
    short_name: str | None = None,
) -> bool:
    """Store a new customer's locale, contacts and short name; False if the customer exists (never
    overwritten)."""
    inserted = await conn.fetchval(
        "INSERT INTO customers(customer_id, locale, phone, email, registration_sha256, short_name) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (customer_id) DO NOTHING RETURNING true",
        customer_id,
        locale,
        phone,
        email,
        registration_sha256,
        short_name,
    )
    return bool(inserted)


async def lock_customer(conn: Conn, customer_id: UUID) -> asyncpg.Record | None:
    """The customer's stored row (contacts, registration digest, last phone change), locked."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT customer_id, locale, phone, email, registration_sha256, phone_changed_at FROM customers "
        "WHERE customer_id = $1 FOR UPDATE",
        customer_id,
    )
    return row


async def change_phone(conn: Conn, customer_id: UUID, phone: str, changed_at: datetime) -> None:
    """Store the customer's new registered phone (``CustomerPhoneChanged``)."""
    await conn.execute(
        "UPDATE customers SET phone = $2, phone_changed_at = $3, updated_at = now() WHERE customer_id = $1",
        customer_id,
        phone,
        changed_at,
    )


async def get_customer(conn: Conn | asyncpg.Pool, customer_id: UUID) -> CustomerRow | None:
    """The customer's local copy, if registered."""
    row = await conn.fetchrow(
        "SELECT customer_id, locale, phone, email, short_name FROM customers WHERE customer_id = $1",
        customer_id,
    )
    return CustomerRow(**dict(row)) if row else None


async def claim_deliveries(
    conn: Conn,
    *,
    source_event_id: UUID,
    event_type: str,
    customer_id: UUID,
    correlation_id: UUID,
    locale: str,
    deliveries: list[NewDelivery],
    now: datetime,
    about_event_id: UUID | None = None,
) -> None:
    """Insert PENDING deliveries; an (event, channel) already claimed is left as it is.

    ``about_event_id``: the event a message to another customer is about (a transfer's recipient);
    its ``source_event_id`` is then the message's own id, derived from the event's.
    """
    await conn.executemany(
        "INSERT INTO deliveries(source_event_id, event_type, channel, customer_id, correlation_id, locale, "
        "address, title, body, data, secret, secret_expires_at, created_at, about_event_id) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) "
        "ON CONFLICT (source_event_id, channel) DO NOTHING",
        [
            (
                source_event_id,
                event_type,
                d.channel,
                customer_id,
                correlation_id,
                locale,
                d.address,
                d.title,
                d.body,
                d.data,
                d.secret,
                d.secret_expires_at,
                now,
                about_event_id,
            )
            for d in deliveries
        ],
    )


async def pending_ids(conn: Conn | asyncpg.Pool, source_event_id: UUID | None = None) -> list[int]:
    """PENDING delivery ids, of one event or all, oldest first."""
    if source_event_id is None:
        rows = await conn.fetch("SELECT id FROM deliveries WHERE status = 'PENDING' ORDER BY id")
    else:
        rows = await conn.fetch(
            "SELECT id FROM deliveries WHERE status = 'PENDING' AND source_event_id = $1 ORDER BY id",
            source_event_id,
        )
    return [r["id"] for r in rows]


async def lock_pending(conn: Conn, delivery_id: int) -> asyncpg.Record | None:
    """Lock a PENDING delivery for this transaction; None if done or being sent by someone else."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT * FROM deliveries WHERE id = $1 AND status = 'PENDING' FOR UPDATE SKIP LOCKED", delivery_id
    )
    return row


async def finish(
    conn: Conn, delivery_id: int, *, status: str, attempts: int, error: str | None, now: datetime
) -> None:
    """Mark a delivery SENT or FAILED."""
    await conn.execute(
        "UPDATE deliveries SET status = $2, attempts = $3, last_error = $4, finished_at = $5 WHERE id = $1",
        delivery_id,
        status,
        attempts,
        error,
        now,
    )


async def add_dead_letter(
    conn: Conn, row: asyncpg.Record, *, attempts: int, reason_code: str, error: str, now: datetime
) -> None:
    """Record a delivery that failed for good."""
    await conn.execute(
        "INSERT INTO delivery_dead_letters(delivery_id, source_event_id, event_type, channel, customer_id, "
        "attempts, reason_code, error, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
        "ON CONFLICT (delivery_id) DO NOTHING",
        row["id"],
        row["source_event_id"],
        row["event_type"],
        row["channel"],
        row["customer_id"],
        attempts,
        reason_code,
        error,
        now,
    )


async def store_receipt(
    conn: Conn,
    *,
    receipt_number: str,
    source_event_id: UUID,
    payment_id: UUID | None,
    customer_id: UUID,
    kind: str,
    data: dict[str, Any],
    now: datetime,
) -> None:
    """Store receipt data once; the first handling wins (same event, same receipt)."""
    await conn.execute(
        "INSERT INTO receipts(receipt_number, source_event_id, payment_id, customer_id, kind, data, "
        "created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (receipt_number) DO NOTHING",
        receipt_number,
        source_event_id,
        payment_id,
        customer_id,
        kind,
        data,
        now,
    )


async def payment_receipt_data(conn: Conn, payment_id: UUID) -> dict[str, Any] | None:
    """The stored receipt data of a payment, if notify saw its PaymentCompleted."""
    data: dict[str, Any] | None = await conn.fetchval(
        "SELECT data FROM receipts WHERE payment_id = $1 AND kind = 'PAYMENT' LIMIT 1", payment_id
    )
    return data
