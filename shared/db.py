"""asyncpg pool factory and the migration runner.

Each service owns one PostgreSQL schema (``payments``, ``bonus``, ``billing``, ``notify``). The pool
sets ``search_path`` to it, so SQL stays unqualified and a service can be moved to its own database
by changing only its DSN. Migrations are ordered ``NNN_name.sql`` files: first the shared kernel's
(``shared/migrations``: outbox, inbox, idempotency), then the service's own. Each applied file is
recorded with its SHA-256; an edited, already-applied file is an error, not a silent skip. A
transaction-level advisory lock per schema makes two instances starting at once safe.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

#: What handlers receive: a plain connection or one borrowed from a pool.
Conn: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"
#: What read queries take: a pool (each statement on its own), or a connection (one transaction, one
#: snapshot: the operator CLI reads several services' data in one read-only transaction).
Queryable: TypeAlias = "asyncpg.Pool | asyncpg.Connection[Any] | PoolConnectionProxy[Any]"

SHARED_MIGRATIONS = Path(__file__).with_name("migrations")
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_FILE_RE = re.compile(r"^(\d{3,})_[a-z0-9_]+\.sql$")


class MigrationError(RuntimeError):
    """A migration set is inconsistent with what the database has applied."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One SQL file, identified by ``<set>:<file stem>``."""

    version: str
    path: Path
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the file's text."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


def _check_schema(schema: str) -> str:
    if not _SCHEMA_RE.match(schema):
        raise ValueError(f"invalid schema name {schema!r}")
    return schema


async def _init_connection(conn: asyncpg.Connection[Any]) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def init_connection(conn: asyncpg.Connection[Any]) -> None:
    """Decode json/jsonb to Python objects on a connection made outside ``create_pool``."""
    await _init_connection(conn)


#: Every service connection insists on durable commits, whatever the server's default: a handler
#: commits its transaction and only then the Kafka offset, so a commit that a server crash could
#: undo (``synchronous_commit=off``) would lose the message for good. Found by the chaos suite.
DURABLE_COMMITS = "on"


async def create_pool(
    dsn: str, schema: str, *, min_size: int = 1, max_size: int = 10, read_only: bool = False
) -> asyncpg.Pool:
    """A pool whose connections use ``schema``, commit durably and decode json/jsonb to Python objects.

    ``read_only``: every transaction of these connections is read-only (PostgreSQL refuses any write
    with ``read_only_sql_transaction``): the operator CLI's read models.
    """
    settings = {
        "search_path": _check_schema(schema),
        "application_name": f"aqsha-{schema}" + ("-read" if read_only else ""),
        "synchronous_commit": DURABLE_COMMITS,
    }
    if read_only:
        settings["default_transaction_read_only"] = "on"
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        server_settings=settings,
        init=_init_connection,
    )
    assert pool is not None
    return pool


def load_migrations(directories: Sequence[tuple[str, Path]]) -> list[Migration]:
    """Read ``(set name, folder)`` pairs into one ordered list: sets in the order given, files by number."""
    out: list[Migration] = []
    for set_name, folder in directories:
        files = sorted(p for p in folder.glob("*.sql"))
        seen: set[str] = set()
        for path in files:
            match = _FILE_RE.match(path.name)
            if match is None:
                raise MigrationError(f"{path}: migration files are named NNN_snake_case.sql")
            if match[1] in seen:
                raise MigrationError(f"{path}: duplicate migration number {match[1]}")
            seen.add(match[1])
            out.append(Migration(f"{set_name}:{path.stem}", path, path.read_text()))
    return out


def service_migrations(service_dir: Path) -> list[Migration]:
    """The shared kernel's migrations followed by the service's own ``migrations/`` folder."""
    dirs: list[tuple[str, Path]] = [("shared", SHARED_MIGRATIONS)]
    own = service_dir / "migrations"
    if own.is_dir():
        dirs.append((service_dir.name, own))
    return load_migrations(dirs)


async def migrate(conn: Conn, schema: str, migrations: Sequence[Migration]) -> list[str]:
    """Apply pending migrations to ``schema`` in one transaction; return the versions applied."""
    schema = _check_schema(schema)
    applied_now: list[str] = []
    async with conn.transaction():
        # Serialises concurrent starters; released automatically at commit or rollback.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"aqsha.migrate.{schema}")
        # Only when missing: CREATE SCHEMA needs CREATE on the database even with IF NOT EXISTS, which
        # a service's own role does not have (deploy/postgres/roles.sql creates its schema for it).
        if not await conn.fetchval("SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)", schema):
            await conn.execute(f'CREATE SCHEMA "{schema}"')
        await conn.execute(f'SET LOCAL search_path TO "{schema}"')
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version text PRIMARY KEY,
                   checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
        done: dict[str, Any] = {r["version"]: r["checksum"] for r in rows}
        known = {m.version for m in migrations}
        unknown = sorted(set(done) - known)
        if unknown:
            raise MigrationError(f"schema {schema} has migrations this code does not know: {unknown}")
        for m in migrations:
            if m.version in done:
                if done[m.version] != m.checksum:
                    raise MigrationError(f"{m.path}: already applied with another checksum; add a new file")
                continue
            await conn.execute(m.sql)
            await conn.execute(
                "INSERT INTO schema_migrations(version, checksum) VALUES ($1, $2)", m.version, m.checksum
            )
            applied_now.append(m.version)
    return applied_now
