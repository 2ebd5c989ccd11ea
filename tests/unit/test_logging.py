"""JSON logs: correlation ids and masking of phones, IINs, card numbers and codes (brief §6)."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.logging import (
    MaskingFilter,
    bind_correlation,
    configure_logging,
    correlation_id_var,
    luhn_valid,
    mask_pan,
    mask_phone,
    mask_text,
    mask_value,
)

pytestmark = pytest.mark.unit

PHONE = "+7 701 234 56 78"
PHONE_DIGITS = "7012345678"
IIN = "900101300123"
PAN = "4400430212345679"  # Luhn-valid
OTP = "482913"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_level, saved_handlers = root.level, list(root.handlers)
    buf = io.StringIO()
    configure_logging("payments", level="DEBUG", stream=buf)
    yield buf
    for handler in list(root.handlers):
        if handler not in saved_handlers:
            root.removeHandler(handler)
    root.setLevel(saved_level)


def lines(buf: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def digits_only(s: str) -> str:
    return re.sub(r"\D", "", s)


def test_luhn_fixture_is_a_card() -> None:
    assert luhn_valid(PAN)
    assert not luhn_valid("4400430212345678")


def test_secrets_never_reach_the_output_but_correlation_id_does(captured: io.StringIO) -> None:
    log = logging.getLogger("aqsha.payments.test")
    with bind_correlation("corr-123") as cid:
        assert correlation_id_var.get() == cid == "corr-123"
        log.info("transfer to %s, iin %s, card %s, code=%s", PHONE, IIN, PAN, OTP)
        log.info(
            "payload",
            extra={
                "phone": "87012345678",
                "customer": {"iin": int(IIN), "cards": [f"{PAN[:4]} {PAN[4:8]} {PAN[8:12]} {PAN[12:]}"]},
                "otp_code": OTP,
                "body": f'{{"code": "{OTP}", "reason_code": "LIMIT"}}',
            },
        )
        try:
            raise ValueError(f"declined for {PHONE} card {PAN}")
        except ValueError:
            log.exception("boom")
    assert correlation_id_var.get() is None
    raw = captured.getvalue()
    records = lines(captured)
    assert len(records) == 3
    for line in raw.splitlines():
        flat = digits_only(line)
        for secret in (PHONE_DIGITS, IIN, PAN, OTP):
            assert secret not in line
            assert secret not in flat
        assert "corr-123" in line
    first, second, third = records
    assert first["service"] == "payments"
    assert first["level"] == "INFO"
    assert first["logger"] == "aqsha.payments.test"
    assert first["correlation_id"] == "corr-123"
    assert str(first["ts"]).endswith("+00:00")
    assert "+7 *** *** ** 78" in str(first["message"])
    assert "440043******5679" in str(first["message"])
    assert second["otp_code"] == "***"
    assert second["phone"] == "+7 *** *** ** 78"
    assert "LIMIT" in str(second["body"])
    assert "exc_info" in third


def test_correlation_id_absent_is_null(captured: io.StringIO) -> None:
    logging.getLogger("x").warning("hello")
    (record,) = lines(captured)
    assert record["correlation_id"] is None
    assert record["message"] == "hello"


def test_configure_is_idempotent(captured: io.StringIO) -> None:
    buf2 = io.StringIO()
    configure_logging("billing", stream=buf2)
    logging.getLogger("y").info("once")
    assert captured.getvalue() == ""
    assert len(buf2.getvalue().splitlines()) == 1
    assert json.loads(buf2.getvalue())["service"] == "billing"


def test_bind_correlation_generates_an_id() -> None:
    with bind_correlation() as cid:
        assert cid
        assert correlation_id_var.get() == cid
    assert correlation_id_var.get() is None


def test_filter_masks_records_for_any_handler() -> None:
    record = logging.LogRecord("n", logging.INFO, __file__, 1, "iin %s", (IIN,), None)
    record.__dict__["card"] = PAN
    assert MaskingFilter().filter(record)
    assert IIN not in record.getMessage()
    assert record.__dict__["card"] == "440043******5679"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+7 701 234 56 78", "+7 *** *** ** 78"),
        ("+7(701)234-56-78", "+7 *** *** ** 78"),
        ("8 (701) 234-56-78", "+7 *** *** ** 78"),
        ("87012345678", "+7 *** *** ** 78"),
        ("+77012345678", "+7 *** *** ** 78"),
        ("iin=900101300123;", "iin=************;"),
        ("4400-4302-1234-5679", "440043******5679"),
        ("code=1234", "code=***"),
        ('{"otp": "1234"}', '{"otp": "***"}'),
        ("PIN: 0000", "PIN: ***"),
        ("error_code=E42 reason_code=LIMIT", "error_code=E42 reason_code=LIMIT"),
        ("order 1234567890123", "order 1234567890123"),  # 13 digits, not Luhn-valid: left alone
        ("amount 15000 tiyn", "amount 15000 tiyn"),
    ],
)
def test_mask_text_examples(text: str, expected: str) -> None:
    assert mask_text(text) == expected
    assert mask_text(expected) == expected  # masking is idempotent


def test_display_helpers() -> None:
    assert mask_phone("87012345678") == "+7 701 *** ** 78"
    assert mask_phone("+7 (701) 234-56-78") == "+7 701 *** ** 78"
    assert mask_phone("12") == "***"
    assert mask_pan("4400 4302 1234 5679") == "440043******5679"


def test_mask_value_walks_structures() -> None:
    value = {"password": "hunter2", "Secret": None, "items": [IIN, (PHONE,)], "n": 5, "ok": True}
    masked = mask_value(value)
    assert masked == {
        "password": "***",
        "Secret": None,
        "items": ["************", ("+7 *** *** ** 78",)],
        "n": 5,
        "ok": True,
    }
    assert value["password"] == "hunter2"  # the input is not modified
    assert mask_value(87012345678.0) == "+7 *** *** ** 78.0"
    assert mask_value(1.5) == 1.5


SEPARATORS = st.sampled_from(["", " ", "-"])
FILLER = st.text(alphabet=st.characters(blacklist_categories=("Nd", "Cs")), max_size=20)


@given(
    st.sampled_from(["+7", "8", "7", "+7 ", "8 "]),
    st.from_regex(r"7[0-9]{9}", fullmatch=True),
    SEPARATORS,
    st.booleans(),
    FILLER,
    FILLER,
)
def test_phone_digits_never_survive(
    prefix: str, national: str, sep: str, brackets: bool, before: str, after: str
) -> None:
    op = f"({national[:3]})" if brackets else national[:3]
    phone = f"{prefix}{op}{sep}{national[3:6]}{sep}{national[6:8]}{sep}{national[8:]}"
    out = mask_text(f"{before} {phone} {after}")
    assert national not in digits_only(out)
    assert national[:8] not in digits_only(out)


def luhn_complete(body: str) -> str:
    for check in "0123456789":
        if luhn_valid(body + check):
            return body + check
    raise AssertionError("unreachable")


@given(st.integers(min_value=12, max_value=18), st.data(), SEPARATORS, FILLER, FILLER)
def test_pan_digits_never_survive(
    length: int, data: st.DataObject, sep: str, before: str, after: str
) -> None:
    body = data.draw(st.from_regex(rf"[1-9][0-9]{{{length - 1}}}", fullmatch=True))
    pan = luhn_complete(body)
    shown = sep.join(pan[i : i + 4] for i in range(0, len(pan), 4))
    out = mask_text(f"{before} {shown} {after}")
    assert pan not in digits_only(out)
    assert digits_only(out) == pan[:6] + pan[-4:]


@given(st.from_regex(r"[0-9]{12}", fullmatch=True), FILLER, FILLER)
def test_iin_digits_never_survive(iin: str, before: str, after: str) -> None:
    out = mask_text(f"{before} {iin} {after}")
    assert iin not in out
    assert digits_only(out) == ""
