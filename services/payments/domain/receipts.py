"""Receipt numbers and the masking of the payer's name on receipts (domain §2 step 7, §6)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Final
from zoneinfo import ZoneInfo

# Business time is Asia/Almaty by name, never a fixed offset (domain brief, "Money is KZT").
ALMATY: Final = ZoneInfo("Asia/Almaty")
RECEIPT_PREFIX: Final = "AQ"
SEQUENCE_DIGITS: Final = 8


def business_date(moment: datetime) -> date:
    """The Asia/Almaty calendar date of an aware instant."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a receipt time must be timezone-aware")
    return moment.astimezone(ALMATY).date()


def receipt_number(sequence: int, when: date | datetime) -> str:
    """``AQ-YYYYMMDD-NNNNNNNN``: the Almaty business date and an 8-digit sequence.

    The store hands out ``sequence`` (1 … 99,999,999, unique per business date at least), so the
    number is deterministic for a payment and replays of its outcome repeat it. Digits only after
    the date, so it can be read out over the phone.
    """
    if isinstance(sequence, bool) or not isinstance(sequence, int):
        raise TypeError("sequence must be an int")
    if not 0 < sequence < 10**SEQUENCE_DIGITS:
        raise ValueError(f"sequence must be 1..{10**SEQUENCE_DIGITS - 1}, got {sequence}")
    day = business_date(when) if isinstance(when, datetime) else when
    return f"{RECEIPT_PREFIX}-{day:%Y%m%d}-{sequence:0{SEQUENCE_DIGITS}d}"


def mask_payer_name(full_name: str) -> str:
    """``"Aigerim Sultanova"`` → ``"Aigerim S."``: given name and the surname's initial.

    The name is read as "given surname [patronymic]"; a patronymic is dropped. A single word is
    shown as is (there is nothing to mask), an empty name stays empty.
    """
    parts = full_name.split()
    if not parts:
        return ""
    given = parts[0]
    if len(parts) == 1:
        return given
    return f"{given} {parts[1][0].upper()}."
