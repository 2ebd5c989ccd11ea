"""One valid, realistic instance of every contract, for tests, fixtures and the demo.

The samples tell one coherent story about one customer (Айгерим, Almaty): a Red purchase in Kaspi
Magazin, a utility payment, a bill, a late repayment. Ids are fixed so the output is reproducible.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

from shared.contracts import billing, bonus, customers, notify, payments
from shared.contracts.base import Contract
from shared.contracts.common import (
    AccountKind,
    Channel,
    Funding,
    Locale,
    Merchant,
    PaymentKind,
    PaymentStatus,
    ReasonCode,
    ServiceCategory,
    TariffProfile,
)
from shared.contracts.registry import all_contracts

ALMATY = ZoneInfo("Asia/Almaty")

CUSTOMER_ID = UUID("0b8e5c1e-3f0a-4c55-9d1e-2a4f6b7c8d01")
OTHER_CUSTOMER_ID = UUID("0b8e5c1e-3f0a-4c55-9d1e-2a4f6b7c8d02")
REQUEST_ID = UUID("a1000000-0000-4000-8000-000000000001")
PAYMENT_ID = UUID("b2000000-0000-4000-8000-000000000001")
REFUND_ID = UUID("c3000000-0000-4000-8000-000000000001")
PLAN_ID = UUID("d4000000-0000-4000-8000-000000000001")
BILL_ID = UUID("e5000000-0000-4000-8000-000000000001")
REPAYMENT_ID = UUID("f6000000-0000-4000-8000-000000000001")
EVENT_ID = UUID("07000000-0000-4000-8000-000000000001")

#: The code of the ``OtpRequested`` v2 sample, and that code sealed for its fields under
#: ``shared.otp_seal.DEV_ONLY_OTP_TRANSPORT_KEY`` (fixed nonce, so the sample is reproducible).
SAMPLE_OTP_CODE = "482915"
SAMPLE_SEALED_CODE = "AQIDBAUGBwgJCgsMuQApqLud7UR2Vvl1eOHqR9kwh7ceZQ"

T0 = datetime(2025, 3, 14, 12, 30, tzinfo=ALMATY)
T1 = datetime(2025, 3, 14, 12, 31, 5, tzinfo=ALMATY)

C = TypeVar("C", bound=Contract)


def _build() -> list[Contract]:
    receipt = payments.Receipt(
        receipt_number="AQ-20250314-00000001",  # payments' format (services/payments/domain/receipts.py)
        created_at=T0,
        completed_at=T1,
        payer_masked="+7 701 *** ** 67",
        payee="АО «Алматинские электрические станции»",
        provider_account="1234567890",
        amount=2_000_000,
        fee=5_000,
        total=2_005_000,
        funding=Funding.GOLD,
        channel=Channel.APP,
        status=PaymentStatus.COMPLETED,
    )
    common = {"request_id": REQUEST_ID, "customer_id": CUSTOMER_ID, "channel": Channel.APP}
    return [
        customers.CustomerRegistered(
            customer_id=CUSTOMER_ID,
            phone="+77011234567",
            iin="900101300123",
            full_name="Айгерим Касымова",
            locale=Locale.KK,
            tariff_profile=TariffProfile.HOMEBANK,
            email="aigerim@example.kz",
        ),
        customers.CustomerPhoneChanged(
            customer_id=CUSTOMER_ID,
            phone="+77017654321",
            changed_at=T0,
            verification_ref="branch-almaty-017:2025-03-14:0042",
        ),
        # -- payments commands
        payments.TopUp(**common, account=AccountKind.WALLET, amount=500_000),
        payments.PayService(
            **common,
            category=ServiceCategory.ELECTRICITY,
            provider="almaty-energo",
            provider_account="1234567890",
            amount=2_000_000,
            funding=Funding.GOLD,
        ),
        payments.Purchase(
            **common,
            merchant=Merchant.KASPI_MAGAZIN,
            order_id="KM-778899",
            amount=12_000_000,
            funding=Funding.RED,
            bonus_amount=300_000,
        ),
        payments.Transfer(
            **common,
            to_customer_id=OTHER_CUSTOMER_ID,
            from_account=AccountKind.GOLD,
            to_account=AccountKind.GOLD,
            amount=1_500_050,
        ),
        payments.PayRedBill(
            request_id=REQUEST_ID,
            customer_id=CUSTOMER_ID,
            channel=Channel.ATM,
            amount=3_500_000,
            funding=Funding.CASH,
        ),
        payments.ConfirmPayment(**common, payment_id=PAYMENT_ID, code="4821"),
        payments.CancelPayment(**common, payment_id=PAYMENT_ID),
        payments.Refund(**common, payment_id=PAYMENT_ID, amount=3_000_000, reason="Товар возвращён"),
        payments.LookupDebt(
            request_id=REQUEST_ID,
            customer_id=CUSTOMER_ID,
            provider="almaty-energo",
            provider_account="1234567890",
        ),
        # -- payments events
        payments.PaymentRejected(
            request_id=REQUEST_ID,
            customer_id=CUSTOMER_ID,
            command_type="PayRedBill",
            reason_code=ReasonCode.BONUS_NOT_ALLOWED_FOR_RED,
            message="Kaspi Red bill cannot be paid with bonuses.",
        ),
        payments.PaymentPending(
            payment_id=PAYMENT_ID,
            request_id=REQUEST_ID,
            customer_id=CUSTOMER_ID,
            kind=PaymentKind.SERVICE,
            status=PaymentStatus.PENDING_CONFIRMATION,
            amount=2_000_000,
            fee=5_000,
            total=2_005_000,
            confirmation_expires_at=datetime(2025, 3, 14, 12, 35, tzinfo=ALMATY),
        ),
        payments.OtpRequestedV1(
            payment_id=PAYMENT_ID,
            customer_id=CUSTOMER_ID,
            phone="+77011234567",
            code="4821",
            expires_at=datetime(2025, 3, 14, 12, 35, tzinfo=ALMATY),
            amount=2_005_000,
        ),
        payments.OtpRequested(
            payment_id=PAYMENT_ID,
            customer_id=CUSTOMER_ID,
            phone="+77011234567",
            sealed_code=SAMPLE_SEALED_CODE,
            expires_at=datetime(2025, 3, 14, 12, 35, tzinfo=ALMATY),
            amount=2_005_000,
        ),
        payments.PaymentCompleted(
            payment_id=PAYMENT_ID,
            request_id=REQUEST_ID,
            customer_id=CUSTOMER_ID,
            kind=PaymentKind.SERVICE,
            completed_at=T1,
            amount=2_000_000,
            fee=5_000,
            total=2_005_000,
            funding=Funding.GOLD,
            channel=Channel.APP,
            category=ServiceCategory.ELECTRICITY,
            provider="almaty-energo",
            receipt=receipt,
        ),
        payments.PaymentFailed(
            payment_id=PAYMENT_ID,
            request_id=REQUEST_ID,
            customer_id=CUSTOMER_ID,
            kind=PaymentKind.SERVICE,
            reason_code=ReasonCode.TOO_MANY_ATTEMPTS,
            message="The code was entered wrongly three times.",
        ),
        payments.PaymentCancelled(
            payment_id=PAYMENT_ID, request_id=REQUEST_ID, customer_id=CUSTOMER_ID, kind=PaymentKind.SERVICE
        ),
        payments.PaymentRefunded(
            payment_id=PAYMENT_ID,
            refund_id=REFUND_ID,
            customer_id=CUSTOMER_ID,
            kind=PaymentKind.PURCHASE,
            amount=3_000_000,
            total_refunded=3_000_000,
            original_amount=12_000_000,
            funding=Funding.RED,
            merchant=Merchant.KASPI_MAGAZIN,
            status=PaymentStatus.PARTIALLY_REFUNDED,
        ),
        payments.DebtLookedUp(
            request_id=REQUEST_ID,
            customer_id=CUSTOMER_ID,
            provider="almaty-energo",
            provider_account="1234567890",
            provider_name="АО «Алматыэнергосбыт»",
            category=ServiceCategory.ELECTRICITY,
            debt=2_000_000,
            owner_name="Касымова Айгерим",
            owner_address="г. Алматы, ул. Абая, 10, кв. 5",
            iin_required=False,
            looked_up_at=T0,
        ),
        payments.DebtLookupFailed(
            request_id=REQUEST_ID,
            customer_id=CUSTOMER_ID,
            provider="almaty-energo",
            provider_account="1234567809",
            reason_code=ReasonCode.UNKNOWN_PROVIDER_ACCOUNT,
            message="almaty-energo has no account 1234567809.",
        ),
        payments.TopUpCompleted(
            payment_id=PAYMENT_ID,
            request_id=REQUEST_ID,
            customer_id=CUSTOMER_ID,
            account=AccountKind.WALLET,
            amount=500_000,
            channel=Channel.TERMINAL,
            balance_after=1_250_000,
            completed_at=T1,
        ),
        payments.TransferCompleted(
            payment_id=PAYMENT_ID,
            request_id=REQUEST_ID,
            customer_id=CUSTOMER_ID,
            to_customer_id=OTHER_CUSTOMER_ID,
            from_account=AccountKind.GOLD,
            to_account=AccountKind.GOLD,
            amount=1_500_050,
            fee=9_500,
            total=1_509_550,
            completed_at=T1,
        ),
        payments.RedPurchaseRequested(
            payment_id=PAYMENT_ID,
            customer_id=CUSTOMER_ID,
            amount=11_700_000,
            merchant=Merchant.KASPI_MAGAZIN,
            requested_at=T0,
        ),
        payments.RedPurchaseCancelled(
            payment_id=PAYMENT_ID, customer_id=CUSTOMER_ID, reason_code=ReasonCode.BONUS_DECLINED
        ),
        payments.BonusRedemptionRequested(
            payment_id=PAYMENT_ID,
            customer_id=CUSTOMER_ID,
            amount=300_000,
            purchase_amount=12_000_000,
            merchant=Merchant.KASPI_MAGAZIN,
        ),
        payments.BonusRedemptionCancelled(
            payment_id=PAYMENT_ID,
            customer_id=CUSTOMER_ID,
            amount=300_000,
            reason_code=ReasonCode.RED_DECLINED,
        ),
        # -- bonus
        bonus.BonusAccrued(
            payment_id=PAYMENT_ID,
            customer_id=CUSTOMER_ID,
            amount=20_000,
            rule_set="legacy-000",
            rule_id="universal-1pct",
            percent="1",
            base_amount=2_000_000,
            balance_after=520_000,
        ),
        bonus.BonusReversed(
            payment_id=PAYMENT_ID,
            refund_id=REFUND_ID,
            customer_id=CUSTOMER_ID,
            amount=5_000,
            shortfall=0,
            balance_after=515_000,
        ),
        bonus.BonusRedeemed(
            payment_id=PAYMENT_ID, customer_id=CUSTOMER_ID, amount=300_000, balance_after=215_000
        ),
        bonus.BonusRedemptionDeclined(
            payment_id=PAYMENT_ID,
            customer_id=CUSTOMER_ID,
            reason_code=ReasonCode.BONUS_BALANCE_INSUFFICIENT,
            message="Bonus balance is 2 150 ₸.",
        ),
        bonus.BonusRestored(
            payment_id=PAYMENT_ID, customer_id=CUSTOMER_ID, amount=300_000, balance_after=515_000
        ),
        # -- billing inbound
        billing.RedAccountOpened(
            customer_id=CUSTOMER_ID,
            limit=50_000_000,
            opened_on=date(2024, 1, 31),
            accepted_new_terms=True,
            loan_payment_day=None,
        ),
        billing.RedTermsAccepted(customer_id=CUSTOMER_ID, accepted_on=date(2024, 6, 1)),
        billing.RedAccountClosed(customer_id=CUSTOMER_ID, closed_on=date(2025, 12, 1)),
        billing.RunBusinessDay(business_date=date(2025, 3, 31), requested_by="ops-cli"),
        # -- billing outbound
        billing.RedPurchaseApproved(
            payment_id=PAYMENT_ID,
            customer_id=CUSTOMER_ID,
            plan_id=PLAN_ID,
            amount=11_700_001,
            parts=[2_925_001, 2_925_000, 2_925_000, 2_925_000],
            available_after=38_299_999,
        ),
        billing.RedPurchaseDeclined(
            payment_id=PAYMENT_ID,
            customer_id=CUSTOMER_ID,
            reason_code=ReasonCode.INSUFFICIENT_LIMIT,
            message="Available Red limit is 50 000 ₸.",
            available=5_000_000,
        ),
        billing.BillIssued(
            bill_id=BILL_ID,
            customer_id=CUSTOMER_ID,
            statement_date=date(2025, 3, 31),
            due_at=datetime(2025, 4, 30, 20, 0, tzinfo=ALMATY),
            amount=2_925_001,
            penalty=0,
            carried_prepayment=0,
            lines=[
                billing.BillLine(
                    purchase_id=PLAN_ID,
                    part_no=1,
                    amount=2_925_001,
                    merchant=Merchant.KASPI_MAGAZIN,
                    purchased_on=date(2025, 3, 14),
                    parts_total=4,
                )
            ],
        ),
        billing.BillOverdueRecorded(
            bill_id=BILL_ID,
            customer_id=CUSTOMER_ID,
            due_at=datetime(2025, 4, 30, 20, 0, tzinfo=ALMATY),
            overdue_since=date(2025, 5, 1),
            outstanding=2_925_001,
        ),
        billing.PenaltyApplied(
            bill_id=BILL_ID,
            customer_id=CUSTOMER_ID,
            amount=200_000,
            applied_on=date(2025, 5, 2),
            outstanding_after=3_125_001,
        ),
        billing.RepaymentAppliedV1(
            repayment_id=REPAYMENT_ID,
            payment_id=PAYMENT_ID,
            customer_id=CUSTOMER_ID,
            amount=3_500_000,
            credited_on=date(2025, 5, 3),
            allocation=billing.RepaymentAllocation(
                bill_id=BILL_ID,
                to_bill=3_125_001,
                to_purchases=[billing.PurchaseRepayment(purchase_id=PLAN_ID, amount=374_999)],
                carried=0,
                refunded_to_gold=0,
            ),
        ),
        billing.RepaymentApplied(
            repayment_id=REPAYMENT_ID,
            payment_id=PAYMENT_ID,
            customer_id=CUSTOMER_ID,
            amount=3_500_000,
            credited_on=date(2025, 5, 3),
            allocation=billing.RepaymentAllocationV2(
                bill_id=BILL_ID,
                to_bill=3_125_001,
                to_purchases=[billing.PurchaseRepayment(purchase_id=PLAN_ID, amount=474_999)],
                carried=0,
                refunded_to_gold=100_000,
                prepayment_used=200_000,
            ),
        ),
        billing.BillPaid(bill_id=BILL_ID, customer_id=CUSTOMER_ID, paid_on=date(2025, 5, 3)),
        billing.BusinessDayClosed(
            business_date=date(2025, 3, 31),
            requested_by="ops-cli",
            accounts=3,
            bills=2,
            overdue=1,
            penalties=1,
        ),
        billing.LimitRestored(
            customer_id=CUSTOMER_ID,
            amount=11_700_001,
            available_after=50_000_000,
            reason=billing.LimitRestoreReason.FOURTH_PART_PAID,
            purchase_id=PLAN_ID,
        ),
        billing.OverpaymentRefunded(
            refund_id=REFUND_ID,
            customer_id=CUSTOMER_ID,
            amount=500_000,
            reason=billing.OverpaymentReason.OVERPAYMENT,
        ),
        # -- notify
        notify.NotificationDelivered(
            source_event_id=EVENT_ID,
            event_type="BillIssued",
            channel=notify.NotificationChannel.PUSH,
            customer_id=CUSTOMER_ID,
            locale=Locale.KK,
            attempt_count=1,
        ),
        notify.NotificationFailed(
            source_event_id=EVENT_ID,
            event_type="OtpRequested",
            channel=notify.NotificationChannel.SMS,
            customer_id=CUSTOMER_ID,
            attempt_count=5,
            reason_code=ReasonCode.DELIVERY_FAILED,
            reason="SMS gateway returned 503 five times.",
        ),
    ]


def samples() -> list[Contract]:
    """One valid instance of every registered contract (all versions), in registry order."""
    by_model = {type(s): s for s in _build()}
    missing = [m.__name__ for m in all_contracts() if m not in by_model]
    if missing:
        raise LookupError(f"no sample for contract(s): {', '.join(missing)}; add one to samples.py")
    return [by_model[m] for m in all_contracts()]


def sample(model: type[C]) -> C:
    """The sample instance of ``model``."""
    for instance in _build():
        if type(instance) is model:
            return instance
    raise LookupError(f"no sample for {model.__name__}; add one to samples.py")
