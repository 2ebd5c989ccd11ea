"""The seeded workload: customers, waves of commands over simulated business days, and the fault plan.

Everything here is a pure function of the seed (``random.Random(seed)``), so the same seed gives the
same customers, the same commands in the same waves at the same simulated times, and the same fault
schedule. What the platform answers (a decline for insufficient funds, a timed-out saga) may differ
between runs because faults land at different real moments; the auditor's invariants hold for
every answer.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID, uuid5

from shared.clock import ALMATY
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
from shared.contracts.payments import (
    PaymentCommand,
    PayRedBill,
    PayService,
    Purchase,
    TopUp,
    Transfer,
)
from shared.money import tenge_to_tiyn as tenge

NS = UUID("2c1f1f7e-5a3b-4f59-9d1e-c4a05f0c7a11")
OTP_THRESHOLD = 500_000  # tiyn: above 5 000 ₸ a one-time code is required (payments' default)
RED_LIMIT = 300_000 * 100
RED_OPENED = date(2025, 9, 22)  # billing day: the 22nd
FIRST_DAY = date(2025, 10, 20)
LAST_DAY = date(2025, 11, 27)
#: Days every plan has: the first, the statement day, the due day (20:00 cut-off), penalty days.
KEY_DAYS = (FIRST_DAY, date(2025, 10, 22), date(2025, 11, 24), date(2025, 11, 26))
#: Times of day a wave may run at (Almaty); 20:15 and 22:40 are after billing's 20:00 cut-off.
WAVE_TIMES = (time(9, 0), time(12, 30), time(16, 0), time(20, 15), time(22, 40))
SERVICES_CATALOGUE = (
    (ServiceCategory.ELECTRICITY, "almaty-energo"),
    (ServiceCategory.MOBILE, "beeline-kz"),
    (ServiceCategory.TAX, "kgd-almaty"),
    (ServiceCategory.INTERNET, "kazakhtelecom"),
    (ServiceCategory.WATER, "almaty-su"),
)
PARTNERS = ("partner-demo-coffee", "partner-demo-electronics")
SERVICE_NAMES = ("payments", "bonus", "billing", "notify")
FAULT_KINDS = (
    "kill",
    "broker_restart",
    "postgres_restart",
    "redis_flushall",
    "redis_stop",
    "rebalance",
    "poison",
    "forged",
)


@dataclass(frozen=True)
class ChaosCustomer:
    """A generated customer."""

    index: int
    phone: str
    iin: str
    locale: Locale
    tariff: TariffProfile
    email: str | None
    red: bool

    @property
    def id(self) -> UUID:
        """Deterministic id."""
        return uuid5(NS, f"customer-{self.index}")

    def registered(self) -> CustomerRegistered:
        """The onboarding event."""
        return CustomerRegistered(
            customer_id=self.id,
            phone=self.phone,
            iin=self.iin,
            full_name=f"Chaos Customer {self.index}",
            locale=self.locale,
            tariff_profile=self.tariff,
            email=self.email,
        )


@dataclass
class Planned:
    """One command of the plan and how the producer and the customer treat it."""

    command: PaymentCommand
    customer: ChaosCustomer
    confirm: bool = True  # an OTP payment the customer confirms (False: the code is left to expire)
    duplicate: bool = False  # the same envelope bytes are produced twice
    resend: bool = False  # the producer resends it: same request_id, new envelope
    refund_of: UUID | None = None  # a Refund: request_id of the purchase it refunds
    refund_amount: int = 0

    @property
    def type(self) -> str:
        """The command's contract type."""
        return "Refund" if self.refund_of is not None else self.command.TYPE

    @property
    def needs_code(self) -> bool:
        """Above the OTP threshold (a TopUp and a Refund never ask for one)."""
        amount = int(getattr(self.command, "amount", 0))
        return self.type not in ("TopUp", "Refund") and amount > OTP_THRESHOLD


@dataclass(frozen=True)
class Fault:
    """One scheduled fault: kind, target (a service, or a detail), the wave and the delay into it."""

    kind: str
    target: str
    wave: int
    delay_s: float
    down_s: float = 0.0


@dataclass
class Wave:
    """A batch of commands at one simulated moment; ``day_end`` closes the business day after it."""

    index: int
    at: datetime
    commands: list[Planned] = field(default_factory=list)
    day_end: bool = False


@dataclass
class Plan:
    """Customers, waves and faults of one seed."""

    seed: int
    customers: list[ChaosCustomer]
    waves: list[Wave]
    faults: list[Fault]
    late_customers: list[ChaosCustomer]

    @property
    def command_count(self) -> int:
        """Commands in the waves (poison follow-ups and confirmations come on top)."""
        return sum(len(w.commands) for w in self.waves)

    def describe(self) -> dict[str, Any]:
        """Counts for the report."""
        kinds: dict[str, int] = {}
        for w in self.waves:
            for p in w.commands:
                kinds[p.type] = kinds.get(p.type, 0) + 1
        return {
            "customers": len(self.customers),
            "red_customers": sum(c.red for c in self.customers),
            "waves": len(self.waves),
            "days": sorted({w.at.date().isoformat() for w in self.waves}),
            "command_types": kinds,
        }


def _customers(rng: random.Random, n: int, start: int = 0) -> list[ChaosCustomer]:
    out = []
    for i in range(start, start + n):
        has_email = rng.random() < 0.4
        out.append(
            ChaosCustomer(
                index=i,
                phone="+770" + "".join(str(rng.randrange(10)) for _ in range(8)),
                iin="".join(str(rng.randrange(10)) for _ in range(12)),
                locale=rng.choice([Locale.RU, Locale.KK, Locale.EN]),
                tariff=rng.choice([TariffProfile.KASPI, TariffProfile.HOMEBANK]),
                email=f"chaos{i}@example.kz" if has_email else None,
                red=rng.random() < 0.6,
            )
        )
    return out


def _wave_moments(rng: random.Random, n_waves: int) -> list[datetime]:
    if n_waves < len(KEY_DAYS) + 1:
        return [datetime.combine(FIRST_DAY, t, tzinfo=ALMATY) for t in WAVE_TIMES[: max(2, n_waves)]]
    days = [FIRST_DAY + timedelta(days=i) for i in range((LAST_DAY - FIRST_DAY).days + 1)]
    chosen = set(KEY_DAYS)
    others = [d for d in days if d not in chosen]
    rng.shuffle(others)
    while len(chosen) < min(len(days), max(len(KEY_DAYS), n_waves // 2)):
        chosen.add(others.pop())
    per_day: dict[date, int] = dict.fromkeys(chosen, 1)
    ordered = sorted(chosen)
    while sum(per_day.values()) < n_waves:
        per_day[rng.choice(ordered)] += 1
    moments = []
    for day in ordered:
        count = min(per_day[day], len(WAVE_TIMES))
        times = sorted(rng.sample(WAVE_TIMES[1:], count - 1)) if count > 1 else []
        for t in [WAVE_TIMES[0], *times]:
            moments.append(datetime.combine(day, t, tzinfo=ALMATY))
    # The 24.11 due day always has a wave after the 20:00 cut-off.
    due_late = datetime.combine(date(2025, 11, 24), time(20, 15), tzinfo=ALMATY)
    if due_late not in moments:
        moments.append(due_late)
    return sorted(moments)


class _Generator:
    """Commands drawn from a seeded mix; knows only what it generated (never the platform's answers)."""

    def __init__(self, rng: random.Random, customers: list[ChaosCustomer], dup: float, resend: float) -> None:
        self.rng = rng
        self.customers = customers
        self.dup = dup
        self.resend = resend
        self.purchases: list[Planned] = []
        self.serial = 0

    def _rid(self) -> UUID:
        self.serial += 1
        return uuid5(NS, f"request-{self.serial}-{self.rng.random()}")

    def _flags(self, p: Planned) -> Planned:
        p.duplicate = self.rng.random() < self.dup
        p.resend = self.rng.random() < self.resend
        if p.needs_code:
            p.confirm = self.rng.random() >= 0.2  # one in five codes is deliberately never entered
        return p

    def _amount(self, otp_ok: bool, low: int, high: int) -> int:
        if otp_ok and self.rng.random() < 0.3:
            return tenge(self.rng.randint(5_001, max(5_002, high)))
        return tenge(self.rng.randint(low, min(high, 5_000)))

    def top_up(self, c: ChaosCustomer, low: int = 20_000, high: int = 150_000) -> Planned:
        channel = self.rng.choice([Channel.TERMINAL, Channel.ATM])
        cmd = TopUp(
            request_id=self._rid(),
            customer_id=c.id,
            channel=channel,
            account=AccountKind.GOLD,
            amount=tenge(self.rng.randint(low, high)),
        )
        return self._flags(Planned(cmd, c))

    def one(self, c: ChaosCustomer, otp_ok: bool) -> Planned:
        r = self.rng.random()
        rid = self._rid()
        if r < 0.12:
            return self.top_up(c, 5_000, 60_000)
        if r < 0.37:
            category, provider = self.rng.choice(SERVICES_CATALOGUE)
            cmd: PaymentCommand = PayService(
                request_id=rid,
                customer_id=c.id,
                category=category,
                provider=provider,
                provider_account=str(self.rng.randint(10**9, 10**10 - 1)),
                amount=self._amount(otp_ok, 500, 12_000),
                iin=c.iin,  # the payer's IIN, as a tax payment needs it (services/payments/identity.toml)
            )
            return self._flags(Planned(cmd, c))
        if r < 0.50:
            other = self.rng.choice([x for x in self.customers if x is not c])
            cmd = Transfer(
                request_id=rid,
                customer_id=c.id,
                to_customer_id=other.id,
                amount=self._amount(otp_ok, 500, 9_000),
            )
            return self._flags(Planned(cmd, c))
        if r < 0.80:
            red = c.red and self.rng.random() < 0.45
            merchant = self.rng.choice([Merchant.KASPI_MAGAZIN, Merchant.KASPI_QR])
            amount = self._amount(otp_ok, 800, 40_000 if red else 10_000)
            bonus = 0
            if not red and self.rng.random() < 0.2:
                bonus = tenge(self.rng.randint(1, 50))
            cmd = Purchase(
                request_id=rid,
                customer_id=c.id,
                merchant=merchant,
                partner_id=self.rng.choice(PARTNERS) if merchant is Merchant.KASPI_QR else None,
                order_id=f"chaos-{self.serial}",
                amount=amount,
                funding=Funding.RED if red else Funding.GOLD,
                bonus_amount=min(bonus, amount - 1),
            )
            planned = self._flags(Planned(cmd, c))
            self.purchases.append(planned)
            return planned
        if r < 0.88 and self.purchases:
            target = self.rng.choice(self.purchases[-60:])
            original = int(getattr(target.command, "amount", 0))
            amount = max(1, original // self.rng.choice([1, 2, 3, 4]))
            # The Refund itself is built when it is sent (it needs the purchase's payment id).
            placeholder = TopUp(
                request_id=rid, customer_id=target.customer.id, account=AccountKind.GOLD, amount=amount
            )
            return self._flags(
                Planned(
                    placeholder, target.customer, refund_of=target.command.request_id, refund_amount=amount
                )
            )
        if c.red:
            cash = self.rng.random() < 0.3
            cmd = PayRedBill(
                request_id=rid,
                customer_id=c.id,
                channel=Channel.TERMINAL if cash else Channel.APP,
                amount=self._amount(otp_ok and not cash, 1_000, 25_000),
                funding=Funding.CASH if cash else Funding.GOLD,
            )
            return self._flags(Planned(cmd, c))
        return self.top_up(c, 2_000, 30_000)


def make_plan(
    seed: int,
    commands: int,
    faults: int,
    *,
    dup: float = 0.15,
    resend: float = 0.05,
    waves: int | None = None,
    kinds: tuple[str, ...] | None = None,
) -> Plan:
    """The whole seeded plan: ``commands`` commands in waves and ``faults`` faults among them.

    ``waves`` overrides the number of waves; below 5 they all fall on the first day (a short run
    without the statement, due and penalty days). ``kinds`` limits the faults to those kinds (a
    focused run, e.g. the trust mutation check with only ``forged``).
    """
    rng = random.Random(seed)
    n_customers = max(8, min(60, commands // 35))
    customers = _customers(rng, n_customers)
    n_waves = waves if waves is not None else max(5, min(22, commands // 90))
    moments = _wave_moments(rng, n_waves)
    gen = _Generator(rng, customers, dup, resend)
    plan_waves = [Wave(i, at) for i, at in enumerate(moments)]
    # Wave 0 opens with a top-up for everyone; the rest of the budget is spread evenly.
    plan_waves[0].commands = [gen.top_up(c, 80_000, 250_000) for c in customers]
    left = max(0, commands - len(plan_waves[0].commands))
    for i, wave in enumerate(plan_waves[1:], start=1):
        quota = left // (len(plan_waves) - 1) + (1 if i <= left % (len(plan_waves) - 1) else 0)
        otp_used: set[int] = set()
        for _ in range(quota):
            c = rng.choice(customers)
            planned = gen.one(c, otp_ok=c.index not in otp_used)
            if planned.needs_code:
                otp_used.add(c.index)
            wave.commands.append(planned)
    for a, b in itertools.pairwise(plan_waves):
        a.day_end = a.at.date() != b.at.date()
    plan_waves[-1].day_end = True
    late = _customers(rng, faults, start=1000)
    return Plan(seed, customers, plan_waves, _fault_plan(rng, faults, len(plan_waves), kinds), late)


def _fault_plan(
    rng: random.Random, n: int, n_waves: int, kinds: tuple[str, ...] | None = None
) -> list[Fault]:
    """``n`` faults: every kind (each service killed) first, then kills and lighter faults at random.

    With ``kinds``, only the first faults of those kinds, repeated in turn.
    """
    base: list[tuple[str, str]] = [("kill", s) for s in SERVICE_NAMES]
    base += [
        ("poison", "all-input-topics"),
        ("forged", "input-topics"),
        ("redis_flushall", "redis"),
        ("rebalance", rng.choice(SERVICE_NAMES)),
        ("broker_restart", "tansu"),
        ("redis_stop", "redis"),
        ("postgres_restart", "postgres"),
    ]
    if kinds is not None:
        unknown = set(kinds) - set(FAULT_KINDS)
        if unknown or not kinds:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {', '.join(FAULT_KINDS)}")
        allowed = [b for b in base if b[0] in kinds]
        base = [allowed[i % len(allowed)] for i in range(n)]
    chosen = base[:n]
    while len(chosen) < n:
        r = rng.random()
        if r < 0.6:
            chosen.append(("kill", rng.choice(SERVICE_NAMES)))
        elif r < 0.65:
            chosen.append(("poison", "all-input-topics"))
        elif r < 0.7:
            chosen.append(("forged", "input-topics"))
        elif r < 0.8:
            chosen.append(("redis_flushall", "redis"))
        elif r < 0.87:
            chosen.append(("rebalance", rng.choice(SERVICE_NAMES)))
        elif r < 0.92:
            chosen.append(("redis_stop", "redis"))
        elif r < 0.96:
            chosen.append(("broker_restart", "tansu"))
        else:
            chosen.append(("postgres_restart", "postgres"))
    rng.shuffle(chosen)
    # Faults land in waves 1 … n_waves-2 (wave 0 onboards; the last wave runs clean), spread evenly.
    usable = list(range(1, max(2, n_waves - 1)))
    out = []
    for i, (kind, target) in enumerate(chosen):
        wave = usable[(i * len(usable)) // max(1, len(chosen))]
        out.append(
            Fault(
                kind,
                target,
                wave,
                delay_s=round(rng.uniform(0.2, 2.5), 2),
                down_s=round(rng.uniform(0, 3), 1),
            )
        )
    return out
