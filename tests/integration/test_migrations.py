"""Migration runner: ordered, checksummed, and safe when two instances start at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from shared.db import MigrationError, load_migrations, migrate

pytestmark = pytest.mark.integration


def _write(folder: Path, name: str, sql: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(sql)


async def test_concurrent_starters_apply_each_migration_once(pg_dsn: str, tmp_path: Path) -> None:
    _write(tmp_path / "m", "001_a.sql", "CREATE TABLE a (id int);")
    _write(tmp_path / "m", "002_b.sql", "CREATE TABLE b (id int); INSERT INTO a VALUES (1);")
    migrations = load_migrations([("svc", tmp_path / "m")])
    conns = [await asyncpg.connect(pg_dsn) for _ in range(5)]
    try:
        results = await asyncio.gather(*(migrate(c, "concurrent", migrations) for c in conns))
        assert sorted(len(r) for r in results) == [0, 0, 0, 0, 2]
        assert await conns[0].fetchval("SELECT count(*) FROM concurrent.a") == 1
        versions = await conns[0].fetch("SELECT version FROM concurrent.schema_migrations ORDER BY version")
        assert [v["version"] for v in versions] == ["svc:001_a", "svc:002_b"]
    finally:
        for c in conns:
            await c.close()


async def test_edited_applied_migration_is_refused(pg_dsn: str, tmp_path: Path) -> None:
    _write(tmp_path / "m", "001_a.sql", "CREATE TABLE a (id int);")
    conn = await asyncpg.connect(pg_dsn)
    try:
        await migrate(conn, "edited", load_migrations([("svc", tmp_path / "m")]))
        _write(tmp_path / "m", "001_a.sql", "CREATE TABLE a (id bigint);")
        with pytest.raises(MigrationError, match="another checksum"):
            await migrate(conn, "edited", load_migrations([("svc", tmp_path / "m")]))
    finally:
        await conn.close()


def test_badly_named_files_are_refused(tmp_path: Path) -> None:
    _write(tmp_path / "m", "create.sql", "SELECT 1;")
    with pytest.raises(MigrationError, match="NNN_snake_case"):
        load_migrations([("svc", tmp_path / "m")])


async def test_service_pools_commit_durably_even_when_the_database_default_is_off(pg_dsn: str) -> None:
    # A handler commits its transaction, then the Kafka offset: with synchronous_commit=off a
    # server crash could undo an acknowledged commit and the message would be gone for good
    # (what the chaos suite's first full run found). The pool insists on it per connection.
    from shared.db import create_pool

    name = pg_dsn.rsplit("/", 1)[1]
    admin = await asyncpg.connect(pg_dsn)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    finally:
        await admin.close()
    plain = await asyncpg.connect(pg_dsn)
    try:
        assert await plain.fetchval("SHOW synchronous_commit") == "off"  # the default really is off
    finally:
        await plain.close()
    pool = await create_pool(pg_dsn, "payments", min_size=1, max_size=1)
    try:
        assert await pool.fetchval("SHOW synchronous_commit") == "on"
    finally:
        await pool.close()
