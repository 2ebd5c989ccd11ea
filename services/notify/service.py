"""notify's use cases: turn an event into per-channel deliveries and deliver each exactly once.

Per event: (1) one transaction records the event in the inbox, stores its receipt data and claims
one PENDING delivery row per channel (``UNIQUE(source_event_id, channel)``, ``ON CONFLICT DO
NOTHING``); it commits. (2) Each PENDING row is then locked (``FOR UPDATE SKIP LOCKED``), sent with
retries and backoff, and marked SENT (or FAILED + dead letter) together with its
``NotificationDelivered``/``NotificationFailed`` outbox row, in that same transaction. A crash
during (2) rolls the row back to PENDING: a redelivered event or the periodic resume sends it again.

One-time codes arrive sealed (``OtpRequested`` v2, ``shared.otp_seal``): notify opens the code with
the transport key only in memory, to render the SMS. Nothing of a code is stored, not even a hash:
the OTP delivery row holds the SMS with the code redacted and ``secret = true``; only the event
(redelivered after a crash) can send it. A PENDING OTP row whose event is not redelivered before the
code expires ends FAILED. ``OtpRequested`` v1 (code in clear) is refused: dead letter
``insecure_contract``; a sealed code that does not open: dead letter ``invalid_sealed_code``.

A ``TransferCompleted`` is keyed by the sender, and both sides are told: the sender (named
recipient: "Нурлан С."), and the recipient (``to_customer_id``) with a message of their own, in their
language, naming the sender by first name only ("a Kaspi customer" when notify does not know it),
never by phone. The recipient's message has its own id (``recipient_message_id``), claimed in the
same transaction as the sender's deliveries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from uuid import UUID, uuid5

import asyncpg

from services.notify import store
from services.notify.channels import Channel, ChannelError, Outgoing
from services.notify.receipts import ReceiptData, allocation_lines
from services.notify.rendering import RenderedMessage, Renderer
from services.notify.rendering.names import default_names
from services.notify.settings import EMAIL, INBOX, PUSH, SMS, NotifySettings
from shared.clock import Clock
from shared.contracts.common import Locale, ReasonCode
from shared.contracts.customers import CustomerPhoneChanged, CustomerRegistered
from shared.contracts.envelope import Envelope, new_envelope
from shared.contracts.notify import NotificationChannel, NotificationDelivered, NotificationFailed
from shared.contracts.payments import OtpRequested
from shared.customers import check_registration, phone_change_applies, registration_digest
from shared.db import Conn
from shared.inbox import Inbox
from shared.kafka import Refused
from shared.logging import mask_phone
from shared.otp_seal import SealError, open_code
from shared.outbox import Outbox

log = logging.getLogger("aqsha.notify")

#: Customer-facing event types notify turns into messages.
MESSAGE_EVENTS = frozenset(
    {
        "BillIssued",
        "PaymentCompleted",
        "PaymentFailed",
        "OtpRequested",
        "TopUpCompleted",
        "TransferCompleted",
        "RepaymentApplied",
        "BillOverdueRecorded",
        "PenaltyApplied",
        "LimitRestored",
        "OverpaymentRefunded",
        "BonusAccrued",
        "BonusReversed",
    }
)
_CONTRACT_CHANNEL = {
    INBOX: NotificationChannel.IN_APP,
    PUSH: NotificationChannel.PUSH,
    SMS: NotificationChannel.SMS,
    EMAIL: NotificationChannel.EMAIL,
}
REDACTED_CODE = "******"
#: What the recipient of a transfer reads (a template, not an event type; routed like one).
TRANSFER_RECEIVED: Final = "TransferReceived"
#: Namespace of the ids notify derives for messages to another customer than the event's.
_MESSAGE_NS: Final = UUID("3d6f1f0e-7a52-4f0b-9c61-2b8e4d5a7c90")


def recipient_message_id(event_id: UUID) -> UUID:
    """The id of the recipient's message about a transfer: the ``source_event_id`` of its deliveries."""
    return uuid5(_MESSAGE_NS, f"{event_id}:{TRANSFER_RECEIVED}")


def short_name(full_name: str) -> str | None:
    """``"Айгерим Касымова"`` → ``"Айгерим К."``: the given name and the surname's initial (read as
    "given surname [patronymic]", like payments' receipts); one word as is; nothing → None."""
    parts = full_name.split()
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else f"{parts[0]} {parts[1][0].upper()}."


def transfer_recipient(env: Envelope[Any]) -> UUID | None:
    """The other customer a ``TransferCompleted`` credited (None between one customer's own accounts)."""
    if env.type != "TransferCompleted":
        return None
    to = env.payload.to_customer_id
    return to if to is not None and to != env.payload.customer_id else None


def recipient_context(env: Envelope[Any], sender_first_name: str | None) -> dict[str, Any]:
    """The recipient's message context: what they got, where and when, and who sent it (first name only:
    never the sender's phone, surname, balance or fee)."""
    p = env.payload
    ctx: dict[str, Any] = {
        "amount": p.amount,
        "to_account": p.to_account.value,
        "completed_at": p.completed_at.isoformat(),
    }
    if sender_first_name:
        ctx["sender"] = sender_first_name
    return ctx


def repayment_receipt_number(repayment_id: UUID) -> str:
    """A Red repayment's receipt number (the event carries none)."""
    return f"RED-{repayment_id.hex[:16].upper()}"


def message_context(env: Envelope[Any], receipt_url_base: str) -> dict[str, Any]:
    """The template context of an event: its ``model_dump`` plus the display fields templates need."""
    payload = env.payload
    ctx: dict[str, Any] = payload.model_dump(mode="json")
    if env.type == "PaymentCompleted":
        r = payload.receipt
        ctx.update(
            receipt_number=r.receipt_number,
            # The codes; the templates' ``payee`` filter names them in the message's locale.
            provider=_payee(payload),
            account=r.provider_account,
            receipt_url=receipt_url_base + r.receipt_number,
        )
    elif env.type == "RepaymentApplied":
        number = repayment_receipt_number(payload.repayment_id)
        ctx.update(
            receipt_number=number,
            receipt_url=receipt_url_base + number,
            applied_at=env.occurred_at.isoformat(),
        )
    elif env.type == "TransferCompleted" and payload.to_customer_id is not None:
        ctx.pop("to_account", None)  # shown only between own accounts
    return ctx


def _payee(p: Any) -> dict[str, Any]:
    """Whom a PaymentCompleted paid, as codes plus the name payments printed (``names.payee``)."""
    return {
        "provider": p.provider,
        "merchant": p.merchant.value if p.merchant is not None else None,
        "partner_id": p.partner_id,
        "name": p.receipt.payee,
    }


@dataclass(frozen=True, slots=True)
class Plan:
    """What one event becomes: the template context, receipt data and the secret SMS text."""

    context: dict[str, Any]
    receipt: ReceiptData | None = None
    payment_id: UUID | None = None
    link: str | None = None


class NotifyService:
    """Handles events and delivers messages."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: NotifySettings,
        channels: Mapping[str, Channel],
        clock: Clock,
        renderer: Renderer | None = None,
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.channels = channels
        self.clock = clock
        self.renderer = renderer or Renderer()
        self.inbox = Inbox(settings.group)
        self.outbox = Outbox()
        # Refuses a missing or development-only key outside development mode (InsecureConfiguration).
        self._otp_key = settings.otp_transport_secret()

    # -- events ----------------------------------------------------------------------------------
    async def handle(self, env: Envelope[Any]) -> None:
        """Handle one envelope (idempotent: a redelivery only resumes what is still PENDING)."""
        if env.type == "CustomerRegistered":
            await self._register(env)
            return
        if env.type == "CustomerPhoneChanged":
            await self._phone_changed(env)
            return
        if env.type not in MESSAGE_EVENTS:
            return
        if env.type == "OtpRequested" and not isinstance(env.payload, OtpRequested):
            raise Refused(
                "insecure_contract",
                f"OtpRequested v{env.schema_version} carries the code in clear; only v2 (sealed) is accepted",
            )
        secret_body: str | None = None
        recipient_id = transfer_recipient(env)
        async with self.pool.acquire() as conn:
            customer = await store.get_customer(conn, env.payload.customer_id)
            locale = customer.locale if customer else Locale.RU.value
            async with conn.transaction():
                if await self.inbox.claim(conn, env):
                    if recipient_id is not None:
                        await self._claim_for_recipient(conn, env, customer, recipient_id)
                    plan = await self._plan(conn, env, customer)
                    deliveries, secret_body = self._deliveries(env, plan, customer, locale)
                    if plan.receipt is not None:
                        await store.store_receipt(
                            conn,
                            receipt_number=plan.receipt.receipt_number,
                            source_event_id=env.event_id,
                            payment_id=plan.payment_id,
                            customer_id=env.payload.customer_id,
                            kind=plan.receipt.kind,
                            data=plan.receipt.to_json_dict(),
                            now=self.clock.now(),
                        )
                    await store.claim_deliveries(
                        conn,
                        source_event_id=env.event_id,
                        event_type=env.type,
                        customer_id=env.payload.customer_id,
                        correlation_id=env.correlation_id,
                        locale=locale,
                        deliveries=deliveries,
                        now=self.clock.now(),
                    )
            pending = await store.pending_ids(conn, env.event_id)
            if recipient_id is not None:
                pending += await store.pending_ids(conn, recipient_message_id(env.event_id))
        if env.type == "OtpRequested" and pending and secret_body is None:
            # A redelivered OTP after a crash: the code is only in the event, render it again.
            secret_body = self._render(env.type, locale, self._context(env), SMS).body
        for delivery_id in pending:
            await self.deliver(delivery_id, secret_body=secret_body)

    async def _register(self, env: Envelope[Any]) -> None:
        """A registration is applied once (shared/customers.py): the same one again is a no-op, one
        with different data raises ``Refused("customer_conflict")`` and changes nothing."""
        p = env.payload
        assert isinstance(p, CustomerRegistered)

        async def effect(conn: Conn) -> None:
            digest = registration_digest(p)
            if await store.insert_customer(
                conn, p.customer_id, p.locale.value, p.phone, p.email, digest, short_name(p.full_name)
            ):
                return
            stored = await store.lock_customer(conn, p.customer_id)
            assert stored is not None
            kept = {k: stored[k] for k in ("phone", "locale", "email")}
            check_registration(p, kept, stored["registration_sha256"])

        await self.inbox.once(self.pool, env, effect)
        log.info(
            "customer registered", extra={"customer_id": str(p.customer_id), "phone": mask_phone(p.phone)}
        )

    async def _phone_changed(self, env: Envelope[Any]) -> None:
        """CustomerPhoneChanged, by the same rule as payments (shared/customers.py).

        When applied, an SMS goes to the OLD phone ("your phone was changed"): whoever holds it
        learns of a change they did not ask for. It is claimed in the same transaction as the
        change and sent like any delivery (exactly once, retried, dead-lettered).
        """
        change = env.payload
        assert isinstance(change, CustomerPhoneChanged)
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                if await self.inbox.claim(conn, env):
                    stored = await store.lock_customer(conn, change.customer_id)
                    old = stored["phone"] if stored else None
                    last = stored["phone_changed_at"] if stored else None
                    if phone_change_applies(change, old, last):
                        assert stored is not None  # phone_change_applies refuses an unknown customer
                        await store.change_phone(conn, change.customer_id, change.phone, change.changed_at)
                        locale = stored["locale"]
                        notice = self._render(env.type, locale, {"changed_at": change.changed_at}, SMS)
                        await store.claim_deliveries(
                            conn,
                            source_event_id=env.event_id,
                            event_type=env.type,
                            customer_id=change.customer_id,
                            correlation_id=env.correlation_id,
                            locale=locale,
                            deliveries=[store.NewDelivery(SMS, old, notice.title, notice.body, {})],
                            now=self.clock.now(),
                        )
                        log.info(
                            "customer phone changed",
                            extra={"customer_id": str(change.customer_id), "phone": mask_phone(change.phone)},
                        )
            pending = await store.pending_ids(conn, env.event_id)
        for delivery_id in pending:
            await self.deliver(delivery_id)

    def _context(self, env: Envelope[Any]) -> dict[str, Any]:
        ctx = message_context(env, self.settings.receipt_url_base)
        if isinstance(env.payload, OtpRequested):
            # The code exists in clear only here, in memory, for the SMS text.
            del ctx["sealed_code"]
            try:
                ctx["code"] = open_code(env.payload, self._otp_key)
            except SealError as exc:  # wrong key, tampered, or moved from another message: never retried
                raise Refused("invalid_sealed_code", str(exc)) from None
        return ctx

    async def _plan(self, conn: Conn, env: Envelope[Any], customer: store.CustomerRow | None) -> Plan:
        ctx = self._context(env)
        locale = customer.locale if customer else Locale.RU.value
        p = env.payload
        if env.type == "PaymentCompleted":
            r = p.receipt
            receipt = ReceiptData(
                receipt_number=r.receipt_number,
                created_at=r.created_at,
                completed_at=r.completed_at,
                payer_masked=r.payer_masked,
                provider_or_merchant=default_names().payee(_payee(p), locale),
                account=r.provider_account or "—",
                amount=r.amount,
                fee=r.fee,
                total=r.total,
                funding=r.funding.value,
                channel=r.channel.value,
                status=r.status.value,
                kind="PAYMENT",
                locale=locale,
            )
            return Plan(ctx, receipt, p.payment_id, ctx["receipt_url"])
        if env.type == "RepaymentApplied":
            paid = await store.payment_receipt_data(conn, p.payment_id)
            if paid is not None:
                ctx["channel"] = paid["channel"]
            receipt = ReceiptData(
                receipt_number=ctx["receipt_number"],
                created_at=env.occurred_at,
                completed_at=env.occurred_at,
                payer_masked=mask_phone(customer.phone) if customer else "—",
                provider_or_merchant="Kaspi Red",
                account=str(p.allocation.bill_id) if p.allocation.bill_id else "Kaspi Red",
                amount=p.amount,
                fee=0,
                total=p.amount,
                funding=paid["funding"] if paid else "GOLD",
                channel=paid["channel"] if paid else "APP",
                status="COMPLETED",
                kind="RED_REPAYMENT",
                allocation=allocation_lines(ctx["allocation"]),
                locale=locale,
            )
            return Plan(ctx, receipt, p.payment_id, ctx["receipt_url"])
        recipient_id = transfer_recipient(env)
        if recipient_id is not None:
            recipient = await store.get_customer(conn, recipient_id)
            if recipient is not None and recipient.short_name:
                ctx["recipient"] = recipient.short_name
        return Plan(ctx)

    def _render(self, event_type: str, locale: str, ctx: Mapping[str, Any], channel: str) -> RenderedMessage:
        return self.renderer.render(event_type, locale, ctx, channel=channel)

    def _deliveries(
        self, env: Envelope[Any], plan: Plan, customer: store.CustomerRow | None, locale: str
    ) -> tuple[list[store.NewDelivery], str | None]:
        out: list[store.NewDelivery] = []
        data: dict[str, Any] = {"link": plan.link} if plan.link else {}
        if env.type == "OtpRequested":
            # Codes go only to the registered phone: the local copy wins over the event's.
            phone = customer.phone if customer else env.payload.phone
            real = self._render(env.type, locale, plan.context, SMS)
            redacted = self._render(env.type, locale, {**plan.context, "code": REDACTED_CODE}, SMS)
            out.append(
                store.NewDelivery(
                    SMS,
                    phone,
                    redacted.title,
                    redacted.body,
                    {},
                    secret=True,
                    secret_expires_at=env.payload.expires_at,
                )
            )
            return out, real.body
        for channel, address in _addressed(self.settings.channels_for(env.type), customer):
            msg = self._render(env.type, locale, plan.context, channel)
            out.append(store.NewDelivery(channel, address, msg.title, msg.body, data))
        return out, None

    async def _claim_for_recipient(
        self, conn: Conn, env: Envelope[Any], sender: store.CustomerRow | None, recipient_id: UUID
    ) -> None:
        """Claim the recipient's deliveries of a transfer (in the transaction of the sender's claim)."""
        recipient = await store.get_customer(conn, recipient_id)
        locale = recipient.locale if recipient else Locale.RU.value
        first = sender.short_name.split()[0] if sender is not None and sender.short_name else None
        ctx = recipient_context(env, first)
        deliveries = []
        for channel, address in _addressed(self.settings.channels_for(TRANSFER_RECEIVED), recipient):
            msg = self._render(TRANSFER_RECEIVED, locale, ctx, channel)
            deliveries.append(store.NewDelivery(channel, address, msg.title, msg.body, {}))
        await store.claim_deliveries(
            conn,
            source_event_id=recipient_message_id(env.event_id),
            event_type=env.type,
            customer_id=recipient_id,
            correlation_id=env.correlation_id,
            locale=locale,
            deliveries=deliveries,
            now=self.clock.now(),
            about_event_id=env.event_id,
        )

    # -- delivery --------------------------------------------------------------------------------
    async def deliver(self, delivery_id: int, *, secret_body: str | None = None) -> str | None:
        """Send one PENDING delivery with retries; returns its final status (None: not ours to send)."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await store.lock_pending(conn, delivery_id)
            if row is None:
                return None
            body = row["body"]
            if row["secret"]:
                if secret_body is None:
                    expires = row["secret_expires_at"]
                    if expires is not None and expires < self.clock.now():
                        await self._fail(conn, row, 0, "one-time code expired before it could be sent")
                        return "FAILED"
                    return None  # only the redelivered event can send it
                body = secret_body
            channel = self.channels[row["channel"]]
            message = Outgoing(
                delivery_id=row["id"],
                idempotency_key=f"{row['source_event_id']}:{row['channel']}",
                source_event_id=str(row["source_event_id"]),
                event_type=row["event_type"],
                customer_id=str(row["customer_id"]),
                locale=row["locale"],
                address=row["address"],
                title=row["title"],
                body=body,
                data=dict(row["data"] or {}),
            )
            attempts, error = await self._send_with_retries(conn, channel, message)
            if error is None:
                await store.finish(
                    conn, row["id"], status="SENT", attempts=attempts, error=None, now=self.clock.now()
                )
                await self.outbox.add(conn, self._delivered(row, attempts))
                log.info(
                    "notification delivered",
                    extra={
                        "delivery_id": row["id"],
                        "channel": row["channel"],
                        "event_type": row["event_type"],
                        "attempts": attempts,
                    },
                )
                return "SENT"
            await self._fail(conn, row, attempts, error)
            return "FAILED"

    async def _send_with_retries(
        self, conn: Conn, channel: Channel, message: Outgoing
    ) -> tuple[int, str | None]:
        max_attempts = self.settings.delivery_max_attempts
        backoff = self.settings.delivery_backoff_ms / 1000
        error = ""
        for attempt in range(1, max_attempts + 1):
            try:
                await channel.send(conn, message)
            except ChannelError as exc:
                error = str(exc)
                log.warning(
                    "notification send failed",
                    extra={
                        "delivery_id": message.delivery_id,
                        "channel": channel.name,
                        "attempt": attempt,
                        "error": error,
                        "permanent": exc.permanent,
                    },
                )
                if exc.permanent or attempt == max_attempts:
                    return attempt, error
                await asyncio.sleep(backoff * 2 ** (attempt - 1))
            else:
                return attempt, None
        return max_attempts, error

    async def _fail(self, conn: Conn, row: asyncpg.Record, attempts: int, error: str) -> None:
        now = self.clock.now()
        reason_code = (
            ReasonCode.NO_CONTACT
            if "no phone" in error or "no e-mail" in error
            else ReasonCode.DELIVERY_FAILED
        )
        await store.finish(conn, row["id"], status="FAILED", attempts=attempts, error=error, now=now)
        await store.add_dead_letter(
            conn, row, attempts=attempts, reason_code=reason_code.value, error=error, now=now
        )
        failed = NotificationFailed(
            source_event_id=_about(row),
            event_type=row["event_type"],
            channel=_CONTRACT_CHANNEL[row["channel"]],
            customer_id=row["customer_id"],
            attempt_count=max(attempts, 1),
            reason_code=reason_code,
            reason=error[:500] or "delivery failed",
        )
        await self.outbox.add(conn, self._wrap(failed, row))
        log.error(
            "notification dead-lettered",
            extra={
                "delivery_id": row["id"],
                "channel": row["channel"],
                "event_type": row["event_type"],
                "attempts": attempts,
                "error": error,
            },
        )

    def _delivered(self, row: asyncpg.Record, attempts: int) -> Envelope[NotificationDelivered]:
        event = NotificationDelivered(
            source_event_id=_about(row),
            event_type=row["event_type"],
            channel=_CONTRACT_CHANNEL[row["channel"]],
            customer_id=row["customer_id"],
            locale=Locale(row["locale"]),
            attempt_count=attempts,
        )
        return self._wrap(event, row)

    def _wrap(self, event: Any, row: asyncpg.Record) -> Envelope[Any]:
        return new_envelope(
            event,
            producer="notify",
            occurred_at=self.clock.now(),
            correlation_id=row["correlation_id"],
        )

    async def resume_pending(self) -> int:
        """Send every PENDING delivery not being sent right now (after a restart); returns how many ended."""
        done = 0
        for delivery_id in await store.pending_ids(self.pool):
            if await self.deliver(delivery_id) is not None:
                done += 1
        return done


def _about(row: asyncpg.Record) -> UUID:
    """The event a delivery's message is about (its own source event unless it went to another customer)."""
    about: UUID | None = row["about_event_id"]
    return about if about is not None else row["source_event_id"]


def _addressed(channels: list[str], customer: store.CustomerRow | None) -> list[tuple[str, str | None]]:
    """The channels a customer can be reached on, with the address: e-mail only for customers who gave
    one, SMS only for customers notify knows (the inbox and push need no address)."""
    out: list[tuple[str, str | None]] = []
    for channel in channels:
        if channel == EMAIL:
            if customer is None or not customer.email:
                continue
            out.append((channel, customer.email))
        elif channel == SMS:
            if customer is None:
                continue
            out.append((channel, customer.phone))
        else:
            out.append((channel, None))
    return out
