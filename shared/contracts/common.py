"""Enums and field types shared by several services' contracts.

Enum values are what travels on the wire. Values are never renamed or removed (that is a breaking
change the compatibility check reports); new members may be added.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final

from pydantic import Field
from pydantic.config import JsonDict

#: JSON-schema marker on fields that must never be shown in clear (phones, IINs, names, e-mails, one-time
#: codes, sealed or not): logs mask them, and ``aqsha tail``/``dlq show`` print them masked
#: (``shared.contracts.base.mask_sensitive``).
SENSITIVE: Final[JsonDict] = {"x-aqsha-sensitive": True}

Phone = Annotated[
    str,
    Field(
        pattern=r"^\+7\d{10}$",
        description="Registered phone number, E.164 Kazakhstan format: +7 and ten digits.",
        json_schema_extra=SENSITIVE,
    ),
]
Iin = Annotated[
    str,
    Field(
        pattern=r"^\d{12}$",
        description="Individual identification number (ИИН/ЖСН): twelve digits.",
        json_schema_extra=SENSITIVE,
    ),
]
OtpCode = Annotated[
    str,
    Field(
        pattern=r"^\d{4,6}$",
        description="One-time confirmation code: 4 to 6 digits. Never logged or stored in clear.",
        json_schema_extra=SENSITIVE,
    ),
]
SealedOtpCode = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9_-]{43,128}$",
        description="A one-time code sealed for notify (shared.otp_seal): unpadded base64url of a 12-byte "
        "nonce, the ChaCha20-Poly1305 ciphertext and its 16-byte tag.",
        json_schema_extra=SENSITIVE,
    ),
]
PercentStr = Annotated[
    str,
    Field(
        pattern=r"^(0|[1-9]\d*)(\.\d+)?$",
        description='A percentage as an exact decimal string, e.g. "1", "5", "12.5"; read it with Decimal.',
    ),
]
#: Free-text human message (already in the customer's language or English for operators).
Message = Annotated[str, Field(max_length=500, description="Human-readable explanation.")]


class Channel(StrEnum):
    """Where the customer initiated the operation."""

    APP = "APP"
    TERMINAL = "TERMINAL"
    ATM = "ATM"
    CASHIER = "CASHIER"


class AccountKind(StrEnum):
    """A customer's own money account in payments (domain brief §1)."""

    GOLD = "GOLD"
    WALLET = "WALLET"


class Funding(StrEnum):
    """Source of the money for a payment (domain brief §2 step 3, §4 payment channels)."""

    GOLD = "GOLD"
    WALLET = "WALLET"
    EXTERNAL_CARD = "EXTERNAL_CARD"
    RED = "RED"
    BONUS = "BONUS"
    #: Cash put into a Kaspi terminal or ATM (Red bill payments; no change is given).
    CASH = "CASH"


class Locale(StrEnum):
    """Language of customer-facing messages (domain brief §5)."""

    RU = "ru"
    KK = "kk"
    EN = "en"


class TariffProfile(StrEnum):
    """Which fee table applies to the customer (domain brief §2 "Fees"); kaspi charges nothing."""

    KASPI = "kaspi"
    HOMEBANK = "homebank"


class ServiceCategory(StrEnum):
    """Kind of service paid for; one per row of the homebank tariff table (domain brief §2)."""

    ELECTRICITY = "electricity"
    GAS = "gas"
    WATER = "water"
    HEATING = "heating"
    #: A combined utilities bill (e.g. Astana-ERC, whose fee differs: the provider decides).
    UTILITIES = "utilities"
    PHONE = "phone"
    INTERCOM = "intercom"
    MOBILE = "mobile"
    INTERNET = "internet"
    TV = "tv"
    SECURITY = "security"
    SUBSCRIPTION = "subscription"
    #: Oriflame/Avon-style catalogue orders.
    DIRECT_SELLING = "direct_selling"
    MEDIA_ADS = "media_ads"
    KINDERGARTEN = "kindergarten"
    EDUCATION = "education"
    FLIGHT = "flight"
    TRAVEL = "travel"
    RESTAURANT = "restaurant"
    MORTGAGE = "mortgage"
    LOAN = "loan"
    KSK = "ksk"
    RENT = "rent"
    FINE = "fine"
    TAX = "tax"
    DOMAIN = "domain"
    BROKERAGE = "brokerage"
    MUTUAL_FUND = "mutual_fund"
    OTHER = "other"


class Merchant(StrEnum):
    """Kaspi commerce channel of a purchase (domain brief §2, §3)."""

    KASPI_MAGAZIN = "KASPI_MAGAZIN"
    KASPI_QR = "KASPI_QR"
    KASPI_TRAVEL = "KASPI_TRAVEL"


class PaymentKind(StrEnum):
    """What a payment is."""

    SERVICE = "SERVICE"
    PURCHASE = "PURCHASE"
    TRANSFER = "TRANSFER"
    TOP_UP = "TOP_UP"
    RED_BILL = "RED_BILL"


class PaymentStatus(StrEnum):
    """Payment lifecycle (domain brief §2 step 6, interpretation)."""

    PENDING_CONFIRMATION = "PENDING_CONFIRMATION"
    PENDING_PROVIDER = "PENDING_PROVIDER"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    REFUNDED = "REFUNDED"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"


class ReasonCode(StrEnum):
    """Machine reason for a decline or failure; a declined operation is an event with one of these."""

    # -- request validation
    UNKNOWN_CUSTOMER = "UNKNOWN_CUSTOMER"
    INVALID_AMOUNT = "INVALID_AMOUNT"
    UNKNOWN_PROVIDER = "UNKNOWN_PROVIDER"
    UNKNOWN_PROVIDER_ACCOUNT = "UNKNOWN_PROVIDER_ACCOUNT"
    UNKNOWN_MERCHANT = "UNKNOWN_MERCHANT"
    CHANNEL_NOT_ALLOWED = "CHANNEL_NOT_ALLOWED"
    FUNDING_NOT_ALLOWED = "FUNDING_NOT_ALLOWED"
    IDENTITY_MISMATCH = "IDENTITY_MISMATCH"
    SAME_ACCOUNT_TRANSFER = "SAME_ACCOUNT_TRANSFER"
    IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"
    # -- funds and issuer (domain brief §2 step 8)
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    ISSUER_RESTRICTION = "ISSUER_RESTRICTION"
    ISSUER_UNAVAILABLE = "ISSUER_UNAVAILABLE"
    # -- confirmation
    WRONG_CODE = "WRONG_CODE"
    CODE_EXPIRED = "CODE_EXPIRED"
    TOO_MANY_ATTEMPTS = "TOO_MANY_ATTEMPTS"
    CANCELLED_BY_CUSTOMER = "CANCELLED_BY_CUSTOMER"
    # -- payment state
    UNKNOWN_PAYMENT = "UNKNOWN_PAYMENT"
    INVALID_PAYMENT_STATE = "INVALID_PAYMENT_STATE"
    REFUND_EXCEEDS_PAYMENT = "REFUND_EXCEEDS_PAYMENT"
    REFUND_NOT_ALLOWED = "REFUND_NOT_ALLOWED"
    PROVIDER_FAILED = "PROVIDER_FAILED"
    PROVIDER_TIMEOUT = "PROVIDER_TIMEOUT"
    # -- saga participants
    RED_DECLINED = "RED_DECLINED"
    RED_TIMEOUT = "RED_TIMEOUT"
    BONUS_DECLINED = "BONUS_DECLINED"
    BONUS_TIMEOUT = "BONUS_TIMEOUT"
    # -- Kaspi Red (domain brief §4)
    BONUS_NOT_ALLOWED_FOR_RED = "BONUS_NOT_ALLOWED_FOR_RED"
    CASHIER_NOT_ALLOWED_FOR_RED = "CASHIER_NOT_ALLOWED_FOR_RED"
    INSUFFICIENT_LIMIT = "INSUFFICIENT_LIMIT"
    NO_RED_ACCOUNT = "NO_RED_ACCOUNT"
    RED_ACCOUNT_CLOSED = "RED_ACCOUNT_CLOSED"
    NOTHING_TO_REPAY = "NOTHING_TO_REPAY"
    # -- bonus (domain brief §3)
    BONUS_CATEGORY_NOT_ELIGIBLE = "BONUS_CATEGORY_NOT_ELIGIBLE"
    BONUS_BALANCE_INSUFFICIENT = "BONUS_BALANCE_INSUFFICIENT"
    BONUS_EXCEEDS_REDEMPTION_SHARE = "BONUS_EXCEEDS_REDEMPTION_SHARE"
    # -- notifications
    NO_CONTACT = "NO_CONTACT"
    DELIVERY_FAILED = "DELIVERY_FAILED"
    # -- catch-all
    INTERNAL_ERROR = "INTERNAL_ERROR"
