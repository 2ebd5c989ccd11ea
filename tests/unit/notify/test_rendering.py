"""Behaviour of the renderer and its filters, beyond the golden texts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from jinja2 import Environment, FileSystemLoader, meta

from services.notify.rendering import (
    CHANNELS,
    DEFAULT_TEMPLATES_DIR,
    EVENT_TYPES,
    LOCALES,
    NoTemplateForChannel,
    Renderer,
    RenderError,
    UnknownEventType,
    normalize_locale,
    reason_text,
)
from services.notify.rendering import vocabulary as vocab
from services.notify.rendering.filters import (
    FILTERS,
    FilterInputError,
    allocation_parts,
    format_bonus,
    format_date,
    format_datetime,
    kk_case,
    money,
    percent,
)

from .samples import SAMPLES

pytestmark = pytest.mark.unit

NBSP = "\u00a0"


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def with_(event_type: str, **changes: Any) -> dict[str, Any]:
    return {**SAMPLES[event_type], **changes}


def without(event_type: str, *keys: str) -> dict[str, Any]:
    return {k: v for k, v in SAMPLES[event_type].items() if k not in keys}


# -- templates on disk --------------------------------------------------------------------------
@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_event_type_has_a_template_in_every_locale(
    renderer: Renderer, event_type: str, locale: str
) -> None:
    channels = renderer.channels_for(event_type, locale)
    assert channels, f"no template for {event_type} in {locale}"
    # every locale offers the same channels as the default one
    assert channels == renderer.channels_for(event_type, "ru")
    name = renderer.template_name(event_type, locale)
    assert name.startswith(f"{locale}/{event_type}.")


def test_templates_define_title_and_body_and_nothing_outside_blocks() -> None:
    env = Environment(loader=FileSystemLoader(str(DEFAULT_TEMPLATES_DIR)))
    env.filters.update(FILTERS)
    names = env.list_templates(extensions=["j2"])
    assert len(names) == len(EVENT_TYPES) * len(LOCALES)
    for name in names:
        template = env.get_template(name)
        assert {"title", "body"} <= set(template.blocks), name
        assert set(template.blocks) <= {"title", "body", "short"}, name
        # the same context fields are read in every locale (catches a typo in one translation)
        source = Path(DEFAULT_TEMPLATES_DIR, name).read_text(encoding="utf-8")
        ru_source = Path(DEFAULT_TEMPLATES_DIR, "ru", name.split("/", 1)[1]).read_text(encoding="utf-8")
        fields = meta.find_undeclared_variables(env.parse(source))
        assert fields == meta.find_undeclared_variables(env.parse(ru_source)), name


def test_otp_goes_by_sms_only(renderer: Renderer) -> None:
    assert renderer.channels_for("OtpRequested", "ru") == {"sms"}
    for channel in ("inbox", "push", "email"):
        with pytest.raises(NoTemplateForChannel):
            renderer.render("OtpRequested", "ru", SAMPLES["OtpRequested"], channel=channel)
    sms = renderer.render("OtpRequested", "kk", SAMPLES["OtpRequested"], channel="sms")
    assert "482915" in sms.body
    assert "482915" not in sms.title


@pytest.mark.parametrize("locale", LOCALES)
def test_otp_warns_never_to_share_the_code(renderer: Renderer, locale: str) -> None:
    body = renderer.render("OtpRequested", locale, SAMPLES["OtpRequested"], channel="sms").body
    warning = {"ru": "Никому не сообщайте", "kk": "ешкімге", "en": "Never share"}[locale]
    assert warning in body
    assert "14:37" in body  # 09:37 UTC is 14:37 in Almaty


# -- locales and errors -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "expected"),
    [("ru", "ru"), ("kk", "kk"), ("en", "en"), ("kk-KZ", "kk"), ("KK_kz", "kk"), ("kz", "kk"),
     ("en-GB", "en"), ("de", "ru"), ("", "ru"), (None, "ru")],
)  # fmt: skip
def test_normalize_locale(given: str | None, expected: str) -> None:
    assert normalize_locale(given) == expected


def test_unknown_locale_renders_russian(renderer: Renderer) -> None:
    message = renderer.render("BillIssued", "de", SAMPLES["BillIssued"])
    assert message.locale == "ru"
    assert message == renderer.render("BillIssued", "ru", SAMPLES["BillIssued"])


def test_unknown_event_type_is_a_clear_error(renderer: Renderer) -> None:
    with pytest.raises(UnknownEventType, match="CustomerTeleported"):
        renderer.render("CustomerTeleported", "ru", {})


def test_unknown_channel_is_an_error(renderer: Renderer) -> None:
    with pytest.raises(RenderError, match="fax"):
        renderer.render("BillIssued", "ru", SAMPLES["BillIssued"], channel="fax")


def test_missing_field_fails_loudly(renderer: Renderer) -> None:
    with pytest.raises(RenderError, match="due_at"):
        renderer.render("BillIssued", "ru", without("BillIssued", "due_at"))


def test_naive_datetime_is_refused(renderer: Renderer) -> None:
    with pytest.raises(RenderError, match="naive"):
        renderer.render("BillIssued", "ru", with_("BillIssued", due_at=datetime(2026, 3, 20, 20, 0)))


@pytest.mark.parametrize("bad", [15000.0, True, "15000", None])
def test_amount_must_be_int_tiyn(renderer: Renderer, bad: object) -> None:
    with pytest.raises(RenderError):
        renderer.render("LimitRestored", "ru", with_("LimitRestored", amount=bad))


def test_context_locale_cannot_override_the_message_locale(renderer: Renderer) -> None:
    message = renderer.render("TopUpCompleted", "en", with_("TopUpCompleted", locale="ru"))
    assert "Date and time: 20 Mar 2026, 09:15" in message.body


def test_plain_text_is_not_html_escaped(renderer: Renderer) -> None:
    message = renderer.render("PaymentFailed", "ru", with_("PaymentFailed", provider='Tom & "Jerry" <1>'))
    assert 'Tom & "Jerry" <1>' in message.body


def test_renders_json_mode_dump_with_iso_strings(renderer: Renderer) -> None:
    """``model_dump(mode="json")`` gives ISO strings; they render exactly like datetimes."""
    sample = SAMPLES["BillIssued"]
    as_json = {**sample, "due_at": sample["due_at"].isoformat(), "issued_at": sample["issued_at"].isoformat()}
    for locale in LOCALES:
        assert renderer.render("BillIssued", locale, as_json) == renderer.render("BillIssued", locale, sample)


def test_every_channel_gets_a_single_line_title(renderer: Renderer) -> None:
    for event_type in EVENT_TYPES:
        for locale in LOCALES:
            for channel in CHANNELS:
                try:
                    message = renderer.render(event_type, locale, SAMPLES[event_type], channel=channel)
                except NoTemplateForChannel:
                    continue
                assert message.title
                assert "\n" not in message.title
                assert message.body == message.body.strip()
                assert "  " not in message.body.replace(NBSP, " ").replace("\n", "|")


# -- optional fields ----------------------------------------------------------------------------
OPTIONAL_FIELDS = {
    "BillOverdueRecorded": ("penalty",),
    "OtpRequested": ("provider",),
    "BonusAccrued": ("percent", "merchant"),
    "BonusReversed": ("merchant",),
    "PaymentFailed": ("amount", "provider", "failed_at"),
    "TransferCompleted": ("recipient", "balance_after"),
    "TransferReceived": ("sender",),
    "PaymentCompleted": ("account",),
    "RepaymentApplied": ("receipt_number", "receipt_url", "channel", "applied_at"),
    "OverpaymentRefunded": ("account",),
}


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("event_type", sorted(OPTIONAL_FIELDS))
def test_optional_fields_may_be_absent(renderer: Renderer, event_type: str, locale: str) -> None:
    context = without(event_type, *OPTIONAL_FIELDS[event_type])
    for channel in (None, "sms"):
        body = renderer.render(event_type, locale, context, channel=channel).body
        for blemish in ("  ", " .", "()", "..", " ,", "\n\n\n"):
            assert blemish not in body, (event_type, locale, channel, blemish)


def test_transfer_between_own_accounts(renderer: Renderer) -> None:
    context = {**without("TransferCompleted", "recipient", "balance_after"), "to_account": "WALLET"}
    body = renderer.render("TransferCompleted", "ru", context).body
    assert "Списано с: Kaspi Gold\nЗачислено на: Kaspi Wallet" in body
    assert "Получатель" not in body


def test_repayment_allocation_as_a_flat_list(renderer: Renderer) -> None:
    flat = [
        {"kind": "CURRENT_BILL", "amount": 1_500_000, "bill_id": "B-2026-03-0001"},
        {"kind": "EARLY_REPAYMENT", "amount": 400_000, "purchase_id": "P-1003"},
        {"kind": "OVERPAYMENT", "amount": 100_000},
    ]
    for locale in LOCALES:
        as_list = renderer.render("RepaymentApplied", locale, with_("RepaymentApplied", allocation=flat))
        assert as_list == renderer.render("RepaymentApplied", locale, SAMPLES["RepaymentApplied"])


def test_allocation_parts_skip_zero_and_keep_the_domain_order() -> None:
    parts = allocation_parts(
        {
            "bill_id": None,
            "to_bill": 0,
            "to_purchases": [{"purchase_id": "P-1", "amount": 300}, {"purchase_id": "P-2", "amount": 200}],
            "carried": 500,
            "refunded_to_gold": 0,
        }
    )
    assert parts == [
        {"kind": "EARLY_REPAYMENT", "amount": 300, "reference": "P-1"},
        {"kind": "EARLY_REPAYMENT", "amount": 200, "reference": "P-2"},
        {"kind": "CARRIED", "amount": 500, "reference": None},
    ]


@pytest.mark.parametrize(
    ("value", "ru", "en"),
    [("5", "5%", "5%"), ("12.5", "12,5%", "12.5%"), ("1.50", "1,5%", "1.5%"), (15, "15%", "15%")],
)
def test_percent(value: object, ru: str, en: str) -> None:
    assert percent(value, "ru") == ru
    assert percent(value, "kk") == ru
    assert percent(value, "en") == en


@pytest.mark.parametrize(
    ("refunded", "ru_text"),
    [(True, "Списанные деньги вернулись на ваш счёт."), (False, "Деньги со счёта не списаны.")],
)
def test_payment_failed_says_whether_money_was_returned(
    renderer: Renderer, refunded: bool, ru_text: str
) -> None:
    body = renderer.render("PaymentFailed", "ru", with_("PaymentFailed", refunded=refunded)).body
    assert ru_text in body
    for locale in ("kk", "en"):
        renderer.render("PaymentFailed", locale, with_("PaymentFailed", refunded=refunded))


# -- reasons ------------------------------------------------------------------------------------
REQUIRED_REASONS = (
    "INSUFFICIENT_FUNDS", "WRONG_CODE", "CODE_EXPIRED", "TOO_MANY_ATTEMPTS", "PROVIDER_FAILED",
    "ISSUER_RESTRICTION", "ISSUER_UNAVAILABLE", "CANCELLED_BY_CUSTOMER", "RED_DECLINED",
    "BONUS_DECLINED", "INSUFFICIENT_LIMIT",
    "IDENTITY_MISMATCH",  # seed 000: the IIN must match; the contract's code, not a local alias
)  # fmt: skip


def test_every_reason_has_words_in_every_locale() -> None:
    assert set(REQUIRED_REASONS) <= set(vocab.REASONS)
    for code, words in vocab.REASONS.items():
        assert set(words) == set(LOCALES), code
        for text in words.values():
            assert text == text.strip(), code
            assert text, code
            assert not text.endswith("."), code
            assert text[0].islower() or text[:3] in {"SMS", "ИИН", "ЖСН", "Kas"}, code


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("code", sorted(vocab.REASONS))
def test_payment_failed_explains_each_reason(renderer: Renderer, code: str, locale: str) -> None:
    body = renderer.render("PaymentFailed", locale, with_("PaymentFailed", reason_code=code)).body
    assert vocab.REASONS[code][locale] in body
    assert code not in body


@pytest.mark.parametrize("code", ["SOMETHING_NEW", "", None])
def test_unknown_reason_falls_back_to_generic_words(code: str | None) -> None:
    assert reason_text(code, "ru") == "произошла техническая ошибка"
    assert reason_text(code, "kk") == "техникалық қате орын алды"
    assert reason_text(code, "en") == "a technical error occurred"


def test_reason_codes_are_case_insensitive() -> None:
    assert reason_text("insufficient_funds", "en") == "there isn't enough money in your account"


# -- filters ------------------------------------------------------------------------------------
def test_money_uses_shared_money_formatting() -> None:
    assert money(1_500_000) == f"15{NBSP}000{NBSP}₸"
    assert money(1_500_050) == f"15{NBSP}000,50{NBSP}₸"
    assert money(0) == f"0{NBSP}₸"
    assert money({"tiyn": 200_000, "currency": "KZT"}) == f"2{NBSP}000{NBSP}₸"
    with pytest.raises(FilterInputError):
        money(1.5)


ALMATY_EVENING = datetime(2026, 3, 20, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("ru", "20.03.2026 20:00"), ("kk", "20.03.2026 20:00"), ("en", "20 Mar 2026, 20:00")],
)
def test_almaty_datetime(locale: str, expected: str) -> None:
    assert format_datetime(ALMATY_EVENING, locale) == expected
    # the same instant given in another offset prints the same Almaty time
    assert format_datetime(ALMATY_EVENING.astimezone(timezone(timedelta(hours=-7))), locale) == expected


def test_almaty_date_crosses_midnight_from_utc() -> None:
    late_utc = datetime(2026, 3, 20, 19, 30, tzinfo=UTC)  # 00:30 on the 21st in Almaty
    assert format_date(late_utc, "ru") == "21.03.2026"
    assert format_date(late_utc, "en") == "21 Mar 2026"
    assert format_date(date(2026, 12, 1), "en") == "1 Dec 2026"


@pytest.mark.parametrize(
    ("tiyn", "ru", "kk", "en"),
    [
        (100, "1 бонус", "1 бонус", "1 bonus"),
        (200, "2 бонуса", "2 бонус", "2 bonuses"),
        (500, "5 бонусов", "5 бонус", "5 bonuses"),
        (1_100, "11 бонусов", "11 бонус", "11 bonuses"),
        (2_100, "21 бонус", "21 бонус", "21 bonuses"),
        (2_200, "22 бонуса", "22 бонус", "22 bonuses"),
        (11_200, "112 бонусов", "112 бонус", "112 bonuses"),
        (145_000, "1 450 бонусов", "1 450 бонус", "1 450 bonuses"),
        (15_050, "150,50 бонуса", "150,50 бонус", "150,50 bonuses"),
    ],
)
def test_bonus_nouns_agree_with_the_number(tiyn: int, ru: str, kk: str, en: str) -> None:
    assert format_bonus(tiyn, "ru") == ru.replace(" ", NBSP)
    assert format_bonus(tiyn, "kk") == kk.replace(" ", NBSP)
    assert format_bonus(tiyn, "en") == en.replace(" ", NBSP)


@pytest.mark.parametrize(
    ("value", "case", "expected"),
    [
        ("20:00", "dat", "20:00-ге"),  # "нөл" → -ге, as in "18:00-ге дейін"
        ("09:00", "abl", "09:00-ден"),
        ("14:37", "dat", "14:37-ге"),  # жеті
        ("14:30", "dat", "14:30-ға"),  # отыз
        ("14:36", "dat", "14:36-ға"),  # алты
        ("14:35", "dat", "14:35-ке"),  # бес
        ("14:34", "loc", "14:34-те"),  # төрт
        ("14:40", "abl", "14:40-тан"),  # қырық
        ("14:10", "abl", "14:10-нан"),  # он
        ("14:58", "abl", "14:58-ден"),  # сегіз
        (100, "dat", "100-ге"),  # жүз
        (1000, "dat", "1000-ға"),  # мың
    ],
)
def test_kazakh_case_endings_on_numbers(value: object, case: str, expected: str) -> None:
    assert kk_case(value, case) == expected


def test_kazakh_case_rejects_bad_input() -> None:
    with pytest.raises(FilterInputError):
        kk_case("abc", "dat")
    with pytest.raises(FilterInputError):
        kk_case("14:00", "gen")


def test_every_worded_reason_is_a_contract_reason_code() -> None:
    # A key that is not a ReasonCode is never looked up: the customer would read "a technical error"
    # (three keys had drifted: ACCOUNT_NOT_FOUND, INSUFFICIENT_BONUS, AMOUNT_OUT_OF_RANGE).
    from shared.contracts.common import ReasonCode

    assert set(vocab.REASONS) <= {code.value for code in ReasonCode}
    for code in ("UNKNOWN_PROVIDER_ACCOUNT", "BONUS_BALANCE_INSUFFICIENT", "INVALID_AMOUNT"):
        assert vocab.reason_text(code, "en") != vocab.REASON_FALLBACK["en"]
