"""SQL of the bonus schema (asyncpg, ``$n`` parameters); every function runs on the caller's connection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from shared.db import Conn
from shared.money import Money

from .domain import BonusLedger, Declined, DeclineReason, EntryKind, LedgerEntry, Redeemed, RedemptionOutcome


async def lock_customer(conn: Conn, customer_id: UUID) -> int:
    """Create the customer's balance row if needed and lock it for this transaction; return the balance.

    Every write for a customer takes this lock first, so concurrent events for one customer are
    serialised and cannot overspend (the row lock is held until the transaction ends).
    """
    await conn.execute(
        "INSERT INTO balances(customer_id) VALUES ($1) ON CONFLICT (customer_id) DO NOTHING", customer_id
    )
    balance = await conn.fetchval(
        "SELECT balance FROM balances WHERE customer_id = $1 FOR UPDATE", customer_id
    )
    return int(balance)


async def load_ledger(conn: Conn, customer_id: UUID) -> BonusLedger:
    """The customer's ledger rebuilt from its rows (validated by the domain)."""
    rows = await conn.fetch(
        "SELECT kind, payment_id, refund_id, amount, shortfall FROM ledger_entries "
        "WHERE customer_id = $1 ORDER BY id",
        customer_id,
    )
    return BonusLedger.from_entries(
        str(customer_id),
        (
            LedgerEntry(
                EntryKind(r["kind"]),
                str(r["payment_id"]),
                Money(r["amount"]),
                refund_id=str(r["refund_id"]) if r["refund_id"] is not None else None,
                shortfall=Money(r["shortfall"]),
            )
            for r in rows
        ),
    )


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """Which rule an accrual came from (kept on the ACCRUAL row for the auditor)."""

    rule_set: str
    rule_id: str
    promotion_id: str | None
    percent: Decimal


async def insert_entries(
    conn: Conn,
    customer_id: UUID,
    entries: tuple[LedgerEntry, ...],
    *,
    event_id: UUID,
    rule: RuleInfo | None = None,
) -> None:
    """Append new ledger rows."""
    await conn.executemany(
        "INSERT INTO ledger_entries(customer_id, kind, payment_id, refund_id, amount, shortfall, "
        "rule_set, rule_id, promotion_id, percent, event_id) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        [
            (
                customer_id,
                e.kind.value,
                UUID(e.payment_id),
                UUID(e.refund_id) if e.refund_id is not None else None,
                e.amount.tiyn,
                e.shortfall.tiyn,
                rule.rule_set if rule else None,
                rule.rule_id if rule else None,
                rule.promotion_id if rule else None,
                rule.percent if rule else None,
                event_id,
            )
            for e in entries
        ],
    )


async def set_balance(conn: Conn, customer_id: UUID, balance: Money) -> None:
    """Store the balance (the CHECK refuses a negative one)."""
    await conn.execute(
        "UPDATE balances SET balance = $2, updated_at = now() WHERE customer_id = $1",
        customer_id,
        balance.tiyn,
    )


async def decision_exists(conn: Conn, payment_id: UUID) -> bool:
    """Whether this payment already has its accrual decision."""
    return bool(await conn.fetchval("SELECT true FROM accrual_decisions WHERE payment_id = $1", payment_id))


@dataclass(frozen=True, slots=True)
class Decision:
    """One accrual decision row."""

    payment_id: UUID
    customer_id: UUID
    event_id: UUID
    kind: str
    completed_at: datetime
    business_date: date
    payment_amount: int
    accrued: int
    base_amount: int | None
    rule: RuleInfo | None
    #: The rule set in force at completion, recorded even when nothing was accrued.
    rule_set_in_force: str | None


async def insert_decision(conn: Conn, d: Decision) -> bool:
    """Record the decision; False when the payment already had one (the unique key is the authority)."""
    row = await conn.fetchval(
        "INSERT INTO accrual_decisions(payment_id, customer_id, event_id, kind, completed_at, business_date, "
        "payment_amount, accrued, base_amount, rule_set, rule_id, promotion_id, percent, outcome) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) "
        "ON CONFLICT (payment_id) DO NOTHING RETURNING true",
        d.payment_id,
        d.customer_id,
        d.event_id,
        d.kind,
        d.completed_at,
        d.business_date,
        d.payment_amount,
        d.accrued,
        d.base_amount,
        d.rule.rule_set if d.rule else d.rule_set_in_force,
        d.rule.rule_id if d.rule else None,
        d.rule.promotion_id if d.rule else None,
        d.rule.percent if d.rule else None,
        "ACCRUED" if d.accrued > 0 else "NO_BONUS",
    )
    return bool(row)


async def find_redemption(conn: Conn, payment_id: UUID) -> RedemptionOutcome | None:
    """The stored outcome of a redemption request for this purchase."""
    row = await conn.fetchrow(
        "SELECT outcome, requested_amount, reason_code, message FROM redemptions WHERE payment_id = $1",
        payment_id,
    )
    if row is None:
        return None
    if row["outcome"] == "REDEEMED":
        return Redeemed(str(payment_id), Money(row["requested_amount"]))
    return Declined(str(payment_id), DeclineReason(row["reason_code"]), row["message"] or "")


async def insert_redemption(
    conn: Conn,
    *,
    payment_id: UUID,
    customer_id: UUID,
    event_id: UUID,
    requested: int,
    purchase: int,
    outcome: RedemptionOutcome,
) -> None:
    """Record a redemption outcome (unique per purchase)."""
    declined = isinstance(outcome, Declined)
    await conn.execute(
        "INSERT INTO redemptions(payment_id, customer_id, event_id, requested_amount, purchase_amount, "
        "outcome, reason_code, message) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        payment_id,
        customer_id,
        event_id,
        requested,
        purchase,
        "DECLINED" if declined else "REDEEMED",
        outcome.reason.value if isinstance(outcome, Declined) else None,
        outcome.detail if isinstance(outcome, Declined) else None,
    )


async def mark_restored(conn: Conn, payment_id: UUID) -> None:
    """Note on the redemption that its bonus was returned."""
    await conn.execute(
        "UPDATE redemptions SET restored_at = now() WHERE payment_id = $1 AND restored_at IS NULL", payment_id
    )
