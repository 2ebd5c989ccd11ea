"""The provider step of a service payment: an adapter interface and a configurable simulator.

domain §2 step 6: delays come from the recipient company, not the bank. A delayed payment stays
PENDING_PROVIDER until the janitor asks the provider again; a failure returns the debit.

Before paying, the customer may check the debt (seed 000, "Checkskuld"): ``lookup`` asks the
provider what is owed on an account and, for some providers, the owner's name and address. The
simulator answers from ``services/payments/provider_simulator.toml``.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Protocol

from services.payments.domain.fees import normalise_provider
from shared.contracts.common import ServiceCategory
from shared.money import Money, MoneyError

DEFAULT_SIMULATOR_PATH: Final = Path(__file__).resolve().parent / "provider_simulator.toml"


class ProviderResult(StrEnum):
    """What the provider answered."""

    ACCEPTED = "ACCEPTED"
    DELAYED = "DELAYED"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class Debt:
    """A provider's answer to a debt lookup (seed 000, "Checkskuld")."""

    provider_name: str
    #: What is owed, in tiyn (0: nothing).
    debt: int
    #: The provider's ServiceCategory wire value, when it states one.
    category: str | None = None
    #: For the providers that show them: the owner's name and the property's address (personal data).
    owner_name: str | None = None
    owner_address: str | None = None


class ProviderUnavailable(Exception):
    """The provider could not answer a lookup (a technical failure on its side)."""


class ProviderAdapter(Protocol):
    """A service provider gateway."""

    def knows(self, provider: str) -> bool:
        """Whether ``provider`` is a provider we can pay."""
        ...

    async def lookup(self, provider: str, account: str) -> Debt | None:
        """The debt on ``account`` at ``provider``; None if the provider has no such account.

        Raises ``ProviderUnavailable`` when the provider cannot answer.
        """
        ...

    async def pay(self, provider: str, account: str, amount: int, payment_id: str) -> ProviderResult:
        """Ask the provider to accept a payment."""
        ...

    async def status(self, provider: str, payment_id: str) -> ProviderResult:
        """Ask again about a delayed payment (the janitor)."""
        ...


class SimulatorDataError(ValueError):
    """``provider_simulator.toml`` is malformed."""


@dataclass(frozen=True, slots=True)
class SimulatedProvider:
    """One provider of the simulator's data: its name, category and the accounts it knows."""

    name: str
    category: str | None
    shows_owner: bool
    #: account number -> (debt in tiyn, owner's name, address)
    accounts: Mapping[str, tuple[int, str | None, str | None]]


@dataclass(frozen=True, slots=True)
class SimulatorData:
    """The simulator's providers by normalised code (``provider_simulator.toml``)."""

    providers: Mapping[str, SimulatedProvider]

    @classmethod
    def load(cls, path: Path | None = None) -> SimulatorData:
        """Read and check the data file (default ``services/payments/provider_simulator.toml``)."""
        with (path or DEFAULT_SIMULATOR_PATH).open("rb") as handle:
            return cls.from_mapping(tomllib.load(handle))

    @classmethod
    def from_toml(cls, text: str) -> SimulatorData:
        """Parse and check simulator data given as TOML text."""
        return cls.from_mapping(tomllib.loads(text))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SimulatorData:
        """Build from parsed TOML; ``SimulatorDataError`` on anything malformed."""
        if data.get("schema_version") != 1:
            raise SimulatorDataError("schema_version must be 1")
        providers: dict[str, SimulatedProvider] = {}
        for raw in data.get("providers", []):
            code = _text(raw, "code")
            key = normalise_provider(code)
            if key in providers:
                raise SimulatorDataError(f"provider {code!r} is listed twice")
            category = raw.get("category")
            if category is not None and category not in {c.value for c in ServiceCategory}:
                raise SimulatorDataError(f"{code}: unknown category {category!r}")
            shows_owner = raw.get("shows_owner", False)
            if not isinstance(shows_owner, bool):
                raise SimulatorDataError(f"{code}: shows_owner must be true or false")
            accounts: dict[str, tuple[int, str | None, str | None]] = {}
            for entry in raw.get("accounts", []):
                account = _text(entry, "account")
                if account in accounts:
                    raise SimulatorDataError(f"{code}: account {account!r} is listed twice")
                debt = entry.get("debt")
                if not isinstance(debt, str):  # TOML floats are refused: amounts are exact strings
                    raise SimulatorDataError(f"{code}/{account}: debt must be a string in tenge")
                try:
                    tiyn = Money.parse(debt).tiyn
                except MoneyError as exc:
                    raise SimulatorDataError(f"{code}/{account}: {exc}") from None
                if tiyn < 0:
                    raise SimulatorDataError(f"{code}/{account}: a debt is never negative")
                owner = _optional_text(entry, "owner") if shows_owner else None
                address = _optional_text(entry, "address") if shows_owner else None
                accounts[account] = (tiyn, owner, address)
            providers[key] = SimulatedProvider(_text(raw, "name"), category, shows_owner, accounts)
        return cls(providers)

    def lookup(self, provider: str, account: str) -> Debt | None:
        """The debt on ``account`` at ``provider``, or None when either is not in the data."""
        known = self.providers.get(normalise_provider(provider))
        if known is None or account not in known.accounts:
            return None
        debt, owner, address = known.accounts[account]
        return Debt(known.name, debt, known.category, owner, address)


def _text(table: Any, key: str) -> str:
    value = table.get(key) if isinstance(table, dict) else None
    if not isinstance(value, str) or not value.strip():
        raise SimulatorDataError(f"{key!r} must be a non-empty string in {table!r}")
    return value


def _optional_text(table: Any, key: str) -> str | None:
    return _text(table, key) if table.get(key) is not None else None


@functools.cache
def _default_data() -> SimulatorData:
    return SimulatorData.load()


@dataclass(frozen=True, slots=True)
class ProviderSimulator:
    """A simulator: ``mode`` by default; provider codes can pick their own behaviour.

    Interpretation for tests and demos: a provider code starting with ``delay-`` is delayed (and
    then accepted by the janitor), ``fail-`` fails, ``delay-fail-`` is delayed and then fails, and
    ``unknown-`` is not a provider at all (UNKNOWN_PROVIDER). Debt lookups answer from ``data``
    (``provider_simulator.toml``); a ``fail-*`` provider cannot answer one.
    """

    mode: str = "success"
    data: SimulatorData = field(default_factory=_default_data)

    def knows(self, provider: str) -> bool:
        """Every provider except ``unknown-*``."""
        return not provider.startswith("unknown-")

    async def lookup(self, provider: str, account: str) -> Debt | None:
        """The debt from the simulator's data; ``ProviderUnavailable`` for ``fail-*`` providers."""
        if provider.startswith("fail-"):
            raise ProviderUnavailable(f"provider {provider} did not answer")
        return self.data.lookup(provider, account)

    async def pay(self, provider: str, account: str, amount: int, payment_id: str) -> ProviderResult:
        """Accept, delay or fail according to the provider code or the default mode."""
        if provider.startswith("delay-"):
            return ProviderResult.DELAYED
        if provider.startswith("fail-"):
            return ProviderResult.FAILED
        return {
            "success": ProviderResult.ACCEPTED,
            "delay": ProviderResult.DELAYED,
            "fail": ProviderResult.FAILED,
        }[self.mode]

    async def status(self, provider: str, payment_id: str) -> ProviderResult:
        """A delayed payment resolves: failed for ``delay-fail-*``, else accepted."""
        if provider.startswith("delay-fail-"):
            return ProviderResult.FAILED
        return ProviderResult.ACCEPTED
