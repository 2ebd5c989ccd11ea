"""The platform runner's pure parts: compose ports, arguments, the simulated gateways, the shared clock."""

from __future__ import annotations

import json
import os
import urllib.request
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import yaml

from shared.clock import ALMATY, OffsetFileClock, SystemClock, clock_from_file, write_clock_offset
from shared.contracts.billing import RedAccountOpened, RunBusinessDay
from shared.contracts.common import AccountKind, Channel, Funding
from shared.contracts.customers import CustomerRegistered
from shared.contracts.envelope import decode, new_envelope
from shared.contracts.payments import ConfirmPayment, OtpRequested, PayRedBill, PayService, TopUp
from shared.contracts.samples import SAMPLE_OTP_CODE, sample
from shared.ops import platform
from shared.ops.demo import AIGERIM, CUSTOMERS, Demo, describe, platform_keyring
from shared.topics import topic_by_name
from shared.trust import Untrusted, check_permitted
from tests.support.trust import registry

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
    assert otp.sealed_code not in line
    assert SAMPLE_OTP_CODE not in line
    assert otp.phone not in line
    assert "******" in line


def test_demo_customers_cover_the_three_languages() -> None:
    assert {c.locale.value for c in CUSTOMERS} == {"ru", "kk", "en"}
    assert len({c.id for c in CUSTOMERS}) == len(CUSTOMERS)


class _Producer:
    """Records what the demo would produce."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes, list[tuple[str, bytes]]]] = []

    async def send_and_wait(self, topic: str, value: bytes, *, key: bytes, headers: Any) -> None:
        self.sent.append((topic, key, value, headers))


async def test_the_demo_signs_each_record_as_the_outside_system_that_sends_it(tmp_path: Path) -> None:
    endpoints = platform.Endpoints("127.0.0.1:1", "postgresql://x@127.0.0.1:1/postgres", "redis://x:1", {})
    plat = platform.Platform(endpoints, run_dir=tmp_path, topic_suffix=".t1")
    plat.secrets = {k: os.environ[k] for k in ("AQSHA_TRUST_KEYS_DIR", "AQSHA_TRUST_REGISTRY_FILE")}
    demo = Demo(plat, say=lambda _: None)
    demo.keyring = platform_keyring(plat)
    producer = _Producer()
    demo.producer = producer
    cid = AIGERIM.id
    cases = [
        (sample(CustomerRegistered), "onboarding"),
        (sample(RedAccountOpened), "red-origination"),
        (
            TopUp(
                request_id=uuid4(), customer_id=cid, channel=Channel.ATM, account=AccountKind.GOLD, amount=100
            ),
            "cash-network",
        ),
        (
            PayService(
                request_id=uuid4(),
                customer_id=cid,
                category=sample(PayService).category,
                provider="p",
                provider_account="1",
                amount=100,
            ),
            "app-gateway",
        ),
        (
            PayRedBill(
                request_id=uuid4(),
                customer_id=cid,
                channel=Channel.TERMINAL,
                amount=100,
                funding=Funding.CASH,
            ),
            "cash-network",
        ),
        (PayRedBill(request_id=uuid4(), customer_id=cid, amount=100, funding=Funding.GOLD), "app-gateway"),
        (
            ConfirmPayment(request_id=uuid4(), customer_id=cid, payment_id=uuid4(), code="123456"),
            "app-gateway",
        ),
    ]
    for payload, _ in cases:
        await demo.publish(payload)
    await demo.publish(
        RunBusinessDay(business_date=date(2025, 10, 21), requested_by="demo"), key="2025-10-21"
    )
    expected = [principal for _, principal in cases] + ["ops"]
    assert len(producer.sent) == len(expected)
    trusted = registry()
    for (topic, key, value, headers), principal in zip(producer.sent, expected, strict=True):
        assert topic.endswith(".t1")
        origin = trusted.verify(topic, key, value, headers)
        assert origin.principal == principal, (topic, principal)
        envelope = decode(value)
        assert envelope.producer == principal
        check_permitted(topic_by_name(topic.removesuffix(".t1")), origin, envelope, key)

    # A command no outside system may send (cash top-up asserted by the app) fails before producing.
    with pytest.raises(Untrusted, match="not_permitted"):
        await demo.publish(
            TopUp(
                request_id=uuid4(), customer_id=cid, channel=Channel.APP, account=AccountKind.GOLD, amount=1
            )
        )
    assert len(producer.sent) == len(expected)
