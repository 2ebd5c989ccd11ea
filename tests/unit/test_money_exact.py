"""shared.money: the edges and refusals ``test_money.py`` left open (found by ``make mutation``).

Money in a pydantic model (the contracts' field type), what ``parse`` accepts, and each refusal's
message.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from shared.money import (
    MAX_TIYN,
    Money,
    MoneyError,
    MoneyParseError,
    MoneyRangeError,
)

pytestmark = pytest.mark.unit


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


def test_money_as_a_model_field_round_trips_through_json() -> None:
    # The class is made here, inside the test: Money's pydantic schema hook runs when a model is built.
    class Priced(BaseModel):
        model_config = ConfigDict(strict=True)
        price: Money

    priced = Priced(price=Money(150_050))
    dumped = priced.model_dump_json()
    assert Priced.model_validate_json(dumped) == priced
    assert Priced.model_validate({"price": Money(5)}).price == Money(5)
    assert priced.model_dump(mode="json") == Priced.model_validate_json(dumped).model_dump(mode="json")
    for bad in ('{"price": "12"}', '{"price": 1.5}', '{"price": true}'):
        with pytest.raises(ValidationError):
            Priced.model_validate_json(bad)


@pytest.mark.parametrize(
    ("text", "tiyn"),
    [
        ("15\u202f000,50\u00a0₸", 1_500_050),
        ("15 000.5 KZT", 1_500_050),
        ("7KZT", 700),
        ("-0,01", -1),
        ("12", 1_200),
    ],
)
def test_parse_reads_what_people_write(text: str, tiyn: int) -> None:
    assert Money.parse(text) == Money(tiyn)


@pytest.mark.parametrize("text", ["KZT 7", "7 kzt", "1.234", "", "1,2,3"])
def test_parse_refuses_anything_else(text: str) -> None:
    with pytest.raises(MoneyParseError, match=exactly(f"not an amount in tenge: {text!r}")):
        Money.parse(text)


def test_parse_refuses_what_is_not_text() -> None:
    with pytest.raises(MoneyParseError, match=exactly("expected a string, got int")):
        Money.parse(12)  # type: ignore[arg-type]


def test_the_range_is_inclusive_and_refusals_say_why() -> None:
    assert Money(-MAX_TIYN).tiyn == -MAX_TIYN
    assert Money(MAX_TIYN).tiyn == MAX_TIYN
    with pytest.raises(MoneyRangeError, match=exactly(f"amount {MAX_TIYN + 1} tiyn is outside ±{MAX_TIYN}")):
        Money(MAX_TIYN + 1)
    with pytest.raises(MoneyError, match=exactly("amount must be an int of tiyn, got bool")):
        Money(True)
    with pytest.raises(MoneyError, match=exactly("amount must be an int of tiyn, got float")):
        Money(1.0)  # type: ignore[arg-type]
    with pytest.raises(MoneyError, match=exactly("unsupported currency 'USD'")):
        Money(1, "USD")


def test_arithmetic_refusals_say_why() -> None:
    with pytest.raises(TypeError, match=exactly("cannot combine Money with int")):
        Money(1) + 1  # type: ignore[operator]
    with pytest.raises(TypeError, match=exactly("money multiplies only by an int; use .percent() for rates")):
        Money(1) * 1.5  # type: ignore[operator]
    with pytest.raises(TypeError, match=exactly("rates are Decimal, str or int, never float")):
        Money(100).percent(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=exactly("rounding must be 'half_up' or 'down', got 'up'")):
        Money(100).percent(Decimal(1), "up")  # type: ignore[arg-type]


def test_split_refusals_say_why() -> None:
    assert Money(5).split(1) == [Money(5)]
    for parts in (0, -1):
        with pytest.raises(ValueError, match=exactly("parts must be positive")):
            Money(5).split(parts)
    with pytest.raises(MoneyError, match=exactly("cannot split a negative amount")):
        Money(-5).split(2)
