"""The e-receipt's PDF layout (fpdf2), imported only when a receipt is rendered.

See ``services.notify.receipts`` for the data and the texts; ``render_receipt_pdf`` there is the
entry point.
"""

from __future__ import annotations

from typing import Any, Final

from fpdf import FPDF
from fpdf.enums import Align, MethodReturnValue, XPos, YPos

from services.notify.receipts import (
    _FAMILY,
    _TENGE,
    _TENGE_CODE,
    _TEXT,
    FONT_BOLD,
    FONT_REGULAR,
    ReceiptData,
    receipt_title,
)
from services.notify.rendering import vocabulary as vocab
from services.notify.rendering.filters import ALMATY, format_datetime
from shared.money import fmt_tiyn

# -- layout ----------------------------------------------------------------------------------------
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


def render_pdf(data: ReceiptData) -> bytes:
    """The e-receipt as PDF bytes; identical bytes for identical ``data``."""
    loc = vocab.normalize_locale(data.locale)
    text = _TEXT[loc]
    pdf = _ReceiptPDF()

    def money(tiyn: int) -> str:
        formatted = fmt_tiyn(tiyn)
        return formatted if pdf.has_tenge else formatted.replace(_TENGE, "KZT")

    title = receipt_title(data.locale)
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
