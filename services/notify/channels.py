"""Delivery channels: in-app inbox (PostgreSQL), push and SMS webhooks (HTTP), e-mail (SMTP).

A channel sends one ``Outgoing`` message or raises ``ChannelError`` (``permanent=True`` for errors a
retry cannot fix, e.g. HTTP 400). Retries, backoff and dead letters are the delivery service's job.
Webhooks carry the ``Idempotency-Key: <source_event_id>:<channel>`` header; after a crash between a
successful send and marking the delivery SENT, the send is repeated once with the same key, and the
receiver de-duplicates on it (docs/notify.md).
"""

from __future__ import annotations

import asyncio
import smtplib
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Protocol

import httpx

from services.notify.settings import EMAIL, INBOX, PUSH, SMS, NotifySettings
from shared.db import Conn

IDEMPOTENCY_HEADER = "Idempotency-Key"


class ChannelError(Exception):
    """A send failed; ``permanent`` errors are not retried."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message for one channel (``body`` may hold a one-time code: never log it)."""

    delivery_id: int
    idempotency_key: str
    source_event_id: str
    event_type: str
    customer_id: str
    locale: str
    address: str | None
    title: str
    body: str
    data: dict[str, Any] = field(default_factory=dict)


class Channel(Protocol):
    """Sends a message, raising ``ChannelError`` on failure."""

    name: str

    async def send(self, conn: Conn, message: Outgoing) -> None:
        """Deliver ``message``; ``conn`` is the delivery's transaction (used by the in-app inbox)."""


class InAppInbox:
    """Stores the message in ``inbox_messages``, in the same transaction that marks it SENT."""

    name = INBOX

    async def send(self, conn: Conn, message: Outgoing) -> None:
        """Insert the inbox row (once per delivery)."""
        await conn.execute(
            "INSERT INTO inbox_messages(delivery_id, customer_id, event_type, locale, title, body, link, "
            "created_at) VALUES ($1, $2::text::uuid, $3, $4, $5, $6, $7, now()) "
            "ON CONFLICT (delivery_id) DO NOTHING",
            message.delivery_id,
            message.customer_id,
            message.event_type,
            message.locale,
            message.title,
            message.body,
            message.data.get("link"),
        )


class _Webhook:
    name: str

    def __init__(self, url: str, client: httpx.AsyncClient) -> None:
        self._url = url
        self._client = client

    def _json(self, message: Outgoing) -> dict[str, Any]:
        raise NotImplementedError

    async def send(self, conn: Conn, message: Outgoing) -> None:
        """POST the message as JSON; 2xx is success, 4xx (but 408/429) is permanent."""
        try:
            response = await self._client.post(
                self._url,
                json=self._json(message),
                headers={IDEMPOTENCY_HEADER: message.idempotency_key},
            )
        except httpx.HTTPError as exc:
            raise ChannelError(f"{self.name} webhook unreachable: {type(exc).__name__}") from exc
        if response.is_success:
            return
        status = response.status_code
        permanent = 400 <= status < 500 and status not in (408, 429)
        raise ChannelError(f"{self.name} webhook answered HTTP {status}", permanent=permanent)


class PushWebhook(_Webhook):
    """Push notifications through an HTTP gateway (addressed by customer id)."""

    name = PUSH

    def _json(self, message: Outgoing) -> dict[str, Any]:
        return {
            "idempotency_key": message.idempotency_key,
            "customer_id": message.customer_id,
            "event_type": message.event_type,
            "source_event_id": message.source_event_id,
            "locale": message.locale,
            "title": message.title,
            "body": message.body,
            "link": message.data.get("link"),
        }


class SmsWebhook(_Webhook):
    """SMS through an HTTP gateway (addressed by the registered phone)."""

    name = SMS

    def _json(self, message: Outgoing) -> dict[str, Any]:
        if not message.address:
            raise ChannelError("no phone number", permanent=True)
        return {
            "idempotency_key": message.idempotency_key,
            "to": message.address,
            "text": message.body,
            "event_type": message.event_type,
        }


class SmtpEmail:
    """E-mail over SMTP with the standard library, in a worker thread."""

    name = EMAIL

    def __init__(self, host: str, port: int, sender: str, timeout_s: float = 10.0) -> None:
        self._host = host
        self._port = port
        self._from = sender
        self._timeout = timeout_s

    def _send_sync(self, message: Outgoing) -> None:
        email = EmailMessage()
        email["From"] = self._from
        email["To"] = message.address or ""
        email["Subject"] = message.title
        email["Message-ID"] = f"<{message.idempotency_key.replace(':', '.')}@aqsha.notify>"
        email["X-Idempotency-Key"] = message.idempotency_key
        email.set_content(message.body)
        with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
            smtp.send_message(email)

    async def send(self, conn: Conn, message: Outgoing) -> None:
        """Send through the relay; 5xx replies are permanent, connection problems are not."""
        if not message.address:
            raise ChannelError("no e-mail address", permanent=True)
        try:
            await asyncio.to_thread(self._send_sync, message)
        except smtplib.SMTPResponseException as exc:
            raise ChannelError(f"SMTP {exc.smtp_code}", permanent=exc.smtp_code >= 500) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise ChannelError(f"SMTP failed: {type(exc).__name__}") from exc


def default_channels(settings: NotifySettings, client: httpx.AsyncClient) -> dict[str, Channel]:
    """The four channels configured from settings."""
    return {
        INBOX: InAppInbox(),
        PUSH: PushWebhook(settings.push_webhook_url, client),
        SMS: SmsWebhook(settings.sms_webhook_url, client),
        EMAIL: SmtpEmail(settings.smtp_host, settings.smtp_port, settings.smtp_from, settings.smtp_timeout_s),
    }
