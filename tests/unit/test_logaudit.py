"""The log audit finds clear one-time codes, phones, IINs and card numbers, and passes masked logs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.logaudit import main, scan_line, scan_text
from shared.logging import configure_logging, luhn_valid, mask_text

pytestmark = pytest.mark.unit

PHONE = "+77011234567"
IIN = "900101300123"
PAN = "4400430212345679"  # Luhn-valid
OTP = "482913"
UUID_WITH_DIGIT_TAIL = "0b8e5c1e-3f0a-4c55-9d1e-900101300123"


def kinds(text: str, **kw: object) -> list[str]:
    return [f.kind for f in scan_text(text, **kw)]  # type: ignore[arg-type]


@pytest.fixture
def service_log() -> Iterator[io.StringIO]:
    """The real service log pipeline (masking filter + JSON formatter) writing to a buffer."""
    root = logging.getLogger()
    saved_level, saved_handlers = root.level, list(root.handlers)
    buf = io.StringIO()
    configure_logging("payments", level="DEBUG", stream=buf)
    yield buf
    for handler in list(root.handlers):
        if handler not in saved_handlers:
            root.removeHandler(handler)
    root.setLevel(saved_level)


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (f'{{"message": "sent", "phone": "{PHONE}"}}', "phone"),
        ("call 8 701 123 45 67 now", "phone"),
        ("call 8(701)1234567 now", "phone"),
        ("customer 77011234567", "phone"),
        ("+7 (701) 123-45-67", "phone"),
        (f'{{"iin": "{IIN}"}}', "iin"),
        (f"iin={IIN}", "iin"),
        (f"card {PAN} charged", "card_number"),
        ("card 4400 4302 1234 5679 charged", "card_number"),
        ("card 4400-4302-1234-5679 charged", "card_number"),
        (f'{{"code": "{OTP}"}}', "otp_code"),
        (f'{{"otp": {OTP}}}', "otp_code"),
        (f"confirm code={OTP}", "otp_code"),
        ("Ваш код: 4821", "otp_code"),
        ("sms_code: '1234'", "otp_code"),
    ],
)
def test_clear_values_are_found(line: str, kind: str) -> None:
    assert kinds(line) == [kind]


@pytest.mark.parametrize(
    "line",
    [
        (
            '{"message": "payment awaits its one-time code", '
            '"payment_id": "b2000000-0000-4000-8000-000000000001"}'
        ),
        f'{{"event_id": "{UUID_WITH_DIGIT_TAIL}"}}',
        '{"reason_code": "WRONG_CODE", "error_code": 4821, "offset": 123456}',
        "card 4400430212345678 is not Luhn-valid",
        "amount 2005000 tiyn, total 20050,00 ₸",
        "ts 2026-03-02T06:00:00.123456+00:00",
        "1700000000123 epoch millis",  # 13 digits: not a 16-19 digit PAN
        "partition 7 offset 7011234567",  # 10 digits: not a full phone
    ],
)
def test_innocent_lines_pass(line: str) -> None:
    assert scan_text(line) == []


@pytest.mark.parametrize(
    "raw",
    [
        f"registered {PHONE} iin {IIN}",
        f'{{"code": "{OTP}", "card": "{PAN}"}}',
        f"code={OTP} from 8 701 123 45 67",
        "card 4400 4302 1234 5679",
        f"otp: {OTP}",
    ],
)
def test_masked_forms_from_shared_logging_pass(raw: str) -> None:
    assert scan_text(raw), "the raw line must be a finding"
    assert scan_text(mask_text(raw)) == []


def test_the_service_log_pipeline_leaks_nothing(service_log: io.StringIO) -> None:
    log = logging.getLogger("aqsha.payments")
    log.info("registered %s with iin %s", PHONE, IIN)
    log.warning("sms", extra={"phone": PHONE, "code": OTP, "card": PAN, "iin": IIN})
    log.info({"event": "otp", "otp_code": OTP, "to": "8 701 123 45 67"})
    try:
        raise ValueError(f"bad card {PAN} for {PHONE}")
    except ValueError:
        log.exception("failed")
    text = service_log.getvalue()
    assert len(text.splitlines()) == 4
    assert all(json.loads(line) for line in text.splitlines())
    assert scan_text(text, secrets=[OTP]) == []


def test_known_secrets_are_found_anywhere_but_inside_longer_numbers() -> None:
    assert kinds(f"sms text: your number is {OTP}.", secrets=[OTP]) == ["known_secret"]
    assert kinds(f"offset 9{OTP}9", secrets=[OTP]) == []
    # One span is reported once, by the most specific detector.
    assert kinds(f'"code": "{OTP}"', secrets=[OTP]) == ["known_secret"]


def test_findings_never_repeat_the_value() -> None:
    (finding,) = scan_line(f"iin {IIN} here", source="app.log", line_no=7)
    assert IIN not in finding.excerpt
    assert "REDACTED" in finding.excerpt
    assert str(finding).startswith("app.log:7: iin:")


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = tmp_path / "clean.log"
    clean.write_text(mask_text(f"registered {PHONE} code={OTP}\n") + "plain line\n", encoding="utf-8")
    leaky = tmp_path / "leaky.log"
    leaky.write_text(f'{{"message": "ok"}}\n{{"phone": "{PHONE}"}}\n', encoding="utf-8")
    assert main([str(clean)]) == 0
    assert main([str(clean), str(leaky)]) == 1
    out = capsys.readouterr().out
    assert f"{leaky}:2: phone:" in out
    assert PHONE not in out
    assert main([str(clean), "--secret", OTP]) == 0, "the masked code is not there in clear"
    assert main([str(tmp_path / "missing.log")]) == 2


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.text(alphabet="0123456789 -+*()", max_size=40))
def test_masked_text_never_has_findings(text: str) -> None:
    assert scan_text(mask_text(text)) == []


@given(st.from_regex(r"\A\d{15}\Z"))
@settings(max_examples=50, derandomize=True)
def test_every_luhn_completed_pan_is_found(body: str) -> None:
    check = next(str(d) for d in range(10) if luhn_valid(body + str(d)))
    pan = body + check
    assert kinds(f"pan {pan}") == ["card_number"]
    assert scan_text(mask_text(f"pan {pan}")) == []
