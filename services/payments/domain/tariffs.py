"""The fee schedule loaded from ``services/payments/tariffs.toml``, and fee quotes (domain §2).

Tariffs are data, not code (domain §2): this module only reads, checks and applies them.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from pathlib import Path
from typing import Any, Final, assert_never

from services.payments.domain.fees import (
    FeeForm,
    FeeQuote,
    FeeRule,
    FixedFee,
    Operation,
    OperationKind,
    PercentFee,
    TariffDataError,
    TariffError,
    TariffProfile,
    Tier,
    TieredFee,
    TransferKind,
    normalise_provider,
)
from services.payments.domain.reasons import ReasonCode
from services.payments.domain.requests import (
    PaymentRequest,
    PayRedBillRequest,
    PayServiceRequest,
    PurchaseRequest,
    TopUpRequest,
    TransferRequest,
)
from shared.money import Money, MoneyError

DEFAULT_TARIFFS_PATH: Final = Path(__file__).resolve().parent.parent / "tariffs.toml"
_OTHER_PROVIDER: Final = "\x00any-other-provider"


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """All tariff profiles plus the category and transfer-kind catalogues."""

    profiles: Mapping[str, TariffProfile]
    categories: Mapping[str, str]
    transfer_kinds: Mapping[str, str]
    default_profile: str

    @classmethod
    def load(cls, path: Path | None = None) -> FeeSchedule:
        """Load and check the tariff file (default ``services/payments/tariffs.toml``)."""
        with (path or DEFAULT_TARIFFS_PATH).open("rb") as handle:
            return cls.from_mapping(tomllib.load(handle))

    @classmethod
    def from_toml(cls, text: str) -> FeeSchedule:
        """Parse and check tariff data given as TOML text."""
        return cls.from_mapping(tomllib.loads(text))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> FeeSchedule:
        """Build from parsed TOML; raises ``TariffDataError`` on anything malformed or ambiguous."""
        categories = _catalogue(data, "categories")
        transfer_kinds = _catalogue(data, "transfer_kinds")
        if set(transfer_kinds) != {kind.value for kind in TransferKind}:
            raise TariffDataError(f"transfer_kinds must be exactly {[k.value for k in TransferKind]}")
        raw_profiles = data.get("profiles")
        if not isinstance(raw_profiles, dict) or not raw_profiles:
            raise TariffDataError("no [profiles] table")
        profiles = {
            name: _profile(name, raw, categories, transfer_kinds) for name, raw in raw_profiles.items()
        }
        default = data.get("default_profile")
        if not isinstance(default, str) or default not in profiles:
            raise TariffDataError(f"default_profile {default!r} is not a profile")
        ids = [rule.id for profile in profiles.values() for rule in profile.rules]
        if len(ids) != len(set(ids)):
            raise TariffDataError("rule ids must be unique")
        schedule = cls(profiles, categories, transfer_kinds, default)
        schedule._check_complete()
        return schedule

    def quote_fee(self, profile: str, operation: Operation) -> FeeQuote:
        """Quote the fee for ``operation`` under ``profile``; ``TariffError`` carries a reason code."""
        tariff = self.profiles.get(profile)
        if tariff is None:
            raise TariffError(ReasonCode.UNKNOWN_TARIFF_PROFILE, f"unknown tariff profile {profile!r}")
        if operation.amount.is_negative:
            raise ValueError(f"cannot quote a fee for a negative amount {operation.amount}")
        if operation.kind == OperationKind.SERVICE and operation.category not in self.categories:
            raise TariffError(ReasonCode.UNKNOWN_CATEGORY, f"unknown service category {operation.category!r}")
        rule = tariff.rule_for(operation)
        if rule is None:  # unreachable for a schedule that passed _check_complete
            raise TariffError(ReasonCode.UNKNOWN_CATEGORY, f"profile {profile!r} cannot price {operation}")
        return FeeQuote(rule.form.compute(operation.amount), rule.id, rule.description)

    def _check_complete(self) -> None:
        """Every profile prices every known operation with exactly one rule."""
        for tariff in self.profiles.values():
            providers = {p for rule in tariff.rules for p in rule.providers or ()}
            zero = Money.zero()
            probes = [Operation.of(kind, zero) for kind in OperationKind if kind not in _SUBKINDED]
            probes += [Operation.transfer(TransferKind(kind), zero) for kind in self.transfer_kinds]
            probes += [
                Operation.service(category, zero, provider)
                for category in self.categories
                for provider in (*sorted(providers), _OTHER_PROVIDER)
            ]
            for probe in probes:
                if tariff.rule_for(probe) is None:
                    raise TariffDataError(f"profile {tariff.name!r} has no rule for {probe}")


_SUBKINDED: Final = frozenset({OperationKind.SERVICE, OperationKind.TRANSFER})


def transfer_kind_for(request: TransferRequest) -> TransferKind:
    """Map a transfer onto a tariff row.

    Interpretation: GOLD is a card account and every customer is a client of the bank, so a
    transfer to another customer is "card-to-card inside the bank"; between one's own accounts
    is the free own-accounts row.
    """
    return TransferKind.OWN_ACCOUNTS if request.is_own else TransferKind.CARD_TO_CARD


def operation_for(request: PaymentRequest) -> Operation:
    """The tariff operation a request is priced as."""
    if isinstance(request, PayServiceRequest):
        return Operation.service(request.category, request.amount, request.provider)
    if isinstance(request, TransferRequest):
        return Operation.transfer(transfer_kind_for(request), request.amount)
    if isinstance(request, TopUpRequest):
        return Operation.of(OperationKind.TOP_UP, request.amount)
    if isinstance(request, PurchaseRequest):
        return Operation.of(OperationKind.PURCHASE, request.amount)
    if isinstance(request, PayRedBillRequest):
        return Operation.of(OperationKind.RED_BILL, request.amount)
    assert_never(request)


def parse_money(value: object, where: str) -> Money:
    """Exactly parse a non-negative tenge string from tariff data."""
    if not isinstance(value, str):
        raise TariffDataError(f"{where}: amounts are strings in tenge, got {value!r}")
    try:
        money = Money.parse(value)
    except MoneyError as exc:
        raise TariffDataError(f"{where}: {exc}") from exc
    if money.is_negative:
        raise TariffDataError(f"{where}: negative amount {value!r}")
    return money


def parse_rate(value: object, where: str) -> Decimal:
    """Exactly parse a percentage string (``"0.5"``) from tariff data."""
    if not isinstance(value, str):
        raise TariffDataError(f"{where}: percentages are strings, got {value!r}")
    try:
        rate = Decimal(value)
    except InvalidOperation as exc:
        raise TariffDataError(f"{where}: not a percentage {value!r}") from exc
    if not rate.is_finite() or not Decimal(0) <= rate <= Decimal(100):
        raise TariffDataError(f"{where}: percentage out of range {value!r}")
    return rate


def _catalogue(data: Mapping[str, Any], key: str) -> dict[str, str]:
    table = data.get(key)
    if not isinstance(table, dict) or not table:
        raise TariffDataError(f"missing or empty [{key}] table")
    for name, text in table.items():
        if not isinstance(text, str):
            raise TariffDataError(f"[{key}] {name}: the value is a description string")
    return dict(table)


def _profile(
    name: str, raw: object, categories: Mapping[str, str], transfer_kinds: Mapping[str, str]
) -> TariffProfile:
    if not isinstance(raw, dict) or not isinstance(raw.get("rules"), list):
        raise TariffDataError(f"profile {name!r} needs a description and [[rules]]")
    rules = tuple(_rule(f"profile {name!r}", r, categories, transfer_kinds) for r in raw["rules"])
    return TariffProfile(name, str(raw.get("description", name)), rules)


_RULE_KEYS: Final = frozenset(
    {"id", "operation", "description", "categories", "providers", "transfer_kinds"}
    | {"fee", "percent", "minimum", "tiers"}
)


def _rule(
    where: str, raw: object, categories: Mapping[str, str], transfer_kinds: Mapping[str, str]
) -> FeeRule:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise TariffDataError(f"{where}: every rule needs a string id")
    where = f"{where} rule {raw['id']!r}"
    if unknown := set(raw) - _RULE_KEYS:
        raise TariffDataError(f"{where}: unknown keys {sorted(unknown)}")
    try:
        operation = OperationKind(str(raw.get("operation")))
    except ValueError as exc:
        raise TariffDataError(f"{where}: unknown operation {raw.get('operation')!r}") from exc
    rule_categories = _names(raw, "categories", where, categories)
    providers = _names(raw, "providers", where, None)
    kinds = _names(raw, "transfer_kinds", where, transfer_kinds)
    if operation != OperationKind.SERVICE and (rule_categories or providers):
        raise TariffDataError(f"{where}: categories/providers only select service rules")
    if operation != OperationKind.TRANSFER and kinds:
        raise TariffDataError(f"{where}: transfer_kinds only select transfer rules")
    return FeeRule(
        id=raw["id"],
        description=str(raw.get("description", raw["id"])),
        operation=operation,
        form=_form(raw, where),
        categories=rule_categories,
        providers=frozenset(normalise_provider(p) for p in providers) if providers else None,
        transfer_kinds=kinds,
    )


def _names(
    raw: Mapping[str, Any], key: str, where: str, known: Mapping[str, str] | None
) -> frozenset[str] | None:
    values = raw.get(key)
    if values is None:
        return None
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise TariffDataError(f"{where}: {key} must be a non-empty list of strings")
    if known is not None and (unknown := set(values) - set(known)):
        raise TariffDataError(f"{where}: unknown {key} {sorted(unknown)}")
    return frozenset(values)


def _form(raw: Mapping[str, Any], where: str) -> FeeForm:
    forms = [key for key in ("fee", "percent", "tiers") if key in raw]
    if len(forms) != 1:
        raise TariffDataError(f"{where}: exactly one of fee / percent / tiers, got {forms}")
    if "minimum" in raw and forms != ["percent"]:
        raise TariffDataError(f"{where}: minimum applies only to a percent fee")
    if forms == ["fee"]:
        return FixedFee(parse_money(raw["fee"], where))
    if forms == ["percent"]:
        minimum = parse_money(raw["minimum"], where) if "minimum" in raw else None
        return PercentFee(parse_rate(raw["percent"], where), minimum)
    tiers_raw = raw["tiers"]
    if not isinstance(tiers_raw, list) or not tiers_raw:
        raise TariffDataError(f"{where}: tiers must be a non-empty list")
    tiers: list[Tier] = []
    for tier in tiers_raw:
        if not isinstance(tier, dict) or set(tier) != {"from", "fee"}:
            raise TariffDataError(f"{where}: each tier is {{ from = ..., fee = ... }}")
        tiers.append(Tier(parse_money(tier["from"], where), parse_money(tier["fee"], where)))
    if tiers[0].start.tiyn != 0:
        raise TariffDataError(f"{where}: the first tier must start at 0")
    if any(later.start <= earlier.start for earlier, later in pairwise(tiers)):
        raise TariffDataError(f"{where}: tiers must start at strictly increasing amounts")
    return TieredFee(tuple(tiers))
