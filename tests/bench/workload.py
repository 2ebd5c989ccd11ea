"""The payment workload: a seeded mix driven through Kafka, timed end to end.

A payment is *done end to end* when its ``PaymentCompleted`` was seen and notify reported a
``NotificationDelivered`` for that event id; bonus decisions are counted at the end from
``bonus.accrual_decisions``. Latency = from the command produced to the later of the two (for a
payment with a one-time code: from the first command, through reading the SMS and confirming).

Closed loop: every customer has at most one payment in flight (so the newest SMS with a code is
that payment's), and at most ``window`` payments are in flight in total.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID, uuid4, uuid5

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.clock import OffsetFileClock
from shared.contracts.base import Contract
from shared.contracts.billing import RedAccountOpened
from shared.contracts.common import AccountKind, Channel, Funding, Merchant, ServiceCategory
from shared.contracts.customers import CustomerRegistered
from shared.contracts.envelope import encode, envelope_headers, new_envelope
from shared.contracts.payments import ConfirmPayment, PaymentCommand, PayRedBill, PayService, Purchase, TopUp
from shared.ops.platform import Platform
from shared.topics import resolve, topic_for_contract
from shared.trust import Keyring, producer_for
from tests.support.harness import until
from tests.support.trust import platform_keyring

NS = UUID("5a1f3c0e-8a57-4bd5-9b0e-000000000b3c")
OTP_RE = re.compile(r"(?<!\d)\d{6}(?!\d)")
SERVICES = (
    (ServiceCategory.ELECTRICITY, "almaty-energo"),
    (ServiceCategory.MOBILE, "beeline-kz"),
    (ServiceCategory.TAX, "kgd-almaty"),
    (ServiceCategory.INTERNET, "kazakhtelecom"),
    (ServiceCategory.WATER, "almaty-su"),
)
TERMINAL_FAIL = {b"PaymentRejected", b"PaymentFailed", b"PaymentCancelled"}
WATCHED = {b"PaymentPending", b"PaymentCompleted", b"NotificationDelivered", *TERMINAL_FAIL}


@dataclass
class BenchCustomer:
    """A generated customer."""

    n: int
    phone: str
    red: bool

    @property
    def id(self) -> UUID:
        """Deterministic from the number."""
        return uuid5(NS, f"bench-customer-{self.n}")

    @property
    def iin(self) -> str:
        """Deterministic from the number: twelve digits."""
        return f"9{self.n:011d}"


@dataclass
class Flight:
    """One payment in flight."""

    customer: BenchCustomer
    kind: str
    otp: bool
    started: float
    payment_id: str | None = None
    event_id: str | None = None
    completed: float | None = None
    delivered: float | None = None
    failed: str | None = None

    @property
    def done(self) -> float | None:
        """When it was done end to end."""
        if self.completed is None or self.delivered is None:
            return None
        return max(self.completed, self.delivered)


@dataclass
class Result:
    """What one load phase measured."""

    started: float
    measured_from: float
    measured_to: float
    flights: list[Flight] = field(default_factory=list)
    sent: int = 0

    def done(self) -> list[Flight]:
        """Payments done end to end within the measured window."""
        return [
            f for f in self.flights if f.done is not None and self.measured_from <= f.done <= self.measured_to
        ]


def customers(n: int, seed: int, red_share: float = 0.5) -> list[BenchCustomer]:
    """``n`` customers; a share of them have Kaspi Red."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        phone = "+776" + f"{i:08d}"
        out.append(BenchCustomer(i, phone, rng.random() < red_share))
    return out


class Driver:
    """Produces commands, follows events, confirms codes from the SMS gateway."""

    def __init__(self, platform: Platform, seed: int) -> None:
        self.platform = platform
        self.rng = random.Random(seed)
        self.clock = OffsetFileClock(platform.clock_file)
        self.producer = AIOKafkaProducer(bootstrap_servers=platform.endpoints.kafka, linger_ms=2)
        topics = [resolve(t, platform.topic_suffix) for t in ("aqsha.payments.events", "aqsha.notify.events")]
        self.consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=platform.endpoints.kafka,
            group_id=f"bench-{uuid4().hex[:8]}",
            auto_offset_reset="latest",
            enable_auto_commit=False,
        )
        self.by_request: dict[str, Flight] = {}
        self.by_payment: dict[str, Flight] = {}
        self.by_event: dict[str, Flight] = {}
        self.delivered_early: dict[str, float] = {}
        self._follow: asyncio.Task[None] | None = None
        self._idle: asyncio.Queue[BenchCustomer] = asyncio.Queue()
        self._slots = asyncio.Semaphore(1)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sms_before: dict[str, int] = {}
        self.keyring: Keyring | None = None  # the platform's signing keys (start())

    async def start(self) -> None:
        """Keyring, producer and event follower (the follower is assigned before any command goes out)."""
        self.keyring = platform_keyring(self.platform)
        await self.producer.start()
        await self.consumer.start()
        deadline = time.monotonic() + 30
        while not self.consumer.assignment() and time.monotonic() < deadline:
            await self.consumer.getmany(timeout_ms=200)
        await self.consumer.seek_to_end()
        self._follow = asyncio.create_task(self._run_follow())

    async def stop(self) -> None:
        """Stop following and producing."""
        for task in list(self._tasks):
            task.cancel()
        if self._follow is not None:
            self._follow.cancel()
            await asyncio.gather(self._follow, return_exceptions=True)
        await self.consumer.stop()
        await self.producer.stop()

    async def publish(self, payload: Contract, *, wait: bool = False) -> None:
        """Produce a command or upstream event keyed as the registry says, signed by the principal
        that would send it in production (``shared.trust.producer_for``)."""
        assert self.keyring is not None, "start() first"
        principal = producer_for(payload)
        env = new_envelope(payload, producer=principal, occurred_at=self.clock.now())
        topic = resolve(topic_for_contract(env.type).name, self.platform.topic_suffix)
        value, key = encode(env), env.key.encode()
        headers = [(k, v.encode()) for k, v in envelope_headers(env).items()]
        headers += self.keyring.sign(principal, topic, key, value)
        fut = await self.producer.send(topic, value, key=key, headers=headers)
        if wait:
            await fut

    # -- setup
    async def setup(self, people: list[BenchCustomer], pool: asyncpg.Pool, timeout_s: float = 300) -> None:
        """Register everyone, open Red for some, top up GOLD; wait until payments has them all."""
        for c in people:
            await self.publish(
                CustomerRegistered(
                    customer_id=c.id, phone=c.phone, iin=c.iin, full_name=f"Bench Customer {c.n}"
                )
            )
            if c.red:
                await self.publish(
                    RedAccountOpened(
                        customer_id=c.id,
                        limit=300_000_000,
                        opened_on=date(2025, 9, 22),
                        accepted_new_terms=True,
                        loan_payment_day=None,
                    )
                )
        await self.producer.flush()
        ids = [c.id for c in people]
        await _until(
            pool, "SELECT count(*) FROM payments.customers WHERE customer_id = ANY($1)", ids, timeout_s
        )
        for c in people:
            await self.publish(
                TopUp(
                    request_id=uuid4(),
                    customer_id=c.id,
                    channel=Channel.TERMINAL,
                    account=AccountKind.GOLD,
                    amount=50_000_000,
                )
            )
        await self.producer.flush()
        await _until(
            pool,
            "SELECT count(*) FROM payments.payments WHERE kind = 'TOP_UP' AND customer_id = ANY($1)",
            ids,
            timeout_s,
        )

    # -- the mix
    def _command(self, c: BenchCustomer) -> tuple[PaymentCommand, str, bool]:
        roll = self.rng.random()
        rid = uuid4()
        if roll < 0.70 or (roll >= 0.90 and not c.red):
            category, provider = self.rng.choice(SERVICES)
            otp = self.rng.random() < 0.10
            amount = self.rng.randrange(5_100, 9_000) if otp else self.rng.randrange(500, 4_900)
            cmd: PaymentCommand = PayService(
                request_id=rid,
                customer_id=c.id,
                category=category,
                provider=provider,
                provider_account=f"{c.n:010d}",
                amount=amount * 100,
                iin=c.iin,  # the payer's IIN, as a tax payment needs it (services/payments/identity.toml)
            )
            return cmd, "service", otp
        if roll < 0.90:
            if c.red and self.rng.random() < 0.5:
                amount = self.rng.randrange(4_000, 40_000) * 100
                cmd = Purchase(
                    request_id=rid,
                    customer_id=c.id,
                    merchant=Merchant.KASPI_MAGAZIN,
                    order_id=f"red-{rid.hex[:12]}",
                    amount=amount,
                    funding=Funding.RED,
                )
                return cmd, "red_purchase", False
            cmd = Purchase(
                request_id=rid,
                customer_id=c.id,
                merchant=Merchant.KASPI_QR,
                partner_id="partner-bench-coffee",
                order_id=f"qr-{rid.hex[:12]}",
                amount=self.rng.randrange(500, 4_900) * 100,
                funding=Funding.GOLD,
            )
            return cmd, "qr_purchase", False
        cmd = PayRedBill(request_id=rid, customer_id=c.id, amount=self.rng.randrange(1_000, 3_000) * 100)
        return cmd, "red_bill", False

    async def run(
        self, people: list[BenchCustomer], duration_s: float, window: int, warmup_s: float
    ) -> Result:
        """Keep ``window`` payments in flight for ``duration_s`` (after ``warmup_s``), then drain."""
        for c in people:
            self._idle.put_nowait(c)
        self._slots = asyncio.Semaphore(window)
        started = time.monotonic()
        result = Result(started, started + warmup_s, started + warmup_s + duration_s)
        while time.monotonic() < result.measured_to:
            await self._slots.acquire()
            c = await self._idle.get()
            cmd, kind, otp = self._command(c)
            flight = Flight(c, kind, otp, time.monotonic())
            self.by_request[str(cmd.request_id)] = flight
            result.flights.append(flight)
            result.sent += 1
            if otp:
                flight.payment_id = None
                self._sms_before[c.phone] = len(self.platform.gateways.sms_to(c.phone))
            await self.publish(cmd)
        return result

    async def drain(self, result: Result, timeout_s: float) -> None:
        """Wait until every payment sent is done or failed (or the timeout)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(f.done is not None or f.failed for f in result.flights):
                return
            await asyncio.sleep(0.2)

    # -- following
    def _finish(self, flight: Flight) -> None:
        self._idle.put_nowait(flight.customer)
        self._slots.release()

    async def _run_follow(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=100, max_records=2000)
            now = time.monotonic()
            for records in batches.values():
                for r in records:
                    self._on_record(r, now)

    def _on_record(self, r: Any, now: float) -> None:
        type_ = next((v for k, v in r.headers if k == "aqsha-type"), None)
        if type_ not in WATCHED:
            return
        payload = json.loads(r.value)["payload"]
        if type_ == b"NotificationDelivered":
            flight = self.by_event.get(payload["source_event_id"])
            if flight is None:
                self.delivered_early.setdefault(payload["source_event_id"], now)
            elif flight.delivered is None:
                flight.delivered = now
                self._finish(flight)
            return
        flight = self.by_request.get(payload.get("request_id") or "") or self.by_payment.get(
            payload.get("payment_id") or ""
        )
        if flight is None or flight.completed is not None or flight.failed:
            return
        if type_ == b"PaymentPending":
            if payload.get("status") != "PENDING_CONFIRMATION":
                return  # waiting for a saga reply (Red, bonus): no code to enter
            flight.payment_id = payload["payment_id"]
            self.by_payment[payload["payment_id"]] = flight
            task = asyncio.create_task(self._confirm(flight))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif type_ == b"PaymentCompleted":
            event_id = json.loads(r.value)["event_id"]
            flight.payment_id = payload["payment_id"]
            flight.completed = now
            flight.event_id = event_id
            self.by_event[event_id] = flight
            early = self.delivered_early.pop(event_id, None)
            if early is not None:
                flight.delivered = early
                self._finish(flight)
        else:
            flight.failed = f"{type_.decode()}:{payload.get('reason_code', '')}"
            self._finish(flight)

    async def _confirm(self, flight: Flight) -> None:
        """Read the code from the newest SMS to the customer's phone and confirm the payment."""
        c = flight.customer
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for message in self.platform.gateways.sms_to(c.phone)[self._sms_before.get(c.phone, 0) :]:
                found = OTP_RE.search(str(message.get("text", "")))
                if message.get("event_type") == "OtpRequested" and found:
                    assert flight.payment_id is not None
                    await self.publish(
                        ConfirmPayment(
                            request_id=uuid4(),
                            customer_id=c.id,
                            payment_id=UUID(flight.payment_id),
                            code=found.group(0),
                        )
                    )
                    return
            await asyncio.sleep(0.02)
        flight.failed = "no SMS with a code"
        self._finish(flight)


async def _until(pool: asyncpg.Pool, query: str, ids: list[UUID], timeout_s: float) -> None:
    async def reached() -> bool:
        return bool(await pool.fetchval(query, ids) >= len(ids))

    await until(reached, timeout_s, what=f"setup: {query}", interval_s=0.25)


def batched(items: list[Any], n: int) -> Iterator[list[Any]]:
    """Chunks of ``n``."""
    for i in range(0, len(items), n):
        yield items[i : i + n]
