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

from fpdf import FPDF
from fpdf.enums import Align, MethodReturnValue, XPos, YPos

from services.notify.rendering import vocabulary as vocab
from services.notify.rendering.filters import ALMATY, allocation_parts, format_datetime
from shared.money import fmt_tiyn

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
    """One part of a Kaspi Red repayment: ``kind`` is CURRENT_BILL, EARLY_REPAYMENT or OVERPAYMENT."""

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
        if self.allocation and sum(line.amount for line in self.allocation) != self.amount:
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
    """``ReceiptData.allocation`` from a RepaymentApplied allocation (the event's mapping or flat list)."""
    return tuple(
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
_PAGE_FORMAT: Final = (148.0, 210.0)  # A5 portrait, in mm
_MARGIN: Final = 12.0
_LABEL_WIDTH: Final = 52.0
_LINE_HEIGHT: Final = 6.0


class _ReceiptPDF(FPDF):
    def __init__(self) -> None:
        super().__init__(orientation="portrait", unit="mm", format=_PAGE_FORMAT)
        self.set_margins(_MARGIN, _MARGIN, _MARGIN)
        self.set_auto_page_break(auto=True, margin=_MARGIN)
        self.add_font(_FAMILY, "", str(FONT_REGULAR))
        self.add_font(_FAMILY, "B", str(FONT_BOLD))
        self.has_tenge = all(_TENGE_CODE in font.cmap for font in self._our_fonts())

    def _our_fonts(self) -> list[Any]:
        return [font for key, font in self.fonts.items() if key.startswith(_FAMILY.lower())]


def render_receipt_pdf(data: ReceiptData) -> bytes:
    """The e-receipt as PDF bytes; identical bytes for identical ``data``."""
    loc = vocab.normalize_locale(data.locale)
    text = _TEXT[loc]
    pdf = _ReceiptPDF()

    def money(tiyn: int) -> str:
        formatted = fmt_tiyn(tiyn)
        return formatted if pdf.has_tenge else formatted.replace(_TENGE, "KZT")

    title = text["title"]
    pdf.set_title(f"{title} № {data.receipt_number}")
    pdf.set_author("aqsha")
    pdf.set_creator("aqsha notify")
    pdf.set_subject(text[data.kind])
    pdf.set_lang(loc)
    pdf.set_creation_date(data.operation_at.astimezone(ALMATY))
    pdf.add_page()

    pdf.set_font(_FAMILY, "B", 16)
    pdf.cell(0, 9, title, align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(_FAMILY, "", 10)
    pdf.cell(0, 6, text[data.kind], align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    _rule(pdf)

    recipient = data.provider_or_merchant
    rows: list[tuple[str, str, bool]] = [
        (text["receipt_number"], data.receipt_number, True),
        (text["operation_at"], format_datetime(data.operation_at, loc), False),
        (text["created_at"], format_datetime(data.created_at, loc), False),
        (text["payer"], data.payer_masked, False),
        (text["recipient"], recipient, False),
        (text["account"], data.account, False),
        (text["amount"], money(data.amount), False),
        (text["fee"], money(data.fee), False),
        (text["total"], money(data.total), True),
        (text["funding"], vocab.label(vocab.FUNDING, data.funding, loc), False),
        (text["channel"], vocab.label(vocab.CHANNELS, data.channel, loc), False),
        (text["status"], vocab.label(vocab.STATUSES, data.status, loc), True),
    ]
    for label, value, bold in rows:
        _row(pdf, label, value, bold=bold)

    if data.allocation:
        _rule(pdf)
        pdf.set_font(_FAMILY, "B", 10)
        pdf.cell(0, _LINE_HEIGHT, text["allocation"], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        for line in data.allocation:
            what = vocab.label(vocab.ALLOCATION_KINDS, line.kind, loc)
            if line.reference:
                what = f"{what} ({line.reference})"
            _row(pdf, what, money(line.amount), bold=False, label_width=80.0)

    _rule(pdf)
    pdf.set_font(_FAMILY, "", 8)
    pdf.multi_cell(0, 4.5, text["legal"], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.multi_cell(0, 4.5, text["timezone"], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())


def _row(pdf: FPDF, label: str, value: str, *, bold: bool, label_width: float = _LABEL_WIDTH) -> None:
    """A grey label on the left, the value right-aligned; either may wrap onto several lines."""
    top = pdf.get_y()
    pdf.set_font(_FAMILY, "", 9)
    label_lines = pdf.multi_cell(
        label_width, _LINE_HEIGHT, label, dry_run=True, output=MethodReturnValue.LINES
    )
    assert isinstance(label_lines, list)
    pdf.set_text_color(90, 90, 90)
    pdf.multi_cell(label_width, _LINE_HEIGHT, label, new_x=XPos.RIGHT, new_y=YPos.TOP)
    pdf.set_text_color(0, 0, 0)
    pdf.set_font(_FAMILY, "B" if bold else "", 10)
    pdf.multi_cell(0, _LINE_HEIGHT, value, align=Align.R, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(max(pdf.get_y(), top + _LINE_HEIGHT * max(1, len(label_lines))))


def _rule(pdf: FPDF) -> None:
    pdf.ln(2)
    y = pdf.get_y()
    pdf.set_draw_color(180, 180, 180)
    pdf.line(pdf.l_margin, y, pdf.w - pdf.r_margin, y)
    pdf.ln(3)
