"""Fixed sample contexts, one per event type, shared by the golden and receipt tests.

Datetimes are deliberately given in UTC: the messages must show them in Asia/Almaty (UTC+5).
Ids are UUIDs and payees are codes, as the events carry them: a customer's message must show
neither (``test_golden_texts_show_no_codes_or_ids``), only names and numbers a customer knows.
Receipt numbers have the formats the services produce (payments' ``AQ-YYYYMMDD-NNNNNNNN``,
notify's ``RED-<16 hex>`` for a Red repayment).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any, Final

RECEIPT_URL: Final = "https://aqsha.kz/r/AQ-20260320-00000123"
PURCHASE_1: Final = "3f2c9a1e-8b4d-4c7a-9e21-5d6f7a8b9c01"
PURCHASE_2: Final = "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
PURCHASE_3: Final = "c0ffee00-1234-4abc-8def-0123456789ab"
BILL_ID: Final = "5b7e2f10-9c3a-4d8e-b6f1-2a4c6e8f0a1b"

SAMPLES: Final[Mapping[str, Mapping[str, Any]]] = {
    "BillIssued": {
        "bill_id": BILL_ID,
        "customer_id": "0b8e5c1e-3f0a-4c55-9d1e-2a4f6b7c8d01",
        "amount": 1_500_000,
        "issued_at": datetime(2026, 2, 19, 19, 0, tzinfo=UTC),
        "due_at": datetime(2026, 3, 20, 15, 0, tzinfo=UTC),  # 20:00 in Almaty
        # As BillIssued carries them (model_dump, mode="json"): a Kaspi QR purchase at a partner,
        # a Kaspi Magazin one, and a line of a plan made before billing kept merchants (no names).
        "lines": [
            {
                "purchase_id": PURCHASE_1,
                "part_no": 2,
                "amount": 500_000,
                "merchant": "KASPI_QR",
                "partner_id": "partner-demo-coffee",
                "purchased_on": "2026-01-14",
                "parts_total": 4,
            },
            {
                "purchase_id": PURCHASE_2,
                "part_no": 4,
                "amount": 700_000,
                "merchant": "KASPI_MAGAZIN",
                "partner_id": None,
                "purchased_on": date(2025, 11, 30),
                "parts_total": 4,
            },
            {"purchase_id": PURCHASE_3, "part_no": 1, "amount": 300_000},
        ],
    },
    "PaymentCompleted": {
        "payment_id": "pay-7f3a",
        "receipt_number": "AQ-20260320-00000123",
        # What message_context gives: the payment's codes and the name payments printed (a code).
        "provider": {"provider": "almaty-su", "merchant": None, "partner_id": None, "name": "almaty-su"},
        "account": "2200334455",
        "amount": 1_500_000,
        "fee": 5_000,
        "total": 1_505_000,
        "funding": "GOLD",
        "completed_at": datetime(2026, 3, 20, 9, 32, tzinfo=UTC),
        "receipt_url": RECEIPT_URL,
    },
    "PaymentFailed": {
        "payment_id": "pay-7f3b",
        "provider": "almaty-su",
        "amount": 1_500_000,
        "reason_code": "INSUFFICIENT_FUNDS",
        "failed_at": datetime(2026, 3, 20, 9, 32, tzinfo=UTC),
    },
    "CustomerPhoneChanged": {
        "customer_id": "c-42",
        "phone": "+77017654321",
        "changed_at": datetime(2026, 3, 20, 9, 5, tzinfo=UTC),
        "verification_ref": "branch-017:42",
    },
    "OtpRequested": {
        "payment_id": "pay-7f3a",
        "code": "482915",
        "amount": 1_500_000,
        "provider": "almaty-su",
        "expires_at": datetime(2026, 3, 20, 9, 37, tzinfo=UTC),
    },
    "TopUpCompleted": {
        "account": "WALLET",
        "amount": 1_000_000,
        "balance_after": 2_500_000,
        "channel": "TERMINAL",
        "completed_at": datetime(2026, 3, 20, 4, 15, tzinfo=UTC),
    },
    "TransferCompleted": {
        "transfer_id": "tr-11",
        "amount": 2_000_000,
        "fee": 0,
        "recipient": "Асель К.",
        "from_account": "GOLD",
        "balance_after": 500_050,
        "completed_at": datetime(2026, 3, 20, 13, 5, tzinfo=UTC),
    },
    "TransferReceived": {
        # What the recipient of the TransferCompleted above reads (service.recipient_context).
        "amount": 2_000_000,
        "to_account": "GOLD",
        "completed_at": datetime(2026, 3, 20, 13, 5, tzinfo=UTC),
        "sender": "Айгерим",
    },
    "RepaymentApplied": {
        "repayment_id": "rp-42",
        "receipt_number": "RED-9968418AA254532A",
        "amount": 2_000_000,
        "channel": "ATM",
        "applied_at": datetime(2026, 3, 20, 12, 40, tzinfo=UTC),
        "allocation": {
            "bill_id": BILL_ID,
            "to_bill": 1_500_000,
            "to_purchases": [{"purchase_id": PURCHASE_3, "amount": 400_000}],
            "carried": 0,
            "refunded_to_gold": 100_000,
        },
        "receipt_url": "https://aqsha.kz/r/RED-9968418AA254532A",
    },
    "BillOverdueRecorded": {
        "bill_id": BILL_ID,
        "outstanding": 1_500_000,
        "due_at": datetime(2026, 3, 20, 15, 0, tzinfo=UTC),
        "penalty": 200_000,
    },
    "PenaltyApplied": {
        "bill_id": BILL_ID,
        "amount": 200_000,
        "outstanding_after": 1_700_000,
        "applied_at": datetime(2026, 3, 22, 1, 0, tzinfo=UTC),
    },
    "LimitRestored": {
        "amount": 2_800_000,
        "available_after": 15_000_000,
        "purchase_id": PURCHASE_2,
    },
    "OverpaymentRefunded": {
        "amount": 100_000,
        "account": "GOLD",
        "refunded_at": datetime(2026, 3, 20, 12, 40, tzinfo=UTC),
    },
    "BonusAccrued": {
        "payment_id": "pay-9001",
        "amount": 20_000,
        "percent": "5",
        "merchant": "partner-demo-coffee",
        "balance_after": 145_000,
    },
    "BonusReversed": {
        "payment_id": "pay-9001",
        "amount": 10_000,
        "merchant": "partner-demo-coffee",
        "balance_after": 135_000,
    },
}
