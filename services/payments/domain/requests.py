"""Request value objects for the payments domain.

These are local, pure mirrors of the command contracts; the handlers map the pydantic models onto
them. The enums are the contracts' own (``shared.contracts.common``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.contracts.common import AccountKind
from shared.contracts.common import Channel as Channel  # re-exported: the wire enums live in contracts
from shared.contracts.common import Funding as Funding
from shared.contracts.common import Merchant as Merchant
from shared.money import Money

# One definition of the wire enums: the contracts' (domain §1, §2, §4). ``AccountType`` is the
# contract's ``AccountKind`` (GOLD and WALLET, the latter by interpretation of domain §1).
AccountType = AccountKind


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
