"""Fixed sample contexts, one per event type, shared by the golden and receipt tests.

Datetimes are deliberately given in UTC: the messages must show them in Asia/Almaty (UTC+5).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

RECEIPT_URL: Final = "https://aqsha.kz/r/R-2026-000123"

SAMPLES: Final[Mapping[str, Mapping[str, Any]]] = {
    "BillIssued": {
        "bill_id": "B-2026-03-0001",
        "customer_id": "c-0001",
        "amount": 1_500_000,
        "issued_at": datetime(2026, 2, 19, 19, 0, tzinfo=UTC),
        "due_at": datetime(2026, 3, 20, 15, 0, tzinfo=UTC),  # 20:00 in Almaty
        "lines": [
            {"purchase_id": "P-1001", "part_no": 2, "amount": 700_000, "merchant": "Technodom"},
            {"purchase_id": "P-1002", "part_no": 4, "amount": 800_000},
        ],
    },
    "PaymentCompleted": {
        "payment_id": "pay-7f3a",
        "receipt_number": "R-2026-000123",
        "provider": "Алматы Су",
        "account": "123456789",
        "amount": 1_500_000,
        "fee": 5_000,
        "total": 1_505_000,
        "funding": "GOLD",
        "completed_at": datetime(2026, 3, 20, 9, 32, tzinfo=UTC),
        "receipt_url": RECEIPT_URL,
    },
    "PaymentFailed": {
        "payment_id": "pay-7f3b",
        "provider": "Алматы Су",
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
        "provider": "Алматы Су",
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
    "RepaymentApplied": {
        "repayment_id": "rp-42",
        "receipt_number": "R-2026-000124",
        "amount": 2_000_000,
        "channel": "ATM",
        "applied_at": datetime(2026, 3, 20, 12, 40, tzinfo=UTC),
        "allocation": {
            "bill_id": "B-2026-03-0001",
            "to_bill": 1_500_000,
            "to_purchases": [{"purchase_id": "P-1003", "amount": 400_000}],
            "carried": 0,
            "refunded_to_gold": 100_000,
        },
        "receipt_url": "https://aqsha.kz/r/R-2026-000124",
    },
    "BillOverdueRecorded": {
        "bill_id": "B-2026-03-0001",
        "outstanding": 1_500_000,
        "due_at": datetime(2026, 3, 20, 15, 0, tzinfo=UTC),
        "penalty": 200_000,
    },
    "PenaltyApplied": {
        "bill_id": "B-2026-03-0001",
        "amount": 200_000,
        "outstanding_after": 1_700_000,
        "applied_at": datetime(2026, 3, 22, 1, 0, tzinfo=UTC),
    },
    "LimitRestored": {
        "amount": 2_800_000,
        "available_after": 15_000_000,
        "purchase_id": "P-1002",
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
        "merchant": "Technodom",
        "balance_after": 145_000,
    },
    "BonusReversed": {
        "payment_id": "pay-9001",
        "amount": 10_000,
        "merchant": "Technodom",
        "balance_after": 135_000,
    },
}
