"""The IIN rule of service payments (seed 000): which services need it, and when a payment passes."""

from __future__ import annotations

import json
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.payments.domain import (
    IIN_MESSAGES,
    IdentityDataError,
    IinCheck,
    IinRules,
    ReasonCode,
    check_iin,
)
from services.payments.service import contract_reason
from shared.contracts.base import SENSITIVE_KEY, mask_sensitive
from shared.contracts.common import ReasonCode as WireReason
from shared.contracts.common import ServiceCategory
from shared.contracts.export import contract_schema
from shared.contracts.payments import PayService
from shared.logging import mask_text

pytestmark = pytest.mark.unit

RULES = IinRules.load()
IIN = "920303450345"
OTHER = "920303450354"
iins = st.from_regex(r"\d{12}", fullmatch=True)


def test_taxes_and_fines_need_the_iin_from_the_data_file() -> None:
    assert {"tax", "fine"} <= RULES.categories
    assert RULES.requires_iin("tax", "any-tax-office")
    assert RULES.requires_iin("fine", "somewhere")
    assert not RULES.requires_iin("electricity", "almaty-energo")
    assert not RULES.requires_iin(None, "beeline-kz")


def test_a_listed_provider_needs_the_iin_whatever_category_is_named() -> None:
    # Naming another category must not take a tax office's payment around the rule.
    for category in ("other", "utilities", None):
        assert RULES.requires_iin(category, "kgd-almaty")
    # Codes compare as in tariffs.toml: case-insensitive, "-" and "_" alike.
    assert RULES.requires_iin("other", "KGD_Almaty")


def test_every_listed_category_is_a_service_category() -> None:
    assert RULES.categories <= {c.value for c in ServiceCategory}


@pytest.mark.parametrize(
    ("required", "given", "registered", "expected"),
    [
        (True, IIN, IIN, None),
        (True, OTHER, IIN, IinCheck.MISMATCH),
        (True, None, IIN, IinCheck.MISSING),
        (True, None, None, IinCheck.MISSING),
        (True, IIN, None, IinCheck.UNVERIFIABLE),
        (False, None, IIN, None),
        (False, None, None, None),
        (False, IIN, IIN, None),
        (False, OTHER, IIN, IinCheck.MISMATCH),  # an IIN given is always checked
        (False, IIN, None, IinCheck.UNVERIFIABLE),
    ],
)
def test_check_iin(
    required: bool, given: str | None, registered: str | None, expected: IinCheck | None
) -> None:
    assert check_iin(required=required, given=given, registered=registered) == expected


@given(required=st.booleans(), given_iin=st.none() | iins, registered=st.none() | iins)
def test_a_payment_passes_only_without_an_iin_it_does_not_need_or_with_the_registered_one(
    required: bool, given_iin: str | None, registered: str | None
) -> None:
    passes = check_iin(required=required, given=given_iin, registered=registered) is None
    assert passes == (
        (given_iin is None and not required) or (given_iin is not None and given_iin == registered)
    )


def test_every_outcome_is_declined_as_identity_mismatch_and_no_message_names_the_iin() -> None:
    assert contract_reason(ReasonCode.IDENTITY_MISMATCH) == WireReason.IDENTITY_MISMATCH
    assert set(IIN_MESSAGES) == set(IinCheck)
    for message in IIN_MESSAGES.values():
        assert "IIN" in message
        assert not any(ch.isdigit() for ch in message)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('schema_version = 2\ncategories = ["tax"]', "schema_version"),
        ('schema_version = 1\ncategories = ["taxes"]', "unknown service categories"),
        ('schema_version = 1\ncategories = "tax"', "list of non-empty strings"),
        ('schema_version = 1\nproviders = [""]', "list of non-empty strings"),
        ('schema_version = 1\nprovider = ["kgd"]', "unknown keys"),
    ],
)
def test_malformed_identity_data_is_refused(text: str, error: str) -> None:
    with pytest.raises(IdentityDataError, match=error):
        IinRules.from_toml(text)


def test_identity_data_parses_providers_normalised() -> None:
    rules = IinRules.from_toml('schema_version = 1\ncategories = []\nproviders = ["Tax Office-1"]')
    assert rules.categories == frozenset()
    assert rules.requires_iin("electricity", "tax_office_1")


# -- the contract -----------------------------------------------------------------------------------
def _pay(**kw: object) -> PayService:
    fields: dict[str, object] = {
        "request_id": str(uuid4()),
        "customer_id": str(uuid4()),
        "category": "tax",
        "provider": "kgd-almaty",
        "provider_account": "KBK-104402",
        "amount": 450_000,
    }
    fields.update(kw)
    return PayService.model_validate_json(json.dumps(fields))


def test_pay_service_carries_an_optional_iin_of_twelve_digits() -> None:
    assert _pay().iin is None  # optional: older clients' commands stay valid
    assert _pay(iin=IIN).iin == IIN
    for bad in ("92030345034", "9203034503451", "92030345034x", 920303450345):
        with pytest.raises(ValidationError):
            _pay(iin=bad)
    schema = contract_schema(PayService)
    assert "iin" not in schema.get("required", [])


def test_the_iin_is_sensitive_masked_in_tail_and_in_logs() -> None:
    assert contract_schema(PayService)["properties"]["iin"][SENSITIVE_KEY] is True
    command = _pay(iin=IIN)
    masked = mask_sensitive(PayService, command.model_dump(mode="json"))
    assert masked["iin"] == "***"
    assert masked["provider"] == "kgd-almaty"
    assert IIN not in mask_text(f"PayService {command.model_dump_json()}")
