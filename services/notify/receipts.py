"""PDF e-receipts for ``PaymentCompleted`` and ``RepaymentApplied`` (domain brief §2.7, §4; seed 001).

``ReceiptData`` is what notify stores when it handles the event; ``render_receipt_pdf`` turns it into
a PDF when the receipt is fetched (never on the hot path, and the bytes may be cached).

The output is a pure function of the data: the PDF creation date is the operation's own time (not
``now()``), and fpdf2 derives the file ``/ID`` from the content, so the same event always produces
byte-identical receipts.

Fonts: DejaVu Sans (regular and bold) bundled in ``services/notify/fonts/``. They cover Cyrillic, the
Kazakh letters ә ғ қ ң ө ұ ү һ і and the tenge sign ₸ (U+20B8). If the font is ever replaced by one
without ₸, amounts fall back to the ISO code ("15 000 KZT") instead of printing a missing glyph.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal

from services.notify.rendering import vocabulary as vocab
from services.notify.rendering.filters import PREPAYMENT_USED, allocation_parts, prepayment_used

FONTS_DIR: Final = Path(__file__).resolve().parent / "fonts"
FONT_REGULAR: Final = FONTS_DIR / "DejaVuSans.ttf"
FONT_BOLD: Final = FONTS_DIR / "DejaVuSans-Bold.ttf"
_FAMILY: Final = "DejaVu"
_TENGE: Final = "\u20b8"
_TENGE_CODE: Final = ord(_TENGE)

ReceiptKind = Literal["PAYMENT", "RED_REPAYMENT"]
RECEIPT_KINDS: Final[tuple[str, ...]] = ("PAYMENT", "RED_REPAYMENT")


class ReceiptDataError(ValueError):
    """Receipt data that would print an inconsistent receipt."""


@dataclass(frozen=True, slots=True)
class AllocationLine:
    """One part of a Kaspi Red repayment: ``kind`` is CURRENT_BILL, EARLY_REPAYMENT, CARRIED or
    OVERPAYMENT (where the money went), or PREPAYMENT_USED (an earlier prepayment that joined it)."""

    kind: str
    amount: int
    reference: str | None = None  # bill_id or purchase_id


@dataclass(frozen=True, slots=True)
class ReceiptData:
    """Everything printed on an e-receipt. Amounts are int tiyn; datetimes are timezone-aware."""

    receipt_number: str
    created_at: datetime
    completed_at: datetime | None
    payer_masked: str
    provider_or_merchant: str
    account: str
    amount: int
    fee: int
    total: int
    funding: str
    channel: str
    status: str
    kind: ReceiptKind = "PAYMENT"
    allocation: tuple[AllocationLine, ...] = field(default=())
    locale: str = vocab.DEFAULT_LOCALE

    def __post_init__(self) -> None:
        if not self.receipt_number:
            raise ReceiptDataError("receipt_number is required")
        if self.kind not in RECEIPT_KINDS:
            raise ReceiptDataError(f"kind must be one of {RECEIPT_KINDS}, got {self.kind!r}")
        for name in ("amount", "fee", "total"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ReceiptDataError(f"{name} must be a non-negative int of tiyn, got {value!r}")
        if self.total != self.amount + self.fee:
            raise ReceiptDataError(f"total {self.total} != amount {self.amount} + fee {self.fee}")
        for name in ("created_at", "completed_at"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, datetime) or value.utcoffset() is None):
                raise ReceiptDataError(f"{name} must be a timezone-aware datetime, got {value!r}")
        if self.allocation:
            # Where the money went = the amount paid + an earlier prepayment released with it.
            added = sum(line.amount for line in self.allocation if line.kind == PREPAYMENT_USED)
            went = sum(line.amount for line in self.allocation if line.kind != PREPAYMENT_USED)
            if went != self.amount + added:
                raise ReceiptDataError("allocation lines must add up to the amount")

    @property
    def operation_at(self) -> datetime:
        """When the operation happened: completion time, else creation time."""
        return self.completed_at or self.created_at

    # -- storage ------------------------------------------------------------------------------
    def to_json_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (ISO datetimes) for storing the receipt when the event is handled."""
        return {
            "receipt_number": self.receipt_number,
            "created_at": self.created_at.isoformat(),
            "completed_at": self.completed_at.isoformat() if self.completed_at else None,
            "payer_masked": self.payer_masked,
            "provider_or_merchant": self.provider_or_merchant,
            "account": self.account,
            "amount": self.amount,
            "fee": self.fee,
            "total": self.total,
            "funding": self.funding,
            "channel": self.channel,
            "status": self.status,
            "kind": self.kind,
            "allocation": [
                {"kind": line.kind, "amount": line.amount, "reference": line.reference}
                for line in self.allocation
            ],
            "locale": self.locale,
        }

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> ReceiptData:
        """Inverse of ``to_json_dict``."""
        completed = data.get("completed_at")
        return cls(
            receipt_number=data["receipt_number"],
            created_at=datetime.fromisoformat(data["created_at"]),
            completed_at=datetime.fromisoformat(completed) if completed else None,
            payer_masked=data["payer_masked"],
            provider_or_merchant=data["provider_or_merchant"],
            account=data["account"],
            amount=data["amount"],
            fee=data["fee"],
            total=data["total"],
            funding=data["funding"],
            channel=data["channel"],
            status=data["status"],
            kind=data.get("kind", "PAYMENT"),
            allocation=tuple(
                AllocationLine(kind=line["kind"], amount=line["amount"], reference=line.get("reference"))
                for line in data.get("allocation") or ()
            ),
            locale=data.get("locale", vocab.DEFAULT_LOCALE),
        )


def allocation_lines(allocation: Any) -> tuple[AllocationLine, ...]:
    """``ReceiptData.allocation`` from a RepaymentApplied allocation (the event's mapping or flat list):
    an earlier prepayment released with the payment first (v2), then where all the money went."""
    added = prepayment_used(allocation)
    head = (AllocationLine(kind=PREPAYMENT_USED, amount=added),) if added else ()
    return head + tuple(
        AllocationLine(kind=part["kind"], amount=part["amount"], reference=part["reference"])
        for part in allocation_parts(allocation)
    )


# -- words on the receipt -----------------------------------------------------------------------
_TEXT: Final[Mapping[str, Mapping[str, str]]] = {
    "ru": {
        "title": "Электронный чек",
        "PAYMENT": "Платёж",
        "RED_REPAYMENT": "Погашение Kaspi Red",
        "receipt_number": "Номер чека",
        "operation_at": "Дата и время операции",
        "created_at": "Чек сформирован",
        "payer": "Плательщик",
        "recipient": "Получатель",
        "account": "Лицевой счёт",
        "amount": "Сумма",
        "fee": "Комиссия",
        "total": "Итого",
        "funding": "Источник оплаты",
        "channel": "Канал",
        "status": "Статус",
        "allocation": "Распределение платежа",
        "legal": "Электронный чек имеет такую же юридическую силу, как бумажный.",
        "timezone": "Дата и время указаны по времени Алматы.",
    },
    "kk": {
        "title": "Электрондық чек",
        "PAYMENT": "Төлем",
        "RED_REPAYMENT": "Kaspi Red бойынша төлем",
        "receipt_number": "Чек нөмірі",
        "operation_at": "Операция күні мен уақыты",
        "created_at": "Чек жасалған уақыт",
        "payer": "Төлеуші",
        "recipient": "Алушы",
        "account": "Дербес шот",
        "amount": "Сома",
        "fee": "Комиссия",
        "total": "Барлығы",
        "funding": "Төлем көзі",
        "channel": "Арна",
        "status": "Мәртебесі",
        "allocation": "Төлемнің бөлінуі",
        "legal": "Электрондық чектің қағаз чекпен бірдей заңды күші бар.",
        "timezone": "Күні мен уақыты Алматы уақытымен көрсетілген.",
    },
    "en": {
        "title": "E-receipt",
        "PAYMENT": "Payment",
        "RED_REPAYMENT": "Kaspi Red repayment",
        "receipt_number": "Receipt number",
        "operation_at": "Date and time",
        "created_at": "Receipt issued",
        "payer": "Payer",
        "recipient": "Recipient",
        "account": "Account",
        "amount": "Amount",
        "fee": "Fee",
        "total": "Total",
        "funding": "Paid with",
        "channel": "Channel",
        "status": "Status",
        "allocation": "How the payment was applied",
        "legal": "This e-receipt has the same legal force as a paper receipt.",
        "timezone": "Dates and times are Almaty time.",
    },
}


def receipt_title(locale: str) -> str:
    """The receipt's heading: «Электронный чек» / «Электрондық чек» / «E-receipt»."""
    return _TEXT[vocab.normalize_locale(locale)]["title"]


# -- PDF ----------------------------------------------------------------------------------------
def render_receipt_pdf(data: ReceiptData) -> bytes:
    """The e-receipt as PDF bytes; identical bytes for identical ``data``.

    The renderer (``services.notify.receipt_pdf``) is imported on first use: fpdf2 and its
    dependencies take about 2 s to import, and only a receipt fetch needs them, never the event path.
    """
    from services.notify.receipt_pdf import render_pdf

    return render_pdf(data)
