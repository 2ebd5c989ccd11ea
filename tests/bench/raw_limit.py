# ruff: noqa: E501  (SQL text reads better unwrapped)
"""The raw limit: the database writes and Redis checks of one payment, done directly in batches.

No Kafka and no service code: asyncpg (``unnest``/``executemany``) and redis-py pipelines only.
Per payment (a service payment without a code, the mix's common case), the same rows the
services write on the same tables (a database with every service's migrations):

* Redis (payments' idempotency guard): ``GET`` outcome + ``SET NX PX`` lock, later ``DEL`` lock +
  ``SET`` outcome, as two pipelines per batch.
* payments, one transaction: the idempotency key, the hold (conditional balance ``UPDATE``) and the
  capture (2 + 2 ledger entries), the payment row, two status-history rows, the
  ``PaymentCompleted`` outbox row; then the relay's ``DELETE`` of the outbox rows.
* bonus, one transaction: inbox claim, accrual decision, outbox row (``BonusAccrued``) + relay delete.
* notify, one transaction: inbox claim, two deliveries (inbox + push) written and marked sent,
  outbox row (``NotificationDelivered``) + relay delete.
* billing, one transaction: inbox claim (it reads payments events too).

``python -m tests.bench.raw_limit [--payments N] [--batch B]`` prints payments per second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from redis.asyncio import Redis

from shared.db import migrate, service_migrations
from shared.ops.platform import ROOT, SERVICES, local_endpoints, recreate_database

PAYLOAD = json.dumps(
    {"type": "PaymentCompleted", "payload": {"amount": 150000, "fee": 0}} | {"pad": "x" * 900}
)


async def _seed(conn: asyncpg.Connection, customers: list[UUID]) -> None:
    now = datetime.now(UTC)
    await conn.execute(
        "INSERT INTO payments.customers(customer_id, phone, full_name, tariff_profile, registered_at) "
        "SELECT c, '+77000000000', 'Raw Limit', 'HOMEBANK', $2 FROM unnest($1::uuid[]) AS c",
        customers,
        now,
    )
    await conn.execute(
        "INSERT INTO payments.accounts(customer_id, kind, balance) "
        "SELECT c, k, 1000000000 FROM unnest($1::uuid[]) AS c, (VALUES ('GOLD'), ('WALLET')) AS v(k)",
        customers,
    )


async def _one_batch(pool: asyncpg.Pool, redis: Redis, prefix: str, customers: list[UUID], n: int) -> None:
    now = datetime.now(UTC)
    rids = [str(uuid4()) for _ in range(n)]
    pids = [uuid4() for _ in range(n)]
    cids = [customers[i % len(customers)] for i in range(n)]
    eids = [uuid4() for _ in range(n)]
    amounts = [150_000 + i for i in range(n)]
    pipe = redis.pipeline(transaction=False)
    for rid in rids:
        pipe.get(f"{prefix}idem:payments:{rid}")
        pipe.set(f"{prefix}idem:payments:{rid}:lock", "1", nx=True, px=30_000)
    await pipe.execute()
    async with pool.acquire() as conn, conn.transaction():
        fresh = await conn.fetch(
            "INSERT INTO payments.idempotency_keys(scope, key, payload_hash, outcome) "
            "SELECT 'payments', k, 'h', 'null' FROM unnest($1::text[]) AS k ON CONFLICT DO NOTHING RETURNING key",
            rids,
        )
        assert len(fresh) == n
        await conn.fetch(
            "SELECT customer_id, tariff_profile FROM payments.customers WHERE customer_id = ANY($1)", cids
        )
        debits: dict[UUID, int] = {}
        for c, a in zip(cids, amounts, strict=True):
            debits[c] = debits.get(c, 0) + a
        ok = await conn.fetch(
            "UPDATE payments.accounts a SET balance = balance - d.amount FROM unnest($1::uuid[], $2::bigint[]) "
            "AS d(c, amount) WHERE a.customer_id = d.c AND a.kind = 'GOLD' AND a.balance - d.amount >= 0 "
            "RETURNING a.customer_id",
            list(debits),
            list(debits.values()),
        )
        assert len(ok) == len(debits)
        ledger = []
        for p, c, a in zip(pids, cids, amounts, strict=True):
            ledger += [(p, "HOLD", "GOLD", c, -a, now), (p, "HOLD", "HOLDS", None, a, now)]
            ledger += [
                (p, "CAPTURE", "HOLDS", None, -a, now),
                (p, "CAPTURE", "PROVIDER_SETTLEMENT", None, a, now),
            ]
        await conn.copy_records_to_table(
            "ledger_entries",
            schema_name="payments",
            columns=["payment_id", "posting_kind", "account", "customer_id", "amount", "created_at"],
            records=ledger,
        )
        await conn.execute(
            "INSERT INTO payments.payments(payment_id, request_id, customer_id, kind, status, amount, fee, total, "
            "funding, channel, category, provider, provider_account, held, source_account, created_at, "
            "updated_at, completed_at, receipt_number) "
            "SELECT p, r::uuid, c, 'SERVICE', 'COMPLETED', a, 0, a, 'GOLD', 'APP', 'electricity', 'almaty-energo', "
            "'4400123456', a, 'GOLD', $5, $5, $5, 'R-' || r FROM unnest($1::uuid[], $2::text[], $3::uuid[], "
            "$4::bigint[]) AS x(p, r, c, a)",
            pids,
            rids,
            cids,
            amounts,
            now,
        )
        await conn.execute(
            "INSERT INTO payments.payment_status_history(payment_id, status, at) "
            "SELECT p, s, $2 FROM unnest($1::uuid[]) AS p, (VALUES ('PENDING_PROVIDER'), ('COMPLETED')) AS v(s)",
            pids,
            now,
        )
        await conn.execute(
            "UPDATE payments.idempotency_keys k SET outcome = $2::jsonb FROM unnest($1::text[]) AS x(r) "
            "WHERE k.scope = 'payments' AND k.key = x.r",
            rids,
            json.dumps({"type": "PaymentCompleted"}),
        )
        await _outbox(conn, "payments", eids, cids)
    pipe = redis.pipeline(transaction=False)
    for rid in rids:
        pipe.delete(f"{prefix}idem:payments:{rid}:lock")
        pipe.set(f"{prefix}idem:payments:{rid}", '{"hash":"h","outcome":null}', ex=86_400)
    await pipe.execute()
    await _relay(pool, "payments")
    await asyncio.gather(
        _bonus(pool, eids, pids, cids, amounts, now),
        _notify(pool, eids, cids, now),
        _billing(pool, eids),
    )


async def _outbox(conn: Any, schema: str, eids: list[UUID], cids: list[UUID]) -> None:
    await conn.execute(
        f"INSERT INTO {schema}.outbox(topic, key, event_id, event_type, headers, payload) "  # schema is ours
        "SELECT 'aqsha.x.events', c::text, e, 'Event', '{}'::jsonb, convert_to($3, 'UTF8') "
        "FROM unnest($1::uuid[], $2::uuid[]) AS x(e, c)",
        [uuid4() for _ in eids],
        cids,
        PAYLOAD,
    )


async def _relay(pool: asyncpg.Pool, schema: str) -> None:
    async with pool.acquire() as conn:
        rows = await conn.fetch(f"SELECT id, payload FROM {schema}.outbox ORDER BY id LIMIT 5000")  # ours
        await conn.execute(
            f"DELETE FROM {schema}.outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
        )


async def _inbox(conn: Any, schema: str, group: str, eids: list[UUID]) -> None:
    fresh = await conn.fetch(
        f"INSERT INTO {schema}.inbox(consumer_group, event_id, event_type) "  # schema is ours
        "SELECT $1, e, 'PaymentCompleted' FROM unnest($2::uuid[]) AS e ON CONFLICT DO NOTHING RETURNING event_id",
        group,
        eids,
    )
    assert len(fresh) == len(eids)


async def _bonus(
    pool: asyncpg.Pool,
    eids: list[UUID],
    pids: list[UUID],
    cids: list[UUID],
    amounts: list[int],
    now: datetime,
) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await _inbox(conn, "bonus", "aqsha-bonus", eids)
        await conn.execute(
            "INSERT INTO bonus.accrual_decisions(payment_id, customer_id, event_id, kind, completed_at, "
            "business_date, payment_amount, outcome) SELECT p, c, e, 'SERVICE', $5, $6, a, 'NO_BONUS' "
            "FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::bigint[]) AS x(p, c, e, a)",
            pids,
            cids,
            eids,
            amounts,
            now,
            date.today(),
        )
        await _outbox(conn, "bonus", eids, cids)
    await _relay(pool, "bonus")


async def _notify(pool: asyncpg.Pool, eids: list[UUID], cids: list[UUID], now: datetime) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await _inbox(conn, "notify", "aqsha-notify", eids)
        ids = await conn.fetch(
            "INSERT INTO notify.deliveries(source_event_id, event_type, channel, customer_id, correlation_id, "
            "locale, title, body, created_at) SELECT e, 'PaymentCompleted', ch, c, e, 'ru', 'Оплата', 'Оплата', $3 "
            "FROM unnest($1::uuid[], $2::uuid[]) AS x(e, c), (VALUES ('inbox'), ('push')) AS v(ch) RETURNING id",
            eids,
            cids,
            now,
        )
        await conn.execute(
            "UPDATE notify.deliveries SET status = 'SENT', attempts = 1 WHERE id = ANY($1::bigint[])",
            [r["id"] for r in ids],
        )
        await _outbox(conn, "notify", eids, cids)
    await _relay(pool, "notify")


async def _billing(pool: asyncpg.Pool, eids: list[UUID]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await _inbox(conn, "billing", "aqsha-billing", eids)


async def run(
    admin_dsn: str, redis_url: str, database: str, payments: int, batch: int = 500, concurrency: int = 2
) -> dict[str, float]:
    """Prepare a database and time ``payments`` payments in batches; return the figures."""
    dsn = await recreate_database(admin_dsn, database)
    conn = await asyncpg.connect(dsn)
    try:
        for name in SERVICES:
            await migrate(conn, name, service_migrations(ROOT / "services" / name))
        customers = [uuid4() for _ in range(2_000)]
        await _seed(conn, customers)
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(dsn, min_size=concurrency * 3, max_size=concurrency * 4)
    redis = Redis.from_url(redis_url)
    prefix = f"aqsha:rawlimit:{uuid4().hex[:6]}:"
    sizes = [min(batch, payments - i) for i in range(0, payments, batch)]
    gate = asyncio.Semaphore(concurrency)

    async def one(n: int, k: int) -> None:
        async with gate:
            # disjoint customers per concurrent batch: no lock waits the services would not have
            part = customers[k % concurrency :: concurrency]
            await _one_batch(pool, redis, prefix, part, n)

    try:
        started = time.perf_counter()
        await asyncio.gather(*(one(n, k) for k, n in enumerate(sizes)))
        elapsed = time.perf_counter() - started
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=5000)]
        for i in range(0, len(keys), 5000):
            await redis.delete(*keys[i : i + 5000])
        await redis.aclose()
        await pool.close()
    return {"payments": payments, "seconds": elapsed, "payments_per_s": payments / elapsed, "batch": batch}


def main(argv: list[str] | None = None) -> None:
    """Run against the machine's PostgreSQL and Redis (or private ones)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--payments", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args(argv)
    endpoints = local_endpoints()
    try:
        result = asyncio.run(
            run(endpoints.pg_admin_dsn, endpoints.redis_url, "aqsha_bench_raw", args.payments, args.batch)
        )
    finally:
        endpoints.stop()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
