"""The pure parts of the ``aqsha`` CLI: input validation, selection rules, rendering (no infrastructure)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest
from aiokafka import ConsumerRecord
from typer.testing import CliRunner

from shared.contracts.billing import RunBusinessDay
from shared.contracts.envelope import encode, envelope_headers, new_envelope
from shared.contracts.payments import PaymentCompleted
from shared.contracts.samples import sample
from shared.money import fmt_tiyn
from shared.ops.cli import app
from shared.ops.common import OpsError, base_topic, fmt_retention, key_field, table
from shared.ops.kafka_tools import (
    REDRIVEN_FROM,
    DeadLetter,
    DlqView,
    LagRow,
    _advance,
    group_topics,
    load_documents,
    matches,
    prepare,
    redrive_headers,
    render_item,
    render_lag,
    select_for_redrive,
    to_item,
)
from shared.ops.service_tools import (
    business_day_command,
    parse_date,
    parse_uuid,
    render_history,
    render_inbox,
)
from shared.topics import BILLING_COMMANDS, PAYMENTS_COMMANDS, PAYMENTS_OTP, TOPICS

pytestmark = pytest.mark.unit

CUSTOMER = UUID("0b8e5c1e-3f0a-4c55-9d1e-2a4f6b7c8d01")
REQUEST = UUID("a1000000-0000-4000-8000-000000000001")
PAY = {
    "request_id": str(REQUEST),
    "customer_id": str(CUSTOMER),
    "category": "electricity",
    "provider": "almaty-energo",
    "provider_account": "1234567890",
    "amount": 1_500_050,
}


def _code(exc: pytest.ExceptionInfo[OpsError]) -> int:
    return exc.value.code


# ---------------------------------------------------------------------------------------- send input
def test_short_form_is_wrapped_keyed_by_customer_and_correlated_by_request() -> None:
    for field in ("payload", "data"):
        out = prepare({"type": "PayService", field: PAY}, suffix=".t1")
        assert out.topic == "aqsha.payments.commands.t1"
        assert out.envelope.key == str(CUSTOMER)
        assert out.envelope.correlation_id == REQUEST
        assert out.envelope.producer == "ops-cli"
        assert out.headers == envelope_headers(out.envelope)
        assert out.headers["aqsha-type"] == "PayService"


def test_business_day_is_keyed_by_date_from_the_registry() -> None:
    out = prepare({"type": "RunBusinessDay", "payload": {"business_date": "2026-03-31"}})
    assert key_field(BILLING_COMMANDS) == "business_date"
    assert out.envelope.key == "2026-03-31"
    assert out.topic == "aqsha.billing.commands"
    cli = business_day_command(date(2026, 3, 31), "alice", ".s")
    assert cli.envelope.key == "2026-03-31"
    assert cli.topic == "aqsha.billing.commands.s"
    assert isinstance(cli.envelope.payload, RunBusinessDay)
    assert cli.envelope.payload.requested_by == "alice"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"payload": PAY}, 'missing "type"'),
        ({"type": "Nope", "payload": {}}, "unknown contract type 'Nope'"),
        ({"type": "PayService", "schema_version": 9, "payload": PAY}, "(known up to v1)"),
        ({"type": "PaymentCompleted", "payload": {}}, "PaymentCompleted is an event, not a command"),
        ({"type": "PayService", "payload": {**PAY, "amount": 15000.5}}, "invalid PayService payload: amount"),
        ({"type": "PayService", "payload": {**PAY, "amount": "1"}}, "invalid PayService payload: amount"),
        ({"type": "PayService", "payload": {**PAY, "extra": 1}}, "invalid PayService payload: extra"),
        ({"type": "PayService", "payload": PAY, "data": PAY}, 'either "payload" or "data"'),
        ({"type": "PayService", "payload": PAY, "bogus": 1}, "unexpected field(s) bogus"),
        ({"type": "PayService", "payload": [1]}, '"payload" must be a JSON object'),
        ({"type": "PayService", "payload": PAY, "correlation_id": "x"}, '"correlation_id" must be a UUID'),
    ],
)
def test_invalid_input_is_a_usage_error(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(OpsError) as exc:
        prepare(doc)
    assert _code(exc) == 2
    assert message in exc.value.message


def test_events_need_force_and_full_envelopes_keep_their_ids() -> None:
    env = new_envelope(sample(PaymentCompleted), producer="payments", occurred_at=datetime.now(UTC))
    doc = json.loads(encode(env))
    with pytest.raises(OpsError):
        prepare(doc)
    out = prepare(doc, force=True)
    assert out.envelope.event_id == env.event_id
    assert out.envelope.producer == "payments"
    assert out.topic == "aqsha.payments.events"

    doc["key"] = str(uuid4())
    with pytest.raises(OpsError) as exc:
        prepare(doc, force=True)
    assert "differs from payload customer_id" in exc.value.message
    doc["payload"]["amount"] = 1.5
    with pytest.raises(OpsError) as exc:
        prepare(doc, force=True)
    assert "invalid envelope: invalid_payload" in exc.value.message


def test_load_documents_accepts_object_array_and_lines() -> None:
    assert load_documents('{"a": 1}') == [{"a": 1}]
    assert load_documents('[{"a": 1}, {"b": 2}]') == [{"a": 1}, {"b": 2}]
    assert load_documents('{"a": 1}\n\n{"b": 2}\n') == [{"a": 1}, {"b": 2}]
    for bad, message in (("", "no input"), ("{x", "not JSON"), ("[1]", "expected a JSON object")):
        with pytest.raises(OpsError) as exc:
            load_documents(bad)
        assert _code(exc) == 2
        assert message in exc.value.message


# --------------------------------------------------------------------------------------------- tail
def _record(
    value: bytes,
    key: str | None,
    headers: dict[str, str] | None = None,
    offset: int = 0,
    partition: int = 0,
    topic: str = "aqsha.payments.events",
) -> ConsumerRecord[bytes, bytes]:
    hs = [(k, v.encode()) for k, v in (headers or {}).items()]
    return ConsumerRecord(
        topic,
        partition,
        offset,
        1_772_431_200_000,
        0,
        key.encode() if key else None,
        value,
        None,
        len(value),
        0,
        hs,
    )


def test_render_item_formats_money_and_survives_garbage() -> None:
    env = new_envelope(sample(PaymentCompleted), producer="payments", occurred_at=datetime.now(UTC))
    item = to_item(_record(encode(env), env.key, envelope_headers(env), offset=7, partition=3))
    text = render_item(item)
    assert text.startswith("2026-03-02T06:00:00.000Z  aqsha.payments.events[3]@7  PaymentCompleted v1")
    assert f'"amount": "{fmt_tiyn(2_000_000)}"' in text
    assert f'"fee": "{fmt_tiyn(5_000)}"' in text
    assert str(env.event_id) in text
    assert item.as_dict()["envelope"]["payload"]["amount"] == 2_000_000  # --json keeps tiyn

    bad = to_item(_record(b"\xff not json", "k", {"aqsha-dlq-reason": "invalid_json"}))
    rendered = render_item(bad)
    assert "undecodable: invalid_json" in rendered
    assert "dead letter: reason=invalid_json" in rendered


def test_tail_filters_by_customer_key_or_payload_and_type() -> None:
    env = new_envelope(sample(PaymentCompleted), producer="payments", occurred_at=datetime.now(UTC))
    item = to_item(_record(encode(env), "other-key"))
    assert matches(item, customer=str(CUSTOMER).upper())  # payload customer_id, case-insensitive
    assert matches(item, customer="other-key")
    assert not matches(item, customer=str(uuid4()))
    assert matches(item, types=["PaymentCompleted", "X"])
    assert not matches(item, types=["PaymentFailed"])


# ---------------------------------------------------------------------------------------------- dlq
def _letter(partition: int, offset: int, reason: str, redriven: bool = False) -> DeadLetter:
    headers = {
        "aqsha-type": "TopUp",
        "custom": "kept",
        "aqsha-dlq-reason": reason,
        "aqsha-dlq-original-topic": "aqsha.payments.commands",
        "aqsha-dlq-original-partition": str(partition),
        "aqsha-dlq-original-offset": "41",
    }
    rec = _record(b"v", "k", headers, offset=offset, partition=partition, topic="aqsha.payments.commands.dlq")
    return DeadLetter(to_item(rec), redriven)


def _view(*letters: DeadLetter, marks: dict[int, int] | None = None) -> DlqView:
    return DlqView("aqsha.payments.commands.dlq", "aqsha.payments.commands", list(letters), marks or {})


def test_redrive_needs_a_selection_and_skips_what_was_redriven() -> None:
    view = _view(
        _letter(0, 0, "handler_error", redriven=True),
        _letter(0, 1, "invalid_json"),
        _letter(1, 0, "handler_error"),
        marks={0: 1},
    )
    with pytest.raises(OpsError) as exc:
        select_for_redrive(view, all_=False, offset=None, partition=None, reasons=(), include_redriven=False)
    assert _code(exc) == 2

    def pick(**kw: Any) -> list[tuple[int, int]]:
        args: dict[str, Any] = {
            "all_": False,
            "offset": None,
            "partition": None,
            "reasons": (),
            "include_redriven": False,
            **kw,
        }
        return [(d.item.partition, d.item.offset) for d in select_for_redrive(view, **args)]

    assert pick(all_=True) == [(0, 1), (1, 0)]
    assert pick(all_=True, include_redriven=True) == [(0, 0), (0, 1), (1, 0)]
    assert pick(reasons=["handler_error"]) == [(1, 0)]
    assert pick(offset=0) == [(1, 0)]
    assert pick(offset=0, partition=0) == []
    assert pick(offset=0, partition=0, include_redriven=True) == [(0, 0)]


def test_watermark_advances_only_over_a_contiguous_run() -> None:
    view = _view(_letter(0, 0, "a"), _letter(0, 1, "b"), _letter(0, 2, "c"), _letter(1, 5, "d"), marks={1: 5})
    assert _advance(view, {(0, 0), (0, 2)}) == {0: 1}
    assert _advance(view, {(0, 1)}) == {}
    assert _advance(view, {(0, 0), (0, 1), (0, 2), (1, 5)}) == {0: 3, 1: 6}


def test_redrive_headers_drop_dead_letter_facts_and_say_where_from() -> None:
    now = datetime(2026, 3, 2, tzinfo=UTC)
    headers = dict(redrive_headers(_letter(2, 9, "handler_error"), now))
    assert headers == {
        "aqsha-type": b"TopUp",
        "custom": b"kept",
        REDRIVEN_FROM: b"aqsha.payments.commands.dlq[2]@9",
        "aqsha-redriven-at": now.isoformat().encode(),
    }


# ---------------------------------------------------------------------------------------------- lag
def test_lag_rows_and_rendering() -> None:
    assert LagRow("g", "t", 0, None, 3, 10).lag == 7  # nothing committed: from the log start
    assert LagRow("g", "t", 0, 10, 0, 10).lag == 0
    rows = [LagRow("g", "t", 0, 4, 0, 10), LagRow("g", "t", 1, None, 0, 0)]
    text = render_lag(rows, ["missing.topic"])
    assert "g: total lag 6" in text
    assert "missing.topic" in text
    assert len([line for line in text.splitlines() if line.startswith("  t ")]) == 1
    everything = render_lag(rows, [], all_partitions=True)
    assert len([line for line in everything.splitlines() if line.startswith("  t ")]) == 2


def test_groups_read_the_topics_the_registry_says() -> None:
    plan = dict(group_topics({"payments": "aqsha-payments", "notify": "aqsha-notify"}))
    assert plan["aqsha-payments"] == [t.name for t in TOPICS if "payments" in t.consumers]
    assert "aqsha.payments.commands" in plan["aqsha-payments"]
    assert "aqsha.payments.commands" not in plan["aqsha-notify"]
    assert "aqsha.payments.otp" in plan["aqsha-notify"]
    assert all(t.endswith(".dlq") for t in plan["aqsha-ops-redrive"])


# --------------------------------------------------------------------------------------- formatting
def test_small_formatters() -> None:
    assert fmt_retention(-1) == "forever"
    assert fmt_retention(PAYMENTS_OTP.retention_ms) == "10 min"
    assert fmt_retention(7 * 86_400_000) == "7 d"
    assert fmt_retention(3_600_000) == "1 h"
    assert base_topic("aqsha.payments.commands.t1", ".t1") == PAYMENTS_COMMANDS
    assert base_topic("aqsha.payments.commands.t1.dlq", ".t1").name == "aqsha.payments.commands.dlq"
    assert base_topic("aqsha.payments.commands") == PAYMENTS_COMMANDS
    with pytest.raises(OpsError):
        base_topic("nope")
    assert table(["a", "n"], [["x", 1], ["yy", 10]]).splitlines() == ["a    n", "--  --", "x    1", "yy  10"]
    assert parse_date("2026-03-31") == date(2026, 3, 31)
    assert parse_uuid(str(CUSTOMER)) == CUSTOMER
    for bad in (lambda: parse_date("31.03.2026"), lambda: parse_uuid("x")):
        with pytest.raises(OpsError):
            bad()


def test_history_and_inbox_rendering() -> None:
    at = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)
    text = render_history(
        CUSTOMER,
        [
            {
                "payment_id": uuid4(),
                "kind": "SERVICE",
                "status": "COMPLETED",
                "amount": 2_000_000,
                "fee": 5_000,
                "funding": "GOLD",
                "provider": "almaty-energo",
                "receipt_number": "R-1",
                "created_at": at,
                "reason_code": None,
                "history": [{"status": "PENDING"}, {"status": "COMPLETED"}],
            }
        ],
    )
    assert "1 payment(s)" in text
    assert fmt_tiyn(2_000_000) in text
    assert "PENDING → COMPLETED" in text
    assert "no payments" in render_history(CUSTOMER, [])
    inbox = render_inbox(
        CUSTOMER,
        [
            {
                "id": 3,
                "created_at": at,
                "event_type": "BillIssued",
                "locale": "kk",
                "title": "Шот",
                "body": "line 1\nline 2",
                "link": "aqsha://r/1",
            }
        ],
    )
    assert "#3" in inbox
    assert "Шот" in inbox
    assert "  line 2" in inbox
    assert "link: aqsha://r/1" in inbox


# ----------------------------------------------------------------------------------------- the CLI
def test_cli_usage_errors_exit_2_before_touching_anything() -> None:
    runner = CliRunner()
    env = {"AQSHA_KAFKA_BOOTSTRAP": "127.0.0.1:1", "AQSHA_PG_DSN": "postgresql://nobody@127.0.0.1:1/x"}
    cases = [
        (["send", "-"], '{"type": "PaymentCompleted", "payload": {}}', "is an event, not a command"),
        (["send", "/nonexistent/file.json"], None, "cannot read /nonexistent/file.json"),
        (["payments", "history", "nope"], None, "invalid customer id 'nope'"),
        (["notify", "inbox", "nope"], None, "invalid customer id 'nope'"),
        (["billing", "run-day", "31.03.2026"], None, "invalid date '31.03.2026'"),
    ]
    for args, stdin, message in cases:
        result = runner.invoke(app, args, input=stdin, env=env)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith("aqsha: error: ")
        assert len(result.stderr.splitlines()) == 1
        assert message in result.stderr
        assert result.stdout == ""

    dry = runner.invoke(
        app, ["send", "-", "--dry-run"], input=json.dumps({"type": "PayService", "data": PAY})
    )
    assert dry.exit_code == 0
    assert (
        dry.stdout.strip()
        == f"valid PayService key={CUSTOMER} -> aqsha.payments.commands (dry run, not sent)"
    )


def test_every_command_is_wired() -> None:
    text = CliRunner().invoke(app, ["--help"]).stdout
    for name in (
        "send",
        "tail",
        "lag",
        "receipt",
        "reconcile",
        "topics",
        "dlq",
        "billing",
        "payments",
        "notify",
    ):
        assert name in text
    for group, subs in (("topics", ("apply", "list")), ("dlq", ("list", "show", "redrive"))):
        sub = CliRunner().invoke(app, [group, "--help"]).stdout
        assert all(s in sub for s in subs)
