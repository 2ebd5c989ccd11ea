"""The ``aqsha`` operator CLI against a real broker (Tansu), PostgreSQL and Redis.

Only one test starts a service (payments, one consumer-group join); the others read and write
topics without joining a group.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaProducer

from services.billing.service import BillingService
from services.notify.channels import InAppInbox
from services.notify.service import NotifyService
from services.notify.settings import NotifySettings
from services.payments.app import PaymentsRuntime
from services.payments.settings import PaymentsSettings
from shared.calendar import load_kz_calendar
from shared.clock import SystemClock
from shared.contracts.billing import RedAccountOpened, RunBusinessDay
from shared.contracts.customers import CustomerRegistered
from shared.contracts.envelope import decode, decode_as, encode, envelope_headers, new_envelope
from shared.contracts.payments import OtpRequested, OtpRequestedV1, PaymentCompleted, PayService
from shared.contracts.samples import SAMPLE_OTP_CODE, sample
from shared.db import create_pool
from shared.kafka import DLQ_ERROR, DLQ_GROUP, DLQ_REASON, DLQ_TOPIC
from shared.money import fmt_tiyn
from shared.ops.kafka_tools import REDRIVE_GROUP, REDRIVEN_FROM
from shared.settings import Settings
from shared.topics import CUSTOMERS_EVENTS, TOPICS, dlq_name, resolve
from shared.trust import HEADER_KEY_ID
from tests.integration.ops.conftest import ainvoke, cli_env, invoke
from tests.support.harness import until
from tests.support.kafka import create_topics, read_records
from tests.support.trust import keyring, registry, signed

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
COMMANDS = "aqsha.payments.commands"


def _headers(record: Any) -> dict[str, str]:
    return {k: v.decode() for k, v in record.headers}


def _signer_of(record: Any) -> str:
    """The principal whose signature ``record`` carries; raises if it does not verify where it is."""
    return registry().verify(record.topic, record.key, record.value or b"", record.headers).principal


async def _produce(
    settings: Settings, topic: str, value: bytes, key: bytes | None, headers: dict[str, str] | None = None
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            resolve(topic, settings.kafka.topic_suffix),
            value,
            key=key,
            headers=[(k, v.encode()) for k, v in (headers or {}).items()],
        )
    finally:
        await producer.stop()


def _dead_letter_headers(record: Any, reason: str, group: str = "aqsha-payments") -> dict[str, str]:
    """The headers ``shared.kafka.dead_letter`` adds to a record it dead-letters."""
    return {
        **_headers(record),
        DLQ_REASON: reason,
        DLQ_ERROR: "RuntimeError('database went away')",
        DLQ_TOPIC: record.topic,
        "aqsha-dlq-original-partition": str(record.partition),
        "aqsha-dlq-original-offset": str(record.offset),
        DLQ_GROUP: group,
        "aqsha-dlq-failed-at": datetime.now(UTC).isoformat(),
        "aqsha-dlq-attempts": "3",
    }


# ------------------------------------------------------------------------------------------- topics
async def test_topics_list_apply_and_console_script(settings: Settings) -> None:
    before = json.loads((await ainvoke(settings, "topics", "list", "--json")).stdout)
    assert len(before) == 2 * len(TOPICS) == 20
    assert not any(t["exists"] for t in before)
    human = await ainvoke(settings, "topics", "list")
    assert human.exit_code == 0
    assert "MISSING" in human.stdout

    applied = await ainvoke(settings, "topics", "apply")
    assert applied.exit_code == 0, applied.output
    assert "created 20 topic(s)" in applied.stdout
    again = await ainvoke(settings, "topics", "apply", "--json")
    assert json.loads(again.stdout)["created"] == []

    # The real console script, as an operator runs it.
    env = {**os.environ, **cli_env(settings)}
    proc = await asyncio.to_thread(
        subprocess.run,
        [str(ROOT / ".venv" / "bin" / "aqsha"), "topics", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    after = {t["registry_name"]: t for t in json.loads(proc.stdout)}
    suffix = settings.kafka.topic_suffix
    assert after["aqsha.payments.otp"] == {
        **after["aqsha.payments.otp"],
        "name": f"aqsha.payments.otp{suffix}",
        "partitions": 6,
        "partitions_on_broker": 6,
        "retention": "10 min",
        "exists": True,
    }
    assert after["aqsha.billing.commands"]["key"] == "business_date"
    assert after["aqsha.billing.days"]["key"] == "business_date"
    assert after["aqsha.billing.days"]["producers"] == ["billing"]
    assert after["aqsha.payments.events.dlq"]["exists"]
    assert after["aqsha.payments.events.dlq"]["dlq"]
    assert after["aqsha.customers.events"]["consumers"] == list(CUSTOMERS_EVENTS.consumers)

    # A usage error through the console script: one line on stderr, exit code 2.
    bad = await asyncio.to_thread(
        subprocess.run,
        [str(ROOT / ".venv" / "bin" / "aqsha"), "send", "-", "--as", "app-gateway"],
        input='{"type": "NoSuchThing", "payload": {}}',
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == "aqsha: error: unknown contract type 'NoSuchThing'"


# --------------------------------------------------------------------------------------------- send
async def test_send_validates_then_produces_with_key_and_headers(settings: Settings, tmp_path: Path) -> None:
    await create_topics(settings.kafka, COMMANDS, "aqsha.billing.commands", "aqsha.red.accounts")
    customer, request = uuid4(), uuid4()
    pay = {
        "request_id": str(request),
        "customer_id": str(customer),
        "category": "electricity",
        "provider": "almaty-energo",
        "provider_account": "1234567890",
        "amount": 1_500_050,
    }

    rejected = {
        "unknown contract type 'PaySomething'": {"type": "PaySomething", "payload": pay},
        "PaymentCompleted is an event, not a command": {"type": "PaymentCompleted", "payload": {}},
        "invalid PayService payload: amount": {"type": "PayService", "payload": {**pay, "amount": 15000.5}},
        "invalid PayService payload: customer_id": {
            "type": "PayService",
            "data": {**pay, "customer_id": "x"},
        },
        "input is not JSON": "{not json",
    }
    topup = {
        "type": "TopUp",
        "payload": {**{k: pay[k] for k in ("request_id", "customer_id", "amount")}, "account": "GOLD"},
    }
    rejected["refused: app-gateway may not write TopUp (only: cash-network)"] = topup
    rejected["channel TERMINAL commands come only from cash-network"] = {
        "type": "PayService",
        "payload": {**pay, "channel": "TERMINAL"},
    }
    for message, doc in rejected.items():
        result = await ainvoke(
            settings,
            "send",
            "-",
            "--as",
            "app-gateway",
            input=doc if isinstance(doc, str) else json.dumps(doc),
        )
        assert result.exit_code == 2, (message, result.output)
        assert message in result.stderr
        assert result.stdout == ""

    # Short form with "data", from stdin, signed as the app gateway (AQSHA_TRUST_KEYS_DIR + --as).
    sent = await ainvoke(
        settings,
        "send",
        "-",
        "--json",
        "--as",
        "app-gateway",
        input=json.dumps({"type": "PayService", "data": pay}),
    )
    assert sent.exit_code == 0, sent.output
    receipt = json.loads(sent.stdout)
    assert receipt["key"] == str(customer)
    assert receipt["type"] == "PayService"

    # A full envelope from a file is sent as it is (same event id), by the producer it names.
    env = new_envelope(sample(RedAccountOpened), producer="red-origination", occurred_at=datetime.now(UTC))
    path = tmp_path / "opened.json"
    path.write_text(json.dumps(json.loads(encode(env))))
    as_red = ("--as", "red-origination")
    assert (await ainvoke(settings, "send", str(path), *as_red)).exit_code == 2  # an event: needs --force
    impostor = await ainvoke(settings, "send", str(path), "--force", "--as", "onboarding")
    assert impostor.exit_code == 2
    assert "onboarding may not write RedAccountOpened" in impostor.stderr
    forced = await ainvoke(settings, "send", str(path), "--force", *as_red)
    assert forced.exit_code == 0, forced.output
    assert str(env.event_id) in forced.stdout

    # RunBusinessDay is keyed by the business date (the registry says so), not a customer; the key
    # file names the principal (ops.pem signs as ops).
    ops_key = keyring().signer("ops")
    day = await ainvoke(
        settings,
        "send",
        "-",
        "--key",
        str(Path(os.environ["AQSHA_TRUST_KEYS_DIR"]) / "ops.pem"),
        input=json.dumps(
            {"type": "RunBusinessDay", "payload": {"business_date": "2026-03-31", "requested_by": "alice"}}
        ),
    )
    assert day.exit_code == 0, day.output

    records = await read_records(
        settings.kafka.bootstrap, resolve(COMMANDS, settings.kafka.topic_suffix), until=1
    )
    assert len(records) == 1  # nothing from the rejected inputs
    (record,) = records
    envelope = decode_as(record.value or b"", PayService)
    assert record.key == str(customer).encode()
    headers = _headers(record)
    assert {k: v for k, v in headers.items() if k in envelope_headers(envelope)} == envelope_headers(envelope)
    assert headers[HEADER_KEY_ID] == keyring().signer("app-gateway").key_id
    assert _signer_of(record) == "app-gateway"  # consumers will accept it
    assert envelope.type == "PayService"
    assert envelope.producer == "app-gateway"
    assert envelope.correlation_id == request  # commands correlate by their request_id
    assert envelope.payload.amount == 1_500_050
    assert envelope.payload.customer_id == customer
    assert str(envelope.event_id) == receipt["event_id"]

    red = await read_records(
        settings.kafka.bootstrap, resolve("aqsha.red.accounts", settings.kafka.topic_suffix), until=1
    )
    assert [decode(r.value or b"").event_id for r in red] == [env.event_id]
    assert [_signer_of(r) for r in red] == ["red-origination"]
    (billing,) = await read_records(
        settings.kafka.bootstrap, resolve("aqsha.billing.commands", settings.kafka.topic_suffix), until=1
    )
    assert billing.key == b"2026-03-31"
    assert decode_as(billing.value or b"", RunBusinessDay).payload.requested_by == "alice"
    assert decode(billing.value or b"").producer == "ops"
    assert _headers(billing)[HEADER_KEY_ID] == ops_key.key_id


# --------------------------------------------------------------------------------------------- tail
async def test_tail_filters_and_formats(settings: Settings) -> None:
    await create_topics(settings.kafka, "aqsha.payments.events")
    alice, bob = uuid4(), uuid4()
    completed = sample(PaymentCompleted)
    for who in (alice, bob, alice):
        payload = completed.model_copy(update={"customer_id": who, "payment_id": uuid4()})
        env = new_envelope(payload, producer="payments", occurred_at=datetime.now(UTC))
        await _produce(
            settings, "aqsha.payments.events", encode(env), str(who).encode(), envelope_headers(env)
        )
    await _produce(settings, "aqsha.payments.events", b"not json", str(bob).encode())

    everything = await ainvoke(
        settings, "tail", "aqsha.payments.events", "--from-beginning", "--no-follow", "--json"
    )
    assert everything.exit_code == 0, everything.output
    lines = [json.loads(line) for line in everything.stdout.splitlines()]
    assert len(lines) == 4
    assert sorted(x["type"] or "-" for x in lines) == [
        "-",
        "PaymentCompleted",
        "PaymentCompleted",
        "PaymentCompleted",
    ]

    mine = await ainvoke(
        settings, "tail", "aqsha.payments.events", "--from-beginning", "--no-follow", "--customer", str(alice)
    )
    assert mine.exit_code == 0
    assert mine.stdout.count("PaymentCompleted v1") == 2
    assert str(bob) not in mine.stdout
    assert f'"amount": "{fmt_tiyn(2_000_000)}"' in mine.stdout
    assert f'"total": "{fmt_tiyn(2_005_000)}"' in mine.stdout

    one = await ainvoke(
        settings,
        "tail",
        "aqsha.payments.events",
        "--from-beginning",
        "--no-follow",
        "--type",
        "PaymentCompleted",
        "--limit",
        "1",
        "--json",
    )
    assert len(one.stdout.splitlines()) == 1

    bad = await ainvoke(
        settings, "tail", "aqsha.payments.events", "--from-beginning", "--no-follow", "--customer", str(bob)
    )
    assert "undecodable: invalid_json" in bad.stdout

    # Without --from-beginning, --no-follow starts and stops at the end: nothing old is printed.
    fresh = await ainvoke(settings, "tail", "aqsha.payments.events", "--no-follow", "--json")
    assert fresh.exit_code == 0
    assert fresh.stdout == ""

    unknown = await ainvoke(settings, "tail", "aqsha.nothing.here", "--no-follow")
    assert unknown.exit_code == 2
    assert "unknown topic" in unknown.stderr


async def test_tail_and_dlq_show_mask_codes_and_personal_data(settings: Settings) -> None:
    otp_topic = "aqsha.payments.otp"
    await create_topics(settings.kafka, otp_topic)
    customer = sample(CustomerRegistered)
    v1, v2 = sample(OtpRequestedV1), sample(OtpRequested)
    secrets = [v1.code, v2.sealed_code, SAMPLE_OTP_CODE, customer.phone, customer.iin, customer.full_name]
    for payload in (v1, v2):
        env = new_envelope(payload, producer="payments", occurred_at=datetime.now(UTC))
        await _produce(settings, otp_topic, encode(env), env.key.encode(), envelope_headers(env))
    # A refused v1 as the kernel dead-letters it (byte for byte), and a registration's invalid copy.
    refused = new_envelope(v1, producer="payments", occurred_at=datetime.now(UTC))
    dlq_headers = {**envelope_headers(refused), DLQ_REASON: "insecure_contract", DLQ_TOPIC: otp_topic}
    await _produce(settings, dlq_name(otp_topic), encode(refused), refused.key.encode(), dlq_headers)
    broken = json.loads(encode(new_envelope(customer, producer="onboarding", occurred_at=datetime.now(UTC))))
    broken["payload"]["iin"] = "12345"  # invalid: not decodable, but its contract is known
    await _produce(settings, dlq_name(otp_topic), json.dumps(broken).encode(), refused.key.encode(), {})

    outputs = []
    for args in (
        ("tail", otp_topic, "--from-beginning", "--no-follow"),
        ("tail", otp_topic, "--from-beginning", "--no-follow", "--json"),
        ("tail", dlq_name(otp_topic), "--from-beginning", "--no-follow", "--json"),
        ("dlq", "list", otp_topic, "--json"),
        ("dlq", "show", otp_topic, "--offset", "0"),
        ("dlq", "show", otp_topic, "--offset", "0", "--json"),
        ("dlq", "show", otp_topic, "--offset", "1"),
    ):
        result = await ainvoke(settings, *args)
        assert result.exit_code == 0, (args, result.output)
        outputs.append(result.stdout)
        assert [s for s in secrets if s in result.stdout] == [], args
    assert '"phone": "+7 *** *** ** 67"' in outputs[0]
    assert '"sealed_code": "***"' in outputs[0]
    assert "insecure_contract" in outputs[4]
    assert '"iin": "***"' in outputs[6]


# ---------------------------------------------------------------------------------------------- dlq
async def test_dlq_redrive_remembers_what_it_sent(settings: Settings) -> None:
    """Redrive --all twice sends once; filters; original key, value and headers come back."""
    topic = "aqsha.bonus.events"  # no service runs here, so nothing is dead-lettered again
    await create_topics(settings.kafka, topic)
    suffix = settings.kafka.topic_suffix
    customer = uuid4()
    key = str(customer).encode()
    for i in range(3):
        value = f"value-{i}".encode()
        signature = signed(resolve(topic, suffix), key, value, "bonus")
        await _produce(settings, topic, value, key, {"aqsha-type": "BonusAccrued", "n": str(i), **signature})
    originals = await read_records(settings.kafka.bootstrap, resolve(topic, suffix), until=3)
    for record, reason in zip(originals, ("handler_error", "invalid_json", "handler_error"), strict=True):
        await _produce(
            settings,
            dlq_name(topic),
            record.value or b"",
            record.key,
            _dead_letter_headers(record, reason, group="aqsha-bonus"),
        )

    listed = await ainvoke(settings, "dlq", "list", dlq_name(topic), "--json")
    letters = json.loads(listed.stdout)
    assert [(x["reason"], x["redriven"], x["group"]) for x in letters] == [
        ("handler_error", False, "aqsha-bonus"),
        ("invalid_json", False, "aqsha-bonus"),
        ("handler_error", False, "aqsha-bonus"),
    ]
    assert letters[0]["original_topic"] == resolve(topic, suffix)
    assert letters[0]["attempts"] == "3"
    overview = await ainvoke(settings, "dlq", "list")
    assert f"{resolve(dlq_name(topic), suffix)}" in overview.stdout

    nothing = await ainvoke(settings, "dlq", "redrive", topic)
    assert nothing.exit_code == 2
    assert "--all" in nothing.stderr

    first = await ainvoke(settings, "dlq", "redrive", topic, "--offset", str(letters[0]["offset"]))
    assert first.exit_code == 0, first.output
    assert "redrove 1 dead letter(s)" in first.stdout
    dry = await ainvoke(settings, "dlq", "redrive", topic, "--all", "--dry-run")
    assert "would redrive 2" in dry.stdout
    rest = await ainvoke(settings, "dlq", "redrive", topic, "--all")
    assert "redrove 2 dead letter(s)" in rest.stdout
    again = await ainvoke(settings, "dlq", "redrive", topic, "--all")
    assert again.exit_code == 0
    assert "nothing to redrive" in again.stdout

    records = await read_records(settings.kafka.bootstrap, resolve(topic, suffix), until=6)
    redriven = records[3:]
    assert len(records) == 6
    assert [r.value for r in redriven] == [b"value-0", b"value-1", b"value-2"]
    for r, original in zip(redriven, originals, strict=True):
        h = _headers(r)
        assert r.key == key
        assert r.partition == original.partition
        assert not any(k.startswith("aqsha-dlq-") for k in h)
        assert h["n"] == _headers(original)["n"]
        assert h["aqsha-type"] == "BonusAccrued"
        assert h[REDRIVEN_FROM].startswith(resolve(dlq_name(topic), suffix))
        assert h[HEADER_KEY_ID] == _headers(original)[HEADER_KEY_ID]
        assert _signer_of(r) == "bonus"  # the producer's signature came back with it and verifies

    state = json.loads((await ainvoke(settings, "dlq", "list", topic, "--json")).stdout)
    assert all(x["redriven"] for x in state)
    lag = json.loads((await ainvoke(settings, "lag", "--group", REDRIVE_GROUP, "--json")).stdout)
    assert {(r["topic"], r["lag"]) for r in lag["partitions"] if r["end"]} == {
        (resolve(dlq_name(topic), suffix), 0)
    }

    shown = await ainvoke(
        settings,
        "dlq",
        "show",
        topic,
        "--offset",
        str(letters[1]["offset"]),
        "--partition",
        str(letters[1]["partition"]),
    )
    assert "reason:    invalid_json" in shown.stdout
    assert "value-1" in shown.stdout


# ------------------------------------------------------ payments: send, lag, history, redrive safety
async def test_payments_flow_lag_history_and_safe_redrive(settings: Settings) -> None:
    await create_topics(settings.kafka)
    suffix = settings.kafka.topic_suffix
    customer = uuid4()
    registered = {
        "type": "CustomerRegistered",
        "payload": {
            "customer_id": str(customer),
            "phone": "+77011234567",
            "iin": "900101300123",
            "full_name": "Aigerim Sultanova",
        },
    }
    first_topup: dict[str, Any] = {
        "type": "TopUp",
        "payload": {
            "request_id": str(uuid4()),
            "customer_id": str(customer),
            "channel": "TERMINAL",
            "account": "GOLD",
            "amount": 50_000,
        },
    }
    onboarding = await ainvoke(
        settings, "send", "-", "--force", "--as", "onboarding", input=json.dumps(registered)
    )
    assert onboarding.exit_code == 0, onboarding.output

    async def payments_lag() -> dict[str, int]:
        result = await ainvoke(settings, "lag", "--group", "aqsha-payments", "--json")
        assert result.exit_code == 0, result.output
        totals: dict[str, int] = {}
        for row in json.loads(result.stdout)["partitions"]:
            totals[row["topic"]] = totals.get(row["topic"], 0) + row["lag"]
        return totals

    before = await payments_lag()
    assert before[resolve("aqsha.customers.events", suffix)] == 1
    assert before[resolve(COMMANDS, suffix)] == 0
    human = await ainvoke(settings, "lag", "--group", "aqsha-payments")
    assert "aqsha-payments: total lag 1" in human.stdout

    psettings = PaymentsSettings(**{k: getattr(settings, k) for k in type(settings).model_fields})
    runtime = PaymentsRuntime(psettings)
    await runtime.start()
    try:
        pool = runtime.pool

        async def gold() -> int:
            value = await pool.fetchval(
                "SELECT balance FROM accounts WHERE customer_id = $1 AND kind = 'GOLD'", customer
            )
            return int(value or 0)

        await until(_zero(payments_lag), 60, interval_s=0.2)  # the registration is consumed and committed
        assert await pool.fetchval("SELECT count(*) FROM accounts WHERE customer_id = $1", customer) == 2
        sent = await ainvoke(settings, "send", "-", "--as", "cash-network", input=json.dumps(first_topup))
        assert sent.exit_code == 0, sent.output
        await until(lambda: _truthy(gold(), 50_000), 60)
        await until(_zero(payments_lag), 60, interval_s=0.2)

        history = await ainvoke(settings, "payments", "history", str(customer))
        assert history.exit_code == 0, history.output
        assert "TOP_UP" in history.stdout
        assert "COMPLETED" in history.stdout
        assert fmt_tiyn(50_000) in history.stdout
        rows = json.loads((await ainvoke(settings, "payments", "history", str(customer), "--json")).stdout)
        assert [(r["kind"], r["status"], r["amount"]) for r in rows] == [("TOP_UP", "COMPLETED", 50_000)]
        assert (await ainvoke(settings, "payments", "history", "not-a-uuid")).exit_code == 2

        # Dead letters: A = the processed top-up (as if its handler failed after committing), B = a
        # really malformed record payments dead-letters itself, C = a top-up never processed.
        commands = await read_records(settings.kafka.bootstrap, resolve(COMMANDS, suffix), until=1)
        processed = commands[0]
        await _produce(
            settings,
            dlq_name(COMMANDS),
            processed.value or b"",
            processed.key,
            _dead_letter_headers(processed, "handler_error"),
        )
        broken, ckey = b'{"broken":', str(customer).encode()
        # Authentic but malformed: signed, so payments gets as far as decoding it (invalid_json).
        await _produce(
            settings, COMMANDS, broken, ckey, signed(resolve(COMMANDS, suffix), ckey, broken, "cash-network")
        )
        second = {
            "type": "TopUp",
            "payload": {**first_topup["payload"], "request_id": str(uuid4()), "amount": 70_000},
        }
        dry = await ainvoke(
            settings, "send", "-", "--dry-run", "--json", "--as", "cash-network", input=json.dumps(second)
        )
        preview = json.loads(dry.stdout)
        env = decode(json.dumps(preview["envelope"]))
        await _produce(
            settings,
            dlq_name(COMMANDS),
            encode(env),
            env.key.encode(),
            {
                **preview["headers"],  # the envelope headers and the cash network's signature
                **{
                    k: v
                    for k, v in _dead_letter_headers(processed, "handler_error").items()
                    if k.startswith("aqsha-dlq-")
                },
            },
        )
        await read_records(settings.kafka.bootstrap, resolve(dlq_name(COMMANDS), suffix), until=3)

        letters = json.loads((await ainvoke(settings, "dlq", "list", COMMANDS, "--json")).stdout)
        assert sorted(x["reason"] for x in letters) == ["handler_error", "handler_error", "invalid_json"]
        real = next(x for x in letters if x["reason"] == "invalid_json")
        assert real["group"] == "aqsha-payments"
        assert real["original_topic"] == resolve(COMMANDS, suffix)
        a = next(
            x for x in letters if x["reason"] == "handler_error" and x["value"] == processed.value.decode()
        )

        shown = await ainvoke(
            settings,
            "dlq",
            "show",
            COMMANDS,
            "--offset",
            str(a["offset"]),
            "--partition",
            str(a["partition"]),
        )
        assert "TopUp" in shown.stdout
        assert f'"amount": "{fmt_tiyn(50_000)}"' in shown.stdout

        # Redriving the already processed top-up has no second effect (inbox + idempotency).
        ledger = await pool.fetchval("SELECT count(*) FROM ledger_entries")
        out = await ainvoke(
            settings,
            "dlq",
            "redrive",
            COMMANDS,
            "--offset",
            str(a["offset"]),
            "--partition",
            str(a["partition"]),
        )
        assert "redrove 1 dead letter(s)" in out.stdout, out.output
        await until(_zero(payments_lag), 60, interval_s=0.2)
        assert await gold() == 50_000
        assert await pool.fetchval("SELECT count(*) FROM ledger_entries") == ledger
        assert await pool.fetchval("SELECT count(*) FROM payments WHERE customer_id = $1", customer) == 1

        # Redriving the never-processed one (by reason; A is remembered and skipped) takes effect.
        out = await ainvoke(settings, "dlq", "redrive", COMMANDS, "--reason", "handler_error")
        assert "redrove 1 dead letter(s)" in out.stdout, out.output
        await until(lambda: _truthy(gold(), 120_000), 60)
        await until(_zero(payments_lag), 60, interval_s=0.2)
        assert await pool.fetchval("SELECT count(*) FROM payments WHERE customer_id = $1", customer) == 2
    finally:
        await runtime.stop()


async def _truthy(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


def _zero(lag: Any) -> Any:
    async def check() -> bool:
        return all(v == 0 for v in (await lag()).values())

    return check


# ------------------------------------------------------------------------------------------ billing
async def test_billing_run_day_via_kafka_and_direct(settings: Settings) -> None:
    await create_topics(settings.kafka, "aqsha.billing.commands")
    sent = await ainvoke(settings, "billing", "run-day", "2026-03-02", "--by", "alice")
    assert sent.exit_code == 0, sent.output
    assert "billing will close business day 2026-03-02" in sent.stdout
    (record,) = await read_records(
        settings.kafka.bootstrap, resolve("aqsha.billing.commands", settings.kafka.topic_suffix), until=1
    )
    envelope = decode_as(record.value or b"", RunBusinessDay)
    assert record.key == b"2026-03-02"
    assert _headers(record)["aqsha-type"] == "RunBusinessDay"
    assert envelope.producer == "ops"
    assert _signer_of(record) == "ops"
    assert envelope.payload.business_date == date(2026, 3, 2)
    assert envelope.payload.requested_by == "alice"

    assert (await ainvoke(settings, "billing", "run-day", "02.03.2026")).exit_code == 2

    # Seed one Red account through billing's own use case, then run the day in-process.
    pool = await create_pool(settings.db.dsn, "billing")
    try:
        service = BillingService(pool, calendar=load_kz_calendar(), clock=SystemClock())
        opened = RedAccountOpened(
            customer_id=uuid4(),
            limit=50_000_000,
            opened_on=date(2026, 3, 1),
            accepted_new_terms=True,
            loan_payment_day=None,
        )
        async with pool.acquire() as conn, conn.transaction():
            await service.handle(conn, new_envelope(opened, producer="test", occurred_at=datetime.now(UTC)))
        direct = await ainvoke(
            settings, "billing", "run-day", "2026-03-02", "--direct", "--by", "bob", "--json"
        )
        assert direct.exit_code == 0, direct.output
        report = json.loads(direct.stdout)
        assert report["business_date"] == "2026-03-02"
        assert report["accounts"] == 1
        runs = await pool.fetch(
            "SELECT business_date, accounts_processed, requested_by FROM business_day_runs"
        )
        assert [tuple(r) for r in runs] == [(date(2026, 3, 2), 1, "bob")]
        rerun = await ainvoke(settings, "billing", "run-day", "2026-03-02", "--direct")
        assert "0 account(s)" in rerun.stdout  # already closed through the date
    finally:
        await pool.close()


# ------------------------------------------------------------------------------------------- notify
async def test_notify_inbox_and_receipt(settings: Settings, tmp_path: Path) -> None:
    customer = uuid4()
    nsettings = NotifySettings.model_validate(
        {**settings.model_dump(), "service": "notify", "routes": {"PaymentCompleted": ["inbox"]}}
    )
    pool = await create_pool(settings.db.dsn, "notify")
    try:
        service = NotifyService(pool, nsettings, {"inbox": InAppInbox()}, SystemClock())
        payment = sample(PaymentCompleted).model_copy(update={"customer_id": customer})
        await service.handle(new_envelope(payment, producer="payments", occurred_at=datetime.now(UTC)))
    finally:
        await pool.close()
    number = payment.receipt.receipt_number

    inbox = await ainvoke(settings, "notify", "inbox", str(customer))
    assert inbox.exit_code == 0, inbox.output
    assert "1 message(s)" in inbox.stdout
    assert "PaymentCompleted" in inbox.stdout
    messages = json.loads((await ainvoke(settings, "notify", "inbox", str(customer), "--json")).stdout)
    assert len(messages) == 1
    assert messages[0]["event_type"] == "PaymentCompleted"
    assert messages[0]["title"]
    empty = await ainvoke(settings, "notify", "inbox", str(uuid4()))
    assert "inbox is empty" in empty.stdout

    target = tmp_path / "receipt.pdf"
    fetched = await ainvoke(settings, "receipt", number, "-o", str(target))
    assert fetched.exit_code == 0, fetched.output
    assert target.read_bytes().startswith(b"%PDF")
    assert f"wrote receipt {number}" in fetched.stdout
    missing = await ainvoke(settings, "receipt", "R-0000-999999", "-o", str(tmp_path / "x.pdf"))
    assert missing.exit_code == 1
    assert "no receipt numbered" in missing.stderr
    assert not (tmp_path / "x.pdf").exists()


def test_errors_are_one_line_when_the_broker_is_down(settings: Settings) -> None:
    down = settings.model_copy(
        update={"kafka": settings.kafka.model_copy(update={"bootstrap": "127.0.0.1:1"})}
    )
    result = invoke(down, "topics", "list")
    assert result.exit_code == 1
    assert result.stderr.startswith("aqsha: error: cannot reach Kafka at 127.0.0.1:1")
    assert len(result.stderr.strip().splitlines()) == 1
