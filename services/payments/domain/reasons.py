"""Reason codes: every rejection and failure of a payment carries one (domain §2.8)."""

from __future__ import annotations

from enum import StrEnum


class ReasonCode(StrEnum):
    """Why a payment request was rejected or a payment failed; the value is the wire code.

    Where ``shared.contracts.common.ReasonCode`` has the same meaning, the value is the same, so
    the handler maps by value. Codes marked "local" have no contract twin yet.
    """

    # -- validation (PaymentRejected) ------------------------------------------------------------
    INVALID_AMOUNT = "INVALID_AMOUNT"
    CHANNEL_NOT_ALLOWED = "CHANNEL_NOT_ALLOWED"
    FUNDING_NOT_ALLOWED = "FUNDING_NOT_ALLOWED"
    ACCOUNT_NOT_ALLOWED = "ACCOUNT_NOT_ALLOWED"  # local
    BONUS_NOT_ALLOWED = "BONUS_NOT_ALLOWED"  # local
    BONUS_PART_INVALID = "BONUS_PART_INVALID"  # local
    CASHIER_NOT_ALLOWED_FOR_RED = "CASHIER_NOT_ALLOWED_FOR_RED"
    BONUS_NOT_ALLOWED_FOR_RED = "BONUS_NOT_ALLOWED_FOR_RED"
    SAME_ACCOUNT_TRANSFER = "SAME_ACCOUNT_TRANSFER"
    UNKNOWN_CATEGORY = "UNKNOWN_CATEGORY"  # local
    UNKNOWN_PROVIDER = "UNKNOWN_PROVIDER"
    UNKNOWN_PROVIDER_ACCOUNT = "UNKNOWN_PROVIDER_ACCOUNT"
    UNKNOWN_CUSTOMER = "UNKNOWN_CUSTOMER"
    UNKNOWN_RECIPIENT = "UNKNOWN_RECIPIENT"  # local
    UNKNOWN_TARIFF_PROFILE = "UNKNOWN_TARIFF_PROFILE"  # local
    IDENTITY_MISMATCH = "IDENTITY_MISMATCH"  # seed 000: the IIN must match the registered one
    # -- failures (PaymentFailed), domain §2.8 ----------------------------------------------------
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    ISSUER_RESTRICTION = "ISSUER_RESTRICTION"
    ISSUER_UNAVAILABLE = "ISSUER_UNAVAILABLE"
    WRONG_CODE = "WRONG_CODE"
    CODE_EXPIRED = "CODE_EXPIRED"
    TOO_MANY_ATTEMPTS = "TOO_MANY_ATTEMPTS"
    PROVIDER_FAILED = "PROVIDER_FAILED"
    RED_DECLINED = "RED_DECLINED"
    RED_TIMEOUT = "RED_TIMEOUT"
    BONUS_DECLINED = "BONUS_DECLINED"
    BONUS_TIMEOUT = "BONUS_TIMEOUT"
