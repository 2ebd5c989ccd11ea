"""Cashback rules as data: effective-dated rule sets loaded from ``rules.toml`` and validated."""

from __future__ import annotations

import itertools
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, TypeVar

from .facts import NEVER_ACCRUES, Funding, Merchant, PaymentFacts, PaymentKind, business_date

DEFAULT_RULES_PATH: Final = Path(__file__).resolve().parent.parent / "rules.toml"
# "Bonuses of up to 15 % go to promotional purchases at partners" (brief §3, seed 004).
PROMO_MAX_PERCENT: Final = Decimal(15)
CURRENT_RULE_SET: Final = "current"

_E = TypeVar("_E", bound=StrEnum)


class RulesError(ValueError):
    """The rules data is malformed or inconsistent; the message names the offending entry."""


def _norm(text: str) -> str:
    return text.strip().casefold()


@dataclass(frozen=True, slots=True)
class Criteria:
    """What a payment must look like for a rule to apply; ``None`` means any value."""

    kinds: frozenset[PaymentKind] | None = None
    categories: frozenset[str] | None = None
    providers: frozenset[str] | None = None
    merchants: frozenset[Merchant] | None = None
    fundings: frozenset[Funding] | None = None

    def matches(self, payment: PaymentFacts) -> bool:
        """True when every given criterion holds; categories and providers compare case-folded."""
        if self.kinds is not None and payment.kind not in self.kinds:
            return False
        if self.categories is not None and (
            payment.category is None or _norm(payment.category) not in self.categories
        ):
            return False
        if self.providers is not None and (
            payment.provider is None or _norm(payment.provider) not in self.providers
        ):
            return False
        if self.merchants is not None and payment.merchant not in self.merchants:
            return False
        return self.fundings is None or payment.funding in self.fundings


@dataclass(frozen=True, slots=True)
class CashbackRule:
    """One rule: a fixed ``percent``, or ``promotional`` (the percent of the partner's promotion)."""

    rule_id: str
    criteria: Criteria
    percent: Decimal | None
    promotional: bool = False


@dataclass(frozen=True, slots=True)
class Promotion:
    """A partner promotion: ``percent`` on Kaspi QR purchases at one partner, dates ``[from, to)``."""

    promotion_id: str
    partner_id: str
    percent: Decimal
    valid_from: date
    valid_to: date

    def active_on(self, day: date) -> bool:
        """True when ``day`` (an Asia/Almaty date) is inside the half-open window."""
        return self.valid_from <= day < self.valid_to


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """The rule that applies to a payment, with the percent to pay and the promotion if any."""

    rule_set: str
    rule: CashbackRule
    percent: Decimal
    promotion: Promotion | None


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A bonus program in force on Asia/Almaty dates ``[effective_from, effective_to)``."""

    set_id: str
    effective_from: date
    effective_to: date | None
    rules: tuple[CashbackRule, ...]
    promotions: tuple[Promotion, ...] = ()
    max_percent: Decimal | None = None
    source: str = ""

    def in_force_on(self, day: date) -> bool:
        """True when ``day`` is inside the half-open window (``None`` end = open-ended)."""
        return self.effective_from <= day and (self.effective_to is None or day < self.effective_to)

    def promotion_for(self, partner_id: str | None, day: date) -> Promotion | None:
        """The partner's promotion active on ``day``; windows never overlap, so at most one."""
        if partner_id is None:
            return None
        return next(
            (p for p in self.promotions if p.partner_id == partner_id and p.active_on(day)),
            None,
        )

    def match(self, payment: PaymentFacts) -> RuleMatch | None:
        """The first rule, in data order, that applies to ``payment``; ``None`` when none does."""
        day = payment.business_date
        for rule in self.rules:
            if not rule.criteria.matches(payment):
                continue
            if rule.promotional:
                promotion = self.promotion_for(payment.partner_id, day)
                if promotion is None:
                    continue  # a partner without a promotion that day earns nothing from this rule
                return RuleMatch(self.set_id, rule, promotion.percent, promotion)
            assert rule.percent is not None  # guaranteed by the loader
            return RuleMatch(self.set_id, rule, rule.percent, None)
        return None


@dataclass(frozen=True, slots=True)
class BonusRules:
    """All rule sets, in date order with non-overlapping windows."""

    rule_sets: tuple[RuleSet, ...]

    def rule_set_on(self, day: date) -> RuleSet | None:
        """The rule set in force on an Asia/Almaty business date, if any."""
        return next((s for s in self.rule_sets if s.in_force_on(day)), None)

    def rule_set_at(self, instant: datetime) -> RuleSet | None:
        """The rule set in force at an aware instant (judged by its Asia/Almaty date)."""
        return self.rule_set_on(business_date(instant))


# -- loading -----------------------------------------------------------------------------------


def load_rules(path: Path | str | None = None, *, current_start: date | None = None) -> BonusRules:
    """Load and validate the rules file (default: the shipped ``rules.toml``)."""
    # current_start overrides the start of the `current` rule set (seed 004 is undated); the set
    # before it ends there, because a set without effective_to runs until the next one starts.
    file = Path(path) if path is not None else DEFAULT_RULES_PATH
    return parse_rules(file.read_text(encoding="utf-8"), current_start=current_start, source=str(file))


def parse_rules(text: str, *, current_start: date | None = None, source: str = "<rules>") -> BonusRules:
    """Parse and validate rules from TOML text; raises ``RulesError`` with the offending entry."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{source}: not valid TOML: {exc}") from exc
    return build_rules(data, current_start=current_start, source=source)


def build_rules(
    data: Mapping[str, Any], *, current_start: date | None = None, source: str = "<rules>"
) -> BonusRules:
    """Build validated rules from already-parsed TOML data."""
    _only_keys(data, {"rule_sets"}, source)
    raw_sets = _list_of_tables(data.get("rule_sets"), f"{source}: rule_sets", required=True)
    sets = [_rule_set(raw, f"{source}: rule_sets[{i}]") for i, raw in enumerate(raw_sets)]
    if current_start is not None:
        if not any(s.set_id == CURRENT_RULE_SET for s in sets):
            raise RulesError(f"{source}: current_start given but there is no rule set {CURRENT_RULE_SET!r}")
        sets = [_with_start(s, current_start) if s.set_id == CURRENT_RULE_SET else s for s in sets]
    _check_timeline(sets, source)
    _check_unique_ids(sets, source)
    # A set without an explicit end runs until the next set starts (half-open, so no day is shared).
    resolved = [
        _with_end(s, sets[i + 1].effective_from) if s.effective_to is None and i + 1 < len(sets) else s
        for i, s in enumerate(sets)
    ]
    return BonusRules(tuple(resolved))


def _with_start(rule_set: RuleSet, start: date) -> RuleSet:
    return RuleSet(
        rule_set.set_id,
        start,
        rule_set.effective_to,
        rule_set.rules,
        rule_set.promotions,
        rule_set.max_percent,
        rule_set.source,
    )


def _with_end(rule_set: RuleSet, end: date) -> RuleSet:
    return RuleSet(
        rule_set.set_id,
        rule_set.effective_from,
        end,
        rule_set.rules,
        rule_set.promotions,
        rule_set.max_percent,
        rule_set.source,
    )


def _check_timeline(sets: Sequence[RuleSet], source: str) -> None:
    for current in sets:
        if current.effective_to is not None and current.effective_to <= current.effective_from:
            raise RulesError(
                f"{source}: rule set {current.set_id!r}: effective_to {current.effective_to} "
                f"must be after effective_from {current.effective_from}"
            )
    for earlier, later in itertools.pairwise(sets):
        if later.effective_from <= earlier.effective_from:
            raise RulesError(
                f"{source}: rule sets must be in date order: {later.set_id!r} starts "
                f"{later.effective_from}, not after {earlier.set_id!r} ({earlier.effective_from})"
            )
        if earlier.effective_to is not None and earlier.effective_to > later.effective_from:
            raise RulesError(
                f"{source}: rule sets overlap: {earlier.set_id!r} runs to {earlier.effective_to} "
                f"but {later.set_id!r} starts {later.effective_from}"
            )


def _check_unique_ids(sets: Sequence[RuleSet], source: str) -> None:
    seen: set[str] = set()
    for ident in (
        [s.set_id for s in sets]
        + [r.rule_id for s in sets for r in s.rules]
        + [p.promotion_id for s in sets for p in s.promotions]
    ):
        if ident in seen:
            raise RulesError(f"{source}: duplicate id {ident!r}")
        seen.add(ident)


_SET_KEYS: Final = {"id", "source", "effective_from", "effective_to", "max_percent", "rules", "promotions"}
_RULE_KEYS: Final = {
    "id",
    "percent",
    "promotional",
    "kinds",
    "categories",
    "providers",
    "merchants",
    "fundings",
}
_PROMO_KEYS: Final = {"id", "partner_id", "percent", "from", "to"}


def _rule_set(raw: Mapping[str, Any], where: str) -> RuleSet:
    _only_keys(raw, _SET_KEYS, where)
    set_id = _text(raw, "id", where)
    where = f"{where} ({set_id})"
    max_percent = _percent(raw["max_percent"], f"{where}.max_percent") if "max_percent" in raw else None
    rules = tuple(
        _rule(r, f"{where}.rules[{i}]", max_percent)
        for i, r in enumerate(_list_of_tables(raw.get("rules"), f"{where}.rules", required=False))
    )
    promotions = tuple(
        _promotion(p, f"{where}.promotions[{i}]", max_percent)
        for i, p in enumerate(_list_of_tables(raw.get("promotions"), f"{where}.promotions", required=False))
    )
    if promotions and not any(r.promotional for r in rules):
        raise RulesError(f"{where}: has promotions but no promotional rule to apply them")
    _check_promotions_disjoint(promotions, where)
    effective_to = _date(raw["effective_to"], f"{where}.effective_to") if "effective_to" in raw else None
    return RuleSet(
        set_id=set_id,
        effective_from=_date(raw.get("effective_from"), f"{where}.effective_from"),
        effective_to=effective_to,
        rules=rules,
        promotions=promotions,
        max_percent=max_percent,
        source=str(raw.get("source", "")),
    )


def _rule(raw: Mapping[str, Any], where: str, max_percent: Decimal | None) -> CashbackRule:
    _only_keys(raw, _RULE_KEYS, where)
    rule_id = _text(raw, "id", where)
    where = f"{where} ({rule_id})"
    promotional = raw.get("promotional", False)
    if not isinstance(promotional, bool):
        raise RulesError(f"{where}.promotional: must be true or false")
    if promotional == ("percent" in raw):
        raise RulesError(f"{where}: give exactly one of percent or promotional = true")
    percent = None if promotional else _percent(raw["percent"], f"{where}.percent", max_percent)
    kinds = _enum_set(raw, "kinds", PaymentKind, where)
    if kinds is not None and kinds & NEVER_ACCRUES:
        never = ", ".join(sorted(kinds & NEVER_ACCRUES))
        raise RulesError(f"{where}.kinds: {never} never earn bonus")
    criteria = Criteria(
        kinds=kinds,
        categories=_str_set(raw, "categories", where),
        providers=_str_set(raw, "providers", where),
        merchants=_enum_set(raw, "merchants", Merchant, where),
        fundings=_enum_set(raw, "fundings", Funding, where),
    )
    return CashbackRule(rule_id, criteria, percent, promotional)


def _promotion(raw: Mapping[str, Any], where: str, max_percent: Decimal | None) -> Promotion:
    _only_keys(raw, _PROMO_KEYS, where)
    promotion_id = _text(raw, "id", where)
    where = f"{where} ({promotion_id})"
    cap = PROMO_MAX_PERCENT if max_percent is None else min(PROMO_MAX_PERCENT, max_percent)
    valid_from = _date(raw.get("from"), f"{where}.from")
    valid_to = _date(raw.get("to"), f"{where}.to")
    if valid_to <= valid_from:
        raise RulesError(f"{where}: to {valid_to} must be after from {valid_from}")
    return Promotion(
        promotion_id=promotion_id,
        partner_id=_text(raw, "partner_id", where),
        percent=_percent(raw.get("percent"), f"{where}.percent", cap),
        valid_from=valid_from,
        valid_to=valid_to,
    )


def _check_promotions_disjoint(promotions: Sequence[Promotion], where: str) -> None:
    by_partner = sorted(promotions, key=lambda p: (p.partner_id, p.valid_from))
    for a, b in itertools.pairwise(by_partner):
        if a.partner_id == b.partner_id and b.valid_from < a.valid_to:
            raise RulesError(
                f"{where}: promotions {a.promotion_id!r} and {b.promotion_id!r} overlap "
                f"for partner {a.partner_id!r}"
            )


# -- field helpers -----------------------------------------------------------------------------


def _only_keys(raw: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise RulesError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )


def _list_of_tables(value: Any, where: str, *, required: bool) -> list[Mapping[str, Any]]:
    if value is None:
        if required:
            raise RulesError(f"{where}: missing")
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise RulesError(f"{where}: must be an array of tables")
    if required and not value:
        raise RulesError(f"{where}: must not be empty")
    return value


def _text(raw: Mapping[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise RulesError(f"{where}.{key}: must be a non-empty string")
    return value.strip()


def _date(value: Any, where: str) -> date:
    # A TOML offset/local datetime is a datetime, which is also a date: refuse it explicitly.
    if not isinstance(value, date) or isinstance(value, datetime):
        raise RulesError(f"{where}: must be a TOML date such as 2025-01-31, got {value!r}")
    return value


def _percent(value: Any, where: str, cap: Decimal | None = None) -> Decimal:
    # Rates are Decimal, never float (shared/money.py): write "1.5" or 5, not 1.5.
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise RulesError(
            f'{where}: a percent is an integer or a string like "1.5", never a float; got {value!r}'
        )
    try:
        percent = Decimal(value)
    except InvalidOperation as exc:
        raise RulesError(f"{where}: not a number: {value!r}") from exc
    if not percent.is_finite() or not Decimal(0) < percent <= Decimal(100):
        raise RulesError(f"{where}: percent must be in (0, 100], got {value!r}")
    if cap is not None and percent > cap:
        raise RulesError(f"{where}: percent {percent} exceeds the maximum {cap}")
    return percent


def _str_set(raw: Mapping[str, Any], key: str, where: str) -> frozenset[str] | None:
    if key not in raw:
        return None
    value = raw[key]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise RulesError(f"{where}.{key}: must be a non-empty list of strings (omit the key to match any)")
    return frozenset(_norm(v) for v in value)


def _enum_set(raw: Mapping[str, Any], key: str, enum: type[_E], where: str) -> frozenset[_E] | None:
    names = _str_set(raw, key, where)
    if names is None:
        return None
    by_name = {_norm(member.value): member for member in enum}
    unknown = sorted(n for n in names if n not in by_name)
    if unknown:
        allowed = ", ".join(m.value for m in enum)
        raise RulesError(f"{where}.{key}: unknown value(s) {', '.join(unknown)}; allowed: {allowed}")
    return frozenset(by_name[n] for n in names)
