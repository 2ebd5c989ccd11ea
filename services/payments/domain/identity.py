"""The IIN rule of service payments (seed 000), read from ``services/payments/identity.toml``.

seed 000 (creating the wallet): "when you pay for some kinds of services you must enter your IIN;
if it does not match the name and date of birth you gave at registration, the operation is
impossible". So:

* which services need the payer's IIN is data (``identity.toml``): service categories (taxes,
  fines) and provider codes (a tax office's code needs it whatever category a command names);
* a payment to such a service without an IIN is declined (``MISSING``);
* an IIN that is given, for any service, must equal the registered one (``MISMATCH``);
* a customer whose registered IIN payments does not know cannot pass the check (``UNVERIFIABLE``).

Every outcome is declined with the contract's ``IDENTITY_MISMATCH`` (the payer's identity is not
confirmed); the message says which, never the IIN itself.

Interpretation: "the name and date of birth given at registration" is the registration payments
receives, ``CustomerRegistered``, whose IIN onboarding checked against them (a Kazakh IIN begins with
the date of birth). Comparing the IIN entered with the registered IIN is that check.
"""

from __future__ import annotations

import hmac
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from services.payments.domain.fees import normalise_provider
from shared.contracts.common import ServiceCategory

DEFAULT_IDENTITY_PATH: Final = Path(__file__).resolve().parent.parent / "identity.toml"
_KEYS: Final = frozenset({"schema_version", "categories", "providers"})


class IdentityDataError(ValueError):
    """``identity.toml`` is malformed."""


class IinCheck(StrEnum):
    """Why a service payment fails the IIN rule."""

    #: The service needs the payer's IIN and the command carries none.
    MISSING = "MISSING"
    #: The IIN given is not the registered one.
    MISMATCH = "MISMATCH"
    #: An IIN was given (or is needed) but payments has no registered IIN to compare it with.
    UNVERIFIABLE = "UNVERIFIABLE"


#: What a decline says (never the IIN).
IIN_MESSAGES: Final[Mapping[IinCheck, str]] = {
    IinCheck.MISSING: "this service needs the payer's IIN, and none was given",
    IinCheck.MISMATCH: "the IIN given does not match the customer's registered IIN",
    IinCheck.UNVERIFIABLE: "the customer's registered IIN is not known here, so no IIN can be matched",
}


@dataclass(frozen=True, slots=True)
class IinRules:
    """Which services need the payer's IIN: categories and (normalised) provider codes."""

    categories: frozenset[str]
    providers: frozenset[str]

    @classmethod
    def load(cls, path: Path | None = None) -> IinRules:
        """Read and check the data file (default ``services/payments/identity.toml``)."""
        with (path or DEFAULT_IDENTITY_PATH).open("rb") as handle:
            return cls.from_mapping(tomllib.load(handle))

    @classmethod
    def from_toml(cls, text: str) -> IinRules:
        """Parse and check identity data given as TOML text."""
        return cls.from_mapping(tomllib.loads(text))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> IinRules:
        """Build from parsed TOML; ``IdentityDataError`` on anything malformed or unknown."""
        unknown = set(data) - _KEYS
        if unknown:
            raise IdentityDataError(f"unknown keys {sorted(unknown)}")
        if data.get("schema_version") != 1:
            raise IdentityDataError("schema_version must be 1")
        categories = _names(data.get("categories", []), "categories")
        known = {c.value for c in ServiceCategory}
        strange = sorted(set(categories) - known)
        if strange:
            raise IdentityDataError(f"unknown service categories {strange}")
        providers = _names(data.get("providers", []), "providers")
        return cls(frozenset(categories), frozenset(normalise_provider(p) for p in providers))

    def requires_iin(self, category: str | None, provider: str) -> bool:
        """Whether a payment of ``category`` to ``provider`` must carry the payer's IIN."""
        return (category is not None and category in self.categories) or (
            normalise_provider(provider) in self.providers
        )


def _names(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise IdentityDataError(f"{what} must be a list of non-empty strings")
    return list(value)


def check_iin(*, required: bool, given: str | None, registered: str | None) -> IinCheck | None:
    """Why a payment fails the IIN rule, or None when it passes.

    ``required``: the service needs the IIN (``IinRules.requires_iin``); ``given``: the IIN on the
    command; ``registered``: the customer's registered IIN (None when payments does not know it).
    The comparison takes the same time wherever the two differ.
    """
    if given is None:
        return IinCheck.MISSING if required else None
    if registered is None:
        return IinCheck.UNVERIFIABLE
    if not hmac.compare_digest(given.encode(), registered.encode()):
        return IinCheck.MISMATCH
    return None
