"""Read side for operators and the app: a customer's inbox, receipts as PDF."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from services.notify.receipts import ReceiptData, render_receipt_pdf


class ReceiptNotFound(LookupError):
    """No receipt has this number."""


@dataclass(frozen=True, slots=True)
class InboxMessage:
    """One in-app message."""

    id: int
    event_type: str
    locale: str
    title: str
    body: str
    link: str | None
    created_at: datetime


async def inbox(pool: asyncpg.Pool, customer_id: UUID, *, limit: int = 100) -> list[InboxMessage]:
    """A customer's in-app messages, newest first."""
    rows = await pool.fetch(
        "SELECT id, event_type, locale, title, body, link, created_at FROM inbox_messages "
        "WHERE customer_id = $1 ORDER BY id DESC LIMIT $2",
        customer_id,
        limit,
    )
    return [InboxMessage(**dict(r)) for r in rows]


async def get_receipt_pdf(pool: asyncpg.Pool, receipt_number: str) -> bytes:
    """The receipt as PDF: rendered on the first fetch (off the event path), then cached."""
    row = await pool.fetchrow("SELECT data, pdf FROM receipts WHERE receipt_number = $1", receipt_number)
    if row is None:
        raise ReceiptNotFound(receipt_number)
    if row["pdf"] is not None:
        return bytes(row["pdf"])
    pdf = await asyncio.to_thread(render_receipt_pdf, ReceiptData.from_json_dict(row["data"]))
    # Rendering is deterministic, so a concurrent fetch caching the same bytes is harmless.
    await pool.execute(
        "UPDATE receipts SET pdf = $2 WHERE receipt_number = $1 AND pdf IS NULL", receipt_number, pdf
    )
    return pdf
