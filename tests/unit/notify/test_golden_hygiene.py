"""Customer-facing golden texts show no internal codes or ids.

Every file in ``golden/`` is what a customer reads. None may contain a UUID (purchase, bill, payment
ids), a raw enum code of a contract (``KASPI_QR``, ``ELECTRICITY``, ``TOP_UP``, ``INSUFFICIENT_FUNDS``
…) or a provider or partner code (``almaty-energo``, ``partner-demo-coffee``). Receipt numbers are
the one machine-made string a customer is meant to read (and quote to the bank): they are removed
before the scan, in the formats the services produce (payments' ``AQ-YYYYMMDD-NNNNNNNN``, notify's
``RED-<16 hex>``).
"""

from __future__ import annotations

import inspect
import re
import tomllib
from enum import Enum
from pathlib import Path

import pytest

from services.notify.rendering.names import DEFAULT_NAMES_FILE
from shared.contracts import billing, bonus, common, notify, payments

from .test_display_names import partner_ids, provider_codes

pytestmark = pytest.mark.unit

GOLDEN_DIR = Path(__file__).parent / "golden"
GOLDENS = sorted(GOLDEN_DIR.rglob("*.txt"))

UUID_RE = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.IGNORECASE)
RECEIPT_NUMBER_RE = re.compile(r"\bAQ-\d{8}-\d{8}\b|\bRED-[0-9A-F]{16}\b")
#: Display words that happen to spell a code (Channel.ATM is "Kaspi ATM" in English).
DISPLAY_PHRASES = ("Kaspi ATM",)
#: Words every locale writes as customers know them, though a contract enum spells them too.
ORDINARY_WORDS = frozenset({"SMS"})


def enum_codes() -> set[str]:
    """Every enum value and member name of the contracts, in the upper-case form codes travel in."""
    codes: set[str] = set()
    for module in (common, payments, billing, bonus, notify):
        for _, enum in inspect.getmembers(module, inspect.isclass):
            if issubclass(enum, Enum) and enum is not Enum:
                for member in enum:
                    codes.update({member.name, str(member.value).upper()})
    return {c for c in codes if len(c) >= 2} - ORDINARY_WORDS


def named_codes() -> set[str]:
    """Provider codes and partner ids, as the data files spell them."""
    with DEFAULT_NAMES_FILE.open("rb") as f:
        data = tomllib.load(f)
    listed = set(data["providers"]) | set(data["partners"])
    return listed | provider_codes() | partner_ids()


def customer_text(path: Path) -> str:
    """The golden without its receipt numbers and the display phrases that look like codes."""
    text = RECEIPT_NUMBER_RE.sub("<receipt>", path.read_text(encoding="utf-8"))
    for phrase in DISPLAY_PHRASES:
        text = text.replace(phrase, "")
    return text


def test_there_are_goldens_in_every_locale() -> None:
    assert {p.parent.name for p in GOLDENS} == {"ru", "kk", "en"}
    assert len(GOLDENS) >= 3 * 15


@pytest.mark.parametrize("path", GOLDENS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_golden_texts_show_no_codes_or_ids(path: Path) -> None:
    text = customer_text(path)
    assert not UUID_RE.search(text), f"a UUID in {path}: {UUID_RE.search(text)}"
    words = set(re.findall(r"\b[A-Z][A-Z0-9_]+\b", text))
    assert not words & enum_codes(), f"raw enum codes in {path}: {sorted(words & enum_codes())}"
    found = [code for code in named_codes() if re.search(rf"(?<![\w-]){re.escape(code)}(?![\w-])", text)]
    assert not found, f"provider or partner codes in {path}: {found}"


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    """The checks above are not vacuous: each catches its kind of leak."""
    leaky = tmp_path / "leak.txt"
    for leak in (
        "• покупка 96a2836d-2826-4f6a-9d4e-0a1b2c3d4e5f",
        "Payment to KASPI_QR completed",
        "Категория: ELECTRICITY",
        "Вид: TOP_UP",
        "Оплата «almaty-energo» прошла успешно",
        "Kaspi QR: partner-demo-coffee",
    ):
        leaky.write_text(leak, encoding="utf-8")
        with pytest.raises(AssertionError):
            test_golden_texts_show_no_codes_or_ids(leaky)
    clean = tmp_path / "clean.txt"
    text = "Чек № AQ-20251020-00000002, RED-9968418AA254532A. Paid via: Kaspi ATM. SMS"
    clean.write_text(text, encoding="utf-8")
    test_golden_texts_show_no_codes_or_ids(clean)
