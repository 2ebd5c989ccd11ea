"""Receipt numbers and the payer's masked name."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.payments.domain import mask_payer_name, receipt_number

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
def test_receipt_number_names_its_date_and_sequence(sequence: int, day: date) -> None:
    number = receipt_number(sequence, day)
    assert re.fullmatch(r"AQ-\d{8}-\d{8}", number)
    assert number == f"AQ-{day:%Y%m%d}-{sequence:08d}"


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
