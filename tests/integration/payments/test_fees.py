"""Homebank fees through the service's quoting path (command → request → tariff): every row and tax tier."""

from __future__ import annotations

from uuid import uuid4

import pytest

from services.payments.domain import FeeSchedule, Operation, TransferKind, operation_for
from services.payments.service import to_request
from shared.contracts.common import AccountKind, Merchant, ServiceCategory
from shared.contracts.payments import PayRedBill, PayService, Purchase, TopUp, Transfer
from shared.money import Money

pytestmark = pytest.mark.integration
T = 100
SCHEDULE = FeeSchedule.load()


def quote(cmd: object, profile: str = "homebank") -> int:
    """The fee the service would quote for ``cmd``."""
    return SCHEDULE.quote_fee(profile, operation_for(to_request(cmd))).fee.tiyn  # type: ignore[arg-type]


def service(category: ServiceCategory, amount: int, provider: str = "some-provider") -> PayService:
    """A PayService command."""
    return PayService(
        request_id=uuid4(),
        customer_id=uuid4(),
        category=category,
        provider=provider,
        provider_account="42",
        amount=amount,
    )


C = ServiceCategory


@pytest.mark.parametrize(
    ("category", "amount", "fee"),
    [
        (C.MOBILE, 1_000 * T, 35 * T),
        *[
            (c, 1_000 * T, 50 * T)
            for c in (
                C.PHONE,
                C.TV,
                C.SECURITY,
                C.INTERNET,
                C.ELECTRICITY,
                C.GAS,
                C.WATER,
                C.HEATING,
                C.INTERCOM,
                C.UTILITIES,
                C.SUBSCRIPTION,
                C.DIRECT_SELLING,
                C.MEDIA_ADS,
            )
        ],
        (C.EDUCATION, 1_000 * T, 50 * T),
        (C.KINDERGARTEN, 1_000 * T, 100 * T),
        *[(c, 1_000 * T, 100 * T) for c in (C.FLIGHT, C.TRAVEL, C.MORTGAGE, C.LOAN, C.KSK)],
        (C.RENT, 1_000 * T, 200 * T),
        (C.FINE, 1_000 * T, 200 * T),
        (C.DOMAIN, 10_001, 50),  # 0.5 % of 100.01 ₸ = 0.50005 ₸ → 50 tiyn (half up)
        (C.OTHER, 12_345 * T, 6_173),  # 0.5 % of 12,345 ₸ = 61.725 ₸ → 61.73 ₸
        (C.RESTAURANT, 101, 1),  # 0.505 tiyn rounds half up to 1
        (C.BROKERAGE, 1_000 * T, 500 * T),
        (C.MUTUAL_FUND, 1_000 * T, 1_000 * T),
    ],
)
def test_every_homebank_service_row(category: ServiceCategory, amount: int, fee: int) -> None:
    assert quote(service(category, amount)) == fee
    assert quote(service(category, amount), "kaspi") == 0  # kaspi charges no fees


@pytest.mark.parametrize(
    ("amount", "fee"),
    [(20_000 * T, 100 * T), (5_000 * T, 50 * T), (9_000 * T, 50 * T)],  # 0.5 % with a 50 ₸ minimum
)
def test_astana_erc_percent_with_minimum(amount: int, fee: int) -> None:
    assert quote(service(C.ELECTRICITY, amount, provider="astana-erc")) == fee


@pytest.mark.parametrize(
    ("amount", "fee"),
    [
        (1, 0),
        (99 * T + 99, 0),
        (100 * T, 25 * T),
        (5_000 * T, 25 * T),
        (5_000 * T + 50, 25 * T),
        (5_001 * T, 50 * T),
        (10_000 * T, 50 * T),
        (10_001 * T, 100 * T),
        (30_000 * T, 100 * T),
        (30_001 * T, 200 * T),
        (60_000 * T, 200 * T),
        (60_001 * T, 400 * T),
        (100_000 * T, 400 * T),
        (100_001 * T, 500 * T),
        (5_000_000 * T, 500 * T),
    ],
)
def test_every_tax_tier(amount: int, fee: int) -> None:
    assert quote(service(C.TAX, amount)) == fee


def test_transfer_rows_and_free_operations() -> None:
    me = uuid4()
    other = Transfer(request_id=uuid4(), customer_id=me, to_customer_id=uuid4(), amount=500 * T)
    own = Transfer(request_id=uuid4(), customer_id=me, to_account=AccountKind.WALLET, amount=500 * T)
    assert quote(other) == 95 * T
    assert quote(own) == 0
    # Rows the service does not route to yet, priced by the same schedule.
    for kind, fee in ((TransferKind.ACCOUNT_INTERNAL, 200 * T), (TransferKind.ACCOUNT_EXTERNAL, 250 * T)):
        assert SCHEDULE.quote_fee("homebank", Operation.transfer(kind, Money(500 * T))).fee.tiyn == fee
    cid = uuid4()
    assert quote(TopUp(request_id=uuid4(), customer_id=cid, account=AccountKind.GOLD, amount=T)) == 0
    assert quote(PayRedBill(request_id=uuid4(), customer_id=cid, amount=T)) == 0
    purchase = Purchase(
        request_id=uuid4(), customer_id=cid, merchant=Merchant.KASPI_QR, order_id="o", amount=T
    )
    assert quote(purchase) == 0
