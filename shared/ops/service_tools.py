"""Service side of the operator CLI: billing's business day, debt lookups, payment history, inbox, receipts.

Each database command opens a small pool on the owning service's schema (``shared.db.create_pool``)
and uses that service's own read queries (``services/*/queries.py``) or use case. A debt lookup goes
through Kafka like the app's: ``LookupDebt`` signed as ``ops``, answered by payments.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final
from uuid import UUID, uuid4

import asyncpg

from shared.contracts.billing import RunBusinessDay
from shared.contracts.envelope import new_envelope
from shared.db import create_pool, init_connection
from shared.money import fmt_tiyn
from shared.ops.common import EXIT_USAGE, OpsError, table
from shared.ops.kafka_tools import (
    Outgoing,
    Sent,
    masked_display,
    masked_envelope,
    operator_signer,
    prepare,
    produce,
    request_reply,
)
from shared.ops.render import short
from shared.settings import Settings
from shared.topics import BILLING_COMMANDS, BILLING_DAYS, PAYMENTS_EVENTS, resolve
from shared.trust import Signer

#: The principal that may write RunBusinessDay (``shared.topics.BILLING_COMMANDS``).
BUSINESS_DAY_PRINCIPAL: Final = "ops"
#: The principal ``aqsha payments lookup`` signs ``LookupDebt`` as (support; it moves no money).
LOOKUP_PRINCIPAL: Final = "ops"
#: The replies payments gives a ``LookupDebt``.
LOOKUP_REPLIES: Final = frozenset({"DebtLookedUp", "DebtLookupFailed"})


def parse_uuid(text: str, what: str = "customer id") -> UUID:
    """A UUID argument; ``OpsError`` (usage) otherwise."""
    try:
        return UUID(text)
    except ValueError:
        raise OpsError(f"invalid {what} {text!r}: expected a UUID", EXIT_USAGE) from None


def parse_date(text: str) -> date:
    """An ISO date argument (``2026-03-31``); ``OpsError`` (usage) otherwise."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise OpsError(f"invalid date {text!r}: expected YYYY-MM-DD", EXIT_USAGE) from None


@asynccontextmanager
async def service_pool(
    settings: Settings, schema: str, *, read_only: bool = False
) -> AsyncIterator[asyncpg.Pool]:
    """A small pool on one service's schema; connection errors become one-line ``OpsError``s.

    ``read_only``: every transaction on it is read-only (the read models: the CLI never writes there).
    """
    try:
        pool = await asyncio.wait_for(
            create_pool(settings.db.dsn, schema, min_size=1, max_size=2, read_only=read_only), 30
        )
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise OpsError(f"cannot connect to PostgreSQL: {exc}") from None
    try:
        yield pool
    except asyncpg.UndefinedTableError as exc:
        raise OpsError(f"{no_schema(settings, schema)} ({exc})") from None
    finally:
        await pool.close()


def no_schema(settings: Settings, schema: str) -> str:
    """The error for a database without a service's tables (a wrong AQSHA_PG_DSN, or not migrated)."""
    database = settings.db.dsn.rsplit("/", 1)[-1].split("?", 1)[0] or "?"
    return (
        f"database {database!r} has no {schema} tables: is AQSHA_PG_DSN the platform's database "
        "(`aqsha config` shows where it comes from)?"
    )


class Snapshot:
    """One read-only, repeatable-read transaction over several services' schemas (one database)."""

    def __init__(self, conn: asyncpg.Connection[Any], settings: Settings) -> None:
        self.conn = conn
        self.settings = settings

    async def schema(self, name: str) -> asyncpg.Connection[Any]:
        """The connection, with unqualified names resolved in service ``name``'s schema."""
        if name not in ("payments", "bonus", "billing", "notify"):
            raise ValueError(f"unknown service schema {name!r}")
        exists = await self.conn.fetchval("SELECT to_regnamespace($1) IS NOT NULL", name)
        if not exists:
            raise OpsError(no_schema(self.settings, name))
        await self.conn.execute(f"SET LOCAL search_path TO {name}")
        return self.conn


@asynccontextmanager
async def read_snapshot(settings: Settings) -> AsyncIterator[Snapshot]:
    """A read-only connection in one repeatable-read transaction: every query sees the same moment, and
    PostgreSQL refuses any write (``default_transaction_read_only``)."""
    try:
        conn = await asyncio.wait_for(
            asyncpg.connect(
                settings.db.dsn,
                server_settings={"default_transaction_read_only": "on", "application_name": "aqsha-ops-read"},
            ),
            30,
        )
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise OpsError(f"cannot connect to PostgreSQL: {exc}") from None
    try:
        await init_connection(conn)
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            yield Snapshot(conn, settings)
    finally:
        await conn.close()


# ------------------------------------------------------------------------------------------ billing
def business_day_command(business_date: date, requested_by: str, suffix: str = "") -> Outgoing:
    """The RunBusinessDay envelope (producer ``ops``), keyed by the ISO date, for aqsha.billing.commands."""
    if not 1 <= len(requested_by) <= 64:
        raise OpsError("--by must be 1 to 64 characters", EXIT_USAGE)
    payload = RunBusinessDay(business_date=business_date, requested_by=requested_by)
    env = new_envelope(
        payload, key=business_date.isoformat(), producer=BUSINESS_DAY_PRINCIPAL, occurred_at=datetime.now(UTC)
    )
    return Outgoing(env, resolve(BILLING_COMMANDS.name, suffix))


def business_day_signer(settings: Settings) -> Signer:
    """The ``ops`` signer of RunBusinessDay from ``settings.trust``; ``OpsError`` (2) if there is none."""
    return operator_signer(settings.trust, principal=BUSINESS_DAY_PRINCIPAL, key_option=False)


async def run_day_via_kafka(
    settings: Settings, business_date: date, requested_by: str, signer: Signer | None = None
) -> Sent:
    """Produce RunBusinessDay signed as ``ops`` (``business_day_signer`` unless given); billing runs it."""
    signer = signer or business_day_signer(settings)
    command = business_day_command(business_date, requested_by, settings.kafka.topic_suffix)
    sent = await produce(settings.kafka, [command.signed_by(signer)])
    return sent[0]


async def run_day_direct(settings: Settings, business_date: date, requested_by: str) -> dict[str, Any]:
    """Run ``BillingService.run_business_day`` against the database; return its counts.

    Events go to billing's outbox; a running billing service's relay publishes them.
    """
    from services.billing.service import BillingService
    from services.billing.settings import BillingSettings
    from shared.calendar import load_kz_calendar
    from shared.clock import clock_from_file

    billing = BillingSettings()
    async with service_pool(settings, "billing") as pool:
        service = BillingService(
            pool,
            calendar=load_kz_calendar(),
            clock=clock_from_file(settings.clock_file),
            batch_size=billing.business_day_batch,
        )
        report = await service.run_business_day(business_date, requested_by=requested_by)
        pending = await pool.fetchval("SELECT count(*) FROM outbox")
    return {"business_date": business_date, **report.counts(), "outbox_pending": int(pending)}


def render_day_report(report: dict[str, Any]) -> str:
    """What a direct business-day run did."""
    return (
        f"business day {report['business_date']} closed: {report['accounts']} account(s), "
        f"{report['bills']} bill(s) issued, {report['overdue']} overdue recorded, "
        f"{report['penalties']} penalt{'y' if report['penalties'] == 1 else 'ies'} applied; "
        f"{report['outbox_pending']} event(s) in billing's outbox awaiting the relay"
    )


async def bill_calendar(settings: Settings, customer_id: UUID) -> dict[str, Any]:
    """The customer's Kaspi Red bill calendar (``services.billing.queries.bill_calendar``); reads only.

    ``OpsError`` when the customer has no Red account.
    """
    from services.billing.queries import bill_calendar as query

    async with service_pool(settings, "billing", read_only=True) as pool:
        found = await query(pool, customer_id)
    if found is None:
        raise OpsError(f"customer {customer_id} has no Kaspi Red account")
    return found


def _dmy(value: date) -> str:
    return f"{value:%d.%m.%Y}"


def render_calendar_month(month: dict[str, Any], *, indent: str = "  ") -> list[str]:
    """One month of the bill calendar: the bill's head line, then its parts, penalty and prepayment."""
    from shared.clock import ALMATY

    due = month["due_at"].astimezone(ALMATY)
    head = (
        f"{indent}{_dmy(month['statement_date'])}  {month['status']:<8}  {fmt_tiyn(month['amount'])}, "
        f"due {due:%d.%m.%Y %H:%M}"
    )
    if month["status"] in ("OPEN", "OVERDUE") and month["owed"] != month["amount"]:
        head += f", still owed {fmt_tiyn(month['owed'])}"
    if month["penalty_charged"]:
        head += f" (late: one-time penalty {fmt_tiyn(month['penalty_charged'])} charged)"
    lines = [head]
    for ln in month["lines"]:
        what = f"part {ln['part_no']}/4"
        if ln["price"] is not None and ln["purchased_on"] is not None:
            what += f" of the {fmt_tiyn(ln['price'])} purchase of {_dmy(ln['purchased_on'])}"
        lines.append(f"{indent}    {what} ({str(ln['purchase_id'])[:8]}): {fmt_tiyn(ln['amount'])}")
    if month["penalty"]:
        lines.append(f"{indent}    unpaid penalty brought forward: {fmt_tiyn(month['penalty'])}")
    if month["prepayment"]:
        lines.append(f"{indent}    prepayment from earlier payments: −{fmt_tiyn(month['prepayment'])}")
    return lines


def render_calendar(calendar: dict[str, Any]) -> str:
    """The bill calendar for humans: the next bill first, then every month, oldest first."""
    head = (
        f"customer {calendar['customer_id']}: Kaspi Red bill calendar, business days closed through "
        f"{_dmy(calendar['as_of'])}, billing day {calendar['billing_day']}"
    )
    out = [head + (" (Red closed)" if calendar["closed"] else "")]
    nxt = calendar["next_bill"]
    if nxt is None:
        out.append("no bill to come: nothing is left to bill")
    else:
        out.append(f"next bill {_dmy(nxt['statement_date'])}: {fmt_tiyn(nxt['amount'])}")
    for month in calendar["months"]:
        out.extend(render_calendar_month(month))
    return "\n".join(out)


# ----------------------------------------------------------------------------------------- payments
def lookup_signer(settings: Settings) -> Signer:
    """The ``ops`` signer of LookupDebt from ``settings.trust``; ``OpsError`` (2) if there is none."""
    return operator_signer(settings.trust, principal=LOOKUP_PRINCIPAL, key_option=False)


def lookup_command(customer_id: UUID, provider: str, account: str, suffix: str = "") -> Outgoing:
    """A ``LookupDebt`` (producer ``ops``, a fresh request_id) for aqsha.payments.commands; ``OpsError`` (2)
    when the provider or account is not valid for the contract."""
    payload = {
        "request_id": str(uuid4()),
        "customer_id": str(customer_id),
        "provider": provider,
        "provider_account": account,
    }
    return prepare({"type": "LookupDebt", "payload": payload}, producer=LOOKUP_PRINCIPAL, suffix=suffix)


async def lookup_debt(
    settings: Settings,
    customer_id: UUID,
    provider: str,
    account: str,
    signer: Signer | None = None,
    *,
    timeout_s: float = 30.0,
) -> dict[str, Any]:
    """Send ``LookupDebt`` signed as ``ops``, wait for payments' reply; return it masked and where it went.

    The reply's personal fields (owner's name and address) are masked, as in ``aqsha tail``.
    """
    signer = signer or lookup_signer(settings)
    command = lookup_command(customer_id, provider, account, settings.kafka.topic_suffix).signed_by(signer)
    request_id = command.envelope.payload.request_id
    sent, reply = await request_reply(
        settings.kafka,
        command,
        PAYMENTS_EVENTS.name,
        lambda env: env.type in LOOKUP_REPLIES and getattr(env.payload, "request_id", None) == request_id,
        timeout_s=timeout_s,
    )
    return {
        "sent": sent,
        "found": reply.type == "DebtLookedUp",
        "reply": masked_envelope(reply),
        "display": masked_display(reply.payload),
    }


def render_lookup(result: dict[str, Any]) -> str:
    """A lookup's reply for humans: the debt, or why there is none; personal data masked."""
    p = result["display"]
    where = f"{p['provider']} account {p['provider_account']}"
    if not result["found"]:
        return f"not found: {where}: {p['reason_code']} ({p['message']})"
    lines = [f"{p['provider_name']} ({where})", f"  debt: {p['debt']}"]
    if p.get("category"):
        lines.append(f"  service: {p['category']}")
    if p.get("owner_name") is not None or p.get("owner_address") is not None:
        lines.append(
            f"  owner: {p.get('owner_name') or '-'}, address: {p.get('owner_address') or '-'} (masked)"
        )
    lines.append(f"  payer's IIN required to pay: {'yes' if p.get('iin_required') else 'no'}")
    return "\n".join(lines)


async def payment_history(settings: Settings, customer_id: UUID) -> list[dict[str, Any]]:
    """The customer's payments with their status history (``services.payments.queries``)."""
    from services.payments.queries import payment_history as query

    async with service_pool(settings, "payments", read_only=True) as pool:
        return await query(pool, customer_id)


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "-"


def render_history(customer_id: UUID, payments: Sequence[dict[str, Any]]) -> str:
    """Payments newest first: amounts formatted, and each one's status path."""
    if not payments:
        return f"customer {customer_id}: no payments"
    rows = []
    for p in payments:
        path = " → ".join(h["status"] for h in p.get("history", [])) or p["status"]
        what = p.get("provider") or p.get("merchant") or p.get("category") or ""
        rows.append(
            [
                _when(p["created_at"]),
                p["kind"],
                p["status"],
                fmt_tiyn(p["amount"]),
                fmt_tiyn(p["fee"]) if p.get("fee") is not None else "-",
                p.get("funding") or "-",
                what or "-",
                p.get("reason_code") or "-",
                p.get("receipt_number") or "-",
                path,
                str(p["payment_id"]),
            ]
        )
    head = f"customer {customer_id}: {len(payments)} payment(s)"
    cols = [
        "created",
        "kind",
        "status",
        "amount",
        "fee",
        "funding",
        "payee",
        "reason",
        "receipt",
        "history",
        "payment id",
    ]
    return head + "\n" + table(cols, rows)


# ------------------------------------------------------------------------------------------- notify
async def customer_inbox(settings: Settings, customer_id: UUID, limit: int) -> list[dict[str, Any]]:
    """The customer's in-app messages, newest first (``services.notify.queries.inbox``)."""
    from services.notify.queries import inbox

    async with service_pool(settings, "notify", read_only=True) as pool:
        return [asdict(m) for m in await inbox(pool, customer_id, limit=limit)]


def render_inbox(customer_id: UUID, messages: Sequence[dict[str, Any]]) -> str:
    """Inbox messages for humans: one block per message."""
    if not messages:
        return f"customer {customer_id}: inbox is empty"
    lines = [f"customer {customer_id}: {len(messages)} message(s), newest first"]
    for m in messages:
        lines.append(f"#{m['id']}  {_when(m['created_at'])}  {m['event_type']}  [{m['locale']}]")
        lines.append(f"  {m['title']}")
        lines.extend(f"  {short(line, 200)}" for line in str(m["body"]).splitlines() if line.strip())
        if m.get("link"):
            lines.append(f"  link: {m['link']}")
    return "\n".join(lines)


async def fetch_receipt(settings: Settings, number: str, output: Path) -> int:
    """Write receipt ``number`` as PDF to ``output``; return its size in bytes."""
    from services.notify.queries import ReceiptNotFound, get_receipt_pdf

    async with service_pool(settings, "notify") as pool:
        try:
            pdf = await get_receipt_pdf(pool, number)
        except ReceiptNotFound:
            raise OpsError(f"no receipt numbered {number!r}") from None
    try:
        await asyncio.to_thread(output.write_bytes, pdf)
    except OSError as exc:
        raise OpsError(f"cannot write {output}: {exc.strerror}") from None
    return len(pdf)


# ------------------------------------------------------------------------------------- read models
async def customer_view(settings: Settings, customer_id: UUID) -> dict[str, Any]:
    """Everything the services know of a customer's money, from one read-only snapshot (tiyn).

    payments' registration and Kaspi Gold/Wallet balances (``services.payments.queries``), bonus'
    balance (``services.bonus.queries``) and billing's Kaspi Red: limit, available, outstanding, open
    bills and penalties (``services.billing.queries``). ``OpsError`` when no service knows the customer.
    """
    from services.billing.queries import customer_red
    from services.bonus.queries import history
    from services.payments.queries import customer_summary
    from shared.logging import MASK, mask_digits

    async with read_snapshot(settings) as snapshot:
        payments = await customer_summary(await snapshot.schema("payments"), customer_id)
        bonus = await history(await snapshot.schema("bonus"), customer_id, limit=0)
        red = await customer_red(await snapshot.schema("billing"), customer_id)
    if payments is None and not bonus["known"] and red is None:
        raise OpsError(f"customer {customer_id} is unknown to payments, bonus and billing")
    return {
        "customer_id": customer_id,
        "registered": payments is not None,
        "registered_at": payments["registered_at"] if payments else None,
        "tariff_profile": payments["tariff_profile"] if payments else None,
        "phone": mask_digits(payments["phone"]) if payments else None,
        "full_name": MASK if payments else None,
        "accounts": payments["accounts"] if payments else {},
        "in_flight": payments["in_flight"] if payments else {"payments": 0, "held": 0},
        "bonus": {"balance": bonus["balance"]},
        "red": red,
    }


def _bill_line(bill: dict[str, Any]) -> str:
    from shared.clock import ALMATY

    due = bill["due_at"].astimezone(ALMATY)
    text = (
        f"{_dmy(bill['statement_date'])}  {bill['status']:<8}  {fmt_tiyn(bill['amount'])}, "
        f"due {due:%d.%m.%Y %H:%M}"
    )
    if bill["status"] != "PAID":
        text += f", outstanding {fmt_tiyn(bill['owed'])}"
    if bill.get("overdue_since"):
        text += f", overdue since {_dmy(bill['overdue_since'])}"
    if bill["penalty_charged"]:
        text += f", penalty {fmt_tiyn(bill['penalty_charged'])}"
        if bill.get("penalty_on"):
            text += f" charged {_dmy(bill['penalty_on'])}"
    return text


def render_customer(view: dict[str, Any]) -> str:
    """``aqsha customer show`` for humans: balances, bonus, Kaspi Red, open bills and penalties."""
    head = f"customer {view['customer_id']}"
    if view["registered"]:
        head += (
            f": registered {view['registered_at']:%d.%m.%Y}, tariff {view['tariff_profile']}, "
            f"phone {view['phone']}"
        )
    else:
        head += ": not registered with payments"
    lines = [head]
    names = {"GOLD": "Kaspi Gold", "WALLET": "Kaspi Wallet"}
    for kind, balance in view["accounts"].items():
        lines.append(f"  {names.get(kind, kind):<13} {fmt_tiyn(balance)}")
    flight = view["in_flight"]
    if flight["payments"]:
        lines.append(
            f"  in flight     {flight['payments']} payment(s) awaiting a code or the provider, "
            f"{fmt_tiyn(flight['held'])} held"
        )
    lines.append(f"  bonus         {fmt_tiyn(view['bonus']['balance'])}")
    red = view["red"]
    if red is None:
        lines.append("  Kaspi Red     none")
        return "\n".join(lines)
    state = " (closed)" if red["closed"] else ""
    lines.append(
        f"  Kaspi Red{state}  limit {fmt_tiyn(red['limit'])}, available {fmt_tiyn(red['available'])}, "
        f"outstanding {fmt_tiyn(red['outstanding'])}"
    )
    extra = []
    if red["carried"]:
        extra.append(f"prepayment carried to the next bill {fmt_tiyn(red['carried'])}")
    if red["penalty_due"]:
        extra.append(f"penalty not yet billed {fmt_tiyn(red['penalty_due'])}")
    closed_through = _dmy(red["last_closed_business_date"])
    extra.append(f"billing day {red['billing_day']}, business days closed through {closed_through}")
    lines.append("    " + "; ".join(extra))
    if red["open_bills"]:
        lines.append(f"  open bills ({len(red['open_bills'])}):")
        lines += [f"    {_bill_line(b)}" for b in red["open_bills"]]
    else:
        lines.append("  open bills    none")
    if red["penalties"]:
        lines.append("  penalties:")
        lines += [
            f"    {fmt_tiyn(p['amount'])} charged {_dmy(p['applied_on'])} "
            f"(bill of {_dmy(p['statement_date'])})"
            for p in red["penalties"]
        ]
    return "\n".join(lines)


async def customer_bills(settings: Settings, customer_id: UUID) -> dict[str, Any]:
    """Every bill issued to the customer (``services.billing.queries.issued_bills``); reads only."""
    from services.billing.queries import issued_bills

    async with read_snapshot(settings) as snapshot:
        found = await issued_bills(await snapshot.schema("billing"), customer_id)
    if found is None:
        raise OpsError(f"customer {customer_id} has no Kaspi Red account")
    return found


def render_bills(found: dict[str, Any]) -> str:
    """``aqsha billing bills`` for humans: one line per bill, oldest first, then its parts."""
    bills = found["bills"]
    head = (
        f"customer {found['customer_id']}: {len(bills)} bill(s), business days closed through "
        f"{_dmy(found['as_of'])}, billing day {found['billing_day']}"
    )
    lines = [head + (" (Red closed)" if found["closed"] else "")]
    for bill in bills:
        lines.append(f"  {_bill_line(bill)}  [{bill['bill_id']}]")
        for ln in bill["lines"]:
            lines.append(
                f"      part {ln['part_no']}/4 ({str(ln['purchase_id'])[:8]}): {fmt_tiyn(ln['amount'])}"
            )
        if bill["penalty"]:
            lines.append(f"      unpaid penalty brought forward: {fmt_tiyn(bill['penalty'])}")
        if bill["prepayment"]:
            lines.append(f"      prepayment from earlier payments: −{fmt_tiyn(bill['prepayment'])}")
    if not bills:
        lines.append("  no bill issued yet")
    return "\n".join(lines)


async def bonus_history(settings: Settings, customer_id: UUID, limit: int | None) -> dict[str, Any]:
    """The customer's bonus balance and ledger, newest first (``services.bonus.queries.history``)."""
    from services.bonus.queries import history

    async with read_snapshot(settings) as snapshot:
        found = await history(await snapshot.schema("bonus"), customer_id, limit=limit)
    if not found["known"]:
        raise OpsError(f"customer {customer_id} has no bonus account (no bonus accrued or spent yet)")
    return found


def render_bonus_history(found: dict[str, Any]) -> str:
    """``aqsha bonus history`` for humans: the balance, then the ledger newest first."""
    entries = found["entries"]
    head = f"customer {found['customer_id']}: bonus balance {fmt_tiyn(found['balance'])}"
    rows = []
    for e in entries:
        rule = e.get("promotion_id") or e.get("rule_id") or "-"
        if e.get("percent") is not None:
            rule += f" ({e['percent']} %)"
        rows.append(
            [
                _when(e["created_at"]),
                e["kind"],
                ("+" if e["signed"] >= 0 else "−") + fmt_tiyn(abs(e["signed"])),
                fmt_tiyn(e["running_balance"]),
                rule,
                str(e["payment_id"]),
            ]
        )
    if not rows:
        return head + "\n(no entries)"
    return head + "\n" + table(["at", "kind", "amount", "balance after", "rule", "payment id"], rows)


# ------------------------------------------------------------------------------ the business day, waited
async def run_day_and_wait(
    settings: Settings,
    business_date: date,
    requested_by: str,
    signer: Signer | None = None,
    *,
    timeout_s: float = 120.0,
) -> dict[str, Any]:
    """Produce RunBusinessDay and wait for billing's ``BusinessDayClosed`` caused by exactly that command.

    Reads ``aqsha.billing.days`` from the end offsets taken before sending (no consumer group);
    ``OpsError`` when the day is not closed within ``timeout_s`` (the command was sent: billing may be
    down or behind, and will still run it).
    """
    signer = signer or business_day_signer(settings)
    command = business_day_command(business_date, requested_by, settings.kafka.topic_suffix).signed_by(signer)
    event_id = command.envelope.event_id
    sent, closed = await request_reply(
        settings.kafka,
        command,
        BILLING_DAYS.name,
        lambda env: env.type == "BusinessDayClosed" and env.causation_id == event_id,
        timeout_s=timeout_s,
    )
    payload = closed.payload
    return {
        "sent": sent,
        "closed": {
            "business_date": payload.business_date,
            "requested_by": payload.requested_by,
            "accounts": payload.accounts,
            "bills": payload.bills,
            "overdue": payload.overdue,
            "penalties": payload.penalties,
            "closed_at": closed.occurred_at,
            "event_id": closed.event_id,
        },
    }


def render_day_closed(closed: dict[str, Any]) -> str:
    """What billing's business-day run recorded (``BusinessDayClosed``)."""
    return (
        f"business day {closed['business_date']} closed: {closed['accounts']} account(s), "
        f"{closed['bills']} bill(s) issued, {closed['overdue']} overdue recorded, "
        f"{closed['penalties']} penalt{'y' if closed['penalties'] == 1 else 'ies'} applied "
        f"(requested by {closed['requested_by']})"
    )
