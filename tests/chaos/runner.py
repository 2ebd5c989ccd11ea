"""The chaos run: private infrastructure, the platform, the seeded workload under faults, the audit.

``run_chaos(Config)`` returns the report (a dict) and writes it as JSON. See docs/chaos.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4, uuid5

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.clock import ALMATY, write_clock_offset
from shared.contracts.base import Contract
from shared.contracts.billing import OverpaymentReason, OverpaymentRefunded, RedAccountOpened, RunBusinessDay
from shared.contracts.common import AccountKind, Channel, Funding, Merchant
from shared.contracts.envelope import ContractError, Envelope, decode, encode, envelope_headers, new_envelope
from shared.contracts.payments import (
    ConfirmPayment,
    OtpRequested,
    PaymentCompleted,
    PayRedBill,
    Purchase,
    Refund,
    TopUp,
)
from shared.contracts.samples import sample
from shared.kafka import assign_from_beginning, ensure_topics
from shared.money import tenge_to_tiyn as tenge
from shared.ops.platform import ROOT, Platform
from shared.settings import KafkaSettings
from shared.topics import TOPICS, all_topics, resolve, topic_by_name, topic_for_contract
from shared.trust import HEADER_KEY_ID, Keyring, Signer, producer_for
from tests.chaos.infra import ChaosInfra
from tests.chaos.workload import (
    NS,
    RED_LIMIT,
    RED_OPENED,
    ChaosCustomer,
    Fault,
    Plan,
    Planned,
    Wave,
    make_plan,
)
from tests.support.harness import NotReached, until
from tests.support.trust import platform_keyring

log = logging.getLogger("aqsha.chaos")
#: Who asked for the business-day runs (``RunBusinessDay.requested_by``); records are signed by the
#: principal that would send each in production (``shared.trust.producer_for``), never by this.
PRODUCER = "aqsha-chaos"
OTP_RE = re.compile(r"(?<!\d)\d{6}(?!\d)")
POISON_HEADER = "chaos-poison-id"
#: Marker header of the hostile records of the ``forged`` fault (the auditor finds them by it).
FORGED_HEADER = "chaos-forged-id"
#: Topics some service consumes (the poison targets).
INPUT_TOPICS = tuple(spec.name for spec in TOPICS if any(c in {"payments", "bonus", "billing", "notify"}
                                                          for c in spec.consumers))  # fmt: skip
#: Service-produced topics whose records the duplicator re-produces byte for byte.
DUPLICATED_TOPICS = (
    "aqsha.payments.events",
    "aqsha.payments.otp",
    "aqsha.bonus.events",
    "aqsha.billing.events",
)
TERMINAL_TYPES = frozenset(
    {
        "PaymentCompleted",
        "PaymentFailed",
        "PaymentRejected",
        "TopUpCompleted",
        "TransferCompleted",
        "PaymentRefunded",
        "PaymentCancelled",
    }
)
TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "REFUNDED", "PARTIALLY_REFUNDED"})
DEFAULT_REPORT = ROOT / "reports" / "chaos" / "latest.json"
#: A wave stops waiting for its commands when the platform had no backlog for this long (longer
#: than payments' 60 s saga timeout): a command still unanswered then was lost (e.g. dead-lettered).
QUIET_GIVE_UP_S = 75.0
#: Partitions per topic in the chaos broker (dead-letter topics: 1). Tansu's s3 storage writes one
#: object per partition on every offset commit, so the registry's 12 partitions make moto S3 the
#: bottleneck; keys still map consistently, and 3 partitions still split between two instances.
CHAOS_PARTITIONS = 3


@dataclass
class Config:
    """One run's parameters."""

    seed: int = 20251120
    commands: int = 2000
    faults: int = 32
    dup_rate: float = 0.15
    resend_rate: float = 0.05
    run_dir: Path = field(default_factory=lambda: ROOT / ".run" / "chaos")
    report_path: Path | None = DEFAULT_REPORT
    mutation: str | None = None  # "inbox" | "idempotency" | "verification": the test-only switch to turn on
    fault_kinds: tuple[str, ...] | None = None  # only faults of these kinds (None: every kind)
    wave_timeout_s: float = 300.0
    waves: int | None = None  # None: from the command count (make_plan)
    extra_env: dict[str, str] = field(default_factory=dict)  # every service's environment, on top
    say: Callable[[str], None] = print


@dataclass
class PoisonRecord:
    """A poison message we produced, where it landed, and the customer whose messages follow it."""

    poison_id: str
    topic: str  # resolved name
    registry_name: str
    kind: str  # invalid_json | schema_invalid
    key: str
    partition: int = -1
    offset: int = -1


@dataclass
class ForgedRecord:
    """A hostile record of the ``forged`` fault: what it tried, the refusal expected, and the ids
    that must show no effect anywhere (no payment, ledger entry, bonus, delivery or Red account)."""

    forged_id: str
    case: str  # what it tries, e.g. "unsigned_cash_top_up"
    topic: str  # resolved name
    registry_name: str
    type: str  # the contract it carries
    reason: str  # the aqsha-dlq-reason every consuming group must dead-letter it with
    key: str
    event_id: UUID | None = None
    #: Request, payment or refund ids it carries: none may appear in payments, bonus or billing.
    refs: tuple[UUID, ...] = ()
    #: A customer without Red whom it tries to give a Red account (billing.accounts must not have it).
    red_customer: UUID | None = None
    partition: int = -1
    offset: int = -1


@dataclass
class FaultRecord:
    """A fault as executed."""

    kind: str
    target: str
    wave: int
    started: float
    seconds: float = 0.0
    detail: str = ""
    error: str = ""


# ------------------------------------------------------------------------------------- the driver
class Driver:
    """Produces commands and upstream events, watches the platform's answers, confirms codes."""

    def __init__(self, platform: Platform, infra: ChaosInfra, plan: Plan, cfg: Config) -> None:
        self.platform = platform
        self.infra = infra
        self.plan = plan
        self.cfg = cfg
        self.suffix = platform.topic_suffix
        self.producer: AIOKafkaProducer | None = None
        self.pool: asyncpg.Pool | None = None
        self.sent: list[Planned] = []  # every business command sent
        self.confirms: list[ConfirmPayment] = []
        self.unconfirmed: list[UUID] = []  # request ids of OTP payments deliberately left to expire
        self.codes: set[str] = set()  # every code read from an SMS (secrets for the log audit)
        self.poisons: list[PoisonRecord] = []
        self.forged: list[ForgedRecord] = []
        self.keyring: Keyring | None = None  # the platform's signing keys (start())
        self.faults: list[FaultRecord] = []
        self.otp_payment: dict[str, UUID] = {}  # OtpRequested event id -> payment id
        self.confirmed_payments: set[UUID] = set()
        self.duplicates_produced = 0
        self.resends_produced = 0
        self._dup_task: asyncio.Task[None] | None = None
        self._dup_seen: set[bytes] = set()
        self._dup_counter = 0
        self.clock_at: datetime | None = None
        self.last_day_run: date = date(2025, 10, 19)

    # -- plumbing ----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Keyring, producer, pool and the duplicator."""
        self.keyring = platform_keyring(self.platform)
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.platform.endpoints.kafka, acks="all", request_timeout_ms=15000
        )
        await self.producer.start()
        self.pool = await asyncpg.create_pool(self.platform.dsn, min_size=1, max_size=4)
        self._dup_task = asyncio.create_task(self._duplicator(), name="chaos-duplicator")

    async def stop(self) -> None:
        """Stop what ``start`` started."""
        if self._dup_task is not None:
            self._dup_task.cancel()
            with contextlib.suppress(BaseException):
                await self._dup_task
        if self.producer is not None:
            with contextlib.suppress(Exception):
                await self.producer.stop()
        if self.pool is not None:
            with contextlib.suppress(Exception):
                await self.pool.close()

    def at(self, moment: datetime) -> None:
        """Move the platform's simulated clock (always forward)."""
        write_clock_offset(self.platform.clock_file, moment)
        self.clock_at = moment

    def now(self) -> datetime:
        """The simulated now (approximately: the offset plus real time)."""
        from shared.clock import OffsetFileClock

        return OffsetFileClock(self.platform.clock_file).now()

    async def produce(
        self, topic: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]]
    ) -> tuple[int, int]:
        """Produce one record, retrying through a broker outage; (partition, offset)."""
        assert self.producer is not None
        deadline = time.monotonic() + 180
        delay = 0.2
        while True:
            try:
                meta = await self.producer.send_and_wait(topic, value, key=key, headers=headers)
                return meta.partition, meta.offset
            except Exception as exc:  # a broker restart: retry (a duplicate is fine, loss is not)
                if time.monotonic() > deadline:
                    raise
                log.info("produce failed, retrying: %r", exc)
                await asyncio.sleep(delay)
                delay = min(2.0, delay * 2)

    def sign(self, principal: str, topic: str, key: bytes | None, value: bytes) -> list[tuple[str, bytes]]:
        """Signature headers of a record ``principal`` writes to the concrete ``topic``."""
        assert self.keyring is not None, "start() first"
        return self.keyring.sign(principal, topic, key, value)

    async def publish(
        self, payload: Contract, *, key: str | None = None, twice: bool = False
    ) -> Envelope[Any]:
        """Produce a command or upstream event in a new envelope, signed by the principal that would
        send it in production (``twice``: the same bytes and signature again)."""
        principal = producer_for(payload)
        env = new_envelope(payload, key=key, producer=principal, occurred_at=self.now())
        topic = resolve(topic_for_contract(env.type).name, self.suffix)
        value = encode(env)
        record_key = env.key.encode()
        headers = [(k, v.encode()) for k, v in envelope_headers(env).items()]
        headers += self.sign(principal, topic, record_key, value)
        await self.produce(topic, value, record_key, headers)
        if twice:
            await self.produce(topic, value, record_key, headers)
            self.duplicates_produced += 1
        return env

    async def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        """Rows from the platform's database, retrying through a PostgreSQL restart."""
        assert self.pool is not None
        deadline = time.monotonic() + 120
        while True:
            try:
                return list(await self.pool.fetch(query, *args))
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                if time.monotonic() > deadline:
                    raise
                log.info("query failed, retrying: %r", exc)
                await asyncio.sleep(0.5)

    async def until(self, what: str, query: str, *args: Any, timeout_s: float = 180) -> bool:
        """Wait until ``query``'s first value is true; False (logged) on timeout."""

        async def holds() -> bool:
            rows = await self.sql(query, *args)
            return bool(rows and rows[0][0])

        try:
            return await until(holds, timeout_s, what=what, interval_s=0.3)
        except NotReached:
            self.cfg.say(f"  ! {what} did not happen within {timeout_s:.0f}s")
            return False

    # -- the duplicator: redelivers service-produced events byte for byte ------------------------
    async def _duplicator(self) -> None:
        topics = [resolve(t, self.suffix) for t in DUPLICATED_TOPICS]
        positions: dict[TopicPartition, int] = {}
        while True:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.platform.endpoints.kafka, enable_auto_commit=False, group_id=None
            )
            try:
                await consumer.start()
                parts = await assign_from_beginning(consumer, topics)
                for tp in parts:
                    if tp in positions:  # resume where the previous connection stopped
                        consumer.seek(tp, positions[tp])
                async for record in consumer:
                    positions[TopicPartition(record.topic, record.partition)] = record.offset + 1
                    self._on_event(record)
            except asyncio.CancelledError:
                await consumer.stop()
                raise
            except Exception as exc:  # a broker restart: reconnect and go on from where we were
                log.info("duplicator reconnecting: %r", exc)
                with contextlib.suppress(Exception):
                    await consumer.stop()
                await asyncio.sleep(1.0)

    def _on_event(self, record: Any) -> None:
        if any(name == FORGED_HEADER for name, _ in record.headers or ()):
            return  # a hostile record of ours: never redelivered as if a service had written it
        value: bytes = record.value or b""
        try:
            env = decode(value)
        except ContractError:
            return
        if isinstance(env.payload, OtpRequested):
            self.otp_payment[str(env.event_id)] = env.payload.payment_id
        marker = env.event_id.bytes
        if marker in self._dup_seen:
            return
        self._dup_seen.add(marker)
        self._dup_counter += 1
        # Deterministic share (every k-th first sighting) rather than a clock-dependent draw.
        every = max(1, round(1 / self.cfg.dup_rate)) if self.cfg.dup_rate > 0 else 0
        if every and self._dup_counter % every == 0:
            headers = list(record.headers or [])
            key = record.key or b""
            asyncio.get_running_loop().create_task(self._redeliver(record.topic, value, key, headers))

    async def _redeliver(
        self, topic: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]]
    ) -> None:
        with contextlib.suppress(Exception):
            await self.produce(topic, value, key, headers)
            self.duplicates_produced += 1

    # -- onboarding --------------------------------------------------------------------------------
    async def onboard(self, customers: list[ChaosCustomer]) -> None:
        """Register customers, open Red for some, wait until payments, notify and billing know them."""
        for c in customers:
            await self.publish(c.registered(), twice=self.cfg.dup_rate > 0 and c.index % 5 == 0)
        for c in customers:
            if c.red:
                await self.publish(
                    RedAccountOpened(
                        customer_id=c.id, limit=RED_LIMIT, opened_on=RED_OPENED, accepted_new_terms=True
                    ),
                    twice=self.cfg.dup_rate > 0 and c.index % 7 == 0,
                )
        ids = [c.id for c in customers]
        reds = [c.id for c in customers if c.red]
        await self.until(
            "payments knows the customers",
            "SELECT count(*) = $2 FROM payments.customers WHERE customer_id = ANY($1)",
            ids,
            len(ids),
        )
        await self.until(
            "notify knows the customers",
            "SELECT count(*) = $2 FROM notify.customers WHERE customer_id = ANY($1)",
            ids,
            len(ids),
        )
        await self.until(
            "billing opened the Red accounts",
            "SELECT count(*) = $2 FROM billing.accounts WHERE customer_id = ANY($1)",
            reds,
            len(reds),
        )

    # -- commands ------------------------------------------------------------------------------------
    async def _refund_command(self, p: Planned) -> Refund:
        rows = await self.sql("SELECT payment_id FROM payments.payments WHERE request_id = $1", p.refund_of)
        payment_id = rows[0]["payment_id"] if rows else uuid5(NS, f"no-payment-{p.refund_of}")
        return Refund(
            request_id=p.command.request_id,
            customer_id=p.customer.id,
            payment_id=payment_id,
            amount=p.refund_amount,
            reason="chaos: customer returned the goods",
        )

    async def send(self, p: Planned) -> None:
        """Send one planned command (twice if duplicated; a resend is scheduled later)."""
        if p.refund_of is not None:
            p.command = await self._refund_command(p)  # the payment id is known only now
        await self.publish(p.command, twice=p.duplicate)
        self.sent.append(p)
        if p.needs_code and not p.confirm:
            self.unconfirmed.append(p.command.request_id)

    async def resend(self, p: Planned) -> None:
        """The producer resends: same command (same request_id), a new envelope."""
        await self.publish(p.command)
        self.resends_produced += 1

    async def states(self, request_ids: list[UUID]) -> dict[UUID, tuple[str | None, str | None, UUID | None]]:
        """request id -> (stored outcome type, payment status, payment id)."""
        rows = await self.sql(
            """
            SELECT r.rid, k.outcome->>'type' AS type, p.status, p.payment_id
              FROM unnest($1::uuid[]) AS r(rid)
              LEFT JOIN payments.idempotency_keys k ON k.scope = 'payments' AND k.key = r.rid::text
              LEFT JOIN payments.payments p ON p.request_id = r.rid
            """,
            request_ids,
        )
        return {r["rid"]: (r["type"], r["status"], r["payment_id"]) for r in rows}

    def _code_for(self, payment_id: UUID) -> str | None:
        for message in self.platform.gateways.sms:
            if message.get("event_type") != "OtpRequested":
                continue
            key = str(message.get("idempotency_key") or message.get("_key") or "")
            event_id = key.split(":", 1)[0]
            if self.otp_payment.get(event_id) == payment_id:
                found = OTP_RE.search(str(message.get("text", "")))
                if found:
                    return found.group(0)
        return None

    async def settle(self, planned: list[Planned], timeout_s: float) -> list[Planned]:
        """Confirm codes as they arrive; wait until each command is final or deliberately pending.

        Returns the commands that did not settle in time (the auditor reports them as stuck).
        """
        deadline = time.monotonic() + timeout_s
        waiting = list(planned)
        quiet_since: float | None = None
        checked_at = 0.0
        while waiting and time.monotonic() < deadline:
            if time.monotonic() - checked_at > 5:
                # Nothing in flight anywhere for longer than a saga timeout: what still waits is lost.
                checked_at = time.monotonic()
                try:
                    busy = any((await self.platform.backlog()).values())
                except Exception:
                    busy = True
                quiet_since = None if busy else (quiet_since or checked_at)
                if quiet_since is not None and checked_at - quiet_since > QUIET_GIVE_UP_S:
                    break
            states = await self.states([p.command.request_id for p in waiting])
            left = []
            for p in waiting:
                otype, status, payment_id = states.get(p.command.request_id, (None, None, None))
                if otype is None:
                    left.append(p)
                elif status is None:
                    if otype == "PaymentPending":
                        left.append(p)
                elif status in TERMINAL_STATUSES:
                    continue
                elif status == "PENDING_CONFIRMATION":
                    if not p.confirm:
                        continue
                    assert payment_id is not None
                    if payment_id not in self.confirmed_payments:
                        code = self._code_for(payment_id)
                        if code is not None:
                            self.codes.add(code)
                            await self._confirm(p, payment_id, code)
                    left.append(p)
                else:
                    left.append(p)
            waiting = left
            if waiting:
                await asyncio.sleep(0.5)
        return waiting

    async def _confirm(self, p: Planned, payment_id: UUID, code: str) -> None:
        confirm = ConfirmPayment(
            request_id=uuid4(), customer_id=p.customer.id, payment_id=payment_id, code=code
        )
        self.confirmed_payments.add(payment_id)
        self.confirms.append(confirm)
        await self.publish(confirm, twice=p.duplicate)
        if p.resend:
            await self.publish(confirm)
            self.resends_produced += 1

    async def run_day(self, day: date) -> None:
        """Billing's close of business for ``day`` (catching up any skipped day)."""
        await self.publish(RunBusinessDay(business_date=day, requested_by=PRODUCER), key=day.isoformat())
        await self.until(
            f"business day {day}",
            "SELECT count(*) > 0 FROM billing.business_day_runs WHERE business_date = $1",
            day,
            timeout_s=240,
        )
        self.last_day_run = max(self.last_day_run, day)

    # -- poison --------------------------------------------------------------------------------------
    async def poison(self, late: ChaosCustomer, wave: Wave) -> str:
        """Invalid JSON and a schema-invalid envelope on every input topic, then valid followers on
        the same keys (registration, Red opening, a business-day re-run and payment commands)."""
        day_key = self.last_day_run.isoformat()
        for name in INPUT_TOPICS:
            spec = topic_by_name(name)
            topic = resolve(name, self.suffix)
            key = day_key if name == "aqsha.billing.commands" else str(late.id)
            for kind in ("invalid_json", "schema_invalid"):
                pid = uuid4().hex
                # Signed by the topic's legitimate writer, so the record passes the trust boundary
                # and its content is what the consumers refuse (invalid_json, invalid_payload ...).
                if kind == "invalid_json":
                    value = b'{"event_id": "' + pid.encode() + b'", "type": "TopUp", "payload": {'
                    principal = spec.producers[0]
                    headers = [(POISON_HEADER, pid.encode())]
                else:
                    type_ = spec.contracts[0]
                    principal = spec.writers_of(type_)[0]
                    raw = {
                        "event_id": str(uuid4()),
                        "type": type_,
                        "schema_version": 1,
                        "occurred_at": self.now().isoformat(),
                        "correlation_id": str(uuid4()),
                        "causation_id": None,
                        "producer": principal,
                        "key": key,
                        "payload": {"chaos_poison": pid, "amount": "not money"},
                    }
                    value = json.dumps(raw).encode()
                    headers = [(POISON_HEADER, pid.encode()), ("aqsha-type", type_.encode())]
                headers += self.sign(principal, topic, key.encode(), value)
                record = PoisonRecord(pid, topic, name, kind, key)
                record.partition, record.offset = await self.produce(topic, value, key.encode(), headers)
                self.poisons.append(record)
        # Valid followers, each on the same key as a poison.
        await self.publish(late.registered())
        await self.publish(
            RedAccountOpened(
                customer_id=late.id, limit=RED_LIMIT, opened_on=RED_OPENED, accepted_new_terms=True
            )
        )
        await self.publish(
            RunBusinessDay(business_date=self.last_day_run, requested_by=PRODUCER), key=day_key
        )
        await self.until(
            "the poisoned customer is known",
            "SELECT (SELECT count(*) FROM payments.customers WHERE customer_id = $1) "
            "+ (SELECT count(*) FROM billing.accounts WHERE customer_id = $1) = 2",
            late.id,
        )
        followers = [
            Planned(
                TopUp(
                    request_id=uuid4(),
                    customer_id=late.id,
                    channel=Channel.TERMINAL,
                    account=AccountKind.GOLD,
                    amount=tenge(60_000),
                ),
                late,
            ),
            # > 5 000 ₸: a one-time code (payments.otp), confirmed from the SMS.
            Planned(
                Purchase(
                    request_id=uuid4(),
                    customer_id=late.id,
                    merchant=Merchant.KASPI_MAGAZIN,
                    order_id=f"poison-{late.index}",
                    amount=tenge(6_000),
                    funding=Funding.GOLD,
                ),
                late,
            ),
            # A bonus part with no bonus balance: bonus answers on bonus.events (declined).
            Planned(
                Purchase(
                    request_id=uuid4(),
                    customer_id=late.id,
                    merchant=Merchant.KASPI_MAGAZIN,
                    order_id=f"poison-b-{late.index}",
                    amount=tenge(1_000),
                    funding=Funding.GOLD,
                    bonus_amount=tenge(100),
                ),
                late,
            ),
            # A Red repayment with nothing owed: billing answers on billing.events.
            Planned(
                PayRedBill(
                    request_id=uuid4(), customer_id=late.id, amount=tenge(1_000), funding=Funding.GOLD
                ),
                late,
            ),
        ]
        for p in followers:
            await self.send(p)
            wave.commands.append(p)
        return f"customer {late.index}: {len(INPUT_TOPICS) * 2} poison messages"

    # -- forged --------------------------------------------------------------------------------------
    async def _forge(
        self,
        case: str,
        reason: str,
        payload: Contract,
        *,
        producer: str,
        signer: Signer | None,
        on: str | None = None,
        signed_for: str | None = None,
        record_key: str | None = None,
        claimed_key_id: str | None = None,
        refs: tuple[UUID, ...] = (),
        red_customer: UUID | None = None,
    ) -> None:
        """Produce one hostile record: ``payload`` in an envelope naming ``producer``, signed by
        ``signer`` (None: unsigned) for ``signed_for`` (default: the topic it is produced on, ``on``,
        default the contract's own topic), under ``record_key`` (default the envelope key), with the
        key id header replaced by ``claimed_key_id`` if given."""
        env = new_envelope(payload, producer=producer, occurred_at=self.now())
        name = on or topic_for_contract(env.type).name
        topic = resolve(name, self.suffix)
        value = encode(env)
        key = record_key or env.key
        forged_id = uuid4().hex
        headers = [(k, v.encode()) for k, v in envelope_headers(env).items()]
        headers.append((FORGED_HEADER, forged_id.encode()))
        if signer is not None:
            signature = signer.sign(resolve(signed_for or name, self.suffix), key.encode(), value)
            if claimed_key_id is not None:
                signature[HEADER_KEY_ID] = claimed_key_id
            headers += [(k, v.encode()) for k, v in signature.items()]
        record = ForgedRecord(
            forged_id, case, topic, name, env.type, reason, key, env.event_id, refs, red_customer
        )
        record.partition, record.offset = await self.produce(topic, value, key.encode(), headers)
        self.forged.append(record)

    async def forge(self, wave: Wave) -> str:
        """Hostile records on the input topics, each of which the trust boundary must refuse.

        Each carries ``FORGED_HEADER``; the auditor expects it on ``<topic>.dlq`` from every group
        that consumes the topic, with the reason given here, and no effect of it anywhere
        (``forged_records_refused``). They target the plan's registered customers, as an attacker
        crediting an account would.
        """
        assert self.keyring is not None, "start() first"
        people = self.plan.customers
        victim = people[wave.index % len(people)]
        other = people[(wave.index + 1) % len(people)]
        no_red = next((c for c in people if not c.red), None)
        red_target = no_red.id if no_red is not None else uuid5(NS, f"forged-red-{wave.index}")
        app, cash = self.keyring.signer("app-gateway"), self.keyring.signer("cash-network")
        # Keys of real principals' names that no trust registry holds (an attacker's own keys).
        strangers = {p: Signer.generate(p) for p in ("red-origination", "billing", "payments")}
        before = len(self.forged)

        def top_up(channel: Channel = Channel.TERMINAL, amount: int = tenge(250_000)) -> TopUp:
            return TopUp(
                request_id=uuid4(), customer_id=victim.id, channel=channel, account=AccountKind.GOLD,
                amount=amount,
            )  # fmt: skip

        def completed() -> PaymentCompleted:
            return sample(PaymentCompleted).model_copy(
                update={"payment_id": uuid4(), "request_id": uuid4(), "customer_id": victim.id}
            )

        huge = top_up(amount=tenge(1_000_000_000))
        await self._forge("unsigned_cash_top_up", "unsigned", huge, producer="cash-network", signer=None,
                          refs=(huge.request_id,))  # fmt: skip
        cmd = top_up(Channel.APP)
        await self._forge("top_up_by_app_gateway", "not_permitted", cmd, producer="app-gateway", signer=app,
                          refs=(cmd.request_id,))  # fmt: skip
        cash_bill = PayRedBill(request_id=uuid4(), customer_id=victim.id, channel=Channel.APP,
                               amount=tenge(100_000), funding=Funding.CASH)  # fmt: skip
        await self._forge("cash_red_repayment_by_app_gateway", "not_permitted", cash_bill,
                          producer="app-gateway", signer=app, refs=(cash_bill.request_id,))  # fmt: skip
        cmd = top_up()
        await self._forge("command_replayed_on_other_topic", "bad_signature", cmd, producer="cash-network",
                          signer=cash, on="aqsha.customers.events", signed_for="aqsha.payments.commands",
                          refs=(cmd.request_id,))  # fmt: skip
        cmd = top_up()
        await self._forge("command_signed_for_wrong_topic", "wrong_topic", cmd, producer="cash-network",
                          signer=cash, on="aqsha.customers.events", refs=(cmd.request_id,))  # fmt: skip
        opened = RedAccountOpened(customer_id=red_target, limit=tenge(5_000_000), opened_on=RED_OPENED)
        await self._forge("red_account_unknown_key", "unknown_key", opened, producer="red-origination",
                          signer=strangers["red-origination"], red_customer=red_target)  # fmt: skip
        event = completed()
        await self._forge("payment_completed_by_app_gateway", "not_permitted", event, producer="app-gateway",
                          signer=app, refs=(event.payment_id, event.request_id))  # fmt: skip
        event = completed()
        await self._forge("payment_completed_impersonating_payments", "bad_signature", event,
                          producer="payments", signer=strangers["payments"],
                          claimed_key_id=self.keyring.signer("payments").key_id,
                          refs=(event.payment_id, event.request_id))  # fmt: skip
        refund = OverpaymentRefunded(refund_id=uuid4(), customer_id=victim.id, amount=tenge(1_000_000),
                                     reason=OverpaymentReason.OVERPAYMENT)  # fmt: skip
        await self._forge("overpayment_refund_unknown_key", "unknown_key", refund, producer="billing",
                          signer=strangers["billing"], refs=(refund.refund_id,))  # fmt: skip
        cmd = top_up()
        await self._forge("key_differs_from_customer_id", "key_mismatch", cmd, producer="cash-network",
                          signer=cash, record_key=str(other.id), refs=(cmd.request_id,))  # fmt: skip
        cmd = top_up()
        await self._forge("envelope_names_another_producer", "producer_mismatch", cmd, producer="payments",
                          signer=cash, refs=(cmd.request_id,))  # fmt: skip
        made = self.forged[before:]
        reasons = sorted({r.reason for r in made})
        return (
            f"customer {victim.index}: {len(made)} hostile records on {len({r.topic for r in made})} "
            f"topics ({', '.join(reasons)})"
        )


# ------------------------------------------------------------------------------------- faults
class Injector:
    """Executes the scheduled faults against the platform and the private infrastructure."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.platform = driver.platform
        self.infra = driver.infra
        self.late = iter(driver.plan.late_customers)
        self.last_end = time.monotonic()

    async def _all_ready(self) -> None:
        procs = [p for p in self.platform.services.values()] + [p for p in self.platform.extras if p.alive]
        for p in procs:
            if not p.alive:
                await self.platform.restart(p.name, timeout_s=180)
        await asyncio.gather(*(p.ready(180) for p in procs if p.alive))

    async def run(self, fault: Fault, wave: Wave) -> FaultRecord:
        """One fault, through to the platform being ready again."""
        rec = FaultRecord(fault.kind, fault.target, fault.wave, time.monotonic())
        say = self.driver.cfg.say
        try:
            if fault.kind == "kill":
                proc = self.platform.services[fault.target]
                rec.detail = f"SIGKILL pid {proc.pid} under load, down {fault.down_s}s"
                proc.kill()
                await asyncio.sleep(fault.down_s)
                await self.platform.restart(fault.target, timeout_s=180)
            elif fault.kind == "broker_restart":
                rec.detail = f"Tansu stopped and restarted on the same port after {fault.down_s}s"
                await asyncio.to_thread(self.infra.restart_broker, down_s=fault.down_s)
                await self._all_ready()
            elif fault.kind == "postgres_restart":
                rec.detail = f"PostgreSQL crashed (immediate) and restarted after {fault.down_s}s"
                await asyncio.to_thread(self.infra.restart_postgres, down_s=fault.down_s)
                await self._all_ready()
            elif fault.kind == "redis_flushall":
                rec.detail = "FLUSHALL"
                await asyncio.to_thread(self.infra.flushall_redis)
            elif fault.kind == "redis_stop":
                down = 3.0 + fault.down_s * 2
                rec.detail = f"Redis stopped for {down:.1f}s (all data lost)"
                await asyncio.to_thread(self.infra.stop_redis)
                await asyncio.sleep(down)
                await asyncio.to_thread(self.infra.start_redis)
            elif fault.kind == "rebalance":
                extra = await self.platform.add_instance(fault.target, timeout_s=180)
                await asyncio.sleep(2.0 + fault.down_s)
                code = await extra.stop()
                rec.detail = f"second {fault.target} instance joined the group, then stopped (exit {code})"
            elif fault.kind == "poison":
                rec.detail = await self.driver.poison(next(self.late), wave)
            elif fault.kind == "forged":
                rec.detail = await self.driver.forge(wave)
            else:  # pragma: no cover - the plan only has the kinds above
                raise ValueError(fault.kind)
        except Exception as exc:
            rec.error = f"{type(exc).__name__}: {exc}"
            say(f"  ! fault {fault.kind} {fault.target} failed: {rec.error}")
            with contextlib.suppress(Exception):
                await self._all_ready()
        rec.seconds = round(time.monotonic() - rec.started, 1)
        self.last_end = time.monotonic()
        say(f"  ⚡ {fault.kind:<16} {fault.target:<16} {rec.seconds:>5.1f}s  {rec.detail}")
        return rec


# ------------------------------------------------------------------------------------- the run
async def _run_wave(driver: Driver, injector: Injector, wave: Wave, faults: list[Fault]) -> list[Planned]:
    cfg = driver.cfg
    if driver.clock_at is None or wave.at > driver.clock_at:
        driver.at(wave.at)

    async def publish_all() -> None:
        resends = []
        for i, p in enumerate(list(wave.commands)):
            await driver.send(p)
            if p.resend:
                resends.append(p)
            if i % 20 == 19:
                await asyncio.sleep(0.05)  # a steady stream rather than one burst
        for p in resends:
            await driver.resend(p)

    async def inject() -> None:
        for fault in faults:
            await asyncio.sleep(fault.delay_s)
            driver.faults.append(await injector.run(fault, wave))

    await asyncio.gather(publish_all(), inject())
    stuck = await driver.settle(wave.commands, cfg.wave_timeout_s)
    if stuck:
        cfg.say(f"  ! wave {wave.index}: {len(stuck)} command(s) did not settle")
    if wave.day_end:
        await driver.run_day(wave.at.date())
    return stuck


async def create_topics(platform: Platform) -> None:
    """Every registry topic with at most ``CHAOS_PARTITIONS`` partitions (``prepare`` keeps them)."""
    specs = [
        dataclasses.replace(s, partitions=1 if s.is_dlq else min(s.partitions, CHAOS_PARTITIONS))
        for s in all_topics(include_dlq=True)
    ]
    await ensure_topics(
        KafkaSettings(bootstrap=platform.endpoints.kafka, topic_suffix=platform.topic_suffix), specs
    )


def _mutation_env(mutation: str | None) -> dict[str, str]:
    if mutation is None:
        return {}
    if mutation == "inbox":
        return {"AQSHA_TEST_DISABLE_INBOX": "1"}
    if mutation == "idempotency":
        return {"AQSHA_TEST_DISABLE_IDEMPOTENCY": "1"}
    if mutation == "verification":
        return {"AQSHA_TEST_DISABLE_VERIFICATION": "1"}
    raise ValueError(f"unknown mutation {mutation!r}")


async def run_chaos(cfg: Config) -> dict[str, Any]:
    """The whole run; returns the report (also written to ``cfg.report_path``)."""
    from tests.chaos.auditor import audit

    say = cfg.say
    started = time.monotonic()
    plan = make_plan(
        cfg.seed,
        cfg.commands,
        cfg.faults,
        dup=cfg.dup_rate,
        resend=cfg.resend_rate,
        waves=cfg.waves,
        kinds=cfg.fault_kinds,
    )
    say(f"aqsha chaos: seed {cfg.seed}, {plan.command_count} planned commands in {len(plan.waves)} waves, "
        f"{len(plan.faults)} faults" + (f", MUTATION {cfg.mutation}" if cfg.mutation else ""))  # fmt: skip
    if cfg.run_dir.exists():
        shutil.rmtree(cfg.run_dir / "logs", ignore_errors=True)
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    infra = await asyncio.to_thread(ChaosInfra.start)
    platform = Platform(
        infra.endpoints(),
        database="aqsha_chaos",
        run_dir=cfg.run_dir,
        redis_prefix="aqsha:chaos:",
        topic_suffix=".chaos",
        extra_env={**_mutation_env(cfg.mutation), **cfg.extra_env},
        # The designed TTL (5 minutes of simulated time); set explicitly so the run documents it.
        service_env={"payments": {"AQSHA_OTP_TTL_S": "300"}},
    )
    driver = Driver(platform, infra, plan, cfg)
    injector = Injector(driver)
    report: dict[str, Any] = {}
    stuck: list[Planned] = []
    lag_seconds: float | None = None
    try:
        for what, kind in platform.endpoints.kinds.items():
            say(f"  {what:<9} {kind}")
        await create_topics(platform)
        await platform.prepare()
        await platform.start(timeout_s=240)
        say(f"  platform ready in {time.monotonic() - started:.0f}s")
        await driver.start()
        driver.at(plan.waves[0].at)
        await driver.onboard(plan.customers)
        by_wave: dict[int, list[Fault]] = {}
        for fault in plan.faults:
            by_wave.setdefault(fault.wave, []).append(fault)
        for wave in plan.waves:
            t0 = time.monotonic()
            stuck += await _run_wave(driver, injector, wave, by_wave.get(wave.index, []))
            say(
                f"  wave {wave.index:>2} {wave.at:%d.%m %H:%M}: {len(wave.commands):>3} commands, "
                f"{len(by_wave.get(wave.index, []))} fault(s), {time.monotonic() - t0:.1f}s"
            )
        # Close the remaining business days, then a day later still: every unentered code expires.
        last = plan.waves[-1].at
        end_day = max(last.date(), date(2025, 11, 27))
        if driver.last_day_run < end_day:
            driver.at(datetime.combine(end_day, datetime.min.time(), tzinfo=ALMATY).replace(hour=23))
            await driver.run_day(end_day)
        driver.at(
            datetime.combine(end_day + timedelta(days=1), datetime.min.time(), tzinfo=ALMATY).replace(hour=9)
        )
        await driver.until(
            "the janitor failed every expired code",
            "SELECT count(*) = 0 FROM payments.payments "
            "WHERE status IN ('PENDING_CONFIRMATION', 'PENDING_PROVIDER')",
            timeout_s=120,
        )
        quiet_from = time.monotonic()
        try:
            await platform.quiesce(60, settle_s=2.0)
            lag_seconds = round(time.monotonic() - injector.last_end, 1)
            quiet_seconds: float | None = round(time.monotonic() - quiet_from, 1)
        except TimeoutError as exc:
            say(f"  ! {exc}")
            quiet_seconds = None
        await driver.stop()
        report = await audit(driver, stuck=stuck, quiet_seconds=quiet_seconds)
        report["lag_zero_seconds_after_last_fault"] = lag_seconds
    finally:
        await driver.stop()
        with contextlib.suppress(Exception):
            await platform.stop(drain_s=5)
        await asyncio.to_thread(infra.stop)
    report["seconds"] = round(time.monotonic() - started, 1)
    report["config"] = {
        "dup_rate": cfg.dup_rate,
        "resend_rate": cfg.resend_rate,
        "mutation": cfg.mutation,
        "fault_kinds": list(cfg.fault_kinds) if cfg.fault_kinds is not None else None,
        "service_env": cfg.extra_env,
        "run_dir": str(cfg.run_dir),
        "replay": f"make chaos SEED={cfg.seed}",
    }
    if cfg.report_path is not None:
        cfg.report_path.parent.mkdir(parents=True, exist_ok=True)
        cfg.report_path.write_text(json.dumps(report, indent=2, default=str, ensure_ascii=False) + "\n")
    return report


def env_flag(name: str) -> bool:
    """A truthy environment flag."""
    return os.environ.get(name, "") not in ("", "0")
