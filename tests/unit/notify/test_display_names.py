"""Names instead of codes: every provider, merchant and partner the data names has a name in every locale,
and a message never falls back to printing a code (services/notify/display_names.toml)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from services.notify.rendering import LOCALES, Renderer
from services.notify.rendering.filters import bill_lines
from services.notify.rendering.names import (
    DisplayNamesError,
    code_key,
    default_names,
    load_names,
)
from shared.contracts.common import Merchant

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]


def _toml(path: str) -> dict[str, Any]:
    with (ROOT / path).open("rb") as f:
        return tomllib.load(f)


def provider_codes() -> set[str]:
    """Every provider code the tariffs, the provider simulator and the bonus rules name."""
    codes: set[str] = set()
    for profile in _toml("services/payments/tariffs.toml")["profiles"].values():
        for rule in profile.get("rules", []):
            codes.update(rule.get("providers", []))
    codes.update(p["code"] for p in _toml("services/payments/provider_simulator.toml")["providers"])
    for rule_set in _toml("services/bonus/rules.toml")["rule_sets"]:
        for rule in rule_set.get("rules", []):
            codes.update(rule.get("providers", []))
    return codes


def partner_ids() -> set[str]:
    """Every partner the bonus rules' promotions name."""
    return {
        promo["partner_id"]
        for rule_set in _toml("services/bonus/rules.toml")["rule_sets"]
        for promo in rule_set.get("promotions", [])
    }


# The demo's payments (shared/ops/demo.py) name two more providers than the data files.
DEMO_PROVIDERS = {"air-astana", "kcell"}


@pytest.mark.parametrize("code", sorted(provider_codes() | DEMO_PROVIDERS))
def test_every_provider_has_a_name_in_every_locale(code: str) -> None:
    names = default_names()
    assert code_key(code) in names.providers, f"add {code!r} to services/notify/display_names.toml"
    for locale in LOCALES:
        assert names.provider(code, locale) != code


@pytest.mark.parametrize("merchant", list(Merchant))
def test_every_merchant_has_a_name_in_every_locale(merchant: Merchant) -> None:
    for locale in LOCALES:
        name = default_names().merchant(merchant.value, None, locale)
        assert name
        assert name != merchant.value


@pytest.mark.parametrize("partner", sorted(partner_ids()))
def test_every_partner_has_a_name_in_every_locale(partner: str) -> None:
    for locale in LOCALES:
        name = default_names().merchant("KASPI_QR", partner, locale)
        assert name
        assert name not in (partner, "Kaspi QR")


def test_codes_compare_like_payments_compares_them() -> None:
    names = default_names()
    assert names.provider("ALMATY_ENERGO", "ru") == "Алматыэнергосбыт"
    assert names.provider("almaty-energo", "ru") == "Алматыэнергосбыт"
    assert names.provider("astana_erc", "en") == "Astana-ERC"


def test_an_unknown_provider_is_never_printed_as_its_code() -> None:
    names = default_names()
    payee = {"provider": "unknown-x", "merchant": None, "partner_id": None, "name": "unknown-x"}
    shown = [names.payee(payee, loc) for loc in LOCALES]
    assert shown == ["Поставщик услуг", "Қызмет жеткізуші", "Service provider"]
    # A name payments printed (not just the code again) is kept.
    assert names.payee({**payee, "name": "ТОО Свет"}, "ru") == "ТОО Свет"


def test_a_partner_wins_over_its_merchant_and_an_unknown_partner_falls_back_to_the_merchant() -> None:
    names = default_names()
    qr = {"provider": None, "merchant": "KASPI_QR", "partner_id": "partner-demo-coffee", "name": "KASPI_QR"}
    assert names.payee(qr, "kk") == "Жұпар Coffee"
    assert names.payee({**qr, "partner_id": "partner-unknown"}, "en") == "Kaspi QR"
    assert names.payee({**qr, "partner_id": None, "merchant": "KASPI_MAGAZIN"}, "ru") == "Kaspi Магазин"
    red = {"provider": None, "merchant": None, "partner_id": None, "name": "Kaspi Red"}
    assert names.payee(red, "kk") == "Kaspi Red"


def test_a_single_code_or_a_name_given_as_text() -> None:
    names = default_names()
    assert names.payee("almaty-su", "en") == "Almaty Su"
    assert names.payee("KASPI_TRAVEL", "ru") == "Kaspi Travel"
    assert names.payee("Алматы Су", "en") == "Алматы Су"  # already a name: kept


def test_bill_lines_name_the_purchase_and_leave_its_id_out() -> None:
    lines = [
        {"purchase_id": "6c1f7d2a-44b0-4a57-9a7e-5f1e2d3c4b5a", "part_no": 2, "amount": 500_000,
         "merchant": "KASPI_QR", "partner_id": "partner-demo-coffee", "purchased_on": "2025-10-20",
         "parts_total": 4},
        {"purchase_id": "6c1f7d2a-44b0-4a57-9a7e-5f1e2d3c4b5b", "part_no": 1, "amount": 100_000},
    ]  # fmt: skip
    shown = bill_lines(lines, "en")
    assert [(x["shop"], str(x["purchased_on"]), x["part_no"], x["parts_total"]) for x in shown] == [
        ("Zhupar Coffee", "2025-10-20", 2, 4),
        (None, "None", 1, 4),
    ]
    assert all("purchase_id" not in x for x in shown)


def test_a_bill_of_an_old_plan_reads_well_without_names() -> None:
    context = {
        "amount": 300_000,
        "due_at": "2025-11-24T20:00:00+05:00",
        "lines": [{"purchase_id": "6c1f7d2a-44b0-4a57-9a7e-5f1e2d3c4b5a", "part_no": 3, "amount": 300_000}],
    }
    bodies = [Renderer().render("BillIssued", loc, context).body for loc in LOCALES]
    assert "• покупка: часть 3 из 4 — 3\u00a0000\u00a0₸" in bodies[0]
    assert "• сатып алу: 4 бөліктің 3-бөлігі — 3\u00a0000\u00a0₸" in bodies[1]
    assert "• purchase: part 3 of 4 — 3\u00a0000\u00a0₸" in bodies[2]
    assert not any("6c1f7d2a" in body for body in bodies)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[providers.a]\nru = "A"\nkk = "A"\n', "missing locales"),
        ('[providers.a]\nru = "«A»"\nkk = "A"\nen = "A"\n', "quotation marks"),
        ('[providers.a]\nru = " A"\nkk = "A"\nen = "A"\n', "outer spaces"),
        (
            '[providers.a-b]\nru = "A"\nkk = "A"\nen = "A"\n[providers.A_B]\nru = "B"\nkk = "B"\nen = "B"\n',
            "twice",
        ),
        ('[shops.a]\nru = "A"\nkk = "A"\nen = "A"\n', "unknown sections"),
    ],
)
def test_a_malformed_names_file_is_refused_naming_the_entry(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "names.toml"
    fallback = '[fallback]\nprovider = { ru = "П", kk = "Қ", en = "P" }\n'
    path.write_text(f"schema_version = 1\n{fallback}{text}", encoding="utf-8")
    with pytest.raises(DisplayNamesError, match=problem):
        load_names(path)
