"""deploy/postgres/roles.sql on a real PostgreSQL: one role per service schema, and a read-only one.

Each service role migrates and writes its own schema and cannot read, create in or even look into
another service's schema, the public schema or a new schema; ``aqsha_ops`` reads every service
schema and writes none. The roles are cluster-wide: the test gives them random passwords and drops
them at the end (best effort: a role that still owns objects elsewhere stays).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from uuid import uuid4

import asyncpg
import pytest
import pytest_asyncio

from shared.db import migrate, service_migrations
from shared.devinfra import Infra
from tests.support import pg

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ROLES_SQL = ROOT / "deploy" / "postgres" / "roles.sql"
SERVICES = ("payments", "bonus", "billing", "notify")
OPS = "aqsha_ops"
ROLES = (*(f"aqsha_{s}" for s in SERVICES), OPS)


def as_role(dsn: str, role: str, password: str) -> str:
    """``dsn`` logging in as ``role`` (the password matters wherever the server does not trust)."""
    parts = urlsplit(dsn)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{role}:{password}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


async def apply_roles(admin_dsn: str) -> dict[str, str]:
    """Run roles.sql as the superuser on ``admin_dsn``'s database; give every role a fresh password."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(ROLES_SQL.read_text())
        passwords = {role: secrets.token_hex(16) for role in ROLES}
        for role, password in passwords.items():
            await conn.execute(f"ALTER ROLE {role} PASSWORD '{password}'")  # hex: nothing to escape
        return passwords
    finally:
        await conn.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session", autouse=True)
async def drop_roles_afterwards(infra: Infra) -> AsyncIterator[None]:
    yield
    conn = await asyncpg.connect(infra.pg_dsn)
    try:
        for role in ROLES:
            with contextlib.suppress(asyncpg.PostgresError):
                await conn.execute(f"DROP ROLE IF EXISTS {role}")
    finally:
        await conn.close()


@pytest_asyncio.fixture(loop_scope="session")
async def fresh_db(infra: Infra) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """An empty database with roles.sql applied: (its admin DSN, role → password)."""
    name = f"aqsha_roles_{uuid4().hex[:10]}"
    admin = await asyncpg.connect(infra.pg_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = pg.with_database(infra.pg_dsn, name)
    passwords = await apply_roles(dsn)
    yield dsn, passwords
    await pg.drop(infra.pg_dsn, name)


async def connect_as(dsn: str, role: str, passwords: dict[str, str]) -> asyncpg.Connection:
    return await asyncpg.connect(as_role(dsn, role, passwords[role]))


async def insert_outbox_row(conn: asyncpg.Connection, schema: str) -> None:
    await conn.execute(
        f"INSERT INTO {schema}.outbox (topic, key, event_id, event_type, payload) "
        "VALUES ('t', 'k', gen_random_uuid(), 'Probe', '\\x00'::bytea)"
    )


async def test_each_service_role_migrates_and_writes_its_own_schema_only(
    fresh_db: tuple[str, dict[str, str]],
) -> None:
    dsn, passwords = fresh_db
    for service in SERVICES:  # what each service does at start, as its own role
        conn = await connect_as(dsn, f"aqsha_{service}", passwords)
        try:
            applied = await migrate(conn, service, service_migrations(ROOT / "services" / service))
            assert applied, f"{service}: no migration applied"
            await insert_outbox_row(conn, service)
            assert await conn.fetchval(f"SELECT count(*) FROM {service}.outbox") == 1
            owner = await conn.fetchval(
                "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = $1", service
            )
            assert owner == f"aqsha_{service}"
        finally:
            await conn.close()

    for service in SERVICES:
        conn = await connect_as(dsn, f"aqsha_{service}", passwords)
        try:
            for other in SERVICES:
                if other == service:
                    continue
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.fetchval(f"SELECT count(*) FROM {other}.outbox")
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(f"CREATE TABLE {other}.planted (id int)")
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await insert_outbox_row(conn, other)
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("CREATE SCHEMA planted")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("CREATE TABLE public.planted (id int)")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("CREATE TEMP TABLE planted (id int)")
            other = "bonus" if service != "bonus" else "payments"
            with pytest.raises(asyncpg.InsufficientPrivilegeError):  # nor can it grant itself more
                await conn.execute(f"GRANT USAGE ON SCHEMA {other} TO aqsha_{service}")
        finally:
            await conn.close()


async def test_ops_reads_every_schema_and_writes_none(fresh_db: tuple[str, dict[str, str]]) -> None:
    dsn, passwords = fresh_db
    for service in SERVICES:
        conn = await connect_as(dsn, f"aqsha_{service}", passwords)
        try:
            await migrate(conn, service, service_migrations(ROOT / "services" / service))
            await insert_outbox_row(conn, service)
        finally:
            await conn.close()

    ops = await connect_as(dsn, OPS, passwords)
    try:
        for service in SERVICES:  # tables made by later migrations too (the owner's default privileges)
            assert await ops.fetchval(f"SELECT count(*) FROM {service}.outbox") == 1
            assert await ops.fetchval(f"SELECT count(*) FROM {service}.schema_migrations") > 0
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):  # first guard: read-only by default
            await insert_outbox_row(ops, "payments")
        await ops.execute("SET default_transaction_read_only = off")  # a session may lift it ...
        for service in SERVICES:  # ... the grants still refuse every write
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await insert_outbox_row(ops, service)
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await ops.execute(f"DELETE FROM {service}.outbox")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await ops.execute(f"CREATE TABLE {service}.planted (id int)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await ops.execute("CREATE SCHEMA planted")
    finally:
        await ops.close()


async def test_roles_sql_takes_over_schemas_migrated_by_another_role_and_is_idempotent(pg_dsn: str) -> None:
    # pg_dsn: every schema already migrated by the superuser (one shared DSN, as before the roles).
    await apply_roles(pg_dsn)
    passwords = await apply_roles(pg_dsn)  # twice: nothing changes, nothing fails
    for service in SERVICES:
        conn = await connect_as(pg_dsn, f"aqsha_{service}", passwords)
        try:
            # the service keeps migrating and writing what the superuser created
            assert await migrate(conn, service, service_migrations(ROOT / "services" / service)) == []
            await conn.execute(f"ALTER TABLE {service}.outbox ADD COLUMN probe int")  # the owner only
            await insert_outbox_row(conn, service)
            others = await conn.fetch(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = $1 AND c.relkind IN ('r', 'S') AND c.relowner <> current_user::regrole",
                service,
            )
            assert [r["relname"] for r in others] == [], "objects the service role does not own"
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetchval(f"SELECT count(*) FROM {pg.KERNEL_SCHEMA}.outbox")
        finally:
            await conn.close()
    ops = await connect_as(pg_dsn, OPS, passwords)
    try:
        for service in SERVICES:
            assert await ops.fetchval(f"SELECT count(*) FROM {service}.outbox") >= 1
    finally:
        await ops.close()
