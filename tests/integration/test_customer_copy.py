"""payments and notify keep their customer copies by one rule (shared/customers.py), against real PostgreSQL.

The service objects are called directly, as their Kafka handlers call them: a registration is
applied once (the same one again is a no-op, a different one is refused with ``customer_conflict``
and changes nothing in either service), and the phone changes only through ``CustomerPhoneChanged``,
applied identically by both (unknown customer and stale changes refused, a repeat is a no-op);
notify then tells the old phone by SMS.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest
import pytest_asyncio
from redis.asyncio import Redis

from services.notify.channels import InAppInbox, Outgoing
from services.notify.service import NotifyService
from services.notify.settings import INBOX, SMS, NotifySettings
from services.payments.provider import ProviderSimulator
from services.payments.service import PaymentsService
from services.payments.settings import PaymentsSettings
from shared.clock import ALMATY, ManualClock
from shared.contracts.base import Contract
from shared.contracts.common import Locale, TariffProfile
from shared.contracts.customers import CustomerPhoneChanged, CustomerRegistered
from shared.contracts.envelope import Envelope, new_envelope
from shared.db import Conn, create_pool
from shared.kafka import Refused
from shared.settings import Settings

pytestmark = pytest.mark.integration

PHONE = "+77011234567"
NEW_PHONE = "+77017654321"
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=ALMATY)


class SmsGateway:
    """An SMS gateway that accepts everything and remembers it."""

    name = SMS

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    async def send(self, conn: Conn, message: Outgoing) -> None:
        self.sent.append(message)


@dataclass
class Both:
    """payments and notify over one database, fed the same envelopes."""

    clock: ManualClock
    pay_pool: asyncpg.Pool
    notify_pool: asyncpg.Pool
    payments: PaymentsService
    notify: NotifyService
    sms: SmsGateway

    def envelope(self, payload: Contract) -> Envelope[Any]:
        return new_envelope(payload, producer="onboarding", occurred_at=self.clock.now())

    def handlers(self, env: Envelope[Any]) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        """Each service's entry point for ``env``, as its Kafka handler routes it."""
        pay = (
            self.payments.on_customer
            if env.type == CustomerRegistered.TYPE
            else self.payments.on_phone_changed
        )
        return [("payments", lambda: pay(env)), ("notify", lambda: self.notify.handle(env))]

    async def deliver(self, payload: Contract) -> Envelope[Any]:
        """Hand a new envelope of ``payload`` to both services; both must accept it."""
        env = self.envelope(payload)
        for _, handle in self.handlers(env):
            await handle()
        return env

    async def refused(self, payload: Contract) -> dict[str, Refused]:
        """Hand a new envelope of ``payload`` to both services; both must refuse it."""
        env = self.envelope(payload)
        out: dict[str, Refused] = {}
        for name, handle in self.handlers(env):
            with pytest.raises(Refused) as caught:
                await handle()
            out[name] = caught.value
        # The refusal rolled back the inbox claim too: a redelivery is refused again, not skipped.
        for pool in (self.pay_pool, self.notify_pool):
            assert await pool.fetchval("SELECT count(*) FROM inbox WHERE event_id = $1", env.event_id) == 0
        return out

    async def phones(self, customer_id: UUID) -> tuple[str | None, str | None]:
        """The phone each service stores (payments, notify)."""
        sql = "SELECT phone FROM customers WHERE customer_id = $1"
        return await self.pay_pool.fetchval(sql, customer_id), await self.notify_pool.fetchval(
            sql, customer_id
        )

    async def rows(self, customer_id: UUID) -> tuple[dict[str, Any], dict[str, Any]]:
        """Both stored rows, whole."""
        sql = "SELECT * FROM customers WHERE customer_id = $1"
        pay, notify = (
            await self.pay_pool.fetchrow(sql, customer_id),
            await self.notify_pool.fetchrow(sql, customer_id),
        )
        assert pay is not None
        assert notify is not None
        return dict(pay), dict(notify)


@pytest_asyncio.fixture(loop_scope="session")
async def both(pg_dsn: str, redis: Redis, settings: Settings) -> AsyncIterator[Both]:
    clock = ManualClock(T0)
    pay_pool = await create_pool(pg_dsn, "payments", max_size=4)
    notify_pool = await create_pool(pg_dsn, "notify", max_size=4)
    payments_settings = PaymentsSettings(db=settings.db, redis=settings.redis, kafka=settings.kafka)
    sms = SmsGateway()
    try:
        yield Both(
            clock=clock,
            pay_pool=pay_pool,
            notify_pool=notify_pool,
            payments=PaymentsService(pay_pool, redis, payments_settings, clock, ProviderSimulator()),
            notify=NotifyService(
                notify_pool, NotifySettings(db=settings.db), {INBOX: InAppInbox(), SMS: sms}, clock
            ),
            sms=sms,
        )
    finally:
        await pay_pool.close()
        await notify_pool.close()


def assert_no_personal_data(refusals: dict[str, Refused], *values: str) -> None:
    """No refusal (what is dead-lettered and logged) carries any of ``values`` (phones, IINs)."""
    for name, refusal in refusals.items():
        for value in values:
            assert value.removeprefix("+7") not in str(refusal), name


def registration(customer_id: UUID | None = None, **changes: Any) -> CustomerRegistered:
    fields: dict[str, Any] = {
        "customer_id": customer_id or uuid4(),
        "phone": PHONE,
        "iin": "900101300123",
        "full_name": "Айгерим Касымова",
        "locale": Locale.KK,
        "tariff_profile": TariffProfile.KASPI,
        "email": "aigerim@example.kz",
    }
    return CustomerRegistered(**{**fields, **changes})


def phone_change(customer_id: UUID, phone: str = NEW_PHONE, at: datetime = T0) -> CustomerPhoneChanged:
    return CustomerPhoneChanged(
        customer_id=customer_id, phone=phone, changed_at=at, verification_ref="branch-017:42"
    )


async def test_the_same_registration_again_is_a_no_op_in_both(both: Both) -> None:
    customer = registration()
    await both.deliver(customer)
    before = await both.rows(customer.customer_id)
    assert before[0]["registration_sha256"] == before[1]["registration_sha256"] is not None
    both.clock.advance(timedelta(hours=1))
    await both.deliver(customer)  # a new envelope (new event id) with the same registration
    assert await both.rows(customer.customer_id) == before
    accounts = await both.pay_pool.fetchval(
        "SELECT count(*) FROM accounts WHERE customer_id = $1", customer.customer_id
    )
    assert accounts == 2


async def test_a_registration_with_another_phone_is_refused_and_changes_nothing(both: Both) -> None:
    customer = registration()
    await both.deliver(customer)
    before = await both.rows(customer.customer_id)
    refusals = await both.refused(customer.model_copy(update={"phone": NEW_PHONE}))
    for name, refusal in refusals.items():
        assert refusal.reason == "customer_conflict", name
        assert "in: phone;" in refusal.message, (name, refusal.message)
    # No personal data in what is dead-lettered: the field is named, its values are not.
    assert_no_personal_data(refusals, PHONE, NEW_PHONE)
    assert await both.phones(customer.customer_id) == (PHONE, PHONE)
    assert await both.rows(customer.customer_id) == before


async def test_a_difference_in_any_field_is_refused_by_both_even_one_a_service_does_not_keep(
    both: Both,
) -> None:
    customer = registration()
    await both.deliver(customer)
    before = await both.rows(customer.customer_id)
    # Neither payments nor notify keeps the IIN: the registration digest still tells them apart.
    refusals = await both.refused(customer.model_copy(update={"iin": "850202400456"}))
    assert {r.reason for r in refusals.values()} == {"customer_conflict"}
    assert "a field not kept here" in refusals["payments"].message
    assert_no_personal_data(refusals, "900101300123", "850202400456")
    # The name is kept by payments only, the e-mail and locale by notify only: both refuse either.
    for update in ({"full_name": "Someone Else"}, {"email": "other@example.kz"}, {"locale": Locale.RU}):
        refusals = await both.refused(customer.model_copy(update=update))
        assert {r.reason for r in refusals.values()} == {"customer_conflict"}, update
    assert await both.rows(customer.customer_id) == before


async def test_a_row_stored_before_the_digest_is_compared_on_the_fields_kept(both: Both) -> None:
    customer = registration()
    await both.deliver(customer)
    for pool in (both.pay_pool, both.notify_pool):
        await pool.execute(
            "UPDATE customers SET registration_sha256 = NULL WHERE customer_id = $1", customer.customer_id
        )
    await both.deliver(customer)  # same kept fields: a no-op, the digest is not back-filled
    refusals = await both.refused(customer.model_copy(update={"phone": NEW_PHONE}))
    assert {r.reason for r in refusals.values()} == {"customer_conflict"}
    assert await both.phones(customer.customer_id) == (PHONE, PHONE)


async def test_a_phone_change_is_applied_identically_by_both(both: Both) -> None:
    customer = registration()
    await both.deliver(customer)
    cid = customer.customer_id
    await both.deliver(phone_change(cid, NEW_PHONE, T0 + timedelta(days=1)))
    assert await both.phones(cid) == (NEW_PHONE, NEW_PHONE)
    pay, notify = await both.rows(cid)
    assert pay["phone_changed_at"] == notify["phone_changed_at"] == T0 + timedelta(days=1)
    # notify tells the OLD phone, in the customer's language, without naming the new one.
    (notice,) = both.sms.sent
    assert (notice.address, notice.event_type, notice.locale) == (PHONE, "CustomerPhoneChanged", "kk")
    assert "телефон нөміріңіз өзгертілді" in notice.body
    assert NEW_PHONE.removeprefix("+7") not in notice.body

    # The same change again (a new envelope): a no-op. The original registration again: a no-op too,
    # it does not bring the old phone back.
    await both.deliver(phone_change(cid, NEW_PHONE, T0 + timedelta(days=1)))
    await both.deliver(customer)
    assert await both.phones(cid) == (NEW_PHONE, NEW_PHONE)
    assert len(both.sms.sent) == 1

    # A replay of an older change must not undo the newer one.
    refusals = await both.refused(phone_change(cid, "+77020000000", T0 + timedelta(hours=1)))
    assert {r.reason for r in refusals.values()} == {"stale_phone_change"}
    assert await both.phones(cid) == (NEW_PHONE, NEW_PHONE)
    assert len(both.sms.sent) == 1

    # A newer change is applied by both, back to the first phone included.
    await both.deliver(phone_change(cid, PHONE, T0 + timedelta(days=2)))
    assert await both.phones(cid) == (PHONE, PHONE)
    pay, notify = await both.rows(cid)
    assert pay["phone_changed_at"] == notify["phone_changed_at"] == T0 + timedelta(days=2)
    assert [m.address for m in both.sms.sent] == [PHONE, NEW_PHONE]


async def test_a_phone_change_for_an_unknown_customer_is_refused_by_both(both: Both) -> None:
    stranger = uuid4()
    refusals = await both.refused(phone_change(stranger))
    assert {r.reason for r in refusals.values()} == {"unknown_customer"}
    assert_no_personal_data(refusals, NEW_PHONE)
    assert await both.phones(stranger) == (None, None)
    assert both.sms.sent == []
