"""Business validation of payment requests: a reason code, or None when the request may proceed."""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import Final, assert_never

from services.payments.domain.reasons import ReasonCode
from services.payments.domain.requests import (
    AccountType,
    Channel,
    Funding,
    Merchant,
    PaymentRequest,
    PayRedBillRequest,
    PayServiceRequest,
    PurchaseRequest,
    TopUpRequest,
    TransferRequest,
)

# Interpretation: the seeds (000, 003) describe service payments, purchases and transfers as an
# in-app flow with an SMS code to the registered phone, so those are APP-only. Cash enters only at
# terminals and ATMs (domain §1 Wallet, §4 payment channels).
APP_ONLY: Final = frozenset({Channel.APP})
CASH_CHANNELS: Final = frozenset({Channel.TERMINAL, Channel.ATM})

# issue #3: PayService funding is GOLD, WALLET or EXTERNAL_CARD (a card of another bank).
PAY_SERVICE_FUNDING: Final = frozenset({Funding.GOLD, Funding.WALLET, Funding.EXTERNAL_CARD})
# issue #3: a purchase is funded by GOLD or RED; bonuses are a separate part, never the funding.
PURCHASE_FUNDING: Final = frozenset({Funding.GOLD, Funding.RED})
# domain §4: Red bills are paid with Gold in the app, or with cash at Kaspi terminals and ATMs.
RED_BILL_FUNDING: Final[Mapping[Channel, frozenset[Funding]]] = {
    Channel.APP: frozenset({Funding.GOLD}),
    Channel.TERMINAL: frozenset({Funding.CASH}),
    Channel.ATM: frozenset({Funding.CASH}),
}
TOP_UP_ACCOUNTS: Final = frozenset({AccountType.GOLD, AccountType.WALLET})


def validate_request(
    request: PaymentRequest, *, known_categories: Set[str] | None = None
) -> ReasonCode | None:
    """Return why ``request`` must be rejected, or None; ``known_categories`` checks PayService."""
    if request.amount.tiyn <= 0:
        return ReasonCode.INVALID_AMOUNT
    if isinstance(request, TopUpRequest):
        return _top_up(request)
    if isinstance(request, PayServiceRequest):
        return _pay_service(request, known_categories)
    if isinstance(request, PurchaseRequest):
        return _purchase(request)
    if isinstance(request, TransferRequest):
        return _transfer(request)
    if isinstance(request, PayRedBillRequest):
        return _red_bill(request)
    assert_never(request)


def _top_up(request: TopUpRequest) -> ReasonCode | None:
    # domain §1: the Wallet is "topped up with cash at terminals"; terminals and ATMs give no change,
    # so the whole inserted amount is credited and there is nothing else to check.
    if request.channel not in CASH_CHANNELS:
        return ReasonCode.CHANNEL_NOT_ALLOWED
    if request.account not in TOP_UP_ACCOUNTS:
        return ReasonCode.ACCOUNT_NOT_ALLOWED
    return None


def _pay_service(request: PayServiceRequest, known_categories: Set[str] | None) -> ReasonCode | None:
    if request.channel not in APP_ONLY:
        return ReasonCode.CHANNEL_NOT_ALLOWED
    if request.funding not in PAY_SERVICE_FUNDING:
        return ReasonCode.FUNDING_NOT_ALLOWED
    if known_categories is not None and request.category not in known_categories:
        return ReasonCode.UNKNOWN_CATEGORY
    if not request.provider.strip():
        return ReasonCode.UNKNOWN_PROVIDER
    # domain §2 step 1: the customer enters their personal account number at the provider.
    if not request.provider_account.strip():
        return ReasonCode.UNKNOWN_PROVIDER_ACCOUNT
    return None


def _purchase(request: PurchaseRequest) -> ReasonCode | None:
    if request.channel not in APP_ONLY:
        return ReasonCode.CHANNEL_NOT_ALLOWED
    if request.funding not in PURCHASE_FUNDING:
        return ReasonCode.FUNDING_NOT_ALLOWED
    if request.bonus_part.tiyn != 0:
        # domain §3 (004): bonuses can be spent only in Kaspi Magazin.
        if request.merchant != Merchant.KASPI_MAGAZIN:
            return ReasonCode.BONUS_NOT_ALLOWED
        # The 60 % cap is the bonus service's decision (issue #3); here only the shape is checked:
        # a positive part that leaves something for the funding source to pay.
        if request.bonus_part.tiyn < 0 or request.bonus_part >= request.amount:
            return ReasonCode.BONUS_PART_INVALID
    return None


def _transfer(request: TransferRequest) -> ReasonCode | None:
    if request.channel not in APP_ONLY:
        return ReasonCode.CHANNEL_NOT_ALLOWED
    if not request.recipient_id.strip():
        return ReasonCode.UNKNOWN_RECIPIENT
    if request.is_own and request.source == request.target:
        return ReasonCode.SAME_ACCOUNT_TRANSFER
    return None


def _red_bill(request: PayRedBillRequest) -> ReasonCode | None:
    # domain §4: "Not allowed: paying at a branch cashier's desk, or paying with Kaspi Bonuses".
    if request.channel == Channel.CASHIER:
        return ReasonCode.CASHIER_NOT_ALLOWED_FOR_RED
    if request.use_bonus or request.funding == Funding.BONUS:
        return ReasonCode.BONUS_NOT_ALLOWED_FOR_RED
    allowed = RED_BILL_FUNDING.get(request.channel)
    if allowed is None:
        return ReasonCode.CHANNEL_NOT_ALLOWED
    if request.funding not in allowed:
        return ReasonCode.FUNDING_NOT_ALLOWED
    return None
