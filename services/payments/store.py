"""SQL of the payments service ($n parameters only); every function runs on the caller's connection."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from services.payments.domain import (
    AccountType,
    CustomerAccount,
    PaymentStatus,
    Posting,
    SystemAccount,
    start,
    transition,
)
from services.payments.domain.ledger import Account
from shared.db import Conn
from shared.trust import Origin


class InsufficientFunds(Exception):
    """A customer account would go below zero; the caller's savepoint rolls the posting back."""


def account_ref(account: Account) -> tuple[str, UUID | None]:
    """``(account column, customer id)`` of a ledger account."""
    if isinstance(account, CustomerAccount):
        return account.type.value, UUID(account.customer_id)
    return account.value, None


def account_from(name: str, customer_id: UUID) -> Account:
    """The ledger account stored as ``name`` (GOLD/WALLET of ``customer_id``, else a system account)."""
    if name in (AccountType.GOLD, AccountType.WALLET):
        return CustomerAccount(str(customer_id), AccountType(name))
    return SystemAccount(name)


async def insert_customer(
    conn: Conn,
    customer_id: UUID,
    phone: str,
    full_name: str,
    tariff_profile: str,
    registration_sha256: str,
    at: datetime,
    iin: str | None = None,
) -> bool:
    """Store a new customer's local copy and open GOLD and WALLET; False if the customer exists.

    An existing copy is never overwritten (shared/customers.py: a registration is applied once).
    """
    inserted = await conn.fetchval(
        "INSERT INTO customers(customer_id, phone, full_name, tariff_profile, registered_at, "
        "registration_sha256, iin) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (customer_id) DO NOTHING "
        "RETURNING true",
        customer_id,
        phone,
        full_name,
        tariff_profile,
        at,
        registration_sha256,
        iin,
    )
    if not inserted:
        return False
    await conn.execute(
        "INSERT INTO accounts(customer_id, kind) VALUES ($1, 'GOLD'), ($1, 'WALLET') ON CONFLICT DO NOTHING",
        customer_id,
    )
    return True


async def learn_iin(conn: Conn, customer_id: UUID, iin: str) -> None:
    """Store the registered IIN of a customer stored before migration 004 (only where it is unknown)."""
    await conn.execute(
        "UPDATE customers SET iin = $2 WHERE customer_id = $1 AND iin IS NULL", customer_id, iin
    )


async def change_phone(conn: Conn, customer_id: UUID, phone: str, changed_at: datetime) -> None:
    """Store the customer's new registered phone (``CustomerPhoneChanged``)."""
    await conn.execute(
        "UPDATE customers SET phone = $2, phone_changed_at = $3 WHERE customer_id = $1",
        customer_id,
        phone,
        changed_at,
    )


async def customer(conn: Conn, customer_id: UUID, *, for_update: bool = False) -> dict[str, Any] | None:
    """The customer's local copy, or None; ``for_update`` locks the row for this transaction."""
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT * FROM customers WHERE customer_id = $1{lock}", customer_id)
    return dict(row) if row is not None else None


async def balance(conn: Conn, customer_id: UUID, kind: str) -> int:
    """Balance of a customer account in tiyn."""
    value = await conn.fetchval(
        "SELECT balance FROM accounts WHERE customer_id = $1 AND kind = $2", customer_id, kind
    )
    return int(value or 0)


async def apply_posting(conn: Conn, posting: Posting, at: datetime) -> None:
    """Write a posting's entries and move customer balances; ``InsufficientFunds`` if one would go negative.

    The debit is a conditional UPDATE (``balance + amount >= 0``), so concurrent spenders of one
    account serialise on its row and the loser sees no row instead of a negative balance. Customer
    rows are touched in a fixed order so two postings never deadlock.
    """
    customer_legs = sorted(
        (
            (str(e.account.customer_id), e.account.type.value, e.amount.tiyn)
            for e in posting.entries
            if isinstance(e.account, CustomerAccount)
        ),
    )
    for customer_id, kind, amount in customer_legs:
        ok = await conn.fetchval(
            "UPDATE accounts SET balance = balance + $3 "
            "WHERE customer_id = $1 AND kind = $2 AND balance + $3 >= 0 RETURNING true",
            UUID(customer_id),
            kind,
            amount,
        )
        if not ok:
            raise InsufficientFunds(f"{customer_id}/{kind}")
    rows = []
    for e in posting.entries:
        name, owner = account_ref(e.account)
        rows.append((UUID(posting.payment_id), posting.kind.value, name, owner, e.amount.tiyn, at))
    await conn.executemany(
        "INSERT INTO ledger_entries(payment_id, posting_kind, account, customer_id, amount, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        rows,
    )


_PAYMENT_COLUMNS = frozenset(
    {
        "payment_id", "request_id", "customer_id", "kind", "status", "amount", "fee", "total", "funding",
        "channel", "source_account", "held", "category", "provider", "provider_account", "merchant",
        "partner_id", "order_id", "bonus_amount", "to_customer_id", "to_account", "red_state",
        "red_plan_id", "bonus_state", "saga_deadline", "provider_due_at", "reason_code",
        "receipt_number", "refunded", "created_at", "completed_at", "updated_at", "commanded_by", "key_id",
    }
)  # fmt: skip


async def insert_payment(conn: Conn, fields: dict[str, Any]) -> None:
    """Insert a payment row and its first status-history entry.

    The status must be one a payment starts in (the status machine's ``start``), else
    ``IllegalStart`` and nothing is written.
    """
    unknown = set(fields) - _PAYMENT_COLUMNS
    assert not unknown, unknown
    start(PaymentStatus(fields["status"]))
    names = list(fields)
    placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    await conn.execute(
        f"INSERT INTO payments({', '.join(names)}) VALUES ({placeholders})",  # names checked
        *fields.values(),
    )
    await add_history(
        conn, fields["payment_id"], fields["status"], fields.get("reason_code"), fields["updated_at"]
    )


async def update_payment(conn: Conn, payment_id: UUID, fields: dict[str, Any]) -> None:
    """Update columns of a payment; a ``status`` is appended to the history.

    A ``status`` must be a transition the status machine allows from the stored one (the row is
    locked first), else ``IllegalTransition`` and nothing is written.
    """
    unknown = set(fields) - _PAYMENT_COLUMNS
    assert not unknown, unknown
    if "status" in fields:
        current = await conn.fetchval(
            "SELECT status FROM payments WHERE payment_id = $1 FOR UPDATE", payment_id
        )
        if current is None:
            raise LookupError(f"no payment {payment_id}")
        transition(PaymentStatus(current), PaymentStatus(fields["status"]))
    names = list(fields)
    sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, start=2))
    await conn.execute(
        f"UPDATE payments SET {sets} WHERE payment_id = $1",  # names checked
        payment_id,
        *fields.values(),
    )
    if "status" in fields:
        await add_history(conn, payment_id, fields["status"], fields.get("reason_code"), fields["updated_at"])


async def add_history(conn: Conn, payment_id: UUID, status: str, reason: str | None, at: datetime) -> None:
    """Append one status change."""
    await conn.execute(
        "INSERT INTO payment_status_history(payment_id, status, reason_code, at) VALUES ($1, $2, $3, $4)",
        payment_id,
        status,
        reason,
        at,
    )


async def lock_payment(conn: Conn, payment_id: UUID) -> dict[str, Any] | None:
    """The payment row, locked for this transaction."""
    row = await conn.fetchrow("SELECT * FROM payments WHERE payment_id = $1 FOR UPDATE", payment_id)
    return dict(row) if row is not None else None


async def save_challenge(
    conn: Conn, payment_id: UUID, code_hash: str, expires_at: datetime, attempts: int
) -> None:
    """Store (or replace) the keyed hash of a one-time code; never the code."""
    await conn.execute(
        "INSERT INTO otp_challenges(payment_id, code_hash, expires_at, attempts_left) "
        "VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (payment_id) DO UPDATE SET code_hash = EXCLUDED.code_hash, "
        "expires_at = EXCLUDED.expires_at, attempts_left = EXCLUDED.attempts_left",
        payment_id,
        code_hash,
        expires_at,
        attempts,
    )


async def challenge(conn: Conn, payment_id: UUID) -> dict[str, Any] | None:
    """The stored challenge of a payment."""
    row = await conn.fetchrow("SELECT * FROM otp_challenges WHERE payment_id = $1", payment_id)
    return dict(row) if row is not None else None


async def set_attempts(conn: Conn, payment_id: UUID, attempts_left: int) -> None:
    """Record a spent attempt."""
    await conn.execute(
        "UPDATE otp_challenges SET attempts_left = $2 WHERE payment_id = $1", payment_id, attempts_left
    )


async def insert_refund(
    conn: Conn,
    refund_id: UUID,
    payment_id: UUID,
    amount: int,
    bonus_share: int,
    reason: str,
    at: datetime,
    origin: Origin | None = None,
) -> None:
    """Record a refund and who commanded it (``origin``: the verified sender of the Refund)."""
    await conn.execute(
        "INSERT INTO refunds(refund_id, payment_id, amount, bonus_share, reason, created_at, commanded_by, "
        "key_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        refund_id,
        payment_id,
        amount,
        bonus_share,
        reason,
        at,
        origin.principal if origin else None,
        origin.key_id if origin else None,
    )


async def insert_event_credit(
    conn: Conn,
    *,
    event_id: UUID,
    event_type: str,
    reference_id: UUID,
    customer_id: UUID,
    account: str,
    amount: int,
    origin: Origin | None,
    at: datetime,
) -> None:
    """Record a credit commanded by another service's event, and that event's verified sender."""
    await conn.execute(
        "INSERT INTO event_credits(event_id, event_type, reference_id, customer_id, account, amount, "
        "commanded_by, key_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        event_id,
        event_type,
        reference_id,
        customer_id,
        account,
        amount,
        origin.principal if origin else None,
        origin.key_id if origin else None,
        at,
    )


async def next_receipt_sequence(conn: Conn) -> int:
    """The next receipt sequence number."""
    return int(await conn.fetchval("SELECT nextval('receipt_seq')"))


async def due_payments(conn: Conn, now: datetime) -> list[tuple[UUID, str]]:
    """Open payments the janitor must look at: ``(payment id, why)``."""
    rows = await conn.fetch(
        """
        SELECT p.payment_id, 'otp' AS why FROM payments p JOIN otp_challenges o USING (payment_id)
         WHERE p.status = 'PENDING_CONFIRMATION' AND o.expires_at <= $1
        UNION ALL
        SELECT payment_id, 'saga' FROM payments
         WHERE status = 'PENDING_PROVIDER' AND saga_deadline IS NOT NULL AND saga_deadline <= $1
        UNION ALL
        SELECT payment_id, 'provider' FROM payments
         WHERE status = 'PENDING_PROVIDER' AND provider_due_at IS NOT NULL AND provider_due_at <= $1
        """,
        now,
    )
    return [(r["payment_id"], r["why"]) for r in rows]
