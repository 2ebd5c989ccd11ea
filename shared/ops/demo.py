"""The ``make run`` demo: four customers, a month of Kaspi life, every outcome checked.

It talks to the running platform the way its users do: it produces commands and the upstream
events it stands in for (customer registration, Red account opening) to Kafka, each signed by the
outside system that would send it in production (``shared.trust.producer_for``: the app gateway,
the cash network, onboarding, Red origination, ops) with the run's development keyring. It reads
one-time codes from the SMS the customer "received" (notify's SMS webhook, simulated by the
platform), and watches the decoded event stream, which it prints as a live feed. Time is
simulated: the demo moves the platform's shared clock (``shared.clock.OffsetFileClock``) to each
business day of October–November 2025 and sends billing ``RunBusinessDay`` for it.

Every step states what must happen (amounts, fees, bonus, bills, penalties); a missed or different
outcome is recorded, the summary lists every check, and the exit code is non-zero if any failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4, uuid5

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.clock import ALMATY, OffsetFileClock, write_clock_offset
from shared.contracts.base import Contract
from shared.contracts.billing import RedAccountOpened, RedPurchaseApproved, RepaymentApplied, RunBusinessDay
from shared.contracts.common import (
    AccountKind,
    Channel,
    Funding,
    Locale,
    Merchant,
    ServiceCategory,
    TariffProfile,
)
from shared.contracts.customers import CustomerRegistered
from shared.contracts.envelope import ContractError, Envelope, decode, encode, envelope_headers, new_envelope
from shared.contracts.payments import (
    ConfirmPayment,
    DebtLookedUp,
    LookupDebt,
    PaymentPending,
    PayRedBill,
    PayService,
    Purchase,
    TopUp,
    Transfer,
)
from shared.db import create_pool
from shared.kafka import assign_from_beginning
from shared.money import fmt_tiyn
from shared.money import tenge_to_tiyn as tenge
from shared.ops.platform import Platform
from shared.topics import resolve, topic_for_contract
from shared.trust import Keyring, Origin, check_permitted, producer_for

#: ``requested_by`` of the business days the demo runs.
PRODUCER = "aqsha-demo"
NS = UUID("6f0e7f52-7c1e-4f0a-9a55-0d3c1b2a4e10")
OTP_RE = re.compile(r"(?<!\d)\d{6}(?!\d)")
#: SMS that carry a one-time code: payments' own (via notify) and a card issuer's 3-D Secure code.
CODE_SMS = frozenset({"OtpRequested", "IssuerThreeDSecure"})
TERMINAL = {"PaymentCompleted", "PaymentFailed", "PaymentRejected", "TopUpCompleted", "TransferCompleted"}
#: payments' replies to a LookupDebt.
LOOKUP_REPLIES = {"DebtLookedUp", "DebtLookupFailed"}
FEED_TOPICS = (
    "aqsha.customers.events",
    "aqsha.red.accounts",
    "aqsha.payments.events",
    "aqsha.payments.otp",
    "aqsha.bonus.events",
    "aqsha.billing.events",
    "aqsha.notify.events",
)


@dataclass(frozen=True)
class Customer:
    """A demo customer."""

    name: str
    phone: str
    iin: str
    locale: Locale
    tariff: TariffProfile
    email: str | None

    @property
    def id(self) -> UUID:
        """Deterministic id from the name."""
        return uuid5(NS, self.name)

    @property
    def first_name(self) -> str:
        """For the feed."""
        return self.name.split()[0]


AIGERIM = Customer(
    "Айгерим Касымова",
    "+77011234567",
    "900101300123",
    Locale.KK,
    TariffProfile.HOMEBANK,
    "aigerim@example.kz",
)
DMITRY = Customer("Дмитрий Ли", "+77021234568", "850505400234", Locale.RU, TariffProfile.KASPI, None)
SARAH = Customer(
    "Sarah Miller", "+77051234569", "920303450345", Locale.EN, TariffProfile.HOMEBANK, "sarah@example.com"
)
NURLAN = Customer("Нурлан Сапаров", "+77071234560", "880808300456", Locale.RU, TariffProfile.KASPI, None)
CUSTOMERS = (AIGERIM, DMITRY, SARAH, NURLAN)
RED_CUSTOMERS = (AIGERIM, DMITRY, SARAH)
RED_LIMIT = tenge(300_000)
RED_OPENED = date(2025, 9, 22)  # billing day: the 22nd
START = datetime(2025, 10, 20, 9, 0, tzinfo=ALMATY)
LAST_DAY = date(2025, 11, 26)


# -- checks -----------------------------------------------------------------------------------------
@dataclass
class Checks:
    """Every expectation of the demo and whether it held."""

    results: list[tuple[str, bool, str]] = field(default_factory=list)
    say: Callable[[str], None] = print

    def expect(self, what: str, ok: bool, detail: str = "") -> bool:
        """Record one expectation."""
        self.results.append((what, ok, detail))
        mark = "✔" if ok else "✘"
        self.say(f"    {mark} {what}" + ("" if ok or not detail else f" — {detail}"))
        return ok

    def equal(self, what: str, actual: object, expected: object) -> bool:
        """``actual == expected``."""
        return self.expect(what, actual == expected, f"expected {expected!r}, got {actual!r}")

    @property
    def failed(self) -> list[tuple[str, bool, str]]:
        """The expectations that did not hold."""
        return [r for r in self.results if not r[1]]


# -- the live feed ----------------------------------------------------------------------------------
def _money_fields(payload: dict[str, Any]) -> str:
    parts = []
    for key in (
        "amount",
        "debt",
        "fee",
        "total",
        "bonus_amount",
        "penalty",
        "outstanding",
        "balance_after",
        "available_after",
        "outstanding_after",
        "refunded_to_gold",
    ):
        value = payload.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and (value or key in ("amount", "debt")):
            parts.append(f"{key.replace('_', ' ')} {fmt_tiyn(value)}")
    return ", ".join(parts)


def describe(env: Envelope[Contract], names: dict[str, str]) -> str:
    """One readable line for an event (codes are never printed)."""
    p = env.payload.model_dump(mode="json")
    who = names.get(str(p.get("customer_id", "")), env.key[:8])
    extra: list[str] = []
    for key in (
        "kind",
        "status",
        "category",
        "merchant",
        "reason_code",
        "rule_id",
        "channel",
        "event_type",
        "statement_date",
        "credited_on",
        "applied_on",
        "reason",
    ):
        if p.get(key):
            extra.append(str(p[key]))
    if env.type == "BillIssued":
        extra.append(f"due {datetime.fromisoformat(p['due_at']).astimezone(ALMATY):%d.%m %H:%M}")
    if env.type == "OtpRequested":
        extra.append(f"code ****** by SMS to {p['phone'][:5]}*****{p['phone'][-2:]}")
    if env.type == "RepaymentApplied":
        a = p["allocation"]
        early = sum(x["amount"] for x in a["to_purchases"])
        story = f"bill {fmt_tiyn(a['to_bill'])}, purchases {fmt_tiyn(early)}"
        if a.get("prepayment_used"):
            story = f"with earlier prepayment {fmt_tiyn(a['prepayment_used'])}: " + story
        if a.get("carried"):
            story += f", carried {fmt_tiyn(a['carried'])}"
        if a.get("refunded_to_gold"):
            story += f", back to Gold {fmt_tiyn(a['refunded_to_gold'])}"
        extra.append(story)
    if p.get("receipt"):
        extra.append(f"receipt {p['receipt']['receipt_number']}")
    if env.type in LOOKUP_REPLIES:
        extra.insert(0, f"{p['provider']} {p['provider_account']}")
    if env.type == "DebtLookedUp":
        if p.get("owner_name") or p.get("owner_address"):
            extra.append("· owner's name and address shown (masked here)")
        extra.append("· IIN required to pay" if p.get("iin_required") else "· no IIN needed to pay")
    money = _money_fields(p)
    return f"{env.type:<24} {who:<9} {' · '.join(x for x in (money, ' '.join(extra)) if x)}"


@dataclass
class Feed:
    """Consumes the event topics (no consumer group), prints each event, and lets steps wait for one."""

    client: dict[str, Any]  # aiokafka keyword arguments: bootstrap servers and login
    suffix: str
    names: dict[str, str]
    clock: OffsetFileClock
    say: Callable[[str], None] = print
    seen: list[Envelope[Contract]] = field(default_factory=list)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _consumer: AIOKafkaConsumer | None = None
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Assign every partition of the feed topics from the beginning and start consuming."""
        consumer = AIOKafkaConsumer(**self.client, enable_auto_commit=False, group_id=None)
        await consumer.start()
        await assign_from_beginning(consumer, [resolve(name, self.suffix) for name in FEED_TOPICS])
        self._consumer = consumer
        self._task = asyncio.create_task(self._run(), name="demo-feed")

    async def _run(self) -> None:
        assert self._consumer is not None
        async for record in self._consumer:
            try:
                env = decode(record.value or b"")
            except ContractError:
                continue
            at = self.clock.now().astimezone(ALMATY)
            if env.type != "NotificationDelivered":
                self.say(f"  {at:%d.%m %H:%M}  {describe(env, self.names)}")
            async with self._changed:
                self.seen.append(env)
                self._changed.notify_all()

    async def wait(
        self, what: str, predicate: Callable[[Envelope[Contract]], bool], timeout_s: float = 45.0
    ) -> Envelope[Contract]:
        """The first event (seen or arriving) matching ``predicate``; ``TimeoutError`` naming ``what``."""
        deadline = time.monotonic() + timeout_s
        checked = 0
        async with self._changed:
            while True:
                for env in self.seen[checked:]:
                    if predicate(env):
                        return env
                checked = len(self.seen)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {what} within {timeout_s:.0f}s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), left)

    def of(self, type_name: str, **fields: object) -> list[Envelope[Contract]]:
        """Seen events of a type whose payload has these field values."""
        return [e for e in self.seen if e.type == type_name and _has(e, fields)]

    async def stop(self) -> None:
        """Stop consuming."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()


def _has(env: Envelope[Contract], fields: dict[str, object]) -> bool:
    return all(getattr(env.payload, k, None) == v for k, v in fields.items())


def platform_keyring(platform: Platform) -> Keyring:
    """The signing keys of the outside systems the demo acts for: the run's ``trust.keys_dir``."""
    keys_dir = platform.settings().trust.keys_dir
    if keys_dir is None:
        raise RuntimeError("the platform has no development keyring (AQSHA_TRUST_KEYS_DIR): prepare() it")
    return Keyring.from_dir(Path(keys_dir))


# -- the demo ---------------------------------------------------------------------------------------
@dataclass
class Demo:
    """The scenario over a running platform."""

    platform: Platform
    say: Callable[[str], None] = print
    checks: Checks = field(init=False)
    feed: Feed = field(init=False)
    producer: AIOKafkaProducer = field(init=False)
    keyring: Keyring = field(init=False)
    clock: OffsetFileClock = field(init=False)
    pool: asyncpg.Pool | None = None
    billing_pool: asyncpg.Pool | None = None
    #: What Sarah's overpaying repayment said: (earlier prepayment used, returned to Gold), tiyn.
    sarah_story: tuple[int, int] | None = None
    #: The next bill each customer's calendar announced, to compare with the bill then issued.
    forecasts: dict[UUID, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.checks = Checks(say=self.say)
        self.clock = OffsetFileClock(self.platform.clock_file)
        names = {str(c.id): c.first_name for c in CUSTOMERS}
        self.feed = Feed(self.platform.endpoints.client_kwargs("demo-feed"), self.platform.topic_suffix,
                         names, self.clock, self.say)  # fmt: skip

    # -- plumbing
    def at(self, moment: datetime) -> None:
        """Move the platform's simulated clock."""
        write_clock_offset(self.platform.clock_file, moment)
        self.clock.offset()

    async def publish(self, payload: Contract, *, key: str | None = None) -> Envelope[Contract]:
        """Produce a command or upstream event to its topic, keyed as the registry says, and signed.

        The producer and signer is the outside system that sends it in production
        (``shared.trust.producer_for``: for payments commands the channel and funding decide).
        """
        principal = producer_for(payload)
        signer = self.keyring.signer(principal)
        env = new_envelope(payload, key=key, producer=principal, occurred_at=self.clock.now())
        spec = topic_for_contract(env.type)
        topic = resolve(spec.name, self.platform.topic_suffix)
        value, record_key = encode(env), env.key.encode()
        # What the services would refuse (channel rule, writers, keys) is a demo bug: fail here, clearly.
        check_permitted(spec, Origin(principal, signer.key_id), env, record_key)
        headers = [(k, v.encode()) for k, v in envelope_headers(env).items()]
        headers += signer.sign_list(topic, record_key, value)
        await self.producer.send_and_wait(topic, value, key=record_key, headers=headers)
        return env

    def step(self, title: str) -> None:
        """Announce a step."""
        at = self.clock.now().astimezone(ALMATY)
        self.say(f"\n▶ {at:%a %d.%m.%Y %H:%M} — {title}")

    async def sql(self, query: str, *args: object) -> Any:
        """One value from the platform's database."""
        assert self.pool is not None
        return await self.pool.fetchval(query, *args)

    async def until_sql(self, what: str, query: str, *args: object, timeout_s: float = 45.0) -> None:
        """Wait until ``query`` returns a true value."""
        deadline = time.monotonic() + timeout_s
        while not await self.sql(query, *args):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not happen within {timeout_s:.0f}s")
            await asyncio.sleep(0.1)

    async def code_for(self, customer: Customer, sms_before: int) -> str:
        """The one-time code from the newest SMS the customer received."""
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            messages = self.platform.gateways.sms_to(customer.phone)[sms_before:]
            for message in messages:
                found = OTP_RE.search(str(message.get("text", "")))
                if message.get("event_type") in CODE_SMS and found:
                    return found.group(0)
            await asyncio.sleep(0.1)
        raise TimeoutError(f"no SMS with a code reached {customer.first_name}")

    async def pay(self, customer: Customer, command: Any) -> Envelope[Contract]:
        """Send a payment command, confirm it with the SMS code if asked, return its final outcome."""
        sms_before = len(self.platform.gateways.sms_to(customer.phone))
        await self.publish(command)
        rid = command.request_id
        outcome = await self.feed.wait(
            f"outcome of {command.TYPE}",
            lambda e: (
                getattr(e.payload, "request_id", None) == rid
                and (e.type in TERMINAL or getattr(e.payload, "status", None) == "PENDING_CONFIRMATION")
            ),
        )
        if outcome.type == "PaymentPending":
            code = await self.code_for(customer, sms_before)
            self.say(f"    {customer.first_name} reads the SMS and enters the code")
            assert isinstance(outcome.payload, PaymentPending)
            payment_id = outcome.payload.payment_id
            confirm = ConfirmPayment(
                request_id=uuid4(), customer_id=customer.id, payment_id=payment_id, code=code
            )
            await self.publish(confirm)
            outcome = await self.feed.wait(
                "payment completion after the code",
                lambda e: e.type in TERMINAL and getattr(e.payload, "payment_id", None) == payment_id,
            )
        return outcome

    async def lookup(self, customer: Customer, provider: str, account: str) -> Envelope[Contract]:
        """Check the debt on an account (seed 000, "Checkskuld"): send LookupDebt, return payments' reply."""
        command = LookupDebt(
            request_id=uuid4(), customer_id=customer.id, provider=provider, provider_account=account
        )
        await self.publish(command)
        return await self.feed.wait(
            "reply to LookupDebt",
            lambda e: (
                e.type in LOOKUP_REPLIES and getattr(e.payload, "request_id", None) == command.request_id
            ),
        )

    async def gold(self, customer: Customer) -> int:
        """The customer's Kaspi Gold balance in payments."""
        value = await self.sql(
            "SELECT balance FROM payments.accounts WHERE customer_id = $1 AND kind = 'GOLD'", customer.id
        )
        return int(value or 0)

    async def expect_completed(self, what: str, outcome: Envelope[Contract], **fields: object) -> Any:
        """The outcome is a completion with these field values."""
        ok = outcome.type in {"PaymentCompleted", "TopUpCompleted", "TransferCompleted"}
        self.checks.expect(
            f"{what}: completed", ok, f"got {outcome.type} {outcome.payload.model_dump(mode='json')}"
        )
        for name, expected in fields.items():
            self.checks.equal(f"{what}: {name}", getattr(outcome.payload, name, None), expected)
        return outcome.payload

    async def event(self, what: str, type_name: str, **fields: object) -> Envelope[Contract] | None:
        """Wait for an event with these payload values; record the expectation."""
        try:
            env = await self.feed.wait(what, lambda e: e.type == type_name and _has(e, fields))
        except TimeoutError as exc:
            self.checks.expect(what, False, str(exc))
            return None
        self.checks.expect(what, True)
        return env

    async def run_day(self, day: date) -> None:
        """Move the clock to 09:00 of ``day`` and run billing's business day for it."""
        self.at(datetime.combine(day, datetime.min.time(), tzinfo=ALMATY).replace(hour=9))
        await self.publish(RunBusinessDay(business_date=day, requested_by=PRODUCER), key=day.isoformat())
        await self.until_sql(
            f"business day {day}",
            "SELECT count(*) FROM billing.business_day_runs WHERE business_date = $1",
            day,
        )

    async def calendar(self, customer: Customer) -> dict[str, Any]:
        """Print the customer's bill calendar in the feed (billing's read model, as the app shows it)."""
        from services.billing.queries import bill_calendar
        from shared.ops.service_tools import render_calendar_month

        assert self.billing_pool is not None
        cal = await bill_calendar(self.billing_pool, customer.id)
        if cal is None:
            raise LookupError(f"{customer.first_name} has no Kaspi Red account")
        at = self.clock.now().astimezone(ALMATY)
        nxt = cal["next_bill"]
        head = (
            f"next bill {nxt['statement_date']:%d.%m.%Y}: {fmt_tiyn(nxt['amount'])}"
            if nxt
            else "no bill to come"
        )
        self.say(f"  {at:%d.%m %H:%M}  {'BillCalendar':<24} {customer.first_name:<9} {head}")
        for month in cal["months"]:
            for line in render_calendar_month(month, indent=" " * 15):
                self.say(line)
        return cal

    async def expect_next_bill(
        self, customer: Customer, statement_date: date, amount: int, **fields: int
    ) -> dict[str, Any] | None:
        """The calendar announces the next bill (002 Q15762) on ``statement_date`` for ``amount``."""
        cal = await self.calendar(customer)
        nxt: dict[str, Any] | None = cal["next_bill"]
        shown = (nxt["statement_date"], nxt["amount"]) if nxt else None
        self.checks.equal(
            f"{customer.first_name}'s calendar: next bill {statement_date:%d.%m} of {fmt_tiyn(amount)}",
            shown,
            (statement_date, amount),
        )
        for name, expected in fields.items():
            self.checks.equal(
                f"{customer.first_name}'s next bill: {name}", nxt.get(name) if nxt else None, expected
            )
        if nxt is not None:
            self.forecasts[customer.id] = nxt
        return nxt

    def expect_as_announced(self, customer: Customer, issued: Envelope[Contract] | None) -> None:
        """The bill issued is the one the calendar announced: date, amount, due time and parts."""
        forecast = self.forecasts.pop(customer.id, None)
        if issued is None or forecast is None:
            self.checks.expect(f"{customer.first_name}'s bill as the calendar announced it", False, "missing")
            return
        bill = issued.payload
        got = (
            getattr(bill, "statement_date", None),
            getattr(bill, "amount", None),
            getattr(bill, "due_at", None),
            [(ln.purchase_id, ln.part_no, ln.amount) for ln in getattr(bill, "lines", [])],
        )
        announced = (
            forecast["statement_date"],
            forecast["amount"],
            forecast["due_at"],
            [(ln["purchase_id"], ln["part_no"], ln["amount"]) for ln in forecast["lines"]],
        )
        self.checks.equal(f"{customer.first_name}'s bill is the one the calendar announced", got, announced)

    # -- the story
    async def run(self) -> int:
        """The whole scenario; returns the exit code."""
        self.keyring = platform_keyring(self.platform)
        self.producer = AIOKafkaProducer(**self.platform.endpoints.client_kwargs("demo"), acks="all")
        await self.producer.start()
        self.pool = await asyncpg.create_pool(self.platform.dsn, min_size=1, max_size=2)
        self.billing_pool = await create_pool(self.platform.dsn, "billing", min_size=1, max_size=1)
        self.at(START)
        await self.feed.start()
        try:
            try:
                await self.scenario()
            except Exception as exc:  # a step that could not go on: recorded, the summary still prints
                self.checks.expect("the scenario ran to its end", False, f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(TimeoutError):
                await self.platform.quiesce(60)
            try:
                await self.summary()
            except Exception as exc:
                self.checks.expect("the summary was read", False, f"{type(exc).__name__}: {exc}")
        finally:
            await self.feed.stop()
            await self.producer.stop()
            await self.pool.close()
            await self.billing_pool.close()
        failed = self.checks.failed
        self.say(f"\n{len(self.checks.results) - len(failed)}/{len(self.checks.results)} expectations held")
        for what, _, detail in failed:
            self.say(f"  ✘ {what} — {detail}")
        return 1 if failed else 0

    async def scenario(self) -> None:
        """Registration, top-ups, payments, purchases, Red, and a month of business days."""
        c = self.checks
        self.step("four customers register (ru, kk, en) and three open Kaspi Red with a 300 000 ₸ limit")
        for cust in CUSTOMERS:
            await self.publish(
                CustomerRegistered(
                    customer_id=cust.id,
                    phone=cust.phone,
                    iin=cust.iin,
                    full_name=cust.name,
                    locale=cust.locale,
                    tariff_profile=cust.tariff,
                    email=cust.email,
                )
            )
        for cust in RED_CUSTOMERS:
            await self.publish(
                RedAccountOpened(
                    customer_id=cust.id,
                    limit=RED_LIMIT,
                    opened_on=RED_OPENED,
                    accepted_new_terms=True,
                    loan_payment_day=None,
                )
            )
        ids = [cust.id for cust in CUSTOMERS]
        await self.until_sql(
            "payments knows all customers",
            "SELECT count(*) = 4 FROM payments.customers WHERE customer_id = ANY($1)",
            ids,
        )
        await self.until_sql(
            "notify knows all customers",
            "SELECT count(*) = 4 FROM notify.customers WHERE customer_id = ANY($1)",
            ids,
        )
        await self.until_sql("billing opened three Red accounts", "SELECT count(*) = 3 FROM billing.accounts")
        c.expect("customers registered in payments and notify; three Red accounts open", True)

        self.step("cash top-ups at a terminal and an ATM")
        for cust, amount, channel in (
            (AIGERIM, 150_000, Channel.TERMINAL),
            (DMITRY, 100_000, Channel.ATM),
            (SARAH, 200_000, Channel.TERMINAL),
            (NURLAN, 5_000, Channel.ATM),
        ):
            out = await self.pay(
                cust,
                TopUp(
                    request_id=uuid4(),
                    customer_id=cust.id,
                    channel=channel,
                    account=AccountKind.GOLD,
                    amount=tenge(amount),
                ),
            )
            await self.expect_completed(
                f"{cust.first_name} tops up {amount} ₸", out, balance_after=tenge(amount)
            )

        self.step(
            "utility, mobile and tax payments (fees from each customer's tariff; the debt checked "
            "before paying, the IIN matched for taxes)"
        )
        self.say("    Дмитрий checks his electricity debt first (seed 000: enter the account, see the debt)")
        gold_before = await self.gold(DMITRY)
        mistyped = await self.lookup(DMITRY, "almaty-energo", "4400123465")
        c.equal(
            "a mistyped account number is not found",
            (mistyped.type, getattr(mistyped.payload, "reason_code", None)),
            ("DebtLookupFailed", "UNKNOWN_PROVIDER_ACCOUNT"),
        )
        looked = await self.lookup(DMITRY, "almaty-energo", "4400123456")
        debt = looked.payload.debt if isinstance(looked.payload, DebtLookedUp) else None
        c.equal("Дмитрий's electricity debt is shown: 8 450 ₸", debt, tenge(8_450))
        c.expect(
            "with the owner's name and address (this provider shows them; masked in the feed)",
            isinstance(looked.payload, DebtLookedUp)
            and looked.payload.owner_name is not None
            and looked.payload.owner_address is not None,
        )
        c.equal("the lookups moved no money", await self.gold(DMITRY), gold_before)
        out = await self.pay(
            DMITRY,
            PayService(
                request_id=uuid4(),
                customer_id=DMITRY.id,
                category=ServiceCategory.ELECTRICITY,
                provider="almaty-energo",
                provider_account="4400123456",
                amount=debt or tenge(8_450),
            ),
        )
        await self.expect_completed(
            "Дмитрий pays exactly the debt shown, 8 450 ₸ (> 5 000 ₸: code by SMS)",
            out,
            amount=debt,
            fee=0,
            total=tenge(8_450),
        )
        out = await self.pay(
            AIGERIM,
            PayService(
                request_id=uuid4(),
                customer_id=AIGERIM.id,
                category=ServiceCategory.MOBILE,
                provider="beeline-kz",
                provider_account="7011234567",
                amount=tenge(2_000),
            ),
        )
        await self.expect_completed("Айгерим pays mobile 2 000 ₸ (Homebank fee 35 ₸)", out, fee=tenge(35))
        out = await self.pay(
            SARAH,
            PayService(
                request_id=uuid4(),
                customer_id=SARAH.id,
                category=ServiceCategory.TAX,
                provider="kgd-almaty",
                provider_account="KBK-104402",
                amount=tenge(4_500),
                iin=SARAH.iin,
            ),
        )
        await self.expect_completed(
            "Sarah pays tax 4 500 ₸ with her IIN, which matches (Homebank tier fee 25 ₸)", out, fee=tenge(25)
        )
        gold_before = await self.gold(SARAH)
        out = await self.pay(
            SARAH,
            PayService(
                request_id=uuid4(),
                customer_id=SARAH.id,
                category=ServiceCategory.TAX,
                provider="kgd-almaty",
                provider_account="KBK-104402",
                amount=tenge(4_500),
                iin=SARAH.iin[:-2] + SARAH.iin[-1] + SARAH.iin[-2],  # two digits swapped
            ),
        )
        c.equal(
            "a tax payment with a mistyped IIN is declined: IDENTITY_MISMATCH",
            (out.type, getattr(out.payload, "reason_code", None)),
            ("PaymentRejected", "IDENTITY_MISMATCH"),
        )
        c.equal("nothing was debited for it", await self.gold(SARAH), gold_before)
        out = await self.pay(
            AIGERIM,
            Transfer(
                request_id=uuid4(),
                customer_id=AIGERIM.id,
                to_customer_id=NURLAN.id,
                amount=tenge(3_000),
            ),
        )
        transfer = await self.expect_completed("Айгерим sends Нурлан 3 000 ₸", out, amount=tenge(3_000))

        self.step(
            "Kaspi QR purchases at a partner with a 10 % promo, then Kaspi Magazin paid partly with bonus"
        )
        for cust, amount in ((AIGERIM, 4_800), (SARAH, 3_000)):
            out = await self.pay(
                cust,
                Purchase(
                    request_id=uuid4(),
                    customer_id=cust.id,
                    merchant=Merchant.KASPI_QR,
                    partner_id="partner-demo-coffee",
                    order_id=f"qr-{uuid4().hex[:8]}",
                    amount=tenge(amount),
                    funding=Funding.GOLD,
                ),
            )
            paid = await self.expect_completed(f"{cust.first_name} pays {amount} ₸ by Kaspi QR", out)
            await self.event(
                f"{cust.first_name} earns {amount // 10} ₸ promo cashback",
                "BonusAccrued",
                payment_id=getattr(paid, "payment_id", None),
                amount=tenge(amount // 10),
            )
        out = await self.pay(
            SARAH,
            Purchase(
                request_id=uuid4(),
                customer_id=SARAH.id,
                merchant=Merchant.KASPI_MAGAZIN,
                order_id="mg-1001",
                amount=tenge(2_000),
                funding=Funding.GOLD,
                bonus_amount=tenge(300),
            ),
        )
        paid = await self.expect_completed(
            "Sarah buys in Kaspi Magazin for 2 000 ₸, 300 ₸ of it in bonus", out, bonus_amount=tenge(300)
        )
        await self.event(
            "bonus redeemed: 300 ₸, Sarah's bonus balance 0",
            "BonusRedeemed",
            payment_id=getattr(paid, "payment_id", None),
            amount=tenge(300),
            balance_after=0,
        )

        await self.card_payments()

        self.step("Kaspi Red purchases in Kaspi Magazin, split into 4 monthly parts")
        plans: dict[str, int] = {}
        for cust, amount in ((AIGERIM, 40_000), (DMITRY, 60_000), (SARAH, 24_000)):
            out = await self.pay(
                cust,
                Purchase(
                    request_id=uuid4(),
                    customer_id=cust.id,
                    merchant=Merchant.KASPI_MAGAZIN,
                    order_id=f"red-{uuid4().hex[:8]}",
                    amount=tenge(amount),
                    funding=Funding.RED,
                ),
            )
            paid = await self.expect_completed(
                f"{cust.first_name} buys for {amount} ₸ with Red", out, funding=Funding.RED
            )
            approved = await self.event(
                f"{cust.first_name}'s plan: 4 × {amount // 4} ₸",
                "RedPurchaseApproved",
                payment_id=getattr(paid, "payment_id", None),
                available_after=RED_LIMIT - tenge(amount),
            )
            if approved is not None:
                assert isinstance(approved.payload, RedPurchaseApproved)
                parts = list(approved.payload.parts)
                c.equal(f"{cust.first_name}'s parts", parts, [tenge(amount // 4)] * 4)
            plans[cust.first_name] = amount

        await self.month_of_business_days(transfer_total=int(getattr(transfer, "total", 0)))

    async def card_payments(self) -> None:
        """seed 003: payments with other banks' cards, decided by the card's issuer (simulated)."""
        c = self.checks
        self.step("payments with other banks' cards: the issuer's restriction, 3-D Secure, an outage")

        def flight(token: str) -> PayService:
            return PayService(
                request_id=uuid4(),
                customer_id=SARAH.id,
                category=ServiceCategory.FLIGHT,
                provider="air-astana",
                provider_account="PNR-7Q2X",
                amount=tenge(60_000),
                funding=Funding.EXTERNAL_CARD,
                card_token=token,
            )

        gold = await self.gold(SARAH)
        out = await self.pay(SARAH, flight("tok_qazkom_visa_plain"))
        c.equal(
            "Sarah's 60 100 ₸ flight (≈ 111 USD) on a card without 3-D Secure: declined, ISSUER_RESTRICTION",
            (out.type, getattr(out.payload, "reason_code", None)),
            ("PaymentFailed", "ISSUER_RESTRICTION"),
        )
        await self.nothing_debited("for the declined card payment", out, SARAH, gold)
        await self.told(SARAH, out, "3-D Secure")
        self.say("    her other card has 3-D Secure: her bank sends its own code by SMS, which she enters")
        out = await self.pay(SARAH, flight("tok_qazkom_visa_3ds"))
        paid = await self.expect_completed(
            "the same flight on her card with 3-D Secure, confirmed with the issuer's code",
            out,
            funding=Funding.EXTERNAL_CARD,
            fee=tenge(100),
            total=tenge(60_100),
        )
        charges = await self.sql(
            "SELECT count(*) FROM payments.ledger_entries "
            "WHERE payment_id = $1 AND posting_kind = 'HOLD' AND account = 'EXTERNAL_CARDS'",
            getattr(paid, "payment_id", None),
        )
        c.equal("the card was charged once, not her Kaspi Gold", (charges, await self.gold(SARAH)), (1, gold))

        gold = await self.gold(NURLAN)
        out = await self.pay(
            NURLAN,
            PayService(
                request_id=uuid4(),
                customer_id=NURLAN.id,
                category=ServiceCategory.MOBILE,
                provider="kcell",
                provider_account="7071234560",
                amount=tenge(1_500),
                funding=Funding.EXTERNAL_CARD,
                card_token="tok_down_visa",
            ),
        )
        c.equal(
            "Нурлан's card payment while its bank is down: declined, ISSUER_UNAVAILABLE",
            (out.type, getattr(out.payload, "reason_code", None)),
            ("PaymentFailed", "ISSUER_UNAVAILABLE"),
        )
        await self.nothing_debited("while the issuer was unavailable", out, NURLAN, gold)
        await self.told(NURLAN, out, "недоступен")

        self.say("    Дмитрий pays by card; the issuer charges it but its answer is lost (a timeout)")
        out = await self.pay(
            DMITRY,
            PayService(
                request_id=uuid4(),
                customer_id=DMITRY.id,
                category=ServiceCategory.INTERNET,
                provider="kazakhtelecom",
                provider_account="7272500123",
                amount=tenge(3_000),
                funding=Funding.EXTERNAL_CARD,
                card_token="tok_slow_mc",
            ),
        )
        paid = await self.expect_completed(
            "the outcome was unknown; the janitor asked the issuer again and the payment completed",
            out,
            funding=Funding.EXTERNAL_CARD,
            total=tenge(3_000),
        )
        pid = getattr(paid, "payment_id", None)
        asked = await self.sql("SELECT attempts FROM payments.card_payments WHERE payment_id = $1", pid)
        charges = await self.sql(
            "SELECT count(*) FROM payments.ledger_entries "
            "WHERE payment_id = $1 AND posting_kind = 'HOLD' AND account = 'EXTERNAL_CARDS'",
            pid,
        )
        c.equal("asked twice with the same payment id, charged once", (asked, charges), (2, 1))

    async def nothing_debited(self, what: str, out: Envelope[Contract], who: Customer, gold: int) -> None:
        """No ledger entry for the payment, and the customer's Gold unchanged."""
        entries = await self.sql(
            "SELECT count(*) FROM payments.ledger_entries WHERE payment_id = $1",
            getattr(out.payload, "payment_id", None),
        )
        self.checks.equal(f"nothing debited {what}", (entries, await self.gold(who)), (0, gold))

    async def told(self, customer: Customer, out: Envelope[Contract], words: str) -> None:
        """The customer's inbox explains the failure in their language."""
        query = (
            "SELECT body FROM notify.deliveries WHERE source_event_id = $1 AND channel = 'inbox' "
            "AND status = 'SENT' AND locale = $2"
        )
        try:
            await self.until_sql("the inbox message", query, out.event_id, customer.locale.value)
        except TimeoutError as exc:
            self.checks.expect(f"{customer.first_name} is told why", False, str(exc))
            return
        body = str(await self.sql(query, out.event_id, customer.locale.value))
        self.checks.expect(
            f"{customer.first_name} is told why, in {customer.locale.value}: …{words}…", words in body, body
        )

    async def month_of_business_days(self, *, transfer_total: int) -> None:
        """Business days 21.10–26.11.2025 with the repayments in between."""
        c = self.checks
        day = START.date() + timedelta(days=1)
        self.step(f"business days from {day:%d.%m} to {LAST_DAY:%d.%m} (billing day: the 22nd)")
        due_first = datetime(2025, 11, 24, 20, 0, tzinfo=ALMATY)  # 22.11 is a Saturday → Monday 24.11
        while day <= LAST_DAY:
            await self.run_day(day)
            if day == date(2025, 10, 21):
                self.step(
                    "the bill calendar before the first bills: the next bill is known in advance (Q15762)"
                )
                for cust, amount in ((AIGERIM, 10_000), (DMITRY, 15_000), (SARAH, 6_000)):
                    await self.expect_next_bill(cust, date(2025, 10, 22), tenge(amount))
            if day == date(2025, 10, 22):
                self.step("bills issued on the 22nd, due 22.11 → moved off the weekend to Mon 24.11 20:00")
                for cust, amount in ((AIGERIM, 10_000), (DMITRY, 15_000), (SARAH, 6_000)):
                    issued = await self.event(
                        f"{cust.first_name}'s first bill: {amount} ₸ due 24.11 20:00",
                        "BillIssued",
                        customer_id=cust.id,
                        amount=tenge(amount),
                        due_at=due_first,
                    )
                    self.expect_as_announced(cust, issued)
            if day == date(2025, 10, 27):
                self.at(datetime(2025, 10, 27, 12, 0, tzinfo=ALMATY))
                self.step("Sarah pays 7 000 ₸ on her 6 000 ₸ bill: 1 000 ₸ counts toward the next bill (001)")
                out = await self.pay(
                    SARAH,
                    PayRedBill(
                        request_id=uuid4(), customer_id=SARAH.id, amount=tenge(7_000), funding=Funding.GOLD
                    ),
                )
                paid = await self.expect_completed("Sarah's repayment", out, amount=tenge(7_000))
                await self.event("Sarah's bill is paid", "BillPaid", customer_id=SARAH.id)
                carried = await self.event(
                    "6 000 ₸ to the bill, 1 000 ₸ carried",
                    "RepaymentApplied",
                    payment_id=getattr(paid, "payment_id", None),
                )
                if carried is not None and isinstance(carried.payload, RepaymentApplied):
                    a = carried.payload.allocation
                    c.equal(
                        "Sarah's allocation: bill, carried",
                        (a.to_bill, a.carried),
                        (tenge(6_000), tenge(1_000)),
                    )
                await self.expect_next_bill(SARAH, date(2025, 11, 22), tenge(5_000), prepayment=tenge(1_000))
            if day == date(2025, 11, 10):
                self.at(datetime(2025, 11, 10, 18, 30, tzinfo=ALMATY))
                self.step(
                    "Sarah pays 20 000 ₸ cash at a terminal: with her 1 000 ₸ prepayment, more than the "
                    "18 000 ₸ she owes"
                )
                out = await self.pay(
                    SARAH,
                    PayRedBill(
                        request_id=uuid4(),
                        customer_id=SARAH.id,
                        channel=Channel.TERMINAL,
                        amount=tenge(20_000),
                        funding=Funding.CASH,
                    ),
                )
                cash = await self.expect_completed("Sarah's cash repayment", out, amount=tenge(20_000))
                await self.event(
                    "the purchase is repaid in full: her limit is back (+24 000 ₸)",
                    "LimitRestored",
                    customer_id=SARAH.id,
                    amount=tenge(24_000),
                    available_after=RED_LIMIT,
                )
                gold = await self.event(
                    "the excess 3 000 ₸ goes back to her Kaspi Gold",
                    "OverpaymentRefunded",
                    customer_id=SARAH.id,
                    amount=tenge(3_000),
                )
                story = await self.event(
                    "RepaymentApplied v2 tells the whole story",
                    "RepaymentApplied",
                    payment_id=getattr(cash, "payment_id", None),
                )
                if story is not None and isinstance(story.payload, RepaymentApplied):
                    a = story.payload.allocation
                    c.equal(
                        "20 000 ₸ + 1 000 ₸ prepaid = 18 000 ₸ repaid early + 3 000 ₸ back to Gold",
                        (a.prepayment_used, sum(x.amount for x in a.to_purchases), a.refunded_to_gold),
                        (tenge(1_000), tenge(18_000), tenge(3_000)),
                    )
                    c.equal(
                        "the allocation's return to Gold is the Gold credit",
                        a.refunded_to_gold,
                        getattr(gold.payload, "amount", None) if gold is not None else None,
                    )
                    self.sarah_story = (a.prepayment_used, a.refunded_to_gold)
            if day == date(2025, 11, 20):
                self.at(datetime(2025, 11, 20, 12, 0, tzinfo=ALMATY))
                self.step("Айгерим pays her 10 000 ₸ bill on time from Kaspi Gold")
                out = await self.pay(
                    AIGERIM,
                    PayRedBill(
                        request_id=uuid4(), customer_id=AIGERIM.id, amount=tenge(10_000), funding=Funding.GOLD
                    ),
                )
                await self.expect_completed("Айгерим's repayment", out, amount=tenge(10_000))
                await self.event("Айгерим's bill is paid on time", "BillPaid", customer_id=AIGERIM.id)
            if day == date(2025, 11, 21):
                self.step("the calendar before the second bills (Sarah repaid everything: nothing to come)")
                for cust, amount in ((AIGERIM, 10_000), (DMITRY, 15_000)):
                    await self.expect_next_bill(cust, date(2025, 11, 22), tenge(amount))
                sarah = await self.calendar(SARAH)
                c.equal("Sarah's calendar: no bill to come", sarah["next_bill"], None)
            if day == date(2025, 11, 22):
                self.step("second bills on the 22nd (Sarah owes nothing, so she gets none)")
                for cust, amount in ((AIGERIM, 10_000), (DMITRY, 15_000)):
                    issued = await self.event(
                        f"{cust.first_name}'s second bill: {amount} ₸",
                        "BillIssued",
                        customer_id=cust.id,
                        amount=tenge(amount),
                        statement_date=day,
                    )
                    self.expect_as_announced(cust, issued)
            if day == date(2025, 11, 25):
                await self.event(
                    "Дмитрий did not pay by 24.11 20:00: overdue recorded on day 1, no penalty",
                    "BillOverdueRecorded",
                    customer_id=DMITRY.id,
                )
                c.equal("no penalty on day 1", len(self.feed.of("PenaltyApplied", customer_id=DMITRY.id)), 0)
            if day == date(2025, 11, 26):
                await self.event(
                    "day 2 overdue: the one-time 2 000 ₸ penalty",
                    "PenaltyApplied",
                    customer_id=DMITRY.id,
                    amount=tenge(2_000),
                )
                self.say(
                    "    why is the next bill larger than he calculated? (Q12370) His calendar shows it:"
                )
                await self.expect_next_bill(DMITRY, date(2025, 12, 22), tenge(17_000), penalty=tenge(2_000))
                self.at(datetime(2025, 11, 26, 14, 0, tzinfo=ALMATY))
                self.step("Дмитрий pays late: the bill and the penalty, 17 000 ₸")
                out = await self.pay(
                    DMITRY,
                    PayRedBill(
                        request_id=uuid4(), customer_id=DMITRY.id, amount=tenge(17_000), funding=Funding.GOLD
                    ),
                )
                await self.expect_completed("Дмитрий's late repayment", out, amount=tenge(17_000))
                repaid = await self.event(
                    "his first bill is paid (bill first, then the penalty)", "BillPaid", customer_id=DMITRY.id
                )
                if repaid is not None:
                    applied = self.feed.of("RepaymentApplied", customer_id=DMITRY.id)
                    to_bill = [
                        e.payload.allocation.to_bill
                        for e in applied
                        if isinstance(e.payload, RepaymentApplied)
                    ]
                    c.equal(
                        "all 17 000 ₸ went to the overdue bill and its penalty", to_bill[-1:], [tenge(17_000)]
                    )
                await self.expect_next_bill(DMITRY, date(2025, 12, 22), tenge(15_000), penalty=0)
            day += timedelta(days=1)
        c.equal("one penalty in the whole month", len(self.feed.of("PenaltyApplied")), 1)

        expected_gold = {
            AIGERIM: tenge(150_000 - 2_035 - 4_800 - 10_000) - transfer_total,
            DMITRY: tenge(100_000 - 8_450 - 17_000),
            SARAH: tenge(200_000 - 4_525 - 3_000 - 1_700 - 7_000 + 3_000),
            NURLAN: tenge(5_000 + 3_000),
        }
        await self.platform.quiesce(60)
        for cust, expected in expected_gold.items():
            gold = await self.sql(
                "SELECT balance FROM payments.accounts WHERE customer_id = $1 AND kind = 'GOLD'", cust.id
            )
            c.equal(f"{cust.first_name}'s Kaspi Gold balance {fmt_tiyn(expected)}", gold, expected)
        bonus = await self.sql("SELECT balance FROM bonus.balances WHERE customer_id = $1", AIGERIM.id)
        c.equal("Айгерим's bonus balance 480 ₸", bonus, tenge(480))

    # -- the summary
    async def summary(self) -> None:
        """Each customer as ``aqsha customer show`` and ``aqsha billing bills`` print them (the services'
        own read models), then notifications and each customer's inbox in their language."""
        from services.notify import queries as notify_q
        from shared.ops.common import OpsError
        from shared.ops.service_tools import customer_bills, customer_view, render_bills, render_customer

        assert self.pool is not None
        self.say("\n══ summary " + "═" * 80)
        settings = self.platform.settings()
        notify_pool = await create_pool(self.platform.dsn, "notify", min_size=1, max_size=1)
        try:
            for cust in CUSTOMERS:
                self.say(f"\n{cust.name} ({cust.locale.value}, tariff {cust.tariff.value})")
                view = await customer_view(settings, cust.id)
                self.say("\n".join(f"  {line}" for line in render_customer(view).splitlines()[1:]))
                gold = await self.sql(
                    "SELECT balance FROM payments.accounts WHERE customer_id=$1 AND kind='GOLD'", cust.id
                )
                self.checks.equal(
                    f"{cust.first_name}: `aqsha customer show` has the account's Kaspi Gold",
                    view["accounts"]["GOLD"],
                    gold,
                )
                if view["red"] is not None:
                    with contextlib.suppress(OpsError):
                        bills = render_bills(await customer_bills(settings, cust.id)).splitlines()[1:]
                        self.say("\n".join(f"  {line}" for line in bills))
                messages = await notify_q.inbox(notify_pool, cust.id, limit=200)
                self.say(f"  inbox: {len(messages)} messages")
                for m in reversed(messages):
                    self.say(f"    [{m.locale}] {m.title}: {_one_line(m.body)}")
                if messages:
                    self.checks.expect(
                        f"{cust.first_name}'s inbox is in {cust.locale.value}",
                        all(m.locale == cust.locale.value for m in messages),
                        str({m.locale for m in messages}),
                    )
                if cust is SARAH:
                    self.expect_whole_story(messages)
            sent = await self.sql("SELECT count(*) FROM notify.deliveries WHERE status = 'SENT'")
            self.say(
                f"\nnotifications delivered: {sent} (push {len(self.platform.gateways.push)}, "
                f"SMS {len(self.platform.gateways.sms)}, e-mail {len(self.platform.gateways.mail)})"
            )
            await self.reconcile()
        finally:
            await notify_pool.close()

    def expect_whole_story(self, messages: list[Any]) -> None:
        """Sarah's inbox tells the whole story of her overpayment (RepaymentApplied v2): the payment's
        message names her earlier prepayment and the part returned to Gold, and the return's own
        message has the same amount (docs/billing.md §5)."""
        from services.notify.rendering.filters import money
        from services.notify.rendering.vocabulary import ALLOCATION_KINDS, label

        if self.sarah_story is None:
            self.checks.expect("Sarah's inbox tells the whole story", False, "no RepaymentApplied v2 seen")
            return
        prepaid, returned = self.sarah_story
        locale = SARAH.locale.value
        back = f"{label(ALLOCATION_KINDS, 'OVERPAYMENT', locale)} — {money(returned)}"
        told = [m for m in messages if m.event_type == "RepaymentApplied" and back in m.body]
        for m in told:
            self.say(f"  the whole story, as Sarah reads it:\n    {m.title}")
            self.say("\n".join(f"    {line}" for line in m.body.splitlines() if line.strip()))
        self.checks.expect(
            f"Sarah's repayment message shows the {fmt_tiyn(prepaid)} prepayment and {fmt_tiyn(returned)} "
            "back to Gold",
            len(told) == 1 and money(prepaid) in told[0].body,
            f"{len(told)} message(s) with {back!r}",
        )
        refunds = [m for m in messages if m.event_type == "OverpaymentRefunded"]
        self.checks.equal(
            "the refund's own message returns the same amount",
            [money(returned) in m.body for m in refunds],
            [True],
        )

    async def reconcile(self) -> None:
        """The cross-service reconciliation must be clean after the demo."""
        try:
            from shared.ops.reconcile import reconcile
        except ImportError:  # pragma: no cover - reconcile ships with the ops tooling
            self.checks.expect("reconciliation available", False, "shared.ops.reconcile missing")
            return
        assert self.pool is not None
        async with self.pool.acquire() as conn:
            report = await reconcile(conn)
        self.say("\n" + report.render())
        self.checks.expect(
            "aqsha reconcile: no discrepancies", report.clean, f"{len(report.discrepancies)} found"
        )


def _one_line(text: str, width: int = 110) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


async def run_demo(
    platform: Platform, *, stop: asyncio.Event | None = None, say: Callable[[str], None] = print
) -> int:
    """Run the demo against a started platform; the exit code (0: every expectation held)."""
    demo = Demo(platform, say=say)
    task = asyncio.create_task(demo.run())
    if stop is None:
        return await task
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if task in done:
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    say("demo interrupted")
    return 130


def customers() -> Iterable[Customer]:
    """The demo's customers."""
    return CUSTOMERS
