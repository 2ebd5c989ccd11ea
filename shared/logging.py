"""JSON logs with correlation ids, and masking of phones, IINs, card numbers and codes.

One JSON object per line: ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``message``,
``service``, ``correlation_id`` and every ``extra`` field. A masking filter on the handler
rewrites the message and all extras before any formatter sees them, and the formatter masks the
finished line once more, so tracebacks and ``str()`` of arbitrary objects are covered too.

Domain brief §6 (003): one-time codes and PINs are never shown anywhere but to the customer, and
the IIN is personal data; a log line is "anywhere". Masking rules:

* Kazakh phone numbers (``+7``/``7``/``8`` and 10 digits, spaces, dashes, brackets allowed) keep
  the country code and the last two digits: ``+7 *** *** ** 67``.
* IIN (exactly 12 consecutive digits): ``************``.
* Card PANs (13-19 digits, optional single spaces/dashes, Luhn-valid): first 6 and last 4 kept.
* Values under keys named ``code``, ``otp``, ``otp_code``, ``pin``, ``password``, ``secret`` (and
  a few siblings), and ``code=1234`` / ``"code": "1234"`` in text: ``***``. Error codes should be
  logged under ``reason_code``/``error_code``, which are not masked.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from pythonjsonlogger.json import JsonFormatter

correlation_id_var: ContextVar[str | None] = ContextVar("aqsha_correlation_id", default=None)

MASK: Final = "***"
SENSITIVE_KEYS: Final = frozenset(
    {"code", "otp", "otp_code", "sms_code", "pin", "pin_code", "password", "passwd", "secret", "cvv", "cvc"}
)
_SENSITIVE_SUFFIXES: Final = ("_password", "_secret", "_otp", "_pin")

_SEP = r"[ \t\-]*"
# +7 / 7 / 8, then a 3-digit operator code (optionally in brackets), then 3-2-2 digits.
_PHONE_RE: Final = re.compile(
    rf"(?<![\d+])(?P<cc>\+\s*7|7|8){_SEP}\(?{_SEP}(?P<op>\d{{3}}){_SEP}\)?{_SEP}"
    rf"(?P<a>\d{{3}}){_SEP}(?P<b>\d{{2}}){_SEP}(?P<c>\d{{2}})(?!\d)"
)
_IIN_RE: Final = re.compile(r"(?<!\d)\d{12}(?!\d)")
_PAN_RE: Final = re.compile(r"(?<!\d)\d(?:[ \-]?\d){12,18}(?!\d)")
_KEYS_ALT = "|".join(sorted((re.escape(k) for k in SENSITIVE_KEYS), key=len, reverse=True))
# code=1234, code: 1234, "code": "1234", 'otp'='12 34'; the value ends at a quote or separator.
_CODE_RE: Final = re.compile(
    rf"""(?P<key>(?<![\w-])["']?(?:{_KEYS_ALT})["']?\s*[:=]\s*)"""
    r"""(?:(?P<q>["'])(?P<qval>[^"'\n]*)(?P=q)|(?P<val>[^\s"',;&}\])]+))""",
    re.IGNORECASE,
)


def luhn_valid(digits: str) -> bool:
    """Return whether a string of digits passes the Luhn check used by card numbers."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def mask_pan(pan: str) -> str:
    """Return a card number with all but the first 6 and last 4 digits masked."""
    digits = re.sub(r"\D", "", pan)
    if len(digits) < 13:
        return "*" * len(digits)
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


def _phone_digits(phone: str) -> str | None:
    digits = re.sub(r"\D", "", phone)
    if len(digits) == 11 and digits[0] in "78":
        return digits[1:]
    if len(digits) == 10:
        return digits
    return None


def mask_phone(phone: str) -> str:
    """Return the receipt display form of a Kazakh phone number, e.g. ``+7 701 *** ** 67``."""
    national = _phone_digits(phone)
    if national is None:
        return MASK
    return f"+7 {national[:3]} *** ** {national[-2:]}"


def _mask_pan_match(m: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", m.group(0))
    return mask_pan(digits) if luhn_valid(digits) else m.group(0)


def _mask_phone_match(m: re.Match[str]) -> str:
    # Logs keep less than receipts: country code and the last two digits only.
    return f"+7 *** *** ** {m.group('c')}"


def _mask_code_match(m: re.Match[str]) -> str:
    if m.group("q") is not None:
        return f"{m.group('key')}{m.group('q')}{MASK}{m.group('q')}"
    return f"{m.group('key')}{MASK}"


def mask_digits(text: str) -> str:
    """Mask card numbers, IINs and phone numbers in ``text`` (JSON-safe: adds no quotes)."""
    text = _PAN_RE.sub(_mask_pan_match, text)
    text = _IIN_RE.sub("*" * 12, text)
    return _PHONE_RE.sub(_mask_phone_match, text)


def mask_text(s: str) -> str:
    """Return ``s`` with one-time codes, card numbers, IINs and phone numbers masked."""
    return mask_digits(_CODE_RE.sub(_mask_code_match, s))


def is_sensitive_key(key: object) -> bool:
    """Return whether a mapping key names a secret whose value is always masked."""
    if not isinstance(key, str):
        return False
    k = key.strip().lower().replace("-", "_")
    return k in SENSITIVE_KEYS or k.endswith(_SENSITIVE_SUFFIXES)


def mask_value(obj: Any) -> Any:
    """Return a copy of ``obj`` with every string, and every value under a secret key, masked."""
    if isinstance(obj, str):
        return mask_text(obj)
    if isinstance(obj, bool) or obj is None:
        return obj
    if isinstance(obj, int | float):
        # An IIN or a PAN can arrive as a number; a masked one becomes a string, which also keeps
        # the final whole-line pass from writing '*' into a bare JSON number.
        s = str(obj)
        masked = mask_digits(s)
        return obj if masked == s else masked
    if isinstance(obj, dict):
        return {k: (MASK if is_sensitive_key(k) and v is not None else mask_value(v)) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return type(obj)(mask_value(v) for v in obj)
    return obj


_RESERVED_ATTRS: Final = frozenset(
    {*logging.LogRecord("", 0, "", 0, "", (), None).__dict__, "message", "asctime", "taskName"}
)


class MaskingFilter(logging.Filter):
    """Mask phones, IINs, PANs and codes in a record's message and extras (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place and keep it."""
        if getattr(record, "_aqsha_masked", False):
            return True
        if isinstance(record.msg, dict):
            record.msg = mask_value(record.msg)
        else:
            record.msg = mask_text(record.getMessage())
        record.args = None
        for key, value in list(record.__dict__.items()):
            if key in _RESERVED_ATTRS or key.startswith("_"):
                continue
            record.__dict__[key] = MASK if is_sensitive_key(key) and value is not None else mask_value(value)
        record.__dict__["_aqsha_masked"] = True
        return True


class AqshaJsonFormatter(JsonFormatter):
    """JSON lines with aqsha's fixed field names, masked once more as a whole."""

    def __init__(self, service: str) -> None:
        super().__init__(json_ensure_ascii=False)
        self.service = service

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        """Put the fixed fields first, then the extras."""
        log_data["ts"] = datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="microseconds")
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        log_data["message"] = record.message
        log_data["service"] = self.service
        log_data["correlation_id"] = record.__dict__.get("correlation_id") or correlation_id_var.get()
        super().add_fields(log_data, record, message_dict)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        """Mask every value once more (covers tracebacks and formatter-added fields)."""
        masked: dict[str, Any] = mask_value(log_data)
        return masked

    def jsonify_log_record(self, log_data: dict[str, Any]) -> str:
        """Serialise, then mask digits in the final line (covers ``str()`` of unknown objects)."""
        return mask_digits(super().jsonify_log_record(log_data))


#: FastStream's own loggers: the app's (``FastStream app starting...``) and the Kafka broker's
#: (``Consumer ... assigned to partitions``). FastStream gives each a plain-text, ANSI-coloured
#: handler and stops propagation; ``configure_logging`` takes them over, and the services hand these
#: same loggers to FastStream (``faststream_logger``), so every line goes through the JSON formatter.
FASTSTREAM_LOGGERS: Final = ("faststream", "faststream.access", "faststream.access.kafka")


def faststream_logger(name: str = "faststream") -> logging.Logger:
    """One of FastStream's loggers, without handlers of its own: its records reach the root handler."""
    logger = logging.getLogger(name)
    for old in [h for h in logger.handlers if not getattr(h, "_aqsha", False)]:
        logger.removeHandler(old)
    logger.propagate = True
    logger.setLevel(logging.NOTSET)
    return logger


def configure_logging(service: str, level: str = "INFO", stream: TextIO | None = None) -> logging.Handler:
    """Send all logging to ``stream`` (default stdout) as masked JSON lines; idempotent.

    FastStream's loggers are taken over (``FASTSTREAM_LOGGERS``) and Python warnings are logged too,
    so nothing a service prints is anything but JSON.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_aqsha", False)]:
        root.removeHandler(old)
        old.close()
    handler = logging.StreamHandler(stream if stream is not None else sys.stdout)
    handler._aqsha = True  # type: ignore[attr-defined]
    handler.addFilter(MaskingFilter())
    handler.setFormatter(AqshaJsonFormatter(service))
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in FASTSTREAM_LOGGERS:
        faststream_logger(name)
    logging.captureWarnings(True)
    return handler


@contextmanager
def bind_correlation(cid: str | None = None) -> Iterator[str]:
    """Set the correlation id for the enclosed code (a new uuid4 if ``cid`` is None)."""
    value = cid if cid is not None else str(uuid.uuid4())
    token = correlation_id_var.set(value)
    try:
        yield value
    finally:
        correlation_id_var.reset(token)
