"""Receipt numbers and masking."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.payments.domain import mask_account, mask_payer_name, parse_receipt_number, receipt_number

pytestmark = pytest.mark.unit


def test_receipt_number_format() -> None:
    assert receipt_number(42, date(2025, 3, 14)) == "AQ-20250314-00000042"


def test_receipt_date_is_the_almaty_business_date() -> None:
    # 20:30 UTC on 14 March is already 15 March in Almaty.
    late = datetime(2025, 3, 14, 20, 30, tzinfo=UTC)
    assert receipt_number(1, late) == "AQ-20250315-00000001"
    local = datetime(2025, 3, 14, 23, 59, tzinfo=ZoneInfo("Asia/Almaty"))
    assert receipt_number(1, local) == "AQ-20250314-00000001"


@pytest.mark.parametrize("sequence", [0, -1, 10**8])
def test_receipt_sequence_range(sequence: int) -> None:
    with pytest.raises(ValueError, match="sequence"):
        receipt_number(sequence, date(2025, 1, 1))


def test_naive_receipt_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        receipt_number(1, datetime(2025, 1, 1))


@given(st.integers(min_value=1, max_value=10**8 - 1), st.dates(min_value=date(2000, 1, 1)))
def test_receipt_number_round_trips(sequence: int, day: date) -> None:
    assert parse_receipt_number(receipt_number(sequence, day)) == (day, sequence)


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("Aigerim Sultanova", "Aigerim S."),
        ("  Aigerim   sultanova ", "Aigerim S."),
        ("Айгерим Султанова Маратовна", "Айгерим С."),
        ("Әлия Ұлықбекқызы", "Әлия Ұ."),
        ("Aigerim", "Aigerim"),
        ("", ""),
    ],
)
def test_mask_payer_name(name: str, masked: str) -> None:
    assert mask_payer_name(name) == masked


@pytest.mark.parametrize(
    ("account", "masked"),
    [
        ("KZ12 3456 7890 1234 5678", "****5678"),
        ("4400-4301-2345-6789", "****6789"),
        ("+77011234567", "****4567"),
        ("1234", "****"),
        ("", ""),
    ],
)
def test_mask_account(account: str, masked: str) -> None:
    assert mask_account(account) == masked
