"""Accrual under the legacy (seed 000) and current (seed 004) programs."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.bonus.domain import (
    BonusRules,
    Funding,
    Merchant,
    PaymentKind,
    accrual_amount,
    decide_accrual,
)
from shared.money import Money

from .builders import SWITCH_OVER, almaty, payment, qr_purchase

pytestmark = pytest.mark.unit

LEGACY_DAY = date(2025, 3, 15)
EVE = date(2025, 5, 31)


# -- legacy program (seed 000) ------------------------------------------------------------------
def test_legacy_one_percent_on_a_utility_payment(rules: BonusRules) -> None:
    # Seed 000: "a monthly utility payment of 20 000 tenge, 200 of them come back as bonuses".
    accrual = decide_accrual(payment(), rules)
    assert accrual is not None
    assert accrual.amount == Money.of_tenge(200)
    assert (accrual.rule_set, accrual.rule_id, accrual.percent) == ("legacy", "legacy.services", Decimal(1))
    assert accrual.base == Money.of_tenge(20_000)
    assert accrual.business_date == LEGACY_DAY


def test_legacy_five_percent_on_flights(rules: BonusRules) -> None:
    accrual = decide_accrual(payment(category="flight", provider="air-astana"), rules)
    assert accrual is not None
    assert (accrual.rule_id, accrual.amount) == ("legacy.flights", Money.of_tenge(1_000))


def test_legacy_five_percent_at_a_listed_restaurant(rules: BonusRules) -> None:
    accrual = decide_accrual(payment(category="Restaurant", provider="REST-LISTED"), rules)
    assert accrual is not None
    assert (accrual.rule_id, accrual.percent) == ("legacy.restaurants", Decimal(5))


def test_legacy_unlisted_restaurant_earns_the_service_one_percent(rules: BonusRules) -> None:
    accrual = decide_accrual(payment(category="restaurant", provider="rest-elsewhere"), rules)
    assert accrual is not None
    assert (accrual.rule_id, accrual.percent) == ("legacy.services", Decimal(1))


def test_legacy_gives_nothing_on_ordinary_purchases(rules: BonusRules) -> None:
    purchase = payment(kind=PaymentKind.PURCHASE, merchant=Merchant.KASPI_MAGAZIN, category=None)
    assert decide_accrual(purchase, rules) is None


def test_shipped_legacy_matches_seed_000(shipped_rules: BonusRules) -> None:
    accrual = decide_accrual(payment(), shipped_rules)
    assert accrual is not None
    assert accrual.amount == Money.of_tenge(200)


# -- switch-over day ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("completed_at", "expected"),
    [
        (almaty(EVE, time(23, 59, 59, 999_999)), "legacy"),
        (almaty(SWITCH_OVER, time(0, 0)), "current"),
        # 19:30 UTC on 31 May is already 1 June in Almaty (UTC+5): the Almaty date decides.
        (datetime(2025, 5, 31, 19, 30, tzinfo=UTC), "current"),
        (datetime(2025, 5, 31, 18, 59, tzinfo=UTC), "legacy"),
    ],
)
def test_switch_over_is_midnight_almaty(rules: BonusRules, completed_at: datetime, expected: str) -> None:
    utility = decide_accrual(payment(completed_at=completed_at), rules)
    travel = payment(
        kind=PaymentKind.PURCHASE,
        merchant=Merchant.KASPI_TRAVEL,
        category=None,
        completed_at=completed_at,
    )
    if expected == "legacy":
        assert utility is not None
        assert utility.rule_set == "legacy"
        assert decide_accrual(travel, rules) is None  # Travel purchases earned nothing under legacy
    else:
        assert utility is None, "current program: no cashback on ordinary payments"
        accrual = decide_accrual(travel, rules)
        assert accrual is not None
        assert accrual.rule_set == "current"


def test_shipped_current_cancels_ordinary_payment_cashback(shipped_rules: BonusRules) -> None:
    assert decide_accrual(payment(completed_at=almaty(SWITCH_OVER)), shipped_rules) is None
    flights = payment(category="flight", completed_at=almaty(SWITCH_OVER))
    assert decide_accrual(flights, shipped_rules) is None


def test_before_any_rule_set_nothing_accrues(rules: BonusRules) -> None:
    assert decide_accrual(payment(completed_at=almaty(date(2013, 12, 31))), rules) is None


# -- current program (seed 004) -------------------------------------------------------------------
@pytest.mark.parametrize("funding", [Funding.GOLD, Funding.RED])
def test_partner_promo_inside_window_with_gold_or_red(rules: BonusRules, funding: Funding) -> None:
    accrual = decide_accrual(qr_purchase(funding=funding), rules)
    assert accrual is not None
    assert (accrual.rule_id, accrual.promotion_id) == ("current.partner_qr_promo", "promo-coffee-june")
    assert accrual.percent == 10
    assert accrual.amount == Money.of_tenge(1_000)


@pytest.mark.parametrize("funding", [Funding.WALLET, Funding.EXTERNAL_CARD, Funding.BONUS])
def test_partner_promo_with_non_qualifying_funding_earns_nothing(rules: BonusRules, funding: Funding) -> None:
    assert decide_accrual(qr_purchase(funding=funding), rules) is None


@pytest.mark.parametrize(
    ("completed_at", "promotion_id"),
    [
        (almaty(date(2025, 6, 9), time(23, 59)), None),  # the day before the window
        (almaty(date(2025, 6, 10), time(0, 0)), "promo-coffee-june"),  # first day, inclusive
        (almaty(date(2025, 6, 30), time(23, 59)), "promo-coffee-june"),  # last day
        (almaty(date(2025, 7, 1), time(0, 0)), None),  # `to` is exclusive
        (almaty(date(2025, 8, 15)), "promo-coffee-august"),  # a second window, 15 %
    ],
)
def test_partner_promo_window(rules: BonusRules, completed_at: datetime, promotion_id: str | None) -> None:
    accrual = decide_accrual(qr_purchase(completed_at=completed_at), rules)
    assert (accrual.promotion_id if accrual else None) == promotion_id


def test_qr_purchase_at_a_partner_without_a_promotion_earns_nothing(rules: BonusRules) -> None:
    assert decide_accrual(qr_purchase(partner_id="partner-other"), rules) is None
    assert decide_accrual(qr_purchase(partner_id=None), rules) is None


def test_kaspi_travel_earns_the_configured_percent(rules: BonusRules) -> None:
    travel = payment(
        kind=PaymentKind.PURCHASE,
        merchant=Merchant.KASPI_TRAVEL,
        category="flight",
        funding=Funding.EXTERNAL_CARD,
        amount=Money.parse("123 456,78"),
        completed_at=almaty(date(2025, 7, 1)),
    )
    accrual = decide_accrual(travel, rules)
    assert accrual is not None
    assert (accrual.rule_id, accrual.percent) == ("current.kaspi_travel", Decimal("7.5"))
    # 7.5 % of 12 345 678 tiyn = 925 925.85 tiyn → rounded down to 925 925 tiyn.
    assert accrual.amount == Money(925_925)


def test_kaspi_magazin_purchases_earn_nothing_under_current(rules: BonusRules) -> None:
    magazin = payment(
        kind=PaymentKind.PURCHASE, merchant=Merchant.KASPI_MAGAZIN, completed_at=almaty(SWITCH_OVER)
    )
    assert decide_accrual(magazin, rules) is None


# -- base, rounding and exclusions ----------------------------------------------------------------
def test_base_excludes_the_part_paid_with_bonuses(rules: BonusRules) -> None:
    accrual = decide_accrual(qr_purchase(bonus_amount_used=Money.of_tenge(4_000)), rules)
    assert accrual is not None
    assert accrual.base == Money.of_tenge(6_000)
    assert accrual.amount == Money.of_tenge(600)
    assert accrual.payment_amount == Money.of_tenge(10_000)


def test_payment_wholly_from_bonus_earns_nothing(rules: BonusRules) -> None:
    assert decide_accrual(payment(funding=Funding.BONUS), rules) is None
    assert decide_accrual(payment(bonus_amount_used=Money.of_tenge(20_000)), rules) is None


def test_rounds_down_to_the_tiyn(rules: BonusRules) -> None:
    accrual = decide_accrual(payment(amount=Money.parse("10,99")), rules)  # 1 % of 1 099 tiyn = 10.99
    assert accrual is not None
    assert accrual.amount == Money(10)


def test_amount_below_one_tiyn_is_no_accrual(rules: BonusRules) -> None:
    assert decide_accrual(payment(amount=Money(99)), rules) is None


@pytest.mark.parametrize("kind", [PaymentKind.RED_BILL, PaymentKind.TOP_UP, PaymentKind.TRANSFER])
def test_never_accrues_on_red_bills_top_ups_and_transfers(rules: BonusRules, kind: PaymentKind) -> None:
    assert decide_accrual(payment(kind=kind), rules) is None


def test_naive_completion_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        payment(completed_at=datetime(2025, 3, 15, 12, 0))


def test_bonus_part_cannot_exceed_the_amount() -> None:
    with pytest.raises(ValueError, match="bonus_amount_used"):
        payment(bonus_amount_used=Money.of_tenge(20_001))


# -- properties -----------------------------------------------------------------------------------
@given(
    base=st.integers(min_value=0, max_value=10**13),
    percent=st.decimals(min_value=Decimal("0.01"), max_value=Decimal(100), places=2),
)
def test_accrual_amount_is_within_zero_and_exact_share(base: int, percent: Decimal) -> None:
    amount = accrual_amount(Money(base), percent)
    assert 0 <= amount.tiyn <= base * percent / 100
    assert base * percent / 100 - amount.tiyn < 1, "rounded down by less than one tiyn"


payment_kinds = st.sampled_from(list(PaymentKind))
merchants = st.one_of(st.none(), st.sampled_from(list(Merchant)))
fundings = st.sampled_from(list(Funding))
categories = st.sampled_from([None, "utilities", "flight", "restaurant", "travel", "Flight"])
providers = st.sampled_from([None, "alseco", "rest-listed", "air-astana"])
partners = st.sampled_from([None, "partner-coffee", "partner-other"])
instants = st.datetimes(
    min_value=datetime(2013, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)
)


@given(
    kind=payment_kinds,
    merchant=merchants,
    funding=fundings,
    category=categories,
    provider=providers,
    partner=partners,
    amount=st.integers(min_value=1, max_value=10**12),
    bonus_share=st.integers(min_value=0, max_value=100),
    completed_at=instants,
)
def test_any_accrual_is_bounded_by_its_rule(
    rules: BonusRules,
    kind: PaymentKind,
    merchant: Merchant | None,
    funding: Funding,
    category: str | None,
    provider: str | None,
    partner: str | None,
    amount: int,
    bonus_share: int,
    completed_at: datetime,
) -> None:
    facts = payment(
        kind=kind,
        merchant=merchant,
        funding=funding,
        category=category,
        provider=provider,
        partner_id=partner,
        amount=Money(amount),
        bonus_amount_used=Money(amount * bonus_share // 100),
        completed_at=completed_at,
    )
    accrual = decide_accrual(facts, rules)
    if accrual is None:
        return
    assert kind not in (PaymentKind.RED_BILL, PaymentKind.TOP_UP, PaymentKind.TRANSFER)
    assert accrual.base == facts.amount - facts.bonus_amount_used
    assert 0 < accrual.amount.tiyn <= accrual.base.tiyn * accrual.percent / 100
    assert accrual.percent <= 15 or accrual.rule_set == "legacy"
