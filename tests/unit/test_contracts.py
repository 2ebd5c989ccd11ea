"""Contracts: descriptions, committed schemas (drift and compatibility), envelope encode/decode."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field, ValidationError

from shared.contracts import (
    CONTRACTS,
    HEADER_CORRELATION_ID,
    HEADER_EVENT_ID,
    HEADER_SCHEMA_VERSION,
    HEADER_TYPE,
    Command,
    Contract,
    ContractError,
    Envelope,
    all_contracts,
    contract_for,
    decode,
    decode_as,
    decode_raw,
    encode,
    envelope_headers,
    new_envelope,
)
from shared.contracts import export as export_mod
from shared.contracts.base import SENSITIVE_KEY, mask_sensitive
from shared.contracts.billing import RedPurchaseApproved, RepaymentApplied
from shared.contracts.common import SENSITIVE, Funding, Iin, Phone
from shared.contracts.compat import breaking_changes
from shared.contracts.customers import CustomerRegistered
from shared.contracts.payments import (
    ConfirmPayment,
    OtpRequested,
    OtpRequestedV1,
    PaymentCompleted,
    PayRedBill,
    PayService,
    Purchase,
)
from shared.contracts.samples import CUSTOMER_ID, SAMPLE_OTP_CODE, sample, samples
from shared.money import MAX_TIYN
from shared.otp_seal import DEV_ONLY_OTP_TRANSPORT_KEY, open_code

pytestmark = pytest.mark.unit

NOW = datetime(2025, 3, 14, 7, 30, tzinfo=UTC)
SCHEMA_DIR = export_mod.DEFAULT_DIR


def _envelope(payload: Contract, **kwargs: Any) -> Envelope[Any]:
    key = kwargs.pop("key", None) or str(getattr(payload, "customer_id", "2025-03-31"))
    return new_envelope(payload, key=key, producer="test", occurred_at=NOW, **kwargs)


def _doc(payload: Contract) -> dict[str, Any]:
    """A valid record value as a dict, to be broken by a test."""
    doc: dict[str, Any] = json.loads(encode(_envelope(payload)))
    return doc


def _raw(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def _decode_error(raw: bytes) -> ContractError:
    with pytest.raises(ContractError) as info:
        decode(raw)
    return info.value


# --------------------------------------------------------------------------------------- registry


def test_registry_has_one_sample_per_contract() -> None:
    assert len(CONTRACTS) >= 40
    instances = samples()
    assert [type(s) for s in instances] == all_contracts()
    for model in all_contracts():
        latest = contract_for(model.TYPE)
        assert latest is not None
        # The latest version is named like its type; an older one kept beside it is <Type>V<n>.
        assert model.__name__ == (model.TYPE if model is latest else f"{model.TYPE}V{model.VERSION}")
        assert model.KIND in ("command", "event")
        assert contract_for(model.TYPE, model.VERSION) is model
    assert contract_for("PaymentCompleted") is PaymentCompleted
    assert contract_for("PaymentCompleted", 99) is None
    assert contract_for("NoSuchThing") is None


def test_command_and_event_kinds() -> None:
    assert PayService.KIND == "command"
    assert PaymentCompleted.KIND == "event"
    assert "PaymentCommand" not in CONTRACTS  # abstract bases are not registered
    assert "Receipt" not in CONTRACTS  # nested values are not contracts


def test_a_second_model_under_a_taken_name_is_refused() -> None:
    with pytest.raises(TypeError, match="already defined"):

        class PayService(Command):
            """Impostor."""

            x: int = Field(description="x")

    assert CONTRACTS["PayService"].__module__ == "shared.contracts.payments"


def test_a_contract_must_be_a_command_or_an_event() -> None:
    with pytest.raises(TypeError, match="Command or Event"):

        class Loose(Contract):
            """Neither."""

    assert "Loose" not in CONTRACTS


def _properties_without_description(schema: dict[str, Any]) -> list[str]:
    missing = []
    for owner, node in [("", schema), *schema.get("$defs", {}).items()]:
        for name, prop in node.get("properties", {}).items():
            if not str(prop.get("description", "")).strip():
                missing.append(f"{owner or schema.get('title')}.{name}")
    return missing


def test_every_field_of_every_model_has_a_description() -> None:
    missing: list[str] = []
    for model in all_contracts():
        missing += _properties_without_description(model.model_json_schema())
    missing += _properties_without_description(export_mod.envelope_schema())
    assert missing == []


def test_models_are_frozen_and_closed() -> None:
    payload = sample(CustomerRegistered)
    with pytest.raises(ValidationError):
        payload.customer_id = uuid4()
    data = json.loads(payload.model_dump_json())
    data["unexpected"] = 1
    with pytest.raises(ValidationError, match="Extra inputs"):
        type(payload).model_validate_json(json.dumps(data))


# ----------------------------------------------------------------------------------------- schemas


def test_committed_schemas_match_the_models() -> None:
    drift, breaks = export_mod.compare(SCHEMA_DIR)
    assert drift == [], "run `python -m shared.contracts.export` and commit docs/contracts/"
    assert breaks == []


def test_current_schemas_are_compatible_with_the_committed_ones() -> None:
    for model in all_contracts():
        path = SCHEMA_DIR / export_mod.schema_filename(model)
        committed = json.loads(path.read_text(encoding="utf-8"))
        assert breaking_changes(committed, export_mod.contract_schema(model)) == [], model.TYPE
    envelope = json.loads((SCHEMA_DIR / export_mod.ENVELOPE_FILE).read_text(encoding="utf-8"))
    assert breaking_changes(envelope, export_mod.envelope_schema()) == []


def _committed(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SCHEMA_DIR / f"{name}.v1.json").read_text(encoding="utf-8"))
    return data


def test_compat_reports_a_removed_property() -> None:
    old = _committed("PaymentCompleted")
    new = copy.deepcopy(old)
    del new["properties"]["fee"]
    assert breaking_changes(old, new) == ["fee: property removed"]


def test_compat_reports_a_retyped_property() -> None:
    old = _committed("PaymentCompleted")
    new = copy.deepcopy(old)
    new["properties"]["amount"] = {"type": "string", "description": "now text"}
    assert breaking_changes(old, new) == ["amount: type changed from integer to string"]


def test_compat_reports_a_retyped_property_inside_a_referenced_model() -> None:
    old = _committed("PaymentCompleted")
    new = copy.deepcopy(old)
    new["$defs"]["Receipt"]["properties"]["total"]["type"] = "number"
    new["$defs"]["Receipt"]["properties"]["fee"]["type"] = "string"
    assert breaking_changes(old, new) == ["receipt.fee: type changed from integer to string"]


def test_compat_reports_a_retyped_array_item() -> None:
    old = _committed("BillIssued")
    new = copy.deepcopy(old)
    new["$defs"]["BillLine"]["properties"]["part_no"]["type"] = "string"
    assert breaking_changes(old, new) == ["lines[].part_no: type changed from integer to string"]


def test_compat_reports_newly_required_properties() -> None:
    old = _committed("PaymentCompleted")
    new = copy.deepcopy(old)
    new["required"].append("category")
    new["properties"]["region"] = {"type": "string", "description": "new"}
    new["required"].append("region")
    assert breaking_changes(old, new) == [
        "category: newly required",
        "region: new required property",
    ]


def test_compat_reports_a_removed_enum_value() -> None:
    old = _committed("PaymentCompleted")
    new = copy.deepcopy(old)
    new["$defs"]["Funding"]["enum"].remove("CASH")
    problems = breaking_changes(old, new)
    assert problems == [
        "funding: enum value(s) removed: 'CASH'",
        "receipt.funding: enum value(s) removed: 'CASH'",
    ]


def test_compat_accepts_an_added_optional_property_and_enum_value() -> None:
    old = _committed("PaymentCompleted")
    new = copy.deepcopy(old)
    new["properties"]["note"] = {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}
    new["$defs"]["Funding"]["enum"].append("CRYPTO")
    new["properties"]["fee"] = {"anyOf": [{"type": "integer"}, {"type": "null"}]}  # widened: still fine
    assert breaking_changes(old, new) == []


def test_compat_on_real_model_versions() -> None:
    class Line(BaseModel):
        amount: int = Field(description="a")

    class V1(BaseModel):
        payment_id: UUID = Field(description="p")
        lines: list[Line] = Field(description="l")
        note: str | None = Field(default=None, description="n")

    class LineText(BaseModel):
        amount: str = Field(description="a")

    class V2(BaseModel):
        payment_id: UUID = Field(description="p")
        lines: list[LineText] = Field(description="l")
        note: str = Field(description="n")

    class V1Plus(V1):
        extra: int | None = Field(default=None, description="e")

    old = V1.model_json_schema()
    assert breaking_changes(old, V1Plus.model_json_schema()) == []
    assert breaking_changes(old, V2.model_json_schema()) == [
        "lines[].amount: type changed from integer to string",
        "note: type changed from null|string to string",
        "note: newly required",
    ]


def test_export_check_detects_stale_files_and_write_refuses_breaks(tmp_path: Path) -> None:
    assert export_mod.main(["--check", "--dir", str(tmp_path)]) == 1  # nothing committed yet
    assert export_mod.main(["--dir", str(tmp_path)]) == 0
    assert export_mod.main(["--check", "--dir", str(tmp_path)]) == 0
    target = tmp_path / "PayService.v1.json"
    text = target.read_text(encoding="utf-8")
    assert text.endswith("}\n")
    broken = json.loads(text)
    broken["properties"]["legacy"] = {"type": "string", "description": "gone now"}
    target.write_text(export_mod.render(broken), encoding="utf-8")
    assert export_mod.main(["--check", "--dir", str(tmp_path)]) == 1
    assert export_mod.main(["--dir", str(tmp_path)]) == 1  # would remove "legacy": refuse
    assert export_mod.main(["--dir", str(tmp_path), "--allow-breaking"]) == 0
    assert export_mod.main(["--check", "--dir", str(tmp_path)]) == 0


# ---------------------------------------------------------------------------------------- envelope


@pytest.mark.parametrize("payload", samples(), ids=lambda s: s.TYPE)
def test_every_contract_round_trips(payload: Contract) -> None:
    env = _envelope(payload)
    raw = encode(env)
    assert isinstance(raw, bytes)
    back = decode(raw)
    assert back == env
    assert type(back.payload) is type(payload)
    assert back.payload == payload
    assert encode(back) == raw
    assert type(payload).model_validate_json(payload.model_dump_json()) == payload


def test_encode_is_the_envelope_json() -> None:
    payload = sample(CustomerRegistered)
    env = _envelope(payload)
    doc = json.loads(encode(env))
    assert set(doc) == {
        "event_id",
        "type",
        "schema_version",
        "occurred_at",
        "correlation_id",
        "causation_id",
        "producer",
        "key",
        "payload",
    }
    assert doc["type"] == payload.TYPE
    assert doc["schema_version"] == 1
    assert doc["payload"]["customer_id"] == str(CUSTOMER_ID)
    assert doc["occurred_at"] == "2025-03-14T07:30:00Z"


def test_new_envelope_defaults() -> None:
    command = sample(PayService)
    env = new_envelope(command, producer="app", occurred_at=NOW)
    assert env.key == str(command.customer_id)
    assert env.correlation_id == command.request_id
    assert env.causation_id is None
    assert env.type == "PayService"
    assert env.schema_version == 1

    event = sample(PaymentCompleted)
    caused = new_envelope(event, producer="payments", occurred_at=NOW, causation=env)
    assert caused.correlation_id == env.correlation_id
    assert caused.causation_id == env.event_id
    assert caused.event_id != env.event_id

    fixed = uuid4()
    again = new_envelope(event, producer="payments", occurred_at=NOW, event_id=fixed, correlation_id=fixed)
    assert (again.event_id, again.correlation_id) == (fixed, fixed)


def test_new_envelope_guards_key_and_time() -> None:
    payload = sample(CustomerRegistered)
    with pytest.raises(ValueError, match="differs"):
        new_envelope(payload, key="someone-else", producer="t", occurred_at=NOW)
    with pytest.raises(ValidationError, match="timezone"):
        new_envelope(payload, producer="t", occurred_at=datetime(2025, 1, 1, 12, 0))
    run = contract_for("RunBusinessDay")
    assert run is not None
    run_day = sample(run)
    with pytest.raises(ValueError, match="key"):
        new_envelope(run_day, producer="ops", occurred_at=NOW)
    assert new_envelope(run_day, key="2025-03-31", producer="ops", occurred_at=NOW).key == "2025-03-31"


def test_envelope_type_must_match_payload() -> None:
    payload = sample(CustomerRegistered)
    with pytest.raises(ValidationError, match="payload is"):
        Envelope[CustomerRegistered](
            event_id=uuid4(),
            type="Other",
            schema_version=1,
            occurred_at=NOW,
            correlation_id=uuid4(),
            producer="t",
            key="k",
            payload=payload,
        )


def test_headers() -> None:
    env = _envelope(sample(CustomerRegistered))
    assert envelope_headers(env) == {
        HEADER_TYPE: env.type,
        HEADER_EVENT_ID: str(env.event_id),
        HEADER_CORRELATION_ID: str(env.correlation_id),
        HEADER_SCHEMA_VERSION: "1",
    }
    assert HEADER_TYPE == "aqsha-type"


def test_decode_as_accepts_only_the_given_types() -> None:
    payload = sample(PayService)
    raw = encode(_envelope(payload))
    env = decode_as(raw, PayService, Purchase)
    assert isinstance(env.payload, PayService)
    with pytest.raises(ContractError) as info:
        decode_as(raw, PaymentCompleted)
    assert info.value.code == "unexpected_type"
    assert info.value.raw_envelope is not None


# --------------------------------------------------------------------------------- decode errors


def test_decode_rejects_non_json() -> None:
    err = _decode_error(b"{not json")
    assert err.code == "invalid_json"
    assert isinstance(err, ValueError)
    assert err.raw_envelope is None


def test_decode_rejects_invalid_utf8() -> None:
    assert _decode_error(b'{"type": "\xff\xfe"}').code == "invalid_json"


@pytest.mark.parametrize("field", ["event_id", "type", "occurred_at", "correlation_id", "key", "payload"])
def test_decode_rejects_missing_envelope_fields(field: str) -> None:
    doc = _doc(sample(CustomerRegistered))
    del doc[field]
    err = _decode_error(_raw(doc))
    assert err.code == "invalid_envelope"
    assert field in err.message


def test_decode_rejects_envelope_extras_and_non_objects() -> None:
    doc = _doc(sample(CustomerRegistered))
    doc["extra"] = 1
    assert _decode_error(_raw(doc)).code == "invalid_envelope"
    assert _decode_error(b"[1, 2]").code == "invalid_envelope"
    assert _decode_error(b'"text"').code == "invalid_envelope"


def test_decode_rejects_a_naive_occurred_at() -> None:
    doc = _doc(sample(CustomerRegistered))
    doc["occurred_at"] = "2025-03-14T12:30:00"
    err = _decode_error(_raw(doc))
    assert err.code == "invalid_envelope"
    assert "occurred_at" in err.message


def test_decode_rejects_a_naive_datetime_in_the_payload() -> None:
    doc = _doc(sample(PaymentCompleted))
    doc["payload"]["completed_at"] = "2025-03-14T12:31:05"
    err = _decode_error(_raw(doc))
    assert err.code == "invalid_payload"
    assert "completed_at" in err.message


def test_decode_rejects_unknown_types_and_versions() -> None:
    doc = _doc(sample(CustomerRegistered))
    doc["type"] = "NoSuchEvent"
    assert _decode_error(_raw(doc)).code == "unknown_type"
    doc = _doc(sample(CustomerRegistered))
    doc["schema_version"] = 7
    err = _decode_error(_raw(doc))
    assert err.code == "unknown_type"
    assert err.raw_envelope is not None
    assert err.raw_envelope.event_id == UUID(doc["event_id"])


def test_decode_rejects_a_bad_payload() -> None:
    doc = _doc(sample(CustomerRegistered))
    doc["payload"]["phone"] = "87011234567"
    err = _decode_error(_raw(doc))
    assert err.code == "invalid_payload"
    assert err.message.startswith("CustomerRegistered.phone")
    assert err.raw_envelope is not None


@pytest.mark.parametrize("amount", [2_000_000.0, 2_000_000.5, True, "2000000", None, -1, MAX_TIYN + 1])
def test_money_rejects_floats_bools_and_strings_in_json(amount: Any) -> None:
    doc = _doc(sample(PayService))
    doc["payload"]["amount"] = amount
    assert _decode_error(_raw(doc)).code == "invalid_payload"


@pytest.mark.parametrize("amount", [2_000_000.0, True, "2000000", 0])
def test_money_rejects_floats_bools_and_strings_in_python(amount: Any) -> None:
    data = sample(PayService).model_dump()
    data["amount"] = amount
    with pytest.raises(ValidationError):
        PayService.model_validate(data)


def test_python_mode_is_strict_about_uuid_strings() -> None:
    """Documented behaviour: Python input needs real UUIDs/datetimes; JSON input takes ISO strings."""
    payload = sample(CustomerRegistered)
    with pytest.raises(ValidationError):
        type(payload).model_validate(payload.model_dump(mode="json"))
    assert type(payload).model_validate_json(payload.model_dump_json()) == payload


@given(st.integers(min_value=1, max_value=MAX_TIYN))
def test_any_positive_amount_round_trips(amount: int) -> None:
    payload = sample(PayService).model_copy(update={"amount": amount})
    back = decode(encode(_envelope(payload))).payload
    assert isinstance(back, PayService)
    assert back.amount == amount


# ----------------------------------------------------------------------------- field validation


def test_customer_identity_fields_are_validated() -> None:
    good = json.loads(sample(CustomerRegistered).model_dump_json())
    for field, value in [("phone", "+7701123456"), ("phone", "+87011234567"), ("iin", "12345678901")]:
        bad = {**good, field: value}
        with pytest.raises(ValidationError, match=field):
            CustomerRegistered.model_validate_json(json.dumps(bad))
    minimal = {k: good[k] for k in ("customer_id", "phone", "iin", "full_name")}
    parsed = CustomerRegistered.model_validate_json(json.dumps(minimal))
    assert (parsed.locale, parsed.tariff_profile, parsed.email) == ("ru", "kaspi", None)


def test_confirmation_code_is_four_to_six_digits() -> None:
    data = json.loads(sample(ConfirmPayment).model_dump_json())
    for code in ("123", "1234567", "12a4"):
        with pytest.raises(ValidationError):
            ConfirmPayment.model_validate_json(json.dumps({**data, "code": code}))


def test_funding_is_restricted_where_the_domain_says_so() -> None:
    bill = json.loads(sample(PayRedBill).model_dump_json())
    assert PayRedBill.model_validate_json(json.dumps({**bill, "use_bonus": True})).use_bonus is True
    with pytest.raises(ValidationError):
        PayRedBill.model_validate_json(json.dumps({**bill, "funding": "BONUS"}))
    purchase = json.loads(sample(Purchase).model_dump_json())
    with pytest.raises(ValidationError):
        Purchase.model_validate_json(json.dumps({**purchase, "funding": "EXTERNAL_CARD"}))
    assert Purchase.model_validate_json(json.dumps(purchase)).funding is Funding.RED


def test_red_plan_parts_sum_to_the_amount() -> None:
    data = json.loads(sample(RedPurchaseApproved).model_dump_json())
    with pytest.raises(ValidationError, match="sum"):
        RedPurchaseApproved.model_validate_json(json.dumps({**data, "parts": [1, 1, 1, 1]}))
    with pytest.raises(ValidationError):
        RedPurchaseApproved.model_validate_json(json.dumps({**data, "parts": data["parts"][:3]}))


def test_repayment_allocation_sums_to_the_amount() -> None:
    data = json.loads(sample(RepaymentApplied).model_dump_json())
    with pytest.raises(ValidationError, match="allocation sums"):
        RepaymentApplied.model_validate_json(json.dumps({**data, "amount": data["amount"] + 1}))


def test_sensitive_fields_are_marked_in_the_schema() -> None:
    assert SENSITIVE == {SENSITIVE_KEY: True}
    otp = export_mod.contract_schema(OtpRequested)
    assert otp["properties"]["sealed_code"][SENSITIVE_KEY] is True
    assert otp["properties"]["phone"][SENSITIVE_KEY] is True
    assert "code" not in otp["properties"]
    v1 = export_mod.contract_schema(OtpRequestedV1)
    assert v1["properties"]["code"][SENSITIVE_KEY] is True
    assert export_mod.contract_schema(ConfirmPayment)["properties"]["code"][SENSITIVE_KEY] is True
    customer = export_mod.contract_schema(CustomerRegistered)
    for name in ("phone", "iin", "full_name", "email"):
        assert customer["properties"][name][SENSITIVE_KEY] is True, name
    assert SENSITIVE_KEY not in customer["properties"]["customer_id"]
    committed = json.loads((SCHEMA_DIR / "OtpRequested.v2.json").read_text(encoding="utf-8"))
    assert committed["properties"]["sealed_code"][SENSITIVE_KEY] is True


def test_otp_requested_v2_is_the_latest_and_v1_stays_registered() -> None:
    assert contract_for("OtpRequested") is OtpRequested
    assert OtpRequested.VERSION == 2
    assert contract_for("OtpRequested", 1) is OtpRequestedV1
    # v1 -> v2 is a breaking change (code removed, sealed_code required): hence a new version.
    assert breaking_changes(OtpRequestedV1.model_json_schema(), OtpRequested.model_json_schema()) != []
    otp = sample(OtpRequested)
    assert open_code(otp, DEV_ONLY_OTP_TRANSPORT_KEY) == SAMPLE_OTP_CODE
    data = json.loads(otp.model_dump_json())
    for bad in ("short", "x" * 200, "not base64url!" * 4):
        with pytest.raises(ValidationError):
            OtpRequested.model_validate_json(json.dumps({**data, "sealed_code": bad}))
    with pytest.raises(ValidationError):
        OtpRequested.model_validate_json(json.dumps({**data, "code": "482915"}))


def test_mask_sensitive_masks_marked_fields_at_any_depth() -> None:
    customer = sample(CustomerRegistered)
    masked = mask_sensitive(CustomerRegistered, customer.model_dump(mode="json"))
    assert masked["phone"] == "+7 *** *** ** 67"
    assert masked["iin"] == masked["full_name"] == masked["email"] == "***"
    assert masked["customer_id"] == str(customer.customer_id)
    assert masked["locale"] == customer.locale.value
    assert mask_sensitive(CustomerRegistered, {"email": None, "phone": "+7701"}) == {
        "email": None,
        "phone": "***",
    }
    otp = mask_sensitive(OtpRequested, sample(OtpRequested).model_dump(mode="json"))
    assert otp["sealed_code"] == "***"
    assert otp["amount"] == sample(OtpRequested).amount
    # Names the schema does not know (an invalid payload) are masked when they name a secret.
    assert mask_sensitive(PayService, {"code": "1234", "pin": "0000", "note": "x"}) == {
        "code": "***",
        "pin": "***",
        "note": "x",
    }

    class Contact(BaseModel):
        phone: Phone = Field(description="p")
        label: str = Field(description="l")

    class Book(BaseModel):
        owner: Contact = Field(description="o")
        others: list[Contact] = Field(description="x")
        spare: Contact | None = Field(default=None, description="s")
        iins: list[Iin] = Field(default_factory=list, description="i")

    book = Book(
        owner=Contact(phone="+77011234567", label="me"),
        others=[Contact(phone="+77019999988", label="a")],
        spare=Contact(phone="+77010000011", label="b"),
        iins=["900101300123"],
    )
    assert mask_sensitive(Book, book.model_dump(mode="json")) == {
        "owner": {"phone": "+7 *** *** ** 67", "label": "me"},
        "others": [{"phone": "+7 *** *** ** 88", "label": "a"}],
        "spare": {"phone": "+7 *** *** ** 11", "label": "b"},
        "iins": ["***"],
    }


def test_decode_raw_leaves_the_payload_unchecked() -> None:
    doc = _doc(sample(CustomerRegistered))
    doc["payload"] = {"anything": 1}
    head = decode_raw(_raw(doc))
    assert head.type == "CustomerRegistered"
    assert head.payload == {"anything": 1}


@pytest.mark.parametrize(
    ("model", "field"), [(CustomerRegistered, "full_name"), (PayService, "provider_account")]
)
def test_text_with_a_nul_character_is_refused_as_invalid_payload(model: type[Any], field: str) -> None:
    # PostgreSQL cannot store U+0000 in text/jsonb: refused at decode time, not in every handler.
    body = json.loads(encode(new_envelope(sample(model), producer="t", occurred_at=datetime.now(UTC))))
    body["payload"][field] = "12345\u0000"
    with pytest.raises(ContractError) as err:
        decode(json.dumps(body))
    assert err.value.code == "invalid_payload"
    assert "NUL" in str(err.value)
