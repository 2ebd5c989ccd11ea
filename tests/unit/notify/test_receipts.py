"""PDF e-receipts: parseable, complete, in every locale, byte-identical for the same data."""

from __future__ import annotations

import dataclasses
import io
from datetime import UTC, datetime
from typing import Any

import pytest
from fontTools.ttLib import TTFont
from pypdf import PdfReader

from services.notify.receipts import (
    FONT_BOLD,
    FONT_REGULAR,
    FONTS_DIR,
    AllocationLine,
    ReceiptData,
    ReceiptDataError,
    allocation_lines,
    receipt_title,
    render_receipt_pdf,
)
from shared.money import fmt_tiyn

pytestmark = pytest.mark.unit

LOCALES = ("ru", "kk", "en")

PAYMENT = ReceiptData(
    receipt_number="AQ-20260320-00000123",
    created_at=datetime(2026, 3, 20, 9, 32, 5, tzinfo=UTC),
    completed_at=datetime(2026, 3, 20, 9, 32, 7, tzinfo=UTC),
    payer_masked="Айгерім С., +7 701 *** ** 45",
    provider_or_merchant="Алматы Су",
    account="123456789",
    amount=1_500_050,
    fee=5_000,
    total=1_505_050,
    funding="GOLD",
    channel="APP",
    status="COMPLETED",
)

REPAYMENT = ReceiptData(
    receipt_number="RED-9968418AA254532A",
    created_at=datetime(2026, 3, 20, 12, 40, 5, tzinfo=UTC),
    completed_at=datetime(2026, 3, 20, 12, 40, 7, tzinfo=UTC),
    payer_masked="Айгерім С., +7 701 *** ** 45",
    provider_or_merchant="Kaspi Red",
    account="RED-000517",
    amount=2_000_000,
    fee=0,
    total=2_000_000,
    funding="CASH",
    channel="ATM",
    status="COMPLETED",
    kind="RED_REPAYMENT",
    allocation=(
        AllocationLine("CURRENT_BILL", 1_500_000, "B-2026-03-0001"),
        AllocationLine("EARLY_REPAYMENT", 400_000, "P-1003"),
        AllocationLine("OVERPAYMENT", 100_000),
    ),
)


def pdf_text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    return text.replace("\u00a0", " ")


def plain(text: str) -> str:
    return text.replace("\u00a0", " ")


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("data", [PAYMENT, REPAYMENT], ids=["payment", "red-repayment"])
def test_receipt_parses_and_shows_number_amount_and_title(data: ReceiptData, locale: str) -> None:
    receipt = dataclasses.replace(data, locale=locale)
    pdf = render_receipt_pdf(receipt)
    assert pdf.startswith(b"%PDF-")
    text = pdf_text(pdf)
    assert receipt.receipt_number in text
    assert plain(fmt_tiyn(receipt.amount)) in text
    assert plain(fmt_tiyn(receipt.total)) in text
    assert receipt_title(locale) in text
    assert receipt.payer_masked in text
    assert receipt.account in text


def test_receipt_shows_every_field_in_russian() -> None:
    text = pdf_text(render_receipt_pdf(PAYMENT))
    for expected in (
        "Электронный чек",
        "AQ-20260320-00000123",
        "20.03.2026 14:32",  # 09:32 UTC in Asia/Almaty
        "Айгерім С., +7 701 *** ** 45",
        "Алматы Су",
        "123456789",
        "15 000,50 ₸",
        "50 ₸",
        "15 050,50 ₸",
        "Kaspi Gold",
        "Мобильное приложение",
        "Исполнен",
        "такую же юридическую силу, как бумажный",
    ):
        assert expected in text, expected


@pytest.mark.parametrize(
    ("locale", "words"),
    [
        ("kk", ("Электрондық чек", "қағаз чекпен бірдей заңды күші бар", "Ағымдағы шотты өтеу")),
        ("en", ("E-receipt", "same legal force as a paper receipt", "Current bill")),
        ("ru", ("Электронный чек", "юридическую силу", "Распределение платежа", "P-1003")),
    ],
)
def test_repayment_receipt_shows_the_allocation(locale: str, words: tuple[str, ...]) -> None:
    text = pdf_text(render_receipt_pdf(dataclasses.replace(REPAYMENT, locale=locale)))
    for expected in words:
        assert expected in text, expected
    for line in REPAYMENT.allocation:
        assert plain(fmt_tiyn(line.amount)) in text


def test_same_data_gives_identical_bytes() -> None:
    first = render_receipt_pdf(REPAYMENT)
    assert render_receipt_pdf(REPAYMENT) == first
    assert render_receipt_pdf(dataclasses.replace(REPAYMENT)) == first
    assert render_receipt_pdf(dataclasses.replace(REPAYMENT, receipt_number="AQ-20260320-00000125")) != first


def test_creation_date_comes_from_the_data_not_the_clock() -> None:
    reader = PdfReader(io.BytesIO(render_receipt_pdf(PAYMENT)))
    assert reader.metadata is not None
    assert reader.metadata.creation_date == PAYMENT.completed_at
    assert reader.metadata.title == "Электронный чек № AQ-20260320-00000123"


def test_pending_receipt_without_completion_uses_creation_time() -> None:
    pending = dataclasses.replace(PAYMENT, completed_at=None, status="PENDING_PROVIDER")
    text = pdf_text(render_receipt_pdf(pending))
    assert "В обработке у получателя" in text


def test_unknown_locale_prints_russian() -> None:
    assert "Электронный чек" in pdf_text(render_receipt_pdf(dataclasses.replace(PAYMENT, locale="de")))


def test_allocation_lines_from_the_event_shape() -> None:
    event_allocation = {
        "bill_id": "B-2026-03-0001",
        "to_bill": 1_500_000,
        "to_purchases": [{"purchase_id": "P-1003", "amount": 400_000}],
        "carried": 0,
        "refunded_to_gold": 100_000,
    }
    assert allocation_lines(event_allocation) == REPAYMENT.allocation


def test_storage_round_trip_gives_the_same_receipt() -> None:
    for data in (PAYMENT, REPAYMENT):
        restored = ReceiptData.from_json_dict(data.to_json_dict())
        assert restored == data
        assert render_receipt_pdf(restored) == render_receipt_pdf(data)


@pytest.mark.parametrize(
    "changes",
    [
        {"total": 1},
        {"amount": 1_500_050.0},
        {"fee": -1},
        {"amount": True},
        {"created_at": datetime(2026, 3, 20, 9, 32)},
        {"kind": "REFUND"},
        {"receipt_number": ""},
        {"allocation": (AllocationLine("CURRENT_BILL", 1),)},
    ],
)
def test_inconsistent_data_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ReceiptDataError):
        dataclasses.replace(PAYMENT, **changes)


@pytest.mark.parametrize("font", [FONT_REGULAR, FONT_BOLD], ids=lambda p: p.name)
def test_bundled_font_has_kazakh_letters_and_the_tenge_sign(font: Any) -> None:
    cmap = TTFont(str(font), lazy=True).getBestCmap()
    needed = "әғқңөұүһіӘҒҚҢӨҰҮҺІ₸\u00a0«»№—•"
    assert [ch for ch in needed if ord(ch) not in cmap] == []
    assert (FONTS_DIR / "LICENSE").is_file()
