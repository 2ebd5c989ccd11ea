"""Money: exact parsing, Kazakh formatting, currency-safe arithmetic, strict contract fields."""

from __future__ import annotations

from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from shared.money import (
    MAX_TIYN,
    CurrencyMismatch,
    Money,
    MoneyParseError,
    MoneyRangeError,
    PositiveTiyn,
    Tiyn,
)

pytestmark = pytest.mark.unit
NBSP = "\u00a0"
amounts = st.integers(min_value=-MAX_TIYN, max_value=MAX_TIYN)
small = st.integers(min_value=-(10**12), max_value=10**12)


class Paid(BaseModel):
    amount: Tiyn
    fee: PositiveTiyn | None = None


@pytest.mark.parametrize(
    ("text", "tiyn"),
    [("15000.50", 1_500_050), ("15000,5", 1_500_050), ("15 000,50", 1_500_050), ("0.01", 1),
     ("5000", 500_000), ("15\u00a0000,50 ₸", 1_500_050), ("-12.34", -1234), ("007", 700)],
)  # fmt: skip
def test_parse_known(text: str, tiyn: int) -> None:
    assert Money.parse(text).tiyn == tiyn


@pytest.mark.parametrize("text", ["", "abc", "1.234", "1e5", "1.", ".5", "--1", "1,2,3", "NaN", "١٢"])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(MoneyParseError):
        Money.parse(text)


def test_format_as_kazakh_users_read_it() -> None:
    assert Money(1_500_050).format() == f"15{NBSP}000,50{NBSP}₸"
    assert Money(1_500_000).format() == f"15{NBSP}000{NBSP}₸"
    assert Money(5).format() == f"0,05{NBSP}₸"
    assert Money(-200_000).format() == f"-2{NBSP}000{NBSP}₸"
    assert Money(123_456_789_00).format(symbol=False) == f"123{NBSP}456{NBSP}789"


@given(amounts)
def test_format_then_parse_round_trips(tiyn: int) -> None:
    assert Money.parse(Money(tiyn).format()).tiyn == tiyn
    assert Money.parse(Money(tiyn).format(always_fraction=True)).tiyn == tiyn


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=0, max_value=99))
def test_parse_decimal_string_is_exact(tenge: int, tiyn: int) -> None:
    assert Money.parse(f"{tenge}.{tiyn:02d}").tiyn == tenge * 100 + tiyn


@given(small, small, small)
def test_addition_is_associative_and_subtraction_inverts(a: int, b: int, c: int) -> None:
    x, y, z = Money(a), Money(b), Money(c)
    assert (x + y) + z == x + (y + z)
    assert (x + y) - y == x
    assert x + Money.zero() == x
    assert (-x).tiyn == -a
    assert x - x == Money.zero()


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=1, max_value=12))
def test_split_sums_exactly_with_remainder_first(tiyn: int, parts: int) -> None:
    pieces = Money(tiyn).split(parts)
    assert sum(p.tiyn for p in pieces) == tiyn
    assert len(pieces) == parts
    assert all(p.tiyn == pieces[1].tiyn for p in pieces[1:])
    assert 0 <= pieces[0].tiyn - pieces[-1].tiyn < parts


@given(st.integers(min_value=0, max_value=10**12), st.decimals(min_value=0, max_value=100, places=2))
def test_percent_rounding_bounds(tiyn: int, rate: object) -> None:
    up = Money(tiyn).percent(str(rate), "half_up").tiyn
    down = Money(tiyn).percent(str(rate), "down").tiyn
    assert 0 <= down <= up <= down + 1
    assert down <= tiyn


def test_percent_half_up_and_down() -> None:
    assert Money(1050).percent("0.5").tiyn == 5  # 5.25 → 5
    assert Money(1100).percent("0.5").tiyn == 6  # 5.5 → 6 (half up, domain brief §2)
    assert Money(1199).percent("1", "down").tiyn == 11
    with pytest.raises(TypeError):
        Money(100).percent(cast(Any, 0.5))


def test_currencies_never_mix() -> None:

    usd = object.__new__(Money)
    object.__setattr__(usd, "tiyn", 100)
    object.__setattr__(usd, "currency", "USD")
    with pytest.raises(CurrencyMismatch):
        Money(100) + usd
    with pytest.raises(CurrencyMismatch):
        _ = Money(100) < usd
    with pytest.raises(TypeError):
        Money(100) + 100  # type: ignore[operator]
    with pytest.raises(TypeError):
        Money(100) * 1.5  # type: ignore[operator]


def test_range_is_enforced() -> None:
    with pytest.raises(MoneyRangeError):
        Money(MAX_TIYN + 1)
    with pytest.raises(MoneyRangeError):
        Money(MAX_TIYN) + Money(1)


@pytest.mark.parametrize("bad", [1.0, 1.5, True, False, "100", -1, MAX_TIYN + 1, None])
def test_contract_field_rejects_floats_bools_strings_and_out_of_range(bad: object) -> None:
    with pytest.raises(ValidationError):
        Paid.model_validate({"amount": bad})


@pytest.mark.parametrize("raw", ['{"amount": 1.0}', '{"amount": true}', '{"amount": "5"}', '{"amount": -5}',
                                 '{"amount": 1e3}', f'{{"amount": {MAX_TIYN + 1}}}'])  # fmt: skip
def test_contract_field_rejects_bad_json(raw: str) -> None:
    with pytest.raises(ValidationError):
        Paid.model_validate_json(raw)


def test_positive_tiyn_rejects_zero() -> None:
    with pytest.raises(ValidationError):
        Paid(amount=0, fee=0)
    assert Paid.model_validate_json('{"amount": 0, "fee": 1}').fee == 1
