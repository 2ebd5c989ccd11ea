"""Card-issuer rates, the IIN rules file and payment starts: exact refusals (found by ``make mutation``)."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from services.payments.domain.cards import (
    DEFAULT_RATES_PATH,
    CardProfile,
    NoRateInForce,
    RateDataError,
    RateTable,
    Restriction,
    RestrictionFound,
    UsdRate,
    restriction_for,
)
from services.payments.domain.identity import DEFAULT_IDENTITY_PATH, IdentityDataError, IinRules
from services.payments.domain.status import IllegalStart, PaymentStatus, start
from shared.money import Money

pytestmark = pytest.mark.unit

RATE = UsdRate(date(2025, 1, 1), Decimal("500"), "NBK")


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


def test_a_card_with_online_payments_off_is_refused_with_the_reason() -> None:
    found = restriction_for(
        CardProfile(three_ds=True, online_payments=False), Money.of_tenge(1), online=True, rate=RATE
    )
    assert found == RestrictionFound(
        Restriction.ONLINE_PAYMENTS_OFF, "the cardholder switched online payments off for this card"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"schema_version": 2, "usd_kzt": []}, "schema_version must be 1"),
        ({"schema_version": 1}, "no [[usd_kzt]] rows"),
        ({"schema_version": 1, "usd_kzt": []}, "no [[usd_kzt]] rows"),
        ({"schema_version": 1, "usd_kzt": {"a": 1}}, "no [[usd_kzt]] rows"),
        ({"schema_version": 1, "usd_kzt": ["x"]}, "a [[usd_kzt]] row must be a table, got 'x'"),
    ],
    ids=["schema", "no-rows", "empty-rows", "rows-as-table", "row-as-text"],
)
def test_malformed_rate_files_are_refused(data: dict[str, Any], message: str) -> None:
    with pytest.raises(RateDataError, match=exactly(message)):
        RateTable.from_mapping(data)


def test_a_rate_table_needs_rates_in_date_order() -> None:
    with pytest.raises(RateDataError, match=exactly("no USD/KZT rate")):
        RateTable(())
    later = UsdRate(date(2025, 2, 1), Decimal("510"), "NBK")
    with pytest.raises(RateDataError, match=exactly("rates must be in date order, one per date")):
        RateTable((later, RATE))
    with pytest.raises(RateDataError, match=exactly("rates must be in date order, one per date")):
        RateTable((RATE, RATE))


def test_no_rate_before_the_first_names_the_first() -> None:
    table = RateTable((RATE, UsdRate(date(2025, 2, 1), Decimal("510"), "NBK")))
    with pytest.raises(
        NoRateInForce, match=exactly("no USD/KZT rate in force on 2024-12-31; the first is of 2025-01-01")
    ):
        table.on(date(2024, 12, 31))
    assert table.on(date(2025, 1, 31)) == RATE


def test_the_shipped_rate_file_loads(tmp_path: Path) -> None:
    assert RateTable.load() == RateTable.load(DEFAULT_RATES_PATH)
    mine = tmp_path / "rates.toml"
    mine.write_text(
        'schema_version = 1\n[[usd_kzt]]\neffective_from = 2025-01-01\ntenge_per_usd = "500"\n'
        'source = "NBK"\n'
    )
    assert RateTable.load(mine) == RateTable((RATE,))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("schema_version = 2\n", "schema_version must be 1"),
        ('schema_version = 1\ncategories = [""]\n', "categories must be a list of non-empty strings"),
        ('schema_version = 1\nproviders = "x"\n', "providers must be a list of non-empty strings"),
    ],
    ids=["schema", "blank-category", "providers-as-text"],
)
def test_malformed_iin_rules_are_refused(text: str, message: str) -> None:
    with pytest.raises(IdentityDataError, match=exactly(message)):
        IinRules.from_toml(text)


def test_iin_rules_default_to_nothing_and_load_from_a_file(tmp_path: Path) -> None:
    assert IinRules.from_toml("schema_version = 1\n") == IinRules(frozenset(), frozenset())
    assert IinRules.load() == IinRules.load(DEFAULT_IDENTITY_PATH)
    mine = tmp_path / "identity.toml"
    mine.write_text('schema_version = 1\ncategories = ["tax"]\nproviders = ["KGD-Almaty"]\n')
    assert IinRules.load(mine) == IinRules(frozenset({"tax"}), frozenset({"kgd_almaty"}))


def test_a_payment_cannot_start_refunded() -> None:
    with pytest.raises(IllegalStart) as raised:
        start(PaymentStatus.REFUNDED)
    assert raised.value.status is PaymentStatus.REFUNDED
    assert str(raised.value).startswith("a payment cannot start REFUNDED; it starts ")
