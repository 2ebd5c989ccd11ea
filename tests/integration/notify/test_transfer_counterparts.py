"""A transfer tells both sides, against real PostgreSQL (notify's service, no broker needed).

``TransferCompleted`` is keyed by the sender; notify also delivers a message to ``to_customer_id``,
in the recipient's language, naming the sender by first name only ("a Kaspi customer" when notify
does not know it), never by phone; the sender reads the recipient's first name and initial. The
recipient's message is its own (derived id), delivered exactly once per channel like any other.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest
import pytest_asyncio

from services.notify.channels import Channel, InAppInbox, Outgoing
from services.notify.queries import inbox
from services.notify.service import NotifyService, recipient_message_id
from services.notify.settings import EMAIL, INBOX, PUSH, SMS, NotifySettings
from shared.clock import ManualClock
from shared.contracts.common import AccountKind, Locale
from shared.contracts.customers import CustomerRegistered
from shared.contracts.envelope import Envelope, decode, new_envelope
from shared.contracts.notify import NotificationDelivered
from shared.contracts.payments import TransferCompleted
from shared.db import Conn, create_pool
from shared.settings import Settings

pytestmark = pytest.mark.integration

NOW = datetime(2025, 10, 20, 4, 0, tzinfo=UTC)


@dataclass
class Recorder:
    """A gateway that accepts everything and remembers it."""

    name: str
    sent: list[Outgoing] = field(default_factory=list)

    async def send(self, conn: Conn, message: Outgoing) -> None:
        self.sent.append(message)


@dataclass
class World:
    service: NotifyService
    pool: asyncpg.Pool
    push: Recorder
    sms: Recorder
    email: Recorder


@pytest_asyncio.fixture(loop_scope="session")
async def world(settings: Settings) -> AsyncIterator[World]:
    notify_settings = NotifySettings.model_validate({**settings.model_dump(), "service": "notify"})
    pool = await create_pool(notify_settings.db.dsn, "notify", max_size=2)  # migrated in the template
    push, sms, email = Recorder(PUSH), Recorder(SMS), Recorder(EMAIL)
    channels: dict[str, Channel] = {INBOX: InAppInbox(), PUSH: push, SMS: sms, EMAIL: email}
    service = NotifyService(pool, notify_settings, channels, ManualClock(NOW))
    try:
        yield World(service, pool, push, sms, email)
    finally:
        await pool.close()


def _env(payload: Any, producer: str) -> Envelope[Any]:
    return new_envelope(payload, producer=producer, occurred_at=NOW)


async def register(w: World, name: str, locale: Locale) -> UUID:
    cid = uuid4()
    phone = "+7701" + str(cid.int)[-7:]
    await w.service.handle(
        _env(
            CustomerRegistered(
                customer_id=cid,
                phone=phone,
                iin="900101300123",
                full_name=name,
                locale=locale,
                email=f"{cid.hex[:8]}@example.kz",
            ),
            "onboarding",
        )
    )
    return cid


def transfer(sender: UUID, recipient: UUID | None) -> Envelope[Any]:
    return _env(
        TransferCompleted(
            payment_id=uuid4(),
            request_id=uuid4(),
            customer_id=sender,
            to_customer_id=recipient,
            from_account=AccountKind.GOLD,
            to_account=AccountKind.GOLD,
            amount=300_000,
            fee=9_500,
            total=309_500,
            completed_at=NOW,
        ),
        "payments",
    )


async def test_the_recipient_is_told_in_their_language_with_the_senders_first_name_only(world: World) -> None:
    sender = await register(world, "Айгерим Касымова", Locale.KK)
    recipient = await register(world, "Нурлан Сапаров", Locale.RU)
    phone = await world.pool.fetchval("SELECT phone FROM customers WHERE customer_id = $1", sender)
    env = transfer(sender, recipient)
    await world.service.handle(env)
    await world.service.handle(env)  # redelivered: nothing twice

    [theirs] = await inbox(world.pool, recipient)
    assert theirs.locale == "ru"
    assert theirs.event_type == "TransferCompleted"
    assert theirs.title == "Поступил перевод 3 000 ₸"  # a title's spaces are plain
    assert "Отправитель: Айгерим\n" in theirs.body
    assert "Зачислено на: Kaspi Gold" in theirs.body
    for secret in ("Касымова", "К.", phone, phone[-4:], "95\u00a0₸", "Комиссия"):
        assert secret not in theirs.body  # no surname, phone, nor the sender's fee

    [mine] = await inbox(world.pool, sender)
    assert mine.locale == "kk"
    assert "Алушы: Нурлан С." in mine.body

    # Each side's push once, under its own idempotency key; no SMS or e-mail for a transfer.
    theirs_id = recipient_message_id(env.event_id)
    assert sorted((m.customer_id, m.idempotency_key) for m in world.push.sent) == sorted(
        [(str(sender), f"{env.event_id}:push"), (str(recipient), f"{theirs_id}:push")]
    )
    assert world.sms.sent == world.email.sent == []
    rows = await world.pool.fetch(
        "SELECT customer_id, channel, status, about_event_id, locale FROM deliveries "
        "WHERE source_event_id = $1 ORDER BY channel",
        theirs_id,
    )
    assert [
        (r["customer_id"], r["channel"], r["status"], r["about_event_id"], r["locale"]) for r in rows
    ] == [
        (recipient, "inbox", "SENT", env.event_id, "ru"),
        (recipient, "push", "SENT", env.event_id, "ru"),
    ]
    # The delivery outcome names the transfer itself, for the recipient.
    outcomes = [decode(bytes(r["payload"])) for r in await world.pool.fetch("SELECT payload FROM outbox")]
    delivered = [o.payload for o in outcomes if isinstance(o.payload, NotificationDelivered)]
    assert {(d.customer_id, d.source_event_id, d.channel.value) for d in delivered} >= {
        (recipient, env.event_id, "IN_APP"),
        (recipient, env.event_id, "PUSH"),
    }


async def test_a_sender_notify_does_not_know_is_a_kaspi_customer(world: World) -> None:
    recipient = await register(world, "Sarah Miller", Locale.EN)
    await world.service.handle(transfer(uuid4(), recipient))
    [theirs] = await inbox(world.pool, recipient)
    assert theirs.body.startswith("You've received 3\u00a0000\u00a0₸ from a Kaspi customer.")


async def test_a_transfer_between_own_accounts_is_one_message(world: World) -> None:
    me = await register(world, "Дмитрий Ли", Locale.RU)
    await world.service.handle(transfer(me, None))
    await world.service.handle(transfer(me, me))
    assert [m.title for m in await inbox(world.pool, me)] == ["Перевод выполнен", "Перевод выполнен"]
