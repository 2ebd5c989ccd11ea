"""Card issuers' rules (seed 003): the 100 USD online restriction, its effective-dated rate, 3-D Secure."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.payments.domain import Channel
from services.payments.domain.cards import (
    ONLINE_LIMIT_USD,
    CardProfile,
    NoRateInForce,
    RateDataError,
    RateTable,
    Restriction,
    UsdRate,
    is_online,
    needs_three_ds,
    restriction_for,
)
from shared.money import Money

pytestmark = pytest.mark.unit

RATE = UsdRate(date(2025, 10, 1), Decimal("540.00"), "test")
PLAIN = CardProfile(three_ds=False)
THREE_DS = CardProfile(three_ds=True)
OFF = CardProfile(three_ds=True, online_payments=False)
LIMIT_TIYN = 5_400_000  # 100 USD at 540.00 ₸/USD = 54 000,00 ₸


def test_the_committed_rate_file_loads_with_dates_and_sources() -> None:
    table = RateTable.load()
    assert table.rates, "no rate"
    assert all(r.source for r in table.rates)
    assert table.on(date(2025, 10, 20)).tenge_per_usd == Decimal("540.00")
    assert table.on(date(2025, 9, 30)).tenge_per_usd == Decimal("525.00")


def test_the_rate_in_force_is_the_latest_not_after_the_date() -> None:
    table = RateTable.from_toml(
        """
        schema_version = 1
        [[usd_kzt]]
        effective_from = 2025-10-01
        tenge_per_usd = "540.00"
        source = "b"
        [[usd_kzt]]
        effective_from = 2025-01-01
        tenge_per_usd = "525.50"
        source = "a"
        """
    )
    assert table.on(date(2025, 1, 1)).tenge_per_usd == Decimal("525.50")
    assert table.on(date(2025, 9, 30)).source == "a"
    assert table.on(date(2025, 10, 1)).source == "b"
    assert table.on(date(2030, 1, 1)).source == "b"
    with pytest.raises(NoRateInForce):
        table.on(date(2024, 12, 31))


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('effective_from = 2025-01-01\ntenge_per_usd = 540.0\nsource = "x"', "decimal string"),
        ('effective_from = 2025-01-01\ntenge_per_usd = "abc"\nsource = "x"', "not a decimal"),
        ('effective_from = 2025-01-01\ntenge_per_usd = "-1"\nsource = "x"', "positive"),
        ('effective_from = 2025-01-01\ntenge_per_usd = "540"\nsource = " "', "source"),
        ('effective_from = "2025-01-01"\ntenge_per_usd = "540"\nsource = "x"', "TOML date"),
        ('effective_from = 2025-01-01T10:00:00\ntenge_per_usd = "540"\nsource = "x"', "TOML date"),
    ],
)
def test_malformed_rates_are_refused(body: str, problem: str) -> None:
    with pytest.raises(RateDataError, match=problem):
        RateTable.from_toml(f"schema_version = 1\n[[usd_kzt]]\n{body}\n")


def test_two_rates_on_one_date_or_no_rate_are_refused() -> None:
    row = '[[usd_kzt]]\neffective_from = 2025-01-01\ntenge_per_usd = "540"\nsource = "x"\n'
    with pytest.raises(RateDataError, match="one per date"):
        RateTable.from_toml("schema_version = 1\n" + row + row)
    with pytest.raises(RateDataError, match="no \\[\\[usd_kzt\\]\\]"):
        RateTable.from_toml("schema_version = 1\n")
    with pytest.raises(RateDataError, match="schema_version"):
        RateTable.from_toml(row)


def test_the_limit_is_exact_and_strict() -> None:
    # seed 003: "more than 100 USD": exactly 100 USD passes, one tiyn more does not.
    assert RATE.tiyn_of(ONLINE_LIMIT_USD) == LIMIT_TIYN
    assert not RATE.exceeds(Money(LIMIT_TIYN), ONLINE_LIMIT_USD)
    assert RATE.exceeds(Money(LIMIT_TIYN + 1), ONLINE_LIMIT_USD)


def test_a_fractional_rate_keeps_the_comparison_exact() -> None:
    rate = UsdRate(date(2025, 1, 1), Decimal("523.37"), "test")  # 100 USD = 52 337,00 ₸
    assert not rate.exceeds(Money(5_233_700), Decimal(100))
    assert rate.exceeds(Money(5_233_701), Decimal(100))
    odd = UsdRate(date(2025, 1, 1), Decimal("523.375"), "test")  # 100 USD = 52 337,50 ₸
    assert not odd.exceeds(Money(5_233_750), Decimal(100))
    assert odd.exceeds(Money(5_233_751), Decimal(100))


def test_the_usd_equivalent_for_messages_is_rounded_down_to_the_cent() -> None:
    assert RATE.usd_of(Money(6_010_000)) == Decimal("111.29")  # 60 100 ₸ / 540 = 111.296…
    assert RATE.usd_of(Money(LIMIT_TIYN)) == Decimal("100.00")


@given(st.integers(min_value=1, max_value=10**12), st.integers(min_value=1, max_value=10**6))
def test_exceeds_agrees_with_exact_rational_arithmetic(tiyn: int, rate_hundredths: int) -> None:
    rate = UsdRate(date(2025, 1, 1), Decimal(rate_hundredths) / 100, "p")
    # tiyn > 100 USD * (rate_hundredths / 100) ₸ * 100 tiyn  <=>  tiyn > 100 * rate_hundredths
    assert rate.exceeds(Money(tiyn), Decimal(100)) == (tiyn > 100 * rate_hundredths)


def test_online_means_the_app() -> None:
    assert is_online(Channel.APP)
    for channel in (Channel.TERMINAL, Channel.ATM, Channel.CASHIER):
        assert not is_online(channel)


def test_a_card_without_3ds_is_restricted_only_above_the_limit() -> None:
    assert restriction_for(PLAIN, Money(LIMIT_TIYN), online=True, rate=RATE) is None
    found = restriction_for(PLAIN, Money(6_010_000), online=True, rate=RATE)
    assert found is not None
    assert found.restriction == Restriction.OVER_LIMIT_WITHOUT_3DS
    assert "100 USD" in found.message
    assert "111.29 USD" in found.message
    assert "01.10.2025" in found.message


def test_a_card_with_3ds_is_not_limited_but_needs_the_issuers_code_online() -> None:
    assert restriction_for(THREE_DS, Money(10**10), online=True, rate=RATE) is None
    assert needs_three_ds(THREE_DS, online=True)
    assert not needs_three_ds(PLAIN, online=True)
    assert not needs_three_ds(THREE_DS, online=False)


def test_online_payments_switched_off_refuse_any_online_payment() -> None:
    found = restriction_for(OFF, Money(100), online=True, rate=RATE)
    assert found is not None
    assert found.restriction == Restriction.ONLINE_PAYMENTS_OFF


def test_nothing_is_restricted_offline() -> None:
    assert restriction_for(PLAIN, Money(10**10), online=False, rate=RATE) is None
    assert restriction_for(OFF, Money(10**10), online=False, rate=RATE) is None


def test_an_issuer_may_have_its_own_limit() -> None:
    assert (
        restriction_for(PLAIN, Money(LIMIT_TIYN), online=True, rate=RATE, limit_usd=Decimal(50)) is not None
    )
