"""PaymentFacts and its enums: aligned with the wire contracts, validated on construction."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum

import pytest

from services.bonus.domain import Funding, Merchant, PaymentKind, business_date
from shared.contracts import common
from shared.money import Money

from .builders import payment

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("local", "wire"),
    [(PaymentKind, common.PaymentKind), (Merchant, common.Merchant), (Funding, common.Funding)],
)
def test_enums_mirror_the_contracts(local: type[StrEnum], wire: type[StrEnum]) -> None:
    # The adapter maps PaymentCompleted to PaymentFacts by value; drift would fail there.
    assert {m.value for m in local} == {m.value for m in wire}


def test_business_date_is_the_almaty_date() -> None:
    # Almaty is UTC+5 since 2024-03-01 (tzdata 2024a): 19:00 UTC is already the next day there.
    assert business_date(datetime(2025, 1, 1, 19, 0, tzinfo=UTC)) == date(2025, 1, 2)
    assert business_date(datetime(2025, 1, 1, 18, 59, tzinfo=UTC)) == date(2025, 1, 1)


def test_amount_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        payment(amount=Money.zero())


def test_ids_are_required() -> None:
    with pytest.raises(ValueError, match="required"):
        payment(payment_id="")
