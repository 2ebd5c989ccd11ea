"""Money as integer tiyn (1 ₸ = 100 tiyn). Never a float.

Two shapes, one rule set:

* ``Tiyn`` / ``PositiveTiyn`` / ``SignedTiyn`` are pydantic field types for contracts. They are
  strict integers: floats (even ``1.0``), bools and numeric strings are rejected, and so are
  values outside ``[-MAX_TIYN, MAX_TIYN]``.
* ``Money`` is the value object domain code computes with. It carries a currency, and
  arithmetic or comparison across currencies raises ``CurrencyMismatch``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Annotated, Any, Final, Literal

from pydantic import Field, GetCoreSchemaHandler
from pydantic_core import core_schema

Currency = Literal["KZT"]
KZT: Final = "KZT"
TIYN_PER_TENGE: Final = 100
# 10^15 tiyn = 10 trillion ₸: far above any single Kazakh retail amount, far below 2^63.
MAX_TIYN: Final = 10**15
# Money.percent's rounding modes: half up is the fee rule, down the cashback rule.
_ROUNDING: Final = {"half_up": ROUND_HALF_UP, "down": ROUND_DOWN}

Tiyn = Annotated[
    int,
    Field(strict=True, ge=0, le=MAX_TIYN, description="Amount in tiyn (1 ₸ = 100 tiyn), non-negative."),
]
PositiveTiyn = Annotated[
    int,
    Field(strict=True, gt=0, le=MAX_TIYN, description="Amount in tiyn (1 ₸ = 100 tiyn), greater than zero."),
]
SignedTiyn = Annotated[
    int,
    Field(strict=True, ge=-MAX_TIYN, le=MAX_TIYN, description="Signed amount in tiyn (1 ₸ = 100 tiyn)."),
]


class MoneyError(ValueError):
    """Base class for money errors."""


class CurrencyMismatch(MoneyError):
    """Raised when two amounts in different currencies meet in one operation."""


class MoneyParseError(MoneyError):
    """Raised when a string is not an exact amount in tenge."""


class MoneyRangeError(MoneyError):
    """Raised when an amount leaves the supported range."""


_AMOUNT_RE = re.compile(r"^(?P<sign>-)?(?P<int>[0-9]+)(?:[.,](?P<frac>[0-9]{1,2}))?$")


def _check_range(tiyn: int) -> int:
    if isinstance(tiyn, bool) or not isinstance(tiyn, int):
        raise MoneyError(f"amount must be an int of tiyn, got {type(tiyn).__name__}")
    if not -MAX_TIYN <= tiyn <= MAX_TIYN:
        raise MoneyRangeError(f"amount {tiyn} tiyn is outside ±{MAX_TIYN}")
    return tiyn


@dataclass(frozen=True, slots=True, order=False)
class Money:
    """An exact amount of one currency, in minor units (tiyn for KZT)."""

    tiyn: int
    currency: str = KZT

    def __post_init__(self) -> None:
        _check_range(self.tiyn)
        if self.currency != KZT:
            # Only KZT is modelled; the field exists so that mixing is caught, not silently summed.
            raise MoneyError(f"unsupported currency {self.currency!r}")

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def zero(cls, currency: str = KZT) -> Money:
        """The zero amount."""
        return cls(0, currency)

    @classmethod
    def of_tenge(cls, tenge: int, currency: str = KZT) -> Money:
        """Whole tenge to money: ``Money.of_tenge(5000)`` is 5,000 ₸."""
        return cls(_check_range(tenge * TIYN_PER_TENGE), currency)

    @classmethod
    def parse(cls, text: str, currency: str = KZT) -> Money:
        """Exactly parse ``"15000.50"``, ``"15 000,50"`` or ``"15000"`` (tenge) into money.

        More than two fractional digits is an error, never a rounding: the brief says amounts are
        entered "down to the tiyn".
        """
        if not isinstance(text, str):
            raise MoneyParseError(f"expected a string, got {type(text).__name__}")
        cleaned = text.strip().replace("\u00a0", "").replace("\u202f", "").replace(" ", "")
        cleaned = cleaned.removesuffix("₸").removesuffix("KZT").strip()
        match = _AMOUNT_RE.match(cleaned)
        if match is None:
            raise MoneyParseError(f"not an amount in tenge: {text!r}")
        frac = (match["frac"] or "").ljust(2, "0")
        tiyn = int(match["int"]) * TIYN_PER_TENGE + int(frac or "0")
        if match["sign"]:
            tiyn = -tiyn
        return cls(_check_range(tiyn), currency)

    # -- arithmetic ---------------------------------------------------------------------------
    def _same(self, other: object) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(f"{self.currency} vs {other.currency}")
        return other

    def __add__(self, other: Money) -> Money:
        return Money(self.tiyn + self._same(other).tiyn, self.currency)

    def __sub__(self, other: Money) -> Money:
        return Money(self.tiyn - self._same(other).tiyn, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.tiyn, self.currency)

    def __mul__(self, factor: int) -> Money:
        if isinstance(factor, bool) or not isinstance(factor, int):
            raise TypeError("money multiplies only by an int; use .percent() for rates")
        return Money(self.tiyn * factor, self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        return self.tiyn < self._same(other).tiyn

    def __le__(self, other: Money) -> bool:
        return self.tiyn <= self._same(other).tiyn

    def __gt__(self, other: Money) -> bool:
        return self.tiyn > self._same(other).tiyn

    def __ge__(self, other: Money) -> bool:
        return self.tiyn >= self._same(other).tiyn

    def __bool__(self) -> bool:
        return self.tiyn != 0

    @property
    def is_negative(self) -> bool:
        """True below zero."""
        return self.tiyn < 0

    def percent(self, rate: Decimal | str | int, rounding: Literal["half_up", "down"] = "half_up") -> Money:
        """``rate`` percent of this amount, rounded to the tiyn.

        ``half_up`` is the fee rule (domain brief §2: "round half up to the tiyn");
        ``down`` is the cashback rule (never pay out a fraction of a tiyn not earned).
        """
        if isinstance(rate, float):
            raise TypeError("rates are Decimal, str or int, never float")
        # An unknown mode is refused, not read as "down": a typo must not change what is paid.
        if rounding not in _ROUNDING:
            raise ValueError(f"rounding must be 'half_up' or 'down', got {rounding!r}")
        value = Decimal(self.tiyn) * Decimal(rate) / Decimal(100)
        mode = _ROUNDING[rounding]
        return Money(int(value.quantize(Decimal(1), rounding=mode)), self.currency)

    def split(self, parts: int) -> list[Money]:
        """Split into ``parts`` integer amounts summing exactly to this one.

        Remainder tiyn go on the first part (domain brief §4, interpretation for Red plans).
        """
        if parts <= 0:
            raise ValueError("parts must be positive")
        if self.tiyn < 0:
            raise MoneyError("cannot split a negative amount")
        base, rest = divmod(self.tiyn, parts)
        return [Money(base + (rest if i == 0 else 0), self.currency) for i in range(parts)]

    # -- presentation -------------------------------------------------------------------------
    def format(self, *, symbol: bool = True, always_fraction: bool = False) -> str:
        """As Kazakh users read it: ``15 000,50 ₸``; whole amounts as ``15 000 ₸``.

        Thousands are grouped, and the ₸ sign attached, with a no-break space (U+00A0) so that an
        amount never wraps across lines in an app, SMS or PDF; the decimal mark is a comma.
        """
        sign = "-" if self.tiyn < 0 else ""
        whole, frac = divmod(abs(self.tiyn), TIYN_PER_TENGE)
        grouped = f"{whole:,}".replace(",", "\u00a0")
        text = f"{sign}{grouped}"
        if frac or always_fraction:
            text += f",{frac:02d}"
        return f"{text}\u00a0₸" if symbol else text

    def __str__(self) -> str:
        return self.format()

    # -- pydantic ------------------------------------------------------------------------------
    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        """Validate from ``{"tiyn": int, "currency": "KZT"}`` or a Money; serialise to that dict."""

        def from_dict(value: dict[str, Any]) -> Money:
            return Money(value["tiyn"], value.get("currency", KZT))

        dict_schema = core_schema.chain_schema(
            [
                core_schema.typed_dict_schema(
                    {
                        "tiyn": core_schema.typed_dict_field(
                            core_schema.int_schema(strict=True, ge=-MAX_TIYN, le=MAX_TIYN)
                        ),
                        "currency": core_schema.typed_dict_field(
                            core_schema.literal_schema([KZT]), required=False
                        ),
                    }
                ),
                core_schema.no_info_plain_validator_function(from_dict),
            ]
        )
        return core_schema.json_or_python_schema(
            json_schema=dict_schema,
            python_schema=core_schema.union_schema([core_schema.is_instance_schema(cls), dict_schema]),
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda m: {"tiyn": m.tiyn, "currency": m.currency}
            ),
        )


def fmt_tiyn(tiyn: int) -> str:
    """Format an integer tiyn amount in KZT (``1500050`` → ``15 000,50 ₸``)."""
    return Money(tiyn).format()


def tenge_to_tiyn(tenge: int) -> int:
    """Whole tenge as integer tiyn, the contracts' unit (``150`` → ``15000``), range-checked."""
    return _check_range(tenge * TIYN_PER_TENGE)
