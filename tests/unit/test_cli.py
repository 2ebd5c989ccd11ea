"""The pure parts of the ``aqsha`` CLI: input validation, selection rules, rendering (no infrastructure)."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from aiokafka import ConsumerRecord
from typer.testing import CliRunner

from shared.contracts.billing import RunBusinessDay
from shared.contracts.customers import CustomerRegistered
from shared.contracts.envelope import decode, encode, envelope_headers, new_envelope
from shared.contracts.payments import OtpRequested, OtpRequestedV1, PaymentCompleted, TopUp
from shared.contracts.samples import SAMPLE_OTP_CODE, sample
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
    masked_value,
    matches,
    operator_signer,
    prepare,
    produce,
    redrive_headers,
    render_dlq_show,
    render_item,
    render_lag,
    select_for_redrive,
    to_item,
)
from shared.ops.service_tools import (
    business_day_command,
    business_day_signer,
    parse_date,
    parse_uuid,
    render_history,
    render_inbox,
)
from shared.settings import KafkaSettings, Settings, TrustSettings
from shared.topics import BILLING_COMMANDS, PAYMENTS_COMMANDS, PAYMENTS_OTP, TOPICS
from shared.trust import HEADER_KEY_ID, HEADER_SIGNATURE, Signer, Untrusted
from tests.support.trust import keyring, registry

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
        out = prepare({"type": "PayService", field: PAY}, producer="app-gateway", suffix=".t1")
        assert out.topic == "aqsha.payments.commands.t1"
        assert out.envelope.key == str(CUSTOMER)
        assert out.envelope.correlation_id == REQUEST
        assert out.envelope.producer == "app-gateway"  # the signing principal
        assert out.headers == envelope_headers(out.envelope)  # not signed yet
        assert out.headers["aqsha-type"] == "PayService"


def test_a_signed_message_verifies_on_its_concrete_topic() -> None:
    signer = keyring().signer("app-gateway")
    out = prepare({"type": "PayService", "payload": PAY}, producer="app-gateway", suffix=".t1")
    signed = out.signed_by(signer)
    assert signed.value == encode(out.envelope)
    assert signed.headers == {**envelope_headers(out.envelope), **signed.signature}
    assert signed.headers[HEADER_KEY_ID] == signer.key_id
    headers = [(k, v.encode()) for k, v in signed.headers.items()]
    origin = registry().verify(signed.topic, signed.key, signed.value, headers)
    assert origin.principal == "app-gateway"
    with pytest.raises(Untrusted, match="bad_signature"):  # the signature names the concrete topic
        registry().verify("aqsha.payments.commands", signed.key, signed.value, headers)
    with pytest.raises(ValueError, match="is not the signer"):
        out.signed_by(keyring().signer("cash-network"))


async def test_produce_refuses_unsigned_messages_before_connecting() -> None:
    out = prepare({"type": "PayService", "payload": PAY}, producer="app-gateway")
    with pytest.raises(ValueError, match="unsigned message"):
        await produce(KafkaSettings(bootstrap="127.0.0.1:1"), [out])


def test_business_day_is_keyed_by_date_from_the_registry() -> None:
    out = prepare({"type": "RunBusinessDay", "payload": {"business_date": "2026-03-31"}}, producer="ops")
    assert key_field(BILLING_COMMANDS) == "business_date"
    assert out.envelope.key == "2026-03-31"
    assert out.topic == "aqsha.billing.commands"
    cli = business_day_command(date(2026, 3, 31), "alice", ".s")
    assert cli.envelope.key == "2026-03-31"
    assert cli.envelope.producer == "ops"
    assert cli.topic == "aqsha.billing.commands.s"
    assert isinstance(cli.envelope.payload, RunBusinessDay)
    assert cli.envelope.payload.requested_by == "alice"
    signed = cli.signed_by(business_day_signer(Settings()))  # the session's keys_dir: ops.pem
    assert signed.signature[HEADER_KEY_ID].startswith("ops:")


TOP_UP = {
    "request_id": str(REQUEST),
    "customer_id": str(CUSTOMER),
    "channel": "TERMINAL",
    "account": "GOLD",
    "amount": 5_000_00,
}
PAY_RED_BILL = {"request_id": str(REQUEST), "customer_id": str(CUSTOMER), "amount": 5_000_00}


@pytest.mark.parametrize(
    ("doc", "principal", "message"),
    [
        ({"type": "TopUp", "payload": TOP_UP}, "app-gateway", "app-gateway may not write TopUp"),
        (
            {"type": "TopUp", "payload": {**TOP_UP, "channel": "APP"}},
            "cash-network",
            "channel APP commands come only from app-gateway",
        ),
        (
            {"type": "PayService", "payload": {**PAY, "channel": "TERMINAL"}},
            "app-gateway",
            "channel TERMINAL commands come only from cash-network",
        ),
        (
            {
                "type": "PayRedBill",
                "payload": {**PAY_RED_BILL, "funding": "CASH", "channel": "APP"},
            },
            "app-gateway",
            "cash can only come from cash-network",
        ),
        (
            {"type": "RunBusinessDay", "payload": {"business_date": "2026-03-31"}},
            "app-gateway",
            "app-gateway may not write RunBusinessDay (only: ops)",
        ),
        ({"type": "PayService", "payload": PAY}, "ops", "ops may not write PayService"),
    ],
)
def test_what_the_principal_may_not_write_is_refused_before_sending(
    doc: dict[str, Any], principal: str, message: str
) -> None:
    with pytest.raises(OpsError) as exc:
        prepare(doc, producer=principal)
    assert _code(exc) == 2
    assert exc.value.message.startswith("refused: ")
    assert message in exc.value.message
    assert f"signing as {principal}" in exc.value.message


def test_a_full_envelope_must_name_the_signing_principal() -> None:
    topup = TopUp.model_validate_json(json.dumps(TOP_UP))
    env = new_envelope(topup, producer="app-gateway", occurred_at=datetime.now(UTC))
    with pytest.raises(OpsError) as exc:
        prepare(json.loads(encode(env)), producer="cash-network")
    assert "envelope says producer 'app-gateway', signed by cash-network" in exc.value.message
    assert "producer_mismatch" in exc.value.message
    env = new_envelope(topup, producer="cash-network", occurred_at=datetime.now(UTC))
    assert prepare(json.loads(encode(env)), producer="cash-network").envelope.event_id == env.event_id


# ---------------------------------------------------------------------------------------- signing key
def _trust(**kw: Any) -> TrustSettings:
    return TrustSettings.model_validate(
        {"registry_file": None, "keys_dir": None, "signing_key_file": None, **kw}
    )


def test_the_signing_key_comes_from_key_file_settings_or_the_keys_dir(tmp_path: Path) -> None:
    keys = Path(os.environ["AQSHA_TRUST_KEYS_DIR"])
    reg = os.environ["AQSHA_TRUST_REGISTRY_FILE"]
    # --key FILE: the principal is the file's stem, or --as.
    assert operator_signer(_trust(), key_file=keys / "ops.pem").principal == "ops"
    renamed = tmp_path / "operator-2026.pem"
    renamed.write_bytes((keys / "ops.pem").read_bytes())
    signer = operator_signer(_trust(registry_file=reg), key_file=renamed, principal="ops")
    assert signer.key_id == keyring().signer("ops").key_id
    # AQSHA_TRUST_SIGNING_KEY_FILE, and --key wins over it.
    assert operator_signer(_trust(signing_key_file=keys / "ops.pem")).principal == "ops"
    chosen = operator_signer(_trust(signing_key_file=keys / "ops.pem"), key_file=keys / "cash-network.pem")
    assert chosen.principal == "cash-network"
    # A development keyring: the principal's <principal>.pem once --as names it.
    assert operator_signer(_trust(keys_dir=keys), principal="app-gateway").key_id == (
        keyring().signer("app-gateway").key_id
    )


def test_no_or_an_unusable_signing_key_is_a_usage_error(tmp_path: Path) -> None:
    keys = Path(os.environ["AQSHA_TRUST_KEYS_DIR"])
    reg = os.environ["AQSHA_TRUST_REGISTRY_FILE"]
    stranger = tmp_path / "ops.pem"
    stranger.write_bytes(Signer.generate("ops").pem())
    not_a_key = tmp_path / "ops-broken.pem"
    not_a_key.write_text("nope")
    alice = tmp_path / "alice.pem"
    alice.write_bytes((keys / "ops.pem").read_bytes())
    cases: list[tuple[TrustSettings, dict[str, Any], str]] = [
        (
            _trust(),
            {},
            "no signing key: set AQSHA_TRUST_SIGNING_KEY_FILE or pass --key FILE; nothing was sent",
        ),
        (_trust(keys_dir=keys), {}, "or name a principal of AQSHA_TRUST_KEYS_DIR with --as PRINCIPAL"),
        (_trust(), {"key_file": tmp_path / "no" / "ops.pem"}, "cannot read signing key"),
        (_trust(), {"key_file": not_a_key, "principal": "ops"}, f"cannot sign with {not_a_key}: not an"),
        (_trust(), {"key_file": alice}, "unknown principal 'alice' (the key file's stem; --as PRINCIPAL"),
        (_trust(registry_file=reg), {"key_file": stranger}, "is not in the trust registry"),
        (_trust(keys_dir=keys), {"principal": "mallory"}, "unknown principal 'mallory'; known: payments"),
    ]
    for trust, kwargs, message in cases:
        with pytest.raises(OpsError) as exc:
            operator_signer(trust, **kwargs)
        assert _code(exc) == 2
        assert message in exc.value.message, exc.value.message
    with pytest.raises(OpsError) as exc:  # billing run-day: no --key option to suggest
        operator_signer(_trust(), principal="ops", key_option=False)
    assert exc.value.message == "no signing key for ops: set AQSHA_TRUST_SIGNING_KEY_FILE; nothing was sent"


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
        prepare(doc, producer="app-gateway")
    assert _code(exc) == 2
    assert message in exc.value.message


def test_events_need_force_and_full_envelopes_keep_their_ids() -> None:
    env = new_envelope(sample(PaymentCompleted), producer="payments", occurred_at=datetime.now(UTC))
    doc = json.loads(encode(env))
    with pytest.raises(OpsError):
        prepare(doc, producer="payments")
    out = prepare(doc, force=True, producer="payments")
    assert out.envelope.event_id == env.event_id
    assert out.envelope.producer == "payments"
    assert out.topic == "aqsha.payments.events"

    doc["key"] = str(uuid4())
    with pytest.raises(OpsError) as exc:
        prepare(doc, force=True, producer="payments")
    assert "differs from payload customer_id" in exc.value.message
    doc["payload"]["amount"] = 1.5
    with pytest.raises(OpsError) as exc:
        prepare(doc, force=True, producer="payments")
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


def _secrets_in(text: str) -> list[str]:
    """The sensitive sample values (customer, OTP v1 and v2) still readable in ``text``."""
    customer = sample(CustomerRegistered)
    values = [
        customer.phone,
        customer.iin,
        customer.full_name,
        customer.email or "",
        sample(OtpRequestedV1).code,
        sample(OtpRequested).sealed_code,
        SAMPLE_OTP_CODE,
        json.dumps(customer.full_name)[1:-1],  # as JSON writes it with ensure_ascii
    ]
    return [v for v in values if v and v in text]


@pytest.mark.parametrize(
    "model", [CustomerRegistered, OtpRequested, OtpRequestedV1], ids=lambda m: m.__name__
)
def test_tail_masks_sensitive_fields_in_text_and_json(model: Any) -> None:
    env = new_envelope(sample(model), producer="t", occurred_at=datetime.now(UTC))
    item = to_item(_record(encode(env), env.key, envelope_headers(env), topic="aqsha.payments.otp"))
    text = render_item(item)
    as_json = json.dumps(item.as_dict(), ensure_ascii=False)
    assert _secrets_in(text) == []
    assert _secrets_in(as_json) == []
    payload = item.as_dict()["envelope"]["payload"]
    assert payload["phone"] == "+7 *** *** ** 67"  # a phone keeps its last two digits
    assert '"phone": "+7 *** *** ** 67"' in text
    assert payload["customer_id"] == str(CUSTOMER)  # what is not sensitive stays readable
    if model is OtpRequested:
        assert payload["sealed_code"] == "***"
        assert payload["amount"] == sample(OtpRequested).amount


def test_undecodable_records_and_dead_letters_are_masked_too() -> None:
    # A v1 OtpRequested with an invalid field: not decodable, yet its contract is known.
    doc = json.loads(
        encode(new_envelope(sample(OtpRequestedV1), producer="t", occurred_at=datetime.now(UTC)))
    )
    doc["payload"]["amount"] = -1
    raw = json.dumps(doc).encode()
    headers = {"aqsha-dlq-reason": "invalid_payload", "aqsha-dlq-original-topic": "aqsha.payments.otp"}
    item = to_item(_record(raw, str(CUSTOMER), headers, topic="aqsha.payments.otp.dlq"))
    assert item.envelope is None
    assert _secrets_in(render_item(item)) == []
    assert _secrets_in(json.dumps(item.as_dict())) == []
    letter = DeadLetter(item)
    assert _secrets_in(render_dlq_show(letter)) == []
    assert _secrets_in(letter.as_dict()["value"]) == []
    assert json.loads(letter.as_dict()["value"])["payload"]["code"] == "***"
    # A refused (decodable) v1 dead letter: `dlq show` text and --json.
    v1 = new_envelope(sample(OtpRequestedV1), producer="t", occurred_at=datetime.now(UTC))
    refused = DeadLetter(
        to_item(_record(encode(v1), v1.key, {"aqsha-dlq-reason": "insecure_contract"}, topic="x.dlq"))
    )
    assert _secrets_in(render_dlq_show(refused)) == []
    assert _secrets_in(json.dumps(refused.as_dict(), ensure_ascii=False)) == []
    assert "insecure_contract" in render_dlq_show(refused)
    # Not even JSON: phones and code=... patterns are masked; an unknown type by field names.
    assert masked_value(b"sms to +77011234567 code=482915 {") == "sms to +7 *** *** ** 67 code=*** {"
    unknown = json.dumps({"type": "Nope", "schema_version": 1, "payload": {"otp": "123456", "n": 1}})
    assert json.loads(masked_value(unknown.encode()))["payload"] == {"otp": "***", "n": 1}
    # Nothing sensitive: the value is returned byte for byte.
    plain = encode(new_envelope(sample(PaymentCompleted), producer="t", occurred_at=datetime.now(UTC)))
    assert masked_value(plain) == plain.decode()


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


def test_a_redriven_record_keeps_its_signature_and_verifies_again() -> None:
    """The producer's signature headers survive the dead letter and the redrive (only aqsha-dlq-* go)."""
    topic = "aqsha.payments.commands.t9"
    out = prepare({"type": "TopUp", "payload": TOP_UP}, producer="cash-network", suffix=".t9")
    signed = out.signed_by(keyring().signer("cash-network"))
    dead = {
        **signed.headers,
        "aqsha-dlq-reason": "handler_error",
        "aqsha-dlq-original-topic": topic,
        "aqsha-dlq-original-partition": "4",
        "aqsha-dlq-original-offset": "41",
        REDRIVEN_FROM: "aqsha.payments.commands.t9.dlq[4]@0",  # redriven once before
    }
    record = _record(signed.value, str(CUSTOMER), dead, offset=3, partition=4, topic=f"{topic}.dlq")
    letter = DeadLetter(to_item(record))
    assert letter.original == (topic, 4, 41)
    now = datetime(2026, 3, 2, tzinfo=UTC)
    headers = redrive_headers(letter, now)
    names = [k for k, _ in headers]
    assert not any(k.startswith("aqsha-dlq-") for k in names)
    assert names.count(REDRIVEN_FROM) == 1
    assert dict(headers)[REDRIVEN_FROM] == f"{topic}.dlq[4]@3".encode()
    assert dict(headers)[HEADER_KEY_ID] == signed.signature[HEADER_KEY_ID].encode()
    assert dict(headers)[HEADER_SIGNATURE] == signed.signature[HEADER_SIGNATURE].encode()
    # What redrive sends (the dead letter's value and key, these headers) verifies on the original topic.
    key = letter.item.key.encode() if letter.item.key is not None else None
    origin = registry().verify(topic, key, letter.item.value, headers)
    assert origin.principal == "cash-network"
    assert decode(letter.item.value).producer == "cash-network"


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
    env: dict[str, str | None] = {
        "AQSHA_KAFKA_BOOTSTRAP": "127.0.0.1:1",
        "AQSHA_PG_DSN": "postgresql://nobody@127.0.0.1:1/x",
    }
    topup = json.dumps({"type": "TopUp", "payload": TOP_UP})
    cases = [
        (
            ["send", "-", "--as", "app-gateway"],
            '{"type": "PaymentCompleted", "payload": {}}',
            "is an event, not a command",
        ),
        (["send", "/nonexistent/file.json"], None, "cannot read /nonexistent/file.json"),
        (["send", "-", "--as", "app-gateway"], topup, "refused: app-gateway may not write TopUp"),
        (["send", "-", "--as", "nobody"], topup, "unknown principal 'nobody'; known: payments"),
        (["payments", "history", "nope"], None, "invalid customer id 'nope'"),
        (["notify", "inbox", "nope"], None, "invalid customer id 'nope'"),
        (["billing", "run-day", "31.03.2026"], None, "invalid date '31.03.2026'"),
    ]
    keyless = {**env, "AQSHA_TRUST_KEYS_DIR": None, "AQSHA_TRUST_SIGNING_KEY_FILE": None}
    cases += [
        (["send", "-"], topup, "no signing key: set AQSHA_TRUST_SIGNING_KEY_FILE or pass --key FILE"),
        (
            ["billing", "run-day", "2026-03-31"],
            None,
            "no signing key for ops: set AQSHA_TRUST_SIGNING_KEY_FILE",
        ),
    ]
    for args, stdin, message in cases:
        result = runner.invoke(app, args, input=stdin, env=keyless if "no signing key" in message else env)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith("aqsha: error: ")
        assert len(result.stderr.splitlines()) == 1
        assert message in result.stderr
        assert result.stdout == ""

    dry = runner.invoke(
        app,
        ["send", "-", "--dry-run", "--as", "app-gateway"],
        input=json.dumps({"type": "PayService", "data": PAY}),
    )
    assert dry.exit_code == 0, dry.output
    assert (
        dry.stdout.strip()
        == f"valid PayService key={CUSTOMER} -> aqsha.payments.commands (dry run, not sent)"
    )
    # --dry-run --json shows the record as it would be sent: signed by the key file's principal.
    key_file = Path(os.environ["AQSHA_TRUST_KEYS_DIR"]) / "cash-network.pem"
    shown = runner.invoke(app, ["send", "-", "--dry-run", "--json", "--key", str(key_file)], input=topup)
    assert shown.exit_code == 0, shown.output
    preview = json.loads(shown.stdout)
    assert preview["envelope"]["producer"] == "cash-network"
    assert preview["headers"][HEADER_KEY_ID] == keyring().signer("cash-network").key_id
    value = encode(decode(json.dumps(preview["envelope"])))
    headers = [(k, v.encode()) for k, v in preview["headers"].items()]
    assert (
        registry().verify(preview["topic"], preview["key"].encode(), value, headers).principal
        == "cash-network"
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


# ------------------------------------------------------------------------------ payments lookup
def test_lookup_is_signed_as_ops_keyed_by_the_customer_and_rendered_masked() -> None:
    from shared.contracts.payments import DebtLookedUp, DebtLookupFailed, LookupDebt
    from shared.ops.kafka_tools import masked_display
    from shared.ops.service_tools import lookup_command, lookup_signer, render_lookup

    out = lookup_command(CUSTOMER, "almaty-energo", "4400123456", ".s")
    assert isinstance(out.envelope.payload, LookupDebt)
    assert out.envelope.producer == "ops"
    assert out.envelope.key == str(CUSTOMER)
    assert out.topic == "aqsha.payments.commands.s"
    assert out.envelope.payload.request_id != lookup_command(CUSTOMER, "a", "b").envelope.payload.request_id
    signed = out.signed_by(lookup_signer(Settings()))  # the session's keys_dir: ops.pem
    assert signed.signature[HEADER_KEY_ID].startswith("ops:")
    with pytest.raises(OpsError) as exc:
        lookup_command(CUSTOMER, "x" * 65, "1")
    assert _code(exc) == 2

    reply = sample(DebtLookedUp)
    text = render_lookup({"found": True, "display": masked_display(reply)})
    assert fmt_tiyn(reply.debt) in text
    assert "owner: ***, address: *** (masked)" in text
    assert reply.owner_name is not None
    assert reply.owner_name not in text
    assert "IIN required to pay: no" in text
    failed = render_lookup({"found": False, "display": masked_display(sample(DebtLookupFailed))})
    assert failed.startswith("not found: almaty-energo account 1234567809: UNKNOWN_PROVIDER_ACCOUNT")


def test_lookup_usage_errors_exit_2_before_touching_anything() -> None:
    runner = CliRunner()
    env: dict[str, str | None] = {"AQSHA_KAFKA_BOOTSTRAP": "127.0.0.1:1"}
    keyless = {**env, "AQSHA_TRUST_KEYS_DIR": None, "AQSHA_TRUST_SIGNING_KEY_FILE": None}
    for args, environment, message in (
        (["payments", "lookup", "almaty-energo", "1", "--customer", "nope"], env, "invalid customer id"),
        (
            ["payments", "lookup", "p" * 65, "1", "--customer", str(CUSTOMER)],
            env,
            "invalid LookupDebt payload",
        ),
        (
            ["payments", "lookup", "almaty-energo", "1", "--customer", str(CUSTOMER)],
            keyless,
            "no signing key for ops",
        ),
    ):
        result = runner.invoke(app, args, env=environment)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith("aqsha: error: ")
        assert message in result.stderr
        assert result.stdout == ""
    help_text = runner.invoke(app, ["payments", "--help"]).stdout
    assert "lookup" in help_text
    assert "history" in help_text


# --------------------------------------------------------------- read models, the day, reading topics
def test_customer_bills_and_bonus_rendering() -> None:
    from shared.ops.service_tools import (
        render_bills,
        render_bonus_history,
        render_customer,
        render_day_closed,
    )

    bill = {
        "bill_id": UUID(int=7),
        "statement_date": date(2025, 10, 22),
        "status": "OVERDUE",
        "due_on": date(2025, 11, 24),
        "due_at": datetime(2025, 11, 24, 15, 0, tzinfo=UTC),
        "amount": 1_000_000,
        "owed": 400_000,
        "penalty": 0,
        "prepayment": 0,
        "penalty_charged": 200_000,
        "overdue_since": date(2025, 11, 25),
        "penalty_on": date(2025, 11, 26),
        "lines": [{"purchase_id": UUID(int=9), "part_no": 1, "amount": 1_000_000}],
    }
    red = {
        "limit": 30_000_000,
        "available": 26_000_000,
        "outstanding": 4_200_000,
        "carried": 0,
        "penalty_due": 200_000,
        "billing_day": 22,
        "closed": False,
        "last_closed_business_date": date(2025, 11, 26),
        "open_bills": [bill],
        "penalties": [{"bill_id": UUID(int=7), "statement_date": date(2025, 10, 22), "amount": 200_000,
                       "applied_on": date(2025, 11, 26)}],
    }  # fmt: skip
    view = {
        "customer_id": CUSTOMER,
        "registered": True,
        "registered_at": datetime(2025, 10, 20, tzinfo=UTC),
        "tariff_profile": "kaspi",
        "phone": "+7 *** *** ** 67",
        "full_name": "***",
        "accounts": {"GOLD": 3_851_500, "WALLET": 0},
        "in_flight": {"payments": 1, "held": 845_000},
        "bonus": {"balance": 12_345},
        "red": red,
    }
    text = render_customer(view)
    for expected in (
        "registered 20.10.2025, tariff kaspi, phone +7 *** *** ** 67",
        f"Kaspi Gold    {fmt_tiyn(3_851_500)}",
        f"1 payment(s) awaiting a code or the provider, {fmt_tiyn(845_000)} held",
        f"bonus         {fmt_tiyn(12_345)}",
        f"limit {fmt_tiyn(30_000_000)}, available {fmt_tiyn(26_000_000)}, outstanding {fmt_tiyn(4_200_000)}",
        f"penalty not yet billed {fmt_tiyn(200_000)}",
        "22.10.2025  OVERDUE",
        "due 24.11.2025 20:00",
        f"outstanding {fmt_tiyn(400_000)}, overdue since 25.11.2025",
        f"{fmt_tiyn(200_000)} charged 26.11.2025 (bill of 22.10.2025)",
    ):
        assert expected in text, (expected, text)
    assert "Kaspi Red     none" in render_customer({**view, "red": None})
    unregistered = render_customer({**view, "registered": False, "accounts": {}, "red": None})
    assert "not registered with payments" in unregistered
    bills = render_bills(
        {
            "customer_id": CUSTOMER,
            "as_of": date(2025, 11, 26),
            "billing_day": 22,
            "closed": False,
            "bills": [bill],
        }
    )
    assert "1 bill(s)" in bills
    assert f"part 1/4 (00000000): {fmt_tiyn(1_000_000)}" in bills
    history = render_bonus_history(
        {
            "customer_id": CUSTOMER,
            "balance": 5_000,
            "entries": [
                {"created_at": datetime(2025, 10, 21, tzinfo=UTC), "kind": "ACCRUAL", "signed": 5_000,
                 "running_balance": 5_000, "promotion_id": None, "rule_id": "qr-10", "percent": 10,
                 "payment_id": UUID(int=1)},
            ],
        }
    )  # fmt: skip
    assert f"bonus balance {fmt_tiyn(5_000)}" in history
    assert f"+{fmt_tiyn(5_000)}" in history
    assert "qr-10 (10 %)" in history
    closed = {"business_date": date(2025, 10, 22), "requested_by": "ops-cli", "accounts": 3, "bills": 2,
              "overdue": 0, "penalties": 1}  # fmt: skip
    assert render_day_closed(closed) == (
        "business day 2025-10-22 closed: 3 account(s), 2 bill(s) issued, 0 overdue recorded, "
        "1 penalty applied (requested by ops-cli)"
    )


def test_reading_options_and_selections_are_checked_before_connecting() -> None:
    runner = CliRunner()
    env: dict[str, str | None] = {
        "AQSHA_KAFKA_BOOTSTRAP": "127.0.0.1:1",
        "AQSHA_PG_DSN": "postgresql://n@127.0.0.1:1/x",
    }
    cases = [
        (["tail", "aqsha.payment.events"], "did you mean 'aqsha.payments.events'?"),
        (["tail", "aqsha.payments.events", "--type", "Topup"], "type 'Topup'; did you mean 'TopUp'?"),
        (["tail", "aqsha.payments.events", "--from-beginning", "--offset", "3"], "choose one start position"),
        (["tail", "aqsha.payments.events", "--since", "yesterday"], "invalid time 'yesterday'"),
        (["dlq", "redrive", "aqsha.payments.commands"], "say what to redrive: --all"),
        (["dlq", "redrive", "aqsha.payment.commands", "--all"], "did you mean 'aqsha.payments.commands'?"),
        (["lag", "--topic", "aqsha.bonus.event"], "did you mean 'aqsha.bonus.events'?"),
        (["billing", "run-day", "2026-03-31", "--by", ""], "--by must be 1 to 64 characters"),
        (["customer", "show", "nope"], "invalid customer id 'nope'"),
        (["billing", "bills", "nope"], "invalid customer id 'nope'"),
        (["bonus", "history", "nope"], "invalid customer id 'nope'"),
        (["send", "-", "--as", "app-gatway"], "unknown principal 'app-gatway'"),
    ]  # fmt: skip
    for args, message in cases:
        result = runner.invoke(app, args, env=env, input="{}")
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith("aqsha: error: ")
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert message in result.stderr, (args, result.stderr)
        assert result.stdout == ""
    # reconcile: an unreachable database is one line, no traceback (exit 1)
    down = runner.invoke(app, ["reconcile", "--json"], env=env)
    assert down.exit_code == 1
    assert down.stderr.startswith("aqsha: error: cannot connect to PostgreSQL: ")
    assert len(down.stderr.splitlines()) == 1


def test_tail_start_positions() -> None:
    from shared.ops.kafka_tools import _seek_start

    class Consumer:
        def __init__(self) -> None:
            self.at: dict[Any, int] = {}

        async def seek_to_beginning(self, *tps: Any) -> None:
            self.at.update(dict.fromkeys(tps, -2))

        async def seek_to_end(self, *tps: Any) -> None:
            self.at.update(dict.fromkeys(tps, -1))

        async def beginning_offsets(self, tps: list[Any]) -> dict[Any, int]:
            return {tp: 10 for tp in tps}

        async def end_offsets(self, tps: list[Any]) -> dict[Any, int]:
            return {tp: 100 + tp for tp in tps}

        async def offsets_for_times(self, wanted: dict[Any, int]) -> dict[Any, Any]:
            class Hit:
                offset, timestamp = 42, 1

            class NoHit:  # Tansu's answer when no record is that late
                offset, timestamp = 0, -1

            return {tp: (Hit() if tp == 0 else NoHit()) for tp in wanted}

        def seek(self, tp: Any, offset: int) -> None:
            self.at[tp] = offset

    import asyncio

    def start(**kw: Any) -> dict[Any, int]:
        consumer = Consumer()
        options: dict[str, Any] = {"from_beginning": False, "offset": None, "since": None, **kw}
        asyncio.run(_seek_start(consumer, [0, 1], **options))
        return consumer.at

    assert start() == {0: -1, 1: -1}
    assert start(from_beginning=True) == {0: -2, 1: -2}
    assert start(offset=50) == {0: 50, 1: 50}
    assert start(offset=5) == {0: 10, 1: 10}  # not before the log start
    assert start(offset=500) == {0: 100, 1: 101}  # not past the end
    assert start(offset=-3) == {0: 97, 1: 98}  # kcat's -o -3
    assert start(since=datetime(2025, 1, 1, tzinfo=UTC)) == {0: 42, 1: 101}  # none after: the end
