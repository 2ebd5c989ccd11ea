"""Cross-service reconciliation against what the four services really write.

The world is seeded by the real service objects (payments, bonus, billing, notify) over one fresh
database; instead of Kafka, a tiny in-process bus drains each schema's outbox in id order and hands
every envelope to the services that consume its type, exactly as their handlers would (same
service entry points, same inbox groups), inside ``origin_scope`` of a permitted producer, as the
subscriber sets it after verifying a record. Then each kind of discrepancy is injected by SQL and
reconcile must name exactly that check and subject.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest
import pytest_asyncio
from redis.asyncio import Redis

from services.billing.service import BillingService
from services.bonus.domain import load_rules
from services.bonus.service import BonusService
from services.notify.channels import Channel as NotifyChannel
from services.notify.channels import InAppInbox, Outgoing
from services.notify.service import NotifyService
from services.notify.settings import EMAIL, INBOX, PUSH, SMS, NotifySettings
from services.payments.provider import ProviderSimulator
from services.payments.service import PaymentsService
from services.payments.settings import PaymentsSettings
from shared.calendar import load_kz_calendar
from shared.clock import ALMATY, ManualClock
from shared.contracts.base import Contract
from shared.contracts.billing import RedAccountOpened
from shared.contracts.common import AccountKind, Channel, Funding, Merchant, ServiceCategory
from shared.contracts.customers import CustomerRegistered
from shared.contracts.envelope import Envelope, decode, new_envelope
from shared.contracts.payments import PayRedBill, PayService, Purchase, Refund, TopUp, Transfer
from shared.contracts.samples import sample
from shared.db import Conn, create_pool
from shared.inbox import Inbox
from shared.ops.reconcile import (
    ACCOUNT_BALANCES_MATCH_LEDGER,
    BILLING_MONEY_CONSERVED,
    BILLS_NOTIFIED,
    BONUS_BALANCES_MATCH_LEDGER,
    BONUS_DECISION_EXACTLY_ONCE,
    CHECKS,
    CREDITS_HAVE_PERMITTED_ORIGIN,
    LEDGER_SUMS_TO_ZERO,
    NO_DOUBLE_DEBIT,
    ONE_PENALTY_PER_BILL,
    OVERPAYMENT_CREDITED_TO_GOLD,
    RECEIPTS_NOTIFIED,
    RED_PURCHASE_HAS_PLAN,
    ReconcileReport,
    reconcile,
    run_reconcile,
)
from shared.settings import Settings
from shared.topics import SERVICE_PRINCIPALS, topic_for_contract
from shared.trust import Origin, origin_scope

pytestmark = pytest.mark.integration

BILLING_ACCEPTS = frozenset(
    {
        "RedAccountOpened",
        "RedTermsAccepted",
        "RedAccountClosed",
        "RedPurchaseRequested",
        "RedPurchaseCancelled",
        "PaymentRefunded",
        "PaymentCompleted",
    }
)
PAYMENTS_ACCEPTS = frozenset(
    {
        "TopUp",
        "PayService",
        "Purchase",
        "Transfer",
        "PayRedBill",
        "ConfirmPayment",
        "CancelPayment",
        "Refund",
        "CustomerRegistered",
        "BonusRedeemed",
        "BonusRedemptionDeclined",
        "RedPurchaseApproved",
        "RedPurchaseDeclined",
        "OverpaymentRefunded",
    }
)
SAGA_REPLIES = frozenset(
    {"BonusRedeemed", "BonusRedemptionDeclined", "RedPurchaseApproved", "RedPurchaseDeclined"}
)


class Gateway:
    """A push/SMS/e-mail gateway that accepts everything (the channel contract of services.notify)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[Outgoing] = []

    async def send(self, conn: Conn, message: Outgoing) -> None:
        self.sent.append(message)


@dataclass
class World:
    """The four services over one database, a manual clock and the in-process bus."""

    dsn: str
    clock: ManualClock
    pools: dict[str, asyncpg.Pool]
    payments: PaymentsService
    bonus: BonusService
    billing: BillingService
    notify: NotifyService
    ids: dict[str, Any] = field(default_factory=dict)

    def envelope(self, payload: Contract, producer: str = "test") -> Envelope[Any]:
        return new_envelope(payload, producer=producer, occurred_at=self.clock.now())

    async def dispatch(self, env: Envelope[Any]) -> None:
        """Hand one envelope to every service that consumes its type (as their handlers do), with the
        verified origin the subscriber would set: the producing service, else the contract's first
        permitted writer (TopUp: cash-network; app commands: app-gateway; CustomerRegistered: onboarding)."""
        if env.producer in SERVICE_PRINCIPALS:
            principal = env.producer
        else:
            principal = topic_for_contract(env.type).writers_of(env.type)[0]
        with origin_scope(Origin(principal, f"{principal}:test")):
            await self._dispatch(env)

    async def _dispatch(self, env: Envelope[Any]) -> None:
        if env.type in PAYMENTS_ACCEPTS:
            if env.type == "CustomerRegistered":
                await self.payments.on_customer(env)
            elif env.type in SAGA_REPLIES:
                await self.payments.on_saga_reply(env)
            elif env.type == "OverpaymentRefunded":
                await self.payments.on_overpayment(env)
            else:
                await self.payments.handle_command(env)
        await self.bonus.handle(env)
        if env.type in BILLING_ACCEPTS:
            billing = self.billing

            async def effect(conn: Conn) -> None:
                await billing.handle(conn, env)

            await Inbox("aqsha-billing").once(self.billing.pool, env, effect)
        await self.notify.handle(env)

    async def pump(self) -> None:
        """Relay every outbox row (each schema in id order) until all four outboxes are empty."""
        while True:
            moved = 0
            for pool in self.pools.values():
                async with pool.acquire() as conn, conn.transaction():
                    rows = await conn.fetch("DELETE FROM outbox RETURNING id, payload")
                for row in sorted(rows, key=lambda r: r["id"]):
                    await self.dispatch(decode(row["payload"]))
                    moved += 1
            if not moved:
                return

    async def send(self, payload: Contract) -> None:
        """Publish ``payload`` as a client would and let the system settle."""
        await self.dispatch(self.envelope(payload))
        await self.pump()


async def _payment(world: World, request_id: UUID) -> asyncpg.Record:
    row = await world.pools["payments"].fetchrow("SELECT * FROM payments WHERE request_id = $1", request_id)
    if row is None:
        outcome = await world.pools["payments"].fetchval(
            "SELECT outcome::text FROM idempotency_keys WHERE key = $1", str(request_id)
        )
        raise AssertionError(f"payment not created: {outcome}")
    return row


@pytest_asyncio.fixture(loop_scope="session")
async def world(pg_dsn: str, redis: Redis, settings: Settings) -> AsyncIterator[World]:
    """A consistent world: two customers, top-up, service payment, purchases (Gold, Red), transfer,
    a Red bill, its repayment with an overpayment back to Gold; every event delivered."""
    clock = ManualClock(datetime(2025, 3, 10, 12, 0, tzinfo=ALMATY))
    pools = {s: await create_pool(pg_dsn, s, max_size=4) for s in ("payments", "bonus", "billing", "notify")}
    payments_settings = PaymentsSettings(db=settings.db, redis=settings.redis, kafka=settings.kafka)
    notify_settings = NotifySettings(db=settings.db)
    channels: dict[str, NotifyChannel] = {
        INBOX: InAppInbox(),
        PUSH: Gateway(PUSH),
        SMS: Gateway(SMS),
        EMAIL: Gateway(EMAIL),
    }
    w = World(
        dsn=pg_dsn,
        clock=clock,
        pools=pools,
        payments=PaymentsService(pools["payments"], redis, payments_settings, clock, ProviderSimulator()),
        bonus=BonusService(pools["bonus"], load_rules(), clock, group="aqsha-bonus"),
        billing=BillingService(pools["billing"], calendar=load_kz_calendar(), clock=clock),
        notify=NotifyService(pools["notify"], notify_settings, channels, clock),
    )
    base = sample(CustomerRegistered)
    alice = base.model_copy(update={"customer_id": uuid4(), "full_name": "Алия Нурланова"})
    bob = base.model_copy(update={"customer_id": uuid4(), "email": None, "phone": "+77017654321"})
    for customer in (alice, bob):
        await w.send(customer)
    a, b = alice.customer_id, bob.customer_id
    w.ids.update(alice=a, bob=b)
    await w.send(RedAccountOpened(customer_id=a, limit=50_000_00, opened_on=date(2025, 3, 1)))

    req = {name: uuid4() for name in ("top_up", "service", "gold", "red", "transfer", "red_bill")}
    await w.send(
        TopUp(
            request_id=req["top_up"],
            customer_id=a,
            channel=Channel.TERMINAL,
            account=AccountKind.GOLD,
            amount=100_000_00,
        )
    )
    await w.send(
        PayService(
            request_id=req["service"],
            customer_id=a,
            category=ServiceCategory.UTILITIES,
            provider="astana-erc",
            provider_account="123456",
            amount=3_000_00,
        )
    )
    await w.send(
        Purchase(
            request_id=req["gold"],
            customer_id=a,
            merchant=Merchant.KASPI_TRAVEL,
            order_id="T-1",
            amount=2_000_00,
        )
    )
    await w.send(
        Purchase(
            request_id=req["red"],
            customer_id=a,
            merchant=Merchant.KASPI_MAGAZIN,
            order_id="M-1",
            amount=4_000_00,
            funding=Funding.RED,
        )
    )
    await w.send(Transfer(request_id=req["transfer"], customer_id=a, to_customer_id=b, amount=1_000_00))
    # The first statement date after the purchase: 1 April; the bill asks for part 1 (1 000 ₸).
    clock.set(datetime(2025, 4, 1, 9, 0, tzinfo=ALMATY))
    await w.billing.run_business_day(date(2025, 4, 1), requested_by="test")
    await w.pump()
    # 4 500 ₸ pays the bill, repays the purchase early (3 000 ₸), and 500 ₸ goes back to Gold.
    clock.advance(timedelta(days=1))
    await w.send(PayRedBill(request_id=req["red_bill"], customer_id=a, amount=4_500_00))
    for name, request_id in req.items():
        w.ids[name] = (await _payment(w, request_id))["payment_id"]
    try:
        yield w
    finally:
        for pool in pools.values():
            await pool.close()


async def _row(pool: asyncpg.Pool, sql: str, *args: Any) -> tuple[Any, ...]:
    row = await pool.fetchrow(sql, *args)
    assert row is not None, sql
    return tuple(row)


async def _reconcile(world: World) -> ReconcileReport:
    conn = await asyncpg.connect(world.dsn)
    try:
        return await reconcile(conn)
    finally:
        await conn.close()


def _only(report: ReconcileReport, check: str) -> list[str]:
    failing = {name for name, n in report.checks.items() if n}
    assert failing == {check}, report.render()
    return [d.subject for d in report.discrepancies]


async def _sql(world: World, *statements: str, args: tuple[Any, ...] = ()) -> None:
    conn = await asyncpg.connect(world.dsn)
    try:
        for statement in statements:
            await conn.execute(statement, *args) if "$1" in statement else await conn.execute(statement)
    finally:
        await conn.close()


async def test_seeded_world_is_consistent_and_clean(world: World, settings: Settings) -> None:
    rows = await world.pools["payments"].fetch("SELECT kind, status FROM payments")
    statuses = {r["kind"]: r["status"] for r in rows}
    assert set(statuses.values()) == {"COMPLETED"}, statuses
    report = await _reconcile(world)
    assert report.clean, report.render()
    assert set(report.checks) == set(CHECKS)
    assert report.counts["payments"] == 6
    assert report.counts["bonus_decisions"] == 4  # service, Gold and Red purchases, Red bill
    assert report.counts["bills"] == 1
    assert report.counts["repayments"] == 1
    assert report.counts["gold_credits"] == 1
    assert report.counts["outbox_unpublished"] == 0
    # The Kaspi Travel purchase really earned bonus (5 %), so the accrual path is covered too.
    accrued = await world.pools["bonus"].fetchval(
        "SELECT accrued FROM accrual_decisions WHERE payment_id = $1", world.ids["gold"]
    )
    assert accrued == 100_00
    assert report.counts["customer_credits"] == 3  # the top-up, Bob's transfer, the overpayment to Gold
    out: list[str] = []
    assert await run_reconcile(settings, echo=out.append) == 0
    assert "CLEAN" in out[0]
    # Each payment and event credit records who commanded it (the verified principal and key id).
    pay = world.pools["payments"]
    origins = {
        name: await _row(pay, "SELECT commanded_by, key_id FROM payments WHERE payment_id = $1", pid)
        for name, pid in world.ids.items()
        if name not in ("alice", "bob")
    }
    assert origins.pop("top_up") == ("cash-network", "cash-network:test")
    assert set(origins.values()) == {("app-gateway", "app-gateway:test")}
    credit = await _row(pay, "SELECT event_type, commanded_by, key_id FROM event_credits")
    assert credit == ("OverpaymentRefunded", "billing", "billing:test")


async def test_unbalanced_ledger_entry(world: World, settings: Settings) -> None:
    await _sql(
        world,
        "INSERT INTO payments.ledger_entries(payment_id, posting_kind, account, amount, created_at) "
        "VALUES ($1, 'CAPTURE', 'FEE_INCOME', 100, now())",
        args=(world.ids["service"],),
    )
    report = await _reconcile(world)
    subjects = _only(report, LEDGER_SUMS_TO_ZERO)
    assert subjects == ["payments.ledger_entries", str(world.ids["service"])]
    out: list[str] = []
    assert await run_reconcile(settings, echo=out.append) == 1
    assert LEDGER_SUMS_TO_ZERO in out[0]
    assert "sum to 1\u00a0₸, not 0" in out[0]


async def test_balance_differs_from_ledger(world: World) -> None:
    await _sql(
        world,
        "UPDATE payments.accounts SET balance = balance + 1 WHERE customer_id = $1 AND kind = 'WALLET'",
        args=(world.ids["bob"],),
    )
    assert _only(await _reconcile(world), ACCOUNT_BALANCES_MATCH_LEDGER) == [f"{world.ids['bob']}/WALLET"]


async def test_request_debited_twice(world: World) -> None:
    pid = world.ids["service"]
    await _sql(
        world,
        "INSERT INTO payments.ledger_entries"
        "(payment_id, posting_kind, account, customer_id, amount, created_at) "
        "SELECT payment_id, 'HOLD', 'GOLD', customer_id, -total, now() FROM payments.payments "
        "WHERE payment_id = $1 UNION ALL "
        "SELECT payment_id, 'HOLD', 'HOLDS', NULL, total, now() FROM payments.payments WHERE payment_id = $1",
        args=(pid,),
    )
    await _sql(
        world,
        "UPDATE payments.accounts a SET balance = a.balance - p.total FROM payments.payments p "
        "WHERE p.payment_id = $1 AND a.customer_id = p.customer_id AND a.kind = 'GOLD'",
        args=(pid,),
    )
    # The HOLDS system account now keeps the second hold: the ledger still sums to zero.
    subjects = _only(await _reconcile(world), NO_DOUBLE_DEBIT)
    request_id = await world.pools["payments"].fetchval(
        "SELECT request_id FROM payments WHERE payment_id = $1", pid
    )
    assert subjects == [f"request {request_id} (payment {pid})"]


async def test_missing_bonus_decision(world: World, settings: Settings) -> None:
    await _sql(
        world, "DELETE FROM bonus.accrual_decisions WHERE payment_id = $1", args=(world.ids["service"],)
    )
    report = await _reconcile(world)
    assert _only(report, BONUS_DECISION_EXACTLY_ONCE) == [str(world.ids["service"])]
    assert "0 bonus decisions" in report.discrepancies[0].detail
    assert await run_reconcile(settings, echo=lambda _: None) == 1


async def test_second_bonus_decision(world: World) -> None:
    await _sql(
        world,
        "ALTER TABLE bonus.accrual_decisions DROP CONSTRAINT accrual_decisions_pkey",
        "INSERT INTO bonus.accrual_decisions SELECT * FROM bonus.accrual_decisions WHERE payment_id = $1",
        args=(world.ids["red_bill"],),
    )
    report = await _reconcile(world)
    assert _only(report, BONUS_DECISION_EXACTLY_ONCE) == [str(world.ids["red_bill"])]
    assert "2 bonus decisions" in report.discrepancies[0].detail


async def test_decision_without_a_completed_payment(world: World) -> None:
    await _sql(
        world,
        "INSERT INTO bonus.accrual_decisions(payment_id, customer_id, event_id, kind, completed_at, "
        "business_date, payment_amount, outcome) "
        "VALUES ($1, gen_random_uuid(), gen_random_uuid(), 'SERVICE', now(), current_date, 100, 'NO_BONUS')",
        args=(ghost := uuid4(),),
    )
    assert _only(await _reconcile(world), BONUS_DECISION_EXACTLY_ONCE) == [str(ghost)]


async def test_bonus_balance_differs_from_ledger(world: World) -> None:
    await _sql(
        world,
        "UPDATE bonus.balances SET balance = balance + 5 WHERE customer_id = $1",
        args=(world.ids["alice"],),
    )
    assert _only(await _reconcile(world), BONUS_BALANCES_MATCH_LEDGER) == [str(world.ids["alice"])]


async def test_missing_red_plan(world: World) -> None:
    await _sql(
        world,
        "UPDATE billing.accounts SET snapshot = jsonb_set(snapshot, '{purchases}', '[]'::jsonb) "
        "WHERE customer_id = $1",
        args=(world.ids["alice"],),
    )
    report = await _reconcile(world)
    assert _only(report, RED_PURCHASE_HAS_PLAN) == [str(world.ids["red"])]
    assert "0 plans" in report.discrepancies[0].detail


async def test_red_plan_with_wrong_parts(world: World) -> None:
    await _sql(
        world,
        "UPDATE billing.accounts SET snapshot = jsonb_set(snapshot, '{purchases,0,parts}', "
        "(snapshot->'purchases'->0->'parts') - 3) WHERE customer_id = $1",
        args=(world.ids["alice"],),
    )
    assert _only(await _reconcile(world), RED_PURCHASE_HAS_PLAN) == [str(world.ids["red"])]


async def test_gold_credit_missing(world: World) -> None:
    # As if payments never handled OverpaymentRefunded: no posting, no balance change.
    await _sql(
        world,
        "UPDATE payments.accounts a SET balance = a.balance - e.amount FROM payments.ledger_entries e "
        "WHERE e.posting_kind = 'OVERPAYMENT_CREDIT' AND e.account = 'GOLD' "
        "AND a.customer_id = e.customer_id AND a.kind = 'GOLD'",
        "DELETE FROM payments.ledger_entries WHERE posting_kind = 'OVERPAYMENT_CREDIT'",
    )
    report = await _reconcile(world)
    (subject,) = _only(report, OVERPAYMENT_CREDITED_TO_GOLD)
    assert subject.endswith(f"(repayment {world.ids['red_bill']})")
    assert "500 ₸" in report.discrepancies[0].detail.replace("\u00a0", " ")


async def test_gold_credited_twice(world: World) -> None:
    # As if billing had sent the same refund twice (a second event): two credits, each commanded by
    # billing. Without the second event's record, credits_have_permitted_origin would report it too.
    await _sql(
        world,
        "INSERT INTO payments.event_credits(event_id, event_type, reference_id, customer_id, account, "
        "amount, commanded_by, key_id, created_at) "
        "SELECT gen_random_uuid(), event_type, reference_id, customer_id, account, amount, commanded_by, "
        "key_id, created_at FROM payments.event_credits",
        "INSERT INTO payments.ledger_entries"
        "(payment_id, posting_kind, account, customer_id, amount, created_at) "
        "SELECT payment_id, posting_kind, account, customer_id, amount, created_at "
        "FROM payments.ledger_entries "
        "WHERE posting_kind = 'OVERPAYMENT_CREDIT'",
        "UPDATE payments.accounts a SET balance = a.balance + e.amount FROM payments.ledger_entries e "
        "WHERE e.posting_kind = 'OVERPAYMENT_CREDIT' AND e.account = 'GOLD' AND e.id = "
        "(SELECT max(id) FROM payments.ledger_entries) AND a.customer_id = e.customer_id AND a.kind = 'GOLD'",
    )
    report = await _reconcile(world)
    _only(report, OVERPAYMENT_CREDITED_TO_GOLD)
    assert "2 times" in report.discrepancies[0].detail


async def test_bill_delivery_missing(world: World) -> None:
    await _sql(world, "DELETE FROM notify.deliveries WHERE event_type = 'BillIssued' AND channel = 'push'")
    report = await _reconcile(world)
    (subject,) = _only(report, BILLS_NOTIFIED)
    assert subject.startswith(f"customer {world.ids['alice']}, BillIssued event ")
    assert report.discrepancies[0].detail == "no push delivery"


async def test_bill_never_notified(world: World) -> None:
    await _sql(
        world,
        "DELETE FROM notify.inbox_messages WHERE event_type = 'BillIssued'",
        "DELETE FROM notify.deliveries WHERE event_type = 'BillIssued'",
    )
    report = await _reconcile(world)
    assert _only(report, BILLS_NOTIFIED) == [f"customer {world.ids['alice']}"]
    assert "1 bill(s) issued but 0 BillIssued" in report.discrepancies[0].detail


async def test_receipt_never_notified(world: World) -> None:
    number = await world.pools["payments"].fetchval(
        "SELECT receipt_number FROM payments WHERE payment_id = $1", world.ids["service"]
    )
    await _sql(
        world,
        "DELETE FROM notify.inbox_messages WHERE link LIKE '%' || $1",
        "DELETE FROM notify.deliveries WHERE data->>'link' LIKE '%' || $1",
        args=(number,),
    )
    report = await _reconcile(world)
    assert _only(report, RECEIPTS_NOTIFIED) == [f"payment {world.ids['service']}, receipt {number}"]
    assert "notified 0 times" in report.discrepancies[0].detail


async def test_receipt_email_missing(world: World) -> None:
    number = await world.pools["payments"].fetchval(
        "SELECT receipt_number FROM payments WHERE payment_id = $1", world.ids["gold"]
    )
    await _sql(
        world,
        "DELETE FROM notify.deliveries WHERE channel = 'email' AND data->>'link' LIKE '%' || $1",
        args=(number,),
    )
    report = await _reconcile(world)
    assert _only(report, RECEIPTS_NOTIFIED) == [f"payment {world.ids['gold']}, receipt {number}"]
    assert report.discrepancies[0].detail == "no email delivery"


async def test_second_penalty_on_a_bill(world: World) -> None:
    await _sql(
        world,
        "ALTER TABLE billing.penalties DROP CONSTRAINT penalties_pkey",
        "INSERT INTO billing.penalties(bill_id, customer_id, amount, applied_on) "
        "SELECT bill_id, customer_id, 200000, statement_date FROM billing.bills, generate_series(1, 2)",
    )
    bill_id = await world.pools["billing"].fetchval("SELECT bill_id FROM bills")
    assert _only(await _reconcile(world), ONE_PENALTY_PER_BILL) == [str(bill_id)]


async def test_repayment_allocation_not_conserved(world: World) -> None:
    await _sql(
        world,
        "UPDATE billing.repayments SET allocation = jsonb_set(allocation, '{carried}', '100'::jsonb) "
        "WHERE payment_id = $1",
        args=(world.ids["red_bill"],),
    )
    assert _only(await _reconcile(world), BILLING_MONEY_CONSERVED) == [str(world.ids["red_bill"])]


async def test_top_up_commanded_by_a_principal_not_permitted_to(world: World) -> None:
    # Only the cash network may bring cash in: a top-up recorded as the app gateway's is a finding.
    pid = world.ids["top_up"]
    await _sql(
        world, "UPDATE payments.payments SET commanded_by = 'app-gateway' WHERE payment_id = $1", args=(pid,)
    )
    report = await _reconcile(world)
    assert _only(report, CREDITS_HAVE_PERMITTED_ORIGIN) == [
        f"payment {pid} (TOP_UP to {world.ids['alice']}/GOLD)"
    ]
    detail = report.discrepancies[0].detail
    assert (
        "TopUp commanded by app-gateway (key cash-network:test), but only cash-network may write it" in detail
    )


async def test_credit_without_a_recorded_origin(world: World) -> None:
    # A transfer credit whose payment has no authenticated origin (as rows written before the
    # origin was recorded), and an overpayment credit whose event's origin is unknown.
    pid = world.ids["transfer"]
    await _sql(
        world,
        "UPDATE payments.payments SET commanded_by = NULL, key_id = NULL WHERE payment_id = $1",
        "UPDATE payments.event_credits SET commanded_by = NULL, key_id = NULL",
        args=(pid,),
    )
    report = await _reconcile(world)
    subjects = _only(report, CREDITS_HAVE_PERMITTED_ORIGIN)
    refund_id, event_id = await _row(
        world.pools["payments"], "SELECT reference_id, event_id FROM event_credits"
    )
    assert subjects == [
        f"payment {pid} (TRANSFER to {world.ids['bob']}/GOLD)",
        f"event {event_id} (OVERPAYMENT_CREDIT to {world.ids['alice']}/GOLD, refund {refund_id})",
    ]
    assert all("has no authenticated origin recorded" in d.detail for d in report.discrepancies)


async def test_credit_that_traces_to_no_command(world: World) -> None:
    # Money that appeared by SQL: a balanced CASH_IN → GOLD posting with no payment behind it.
    ghost, alice = uuid4(), world.ids["alice"]
    await _sql(
        world,
        "INSERT INTO payments.ledger_entries"
        "(payment_id, posting_kind, account, customer_id, amount, created_at) "
        "VALUES ($1, 'TOP_UP', 'CASH_IN', NULL, -500000, now()), ($1, 'TOP_UP', 'GOLD', $2, 500000, now())",
        args=(ghost, alice),
    )
    await _sql(
        world,
        "UPDATE payments.accounts SET balance = balance + 500000 WHERE customer_id = $1 AND kind = 'GOLD'",
        args=(alice,),
    )
    report = await _reconcile(world)
    assert _only(report, CREDITS_HAVE_PERMITTED_ORIGIN) == [f"payment {ghost} (TOP_UP to {alice}/GOLD)"]
    assert "no payment, so no command, is recorded" in report.discrepancies[0].detail


async def test_refund_commanded_by_a_principal_not_permitted_to(world: World) -> None:
    # A refund of the Gold purchase, commanded by the app gateway: clean. Recorded as billing's
    # (billing may not write Refund), or not recorded at all, it is a finding.
    request_id = uuid4()
    alice, gold = world.ids["alice"], world.ids["gold"]
    await world.send(
        Refund(request_id=request_id, customer_id=alice, payment_id=gold, amount=500_00, reason="returned")
    )
    row = await _row(
        world.pools["payments"], "SELECT commanded_by, key_id FROM refunds WHERE refund_id = $1", request_id
    )
    assert row == ("app-gateway", "app-gateway:test")
    assert (await _reconcile(world)).clean
    await _sql(
        world, "UPDATE payments.refunds SET commanded_by = 'billing' WHERE refund_id = $1", args=(request_id,)
    )
    report = await _reconcile(world)
    subject = f"refund {request_id} (REFUND to {world.ids['alice']}/GOLD, payment {world.ids['gold']})"
    assert _only(report, CREDITS_HAVE_PERMITTED_ORIGIN) == [subject]
    assert "Refund commanded by billing (key app-gateway:test), but only app-gateway, cash-network" in (
        report.discrepancies[0].detail
    )
    await _sql(world, "DELETE FROM payments.refunds WHERE refund_id = $1", args=(request_id,))
    report = await _reconcile(world)
    failing = report.of(CREDITS_HAVE_PERMITTED_ORIGIN)
    assert [d.subject for d in failing] == [
        f"payment {world.ids['gold']} (REFUND to {world.ids['alice']}/GOLD)"
    ]
    assert "no Refund is recorded for it" in failing[0].detail
