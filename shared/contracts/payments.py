"""Payments contracts: customer commands, payment outcomes and the saga requests to billing/bonus.

Commands arrive on ``aqsha.payments.commands``; every one carries the client-made ``request_id``
(the idempotency key: the same request replays the same outcome) and the ``customer_id`` (the
Kafka key). Events go to ``aqsha.payments.events``, except ``OtpRequested``, which only ever goes to
the short-retention ``aqsha.payments.otp`` topic.
"""

from __future__ import annotations

from typing import ClassVar, Literal, Self
from uuid import UUID

from pydantic import AwareDatetime, Field, field_validator, model_validator

from shared.contracts.base import Command, Event, Value
from shared.contracts.common import (
    SENSITIVE,
    AccountKind,
    Channel,
    Funding,
    Iin,
    Merchant,
    Message,
    OtpCode,
    PaymentKind,
    PaymentStatus,
    Phone,
    ReasonCode,
    SealedOtpCode,
    ServiceCategory,
)
from shared.money import PositiveTiyn, Tiyn

_REQUEST_ID = "Client-made idempotency key of the command; reused on every retry of the same request."
_CUSTOMER_ID = "The customer; the Kafka key."
_PAYMENT_ID = "Id of the payment, assigned by payments when it accepts the request."


# The model validator's rule is a plain function, so that mutation testing (make mutation,
# docs/testing.md) reaches it: mutmut leaves decorated functions alone.
def _require_refund_totals(amount: int, total_refunded: int, original_amount: int) -> None:
    if not amount <= total_refunded <= original_amount:
        raise ValueError("need amount <= total_refunded <= original_amount")


def _refuse_card_number(token: str | None) -> str | None:
    """A card token must not carry a card number: 12 or more digits in it are refused."""
    if token is not None and sum(ch.isdigit() for ch in token) >= 12:
        raise ValueError("card_token looks like a card number; send the app's token, never the number")
    return token


class PaymentCommand(Command):
    """Fields every customer-initiated payments command carries."""

    ABSTRACT: ClassVar[bool] = True

    request_id: UUID = Field(description=_REQUEST_ID)
    customer_id: UUID = Field(description=_CUSTOMER_ID)
    channel: Channel = Field(default=Channel.APP, description="Where the customer initiated the request.")


# ---------------------------------------------------------------------------------------- commands


class TopUp(PaymentCommand):
    """Top up the customer's own account (cash at a terminal for the wallet, domain brief §1)."""

    account: AccountKind = Field(description="Account to credit.")
    amount: PositiveTiyn = Field(description="Amount to credit, in tiyn.")


class PayService(PaymentCommand):
    """Pay a service provider (utilities, mobile, taxes, ...): domain brief §2."""

    category: ServiceCategory = Field(description="Kind of service; selects the fee row and bonus rules.")
    provider: str = Field(min_length=1, max_length=64, description='Provider code, e.g. "almaty-energo".')
    provider_account: str = Field(
        min_length=1, max_length=64, description="The customer's personal account number at the provider."
    )
    amount: PositiveTiyn = Field(description="Amount to pay the provider, in tiyn, before any fee.")
    funding: Funding = Field(default=Funding.GOLD, description="Source of the money.")
    iin: Iin | None = Field(
        default=None,
        description="The payer's IIN as entered, for the services that require it (taxes, fines: "
        "services/payments/identity.toml); it must equal the registered IIN or the payment is declined "
        "with IDENTITY_MISMATCH. Never logged or stored.",
        json_schema_extra=SENSITIVE,
    )
    card_token: str | None = Field(
        default=None,
        pattern=r"^tok_[A-Za-z0-9_-]{4,60}$",
        description="EXTERNAL_CARD funding only: the app's token of the other bank's card (tok_…), never "
        "the card number (a value with 12 or more digits is refused). The card's issuer decides: "
        "restrictions, 3-D Secure, availability (seed 003; docs/payments.md, section Card payments).",
        json_schema_extra=SENSITIVE,
    )

    _no_card_number = field_validator("card_token", mode="after")(_refuse_card_number)


class Purchase(PaymentCommand):
    """Buy in Kaspi Magazin, at a Kaspi QR partner or on Kaspi Travel, with Gold or Red."""

    merchant: Merchant = Field(description="Commerce channel of the purchase.")
    partner_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Partner (shop) id for Kaspi QR and Travel; selects partner bonus promotions.",
    )
    order_id: str = Field(min_length=1, max_length=64, description="Order id at the merchant.")
    amount: PositiveTiyn = Field(description="Purchase price, in tiyn, including any bonus part.")
    funding: Literal[Funding.GOLD, Funding.RED] = Field(
        default=Funding.GOLD, description="GOLD (debit) or RED (split into four monthly parts)."
    )
    bonus_amount: Tiyn = Field(
        default=0,
        description="Part of the price paid with bonus (Kaspi Magazin only, at most 60 %), rest funded.",
    )


class Transfer(PaymentCommand):
    """Move money between the customer's own accounts or to another customer."""

    to_customer_id: UUID | None = Field(
        default=None, description="Recipient customer; null for a transfer between own accounts."
    )
    from_account: AccountKind = Field(default=AccountKind.GOLD, description="Account to debit.")
    to_account: AccountKind = Field(default=AccountKind.GOLD, description="Recipient's account to credit.")
    amount: PositiveTiyn = Field(description="Amount to transfer, in tiyn.")


class PayRedBill(PaymentCommand):
    """Repay Kaspi Red: Gold in the app, or cash at a terminal/ATM (domain brief §4 payment channels).

    ``use_bonus`` and ``channel=CASHIER`` are expressible on purpose: payments declines them with
    ``BONUS_NOT_ALLOWED_FOR_RED`` / ``CASHIER_NOT_ALLOWED_FOR_RED`` instead of dead-lettering.
    """

    amount: PositiveTiyn = Field(description="Amount to repay, in tiyn; cash is taken whole (no change).")
    funding: Literal[Funding.GOLD, Funding.CASH] = Field(
        default=Funding.GOLD, description="GOLD from the app, CASH at a Kaspi terminal or ATM."
    )
    use_bonus: bool = Field(
        default=False, description="Customer asked to pay with bonuses (always declined)."
    )


class ConfirmPayment(PaymentCommand):
    """Confirm a pending payment with the one-time code sent by SMS."""

    payment_id: UUID = Field(description=_PAYMENT_ID)
    code: OtpCode = Field(description="The one-time code the customer entered; never logged.")


class CancelPayment(PaymentCommand):
    """Cancel a payment still waiting for confirmation (after the fee disclosure), without penalty."""

    payment_id: UUID = Field(description=_PAYMENT_ID)


class Refund(PaymentCommand):
    """Refund all or part of a completed purchase or payment."""

    payment_id: UUID = Field(description="The payment to refund.")
    amount: PositiveTiyn = Field(description="Amount to refund, in tiyn.")
    reason: str = Field(
        min_length=1, max_length=200, description="Why the refund is made (merchant's words)."
    )


class LookupDebt(Command):
    """Check the debt before paying ("Checkskuld", seed 000): ask the provider what is owed on an account.

    Not a payment: it moves no money and changes no balance. payments answers with ``DebtLookedUp``
    or ``DebtLookupFailed`` on ``aqsha.payments.events``, carrying this ``request_id``. Written by the
    app gateway for a signed-in customer, or by ``ops`` (support) with the operator's key; it has no
    channel, so either may send it.
    """

    request_id: UUID = Field(description=_REQUEST_ID)
    customer_id: UUID = Field(description="The customer who asks; the Kafka key.")
    provider: str = Field(min_length=1, max_length=64, description='Provider code, e.g. "almaty-energo".')
    provider_account: str = Field(
        min_length=1, max_length=64, description="The personal account number at the provider."
    )


# ------------------------------------------------------------------------------------------ events


class PaymentRejected(Event):
    """A command was declined before any money moved (validation, funds, idempotency conflict)."""

    request_id: UUID = Field(description="request_id of the declined command.")
    customer_id: UUID = Field(description=_CUSTOMER_ID)
    command_type: str = Field(min_length=1, description='TYPE of the declined command, e.g. "PayService".')
    payment_id: UUID | None = Field(
        default=None, description="The payment concerned, for commands on an existing payment."
    )
    reason_code: ReasonCode = Field(description="Machine reason for the decline.")
    message: Message = Field(description="Human-readable explanation of the decline.")


class PaymentPending(Event):
    """A payment was accepted and waits: for the customer's code, or for the provider."""

    payment_id: UUID = Field(description=_PAYMENT_ID)
    request_id: UUID = Field(description="request_id of the command that created the payment.")
    customer_id: UUID = Field(description=_CUSTOMER_ID)
    kind: PaymentKind = Field(description="What is being paid.")
    status: Literal[PaymentStatus.PENDING_CONFIRMATION, PaymentStatus.PENDING_PROVIDER] = Field(
        description="What the payment waits for."
    )
    amount: PositiveTiyn = Field(description="Amount of the payment, in tiyn, before the fee.")
    fee: Tiyn = Field(description="Fee quote disclosed to the customer before the debit, in tiyn.")
    total: PositiveTiyn = Field(description="amount + fee, in tiyn: what will be debited.")
    confirmation_expires_at: AwareDatetime | None = Field(
        default=None, description="When the one-time code expires (PENDING_CONFIRMATION only)."
    )


class OtpRequestedV1(Event):
    """OBSOLETE (v1): a one-time code to send by SMS, carried in clear.

    Kept registered only so the contract's history stays checked. payments no longer emits it and
    notify refuses it (dead letter ``insecure_contract``): v2 carries the code sealed.
    """

    TYPE: ClassVar[str] = "OtpRequested"
    VERSION: ClassVar[int] = 1

    payment_id: UUID = Field(description=_PAYMENT_ID)
    customer_id: UUID = Field(description=_CUSTOMER_ID)
    phone: Phone = Field(description="The customer's registered phone: codes go nowhere else.")
    code: OtpCode = Field(description="The one-time code in clear (the reason v1 is refused).")
    expires_at: AwareDatetime = Field(description="When the code stops being accepted (5 minutes).")
    amount: PositiveTiyn = Field(description="Total to be debited, shown in the SMS, in tiyn.")


class OtpRequested(Event):
    """A one-time code must be sent by SMS; the code travels sealed for notify (v2).

    Published ONLY on ``aqsha.payments.otp`` (10-minute retention), consumed only by notify.
    ``sealed_code`` is the code encrypted with ChaCha20-Poly1305 under the transport key payments and
    notify share (``AQSHA_OTP_TRANSPORT_KEY``) and bound to this message's other fields
    (``shared.otp_seal``): the topic, its dead letters and ``aqsha tail`` never see the code.
    """

    VERSION: ClassVar[int] = 2

    payment_id: UUID = Field(description=_PAYMENT_ID)
    customer_id: UUID = Field(description=_CUSTOMER_ID)
    phone: Phone = Field(description="The customer's registered phone: codes go nowhere else.")
    sealed_code: SealedOtpCode = Field(
        description="The one-time code sealed for notify (shared.otp_seal), bound to payment_id, "
        "customer_id, phone, expires_at and amount; never logged, never stored."
    )
    expires_at: AwareDatetime = Field(description="When the code stops being accepted (5 minutes).")
    amount: PositiveTiyn = Field(description="Total to be debited, shown in the SMS, in tiyn.")


class Receipt(Value):
    """The electronic receipt of a completed payment (domain brief §2 step 7); same legal force as paper."""

    receipt_number: str = Field(
        min_length=1, max_length=32, description="Receipt number shown to the customer."
    )
    created_at: AwareDatetime = Field(description="When the payment was created.")
    completed_at: AwareDatetime = Field(description="When the payment completed.")
    payer_masked: str = Field(
        min_length=1, max_length=64, description='Payer as printed, masked, e.g. "+7 701 *** ** 67".'
    )
    payee: str = Field(min_length=1, max_length=200, description="Provider or merchant name as printed.")
    provider_account: str | None = Field(
        default=None, description="The customer's account at the provider, for service payments."
    )
    amount: PositiveTiyn = Field(description="Amount paid, in tiyn, before the fee.")
    fee: Tiyn = Field(description="Fee charged, in tiyn.")
    total: PositiveTiyn = Field(description="amount + fee, in tiyn.")
    funding: Funding = Field(description="Source of the money.")
    channel: Channel = Field(description="Where the payment was made.")
    status: PaymentStatus = Field(description="Status printed on the receipt (COMPLETED).")


class PaymentCompleted(Event):
    """A payment completed and the money moved; carries what bonus, billing and notify decide on."""

    payment_id: UUID = Field(description=_PAYMENT_ID)
    request_id: UUID = Field(description="request_id of the command that created the payment.")
    customer_id: UUID = Field(description=_CUSTOMER_ID)
    kind: PaymentKind = Field(description="What was paid.")
    completed_at: AwareDatetime = Field(
        description="Completion time; bonus picks the rule set in force then."
    )
    amount: PositiveTiyn = Field(description="Amount paid, in tiyn, before the fee.")
    fee: Tiyn = Field(description="Fee charged, in tiyn.")
    total: PositiveTiyn = Field(description="amount + fee, in tiyn.")
    funding: Funding = Field(description="Source of the money.")
    channel: Channel = Field(description="Where the payment was made.")
    category: ServiceCategory | None = Field(default=None, description="Service category (SERVICE payments).")
    provider: str | None = Field(default=None, description="Provider code (SERVICE payments).")
    merchant: Merchant | None = Field(default=None, description="Commerce channel (PURCHASE payments).")
    partner_id: str | None = Field(default=None, description="Partner id (Kaspi QR / Travel purchases).")
    bonus_amount: Tiyn = Field(default=0, description="Part of the price paid with bonus, in tiyn.")
    red_plan_id: UUID | None = Field(
        default=None, description="Billing's Red plan for a purchase funded with RED."
    )
    paid_at: AwareDatetime | None = Field(
        default=None,
        description="RED_BILL only: when the money was paid in; billing credits it the next day after 20:00.",
    )
    receipt: Receipt = Field(description="The electronic receipt.")


class PaymentFailed(Event):
    """An accepted payment failed; any debit taken for it has been returned."""

    payment_id: UUID = Field(description=_PAYMENT_ID)
    request_id: UUID = Field(description="request_id of the command that created the payment.")
    customer_id: UUID = Field(description=_CUSTOMER_ID)
    kind: PaymentKind = Field(description="What was being paid.")
    reason_code: ReasonCode = Field(description="Machine reason for the failure.")
    message: Message = Field(description="Human-readable explanation of the failure.")


class PaymentCancelled(Event):
    """The customer cancelled a pending payment; nothing was debited."""

    payment_id: UUID = Field(description=_PAYMENT_ID)
    request_id: UUID = Field(description="request_id of the CancelPayment command.")
    customer_id: UUID = Field(description=_CUSTOMER_ID)
    kind: PaymentKind = Field(description="What was being paid.")


class PaymentRefunded(Event):
    """Money of a completed payment was returned to the customer (possibly in part)."""

    payment_id: UUID = Field(description="The refunded payment.")
    refund_id: UUID = Field(description="Id of this refund (request_id of the Refund command).")
    customer_id: UUID = Field(description=_CUSTOMER_ID)
    kind: PaymentKind = Field(description="What the refunded payment was.")
    amount: PositiveTiyn = Field(description="Amount refunded now, in tiyn.")
    total_refunded: PositiveTiyn = Field(description="All refunds of this payment so far, in tiyn.")
    original_amount: PositiveTiyn = Field(description="Amount of the original payment, in tiyn.")
    funding: Funding = Field(description="Source of the original payment; the refund goes back there.")
    merchant: Merchant | None = Field(default=None, description="Commerce channel of a refunded purchase.")
    status: Literal[PaymentStatus.REFUNDED, PaymentStatus.PARTIALLY_REFUNDED] = Field(
        description="Payment status after the refund."
    )

    @model_validator(mode="after")
    def _totals(self) -> Self:
        _require_refund_totals(self.amount, self.total_refunded, self.original_amount)
        return self


class TopUpCompleted(Event):
    """Money was credited to the customer's own account."""

    payment_id: UUID = Field(description=_PAYMENT_ID)
    request_id: UUID = Field(description="request_id of the TopUp command.")
    customer_id: UUID = Field(description=_CUSTOMER_ID)
    account: AccountKind = Field(description="Account credited.")
    amount: PositiveTiyn = Field(description="Amount credited, in tiyn.")
    channel: Channel = Field(description="Where the money came in.")
    balance_after: Tiyn = Field(description="Balance of the account after the credit, in tiyn.")
    completed_at: AwareDatetime = Field(description="When the credit happened.")


class TransferCompleted(Event):
    """Money moved between accounts; keyed by the sender."""

    payment_id: UUID = Field(description=_PAYMENT_ID)
    request_id: UUID = Field(description="request_id of the Transfer command.")
    customer_id: UUID = Field(description="The sender; the Kafka key.")
    to_customer_id: UUID | None = Field(description="The recipient; null between own accounts.")
    from_account: AccountKind = Field(description="Account debited.")
    to_account: AccountKind = Field(description="Account credited.")
    amount: PositiveTiyn = Field(description="Amount the recipient got, in tiyn.")
    fee: Tiyn = Field(description="Fee charged to the sender, in tiyn.")
    total: PositiveTiyn = Field(description="amount + fee, in tiyn, debited from the sender.")
    completed_at: AwareDatetime = Field(description="When the transfer completed.")


class DebtLookedUp(Event):
    """The provider's answer to a ``LookupDebt``: the debt on the account and, for some services, its owner.

    seed 000: "enter the personal account number, then the debt is shown, and for some services the
    owner's name and address". The customer may then pay exactly ``debt`` with ``PayService``.
    """

    request_id: UUID = Field(description="request_id of the LookupDebt command.")
    customer_id: UUID = Field(description=_CUSTOMER_ID)
    provider: str = Field(min_length=1, max_length=64, description="Provider code, as asked.")
    provider_account: str = Field(min_length=1, max_length=64, description="The account number, as asked.")
    provider_name: str = Field(min_length=1, max_length=200, description="The provider's name as printed.")
    category: ServiceCategory | None = Field(
        default=None, description="The provider's kind of service, when the provider states it."
    )
    debt: Tiyn = Field(description="What is owed on the account, in tiyn; 0 when nothing is owed.")
    owner_name: str | None = Field(
        default=None,
        max_length=200,
        description="Name of the account's owner, for the services that show it; personal data.",
        json_schema_extra=SENSITIVE,
    )
    owner_address: str | None = Field(
        default=None,
        max_length=300,
        description="Address of the property the account is for, for the services that show it; "
        "personal data.",
        json_schema_extra=SENSITIVE,
    )
    iin_required: bool = Field(
        default=False,
        description="A PayService to this provider must carry the payer's IIN (and it must match).",
    )
    looked_up_at: AwareDatetime = Field(description="When the provider answered.")


class DebtLookupFailed(Event):
    """A ``LookupDebt`` found no debt: unknown provider, account or customer, provider failure, conflict."""

    request_id: UUID = Field(description="request_id of the LookupDebt command.")
    customer_id: UUID = Field(description=_CUSTOMER_ID)
    provider: str = Field(min_length=1, max_length=64, description="Provider code, as asked.")
    provider_account: str = Field(min_length=1, max_length=64, description="The account number, as asked.")
    reason_code: ReasonCode = Field(
        description="UNKNOWN_PROVIDER, UNKNOWN_PROVIDER_ACCOUNT (not found), UNKNOWN_CUSTOMER, "
        "PROVIDER_FAILED or IDEMPOTENCY_CONFLICT."
    )
    message: Message = Field(description="Human-readable explanation.")


# ------------------------------------------------------------------------------- saga requests


class RedPurchaseRequested(Event):
    """Payments asks billing to fund a purchase with Kaspi Red (answer: RedPurchaseApproved/Declined)."""

    payment_id: UUID = Field(description="The purchase; billing's plan is keyed by it.")
    customer_id: UUID = Field(description=_CUSTOMER_ID)
    amount: PositiveTiyn = Field(description="Part of the price to fund with Red, in tiyn.")
    merchant: Merchant = Field(description="Commerce channel of the purchase.")
    partner_id: str | None = Field(default=None, description="Partner id (Kaspi QR / Travel).")
    requested_at: AwareDatetime = Field(description="When the purchase was made (the plan starts then).")


class RedPurchaseCancelled(Event):
    """Compensation: the purchase did not go through, so billing releases the plan and the limit."""

    payment_id: UUID = Field(description="The purchase whose Red plan to cancel.")
    customer_id: UUID = Field(description=_CUSTOMER_ID)
    reason_code: ReasonCode = Field(description="Why the purchase did not complete.")


class BonusRedemptionRequested(Event):
    """Payments asks bonus to debit bonuses for part of a Kaspi Magazin purchase."""

    payment_id: UUID = Field(description="The purchase.")
    customer_id: UUID = Field(description=_CUSTOMER_ID)
    amount: PositiveTiyn = Field(description="Bonus to redeem, in tiyn (1 bonus = 1 ₸).")
    purchase_amount: PositiveTiyn = Field(description="Whole purchase price, in tiyn (for the 60 % cap).")
    merchant: Merchant = Field(description="Commerce channel of the purchase.")
    category: ServiceCategory | None = Field(default=None, description="Service category, if any.")
    kind: PaymentKind = Field(
        default=PaymentKind.PURCHASE,
        description="What the bonus would pay for; bonus declines RED_BILL (bonuses never pay a Red bill).",
    )


class BonusRedemptionCancelled(Event):
    """Compensation: the purchase did not go through, so bonus returns the redeemed amount."""

    payment_id: UUID = Field(description="The purchase whose redemption to return.")
    customer_id: UUID = Field(description=_CUSTOMER_ID)
    amount: PositiveTiyn = Field(description="Bonus to return, in tiyn.")
    reason_code: ReasonCode = Field(description="Why the purchase did not complete.")
