"""Business validation of payment requests: one reason code per rule, None when allowed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.payments.domain import (
    AccountType,
    Channel,
    FeeSchedule,
    Funding,
    Merchant,
    PaymentRequest,
    PayRedBillRequest,
    PayServiceRequest,
    PurchaseRequest,
    ReasonCode,
    TopUpRequest,
    TransferRequest,
    validate_request,
)
from shared.money import Money

pytestmark = pytest.mark.unit

R = ReasonCode
A = Money.of_tenge(1_000)
CATEGORIES = frozenset(FeeSchedule.load().categories)


def service(
    channel: Channel = Channel.APP,
    funding: Funding = Funding.GOLD,
    category: str = "water",
    provider: str = "astana_erc",
    account: str = "00123",
    amount: Money = A,
) -> PayServiceRequest:
    return PayServiceRequest("c1", channel, amount, funding, category, provider, account)


def purchase(
    merchant: Merchant = Merchant.KASPI_MAGAZIN,
    funding: Funding = Funding.GOLD,
    bonus: Money | None = None,
    channel: Channel = Channel.APP,
) -> PurchaseRequest:
    return PurchaseRequest("c1", channel, A, funding, merchant, bonus or Money.zero())


CASES: list[tuple[str, PaymentRequest, ReasonCode | None]] = [
    # TopUp: cash at a TERMINAL or ATM into WALLET or GOLD (domain §1, issue #3).
    ("top-up terminal wallet", TopUpRequest("c1", Channel.TERMINAL, A, AccountType.WALLET), None),
    ("top-up atm gold", TopUpRequest("c1", Channel.ATM, A, AccountType.GOLD), None),
    ("top-up in app", TopUpRequest("c1", Channel.APP, A, AccountType.GOLD), R.CHANNEL_NOT_ALLOWED),
    ("top-up cashier", TopUpRequest("c1", Channel.CASHIER, A, AccountType.GOLD), R.CHANNEL_NOT_ALLOWED),
    ("top-up zero", TopUpRequest("c1", Channel.ATM, Money.zero(), AccountType.GOLD), R.INVALID_AMOUNT),
    # PayService: GOLD, WALLET or EXTERNAL_CARD.
    ("service gold", service(), None),
    ("service wallet", service(funding=Funding.WALLET), None),
    ("service external card", service(funding=Funding.EXTERNAL_CARD), None),
    ("service red", service(funding=Funding.RED), R.FUNDING_NOT_ALLOWED),
    ("service bonus", service(funding=Funding.BONUS), R.FUNDING_NOT_ALLOWED),
    ("service cash", service(funding=Funding.CASH), R.FUNDING_NOT_ALLOWED),
    ("service at terminal", service(channel=Channel.TERMINAL), R.CHANNEL_NOT_ALLOWED),
    ("service unknown category", service(category="casino"), R.UNKNOWN_CATEGORY),
    ("service blank provider", service(provider=" "), R.UNKNOWN_PROVIDER),
    ("service blank account", service(account=""), R.UNKNOWN_PROVIDER_ACCOUNT),
    ("service negative", service(amount=Money(-1)), R.INVALID_AMOUNT),
    # Purchase: GOLD or RED; a bonus part only in Kaspi Magazin (domain §3, 004).
    ("purchase gold", purchase(), None),
    ("purchase red qr", purchase(Merchant.KASPI_QR, Funding.RED), None),
    ("purchase travel gold", purchase(Merchant.KASPI_TRAVEL), None),
    ("purchase magazin with bonus", purchase(bonus=Money.of_tenge(600)), None),
    ("purchase red with bonus", purchase(funding=Funding.RED, bonus=Money.of_tenge(1)), None),
    ("purchase qr with bonus", purchase(Merchant.KASPI_QR, bonus=Money(1)), R.BONUS_NOT_ALLOWED),
    ("purchase travel with bonus", purchase(Merchant.KASPI_TRAVEL, bonus=Money(1)), R.BONUS_NOT_ALLOWED),
    ("purchase bonus covers all", purchase(bonus=A), R.BONUS_PART_INVALID),
    ("purchase negative bonus", purchase(bonus=Money(-1)), R.BONUS_PART_INVALID),
    ("purchase wallet", purchase(funding=Funding.WALLET), R.FUNDING_NOT_ALLOWED),
    ("purchase bonus funding", purchase(funding=Funding.BONUS), R.FUNDING_NOT_ALLOWED),
    ("purchase at cashier", purchase(channel=Channel.CASHIER), R.CHANNEL_NOT_ALLOWED),
    # Transfer: to another customer or between own accounts, never same account to itself.
    ("transfer to other", TransferRequest("c1", Channel.APP, A, AccountType.GOLD, "c2"), None),
    (
        "transfer own gold→wallet",
        TransferRequest("c1", Channel.APP, A, AccountType.GOLD, "c1", AccountType.WALLET),
        None,
    ),
    (
        "transfer own same account",
        TransferRequest("c1", Channel.APP, A, AccountType.WALLET, "c1", AccountType.WALLET),
        R.SAME_ACCOUNT_TRANSFER,
    ),
    (
        "transfer to other's same type",
        TransferRequest("c1", Channel.APP, A, AccountType.GOLD, "c2", AccountType.GOLD),
        None,
    ),
    (
        "transfer blank recipient",
        TransferRequest("c1", Channel.APP, A, AccountType.GOLD, ""),
        R.UNKNOWN_RECIPIENT,
    ),
    ("transfer at atm", TransferRequest("c1", Channel.ATM, A, AccountType.GOLD, "c2"), R.CHANNEL_NOT_ALLOWED),
    # PayRedBill: GOLD in the APP, or cash at TERMINAL/ATM; never CASHIER or bonuses (domain §4).
    ("red gold app", PayRedBillRequest("c1", Channel.APP, A, Funding.GOLD), None),
    ("red cash terminal", PayRedBillRequest("c1", Channel.TERMINAL, A, Funding.CASH), None),
    ("red cash atm", PayRedBillRequest("c1", Channel.ATM, A, Funding.CASH), None),
    ("red cashier", PayRedBillRequest("c1", Channel.CASHIER, A, Funding.CASH), R.CASHIER_NOT_ALLOWED_FOR_RED),
    (
        "red cashier gold",
        PayRedBillRequest("c1", Channel.CASHIER, A, Funding.GOLD),
        R.CASHIER_NOT_ALLOWED_FOR_RED,
    ),
    ("red bonus app", PayRedBillRequest("c1", Channel.APP, A, Funding.BONUS), R.BONUS_NOT_ALLOWED_FOR_RED),
    (
        "red gold with bonuses",
        PayRedBillRequest("c1", Channel.APP, A, Funding.GOLD, use_bonus=True),
        R.BONUS_NOT_ALLOWED_FOR_RED,
    ),
    ("red bonus atm", PayRedBillRequest("c1", Channel.ATM, A, Funding.BONUS), R.BONUS_NOT_ALLOWED_FOR_RED),
    ("red wallet app", PayRedBillRequest("c1", Channel.APP, A, Funding.WALLET), R.FUNDING_NOT_ALLOWED),
    ("red cash in app", PayRedBillRequest("c1", Channel.APP, A, Funding.CASH), R.FUNDING_NOT_ALLOWED),
    (
        "red gold at terminal",
        PayRedBillRequest("c1", Channel.TERMINAL, A, Funding.GOLD),
        R.FUNDING_NOT_ALLOWED,
    ),
    ("red zero", PayRedBillRequest("c1", Channel.APP, Money.zero(), Funding.GOLD), R.INVALID_AMOUNT),
]


@pytest.mark.parametrize(("request_", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_validation(request_: PaymentRequest, reason: ReasonCode | None) -> None:
    assert validate_request(request_, known_categories=CATEGORIES) == reason


def test_categories_are_checked_only_when_given() -> None:
    assert validate_request(service(category="casino")) is None


def test_plain_strings_compare_like_enums() -> None:
    # Mapping from contracts may hand over plain wire strings; the rules still hold.
    req = PayRedBillRequest("c1", "CASHIER", A, "CASH")  # type: ignore[arg-type]
    assert validate_request(req) == R.CASHIER_NOT_ALLOWED_FOR_RED


@given(st.integers(max_value=0, min_value=-(10**12)), st.sampled_from(list(Channel)))
def test_non_positive_amounts_are_always_rejected(tiyn: int, channel: Channel) -> None:
    requests: list[PaymentRequest] = [
        TopUpRequest("c1", channel, Money(tiyn), AccountType.GOLD),
        service(channel=channel, amount=Money(tiyn)),
        PayRedBillRequest("c1", channel, Money(tiyn), Funding.GOLD),
    ]
    assert {validate_request(r) for r in requests} == {R.INVALID_AMOUNT}
