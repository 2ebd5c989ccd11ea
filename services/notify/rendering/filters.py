"""Jinja2 filters for customer messages.

Locale-aware filters read the message locale from the template context (the renderer always puts a
normalised ``locale`` there), so templates write ``{{ due_at|almaty_dt }}``, not
``{{ due_at|almaty_dt(locale) }}``.

| filter | input | output (ru / kk / en) |
|---|---|---|
| ``money`` | int tiyn (``Money``, ``{"tiyn": int}``) | ``15 000 ₸``, ``15 000,50 ₸`` (no-break spaces) |
| ``bonus`` | int tiyn of bonus (1 bonus = 1 ₸) | ``200 бонусов`` / ``200 бонус`` / ``200 bonuses`` |
| ``almaty_dt`` | aware datetime, ISO string | ``20.03.2026 20:00`` / same / ``20 Mar 2026, 20:00`` |
| ``almaty_date`` | aware datetime, ISO string, ``date`` | ``20.03.2026`` / same / ``20 Mar 2026`` |
| ``almaty_time`` | aware datetime, ISO string | ``20:00`` |
| ``reason`` | failure code | customer words, generic text for unknown codes |
| ``funding``, ``channel_name``, ``status_name``, ``allocation_kind`` | code | words from ``vocabulary`` |
| ``kk_case(case)`` | number or time | Kazakh case ending: ``"14:37"|kk_case("dat")`` → ``14:37-ге`` |
| ``allocation_parts`` | a Red repayment's allocation | its destinations: ``[{kind, amount, reference}]`` |
| ``prepayment_used`` | a Red repayment's allocation | the earlier prepayment it released, tiyn (0 in v1) |
| ``payee`` | a name, code or ``{provider, merchant, partner_id, name}`` | its name (``names``), no code |
| ``sender_name`` | a name or nothing | its first word, else ``SOMEONE`` ("a Kaspi customer") |
| ``bill_lines`` | a bill's lines | ``[{shop, purchased_on, part_no, parts_total, amount}]``, names, no ids |

Naive datetimes are refused: business time is Asia/Almaty by tz name, and a naive value would be
silently wrong by five hours.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from jinja2 import Undefined, pass_context
from jinja2.runtime import Context

from shared.money import Money

from . import vocabulary as vocab
from .names import default_names

ALMATY: Final = ZoneInfo("Asia/Almaty")
#: Parts of a Kaspi Red plan, for a bill line that does not say (billing's ``PLAN_PARTS``).
DEFAULT_PARTS_TOTAL: Final = 4


class FilterInputError(ValueError):
    """A template filter got a value of the wrong kind (a float amount, a naive datetime...)."""


def _require(value: Any) -> Any:
    """Make a missing context field fail with Jinja's own message ("'due_at' is undefined")."""
    if isinstance(value, Undefined):
        str(value)  # StrictUndefined raises UndefinedError naming the field
        raise FilterInputError("a required value is undefined")
    return value


# -- amounts ------------------------------------------------------------------------------------
def _tiyn(value: Any) -> int:
    value = _require(value)
    if isinstance(value, Money):
        return value.tiyn
    if isinstance(value, Mapping) and "tiyn" in value:
        value = value["tiyn"]
    if isinstance(value, bool) or not isinstance(value, int):
        raise FilterInputError(f"an amount must be an int of tiyn, got {type(value).__name__}: {value!r}")
    return value


def money(value: Any) -> str:
    """Integer tiyn → ``15 000 ₸`` (shared.money formatting, no-break spaces)."""
    return Money(_tiyn(value)).format()


def format_bonus(tiyn: int, locale: str) -> str:
    """Bonus amount (tiyn; 1 bonus = 1 ₸) with the locale's noun in the right grammatical number."""
    tiyn = _tiyn(tiyn)
    number = Money(tiyn).format(symbol=False)
    whole, frac = divmod(abs(tiyn), 100)
    loc = vocab.normalize_locale(locale)
    if loc == "kk":
        noun = "бонус"  # Kazakh nouns stay singular after a numeral
    elif loc == "en":
        noun = "bonus" if tiyn == 100 else "bonuses"
    elif frac:
        noun = "бонуса"  # fractions take the genitive singular: «150,50 бонуса»
    elif whole % 10 == 1 and whole % 100 != 11:
        noun = "бонус"
    elif 2 <= whole % 10 <= 4 and not 12 <= whole % 100 <= 14:
        noun = "бонуса"
    else:
        noun = "бонусов"
    return f"{number}\u00a0{noun}"


def percent(value: Any, locale: str) -> str:
    """``"12.5"`` → ``12,5%`` (ru, kk) or ``12.5%`` (en); ints and Decimals alike."""
    text = str(_require(value)).strip()
    if isinstance(value, bool) or not text.replace(".", "", 1).isdigit():
        raise FilterInputError(f"not a percent: {value!r}")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return (text if vocab.normalize_locale(locale) == "en" else text.replace(".", ",")) + "%"


def allocation_parts(allocation: Any) -> list[dict[str, Any]]:
    """A Red repayment's allocation as ordered ``{kind, amount, reference}`` parts with money in them.

    Accepts the event's shape (``{bill_id, to_bill, to_purchases: [{purchase_id, amount}], carried,
    refunded_to_gold}``) or an already flat list of ``{kind, amount, reference|bill_id|purchase_id}``.
    Kinds: CURRENT_BILL, EARLY_REPAYMENT, CARRIED, OVERPAYMENT (domain brief §4 allocation order).
    """
    allocation = _require(allocation)
    parts: list[dict[str, Any]] = []

    def add(kind: str, amount: Any, reference: Any = None) -> None:
        if _tiyn(amount):
            parts.append(
                {"kind": kind, "amount": amount, "reference": None if reference is None else str(reference)}
            )

    if isinstance(allocation, Mapping):
        add("CURRENT_BILL", allocation.get("to_bill", 0), allocation.get("bill_id"))
        for purchase in allocation.get("to_purchases") or ():
            add("EARLY_REPAYMENT", purchase["amount"], purchase.get("purchase_id"))
        add("CARRIED", allocation.get("carried", 0))
        add("OVERPAYMENT", allocation.get("refunded_to_gold", 0))
        return parts
    for line in allocation:
        if not isinstance(line, Mapping):
            raise FilterInputError(f"allocation lines are mappings, got {type(line).__name__}")
        if str(line["kind"]) == PREPAYMENT_USED:
            continue  # a source of the money, not a destination: see ``prepayment_used``
        reference = line.get("reference") or line.get("purchase_id") or line.get("bill_id")
        add(str(line["kind"]), line["amount"], reference)
    return parts


#: The allocation kind of an earlier carried prepayment that a repayment released (RepaymentApplied
#: v2 ``prepayment_used``): money that joined the payment, not a destination of it.
PREPAYMENT_USED: Final = "PREPAYMENT_USED"


def prepayment_used(allocation: Any) -> int:
    """The earlier prepayment a Red repayment released, in tiyn (0 for a v1 allocation).

    The destinations of a v2 allocation sum to the payment plus this amount (docs/billing.md §5).
    Accepts the event's mapping or a flat list with a ``PREPAYMENT_USED`` line.
    """
    allocation = _require(allocation)
    if isinstance(allocation, Mapping):
        value = allocation.get("prepayment_used", 0) or 0
    else:
        value = sum(
            _tiyn(line["amount"])
            for line in allocation
            if isinstance(line, Mapping) and str(line.get("kind")) == PREPAYMENT_USED
        )
    return _tiyn(value)


# -- dates --------------------------------------------------------------------------------------
def to_almaty(value: Any) -> datetime:
    """An aware datetime (or ISO-8601 string with an offset) converted to Asia/Almaty."""
    value = _require(value)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise FilterInputError(f"not an ISO-8601 datetime: {value!r}") from exc
    if not isinstance(value, datetime):
        raise FilterInputError(f"expected a datetime, got {type(value).__name__}: {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise FilterInputError(f"naive datetime {value.isoformat()} has no time zone")
    return value.astimezone(ALMATY)


def format_date(value: Any, locale: str) -> str:
    """``20.03.2026`` (ru, kk) or ``20 Mar 2026`` (en); a datetime is first moved to Asia/Almaty."""
    value = _require(value)
    day = value if isinstance(value, date) and not isinstance(value, datetime) else to_almaty(value).date()
    if vocab.normalize_locale(locale) == "en":
        return f"{day.day} {vocab.MONTHS_EN_SHORT[day.month - 1]} {day.year}"
    return f"{day.day:02d}.{day.month:02d}.{day.year}"


def format_time(value: Any) -> str:
    """``20:00`` in Asia/Almaty."""
    return to_almaty(value).strftime("%H:%M")


def format_datetime(value: Any, locale: str) -> str:
    """``20.03.2026 20:00`` (ru, kk) or ``20 Mar 2026, 20:00`` (en), in Asia/Almaty."""
    local = to_almaty(value)
    sep = ", " if vocab.normalize_locale(locale) == "en" else " "
    return f"{format_date(local, locale)}{sep}{format_time(local)}"


# -- Kazakh case endings on numerals ------------------------------------------------------------
# Kazakh attaches case endings to a number written in digits with a hyphen ("14:37-ге дейін"), and
# the ending follows the last numeral word as read aloud (vowel harmony and the final sound).
# Times follow usage in official texts: "09:00-ден 18:00-ге дейін" (":00" is read "нөл").
# Each word: (front vowels?, final sound class) with class "v" vowel/sonorant р л й у,
# "n" nasal м н ң, "z" voiced з ж, "k" voiceless.
_KK_UNITS: Final = {
    0: (True, "v"),  # нөл
    1: (True, "v"),  # бір
    2: (True, "v"),  # екі
    3: (True, "k"),  # үш
    4: (True, "k"),  # төрт
    5: (True, "k"),  # бес
    6: (False, "v"),  # алты
    7: (True, "v"),  # жеті
    8: (True, "z"),  # сегіз
    9: (False, "z"),  # тоғыз
}
_KK_TENS: Final = {
    1: (False, "n"),  # он
    2: (False, "v"),  # жиырма
    3: (False, "z"),  # отыз
    4: (False, "k"),  # қырық
    5: (True, "v"),  # елу
    6: (False, "k"),  # алпыс
    7: (True, "k"),  # жетпіс
    8: (True, "n"),  # сексен
    9: (False, "n"),  # тоқсан
}
# case → final sound class → (back, front) ending
_KK_ENDINGS: Final[Mapping[str, Mapping[str, tuple[str, str]]]] = {
    "dat": {"v": ("ға", "ге"), "n": ("ға", "ге"), "z": ("ға", "ге"), "k": ("қа", "ке")},
    "loc": {"v": ("да", "де"), "n": ("да", "де"), "z": ("да", "де"), "k": ("та", "те")},
    "abl": {"v": ("дан", "ден"), "n": ("нан", "нен"), "z": ("дан", "ден"), "k": ("тан", "тен")},
}


def _kk_last_word(n: int) -> tuple[bool, str]:
    """(front vowels?, final sound) of the last numeral word of ``n`` read aloud."""
    if n == 0:
        return _KK_UNITS[0]
    if n % 10:
        return _KK_UNITS[n % 10]
    if n % 100:
        return _KK_TENS[(n % 100) // 10]
    if n % 1000:
        return (True, "z")  # жүз
    return (False, "n")  # мың, миллион


def kk_case(value: Any, case: str) -> str:
    """Attach a Kazakh case ending to a number or time: ``"14:37"``, ``"dat"`` → ``"14:37-ге"``.

    ``case`` is ``dat`` (to/until: -ға/-ге/-қа/-ке), ``loc`` (at: -да/-де/-та/-те) or ``abl``
    (from/after: -дан/-ден/-нан/-нен/-тан/-тен).
    """
    endings = _KK_ENDINGS.get(case)
    if endings is None:
        raise FilterInputError(f"unknown Kazakh case {case!r}; use one of {sorted(_KK_ENDINGS)}")
    text = str(value)
    digits = text.replace("\u00a0", "").replace(" ", "").rsplit(":", 1)[-1]
    if not digits.isdigit():
        raise FilterInputError(f"kk_case needs a number or a time, got {value!r}")
    front, sound = _kk_last_word(int(digits))
    back_ending, front_ending = endings[sound]
    return f"{text}-{front_ending if front else back_ending}"


# -- names instead of codes ---------------------------------------------------------------------
def _as_date(value: Any) -> date | None:
    if value is None or isinstance(value, Undefined):
        return None
    if isinstance(value, datetime):
        return to_almaty(value).date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise FilterInputError(f"not an ISO date: {value!r}") from exc


def bill_lines(lines: Any, locale: str) -> list[dict[str, Any]]:
    """A bill's lines as a customer reads them: ``{shop, purchased_on, part_no, parts_total, amount}``.

    ``shop`` is the partner's or merchant's name in ``locale`` (None when the line names neither or an
    unknown one), ``purchased_on`` a ``date`` or None, ``parts_total`` 4 when the line does not say.
    The purchase's id is deliberately left out: no customer knows a purchase by its UUID.
    """
    names = default_names()
    out: list[dict[str, Any]] = []
    for line in _require(lines):
        if not isinstance(line, Mapping):
            raise FilterInputError(f"bill lines are mappings, got {type(line).__name__}")
        out.append(
            {
                "shop": names.merchant(line.get("merchant"), line.get("partner_id"), locale),
                "purchased_on": _as_date(line.get("purchased_on")),
                "part_no": line["part_no"],
                "parts_total": line.get("parts_total") or DEFAULT_PARTS_TOTAL,
                "amount": line["amount"],
            }
        )
    return out


# -- context-aware wrappers ---------------------------------------------------------------------
def _locale(ctx: Context) -> str:
    return vocab.normalize_locale(ctx.get("locale"))


@pass_context
def almaty_dt(ctx: Context, value: Any) -> str:
    return format_datetime(value, _locale(ctx))


@pass_context
def almaty_date(ctx: Context, value: Any) -> str:
    return format_date(value, _locale(ctx))


def almaty_time(value: Any) -> str:
    return format_time(value)


@pass_context
def bonus(ctx: Context, value: Any) -> str:
    return format_bonus(value, _locale(ctx))


@pass_context
def percent_filter(ctx: Context, value: Any) -> str:
    return percent(value, _locale(ctx))


@pass_context
def payee(ctx: Context, value: Any) -> str:
    """Whom a payment went to, in the message's locale (``names.DisplayNames.payee``), never a code."""
    value = _require(value)
    return default_names().payee(value if isinstance(value, Mapping) else str(value), _locale(ctx))


@pass_context
def sender_name(ctx: Context, name: Any) -> str:
    """The sender of a transfer as its recipient reads it: the first name given, else "a Kaspi customer"."""
    text = "" if name is None or isinstance(name, Undefined) else str(name).strip()
    return text.split()[0] if text else vocab.SOMEONE[_locale(ctx)]


@pass_context
def bill_lines_filter(ctx: Context, lines: Any) -> list[dict[str, Any]]:
    return bill_lines(lines, _locale(ctx))


@pass_context
def reason(ctx: Context, code: Any) -> str:
    return vocab.reason_text(None if code is None else str(code), _locale(ctx))


def _label_filter(table: Mapping[str, Mapping[str, str]]) -> Callable[[Context, Any], str]:
    @pass_context
    def apply(ctx: Context, code: Any) -> str:
        return vocab.label(table, None if code is None else str(code), _locale(ctx))

    return apply


FILTERS: Final[Mapping[str, Callable[..., Any]]] = {
    "money": money,
    "bonus": bonus,
    "almaty_dt": almaty_dt,
    "almaty_date": almaty_date,
    "almaty_time": almaty_time,
    "reason": reason,
    "funding": _label_filter(vocab.FUNDING),
    "channel_name": _label_filter(vocab.CHANNELS),
    "status_name": _label_filter(vocab.STATUSES),
    "allocation_kind": _label_filter(vocab.ALLOCATION_KINDS),
    "kk_case": kk_case,
    "percent": percent_filter,
    "allocation_parts": allocation_parts,
    "prepayment_used": prepayment_used,
    "payee": payee,
    "bill_lines": bill_lines_filter,
    "sender_name": sender_name,
}
