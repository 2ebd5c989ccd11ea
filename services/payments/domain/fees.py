"""Fee model: priced operations, fee forms, tariff rules and profiles (domain §2 "Fees")."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from services.payments.domain.reasons import ReasonCode
from shared.money import Money


class OperationKind(StrEnum):
    """What is being priced."""

    SERVICE = "service"
    TRANSFER = "transfer"
    TOP_UP = "top_up"
    PURCHASE = "purchase"
    RED_BILL = "red_bill"


class TransferKind(StrEnum):
    """The Homebank transfer rows (domain §2); ``transfer_kind_for`` maps our transfers onto them."""

    OWN_ACCOUNTS = "own_accounts"
    CARD_TO_CARD = "card_to_card"
    ACCOUNT_INTERNAL = "account_internal"
    ACCOUNT_EXTERNAL = "account_external"


class TariffDataError(ValueError):
    """The tariff data file is malformed, ambiguous or incomplete."""


class TariffError(ValueError):
    """A fee cannot be quoted for this profile and operation; ``reason`` is the reject code."""

    def __init__(self, reason: ReasonCode, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def normalise_provider(provider: str) -> str:
    """Provider ids compare case-insensitively, with ``-`` and spaces read as ``_``."""
    return provider.strip().casefold().replace("-", "_").replace(" ", "_")


@dataclass(frozen=True, slots=True)
class Operation:
    """A priced operation: its kind, amount and the category/provider/transfer kind it names."""

    kind: OperationKind
    amount: Money
    category: str | None = None
    provider: str | None = None
    transfer_kind: TransferKind | None = None

    @classmethod
    def service(cls, category: str, amount: Money, provider: str | None = None) -> Operation:
        """A payment for services in ``category`` (optionally to a named provider)."""
        return cls(OperationKind.SERVICE, amount, category=category, provider=provider)

    @classmethod
    def transfer(cls, kind: TransferKind, amount: Money) -> Operation:
        """A transfer of the given tariff kind."""
        return cls(OperationKind.TRANSFER, amount, transfer_kind=kind)

    @classmethod
    def of(cls, kind: OperationKind, amount: Money) -> Operation:
        """An operation priced by kind alone (top-up, purchase, Red bill)."""
        return cls(kind, amount)


@dataclass(frozen=True, slots=True)
class FeeQuote:
    """The fee disclosed before the debit (domain §2 step 5) and the rule that produced it."""

    fee: Money
    rule_id: str
    description: str


@dataclass(frozen=True, slots=True)
class FixedFee:
    """A flat fee."""

    amount: Money

    def compute(self, amount: Money) -> Money:
        """The fee for ``amount``."""
        return self.amount


@dataclass(frozen=True, slots=True)
class PercentFee:
    """A percentage of the amount, rounded half up to the tiyn, with an optional minimum."""

    rate: Decimal
    minimum: Money | None = None

    def compute(self, amount: Money) -> Money:
        """The fee for ``amount``."""
        # domain §2 interpretation: percentage fees round half up to the tiyn.
        fee = amount.percent(self.rate, "half_up")
        if self.minimum is not None and fee < self.minimum:
            return self.minimum
        return fee


@dataclass(frozen=True, slots=True)
class Tier:
    """One tier: applies from ``start`` (inclusive) up to the next tier's start."""

    start: Money
    fee: Money


@dataclass(frozen=True, slots=True)
class TieredFee:
    """A fee by amount tier; see the tier rule in ``tariffs.toml``."""

    tiers: tuple[Tier, ...]

    def compute(self, amount: Money) -> Money:
        """The fee of the highest tier whose start is at most ``amount`` (compared in tiyn)."""
        fee = self.tiers[0].fee
        for tier in self.tiers:
            if amount >= tier.start:
                fee = tier.fee
        return fee


FeeForm = FixedFee | PercentFee | TieredFee


@dataclass(frozen=True, slots=True)
class FeeRule:
    """A tariff row: which operations it prices and how."""

    id: str
    description: str
    operation: OperationKind
    form: FeeForm
    categories: frozenset[str] | None = None
    providers: frozenset[str] | None = None
    transfer_kinds: frozenset[str] | None = None

    @property
    def precedence(self) -> int:
        """Provider rules beat category rules, which beat catch-alls of the same operation."""
        return 1 if self.providers is not None else 0

    def matches(self, op: Operation) -> bool:
        """True when this rule prices ``op``."""
        if op.kind != self.operation:
            return False
        if self.categories is not None and op.category not in self.categories:
            return False
        if self.providers is not None and (
            op.provider is None or normalise_provider(op.provider) not in self.providers
        ):
            return False
        return self.transfer_kinds is None or op.transfer_kind in self.transfer_kinds


@dataclass(frozen=True, slots=True)
class TariffProfile:
    """A named set of fee rules (``kaspi``, ``homebank``)."""

    name: str
    description: str
    rules: tuple[FeeRule, ...]

    def rule_for(self, op: Operation) -> FeeRule | None:
        """The rule that prices ``op``, or None; raises on an ambiguity."""
        matching = [rule for rule in self.rules if rule.matches(op)]
        if not matching:
            return None
        top = max(rule.precedence for rule in matching)
        best = [rule for rule in matching if rule.precedence == top]
        if len(best) > 1:
            ids = ", ".join(rule.id for rule in best)
            raise TariffDataError(f"profile {self.name!r}: rules {ids} all match {op}")
        return best[0]
