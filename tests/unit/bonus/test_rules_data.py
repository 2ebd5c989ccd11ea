"""Rules data: what a rules file loads into, field by field, and the exact refusal for each mistake.

A refusal names the file, the rule set and the rule at fault (``RulesError``'s promise), so each case
below pins the whole message.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from services.bonus.domain import (
    BonusRules,
    CashbackRule,
    Criteria,
    Funding,
    Merchant,
    PaymentKind,
    Promotion,
    RuleMatch,
    RulesError,
    RuleSet,
    build_rules,
    load_rules,
    parse_rules,
)

from .builders import qr_purchase

pytestmark = pytest.mark.unit

Data = dict[str, Any]
BASE: Data = {
    "rule_sets": [
        {"id": "old", "effective_from": date(2024, 1, 1), "rules": [{"id": "old.all", "percent": 1}]},
        {
            "id": "current",
            "effective_from": date(2025, 1, 1),
            "max_percent": 10,
            "rules": [
                {"id": "cur.promo", "promotional": True, "kinds": ["PURCHASE"], "merchants": ["KASPI_QR"]}
            ],
            "promotions": [
                {
                    "id": "pr1",
                    "partner_id": "px",
                    "percent": 5,
                    "from": date(2025, 2, 1),
                    "to": date(2025, 3, 1),
                }
            ],
        },
    ]
}

OLD_ALL = CashbackRule("old.all", Criteria(), Decimal(1))
PROMO_RULE = CashbackRule(
    "cur.promo",
    Criteria(kinds=frozenset({PaymentKind.PURCHASE}), merchants=frozenset({Merchant.KASPI_QR})),
    None,
    promotional=True,
)
PR1 = Promotion("pr1", "px", Decimal(5), date(2025, 2, 1), date(2025, 3, 1))


def built(change: Callable[[Data], object] = lambda d: None, **kwargs: Any) -> BonusRules:
    data = copy.deepcopy(BASE)
    change(data)
    return build_rules(data, **kwargs)


def test_rules_load_into_exactly_these_values() -> None:
    assert built() == BonusRules(
        (
            # A set without an end runs until the next one starts.
            RuleSet("old", date(2024, 1, 1), date(2025, 1, 1), (OLD_ALL,)),
            RuleSet("current", date(2025, 1, 1), None, (PROMO_RULE,), (PR1,), Decimal(10)),
        )
    )


def test_every_criterion_and_the_source_are_kept() -> None:
    def change(d: Data) -> None:
        d["rule_sets"][0]["source"] = "seed 004"
        d["rule_sets"][0]["rules"][0].update(
            kinds=["service", "PURCHASE"],
            categories=[" Flight "],
            providers=["Air-Astana"],
            merchants=["kaspi_travel"],
            fundings=["GOLD", "red"],
        )

    old = built(change).rule_sets[0]
    assert old.source == "seed 004"
    assert old.rules[0].criteria == Criteria(
        kinds=frozenset({PaymentKind.SERVICE, PaymentKind.PURCHASE}),
        categories=frozenset({"flight"}),
        providers=frozenset({"air-astana"}),
        merchants=frozenset({Merchant.KASPI_TRAVEL}),
        fundings=frozenset({Funding.GOLD, Funding.RED}),
    )


def test_current_start_moves_the_current_set_and_ends_the_one_before() -> None:
    rules = built(current_start=date(2025, 6, 1))
    assert rules.rule_sets == (
        RuleSet("old", date(2024, 1, 1), date(2025, 6, 1), (OLD_ALL,)),
        RuleSet("current", date(2025, 6, 1), None, (PROMO_RULE,), (PR1,), Decimal(10)),
    )


def test_current_start_keeps_an_explicit_end_and_every_other_field() -> None:
    def change(d: Data) -> None:
        d["rule_sets"][1].update(effective_to=date(2026, 1, 1), source="seed 004")

    current = built(change, current_start=date(2025, 6, 1)).rule_sets[1]
    assert current == RuleSet(
        "current", date(2025, 6, 1), date(2026, 1, 1), (PROMO_RULE,), (PR1,), Decimal(10), "seed 004"
    )


def test_an_end_filled_in_keeps_every_other_field() -> None:
    def change(d: Data) -> None:
        d["rule_sets"][0].update(max_percent=5, source="seed 000")
        d["rule_sets"][0]["rules"].append({"id": "old.promo", "promotional": True})
        d["rule_sets"][0]["promotions"] = [
            {"id": "pr0", "partner_id": "px", "percent": 5, "from": date(2024, 2, 1), "to": date(2024, 3, 1)}
        ]

    old = built(change).rule_sets[0]
    assert (old.effective_to, old.max_percent, old.source) == (date(2025, 1, 1), Decimal(5), "seed 000")
    assert old.promotions == (Promotion("pr0", "px", Decimal(5), date(2024, 2, 1), date(2024, 3, 1)),)


def test_three_sets_each_end_where_the_next_starts() -> None:
    def change(d: Data) -> None:
        d["rule_sets"].append(
            {"id": "next", "effective_from": date(2026, 1, 1), "rules": [{"id": "n", "percent": 2}]}
        )

    ends = [s.effective_to for s in built(change).rule_sets]
    assert ends == [date(2025, 1, 1), date(2026, 1, 1), None]


def test_a_promotion_may_start_the_day_the_last_one_ends() -> None:
    def change(d: Data) -> None:
        d["rule_sets"][1]["promotions"].append(
            {"id": "pr2", "partner_id": "px", "percent": 5, "from": date(2025, 3, 1), "to": date(2025, 4, 1)}
        )

    assert [p.promotion_id for p in built(change).rule_sets[1].promotions] == ["pr1", "pr2"]


@pytest.mark.parametrize(("percent", "loaded"), [("100", Decimal(100)), ("0.01", Decimal("0.01"))])
def test_a_percent_may_be_anything_in_0_to_100(percent: str, loaded: Decimal) -> None:
    rules = built(lambda d: d["rule_sets"][0]["rules"][0].update(percent=percent))
    assert rules.rule_sets[0].rules[0].percent == loaded


def test_adjacent_sets_are_not_an_overlap() -> None:
    rules = built(lambda d: d["rule_sets"][0].update(effective_to=date(2025, 1, 1)))
    assert rules.rule_sets[0].effective_to == date(2025, 1, 1)
    one_day = built(lambda d: d["rule_sets"][0].update(effective_to=date(2024, 1, 2)))
    assert one_day.rule_sets[0].effective_to == date(2024, 1, 2)


def test_a_promotional_rule_without_a_promotion_that_day_passes_to_the_next_rule() -> None:
    def change(d: Data) -> None:
        d["rule_sets"][1]["rules"].append({"id": "cur.qr", "percent": 1, "kinds": ["PURCHASE"]})

    current = built(change).rule_sets[1]
    outside = qr_purchase(partner_id="px", completed_at=datetime(2025, 5, 5, 12, 0, tzinfo=_ALMATY))
    match = current.match(outside)
    assert match is not None
    assert (match.rule_set, match.rule.rule_id, match.percent, match.promotion) == (
        "current",
        "cur.qr",
        Decimal(1),
        None,
    )
    inside = qr_purchase(partner_id="px", completed_at=datetime(2025, 2, 5, 12, 0, tzinfo=_ALMATY))
    assert current.match(inside) == RuleMatch("current", PROMO_RULE, Decimal(5), PR1)


_ALMATY = qr_purchase().completed_at.tzinfo


def test_load_rules_reads_the_given_file_and_names_it(tmp_path: Path) -> None:
    text = (
        '[[rule_sets]]\nid = "only"\neffective_from = 2024-01-01\n'
        '[[rule_sets.rules]]\nid = "o"\npercent = 1\n'
    )
    good = tmp_path / "rules.toml"
    good.write_text(text, encoding="utf-8")
    assert load_rules(good) == parse_rules(text)
    assert load_rules(str(good)).rule_sets[0].set_id == "only"
    bad = tmp_path / "bad.toml"
    bad.write_text("x = 1\n", encoding="utf-8")
    with pytest.raises(RulesError) as raised:
        load_rules(bad)
    assert str(raised.value) == f"{bad}: unknown key(s) x; allowed: rule_sets"
    with pytest.raises(RulesError) as named:
        parse_rules("x = 1\n", source="mine")
    assert str(named.value) == "mine: unknown key(s) x; allowed: rule_sets"


def test_invalid_toml_is_refused_with_the_parser_message() -> None:
    with pytest.raises(RulesError, match=r"^<rules>: not valid TOML: "):
        parse_rules("x = ")


S = "<rules>: rule_sets"
OLD = f"{S}[0] (old)"
RULE = f"{OLD}.rules[0] (old.all)"
CUR = f"{S}[1] (current)"
PROMO = f"{CUR}.promotions[0] (pr1)"
NOT_A_DATE = "must be a TOML date such as 2025-01-31, got"
LIST = "must be a non-empty list of strings (omit the key to match any)"
NOT_FLOAT = 'a percent is an integer or a string like "1.5", never a float; got'


def _set0(**values: Any) -> Callable[[Data], object]:
    return lambda d: d["rule_sets"][0].update(values)


def _set1(**values: Any) -> Callable[[Data], object]:
    return lambda d: d["rule_sets"][1].update(values)


def _rule(**values: Any) -> Callable[[Data], object]:
    return lambda d: d["rule_sets"][0]["rules"][0].update(values)


def _promo(**values: Any) -> Callable[[Data], object]:
    return lambda d: d["rule_sets"][1]["promotions"][0].update(values)


def _drop(*path: str | int) -> Callable[[Data], object]:
    def change(d: Data) -> None:
        node: Any = d
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return change


REFUSED: list[tuple[str, Callable[[Data], object], str]] = [
    ("a stray top-level key", lambda d: d.update(x=1), "<rules>: unknown key(s) x; allowed: rule_sets"),
    ("no rule sets", _drop("rule_sets"), f"{S}: missing"),
    ("no rule set at all", lambda d: d.update(rule_sets=[]), f"{S}: must not be empty"),
    ("rule sets not tables", lambda d: d.update(rule_sets=[1]), f"{S}: must be an array of tables"),
    ("rule sets as a table", lambda d: d.update(rule_sets={"a": 1}), f"{S}: must be an array of tables"),
    (
        "a stray set key",
        _set0(colour=1, size=2),
        f"{S}[0]: unknown key(s) colour, size; "
        "allowed: effective_from, effective_to, id, max_percent, promotions, rules, source",
    ),
    ("a blank set id", _set0(id=" "), f"{S}[0].id: must be a non-empty string"),
    ("no set id", _drop("rule_sets", 0, "id"), f"{S}[0].id: must be a non-empty string"),
    (
        "a datetime start",
        _set0(effective_from=datetime(2024, 1, 1)),
        f"{OLD}.effective_from: {NOT_A_DATE} {datetime(2024, 1, 1)!r}",
    ),
    ("no start", _drop("rule_sets", 0, "effective_from"), f"{OLD}.effective_from: {NOT_A_DATE} None"),
    ("a text end", _set0(effective_to="x"), f"{OLD}.effective_to: {NOT_A_DATE} 'x'"),
    (
        "an end on the start",
        _set0(effective_to=date(2024, 1, 1)),
        "<rules>: rule set 'old': effective_to 2024-01-01 must be after effective_from 2024-01-01",
    ),
    (
        "two sets on one day",
        _set1(effective_from=date(2024, 1, 1)),
        "<rules>: rule sets must be in date order: 'current' starts 2024-01-01, not after 'old' (2024-01-01)",
    ),
    (
        "overlapping sets",
        _set0(effective_to=date(2025, 1, 2)),
        "<rules>: rule sets overlap: 'old' runs to 2025-01-02 but 'current' starts 2025-01-01",
    ),
    ("a duplicate id", _set1(id="old"), "<rules>: duplicate id 'old'"),
    ("a float maximum", _set1(max_percent=1.5), f"{CUR}.max_percent: {NOT_FLOAT} 1.5"),
    ("rules not tables", _set0(rules=[1]), f"{OLD}.rules: must be an array of tables"),
    (
        "a stray rule key",
        _rule(colour=1),
        f"{OLD}.rules[0]: unknown key(s) colour; "
        "allowed: categories, fundings, id, kinds, merchants, percent, promotional, providers",
    ),
    ("a blank rule id", _rule(id=""), f"{OLD}.rules[0].id: must be a non-empty string"),
    ("promotional as text", _rule(promotional="yes"), f"{RULE}.promotional: must be true or false"),
    (
        "percent and promotional",
        _rule(promotional=True),
        f"{RULE}: give exactly one of percent or promotional = true",
    ),
    (
        "neither",
        _drop("rule_sets", 0, "rules", 0, "percent"),
        f"{RULE}: give exactly one of percent or promotional = true",
    ),
    ("a float percent", _rule(percent=1.5), f"{RULE}.percent: {NOT_FLOAT} 1.5"),
    ("a bool percent", _rule(percent=True), f"{RULE}.percent: {NOT_FLOAT} True"),
    ("a word percent", _rule(percent="x"), f"{RULE}.percent: not a number: 'x'"),
    (
        "an infinite percent",
        _rule(percent="Infinity"),
        f"{RULE}.percent: percent must be in (0, 100], got 'Infinity'",
    ),
    ("a zero percent", _rule(percent=0), f"{RULE}.percent: percent must be in (0, 100], got 0"),
    ("over 100 %", _rule(percent="100.5"), f"{RULE}.percent: percent must be in (0, 100], got '100.5'"),
    (
        "over the set's maximum",
        lambda d: d["rule_sets"][1]["rules"].append({"id": "cur.x", "percent": 11}),
        f"{CUR}.rules[1] (cur.x).percent: percent 11 exceeds the maximum 10",
    ),
    (
        "kinds that never earn",
        _rule(kinds=["TRANSFER", "TOP_UP", "SERVICE"]),
        f"{RULE}.kinds: TOP_UP, TRANSFER never earn bonus",
    ),
    (
        "unknown kinds",
        _rule(kinds=["SERVICE", "zz", "aa"]),
        f"{RULE}.kinds: unknown value(s) aa, zz; allowed: SERVICE, PURCHASE, TRANSFER, TOP_UP, RED_BILL",
    ),
    ("no kinds", _rule(kinds=[]), f"{RULE}.kinds: {LIST}"),
    ("a blank kind", _rule(kinds=[" "]), f"{RULE}.kinds: {LIST}"),
    ("kinds as text", _rule(kinds="SERVICE"), f"{RULE}.kinds: {LIST}"),
    ("a number kind", _rule(kinds=[1]), f"{RULE}.kinds: {LIST}"),
    ("a blank category", _rule(categories=["a", ""]), f"{RULE}.categories: {LIST}"),
    ("a number provider", _rule(providers=[1]), f"{RULE}.providers: {LIST}"),
    (
        "an unknown merchant",
        _rule(merchants=["zz"]),
        f"{RULE}.merchants: unknown value(s) zz; allowed: KASPI_MAGAZIN, KASPI_QR, KASPI_TRAVEL",
    ),
    (
        "an unknown funding",
        _rule(fundings=["zz"]),
        f"{RULE}.fundings: unknown value(s) zz; allowed: GOLD, WALLET, EXTERNAL_CARD, RED, BONUS, CASH",
    ),
    (
        "promotions without a promotional rule",
        lambda d: d["rule_sets"][1]["rules"][0].update(promotional=False, percent=1),
        f"{CUR}: has promotions but no promotional rule to apply them",
    ),
    ("promotions not tables", _set1(promotions="x"), f"{CUR}.promotions: must be an array of tables"),
    (
        "a stray promotion key",
        _promo(colour=1),
        f"{CUR}.promotions[0]: unknown key(s) colour; allowed: from, id, partner_id, percent, to",
    ),
    (
        "no promotion id",
        _drop("rule_sets", 1, "promotions", 0, "id"),
        f"{CUR}.promotions[0].id: must be a non-empty string",
    ),
    ("a text start", _promo(**{"from": "2025-01-01"}), f"{PROMO}.from: {NOT_A_DATE} '2025-01-01'"),
    ("no promotion end", _drop("rule_sets", 1, "promotions", 0, "to"), f"{PROMO}.to: {NOT_A_DATE} None"),
    (
        "an end on the start",
        _promo(to=date(2025, 2, 1)),
        f"{PROMO}: to 2025-02-01 must be after from 2025-02-01",
    ),
    (
        "no partner",
        _drop("rule_sets", 1, "promotions", 0, "partner_id"),
        f"{PROMO}.partner_id: must be a non-empty string",
    ),
    ("over the set's maximum", _promo(percent=11), f"{PROMO}.percent: percent 11 exceeds the maximum 10"),
    (
        "over 15 % without a set maximum",
        lambda d: (
            d["rule_sets"][1].pop("max_percent"),
            d["rule_sets"][1]["promotions"][0].update(percent=16),
        ),
        f"{PROMO}.percent: percent 16 exceeds the maximum 15",
    ),
    ("a bad promotion percent", _promo(percent=1.5), f"{PROMO}.percent: {NOT_FLOAT} 1.5"),
    (
        "overlapping promotions",
        lambda d: d["rule_sets"][1]["promotions"].append(
            {"id": "pr2", "partner_id": "px", "percent": 5, "from": date(2025, 2, 28), "to": date(2025, 4, 1)}
        ),
        f"{CUR}: promotions 'pr1' and 'pr2' overlap for partner 'px'",
    ),
]


@pytest.mark.parametrize(
    ("change", "message"), [(c, m) for _, c, m in REFUSED], ids=[n for n, _, _ in REFUSED]
)
def test_malformed_rules_are_refused_with_their_place(change: Callable[[Data], object], message: str) -> None:
    with pytest.raises(RulesError) as raised:
        built(change)
    assert str(raised.value) == message


def test_current_start_needs_a_current_set() -> None:
    with pytest.raises(RulesError) as raised:
        built(_set1(id="x"), current_start=date(2025, 1, 5))
    assert str(raised.value) == "<rules>: current_start given but there is no rule set 'current'"


def test_a_set_maximum_above_15_still_caps_promotions_at_15() -> None:
    with pytest.raises(RulesError) as raised:
        built(
            lambda d: (
                d["rule_sets"][1].update(max_percent=20),
                d["rule_sets"][1]["promotions"][0].update(percent=16),
            )
        )
    assert str(raised.value) == f"{PROMO}.percent: percent 16 exceeds the maximum 15"
    fifteen = built(
        lambda d: (
            d["rule_sets"][1].update(max_percent=20),
            d["rule_sets"][1]["promotions"][0].update(percent=15),
        )
    )
    assert fifteen.rule_sets[1].promotions[0].percent == Decimal(15)
