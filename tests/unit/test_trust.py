"""shared.trust: signatures over topic, key and value; the registry; producer permissions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from shared.contracts.base import Contract
from shared.contracts.billing import OverpaymentReason, OverpaymentRefunded, RunBusinessDay
from shared.contracts.common import AccountKind, Channel, Funding
from shared.contracts.envelope import Envelope, encode, new_envelope
from shared.contracts.payments import PayRedBill, TopUp, Transfer
from shared.topics import BILLING_COMMANDS, BILLING_EVENTS, BONUS_EVENTS, PAYMENTS_COMMANDS, PRINCIPALS
from shared.trust import (
    HEADER_KEY_ID,
    HEADER_SIGNATURE,
    Keyring,
    Signer,
    TrustRegistry,
    Untrusted,
    check_permitted,
    key_id_for,
    load_registry,
    load_signer,
    producer_for,
    signing_input,
    write_keyring,
)

pytestmark = pytest.mark.unit
TOPIC = "aqsha.payments.commands"


def _headers(signed: dict[str, str]) -> list[tuple[str, bytes]]:
    return [(k, v.encode()) for k, v in signed.items()]


def _env(payload: Contract, producer: str | None = None, **kw: Any) -> Envelope[Any]:
    return new_envelope(
        payload, producer=producer or producer_for(payload), occurred_at=datetime.now(UTC), **kw
    )


def _top_up(channel: Channel = Channel.ATM) -> TopUp:
    return TopUp(
        request_id=uuid4(), customer_id=uuid4(), channel=channel, account=AccountKind.WALLET, amount=10_000
    )


@pytest.fixture(scope="module")
def cash() -> Signer:
    return Signer.generate("cash-network")


@pytest.fixture(scope="module")
def registry(cash: Signer) -> TrustRegistry:
    return TrustRegistry.from_entries([cash.public_entry()])


def test_a_signature_verifies_and_names_its_principal(cash: Signer, registry: TrustRegistry) -> None:
    headers = _headers(cash.sign(TOPIC, b"k", b"value"))
    origin = registry.verify(TOPIC, b"k", b"value", headers)
    assert (origin.principal, origin.key_id) == ("cash-network", cash.key_id)
    assert cash.key_id == key_id_for("cash-network", registry.keys[cash.key_id].public_key)
    assert cash.key_id.startswith("cash-network:")


@pytest.mark.parametrize(
    ("topic", "key", "value"),
    [
        ("aqsha.bonus.events", b"k", b"value"),  # replayed on another topic
        (TOPIC, b"other", b"value"),  # under another key
        (TOPIC, None, b"value"),  # with the key dropped
        (TOPIC, b"k", b"value!"),  # a changed value
    ],
)
def test_a_signature_covers_topic_key_and_value(
    cash: Signer, registry: TrustRegistry, topic: str, key: bytes | None, value: bytes
) -> None:
    headers = _headers(cash.sign(TOPIC, b"k", b"value"))
    with pytest.raises(Untrusted) as exc:
        registry.verify(topic, key, value, headers)
    assert exc.value.reason == "bad_signature"


def test_length_prefixes_keep_fields_apart() -> None:
    assert signing_input("ab", b"c", b"d") != signing_input("a", b"bc", b"d")
    assert signing_input("a", b"b", b"cd") != signing_input("a", b"bc", b"d")


def test_unsigned_unknown_revoked_and_expired_keys_are_refused(cash: Signer) -> None:
    headers = _headers(cash.sign(TOPIC, b"k", b"v"))
    cases: list[tuple[TrustRegistry, list[tuple[str, bytes]], str]] = [
        (TrustRegistry.from_entries([cash.public_entry()]), [], "unsigned"),
        (TrustRegistry.from_entries([cash.public_entry()]), headers[:1], "unsigned"),
        (TrustRegistry.from_entries([]), headers, "unknown_key"),
        (TrustRegistry.from_entries([cash.public_entry(revoked=True)]), headers, "key_revoked"),
        (
            TrustRegistry.from_entries(
                [cash.public_entry(not_after=datetime.now(UTC) - timedelta(seconds=1))]
            ),
            headers,
            "key_expired",
        ),
    ]
    for registry, given, reason in cases:
        with pytest.raises(Untrusted) as exc:
            registry.verify(TOPIC, b"k", b"v", given)
        assert exc.value.reason == reason
    future = datetime.now(UTC) + timedelta(days=1)
    assert TrustRegistry.from_entries([cash.public_entry(not_after=future)]).verify(
        TOPIC, b"k", b"v", headers
    )


def test_a_garbled_signature_is_a_bad_signature(cash: Signer, registry: TrustRegistry) -> None:
    for garbage in (b"!!!", b"", "абв".encode()):
        with pytest.raises(Untrusted) as exc:
            registry.verify(
                TOPIC, b"k", b"v", [(HEADER_KEY_ID, cash.key_id.encode()), (HEADER_SIGNATURE, garbage)]
            )
        assert exc.value.reason == "bad_signature"


def test_the_registry_refuses_a_key_id_that_is_not_its_keys(cash: Signer) -> None:
    other = Signer.generate("cash-network")
    entry = {**cash.public_entry(), "public_key": other.public_entry()["public_key"]}
    with pytest.raises(ValueError, match="does not match"):
        TrustRegistry.from_entries([entry])
    with pytest.raises(ValueError, match="unknown principal"):
        TrustRegistry.from_entries([{**cash.public_entry(), "principal": "mallory"}])
    with pytest.raises(ValueError, match="unknown principal"):
        Signer.generate("mallory")


def _permitted(
    env: Envelope[Any], principal: str, spec: Any = PAYMENTS_COMMANDS, key: str | None = None
) -> str:
    """``ok`` or the refusal reason of ``env`` on ``spec`` from ``principal``."""
    from shared.trust import Origin

    try:
        check_permitted(spec, Origin(principal, f"{principal}:x"), env, (key or env.key).encode())
    except Untrusted as exc:
        return exc.reason
    return "ok"


def test_only_the_cash_network_brings_cash_in() -> None:
    assert _permitted(_env(_top_up(Channel.ATM)), "cash-network") == "ok"
    assert _permitted(_env(_top_up(Channel.ATM), producer="app-gateway"), "app-gateway") == "not_permitted"
    assert _permitted(_env(_top_up(Channel.APP), producer="app-gateway"), "app-gateway") == "not_permitted"
    cash_bill = PayRedBill(request_id=uuid4(), customer_id=uuid4(), amount=100, funding=Funding.CASH)
    assert _permitted(_env(cash_bill, producer="app-gateway"), "app-gateway") == "not_permitted"
    assert producer_for(cash_bill) == "cash-network"


def test_a_command_channel_names_its_producer() -> None:
    transfer = Transfer(request_id=uuid4(), customer_id=uuid4(), to_customer_id=uuid4(), amount=499_900)
    assert producer_for(transfer) == "app-gateway"
    assert _permitted(_env(transfer), "app-gateway") == "ok"
    assert _permitted(_env(transfer, producer="cash-network"), "cash-network") == "not_permitted"
    at_terminal = transfer.model_copy(update={"channel": Channel.TERMINAL})
    assert producer_for(at_terminal) == "cash-network"
    assert _permitted(_env(at_terminal, producer="app-gateway"), "app-gateway") == "not_permitted"


def test_contracts_belong_on_their_topic_and_events_to_their_service() -> None:
    top_up = _env(_top_up())
    assert _permitted(top_up, "cash-network", BONUS_EVENTS) == "wrong_topic"
    refund = OverpaymentRefunded(
        refund_id=uuid4(), customer_id=uuid4(), amount=100, reason=next(iter(OverpaymentReason))
    )
    assert _permitted(_env(refund), "billing", BILLING_EVENTS) == "ok"
    assert _permitted(_env(refund, producer="app-gateway"), "app-gateway", BILLING_EVENTS) == "not_permitted"
    assert _permitted(_env(refund), "payments", BILLING_EVENTS) == "not_permitted"


def test_the_producer_field_must_name_the_signer() -> None:
    assert _permitted(_env(_top_up(), producer="app-gateway"), "cash-network") == "producer_mismatch"


def test_record_key_envelope_key_and_payload_key_must_agree() -> None:
    env = _env(_top_up())
    assert _permitted(env, "cash-network", key=str(uuid4())) == "key_mismatch"
    day = RunBusinessDay(business_date=datetime(2025, 11, 24).date(), requested_by="ops")
    day_env = _env(day, key="2025-11-24")
    assert _permitted(day_env, "ops", BILLING_COMMANDS) == "ok"
    assert _permitted(day_env, "ops", BILLING_COMMANDS, key="2025-11-25") == "key_mismatch"
    assert (
        _permitted(_env(day, key="2025-11-25"), "ops", BILLING_COMMANDS, key="2025-11-25") == "key_mismatch"
    )


def test_a_keyring_on_disk_round_trips(tmp_path: Path) -> None:
    signers = write_keyring(tmp_path)
    assert set(signers) == set(PRINCIPALS)
    assert oct((tmp_path / "payments.pem").stat().st_mode & 0o777) == "0o600"
    registry = TrustRegistry.load(tmp_path / "registry.json")
    ring = Keyring.from_dir(tmp_path)
    value = encode(_env(_top_up()))
    origin = registry.verify(TOPIC, b"k", value, ring.sign("cash-network", TOPIC, b"k", value))
    assert origin.principal == "cash-network"
    assert Signer.from_file(tmp_path / "ops.pem").key_id == signers["ops"].key_id


def test_missing_or_broken_key_material_is_a_clear_error(tmp_path: Path) -> None:
    from shared.settings import TrustSettings

    with pytest.raises(RuntimeError, match="AQSHA_TRUST_REGISTRY_FILE"):
        load_registry(TrustSettings(registry_file=None))
    with pytest.raises(RuntimeError, match="AQSHA_TRUST_SIGNING_KEY_FILE"):
        load_signer(TrustSettings(keys_dir=None, signing_key_file=None), "payments")
    with pytest.raises(RuntimeError, match="cannot read signing key"):
        load_signer(TrustSettings(keys_dir=tmp_path), "payments")
    (tmp_path / "registry.json").write_text(json.dumps({"keys": [{"key_id": "x"}]}))
    with pytest.raises(RuntimeError, match="invalid trust registry"):
        TrustRegistry.load(tmp_path / "registry.json")
