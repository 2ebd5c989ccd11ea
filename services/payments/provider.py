"""The provider step of a service payment: an adapter interface and a configurable simulator.

domain §2 step 6: delays come from the recipient company, not the bank. A delayed payment stays
PENDING_PROVIDER until the janitor asks the provider again; a failure returns the debit.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class ProviderResult(StrEnum):
    """What the provider answered."""

    ACCEPTED = "ACCEPTED"
    DELAYED = "DELAYED"
    FAILED = "FAILED"


class ProviderAdapter(Protocol):
    """A service provider gateway."""

    def knows(self, provider: str) -> bool:
        """Whether ``provider`` is a provider we can pay."""
        ...

    async def pay(self, provider: str, account: str, amount: int, payment_id: str) -> ProviderResult:
        """Ask the provider to accept a payment."""
        ...

    async def status(self, provider: str, payment_id: str) -> ProviderResult:
        """Ask again about a delayed payment (the janitor)."""
        ...


@dataclass(frozen=True, slots=True)
class ProviderSimulator:
    """A simulator: ``mode`` by default; provider codes can pick their own behaviour.

    Interpretation for tests and demos: a provider code starting with ``delay-`` is delayed (and
    then accepted by the janitor), ``fail-`` fails, ``delay-fail-`` is delayed and then fails, and
    ``unknown-`` is not a provider at all (UNKNOWN_PROVIDER).
    """

    mode: str = "success"

    def knows(self, provider: str) -> bool:
        """Every provider except ``unknown-*``."""
        return not provider.startswith("unknown-")

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
