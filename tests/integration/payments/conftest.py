"""One running payments service per test module (``tests.support.harness``), and the payments vocabulary."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest_asyncio

from services.payments.app import PaymentsRuntime
from services.payments.settings import PaymentsSettings
from shared.clock import ManualClock
from shared.contracts.common import AccountKind, Channel, TariffProfile
from shared.contracts.customers import CustomerRegistered
from shared.contracts.envelope import Envelope
from shared.contracts.payments import TopUp, TopUpCompleted
from shared.settings import Settings
from shared.topics import dlq_name
from tests.support.harness import Service, service_settings, until

START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
#: What payments publishes, and the dead letters of the topics it consumes that the tests drive.
WATCHED = (
    "aqsha.payments.events",
    "aqsha.payments.otp",
    dlq_name("aqsha.payments.commands"),
    dlq_name("aqsha.customers.events"),
)


class Payments(Service):
    """The running payments service, with its clock on ``START`` (a ``ManualClock``)."""

    clock: ManualClock
    settings: PaymentsSettings

    @property
    def runtime(self) -> PaymentsRuntime:
        """The service's runtime (its issuer simulator, its service object)."""
        assert isinstance(self.app, PaymentsRuntime)
        return self.app

    async def for_request(self, customer: UUID, request_id: UUID) -> Envelope[Any]:
        """The first outcome event carrying ``request_id``."""

        def found() -> Envelope[Any] | None:
            for e in self.events.of(customer):
                if getattr(e.payload, "request_id", None) == request_id:
                    return e
            return None

        return await until(found, what=f"an outcome of request {request_id}")

    async def customer(self, *, profile: TariffProfile = TariffProfile.KASPI, gold: int = 0) -> UUID:
        """Register a fresh customer, wait until payments has it, optionally top up GOLD."""
        cid = uuid4()
        await self.publish(
            CustomerRegistered(
                customer_id=cid,
                phone="+77011234567",
                iin="900101300123",
                full_name="Aigerim Sultanova",
                tariff_profile=profile,
            )
        )
        await until(
            lambda: self.pool.fetchval("SELECT count(*) = 2 FROM accounts WHERE customer_id = $1", cid),
            what=f"customer {cid} registered",
        )
        if gold:
            rid = uuid4()
            await self.publish(
                TopUp(
                    request_id=rid,
                    customer_id=cid,
                    channel=Channel.TERMINAL,
                    account=AccountKind.GOLD,
                    amount=gold,
                )
            )
            await self.expect(cid, TopUpCompleted.TYPE, lambda p: p.request_id == rid)
        return cid

    async def balance(self, customer: UUID, kind: str = "GOLD") -> int:
        """A customer account balance."""
        return int(
            await self.pool.fetchval(
                "SELECT balance FROM accounts WHERE customer_id = $1 AND kind = $2", customer, kind
            )
        )

    async def status(self, payment_id: UUID) -> str | None:
        """A payment's status."""
        value = await self.pool.fetchval("SELECT status FROM payments WHERE payment_id = $1", payment_id)
        return str(value) if value is not None else None


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def payments(module_settings: Settings) -> AsyncIterator[Payments]:
    """The payments service, started once for the module (one consumer-group join)."""
    settings = service_settings(
        PaymentsSettings,
        module_settings,
        otp_ttl_s=300,
        saga_timeout_s=60,
        provider_delay_s=30,
        janitor_interval_s=0.05,
    )
    settings.db.max_size = 20
    clock = ManualClock(START)
    runtime = PaymentsRuntime(settings, clock=clock)
    async with Payments.running(runtime, settings, schema="payments", watch=WATCHED, clock=clock) as svc:
        yield svc


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def balanced_ledger(request: Any) -> AsyncIterator[None]:
    """After every test that used the service: the ledger sums to zero and no balance is negative."""
    yield
    if "payments" not in request.fixturenames:
        return
    svc: Payments = request.getfixturevalue("payments")
    assert await svc.pool.fetchval("SELECT coalesce(sum(amount), 0) FROM ledger_entries") == 0
    assert await svc.pool.fetchval("SELECT count(*) FROM accounts WHERE balance < 0") == 0
    # Customer balances equal the sum of their ledger entries.
    mismatched = await svc.pool.fetchval(
        "SELECT count(*) FROM accounts a LEFT JOIN (SELECT customer_id, account, sum(amount) AS s "
        "FROM ledger_entries WHERE customer_id IS NOT NULL GROUP BY 1, 2) l "
        "ON l.customer_id = a.customer_id AND l.account = a.kind WHERE a.balance <> coalesce(l.s, 0)"
    )
    assert mismatched == 0
