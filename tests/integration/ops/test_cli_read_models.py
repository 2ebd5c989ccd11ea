"""The CLI's read models, the business day it waits for, and kcat-level reading, against real infrastructure.

No service runs here: the services' data is made by their own use cases (billing) or inserted as
their migrations define it (payments, bonus), and billing's answer to ``run-day --wait`` is played by
the test, so each CLI behaviour is checked on its own.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.billing.service import BillingService
from shared.calendar import load_kz_calendar
from shared.clock import ALMATY, SystemClock
from shared.contracts.billing import BusinessDayClosed, RedAccountOpened, RunBusinessDay
from shared.contracts.common import Merchant
from shared.contracts.envelope import decode_as, encode, envelope_headers, new_envelope
from shared.contracts.payments import PaymentCompleted, RedPurchaseRequested
from shared.contracts.samples import sample
from shared.db import create_pool
from shared.ops.service_tools import read_snapshot
from shared.settings import Settings
from shared.topics import resolve
from tests.integration.ops.conftest import ainvoke
from tests.support.kafka import create_topics, read_records

pytestmark = pytest.mark.integration


async def _seed(settings: Settings, customer: UUID) -> None:
    """Payments' registration and balances, a bonus accrual, a Red account with one bill issued."""
    conn = await asyncpg.connect(settings.db.dsn)
    try:
        await conn.execute(
            "INSERT INTO payments.customers(customer_id, phone, full_name, tariff_profile, registered_at) "
            "VALUES ($1, '+77011234567', 'Aigerim Sultanova', 'kaspi', $2)",
            customer,
            datetime(2025, 10, 20, 9, tzinfo=ALMATY),
        )
        await conn.execute(
            "INSERT INTO payments.accounts(customer_id, kind, balance) VALUES ($1, 'GOLD', 3851500), "
            "($1, 'WALLET', 0)",
            customer,
        )
        await conn.execute("INSERT INTO bonus.balances(customer_id, balance) VALUES ($1, 5000)", customer)
        await conn.execute(
            "INSERT INTO bonus.ledger_entries(customer_id, kind, payment_id, amount, rule_set, rule_id, "
            "percent, event_id) VALUES ($1, 'ACCRUAL', $2, 5000, 'current', 'qr-10', 10, $3)",
            customer,
            uuid4(),
            uuid4(),
        )
    finally:
        await conn.close()
    pool = await create_pool(settings.db.dsn, "billing")
    try:
        service = BillingService(pool, calendar=load_kz_calendar(), clock=SystemClock())
        now = datetime.now(UTC)
        opened = RedAccountOpened(
            customer_id=customer, limit=30_000_000, opened_on=date(2025, 9, 22), accepted_new_terms=True
        )
        bought = RedPurchaseRequested(
            payment_id=uuid4(),
            customer_id=customer,
            amount=4_000_000,
            merchant=Merchant.KASPI_MAGAZIN,
            requested_at=datetime(2025, 10, 20, 12, tzinfo=ALMATY),
        )
        for payload in (opened, bought):
            async with pool.acquire() as conn_, conn_.transaction():
                await service.handle(conn_, new_envelope(payload, producer="test", occurred_at=now))
        await service.run_business_day(date(2025, 10, 22), requested_by="test")
    finally:
        await pool.close()


async def test_customer_show_bills_and_bonus_history_compose_the_services_and_never_write(
    settings: Settings,
) -> None:
    customer = uuid4()
    await _seed(settings, customer)

    shown = await ainvoke(settings, "customer", "show", str(customer), "--json")
    assert shown.exit_code == 0, shown.output
    view = json.loads(shown.stdout)
    assert view["registered"] is True
    assert view["accounts"] == {"GOLD": 3_851_500, "WALLET": 0}
    assert view["phone"] == "+7 *** *** ** 67"
    assert "Aigerim" not in shown.stdout
    assert view["bonus"] == {"balance": 5_000}
    red = view["red"]
    assert (red["limit"], red["available"], red["outstanding"]) == (30_000_000, 26_000_000, 4_000_000)
    assert red["last_closed_business_date"] == "2025-10-22"
    [bill] = red["open_bills"]
    assert (bill["statement_date"], bill["status"], bill["amount"], bill["owed"]) == (
        "2025-10-22",
        "OPEN",
        1_000_000,
        1_000_000,
    )
    assert bill["due_on"] == "2025-11-24"  # 22.11 is a Saturday: moved to Monday
    assert red["penalties"] == []
    human = await ainvoke(settings, "customer", "show", str(customer))
    assert "open bills (1):" in human.stdout
    assert "due 24.11.2025 20:00" in human.stdout

    bills = json.loads((await ainvoke(settings, "billing", "bills", str(customer), "--json")).stdout)
    assert [(b["statement_date"], b["status"]) for b in bills["bills"]] == [("2025-10-22", "OPEN")]
    assert bills["bills"][0]["lines"][0]["part_no"] == 1
    history = json.loads((await ainvoke(settings, "bonus", "history", str(customer), "--json")).stdout)
    assert history["balance"] == 5_000
    assert [(e["kind"], e["signed"], e["running_balance"]) for e in history["entries"]] == [
        ("ACCRUAL", 5_000, 5_000)
    ]

    stranger = str(uuid4())
    for args, message in (
        (["customer", "show", stranger], "is unknown to payments, bonus and billing"),
        (["billing", "bills", stranger], "has no Kaspi Red account"),
        (["bonus", "history", stranger], "has no bonus account"),
    ):
        result = await ainvoke(settings, *args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.stderr

    # The CLI reads in a read-only transaction: PostgreSQL refuses a write there.
    async with read_snapshot(settings) as snapshot:
        conn = await snapshot.schema("payments")
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await conn.execute("UPDATE accounts SET balance = 0")

    # reconcile --json: the report as data; a database without the schemas is one line.
    report = await ainvoke(settings, "reconcile", "--json")
    assert report.exit_code in (0, 1), report.output
    assert {"clean", "discrepancies"} <= set(json.loads(report.stdout))
    wrong = settings.db.dsn.rsplit("/", 1)[0] + "/postgres"
    missing = await ainvoke(settings, "--dsn", wrong, "reconcile")
    assert missing.exit_code == 1
    assert missing.stderr.startswith("aqsha: error: the database has no aqsha schemas")
    assert len(missing.stderr.splitlines()) == 1
    nowhere = await ainvoke(settings, "--dsn", wrong, "customer", "show", stranger)
    assert nowhere.exit_code == 1
    assert "has no payments tables" in nowhere.stderr


async def test_run_day_waits_for_billing_to_close_the_day(settings: Settings) -> None:
    await create_topics(settings.kafka, "aqsha.billing.commands", "aqsha.billing.days")
    commands = resolve("aqsha.billing.commands", settings.kafka.topic_suffix)
    days = resolve("aqsha.billing.days", settings.kafka.topic_suffix)

    async def billing_answers() -> None:
        """Billing's part: read the command, announce the day closed, caused by it."""
        (record,) = await read_records(settings.kafka.bootstrap, commands, until=1)
        command = decode_as(record.value or b"", RunBusinessDay)
        # An earlier run of the same date first: --wait must not take it for its own.
        other = BusinessDayClosed(
            business_date=date(2026, 3, 31),
            requested_by="scheduler",
            accounts=9,
            bills=9,
            overdue=9,
            penalties=9,
        )
        closed = BusinessDayClosed(
            business_date=date(2026, 3, 31), requested_by="alice", accounts=3, bills=2, overdue=1, penalties=1
        )
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap)
        await producer.start()
        try:
            for payload, causation in ((other, None), (closed, command)):
                env = new_envelope(
                    payload,
                    key="2026-03-31",
                    producer="billing",
                    occurred_at=datetime.now(UTC),
                    causation=causation,
                )
                headers = [(k, v.encode()) for k, v in envelope_headers(env).items()]
                await producer.send_and_wait(days, encode(env), key=b"2026-03-31", headers=headers)
        finally:
            await producer.stop()

    answer = asyncio.create_task(billing_answers())
    waited = await ainvoke(settings, "billing", "run-day", "2026-03-31", "--by", "alice", "--wait", "--json")
    await answer
    assert waited.exit_code == 0, waited.output
    result = json.loads(waited.stdout)
    assert result["sent"]["type"] == "RunBusinessDay"
    assert {
        k: result["closed"][k] for k in ("business_date", "accounts", "bills", "overdue", "penalties")
    } == {
        "business_date": "2026-03-31",
        "accounts": 3,
        "bills": 2,
        "overdue": 1,
        "penalties": 1,
    }

    late = await ainvoke(settings, "billing", "run-day", "2026-04-01", "--wait", "--timeout", "1")
    assert late.exit_code == 1
    assert "but no reply on" in late.stderr
    assert late.stdout == ""

    # --direct: billing's use case announces the run through its outbox too.
    direct = await ainvoke(settings, "billing", "run-day", "2026-04-02", "--direct", "--json")
    assert direct.exit_code == 0, direct.output
    conn = await asyncpg.connect(settings.db.dsn)
    try:
        row = await conn.fetchrow(
            "SELECT topic, key, payload FROM billing.outbox WHERE event_type = 'BusinessDayClosed'"
        )
    finally:
        await conn.close()
    assert row is not None
    assert (row["topic"], row["key"]) == ("aqsha.billing.days", "2026-04-02")


async def test_tail_by_partition_offset_and_time_and_lag_of_any_group(settings: Settings) -> None:
    await create_topics(settings.kafka, "aqsha.payments.events")
    topic = resolve("aqsha.payments.events", settings.kafka.topic_suffix)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap)
    await producer.start()
    try:
        for partition in (0, 1):
            for _ in range(3):
                env = new_envelope(
                    sample(PaymentCompleted), producer="payments", occurred_at=datetime.now(UTC)
                )
                await producer.send_and_wait(topic, encode(env), key=env.key.encode(), partition=partition)
    finally:
        await producer.stop()

    async def tail(*args: str) -> list[tuple[int, int]]:
        result = await ainvoke(settings, "tail", "aqsha.payments.events", "--no-follow", "--json", *args)
        assert result.exit_code == 0, result.output
        return [(r["partition"], r["offset"]) for r in map(json.loads, result.stdout.splitlines())]

    assert await tail("--partition", "1", "--offset", "1") == [(1, 1), (1, 2)]
    assert sorted(await tail("--offset", "-1")) == [(0, 2), (1, 2)]
    assert len(await tail("--since", "1h")) == 6
    assert await tail("--since", (datetime.now(UTC) + timedelta(hours=1)).isoformat()) == []
    bad = await ainvoke(settings, "tail", "aqsha.payments.events", "--partition", "40", "--no-follow")
    assert bad.exit_code == 2
    assert "no partition 40" in bad.stderr

    # A group the registry does not know: its lag where it has committed.
    group = f"reporting-{uuid4().hex[:6]}"
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 1)])
        await consumer.commit({TopicPartition(topic, 1): 1})
    finally:
        await consumer.stop()
    lag = await ainvoke(settings, "lag", "--group", group, "--json")
    assert lag.exit_code == 0, lag.output
    rows: list[dict[str, Any]] = json.loads(lag.stdout)["partitions"]
    assert [(r["group"], r["topic"], r["partition"], r["committed"], r["lag"]) for r in rows] == [
        (group, topic, 1, 1, 2)
    ]
    unknown = await ainvoke(settings, "lag", "--group", group + "x")
    assert unknown.exit_code == 2
    assert f"no consumer group '{group}x' on the broker; did you mean '{group}'?" in unknown.stderr
