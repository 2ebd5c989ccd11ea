"""The contracts' validators: exact refusals, boundaries and registration (found by ``make mutation``).

``test_contracts.py`` checks that bad records are refused with the right code; these pin what the
refusal says (the dead-letter reason an operator reads) and the boundaries of the model validators.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
from pydantic import Field, ValidationError

from shared.contracts import registry
from shared.contracts.base import Command, Event
from shared.contracts.billing import RedPurchaseApproved, RepaymentApplied
from shared.contracts.envelope import ContractError, decode, decode_as, encode, new_envelope
from shared.contracts.payments import PaymentCompleted, PaymentRefunded, PayService, Purchase
from shared.contracts.samples import sample

pytestmark = pytest.mark.unit

NOW = datetime(2025, 3, 1, tzinfo=UTC)


def record(payload: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(encode(new_envelope(payload, producer="test", occurred_at=NOW)))
    return doc


def refusal(doc: object) -> tuple[str, str]:
    with pytest.raises(ContractError) as raised:
        decode(json.dumps(doc).encode())
    return raised.value.code, raised.value.message


def test_a_refusal_names_the_first_field_and_counts_the_rest() -> None:
    doc = record(sample(PayService))
    doc["payload"]["amount"] = -1
    assert refusal(doc) == ("invalid_payload", "PayService.amount: Input should be greater than 0")
    doc["payload"]["channel"] = "X"
    assert refusal(doc) == (
        "invalid_payload",
        "PayService.channel: Input should be 'APP', 'TERMINAL', 'ATM' or 'CASHIER' (+1 more)",
    )


def test_a_nested_field_is_named_by_its_path() -> None:
    doc = record(sample(RepaymentApplied))
    doc["payload"]["allocation"]["to_bill"] = -1
    code, message = refusal(doc)
    assert code == "invalid_payload"
    assert message.startswith(
        "RepaymentApplied.allocation.to_bill: Input should be greater than or equal to 0"
    )


def test_an_envelope_refusal_names_the_field_or_the_root() -> None:
    doc = record(sample(PayService))
    del doc["payload"]
    assert refusal(doc) == ("invalid_envelope", "payload: Field required")
    assert refusal([1]) == ("invalid_envelope", "<root>: Input should be an object")


def test_decode_as_lists_what_it_expected() -> None:
    raw = encode(new_envelope(sample(PayService), producer="test", occurred_at=NOW))
    with pytest.raises(ContractError) as raised:
        decode_as(raw, PaymentCompleted, Purchase)
    assert raised.value.message == "got PayService v1, expected one of: PaymentCompleted v1, Purchase v1"
    assert isinstance(decode_as(raw, PaymentCompleted, PayService).payload, PayService)


def _with(model: type[Any], **changes: Any) -> Any:
    return model.model_validate({**sample(model).model_dump(), **changes})


def test_refund_totals_may_touch_both_bounds() -> None:
    # amount <= total_refunded <= original_amount, both ends included.
    assert _with(PaymentRefunded, amount=5, total_refunded=12, original_amount=12).total_refunded == 12
    for changes in ({"total_refunded": 13, "original_amount": 12}, {"amount": 5, "total_refunded": 4}):
        with pytest.raises(
            ValidationError, match=re.escape("need amount <= total_refunded <= original_amount")
        ):
            _with(PaymentRefunded, **changes)


def test_parts_and_allocations_must_add_up() -> None:
    with pytest.raises(ValidationError, match=re.escape("Value error, parts must sum to amount")):
        _with(RedPurchaseApproved, amount=11_700_002)
    repayment = sample(RepaymentApplied)
    money_in = repayment.amount + 1 + repayment.allocation.prepayment_used
    message = f"allocation sums to {repayment.allocation.total}, amount + prepayment_used is {money_in}"
    with pytest.raises(ValidationError, match=re.escape(message)):
        _with(RepaymentApplied, amount=repayment.amount + 1)


@pytest.fixture
def empty_registry(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A registry of its own for the classes a test defines (restored afterwards)."""
    contracts: dict[str, Any] = {}
    monkeypatch.setattr(registry, "CONTRACTS", contracts)
    monkeypatch.setattr(registry, "_VERSIONS", {})
    return contracts


def test_a_concrete_event_registers_under_its_class_name(empty_registry: dict[str, Any]) -> None:
    class ProbeHappened(Event):
        """A probe."""

        n: int = Field(description="n")

    assert empty_registry == {"ProbeHappened": ProbeHappened}
    assert (ProbeHappened.TYPE, ProbeHappened.VERSION, ProbeHappened.KIND) == ("ProbeHappened", 1, "event")
    assert ProbeHappened.ABSTRACT is False


def test_abstract_bases_and_explicit_types(empty_registry: dict[str, Any]) -> None:
    class ProbeBase(Command):
        """An intermediate base."""

        ABSTRACT: ClassVar[bool] = True

    class ProbeDo(ProbeBase):
        """A concrete command under an explicit type name."""

        TYPE: ClassVar[str] = "ProbeRenamed"

    assert empty_registry == {"ProbeRenamed": ProbeDo}
    assert ProbeDo.ABSTRACT is False
    assert ProbeBase.ABSTRACT is True


@pytest.mark.parametrize("version", [0, True, "1"])
def test_a_version_is_an_int_from_1(empty_registry: dict[str, Any], version: object) -> None:
    with pytest.raises(TypeError, match=r"^ProbeVersioned\.VERSION must be an int >= 1$"):

        class ProbeVersioned(Event):
            """A badly versioned probe."""

            VERSION: ClassVar[Any] = version

    assert empty_registry == {}
