"""Audit log output for secrets and personal data that escaped masking.

``python -m shared.logaudit FILE... [--secret VALUE ...]`` scans log files (aqsha's JSON lines from
``shared.logging`` and any plain text lines) and exits 1 when it finds, in clear:

* a one-time code: a 4-6 digit value under a code-like key (``"code": "482913"``, ``otp=4821``,
  ``код: 4821``), or any value passed as a known secret (``--secret``, e.g. the codes a test issued);
* a Kazakh phone number: ``+7XXXXXXXXXX``, ``8XXXXXXXXXX`` or ``77XXXXXXXXX``, separators allowed;
* an IIN: exactly 12 consecutive digits;
* a card number: 16-19 digits (optionally grouped by single spaces or dashes) passing the Luhn check.

The detectors are written independently of ``shared.logging``'s masking regexes, so the audit is a
second opinion on the masker rather than the same rules run twice. The masked forms the masker
writes (``+7 *** *** ** 67``, ``************``, ``440043******5679``, ``"code": "***"``) pass.
UUIDs are blanked before scanning: their last group is twelve hex characters and sometimes all
digits, which is not an IIN. A finding never repeats the value in clear: its excerpt is redacted.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from shared.logging import luhn_valid

Kind = Literal["otp_code", "known_secret", "phone", "iin", "card_number"]

_UUID_RE: Final = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# A code-like key (not part of a longer identifier such as reason_code), an optional closing quote,
# a separator, an optional opening quote, then 4-6 digits standing alone.
_CODE_KEYS: Final = r"(?:otp_code|sms_code|pin_code|one_time_code|otp|code|pin|код|коды|kod)"
_OTP_RE: Final = re.compile(
    rf"""(?<![\w-])["']?{_CODE_KEYS}["']?\s*[:=]?\s*["']?(?P<v>\d{{4,6}})(?![\d*])""",
    re.IGNORECASE,
)
_SEP: Final = r"[ \t\-]?"
_PHONE_RE: Final = re.compile(
    r"(?<![\d+*])(?:\+\s?7|8|7(?=[\s\-(]*7))"
    rf"{_SEP}\(?{_SEP}\d{{3}}{_SEP}\)?{_SEP}\d{{3}}{_SEP}\d{{2}}{_SEP}\d{{2}}(?![\d*])"
)
_IIN_RE: Final = re.compile(r"(?<![\d*])\d{12}(?![\d*])")
_PAN_RE: Final = re.compile(r"(?<![\d*])\d(?:[ \-]?\d){15,18}(?![\d*])")


@dataclass(frozen=True, slots=True)
class Finding:
    """One unmasked secret: where it is and what kind; ``excerpt`` has the value redacted."""

    source: str
    line: int
    kind: Kind
    excerpt: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.kind}: {self.excerpt}"


def _excerpt(line: str, start: int, end: int, width: int = 40) -> str:
    left = line[max(0, start - width) : start]
    right = line[end : end + width]
    return f"{left}[REDACTED {end - start} chars]{right}".replace("\n", " ")


def scan_line(
    line: str, *, source: str = "<text>", line_no: int = 1, secrets: Iterable[str] = ()
) -> list[Finding]:
    """Every unmasked secret in one log line (JSON or plain)."""
    found: list[Finding] = []
    # Blank UUIDs (same length, so positions stay right) before the digit detectors run.
    text = _UUID_RE.sub(lambda m: "u" * len(m.group(0)), line)
    taken: list[tuple[int, int]] = []

    def add(kind: Kind, start: int, end: int) -> None:
        if any(start < e and s < end for s, e in taken):
            return  # one span is reported once, by the most specific detector
        taken.append((start, end))
        found.append(Finding(source, line_no, kind, _excerpt(line, start, end)))

    for secret in {s for s in secrets if s}:
        for m in re.finditer(rf"(?<!\d){re.escape(secret)}(?!\d)", text):
            add("known_secret", m.start(), m.end())
    for m in _OTP_RE.finditer(text):
        add("otp_code", m.start("v"), m.end("v"))
    for m in _PAN_RE.finditer(text):
        if luhn_valid(re.sub(r"\D", "", m.group(0))):
            add("card_number", m.start(), m.end())
    for m in _PHONE_RE.finditer(text):
        add("phone", m.start(), m.end())
    for m in _IIN_RE.finditer(text):
        add("iin", m.start(), m.end())
    return found


def scan_lines(lines: Iterable[str], *, source: str = "<text>", secrets: Iterable[str] = ()) -> list[Finding]:
    """Every unmasked secret in ``lines`` (line numbers from 1)."""
    known = tuple(secrets)
    out: list[Finding] = []
    for no, line in enumerate(lines, start=1):
        out += scan_line(line, source=source, line_no=no, secrets=known)
    return out


def scan_text(text: str, *, source: str = "<text>", secrets: Iterable[str] = ()) -> list[Finding]:
    """Every unmasked secret in a block of log text."""
    return scan_lines(text.splitlines(), source=source, secrets=secrets)


def scan_file(path: str | Path, *, secrets: Iterable[str] = ()) -> list[Finding]:
    """Every unmasked secret in a log file (read as UTF-8, undecodable bytes replaced)."""
    p = Path(path)
    return scan_text(p.read_text(encoding="utf-8", errors="replace"), source=str(p), secrets=secrets)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: print findings, exit 1 when there are any, 2 on a usage or read error."""
    parser = argparse.ArgumentParser(
        prog="python -m shared.logaudit",
        description="Find unmasked one-time codes, phones, IINs and card numbers in log files.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="log file(s); - reads stdin")
    parser.add_argument(
        "--secret", action="append", default=[], metavar="VALUE", help="a known secret value to look for"
    )
    args = parser.parse_args(argv)
    findings: list[Finding] = []
    for name in args.files:
        try:
            if name == "-":
                findings += scan_text(sys.stdin.read(), source="<stdin>", secrets=args.secret)
            else:
                findings += scan_file(name, secrets=args.secret)
        except OSError as exc:
            print(f"logaudit: {name}: {exc.strerror}", file=sys.stderr)
            return 2
    for finding in findings:
        print(finding)
    if findings:
        print(f"logaudit: {len(findings)} finding(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
