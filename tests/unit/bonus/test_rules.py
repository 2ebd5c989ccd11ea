"""Rules as data: loading, effective-dated windows and validation errors."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.bonus.domain import (
    DEFAULT_RULES_PATH,
    PROMO_MAX_PERCENT,
    BonusRules,
    RulesError,
    load_rules,
    parse_rules,
)

from .builders import SWITCH_OVER, TEST_RULES

pytestmark = pytest.mark.unit

MINIMAL = """
[[rule_sets]]
id = "legacy"
effective_from = 2014-01-01
{legacy_extra}

[[rule_sets.rules]]
id = "legacy.services"
percent = {percent}
kinds = ["SERVICE"]

[[rule_sets]]
id = "current"
effective_from = 2025-06-01
max_percent = 15

[[rule_sets.rules]]
id = "current.partner_qr_promo"
promotional = true
merchants = ["KASPI_QR"]
{promos}
"""


def minimal(*, legacy_extra: str = "", percent: str = "1", promos: str = "") -> str:
    """A small valid rules file with holes to break."""
    return MINIMAL.format(legacy_extra=legacy_extra, percent=percent, promos=promos)


def promo(ident: str, partner: str, percent: str, start: str, end: str) -> str:
    """A promotion table in TOML."""
    return f"""
[[rule_sets.promotions]]
id = "{ident}"
partner_id = "{partner}"
percent = {percent}
from = {start}
to = {end}
"""


def test_shipped_rules_load_with_both_programs() -> None:
    rules = load_rules()
    assert [s.set_id for s in rules.rule_sets] == ["legacy", "current"]
    legacy, current = rules.rule_sets
    assert legacy.effective_to == current.effective_from, "legacy ends where current starts"
    assert current.effective_to is None
    assert all(p.percent <= PROMO_MAX_PERCENT for p in current.promotions)
    assert DEFAULT_RULES_PATH.name == "rules.toml"


def test_current_start_parameter_moves_the_switch_over(shipped_rules: BonusRules) -> None:
    legacy, current = shipped_rules.rule_sets
    assert current.effective_from == SWITCH_OVER
    assert legacy.effective_to == SWITCH_OVER


def test_windows_are_half_open_on_almaty_dates(rules: BonusRules) -> None:
    eve, day = date(2025, 5, 31), date(2025, 6, 1)
    assert rules.rule_set_on(eve) is not None
    assert rules.rule_set_on(eve).set_id == "legacy"  # type: ignore[union-attr]
    assert rules.rule_set_on(day).set_id == "current"  # type: ignore[union-attr]
    assert rules.rule_set_on(date(2013, 12, 31)) is None


def test_percent_may_be_a_decimal_string(rules: BonusRules) -> None:
    [current] = [s for s in rules.rule_sets if s.set_id == "current"]
    travel = next(r for r in current.rules if r.rule_id == "current.kaspi_travel")
    assert travel.percent == Decimal("7.5")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (minimal(promos=promo("p", "x", "16", "2025-06-01", "2025-07-01")), "exceeds the maximum 15"),
        (minimal(promos=promo("p", "x", "10", "2025-07-01", "2025-07-01")), "must be after from"),
        (
            minimal(
                promos=promo("p1", "x", "10", "2025-06-01", "2025-07-01")
                + promo("p2", "x", "5", "2025-06-30", "2025-08-01")
            ),
            "overlap for partner 'x'",
        ),
        (minimal(legacy_extra="effective_to = 2025-06-02"), "rule sets overlap"),
        (minimal(legacy_extra="effective_to = 2013-01-01"), "must be after effective_from"),
        (minimal(percent="1.5"), "never a float"),
        (minimal(percent="0"), "percent must be in (0, 100]"),
        (minimal(percent='"abc"'), "not a number"),
        (minimal(legacy_extra='colour = "red"'), "unknown key(s) colour"),
        (minimal(promos=promo("p", "x", "10", "2025-06-01T10:00:00", "2025-07-01")), "must be a TOML date"),
        ("rule_sets = []", "must not be empty"),
        ("not toml [", "not valid TOML"),
    ],
)
def test_invalid_rules_are_refused_with_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(RulesError) as excinfo:
        parse_rules(text)
    assert message in str(excinfo.value)


def test_rule_sets_must_be_in_date_order() -> None:
    text = TEST_RULES.replace("effective_from = 2025-06-01", "effective_from = 2013-06-01")
    with pytest.raises(RulesError, match="must be in date order"):
        parse_rules(text)


def test_current_start_override_before_legacy_is_refused() -> None:
    with pytest.raises(RulesError, match="must be in date order"):
        parse_rules(TEST_RULES, current_start=date(2010, 1, 1))


def test_rules_for_red_bills_top_ups_and_transfers_are_refused() -> None:
    with pytest.raises(RulesError, match="RED_BILL never earn bonus"):
        parse_rules(minimal().replace('kinds = ["SERVICE"]', 'kinds = ["SERVICE", "RED_BILL"]'))


def test_unknown_enum_value_is_refused() -> None:
    with pytest.raises(RulesError, match="unknown value"):
        parse_rules(minimal().replace('merchants = ["KASPI_QR"]', 'merchants = ["KASPI_QRR"]'))


def test_a_rule_needs_exactly_one_of_percent_or_promotional() -> None:
    with pytest.raises(RulesError, match="exactly one of percent or promotional"):
        parse_rules(minimal().replace("promotional = true", "promotional = true\npercent = 5"))


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(RulesError, match=r"duplicate id 'legacy\.services'"):
        parse_rules(minimal().replace("current.partner_qr_promo", "legacy.services"))


def test_current_start_without_a_current_set_is_refused() -> None:
    text = minimal().replace('id = "current"', 'id = "newer"')
    with pytest.raises(RulesError, match="no rule set 'current'"):
        parse_rules(text, current_start=date(2026, 1, 1))
