"""Request value objects for the payments domain.

These are local, pure mirrors of the command contracts; the handlers map the pydantic models onto
them. Enum values are the wire strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from shared.money import Money


class Channel(StrEnum):
    """Where the customer started the operation."""

    APP = "APP"
    TERMINAL = "TERMINAL"
    ATM = "ATM"
    CASHIER = "CASHIER"


class Funding(StrEnum):
    """What pays for the operation.

    ``CASH`` is an addition to the contract's funding list: cash inserted at a TERMINAL or ATM,
    the only funding of a cash Red bill payment (domain §4 "cash at Kaspi terminals and ATMs").
    """

    GOLD = "GOLD"
    WALLET = "WALLET"
    EXTERNAL_CARD = "EXTERNAL_CARD"
    RED = "RED"
    BONUS = "BONUS"
    CASH = "CASH"


class Merchant(StrEnum):
    """The merchant kinds a purchase can go to (domain §2, §3)."""

    KASPI_MAGAZIN = "KASPI_MAGAZIN"
    KASPI_QR = "KASPI_QR"
    KASPI_TRAVEL = "KASPI_TRAVEL"


class AccountType(StrEnum):
    """A customer's money account in payments (domain §1: Gold, and Wallet by interpretation)."""

    GOLD = "GOLD"
    WALLET = "WALLET"


@dataclass(frozen=True, slots=True)
class TopUpRequest:
    """Cash in at a terminal or ATM; no change is given, the whole amount is credited."""

    customer_id: str
    channel: Channel
    amount: Money
    account: AccountType


@dataclass(frozen=True, slots=True)
class PayServiceRequest:
    """A payment to a service provider (utilities, mobile, taxes, …)."""

    customer_id: str
    channel: Channel
    amount: Money
    funding: Funding
    category: str
    provider: str
    provider_account: str


@dataclass(frozen=True, slots=True)
class PurchaseRequest:
    """A merchant purchase; ``bonus_part`` is the share paid with bonuses (Kaspi Magazin only)."""

    customer_id: str
    channel: Channel
    amount: Money
    funding: Funding
    merchant: Merchant
    bonus_part: Money = field(default_factory=Money.zero)


@dataclass(frozen=True, slots=True)
class TransferRequest:
    """A transfer to another customer, or between the customer's own accounts."""

    customer_id: str
    channel: Channel
    amount: Money
    source: AccountType
    recipient_id: str
    target: AccountType = AccountType.GOLD

    @property
    def is_own(self) -> bool:
        """True when the money stays with the same customer."""
        return self.recipient_id == self.customer_id


@dataclass(frozen=True, slots=True)
class PayRedBillRequest:
    """A Kaspi Red bill repayment: Gold in the app, or cash at a terminal or ATM."""

    customer_id: str
    channel: Channel
    amount: Money
    funding: Funding
    use_bonus: bool = False


PaymentRequest = TopUpRequest | PayServiceRequest | PurchaseRequest | TransferRequest | PayRedBillRequest
