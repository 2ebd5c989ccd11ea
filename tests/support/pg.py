"""PostgreSQL helpers for tests: DSN surgery, template databases, every schema's migrations."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from uuid import uuid4

import asyncpg

from shared.db import SHARED_MIGRATIONS, Migration, load_migrations, migrate, service_migrations

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("payments", "bonus", "billing", "notify")
KERNEL_SCHEMA = "kernel"  # the shared kernel alone, for tests of outbox/inbox/idempotency


def with_database(dsn: str, database: str) -> str:
    """``dsn`` pointing at another database."""
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


def schema_migrations() -> dict[str, list[Migration]]:
    """Every schema a test database holds, with its migrations."""
    out = {KERNEL_SCHEMA: load_migrations([("shared", SHARED_MIGRATIONS)])}
    for name in SERVICES:
        out[name] = service_migrations(ROOT / "services" / name)
    return out


async def create_template(admin_dsn: str) -> str:
    """A database with every schema migrated, to clone per test; returns its name."""
    name = f"aqsha_tpl_{uuid4().hex[:10]}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(with_database(admin_dsn, name))
    try:
        for schema, migrations in schema_migrations().items():
            await migrate(conn, schema, migrations)
    finally:
        await conn.close()
    return name


async def clone(admin_dsn: str, template: str) -> str:
    """A fresh database from the template; returns its name."""
    name = f"aqsha_t_{uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await admin.close()
    return name


async def drop(admin_dsn: str, name: str) -> None:
    """Drop a test database, disconnecting anyone left."""
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
