"""Customer-facing words for machine codes, per locale (ru, kk, en).

Everything a template or a receipt says about a *code* (a failure reason, a funding source, a
channel, a status, an allocation kind) comes from here, so that the wording is reviewed in one place
and the PDF receipt and the messages never disagree.

Reason texts are lower-case clauses that complete "The payment didn't go through: …".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

LOCALES: Final[tuple[str, ...]] = ("ru", "kk", "en")
DEFAULT_LOCALE: Final = "ru"

# Common ways a locale arrives that are not exactly our codes ("kz" is a frequent mistake for kk).
_LOCALE_ALIASES: Final[Mapping[str, str]] = {"kz": "kk", "kaz": "kk", "rus": "ru", "eng": "en"}


def normalize_locale(locale: str | None) -> str:
    """``"kk-KZ"``, ``"KK"``, ``"kz"`` → ``"kk"``; anything unknown or empty → ``"ru"`` (the default)."""
    if not locale:
        return DEFAULT_LOCALE
    primary = locale.strip().replace("_", "-").split("-", 1)[0].lower()
    primary = _LOCALE_ALIASES.get(primary, primary)
    return primary if primary in LOCALES else DEFAULT_LOCALE


# -- failure reasons ----------------------------------------------------------------------------
REASONS: Final[Mapping[str, Mapping[str, str]]] = {
    "INSUFFICIENT_FUNDS": {
        "ru": "на счёте недостаточно денег",
        "kk": "шотта ақша жеткіліксіз",
        "en": "there isn't enough money in your account",
    },
    "WRONG_CODE": {
        "ru": "введён неверный код из SMS",
        "kk": "SMS-тегі код қате енгізілді",
        "en": "the SMS code was wrong",
    },
    "CODE_EXPIRED": {
        "ru": "истёк срок действия кода из SMS",
        "kk": "SMS-тегі кодтың әрекет ету мерзімі өтіп кетті",
        "en": "the SMS code expired",
    },
    "TOO_MANY_ATTEMPTS": {
        "ru": "код из SMS слишком много раз введён неверно",
        "kk": "SMS-тегі код тым көп рет қате енгізілді",
        "en": "the SMS code was entered incorrectly too many times",
    },
    "PROVIDER_FAILED": {
        "ru": "у получателя платежа технические неполадки",
        "kk": "төлем алушы тарапында техникалық ақау бар",
        "en": "the recipient is having technical problems",
    },
    "PROVIDER_TIMEOUT": {
        "ru": "получатель платежа вовремя не ответил",
        "kk": "төлем алушы уақытында жауап бермеді",
        "en": "the recipient didn't respond in time",
    },
    "UNKNOWN_PROVIDER_ACCOUNT": {
        "ru": "получатель не нашёл такой лицевой счёт, проверьте номер",
        "kk": "төлем алушы мұндай дербес шотты таппады, нөмірін тексеріңіз",
        "en": "the recipient couldn't find that account number, please check it",
    },
    "ISSUER_RESTRICTION": {
        "ru": "банк, выпустивший карту, ограничил эту операцию (например, не подключён 3-D Secure)",
        "kk": "картаны шығарған банк бұл операцияға шектеу қойды (мысалы, 3-D Secure қосылмаған)",
        "en": "the bank that issued your card restricted this operation "
        "(for example, 3-D Secure isn't set up)",
    },
    "ISSUER_UNAVAILABLE": {
        "ru": "банк, выпустивший карту, сейчас недоступен",
        "kk": "картаны шығарған банк қазір қолжетімсіз",
        "en": "the bank that issued your card isn't available right now",
    },
    "CANCELLED_BY_CUSTOMER": {
        "ru": "вы отменили платёж",
        "kk": "төлемнен өзіңіз бас тарттыңыз",
        "en": "you cancelled the payment",
    },
    "RED_DECLINED": {
        "ru": "оплата через Kaspi Red сейчас недоступна",
        "kk": "Kaspi Red арқылы төлеу қазір мүмкін емес",
        "en": "paying with Kaspi Red isn't available right now",
    },
    "INSUFFICIENT_LIMIT": {
        "ru": "не хватает доступного лимита Kaspi Red",
        "kk": "Kaspi Red бойынша қолжетімді лимит жеткіліксіз",
        "en": "your available Kaspi Red limit is too low",
    },
    "BONUS_DECLINED": {
        "ru": "эту покупку нельзя оплатить бонусами",
        "kk": "бұл сатып алуды бонуспен төлеуге болмайды",
        "en": "bonuses can't be used for this payment",
    },
    "BONUS_BALANCE_INSUFFICIENT": {
        "ru": "недостаточно бонусов",
        "kk": "бонус жеткіліксіз",
        "en": "you don't have enough bonuses",
    },
    "FUNDING_NOT_ALLOWED": {
        "ru": "этим способом здесь оплатить нельзя",
        "kk": "мұнда бұл тәсілмен төлеуге болмайды",
        "en": "this payment method can't be used here",
    },
    # The contract's code (shared.contracts.common.ReasonCode; seed 000: the IIN must match).
    "IDENTITY_MISMATCH": {
        "ru": "ИИН не совпадает с вашими данными в банке",
        "kk": "ЖСН банктегі деректеріңізге сәйкес келмейді",
        "en": "the IIN doesn't match the details you registered with the bank",
    },
    "INVALID_AMOUNT": {
        "ru": "сумма меньше или больше допустимой",
        "kk": "сома рұқсат етілген шектен тыс",
        "en": "the amount is outside the allowed range",
    },
}

REASON_FALLBACK: Final[Mapping[str, str]] = {
    "ru": "произошла техническая ошибка",
    "kk": "техникалық қате орын алды",
    "en": "a technical error occurred",
}


def reason_text(code: str | None, locale: str) -> str:
    """The customer-facing words for a failure ``code``; a generic text for an unknown code."""
    loc = normalize_locale(locale)
    words = REASONS.get((code or "").strip().upper())
    return words[loc] if words is not None else REASON_FALLBACK[loc]


# -- funding sources and accounts -----------------------------------------------------------------
FUNDING: Final[Mapping[str, Mapping[str, str]]] = {
    "GOLD": {"ru": "Kaspi Gold", "kk": "Kaspi Gold", "en": "Kaspi Gold"},
    "WALLET": {"ru": "Kaspi Wallet", "kk": "Kaspi Wallet", "en": "Kaspi Wallet"},
    "BONUS": {"ru": "Kaspi Бонус", "kk": "Kaspi Бонус", "en": "Kaspi Bonus"},
    "RED": {"ru": "Kaspi Red", "kk": "Kaspi Red", "en": "Kaspi Red"},
    "CARD": {"ru": "Банковская карта", "kk": "Банк картасы", "en": "Bank card"},
    "EXTERNAL_CARD": {
        "ru": "Карта другого банка",
        "kk": "Басқа банктің картасы",
        "en": "Another bank's card",
    },
    "CASH": {"ru": "Наличные", "kk": "Қолма-қол ақша", "en": "Cash"},
}

# -- channels a payment or repayment came through -----------------------------------------------
CHANNELS: Final[Mapping[str, Mapping[str, str]]] = {
    "APP": {"ru": "Мобильное приложение", "kk": "Мобильді қосымша", "en": "Mobile app"},
    "WEB": {"ru": "Интернет-банкинг", "kk": "Интернет-банкинг", "en": "Online banking"},
    "TERMINAL": {"ru": "Терминал Kaspi", "kk": "Kaspi терминалы", "en": "Kaspi terminal"},
    "ATM": {"ru": "Банкомат Kaspi", "kk": "Kaspi банкоматы", "en": "Kaspi ATM"},
    "CASHIER": {"ru": "Касса банка", "kk": "Банк кассасы", "en": "Bank cashier"},
}

# -- payment statuses ---------------------------------------------------------------------------
STATUSES: Final[Mapping[str, Mapping[str, str]]] = {
    "COMPLETED": {"ru": "Исполнен", "kk": "Орындалды", "en": "Completed"},
    "PENDING_CONFIRMATION": {
        "ru": "Ожидает подтверждения",
        "kk": "Растауды күтуде",
        "en": "Awaiting confirmation",
    },
    "PENDING_PROVIDER": {"ru": "В обработке у получателя", "kk": "Алушыда өңделуде", "en": "Being processed"},
    "FAILED": {"ru": "Не исполнен", "kk": "Орындалмады", "en": "Failed"},
}

# -- how a Kaspi Red repayment was allocated (domain §4) ----------------------------------------
ALLOCATION_KINDS: Final[Mapping[str, Mapping[str, str]]] = {
    "CURRENT_BILL": {"ru": "Погашение текущего счёта", "kk": "Ағымдағы шотты өтеу", "en": "Current bill"},
    "EARLY_REPAYMENT": {
        "ru": "Досрочное погашение покупки",
        "kk": "Сатып алуды мерзімінен бұрын өтеу",
        "en": "Early repayment of a purchase",
    },
    "CARRIED": {
        "ru": "В счёт следующего платежа",
        "kk": "Келесі төлем есебіне",
        "en": "Towards the next bill",
    },
    "OVERPAYMENT": {
        "ru": "Возврат переплаты на Kaspi Gold",
        "kk": "Артық төлемді Kaspi Gold-қа қайтару",
        "en": "Overpayment returned to Kaspi Gold",
    },
    # Not a destination: an earlier carried prepayment that joined the payment (RepaymentApplied v2).
    "PREPAYMENT_USED": {
        "ru": "Добавлена предоплата прошлых платежей",
        "kk": "Бұрынғы төлемдерден қалған алдын ала төлем қосылды",
        "en": "Earlier prepayment added",
    },
}


# -- who sent a transfer, when notify does not know their name ----------------------------------
#: The recipient of a transfer is told the sender's first name only; without one, this (never a phone).
SOMEONE: Final[Mapping[str, str]] = {"ru": "клиент Kaspi", "kk": "Kaspi клиенті", "en": "a Kaspi customer"}


def label(table: Mapping[str, Mapping[str, str]], code: str | None, locale: str) -> str:
    """The locale's word for ``code`` in ``table``; the code itself when it has none (never blank)."""
    key = (code or "").strip().upper()
    words = table.get(key)
    return words[normalize_locale(locale)] if words is not None else (code or "—")


# -- dates --------------------------------------------------------------------------------------
MONTHS_EN_SHORT: Final[tuple[str, ...]] = (
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
)  # fmt: skip
