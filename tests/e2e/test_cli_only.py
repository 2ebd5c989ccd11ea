"""A platform driven by the ``aqsha`` CLI alone: ``make run NO_DEMO=1``, then nothing but ``aqsha``.

The real Makefile target runs as a subprocess with a clean environment (``PATH`` and ``HOME`` only):
no ``AQSHA_*`` variable is exported anywhere. The platform writes its profile
(``<run dir>/aqsha.env``), and every ``aqsha`` command runs in the directory above the run directory,
so the CLI finds it by itself: the broker, the run's database, the clock file, the operator's
``ops`` key and the run's keyring (``--as PRINCIPAL`` signs as that outside system, as the brief
allows), and the simulated SMS gateway. No command gets ``--bootstrap``, ``--dsn``, ``--key`` or
``--profile``.

The story: onboarding registers a customer, Red origination opens her Kaspi Red, the cash network
tops up her Gold at an ATM, she pays her mobile (no code) and her electricity (above 5 000 ₸: the
one-time code read from her simulated phone with ``aqsha sms``), buys with Red, and ops closes the
business day on which her first Red bill is issued (``aqsha billing run-day --wait``). Everything is
read back with ``aqsha customer show``, ``billing bills``, ``bonus history`` and ``payments history``;
then the platform is stopped with SIGINT, and every line of every service log is JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from shared.ops.platform import with_database
from shared.ops.profile import read_profile

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
AQSHA = Path(sys.executable).with_name("aqsha")
TIYN = 100
PHONE = "+77011239876"
CUSTOMER = str(uuid.uuid4())


def _env() -> dict[str, str]:
    """A clean environment: nothing but PATH and HOME (no AQSHA_* at all)."""
    return {name: os.environ[name] for name in ("PATH", "HOME") if name in os.environ}


class Cli:
    """Runs ``aqsha ARGS`` in ``cwd`` (where the run directory is), with the clean environment."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd

    def run(self, *args: str, ok: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(AQSHA), *args],
            cwd=self.cwd,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if ok:
            assert done.returncode == 0, (args, done.stdout[-3000:], done.stderr[-3000:])
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)

    def send(self, name: str, doc: dict[str, Any], *flags: str) -> dict[str, Any]:
        path = self.cwd / f"{name}.json"
        path.write_text(json.dumps(doc), encoding="utf-8")
        sent: dict[str, Any] = json.loads(self.run("send", path.name, *flags, "--json").stdout)
        return sent

    def until(self, what: str, check: Callable[[], Any], timeout_s: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                history = self.run("payments", "history", CUSTOMER, ok=False).stdout[-3000:]
                raise AssertionError(f"{what}: not within {timeout_s:.0f}s; payments:\n{history}")
            time.sleep(0.5)

    def codes(self) -> int:
        """How many SMS with a one-time code her phone has received."""
        return sum(1 for m in self.json("sms", PHONE) if m.get("event_type") == "OtpRequested")

    def pay(self, request_id: str, codes_before: int) -> dict[str, Any]:
        """The payment's outcome; one above 5 000 ₸ is confirmed with the code from her SMS first."""
        outcome = self.settled(request_id)
        if outcome["status"] != "PENDING_CONFIRMATION":
            return outcome
        self.until("the SMS with the code", lambda: self.codes() > codes_before)
        code = self.run("sms", PHONE, "--code").stdout.strip()
        assert len(code) == 6, code
        assert code.isdigit(), code
        self.send(
            f"confirm-{request_id[:8]}",
            {
                "type": "ConfirmPayment",
                "payload": {
                    "request_id": str(uuid.uuid4()),
                    "customer_id": CUSTOMER,
                    "payment_id": str(outcome["payment_id"]),
                    "code": code,
                },
            },
            "--as",
            "app-gateway",
        )
        return dict(
            self.until(
                f"payment {request_id} after the code",
                lambda: (p := self.payment(request_id)) and p["status"] != "PENDING_CONFIRMATION" and p,
            )
        )

    def payment(self, request_id: str) -> dict[str, Any] | None:
        for p in self.json("payments", "history", CUSTOMER):
            if p["request_id"] == request_id:
                found: dict[str, Any] = p
                return found
        return None

    def settled(self, request_id: str) -> dict[str, Any]:
        """The payment once it is no longer in flight."""
        return dict(
            self.until(
                f"payment {request_id}",
                lambda: (p := self.payment(request_id)) and p["status"] != "PENDING_PROVIDER" and p,
            )
        )


def _start(work: Path, database: str) -> subprocess.Popen[bytes]:
    command = [
        "make",
        "--no-print-directory",
        "run",
        "NO_DEMO=1",
        f"RUN_ARGS=--local --run-dir {work / '.run'} --database {database}",
        f"PYTHON={sys.executable}",
    ]
    with (work / "platform.out").open("wb") as out:
        return subprocess.Popen(
            command, cwd=ROOT, env=_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _wait_ready(platform: subprocess.Popen[bytes], work: Path, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = (work / "platform.out").read_text(encoding="utf-8", errors="replace")
        if "the platform is running" in text and (work / ".run" / "aqsha.env").is_file():
            return
        assert platform.poll() is None, text[-4000:]
        time.sleep(0.5)
    raise AssertionError("make run NO_DEMO=1 did not come up: " + text[-4000:])


def _children(pid: int) -> list[int]:
    """The child processes of ``pid``."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _stop(platform: subprocess.Popen[bytes], timeout_s: float = 120) -> int:
    """Ctrl-C for the supervisor (SIGINT to ``make run``'s python), then wait for make to return.

    The supervisor drains, stops the services and the broker, and exits with its verdict; make
    returns it (a SIGINT to make itself would make it report the signal instead).
    """
    if platform.poll() is None:
        for child in _children(platform.pid) or [platform.pid]:
            os.kill(child, signal.SIGINT)
    try:
        return platform.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(platform.pid, signal.SIGKILL)
        platform.wait(30)
        raise


async def _drop(values: dict[str, str], database: str) -> None:
    """Remove what the run left: its database and its Redis keys (the profile names both)."""
    from redis.asyncio import Redis

    conn = await asyncpg.connect(with_database(values["AQSHA_PG_DSN"], "postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await conn.close()
    client = Redis.from_url(values["AQSHA_REDIS_URL"])
    try:
        keys = [k async for k in client.scan_iter(match=f"{values['AQSHA_REDIS_PREFIX']}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def test_make_run_driven_by_the_cli_alone(tmp_path: Path) -> None:
    work = tmp_path / "ops"
    work.mkdir()
    database = f"aqsha_cli_{uuid.uuid4().hex[:8]}"
    platform = _start(work, database)
    values: dict[str, str] = {}
    try:
        _wait_ready(platform, work)
        values = read_profile(work / ".run" / "aqsha.env").values
        assert values["AQSHA_PG_DSN"].endswith(f"/{database}"), values
        assert values["AQSHA_REDIS_PREFIX"] == f"aqsha:{database}:"  # its own keys on a shared Redis
        story(Cli(work), work)
    finally:
        code = _stop(platform)
        out = (work / "platform.out").read_text(encoding="utf-8", errors="replace")
        if values:
            asyncio.run(_drop(values, database))
    assert code == 0, out[-4000:]
    assert "aqsha: stopped cleanly" in out, out[-4000:]
    assert not (work / ".run" / "aqsha.env").exists(), "the profile outlived its platform"

    # Every line every service wrote is JSON, FastStream's own lines included.
    logs = sorted((work / ".run" / "logs").glob("*.log"))
    assert [p.name for p in logs] == ["billing.log", "bonus.log", "notify.log", "payments.log"]
    for log in logs:
        lines = log.read_text(encoding="utf-8").splitlines()
        assert lines, log
        for line in lines:
            record = json.loads(line)
            assert {"ts", "level", "logger", "message", "service"} <= set(record), (log.name, line)
        assert any(json.loads(line)["logger"].startswith("faststream") for line in lines), log.name
        assert "dead-lettered" not in log.read_text(encoding="utf-8"), log.name


def story(cli: Cli, work: Path) -> None:
    """The customer's October, driven through the CLI only."""
    config = cli.json("config")
    assert config["profile"] == str(work / ".run" / "aqsha.env")
    sources = {row["variable"]: row["source"] for row in config["settings"]}
    for name in ("AQSHA_KAFKA_BOOTSTRAP", "AQSHA_PG_DSN", "AQSHA_CLOCK_FILE", "AQSHA_TRUST_SIGNING_KEY_FILE"):
        assert sources[name] == "profile", (name, config)

    # Simulated time: Monday 20 October 2025, 09:00 in Almaty.
    clock = cli.json("clock", "set", "2025-10-20T09:00")
    assert clock["business_date"] == "2025-10-20"

    # Onboarding registers her; Red origination opens Kaspi Red (billing day: the 22nd).
    cli.send(
        "registered",
        {
            "type": "CustomerRegistered",
            "payload": {
                "customer_id": CUSTOMER,
                "phone": PHONE,
                "iin": "900101300777",
                "full_name": "Алия Нурланова",
                "locale": "ru",
                "tariff_profile": "homebank",
            },
        },
        "--as",
        "onboarding",
        "--force",
    )
    cli.send(
        "red",
        {
            "type": "RedAccountOpened",
            "payload": {
                "customer_id": CUSTOMER,
                "limit": 300_000 * TIYN,
                "opened_on": "2025-09-22",
                "accepted_new_terms": True,
            },
        },
        "--as",
        "red-origination",
        "--force",
    )
    cli.until(
        "registration and Red account",
        lambda: (v := cli.json("customer", "show", CUSTOMER)) and v["registered"] and v["red"],
    )

    # The cash network tops up Gold at an ATM: 50 000 ₸.
    topup = str(uuid.uuid4())
    cli.send(
        "topup",
        {
            "type": "TopUp",
            "payload": {
                "request_id": topup,
                "customer_id": CUSTOMER,
                "channel": "ATM",
                "account": "GOLD",
                "amount": 50_000 * TIYN,
            },
        },
        "--as",
        "cash-network",
    )
    assert cli.settled(topup)["status"] == "COMPLETED"

    # In the app: her mobile, 2 000 ₸ (Homebank fee 35 ₸), no code needed.
    mobile = str(uuid.uuid4())
    cli.send(
        "mobile",
        {
            "type": "PayService",
            "payload": {
                "request_id": mobile,
                "customer_id": CUSTOMER,
                "category": "mobile",
                "provider": "beeline-kz",
                "provider_account": "7011239876",
                "amount": 2_000 * TIYN,
            },
        },
        "--as",
        "app-gateway",
    )
    paid_mobile = cli.settled(mobile)
    assert (paid_mobile["status"], paid_mobile["fee"]) == ("COMPLETED", 35 * TIYN), paid_mobile

    # Electricity, 8 450 ₸: above 5 000 ₸ it waits for the code sent to her phone by SMS.
    power = str(uuid.uuid4())
    codes = cli.codes()
    cli.send(
        "power",
        {
            "type": "PayService",
            "payload": {
                "request_id": power,
                "customer_id": CUSTOMER,
                "category": "electricity",
                "provider": "almaty-energo",
                "provider_account": "4400123456",
                "amount": 8_450 * TIYN,
            },
        },
        "--as",
        "app-gateway",
    )
    assert cli.settled(power)["status"] == "PENDING_CONFIRMATION"
    paid_power = cli.pay(power, codes)
    assert paid_power["status"] == "COMPLETED", paid_power
    assert paid_power["history"][-1]["status"] == "COMPLETED"

    # A Red purchase in Kaspi Magazin: 40 000 ₸ in four parts of 10 000 ₸ (a code too).
    red = str(uuid.uuid4())
    codes = cli.codes()
    cli.send(
        "purchase",
        {
            "type": "Purchase",
            "payload": {
                "request_id": red,
                "customer_id": CUSTOMER,
                "merchant": "KASPI_MAGAZIN",
                "order_id": "cli-0001",
                "amount": 40_000 * TIYN,
                "funding": "RED",
            },
        },
        "--as",
        "app-gateway",
    )
    bought = cli.pay(red, codes)
    assert (bought["status"], bought["funding"]) == ("COMPLETED", "RED"), bought

    # Wednesday the 22nd: ops closes the business day; her first bill is issued.
    cli.run("clock", "advance", "2d")
    assert cli.json("clock", "show")["business_date"] == "2025-10-22"
    day = cli.json("billing", "run-day", "2025-10-22", "--wait", "--timeout", "120")
    closed = day["closed"]
    assert closed["business_date"] == "2025-10-22"
    assert (closed["accounts"], closed["bills"], closed["overdue"], closed["penalties"]) == (1, 1, 0, 0), day
    assert day["sent"]["type"] == "RunBusinessDay"
    text = cli.run("billing", "run-day", "2025-10-22", "--wait").stdout  # again: nothing left to do
    assert "business day 2025-10-22 closed: 0 account(s), 0 bill(s) issued" in text, text

    # Read back: Gold, bonus, Red, the open bill and what is outstanding.
    view = cli.json("customer", "show", CUSTOMER)
    spent = paid_mobile["total"] + paid_power["total"]
    assert view["accounts"]["GOLD"] == 50_000 * TIYN - spent, view
    assert view["in_flight"] == {"payments": 0, "held": 0}
    assert view["phone"].endswith("76")
    assert PHONE not in json.dumps(view)
    red_view = view["red"]
    assert red_view["limit"] == 300_000 * TIYN
    assert red_view["available"] == 260_000 * TIYN
    assert red_view["outstanding"] == 40_000 * TIYN
    assert red_view["last_closed_business_date"] == "2025-10-22"
    [bill] = red_view["open_bills"]
    assert (bill["statement_date"], bill["status"]) == ("2025-10-22", "OPEN"), bill
    assert (bill["amount"], bill["owed"]) == (10_000 * TIYN, 10_000 * TIYN)
    assert bill["due_at"].startswith("2025-11-24T") or bill["due_on"] == "2025-11-24", bill
    assert red_view["penalties"] == []

    bills = cli.json("billing", "bills", CUSTOMER)
    assert [b["bill_id"] for b in bills["bills"]] == [bill["bill_id"]]
    bonus = cli.json("bonus", "history", CUSTOMER) if view["bonus"]["balance"] else None
    if bonus is not None:
        assert bonus["balance"] == view["bonus"]["balance"]
    shown = cli.run("customer", "show", CUSTOMER).stdout
    assert "Kaspi Red" in shown, shown
    assert "open bills (1)" in shown, shown
