"""``make run ONCE=1`` end to end: the demo's own expectations, a clean stop, no stray processes.

The real Makefile target is run as a subprocess (Tansu started by the platform itself, the four
services as ``faststream run`` processes). PostgreSQL and Redis are the suite's own (passed through
``AQSHA_PG_DSN``/``AQSHA_REDIS_URL`` exactly as an operator would), in a database of this test.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest

from shared.devinfra import Infra
from shared.ops.platform import with_database

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


async def _aqsha(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cli = Path(sys.executable).with_name("aqsha")
    command = [str(cli), *args]
    return await asyncio.to_thread(
        subprocess.run, command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


async def test_make_run_once_completes_the_demo_and_stops_everything(infra: Infra, tmp_path: Path) -> None:
    database = f"aqsha_e2e_{uuid.uuid4().hex[:8]}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AQSHA_")},
        "AQSHA_PG_DSN": infra.pg_dsn,
        "AQSHA_REDIS_URL": infra.redis_url,
    }
    args = f"--local --database {database} --run-dir {tmp_path}"
    try:
        command = [
            "make",
            "--no-print-directory",
            "run",
            "ONCE=1",
            f"RUN_ARGS={args}",
            f"PYTHON={sys.executable}",
        ]
        done = await asyncio.to_thread(
            subprocess.run,
            command,
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=420,
            check=False,
        )
        out = done.stdout + done.stderr
        assert done.returncode == 0, out[-6000:]
        held = re.search(r"^(\d+)/(\d+) expectations held$", out, re.MULTILINE)
        assert held is not None, out[-3000:]
        assert held.group(1) == held.group(2), held.group(0)
        assert int(held.group(2)) >= 60, held.group(0)
        assert "✘" not in out
        for expected in (
            "PenaltyApplied",
            "OverpaymentRefunded",
            "BonusRedeemed",
            "BonusAccrued",
            "RedPurchaseApproved",
            "OtpRequested",
            "ISSUER_RESTRICTION",  # seed 003: card payments decided by the card's issuer
            "ISSUER_UNAVAILABLE",
            "aqsha reconcile: CLEAN",
            "aqsha: stopped cleanly",
        ):
            assert expected in out, expected
        # Every inbox line of the summary is in its customer's language.
        for locale in ("ru", "kk", "en"):
            assert f"[{locale}] " in out
        pids = [int(p) for p in re.findall(r"pid (\d+), http", out)]
        assert len(pids) == 4
        assert [p for p in pids if _alive(p)] == []
        logs = sorted(p.name for p in (tmp_path / "logs").iterdir())
        assert logs == ["billing.log", "bonus.log", "notify.log", "payments.log"]
        # The demo acts as the outside systems, each record signed by the one that sends it in
        # production: no service refused ("record refused and dead-lettered") or dead-lettered anything.
        for log in logs:
            text = (tmp_path / "logs" / log).read_text(encoding="utf-8", errors="replace")
            assert "dead-lettered" not in text, (log, text[-3000:])
            # Every line is JSON, FastStream's own ("FastStream app starting...") included.
            for line in text.splitlines():
                assert isinstance(json.loads(line), dict), (log, line)
            assert '"logger": "faststream"' in text, log
        # The CLI's profile lives as long as the platform: written when it was ready, removed at the stop.
        assert f"reads {tmp_path / 'aqsha.env'}" in out
        assert not (tmp_path / "aqsha.env").exists()

        # The operator's reconcile over what the demo left: clean, then a deliberately injected
        # discrepancy (a Gold balance that no longer equals its ledger entries) is found.
        dsn = with_database(infra.pg_dsn, database)
        clean = await _aqsha(["reconcile"], {**env, "AQSHA_PG_DSN": dsn})
        assert clean.returncode == 0, clean.stdout + clean.stderr
        assert "CLEAN" in clean.stdout
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(
                "UPDATE payments.accounts SET balance = balance + 100 WHERE kind = 'GOLD' "
                "AND customer_id = (SELECT min(customer_id::text)::uuid FROM payments.accounts)"
            )
        finally:
            await conn.close()
        dirty = await _aqsha(["reconcile"], {**env, "AQSHA_PG_DSN": dsn})
        assert dirty.returncode == 1, dirty.stdout + dirty.stderr
        assert "account_balances_match_ledger" in dirty.stdout
    finally:
        conn = await asyncpg.connect(infra.pg_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await conn.close()
