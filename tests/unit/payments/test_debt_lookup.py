"""Checking the debt (seed 000, "Checkskuld"): the simulator's data, the contracts, who may ask."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from services.payments.provider import (
    Debt,
    ProviderSimulator,
    ProviderUnavailable,
    SimulatorData,
    SimulatorDataError,
)
from shared.contracts.base import SENSITIVE_KEY, mask_sensitive
from shared.contracts.envelope import new_envelope
from shared.contracts.export import contract_schema
from shared.contracts.payments import DebtLookedUp, DebtLookupFailed, LookupDebt
from shared.contracts.samples import sample
from shared.money import tenge_to_tiyn as tenge
from shared.topics import PAYMENTS_COMMANDS, PAYMENTS_EVENTS, topic_for_contract
from shared.trust import Origin, Untrusted, check_permitted, producer_for

pytestmark = pytest.mark.unit

DATA = SimulatorData.load()


def lookup(provider: str, account: str) -> Debt | None:
    return asyncio.run(ProviderSimulator().lookup(provider, account))


def test_the_demo_accounts_are_in_the_simulator_data() -> None:
    found = lookup("almaty-energo", "4400123456")
    assert found == Debt(
        "АО «Алматыэнергосбыт»",
        tenge(8_450),
        "electricity",
        "Ли Дмитрий Викторович",
        "г. Алматы, ул. Жандосова, 58, кв. 12",
    )
    tax = lookup("kgd-almaty", "KBK-104402")
    assert tax is not None
    assert (tax.debt, tax.category) == (tenge(4_500), "tax")


def test_only_providers_that_show_the_owner_answer_name_and_address() -> None:
    for code, provider in DATA.providers.items():
        for account, (_, owner, address) in provider.accounts.items():
            if not provider.shows_owner:
                assert (owner, address) == (None, None), (code, account)
    mobile = lookup("beeline-kz", "7011234567")
    assert mobile is not None
    assert (mobile.owner_name, mobile.owner_address) == (None, None)
    assert any(p.shows_owner for p in DATA.providers.values())


def test_debts_are_exact_tiyn_and_codes_compare_like_tariffs() -> None:
    found = lookup("Almaty_Energo", "1234567890")
    assert found is not None
    assert found.debt == 312_050
    nothing = lookup("almaty-energo", "5500000000")
    assert nothing is not None
    assert nothing.debt == 0


def test_an_unknown_account_or_provider_is_not_found_and_fail_providers_do_not_answer() -> None:
    assert lookup("almaty-energo", "4400123465") is None
    assert lookup("not-in-the-data", "4400123456") is None
    with pytest.raises(ProviderUnavailable):
        lookup("fail-energo", "4400123456")


P = 'schema_version = 1\n[[providers]]\ncode = "a"\nname = "A"\n'


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("schema_version = 2", "schema_version"),
        (P + 'accounts = [{account = "1", debt = 10.5}]', "debt must be a string"),
        (P + 'accounts = [{account = "1", debt = "1.234"}]', "a/1"),
        (P + 'accounts = [{account = "1", debt = "-5"}]', "never negative"),
        (P + 'accounts = [{account = "1", debt = "1"}, {account = "1", debt = "2"}]', "listed twice"),
        (P + 'category = "taxes"', "unknown category"),
        (P + 'shows_owner = "yes"', "shows_owner"),
        (P + '[[providers]]\ncode = "A"\nname = "B"', "listed twice"),
        ('schema_version = 1\n[[providers]]\nname = "A"', "'code'"),
    ],
)
def test_malformed_simulator_data_is_refused(text: str, error: str) -> None:
    with pytest.raises(SimulatorDataError, match=error):
        SimulatorData.from_toml(text)


def test_owner_fields_are_dropped_when_the_provider_does_not_show_them() -> None:
    data = SimulatorData.from_toml(
        'schema_version = 1\n[[providers]]\ncode = "p"\nname = "P"\nshows_owner = false\n'
        'accounts = [{account = "1", debt = "100", owner = "X", address = "Y"}]'
    )
    assert data.lookup("p", "1") == Debt("P", 10_000, None, None, None)


# -- the contracts ----------------------------------------------------------------------------------
def test_owner_name_and_address_are_sensitive_masked_in_tail() -> None:
    schema = contract_schema(DebtLookedUp)
    for name in ("owner_name", "owner_address"):
        assert schema["properties"][name][SENSITIVE_KEY] is True, name
    reply = sample(DebtLookedUp)
    masked = mask_sensitive(DebtLookedUp, reply.model_dump(mode="json"))
    assert masked["owner_name"] == masked["owner_address"] == "***"
    assert masked["debt"] == reply.debt
    assert masked["provider_account"] == reply.provider_account
    assert mask_sensitive(DebtLookedUp, {"owner_name": None})["owner_name"] is None


def test_lookups_ride_the_payments_topics() -> None:
    assert topic_for_contract("LookupDebt") is PAYMENTS_COMMANDS
    assert topic_for_contract("DebtLookedUp") is topic_for_contract("DebtLookupFailed") is PAYMENTS_EVENTS
    assert PAYMENTS_EVENTS.writers_of("DebtLookedUp") == ("payments",)
    assert sample(DebtLookupFailed).reason_code == "UNKNOWN_PROVIDER_ACCOUNT"


def _permitted(payload: LookupDebt, principal: str) -> str:
    env = new_envelope(payload, producer=principal, occurred_at=datetime.now(UTC))
    try:
        check_permitted(PAYMENTS_COMMANDS, Origin(principal, f"{principal}:test"), env, env.key.encode())
    except Untrusted as exc:
        return exc.reason
    return "ok"


def test_the_app_and_support_may_ask_but_support_moves_no_money() -> None:
    ask = LookupDebt(request_id=uuid4(), customer_id=uuid4(), provider="almaty-energo", provider_account="1")
    assert producer_for(ask) == "app-gateway"
    assert _permitted(ask, "app-gateway") == "ok"
    assert _permitted(ask, "ops") == "ok"
    assert _permitted(ask, "cash-network") == "not_permitted"
    assert _permitted(ask, "payments") == "not_permitted"
    # ops is a producer of the commands topic only for lookups: every money command stays closed to it.
    for name in PAYMENTS_COMMANDS.contracts:
        if name != "LookupDebt":
            assert "ops" not in PAYMENTS_COMMANDS.writers_of(name), name
            assert set(PAYMENTS_COMMANDS.writers_of(name)) <= {"app-gateway", "cash-network"}, name
