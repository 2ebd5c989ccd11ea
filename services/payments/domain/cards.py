"""Card issuers' rules for online payments with another bank's card (seed 003).

seed 003 (Homebank's list of online-payment errors and their causes):

* "The bank that issued your card has put restrictions on its use ... Example: a Qazkom card has a
  restriction on paying more than 100 USD, in any currency, in online shops. You need to set up
  the 3DSecure/SecureCode password." → ``OVER_LIMIT_WITHOUT_3DS``.
* A cardholder can switch online payments off for a card ("then there will be no online
  payments") → ``ONLINE_PAYMENTS_OFF``.
* With 3-D Secure set up, an online payment is confirmed with a code the issuer sends to the
  cardholder's trusted number ("dynamic" scheme) → the issuer's code, see ``needs_three_ds``.

Interpretations (docs/payments.md "Card payments"): a payment is *online* when it is made in the
app (channel APP); the USD equivalent is that of the **total to be charged** (amount + fee) at the
USD/KZT rate in force on the payment's Asia/Almaty business date (``services/payments/fx_rates.toml``);
"more than 100 USD" is strict, so exactly 100 USD passes. Arithmetic is exact: integer tiyn against
a ``Decimal`` limit, never a float.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from services.payments.domain.requests import Channel
from shared.money import TIYN_PER_TENGE, Money

DEFAULT_RATES_PATH: Final = Path(__file__).resolve().parent.parent / "fx_rates.toml"
#: seed 003: the example issuer refuses online payments above 100 USD without 3-D Secure.
ONLINE_LIMIT_USD: Final = Decimal(100)
#: Interpretation: payments made in the app are the "online payments" of seed 003.
ONLINE_CHANNELS: Final = frozenset({Channel.APP})
_CENT: Final = Decimal("0.01")


class RateDataError(ValueError):
    """The rate file is malformed (a float, a missing field, two rates on one date, …)."""


class NoRateInForce(LookupError):
    """No USD/KZT rate is in force on the date asked for (it precedes the first one)."""


def is_online(channel: Channel) -> bool:
    """Whether a payment made through ``channel`` is an online payment (interpretation: APP)."""
    return channel in ONLINE_CHANNELS


@dataclass(frozen=True, slots=True)
class UsdRate:
    """One USD/KZT rate: tenge per US dollar, in force from ``effective_from`` (an Almaty date)."""

    effective_from: date
    tenge_per_usd: Decimal
    source: str

    def __post_init__(self) -> None:
        if not self.tenge_per_usd.is_finite() or self.tenge_per_usd <= 0:
            raise RateDataError(f"rate of {self.effective_from} must be positive, got {self.tenge_per_usd}")

    def tiyn_of(self, usd: Decimal) -> Decimal:
        """The exact equivalent of ``usd`` in tiyn (a ``Decimal``: it may have a fraction of a tiyn)."""
        return usd * self.tenge_per_usd * TIYN_PER_TENGE

    def usd_of(self, amount: Money) -> Decimal:
        """The USD equivalent of ``amount`` for display, rounded down to the cent (never used to decide)."""
        exact = Decimal(amount.tiyn) / (self.tenge_per_usd * TIYN_PER_TENGE)
        return exact.quantize(_CENT, rounding=ROUND_DOWN)

    def exceeds(self, amount: Money, usd: Decimal) -> bool:
        """Whether ``amount`` is *more than* the equivalent of ``usd`` (exact comparison)."""
        return Decimal(amount.tiyn) > self.tiyn_of(usd)


@dataclass(frozen=True, slots=True)
class RateTable:
    """Effective-dated USD/KZT rates: each applies from its date until the next one's."""

    rates: tuple[UsdRate, ...]

    def __post_init__(self) -> None:
        if not self.rates:
            raise RateDataError("no USD/KZT rate")
        dates = [r.effective_from for r in self.rates]
        if dates != sorted(dates) or len(set(dates)) != len(dates):
            raise RateDataError("rates must be in date order, one per date")

    @classmethod
    def load(cls, path: Path | None = None) -> RateTable:
        """Load and check the rate file (default ``services/payments/fx_rates.toml``)."""
        with (path or DEFAULT_RATES_PATH).open("rb") as handle:
            return cls.from_mapping(tomllib.load(handle))

    @classmethod
    def from_toml(cls, text: str) -> RateTable:
        """Parse and check rate data given as TOML text."""
        return cls.from_mapping(tomllib.loads(text))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> RateTable:
        """Build from parsed TOML; ``RateDataError`` on anything malformed."""
        if data.get("schema_version") != 1:
            raise RateDataError("schema_version must be 1")
        rows = data.get("usd_kzt")
        if not isinstance(rows, list) or not rows:
            raise RateDataError("no [[usd_kzt]] rows")
        rates = [_rate(row) for row in rows]
        return cls(tuple(sorted(rates, key=lambda r: r.effective_from)))

    def on(self, day: date) -> UsdRate:
        """The rate in force on ``day``: the latest whose ``effective_from`` is not after it."""
        in_force = [r for r in self.rates if r.effective_from <= day]
        if not in_force:
            raise NoRateInForce(
                f"no USD/KZT rate in force on {day}; the first is of {self.rates[0].effective_from}"
            )
        return in_force[-1]


def _rate(row: Any) -> UsdRate:
    if not isinstance(row, dict):
        raise RateDataError(f"a [[usd_kzt]] row must be a table, got {row!r}")
    effective, value, source = row.get("effective_from"), row.get("tenge_per_usd"), row.get("source")
    if not isinstance(effective, date) or hasattr(effective, "hour"):
        raise RateDataError(f"effective_from must be a TOML date, got {effective!r}")
    if not isinstance(value, str):
        # Floats are refused: a binary fraction must never touch money (like tariffs.toml).
        raise RateDataError(f"tenge_per_usd of {effective} must be a decimal string, got {value!r}")
    if not isinstance(source, str) or not source.strip():
        raise RateDataError(f"the rate of {effective} needs its source")
    try:
        rate = Decimal(value)
    except InvalidOperation:
        raise RateDataError(f"tenge_per_usd of {effective} is not a decimal: {value!r}") from None
    return UsdRate(effective, rate, source.strip())


class Restriction(StrEnum):
    """Why an issuer refuses a card payment (all map to the wire reason ISSUER_RESTRICTION)."""

    ONLINE_PAYMENTS_OFF = "ONLINE_PAYMENTS_OFF"
    OVER_LIMIT_WITHOUT_3DS = "OVER_LIMIT_WITHOUT_3DS"
    AUTHENTICATION_REQUIRED = "AUTHENTICATION_REQUIRED"


@dataclass(frozen=True, slots=True)
class CardProfile:
    """What the issuer knows about one of its cards."""

    three_ds: bool
    online_payments: bool = True


@dataclass(frozen=True, slots=True)
class RestrictionFound:
    """An issuer's refusal with its words (amounts, rate and date for the over-limit case)."""

    restriction: Restriction
    message: str


def needs_three_ds(card: CardProfile, *, online: bool) -> bool:
    """seed 003: an online payment with a 3-D Secure card is confirmed with the issuer's code."""
    return online and card.three_ds


def restriction_for(
    card: CardProfile,
    total: Money,
    *,
    online: bool,
    rate: UsdRate,
    limit_usd: Decimal = ONLINE_LIMIT_USD,
) -> RestrictionFound | None:
    """The issuer's restriction on charging ``total`` to ``card``, or None when it may go on.

    seed 003: online payments can be switched off for a card; without 3-D Secure, online payments
    of more than ``limit_usd`` (100 USD) are refused. A card with 3-D Secure is not limited: its
    payments are confirmed with the issuer's code instead.
    """
    if not online:
        return None
    if not card.online_payments:
        return RestrictionFound(
            Restriction.ONLINE_PAYMENTS_OFF, "the cardholder switched online payments off for this card"
        )
    if not card.three_ds and rate.exceeds(total, limit_usd):
        return RestrictionFound(
            Restriction.OVER_LIMIT_WITHOUT_3DS,
            f"online payments above {limit_usd} USD need 3-D Secure: {total} is about "
            f"{rate.usd_of(total)} USD at {rate.tenge_per_usd} ₸/USD "
            f"(rate of {rate.effective_from:%d.%m.%Y})",
        )
    return None
