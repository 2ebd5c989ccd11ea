"""The platform runner's pure parts: compose ports, arguments, the simulated gateways, the shared clock."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from shared.clock import ALMATY, OffsetFileClock, SystemClock, clock_from_file, write_clock_offset
from shared.contracts.envelope import new_envelope
from shared.contracts.payments import OtpRequested
from shared.contracts.samples import sample
from shared.ops import platform
from shared.ops.demo import CUSTOMERS, describe

pytestmark = pytest.mark.unit


def test_make_run_on_a_docker_host_reaches_the_ports_compose_publishes() -> None:
    compose = yaml.safe_load(platform.COMPOSE_FILE.read_text(encoding="utf-8"))["services"]
    for name in platform.COMPOSE_INFRA:
        published = {int(p.split(":")[-2]) for p in compose[name].get("ports", [])}
        assert platform.COMPOSE_PORTS[name] in published, name
        assert "healthcheck" in compose[name], name


def test_arguments() -> None:
    args = platform._parse(["--once", "--no-demo", "--database", "x_1", "--run-dir", "/tmp/r"])
    assert (args.once, args.no_demo, args.database, args.run_dir) == (True, True, "x_1", Path("/tmp/r"))
    assert platform._parse([]).database == "aqsha_run"


async def test_a_database_name_that_is_not_an_identifier_is_refused() -> None:
    with pytest.raises(ValueError, match="unsafe database name"):
        await platform.recreate_database("postgresql://x@127.0.0.1:1/postgres", 'run"; DROP')


def test_with_database_keeps_credentials_and_options() -> None:
    dsn = "postgresql://u:p@h:5/postgres?sslmode=require"
    assert platform.with_database(dsn, "aqsha_run") == "postgresql://u:p@h:5/aqsha_run?sslmode=require"


def test_gateways_record_webhooks_once_per_idempotency_key() -> None:
    gateways = platform.Gateways().start()
    try:
        for _ in range(2):  # notify repeats a send after a crash with the same key
            body = json.dumps(
                {"to": "+77011234567", "text": "123456 is your code", "event_type": "OtpRequested"}
            )
            request = urllib.request.Request(
                f"{gateways.base_url}/sms", data=body.encode(), headers={"Idempotency-Key": "e1:sms"}
            )
            with urllib.request.urlopen(request, timeout=5) as answer:
                assert answer.status == 200
        assert [m["text"] for m in gateways.sms_to("+77011234567")] == ["123456 is your code"]
        assert gateways.attempts == {("/sms", "e1:sms"): 2}
        assert gateways.push == []
        assert gateways.env()["AQSHA_SMS_WEBHOOK_URL"].endswith("/sms")
    finally:
        gateways.stop()


def test_the_offset_clock_follows_the_file_and_keeps_running(tmp_path: Path) -> None:
    path = tmp_path / "clock"
    clock = OffsetFileClock(path)
    assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=5)  # no file: no offset
    target = datetime(2025, 11, 24, 19, 59, tzinfo=ALMATY)
    write_clock_offset(path, target)
    first = clock.now()
    assert abs(first - target) < timedelta(seconds=5)
    assert clock.now() >= first  # time still flows
    write_clock_offset(path, datetime(2025, 1, 1, tzinfo=UTC))  # backwards is allowed
    assert clock.now().year == 2025
    assert clock.now().month == 1
    assert isinstance(clock_from_file(None), SystemClock)
    assert isinstance(clock_from_file(path), OffsetFileClock)


def test_the_feed_never_prints_a_one_time_code() -> None:
    otp = sample(OtpRequested)
    line = describe(new_envelope(otp, producer="t", occurred_at=datetime.now(UTC)), {})
    assert otp.code not in line
    assert otp.phone not in line
    assert "******" in line


def test_demo_customers_cover_the_three_languages() -> None:
    assert {c.locale.value for c in CUSTOMERS} == {"ru", "kk", "en"}
    assert len({c.id for c in CUSTOMERS}) == len(CUSTOMERS)
