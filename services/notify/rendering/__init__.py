"""notify's rendering layer: events → customer messages in ru (default), kk and en.

Pure code: Jinja2 templates from ``services/notify/templates/<locale>/<EventType>.<channel>.j2``,
no broker, database or network. Use::

    renderer = Renderer()
    msg = renderer.render("BillIssued", "kk", context)               # full text (inbox, e-mail)
    sms = renderer.render("OtpRequested", "ru", context, channel="sms")  # short text

An unknown locale renders in ru; an unknown event type raises ``UnknownEventType``; a missing
context field raises ``RenderError`` (``StrictUndefined``). The PDF e-receipt is in
``services.notify.receipts``.

Context per event
-----------------
The context is a plain mapping of the event's fields, as the pydantic contract's ``model_dump()``
will give them: amounts are **int tiyn**, datetimes **timezone-aware** (shown in Asia/Almaty), ids
are strings, codes are the contract's enum values. Notify adds ``receipt_url`` (the link to the
stored receipt) itself. *Optional* fields may be absent; every other field is required.

===================== ====================================================================================
event type            context fields
===================== ====================================================================================
BillIssued            ``amount`` (bill total), ``due_at`` (20:00 Almaty on the due date),
                      ``lines``: list of {``purchase_id`` (never shown), ``part_no``, ``amount``, optional
                      ``merchant`` (code), ``partner_id``, ``purchased_on``, ``parts_total`` (default 4)}
PaymentCompleted      ``receipt_number``, ``provider`` (a name, a code, or {``provider``, ``merchant``,
                      ``partner_id``, ``name``}: codes the ``payee`` filter names), optional ``account``
                      (the customer's account number at the provider), ``amount``, ``fee``,
                      ``total``, ``funding`` (GOLD|WALLET|BONUS|CARD|RED), ``completed_at``, ``receipt_url``
PaymentFailed         ``reason_code``; optional ``amount``, ``provider`` (name), ``failed_at``,
                      ``refunded`` (bool: true = a debit was taken and returned, false = nothing taken)
OtpRequested (sms)    ``code``, ``amount``, ``expires_at``, optional ``provider``
TopUpCompleted        ``account`` (GOLD|WALLET), ``amount``, ``balance_after``, ``channel``
                      (TERMINAL|ATM|APP|...), ``completed_at``
TransferCompleted     ``amount``, ``fee``, ``from_account`` (GOLD|WALLET), ``completed_at``; optional
                      ``recipient`` (display name, already masked, e.g. "Асель К."), ``to_account``
                      (shown for transfers between own accounts), ``balance_after``
TransferReceived      what the *recipient* of a TransferCompleted reads: ``amount``, ``to_account``,
                      ``completed_at``; optional ``sender`` (first name; absent: "a Kaspi customer")
RepaymentApplied      ``amount``, ``allocation`` = {optional ``bill_id``, ``to_bill``, ``to_purchases``: list
                      of {``purchase_id``, ``amount``}, ``carried``, ``refunded_to_gold``, v2: optional
                      ``prepayment_used``} (or a flat list of {``kind``, ``amount``, optional
                      ``reference``}, kind PREPAYMENT_USED for v2's); optional ``receipt_number``,
                      ``receipt_url``, ``channel`` (APP|TERMINAL|ATM|CASHIER), ``applied_at``
BillOverdueRecorded   ``outstanding`` (amount still due), ``due_at``,
                      optional ``penalty`` (the one-time penalty charged from the 2nd day)
PenaltyApplied        ``amount`` (the penalty, 2 000 ₸), ``outstanding_after`` (due now, penalty included)
LimitRestored         ``amount`` (restored), ``available_after``
OverpaymentRefunded   ``amount``; optional ``account`` (default GOLD)
BonusAccrued          ``amount`` (bonus in tiyn; 1 bonus = 1 ₸), ``balance_after``; optional ``merchant``
                      (name), ``percent`` (decimal string "5", "12.5" or an int)
BonusReversed         ``amount`` (bonus in tiyn), ``balance_after``; optional ``merchant`` (name)
CustomerPhoneChanged  ``changed_at`` (sms only: the notice sent to the *old* phone)
  (sms)
===================== ====================================================================================

Every template also gets ``locale`` (set by the renderer). Filters: ``money``, ``bonus``,
``almaty_dt``, ``almaty_date``, ``almaty_time``, ``reason``, ``funding``, ``channel_name``,
``status_name``, ``allocation_kind``, ``allocation_parts``, ``prepayment_used``, ``percent``, ``kk_case``,
``payee``, ``bill_lines``, ``sender_name`` (see ``filters``). Providers, merchants and partners are named
from ``services/notify/display_names.toml`` (``names``): a message never prints a code or an id.

Extra fields in the context (``customer_id``, ``payment_id``, ...) are ignored, so a whole
``model_dump()`` can be passed; notify only has to add the display names the event does not carry
(``recipient``, ``sender``) and ``receipt_url``.
"""

from __future__ import annotations

from .filters import FilterInputError
from .renderer import (
    CHANNELS,
    DEFAULT_TEMPLATES_DIR,
    EVENT_TYPES,
    NoTemplateForChannel,
    RenderedMessage,
    Renderer,
    RenderError,
    UnknownEventType,
)
from .vocabulary import DEFAULT_LOCALE, LOCALES, normalize_locale, reason_text

__all__ = [
    "CHANNELS",
    "DEFAULT_LOCALE",
    "DEFAULT_TEMPLATES_DIR",
    "EVENT_TYPES",
    "LOCALES",
    "FilterInputError",
    "NoTemplateForChannel",
    "RenderError",
    "RenderedMessage",
    "Renderer",
    "UnknownEventType",
    "normalize_locale",
    "reason_text",
]
