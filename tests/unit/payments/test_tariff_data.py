"""Tariff data: what a loaded schedule holds, and the exact refusal for each malformed file.

A refusal names the profile and rule at fault, so that whoever edits ``tariffs.toml`` can find it;
each case below pins the whole message.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from services.payments.domain import (
    FeeSchedule,
    Operation,
    OperationKind,
    ReasonCode,
    TariffDataError,
    TariffError,
    TransferKind,
)
from services.payments.domain.fees import (
    FeeQuote,
    FeeRule,
    FixedFee,
    PercentFee,
    TariffProfile,
    Tier,
    TieredFee,
)
from services.payments.domain.tariffs import DEFAULT_TARIFFS_PATH
from shared.money import Money

pytestmark = pytest.mark.unit

M = Money.parse
BASE = """
default_profile = "p"
[categories]
a = "A"
b = "B"
[transfer_kinds]
own_accounts = "o"
card_to_card = "c"
account_internal = "i"
account_external = "e"
[profiles.p]
description = "Profile P"
[[profiles.p.rules]]
id = "p.transfer"
operation = "transfer"
fee = "0"
[[profiles.p.rules]]
id = "p.top_up"
operation = "top_up"
fee = "0"
[[profiles.p.rules]]
id = "p.purchase"
operation = "purchase"
fee = "0"
[[profiles.p.rules]]
id = "p.red_bill"
operation = "red_bill"
fee = "0"
[[profiles.p.rules]]
id = "p.service"
operation = "service"
fee = "1"
"""


def loaded(change: Callable[[dict[str, Any]], object] = lambda d: None) -> FeeSchedule:
    data = tomllib.loads(BASE)
    change(data)
    return FeeSchedule.from_mapping(data)


def rules(d: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = d["profiles"]["p"]["rules"]
    return result


def add(rule: dict[str, Any]) -> Callable[[dict[str, Any]], object]:
    return lambda d: rules(d).append({"id": "p.x", "operation": "service", **rule})


def test_a_schedule_holds_every_field_of_its_rules() -> None:
    def change(d: dict[str, Any]) -> None:
        rules(d)[0]["transfer_kinds"] = ["own_accounts", "account_internal", "account_external"]
        rules(d)[4]["categories"] = ["a"]
        rules(d).extend(
            [
                {
                    "id": "p.percent",
                    "operation": "service",
                    "categories": ["b"],
                    "percent": "0.5",
                    "minimum": "2",
                },
                {
                    "id": "p.provider",
                    "operation": "service",
                    "description": "Provider X",
                    "providers": ["Astana-ERC", "alseco"],
                    "tiers": [{"from": "0", "fee": "0"}, {"from": "100", "fee": "25"}],
                },
                {"id": "p.card", "operation": "transfer", "transfer_kinds": ["card_to_card"], "fee": "95"},
            ]
        )

    schedule = loaded(change)
    assert schedule.default_profile == "p"
    assert schedule.categories == {"a": "A", "b": "B"}
    assert schedule.transfer_kinds == {
        "own_accounts": "o",
        "card_to_card": "c",
        "account_internal": "i",
        "account_external": "e",
    }
    profile = schedule.profiles["p"]
    assert (profile.name, profile.description) == ("p", "Profile P")
    assert profile.rules[4:] == (
        FeeRule("p.service", "p.service", OperationKind.SERVICE, FixedFee(M("1")), frozenset({"a"})),
        FeeRule(
            "p.percent",
            "p.percent",
            OperationKind.SERVICE,
            PercentFee(Decimal("0.5"), M("2")),
            frozenset({"b"}),
        ),
        FeeRule(
            "p.provider",
            "Provider X",
            OperationKind.SERVICE,
            TieredFee((Tier(M("0"), M("0")), Tier(M("100"), M("25")))),
            providers=frozenset({"astana_erc", "alseco"}),
        ),
        FeeRule(
            "p.card",
            "p.card",
            OperationKind.TRANSFER,
            FixedFee(M("95")),
            transfer_kinds=frozenset({"card_to_card"}),
        ),
    )


def test_a_profile_without_a_description_is_named_by_its_key() -> None:
    def drop(d: dict[str, Any]) -> None:
        del d["profiles"]["p"]["description"]

    assert loaded(drop).profiles["p"].description == "p"


def test_quotes_carry_the_rule() -> None:
    quote = loaded().quote_fee("p", Operation.service("a", M("10")))
    assert quote == FeeQuote(M("1"), "p.service", "p.service")
    assert (
        loaded().quote_fee("p", Operation.transfer(TransferKind.CARD_TO_CARD, M("10"))).rule_id
        == "p.transfer"
    )
    assert loaded().quote_fee("p", Operation.of(OperationKind.RED_BILL, M("10"))).rule_id == "p.red_bill"


def test_a_single_tier_prices_everything() -> None:
    schedule = loaded(
        lambda d: rules(d).__setitem__(
            4, {"id": "p.service", "operation": "service", "tiers": [{"from": "0", "fee": "7"}]}
        )
    )
    assert schedule.quote_fee("p", Operation.service("a", M("123456"))).fee == M("7")


@pytest.mark.parametrize(("rate", "fee"), [("0", "0"), ("100", "10")])
def test_a_rate_may_be_zero_or_a_hundred_percent(rate: str, fee: str) -> None:
    schedule = loaded(
        lambda d: rules(d).__setitem__(4, {"id": "p.service", "operation": "service", "percent": rate})
    )
    assert schedule.quote_fee("p", Operation.service("a", M("10"))).fee == M(fee)


def test_load_reads_the_shipped_file_or_the_one_given(tmp_path: Path) -> None:
    shipped = FeeSchedule.load()
    assert shipped == FeeSchedule.from_toml(DEFAULT_TARIFFS_PATH.read_text(encoding="utf-8"))
    assert shipped.default_profile == "kaspi"
    mine = tmp_path / "tariffs.toml"
    mine.write_text(BASE, encoding="utf-8")
    assert FeeSchedule.load(mine) == loaded()


def test_a_schedule_built_without_the_checks_still_refuses_what_it_cannot_price() -> None:
    # Only the loader checks completeness; a schedule made by hand answers with a reason code.
    partial = FeeSchedule({"p": TariffProfile("p", "P", ())}, {"a": "A"}, {}, "p")
    with pytest.raises(TariffError) as raised:
        partial.quote_fee("p", Operation.service("a", M("1")))
    assert raised.value.reason is ReasonCode.UNKNOWN_CATEGORY
    assert str(raised.value) == f"profile 'p' cannot price {Operation.service('a', M('1'))}"
    with pytest.raises(TariffError) as unknown:
        partial.quote_fee("q", Operation.service("a", M("1")))
    assert unknown.value.reason is ReasonCode.UNKNOWN_TARIFF_PROFILE
    assert str(unknown.value) == "unknown tariff profile 'q'"


def _delete(path: tuple[str, ...]) -> Callable[[dict[str, Any]], object]:
    def change(d: dict[str, Any]) -> None:
        for key in path[:-1]:
            d = d[key]
        del d[path[-1]]

    return change


def _set(path: tuple[str, ...], value: object) -> Callable[[dict[str, Any]], object]:
    def change(d: dict[str, Any]) -> None:
        for key in path[:-1]:
            d = d[key]
        d[path[-1]] = copy.deepcopy(value)

    return change


RULE = "profile 'p' rule 'p.x': "
REFUSED: list[tuple[str, Callable[[dict[str, Any]], object], str]] = [
    ("no categories", _delete(("categories",)), "missing or empty [categories] table"),
    ("empty categories", _set(("categories",), {}), "missing or empty [categories] table"),
    ("categories as a list", _set(("categories",), ["a"]), "missing or empty [categories] table"),
    (
        "a category without text",
        _set(("categories", "a"), 1),
        "[categories] a: the value is a description string",
    ),
    (
        "a transfer kind missing",
        _delete(("transfer_kinds", "own_accounts")),
        "transfer_kinds must be exactly "
        "['own_accounts', 'card_to_card', 'account_internal', 'account_external']",
    ),
    ("no profiles", _delete(("profiles",)), "no [profiles] table"),
    ("empty profiles", _set(("profiles",), {}), "no [profiles] table"),
    ("profiles as a list", _set(("profiles",), [1]), "no [profiles] table"),
    ("an unknown default", _set(("default_profile",), "q"), "default_profile 'q' is not a profile"),
    ("a default that is not text", _set(("default_profile",), 1), "default_profile 1 is not a profile"),
    (
        "a profile without rules",
        _delete(("profiles", "p", "rules")),
        "profile 'p' needs a description and [[rules]]",
    ),
    (
        "a profile that is not a table",
        _set(("profiles", "p"), "x"),
        "profile 'p' needs a description and [[rules]]",
    ),
    (
        "a rule that is not a table",
        lambda d: d["profiles"]["p"]["rules"].append("x"),
        "profile 'p': every rule needs a string id",
    ),
    (
        "a rule without a text id",
        lambda d: rules(d).append({"id": 1}),
        "profile 'p': every rule needs a string id",
    ),
    (
        "empty providers",
        add({"fee": "1", "providers": []}),
        RULE + "providers must be a non-empty list of strings",
    ),
    (
        "providers not text",
        add({"fee": "1", "providers": [1]}),
        RULE + "providers must be a non-empty list of strings",
    ),
    (
        "providers not a list",
        add({"fee": "1", "providers": "x"}),
        RULE + "providers must be a non-empty list of strings",
    ),
    (
        "providers on a top-up",
        add({"operation": "top_up", "fee": "1", "providers": ["x"]}),
        RULE + "categories/providers only select service rules",
    ),
    (
        "categories on a top-up",
        add({"operation": "top_up", "fee": "1", "categories": ["a"]}),
        RULE + "categories/providers only select service rules",
    ),
    (
        "transfer kinds on a service",
        add({"fee": "1", "transfer_kinds": ["own_accounts"]}),
        RULE + "transfer_kinds only select transfer rules",
    ),
    (
        "an unknown transfer kind",
        add({"operation": "transfer", "fee": "1", "transfer_kinds": ["zz"]}),
        RULE + "unknown transfer_kinds ['zz']",
    ),
    ("an unknown category", add({"fee": "1", "categories": ["zz"]}), RULE + "unknown categories ['zz']"),
    ("an unknown operation", add({"operation": "sevrice", "fee": "1"}), RULE + "unknown operation 'sevrice'"),
    ("no operation", lambda d: rules(d).append({"id": "p.x", "fee": "1"}), RULE + "unknown operation None"),
    ("an unknown key", add({"fee": "1", "colour": 1}), RULE + "unknown keys ['colour']"),
    ("tiers not a list", add({"tiers": "x"}), RULE + "tiers must be a non-empty list"),
    ("no tiers", add({"tiers": []}), RULE + "tiers must be a non-empty list"),
    (
        "a tier without a fee",
        add({"tiers": [{"from": "0"}]}),
        RULE + "each tier is { from = ..., fee = ... }",
    ),
    ("a tier that is not a table", add({"tiers": ["0"]}), RULE + "each tier is { from = ..., fee = ... }"),
    (
        "a first tier above 0",
        add({"tiers": [{"from": "1", "fee": "0"}]}),
        RULE + "the first tier must start at 0",
    ),
    (
        "tiers out of order",
        add({"tiers": [{"from": "0", "fee": "0"}, {"from": "5", "fee": "1"}, {"from": "5", "fee": "2"}]}),
        RULE + "tiers must start at strictly increasing amounts",
    ),
    (
        "a minimum on tiers",
        add({"tiers": [{"from": "0", "fee": "0"}], "minimum": "1"}),
        RULE + "minimum applies only to a percent fee",
    ),
    (
        "two forms",
        add({"fee": "1", "percent": "1"}),
        RULE + "exactly one of fee / percent / tiers, got ['fee', 'percent']",
    ),
    ("no form", add({}), RULE + "exactly one of fee / percent / tiers, got []"),
    ("a rate that is not a number", add({"percent": "x"}), RULE + "not a percentage 'x'"),
    ("a rate that is not finite", add({"percent": "NaN"}), RULE + "percentage out of range 'NaN'"),
    ("a negative rate", add({"percent": "-0.01"}), RULE + "percentage out of range '-0.01'"),
    ("a rate over 100", add({"percent": "100.01"}), RULE + "percentage out of range '100.01'"),
    ("a float rate", add({"percent": 0.5}), RULE + "percentages are strings, got 0.5"),
    ("a float fee", add({"fee": 1.5}), RULE + "amounts are strings in tenge, got 1.5"),
    ("a negative fee", add({"fee": "-1"}), RULE + "negative amount '-1'"),
    ("a duplicate rule id", lambda d: rules(d).append({**rules(d)[0]}), "rule ids must be unique"),
    (
        "no red bill rule",
        lambda d: rules(d).__delitem__(3),
        f"profile 'p' has no rule for {Operation.of(OperationKind.RED_BILL, Money.zero())}",
    ),
    (
        "a transfer kind left out",
        lambda d: rules(d)[0].update(transfer_kinds=["own_accounts", "card_to_card", "account_internal"]),
        f"profile 'p' has no rule for {Operation.transfer(TransferKind.ACCOUNT_EXTERNAL, Money.zero())}",
    ),
    (
        "a category left out",
        lambda d: rules(d)[4].update(categories=["a"]),
        f"profile 'p' has no rule for {Operation.service('b', Money.zero(), chr(0) + 'any-other-provider')}",
    ),
    (
        "two rules for one provider",
        lambda d: rules(d).extend(
            [
                {"id": "p.x1", "operation": "service", "providers": ["x"], "fee": "1"},
                {"id": "p.x2", "operation": "service", "providers": ["X"], "fee": "2"},
            ]
        ),
        f"profile 'p': rules p.x1, p.x2 all match {Operation.service('a', Money.zero(), 'x')}",
    ),
]


@pytest.mark.parametrize(
    ("change", "message"), [(c, m) for _, c, m in REFUSED], ids=[n for n, _, _ in REFUSED]
)
def test_malformed_tariff_data_is_refused_with_its_place(
    change: Callable[[dict[str, Any]], object], message: str
) -> None:
    with pytest.raises(TariffDataError) as raised:
        loaded(change)
    assert str(raised.value) == message
