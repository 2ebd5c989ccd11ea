"""Cross-service reconciliation: do payments, bonus, billing and notify tell one consistent story?

``reconcile(conn)`` runs every check in ONE read-only ``REPEATABLE READ`` transaction over the four
schemas (schema-qualified SQL), so all checks see the same snapshot of the shared database. The
result is a :class:`ReconcileReport`; ``run_reconcile(settings)`` is the ``aqsha reconcile`` command
(prints the report, returns 0 when clean and 1 otherwise).

**Run it when the system is quiet.** The services talk through Kafka, so between a producer's
commit and a consumer's commit a fact is legitimately on one side only (a completed payment whose
``PaymentCompleted`` bonus has not consumed yet, an outbox row not yet relayed, a PENDING delivery
being sent). Stop the traffic (or wait until every outbox is empty and every consumer group has no
lag) before reconciling; otherwise in-flight messages show up as discrepancies. The report's
``counts`` include the rows still waiting in each outbox and the PENDING deliveries, so a noisy
report taken mid-flight is recognisable as such.

Every check and its SQL idea is described in ``docs/reconcile.md``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final
from uuid import UUID

import asyncpg

from services.billing.store import derived_id
from services.notify.settings import CHANNEL_NAMES, EMAIL, INBOX, PUSH, SMS, NotifySettings, default_routes
from shared.db import Conn
from shared.money import fmt_tiyn
from shared.settings import Settings
from shared.topics import topic_for_contract

# ------------------------------------------------------------------------------------- check names
LEDGER_SUMS_TO_ZERO: Final = "ledger_sums_to_zero"
ACCOUNT_BALANCES_MATCH_LEDGER: Final = "account_balances_match_ledger"
ACCOUNT_BALANCES_NEVER_NEGATIVE: Final = "account_balances_never_negative"
NO_DOUBLE_DEBIT: Final = "no_double_debit"
BONUS_DECISION_EXACTLY_ONCE: Final = "bonus_decision_exactly_once"
BONUS_BALANCES_MATCH_LEDGER: Final = "bonus_balances_match_ledger"
RED_PURCHASE_HAS_PLAN: Final = "red_purchase_has_plan"
RED_BILL_PAYMENT_APPLIED: Final = "red_bill_payment_applied"
BILLING_MONEY_CONSERVED: Final = "billing_money_conserved"
ONE_PENALTY_PER_BILL: Final = "one_penalty_per_bill"
OVERPAYMENT_CREDITED_TO_GOLD: Final = "overpayment_credited_to_gold"
BILLS_NOTIFIED: Final = "bills_notified"
RECEIPTS_NOTIFIED: Final = "receipts_notified"
CREDITS_HAVE_PERMITTED_ORIGIN: Final = "credits_have_permitted_origin"

#: Every check, in the order they run and are reported.
CHECKS: Final[tuple[str, ...]] = (
    LEDGER_SUMS_TO_ZERO,
    ACCOUNT_BALANCES_MATCH_LEDGER,
    ACCOUNT_BALANCES_NEVER_NEGATIVE,
    NO_DOUBLE_DEBIT,
    BONUS_DECISION_EXACTLY_ONCE,
    BONUS_BALANCES_MATCH_LEDGER,
    RED_PURCHASE_HAS_PLAN,
    RED_BILL_PAYMENT_APPLIED,
    BILLING_MONEY_CONSERVED,
    ONE_PENALTY_PER_BILL,
    OVERPAYMENT_CREDITED_TO_GOLD,
    BILLS_NOTIFIED,
    RECEIPTS_NOTIFIED,
    CREDITS_HAVE_PERMITTED_ORIGIN,
)

#: Statuses of a payment that completed (a refund keeps it completed for every check here).
COMPLETED_STATUSES: Final = ("COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED")
#: Payment kinds for which payments publishes ``PaymentCompleted`` (TOP_UP → ``TopUpCompleted``,
#: TRANSFER → ``TransferCompleted``). Bonus consumes only ``PaymentCompleted`` and never accrues on
#: top-ups or transfers (docs/bonus.md, Accrual: "Never accrues on RED_BILL, TOP_UP or TRANSFER" —
#: they are movements of the customer's own money, not spending), so those two kinds get no
#: decision row. RED_BILL does get a ``PaymentCompleted``, so bonus records an explicit NO_BONUS
#: decision for it, and it is checked like the others.
PAYMENT_COMPLETED_KINDS: Final = ("SERVICE", "PURCHASE", "RED_BILL")
PLAN_PARTS: Final = 4
#: The command that creates a payment of each kind: its recorded ``commanded_by`` must be a principal
#: the topic registry lets write that command (``TopUp``: only the cash network).
PAYMENT_COMMANDS: Final = {"TOP_UP": "TopUp", "SERVICE": "PayService", "PURCHASE": "Purchase",
                           "TRANSFER": "Transfer", "RED_BILL": "PayRedBill"}  # fmt: skip
#: Ledger postings whose customer credit is commanded by a record of its own, not by the payment's
#: command: each ``Refund`` (``payments.refunds``) and each credit by another service's event
#: (``payments.event_credits``: billing's ``OverpaymentRefunded``).
_OWN_ORIGIN_POSTINGS: Final = ("REFUND", "OVERPAYMENT_CREDIT")
SCHEMAS: Final = ("payments", "bonus", "billing", "notify")

_SIGNED_BONUS = (
    "CASE kind WHEN 'ACCRUAL' THEN amount WHEN 'RESTORE' THEN amount ELSE -amount END"  # REVERSAL, REDEMPTION
)


@dataclass(frozen=True)
class Discrepancy:
    """One broken invariant: which check, about what (ids), and why (amounts formatted in ₸)."""

    check: str
    subject: str
    detail: str


@dataclass
class ReconcileReport:
    """Discrepancies per check (every check listed, 0 when clean) and what was examined."""

    checks: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHECKS, 0))
    discrepancies: list[Discrepancy] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        """True when no check found anything."""
        return not self.discrepancies

    def add(self, check: str, subject: object, detail: str) -> None:
        """Record one discrepancy of ``check``."""
        self.checks[check] = self.checks.get(check, 0) + 1
        self.discrepancies.append(Discrepancy(check, str(subject), detail))

    def of(self, check: str) -> list[Discrepancy]:
        """The discrepancies of one check."""
        return [d for d in self.discrepancies if d.check == check]

    def render(self) -> str:
        """A readable text report: verdict, what was examined, each check, then every discrepancy."""
        total = len(self.discrepancies)
        verdict = "CLEAN" if self.clean else f"{total} DISCREPANC{'Y' if total == 1 else 'IES'}"
        lines = [f"aqsha reconcile: {verdict}", ""]
        if self.counts:
            lines.append("examined:")
            width = max(len(k) for k in self.counts)
            lines += [f"  {name.ljust(width)}  {value}" for name, value in self.counts.items()]
            lines.append("")
        lines.append("checks:")
        width = max((len(k) for k in self.checks), default=0)
        for name, n in self.checks.items():
            lines.append(f"  {name.ljust(width)}  {'ok' if n == 0 else f'{n} FAILED'}")
        if self.discrepancies:
            lines += ["", "discrepancies:"]
            for check in self.checks:
                for d in self.of(check):
                    lines.append(f"  [{d.check}] {d.subject}: {d.detail}")
        return "\n".join(lines) + "\n"

    def as_dict(self) -> dict[str, object]:
        """JSON-able form (for the chaos auditor and ``--json`` output)."""
        return {
            "clean": self.clean,
            "checks": dict(self.checks),
            "counts": dict(self.counts),
            "discrepancies": [asdict(d) for d in self.discrepancies],
        }


# ------------------------------------------------------------------------------------- helpers


def _fmt(tiyn: Any) -> str:
    """Tiyn from SQL (``sum()`` of bigint is numeric, so it may arrive as a Decimal) as ``15 000,50 ₸``."""
    return fmt_tiyn(int(tiyn))


def _json(value: Any) -> Any:
    """jsonb as Python data whether or not the connection has a jsonb codec."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def expected_channels(
    routes: Mapping[str, Sequence[str]], event_type: str, *, customer_known: bool, has_email: bool
) -> set[str]:
    """The channels notify claims for an event (mirrors ``NotifyService._deliveries``).

    The configured route (default inbox + push), without e-mail when the customer gave none and
    without SMS when notify does not know the customer (no address).
    """
    if event_type == "OtpRequested":
        return {SMS}
    chans = {c for c in routes.get(event_type, [INBOX, PUSH]) if c in CHANNEL_NAMES}
    if not has_email:
        chans.discard(EMAIL)
    if not customer_known:
        chans.discard(SMS)
    return chans


# ------------------------------------------------------------------------------------- the checks


async def _counts(conn: Conn, report: ReconcileReport) -> None:
    row = await conn.fetchrow(
        f"""
        SELECT (SELECT count(*) FROM payments.payments) AS payments,
               (SELECT count(*) FROM payments.payments WHERE status IN {COMPLETED_STATUSES}) AS completed,
               (SELECT count(*) FROM payments.ledger_entries) AS ledger_entries,
               (SELECT count(*) FROM payments.accounts) AS customer_accounts,
               (SELECT count(*) FROM bonus.accrual_decisions) AS bonus_decisions,
               (SELECT count(*) FROM bonus.balances) AS bonus_balances,
               (SELECT count(*) FROM billing.accounts) AS red_accounts,
               (SELECT count(*) FROM billing.bills) AS bills,
               (SELECT count(*) FROM billing.repayments) AS repayments,
               (SELECT count(*) FROM notify.deliveries) AS deliveries,
               (SELECT count(*) FROM notify.deliveries WHERE status = 'PENDING') AS deliveries_pending,
               (SELECT count(*) FROM notify.deliveries WHERE status = 'FAILED') AS deliveries_failed,
               (SELECT count(*) FROM payments.outbox) + (SELECT count(*) FROM bonus.outbox)
                 + (SELECT count(*) FROM billing.outbox) + (SELECT count(*) FROM notify.outbox)
                 AS outbox_unpublished
        """
    )
    assert row is not None
    report.counts.update({k: int(v) for k, v in dict(row).items()})


async def _payments_ledger(conn: Conn, report: ReconcileReport) -> None:
    """Checks 1a-1c: double entry, balances = Σ entries, never below zero."""
    total = int(await conn.fetchval("SELECT coalesce(sum(amount), 0) FROM payments.ledger_entries"))
    if total != 0:
        report.add(
            LEDGER_SUMS_TO_ZERO, "payments.ledger_entries", f"the whole ledger is off by {_fmt(total)}"
        )
    # Every posting balances, so each payment's entries (all its postings) sum to zero as well.
    for r in await conn.fetch(
        "SELECT payment_id, sum(amount) AS off, string_agg(DISTINCT posting_kind, ',') AS kinds "
        "FROM payments.ledger_entries GROUP BY payment_id HAVING sum(amount) <> 0 ORDER BY payment_id"
    ):
        report.add(
            LEDGER_SUMS_TO_ZERO,
            r["payment_id"],
            f"entries of this payment ({r['kinds']}) sum to {_fmt(r['off'])}, not 0",
        )

    for r in await conn.fetch(
        """
        SELECT coalesce(a.customer_id, e.customer_id) AS customer_id, coalesce(a.kind, e.account) AS kind,
               a.balance, coalesce(e.total, 0) AS total
          FROM payments.accounts a
          FULL JOIN (SELECT customer_id, account, sum(amount) AS total FROM payments.ledger_entries
                      WHERE customer_id IS NOT NULL GROUP BY customer_id, account) e
            ON e.customer_id = a.customer_id AND e.account = a.kind
         WHERE a.balance IS NULL OR a.balance <> coalesce(e.total, 0)
         ORDER BY 1, 2
        """
    ):
        subject = f"{r['customer_id']}/{r['kind']}"
        if r["balance"] is None:
            detail = f"ledger entries worth {_fmt(r['total'])} for an account that does not exist"
        else:
            detail = f"balance {_fmt(r['balance'])} but its ledger entries sum to {_fmt(r['total'])}"
        report.add(ACCOUNT_BALANCES_MATCH_LEDGER, subject, detail)

    # Balance column below zero, or the running sum of the account's entries ever below zero. Entries
    # of one account are inserted while its row is locked, so their ids follow the real order.
    for r in await conn.fetch(
        """
        SELECT customer_id, kind, balance AS lowest, NULL::bigint AS entry_id FROM payments.accounts
         WHERE balance < 0
        UNION ALL
        SELECT DISTINCT ON (customer_id, account) customer_id, account, running, id
          FROM (SELECT id, customer_id, account,
                       sum(amount) OVER (PARTITION BY customer_id, account ORDER BY id) AS running
                  FROM payments.ledger_entries WHERE customer_id IS NOT NULL) x
         WHERE running < 0
         ORDER BY 1, 2, 3
        """
    ):
        where = "balance" if r["entry_id"] is None else f"running balance after ledger entry {r['entry_id']}"
        report.add(
            ACCOUNT_BALANCES_NEVER_NEGATIVE,
            f"{r['customer_id']}/{r['kind']}",
            f"{where} is {_fmt(r['lowest'])}, below zero",
        )


async def _double_debit(conn: Conn, report: ReconcileReport) -> None:
    """No request debited twice: one hold at most, never more than the total, nothing kept on failure."""
    for r in await conn.fetch(
        """
        SELECT p.payment_id, p.request_id, p.status, p.total, p.bonus_amount,
               coalesce(e.holds, 0) AS holds, coalesce(e.voids, 0) AS voids, coalesce(e.debited, 0) AS debited
          FROM payments.payments p
          LEFT JOIN (
                SELECT e.payment_id,
                       count(*) FILTER (WHERE e.posting_kind = 'HOLD') AS holds,
                       count(*) FILTER (WHERE e.posting_kind = 'VOID') AS voids,
                       -sum(e.amount) AS debited
                  FROM payments.ledger_entries e
                  JOIN payments.payments pp ON pp.payment_id = e.payment_id AND pp.customer_id = e.customer_id
                 WHERE e.posting_kind NOT IN ('REFUND', 'OVERPAYMENT_CREDIT', 'TOP_UP')
                 GROUP BY e.payment_id) e ON e.payment_id = p.payment_id
         WHERE coalesce(e.holds, 0) > 1 OR coalesce(e.voids, 0) > 1
            OR coalesce(e.debited, 0) > p.total
            OR (p.status IN ('FAILED', 'CANCELLED') AND coalesce(e.debited, 0) <> 0)
         ORDER BY p.payment_id
        """
    ):
        subject = f"request {r['request_id']} (payment {r['payment_id']})"
        if r["holds"] > 1 or r["voids"] > 1:
            detail = f"{r['holds']} holds and {r['voids']} voids on the customer's account (at most one each)"
        elif r["status"] in ("FAILED", "CANCELLED"):
            detail = f"{r['status']} payment still keeps {_fmt(r['debited'])} of the customer's money"
        else:
            detail = f"customer debited {_fmt(r['debited'])} for a payment of total {_fmt(r['total'])}"
        report.add(NO_DOUBLE_DEBIT, subject, detail)


async def _bonus(conn: Conn, report: ReconcileReport) -> None:
    """Check 2 (exactly one bonus decision per completed payment) and the bonus ledger's balances."""
    for r in await conn.fetch(
        f"""
        WITH completed AS (
            SELECT payment_id, customer_id, kind, amount FROM payments.payments
             WHERE status IN {COMPLETED_STATUSES} AND kind IN {PAYMENT_COMPLETED_KINDS}),
        decided AS (
            SELECT payment_id, count(*) AS n, sum(accrued) AS accrued FROM bonus.accrual_decisions
             GROUP BY payment_id)
        SELECT coalesce(c.payment_id, d.payment_id) AS payment_id, c.kind, c.amount,
               coalesce(d.n, 0) AS n, d.accrued
          FROM completed c FULL JOIN decided d ON d.payment_id = c.payment_id
         WHERE c.payment_id IS NULL OR coalesce(d.n, 0) <> 1
         ORDER BY 1
        """
    ):
        if r["kind"] is None:
            detail = (
                f"{r['n']} bonus decision(s) (accrued {_fmt(r['accrued'])}) for a payment that "
                "payments never completed"
            )
        else:
            detail = (
                f"completed {r['kind']} payment of {_fmt(r['amount'])} has {r['n']} bonus decisions "
                "(exactly one expected)"
            )
        report.add(BONUS_DECISION_EXACTLY_ONCE, r["payment_id"], detail)

    # An ACCRUED decision has its one ACCRUAL entry of the same amount; an entry has its decision.
    for r in await conn.fetch(
        """
        SELECT coalesce(d.payment_id, e.payment_id) AS payment_id, d.accrued,
               coalesce(e.n, 0) AS n, e.amount
          FROM (SELECT payment_id, sum(accrued) AS accrued FROM bonus.accrual_decisions
                 WHERE accrued > 0 GROUP BY payment_id) d
          FULL JOIN (SELECT payment_id, count(*) AS n, sum(amount) AS amount FROM bonus.ledger_entries
                      WHERE kind = 'ACCRUAL' GROUP BY payment_id) e ON e.payment_id = d.payment_id
         WHERE d.payment_id IS NULL OR e.payment_id IS NULL OR e.n <> 1 OR e.amount <> d.accrued
         ORDER BY 1
        """
    ):
        report.add(
            BONUS_DECISION_EXACTLY_ONCE,
            r["payment_id"],
            f"decision accrued {_fmt(r['accrued'] or 0)} but the bonus ledger has {r['n']} ACCRUAL "
            f"entr{'y' if r['n'] == 1 else 'ies'} worth {_fmt(r['amount'] or 0)}",
        )

    for r in await conn.fetch(
        f"""
        SELECT coalesce(b.customer_id, e.customer_id) AS customer_id, b.balance, coalesce(e.total, 0) AS total
          FROM bonus.balances b
          FULL JOIN (SELECT customer_id, sum({_SIGNED_BONUS}) AS total FROM bonus.ledger_entries
                      GROUP BY customer_id) e ON e.customer_id = b.customer_id
         WHERE b.balance IS NULL OR b.balance <> coalesce(e.total, 0) OR coalesce(e.total, 0) < 0
         ORDER BY 1
        """
    ):
        balance = "no balance row" if r["balance"] is None else f"balance {_fmt(r['balance'])}"
        report.add(
            BONUS_BALANCES_MATCH_LEDGER,
            r["customer_id"],
            f"{balance} but the bonus ledger sums to {_fmt(r['total'])}",
        )


_PLANS_SQL = """
    SELECT a.customer_id, p->>'id' AS plan_id, (p->>'price')::bigint AS price,
           coalesce((p->>'refunded')::bigint, 0) AS refunded,
           jsonb_array_length(p->'parts') AS parts,
           (SELECT coalesce(sum((x->>'a')::bigint), 0) FROM jsonb_array_elements(p->'parts') x) AS parts_sum
      FROM billing.accounts a, jsonb_array_elements(a.snapshot->'purchases') p
"""


async def _red(conn: Conn, report: ReconcileReport) -> None:
    """Check 3 (approved Red purchase ↔ 4-part plan) and RED_BILL payment ↔ billing repayment."""
    for r in await conn.fetch(
        f"""
        WITH approved AS (
            SELECT payment_id::text AS plan_id, customer_id, amount - bonus_amount AS price, red_state,
                   red_plan_id::text AS red_plan_id
              FROM payments.payments
             WHERE kind = 'PURCHASE' AND funding = 'RED' AND status IN {COMPLETED_STATUSES}),
        plans AS (
            SELECT plan_id, min(customer_id::text) AS customer_id, count(*) AS n, min(price) AS price,
                   min(refunded) AS refunded, min(parts) AS parts, min(parts_sum) AS parts_sum
              FROM ({_PLANS_SQL}) x GROUP BY plan_id)
        SELECT coalesce(a.plan_id, p.plan_id) AS plan_id, a.price AS paid_price, a.red_state, a.red_plan_id,
               coalesce(p.n, 0) AS n, p.price, p.refunded, p.parts, p.parts_sum
          FROM approved a FULL JOIN plans p ON p.plan_id = a.plan_id
         ORDER BY 1
        """
    ):
        problems: list[str] = []
        if r["paid_price"] is None:
            problems.append(
                f"billing holds a plan of {_fmt(r['price'])} for a payment that is not a completed "
                "Red purchase (failed or cancelled without compensation?)"
            )
        else:
            if r["red_state"] != "APPROVED" or r["red_plan_id"] != r["plan_id"]:
                problems.append(
                    f"completed Red purchase has red_state {r['red_state']}, plan {r['red_plan_id']}"
                )
            if r["n"] != 1:
                problems.append(f"completed Red purchase of {_fmt(r['paid_price'])} has {r['n']} plans")
            elif r["price"] != r["paid_price"]:
                problems.append(
                    f"plan price {_fmt(r['price'])} differs from the Red part {_fmt(r['paid_price'])}"
                )
            # A merchant refund lowers the unbilled parts (billing's refund_purchase); what it could
            # not take off unbilled parts was already paid and is re-allocated instead. So the parts
            # sum to the price less at most the refunded amount (exactly the price when unrefunded).
            if r["n"] >= 1 and (
                r["parts"] != PLAN_PARTS
                or not r["price"] - (r["refunded"] or 0) <= r["parts_sum"] <= r["price"]
            ):
                expected = _fmt(r["price"])
                if r["refunded"]:
                    low = _fmt(r["price"] - r["refunded"])
                    expected = f"{low} to {expected} after {_fmt(r['refunded'])} refunded"
                problems.append(
                    f"plan has {r['parts']} parts summing to {_fmt(r['parts_sum'])} "
                    f"({PLAN_PARTS} parts summing to {expected} expected)"
                )
        for problem in problems:
            report.add(RED_PURCHASE_HAS_PLAN, r["plan_id"], problem)

    for r in await conn.fetch(
        f"""
        WITH paid AS (
            SELECT payment_id, customer_id, amount FROM payments.payments
             WHERE kind = 'RED_BILL' AND status IN {COMPLETED_STATUSES}),
        applied AS (
            SELECT payment_id, count(*) AS n, sum(amount) AS amount FROM billing.repayments
             GROUP BY payment_id)
        SELECT coalesce(p.payment_id, a.payment_id) AS payment_id, p.amount AS paid, coalesce(a.n, 0) AS n,
               a.amount AS applied
          FROM paid p FULL JOIN applied a ON a.payment_id = p.payment_id
         WHERE p.payment_id IS NULL OR coalesce(a.n, 0) <> 1 OR a.amount <> p.amount
         ORDER BY 1
        """
    ):
        if r["paid"] is None:
            detail = f"billing applied {_fmt(r['applied'])} for a payment payments never completed"
        elif r["n"] != 1:
            detail = f"completed Red bill payment of {_fmt(r['paid'])} applied {r['n']} times (once expected)"
        else:
            detail = f"Red bill payment of {_fmt(r['paid'])} applied as {_fmt(r['applied'])}"
        report.add(RED_BILL_PAYMENT_APPLIED, r["payment_id"], detail)


async def _billing(conn: Conn, report: ReconcileReport) -> None:
    """Billing's own money conservation and the at-most-one-penalty rule."""
    for r in await conn.fetch(
        """
        SELECT payment_id, amount,
               coalesce((allocation->>'to_bill')::bigint, 0) AS to_bill,
               coalesce((SELECT sum((x->>'amount')::bigint)
                           FROM jsonb_array_elements(coalesce(allocation->'to_purchases', '[]'::jsonb)) x), 0)
                 AS to_purchases,
               coalesce((allocation->>'carried')::bigint, 0) AS carried,
               coalesce((allocation->>'refunded_to_gold')::bigint, 0) AS refunded,
               coalesce((allocation->>'prepayment_used')::bigint, 0) AS prepaid
          FROM billing.repayments ORDER BY payment_id
        """
    ):
        # RepaymentApplied v2 (docs/billing.md §5): the destinations also carry an earlier prepayment
        # the repayment released (``prepayment_used``, absent from v1 rows: 0).
        allocated = r["to_bill"] + r["to_purchases"] + r["carried"] + r["refunded"]
        if allocated != r["amount"] + r["prepaid"]:
            prepaid = f" + earlier prepayment {_fmt(r['prepaid'])}" if r["prepaid"] else ""
            report.add(
                BILLING_MONEY_CONSERVED,
                r["payment_id"],
                f"paid {_fmt(r['amount'])}{prepaid} but allocated {_fmt(allocated)} "
                f"(bill {_fmt(r['to_bill'])} + purchases {_fmt(r['to_purchases'])} + carried "
                f"{_fmt(r['carried'])} + refunded to Gold {_fmt(r['refunded'])})",
            )
    for r in await conn.fetch(
        """
        SELECT p.bill_id, p.n, p.amount
          FROM (SELECT bill_id, count(*) AS n, sum(amount) AS amount FROM billing.penalties
                 GROUP BY bill_id) p
          LEFT JOIN billing.bills b ON b.bill_id = p.bill_id
         WHERE p.n > 1 OR b.bill_id IS NULL
         ORDER BY 1
        """
    ):
        detail = (
            f"{r['n']} penalties worth {_fmt(r['amount'])} (at most one per bill)"
            if r["n"] > 1
            else f"penalty of {_fmt(r['amount'])} for a bill that does not exist"
        )
        report.add(ONE_PENALTY_PER_BILL, r["bill_id"], detail)


async def _overpayments(conn: Conn, report: ReconcileReport) -> None:
    """Check 4: billing's refunds to Gold ↔ payments' OVERPAYMENT_CREDIT postings (keyed by refund id).

    Billing derives each ``OverpaymentRefunded.refund_id`` from its cause (``derived_id`` in
    services/billing/store.py): a repayment, a bill issue, a cancellation, a merchant refund or a
    closing. Payments posts the credit under that refund id. Only repayments keep the refunded
    amount in a billing table (``repayments.allocation``); the other causes are known, so their ids
    are, but not their amounts (the event lives only in the outbox until published). Hence:
    forward, every repayment that sent money to Gold has its credit: exactly the allocation's figure
    for a v2 allocation (``RepaymentApplied`` v2 counts an earlier carried prepayment released with
    the payment), at least it for a v1 one (which did not); backward, every Gold credit is explained
    by a billing cause of the same customer and was posted exactly once.
    """
    causes: dict[UUID, tuple[UUID, str]] = {}
    expected: dict[UUID, tuple[UUID, UUID, int]] = {}
    exact: set[UUID] = set()
    for r in await conn.fetch(
        "SELECT payment_id, customer_id, coalesce((allocation->>'refunded_to_gold')::bigint, 0) AS gold, "
        "allocation ? 'prepayment_used' AS v2 FROM billing.repayments"
    ):
        rid = derived_id("overpayment", r["payment_id"])
        causes[rid] = (r["customer_id"], f"repayment {r['payment_id']}")
        if r["gold"] > 0:
            expected[rid] = (r["payment_id"], r["customer_id"], r["gold"])
            if r["v2"]:
                exact.add(rid)
    for r in await conn.fetch("SELECT bill_id, customer_id FROM billing.bills"):
        causes[derived_id("issue", r["bill_id"])] = (r["customer_id"], f"bill {r['bill_id']}")
    for r in await conn.fetch(
        "SELECT customer_id, closed, snapshot->'cancelled' AS cancelled FROM billing.accounts"
    ):
        if r["closed"]:
            causes[derived_id("closed", r["customer_id"])] = (r["customer_id"], "closing of Red")
        for pid in _json(r["cancelled"]) or []:
            causes[derived_id("cancel", UUID(pid))] = (r["customer_id"], f"cancelled purchase {pid}")
    for r in await conn.fetch(
        "SELECT f.refund_id, p.customer_id FROM payments.refunds f "
        "JOIN payments.payments p USING (payment_id) "
        "WHERE p.funding = 'RED' AND p.kind = 'PURCHASE'"
    ):
        causes[derived_id("refund", r["refund_id"])] = (r["customer_id"], f"refund {r['refund_id']}")

    credits: dict[UUID, tuple[UUID | None, int, int]] = {}
    for r in await conn.fetch(
        "SELECT payment_id, min(customer_id::text)::uuid AS customer_id, count(*) AS n, "
        "sum(amount) AS amount "
        "FROM payments.ledger_entries WHERE posting_kind = 'OVERPAYMENT_CREDIT' AND account = 'GOLD' "
        "GROUP BY payment_id"
    ):
        credits[r["payment_id"]] = (r["customer_id"], int(r["n"]), int(r["amount"]))
    report.counts["gold_credits"] = len(credits)

    for rid, (payment_id, customer_id, gold) in sorted(expected.items(), key=lambda kv: str(kv[1][0])):
        credit = credits.get(rid)
        if credit is None:
            report.add(
                OVERPAYMENT_CREDITED_TO_GOLD,
                f"refund {rid} (repayment {payment_id})",
                f"billing refunded {_fmt(gold)} to Gold but payments never credited customer {customer_id}",
            )
        elif credit[2] < gold:
            report.add(
                OVERPAYMENT_CREDITED_TO_GOLD,
                f"refund {rid} (repayment {payment_id})",
                f"billing refunded {_fmt(gold)} to Gold but payments credited only {_fmt(credit[2])}",
            )
        elif rid in exact and credit[1] == 1 and credit[2] != gold:
            report.add(
                OVERPAYMENT_CREDITED_TO_GOLD,
                f"refund {rid} (repayment {payment_id})",
                f"billing refunded {_fmt(gold)} to Gold but payments credited {_fmt(credit[2])}",
            )
    for rid, (credited, n, amount) in sorted(credits.items(), key=lambda kv: str(kv[0])):
        cause = causes.get(rid)
        if cause is None:
            report.add(
                OVERPAYMENT_CREDITED_TO_GOLD,
                f"refund {rid}",
                f"Gold credit of {_fmt(amount)} to {credited} matches no billing refund",
            )
        elif cause[0] != credited:
            report.add(
                OVERPAYMENT_CREDITED_TO_GOLD,
                f"refund {rid} ({cause[1]})",
                f"Gold credit of {_fmt(amount)} went to {credited}, billing refunded {cause[0]}",
            )
        if n > 1:
            report.add(
                OVERPAYMENT_CREDITED_TO_GOLD,
                f"refund {rid}" + (f" ({cause[1]})" if cause else ""),
                f"credited to Gold {n} times, {_fmt(amount)} in all (exactly once expected)",
            )


async def _notified(
    conn: Conn, report: ReconcileReport, routes: Mapping[str, Sequence[str]], failed_ok: bool
) -> None:
    """Check 5: every bill (BillIssued) and receipt (PaymentCompleted, RepaymentApplied) was notified.

    Deliveries are keyed by the event id, which billing and payments do not keep. Receipts are
    matched through the link notify stores in ``deliveries.data`` (``…/<receipt number>``: the
    payments receipt number, or ``RED-<repayment id>`` for a Red repayment). A bill's delivery
    carries no bill id, so bills are matched by count per customer: as many BillIssued events
    delivered as bills issued. For every event found, each expected channel must have its row.
    """
    customers = {
        r["customer_id"]: r["email"]
        for r in await conn.fetch("SELECT customer_id, email FROM notify.customers")
    }

    def channel_problems(event_type: str, customer_id: UUID, rows: Sequence[asyncpg.Record]) -> list[str]:
        want = expected_channels(
            routes,
            event_type,
            customer_known=customer_id in customers,
            has_email=bool(customers.get(customer_id)),
        )
        have = {r["channel"]: r["status"] for r in rows}
        problems = [f"no {c} delivery" for c in sorted(want - set(have))]
        bad = {"PENDING"} if failed_ok else {"PENDING", "FAILED"}
        problems += [f"{c} delivery is {s}" for c, s in sorted(have.items()) if s in bad]
        return problems

    deliveries: dict[UUID, list[asyncpg.Record]] = defaultdict(list)
    by_type: dict[str, dict[UUID, list[UUID]]] = defaultdict(lambda: defaultdict(list))
    for r in await conn.fetch(
        "SELECT source_event_id, event_type, channel, customer_id, status, data->>'link' AS link "
        "FROM notify.deliveries WHERE event_type IN ('BillIssued', 'PaymentCompleted', 'RepaymentApplied') "
        "ORDER BY id"
    ):
        if r["source_event_id"] not in deliveries:
            by_type[r["event_type"]][r["customer_id"]].append(r["source_event_id"])
        deliveries[r["source_event_id"]].append(r)

    # Bills: count per customer, then each BillIssued event's channels.
    bills: dict[UUID, list[asyncpg.Record]] = defaultdict(list)
    for r in await conn.fetch(
        "SELECT bill_id, customer_id, statement_date, amount FROM billing.bills ORDER BY 3"
    ):
        bills[r["customer_id"]].append(r)
    notified = by_type["BillIssued"]
    for customer_id in sorted(set(bills) | set(notified), key=str):
        issued, events = bills.get(customer_id, []), notified.get(customer_id, [])
        if len(issued) != len(events):
            listed = ", ".join(f"{b['bill_id']} ({b['statement_date']}, {_fmt(b['amount'])})" for b in issued)
            report.add(
                BILLS_NOTIFIED,
                f"customer {customer_id}",
                f"{len(issued)} bill(s) issued but {len(events)} BillIssued event(s) notified; bills: "
                f"{listed or 'none'}",
            )
        for event_id in events:
            for problem in channel_problems("BillIssued", customer_id, deliveries[event_id]):
                report.add(BILLS_NOTIFIED, f"customer {customer_id}, BillIssued event {event_id}", problem)

    # Receipts: link suffix → delivered events.
    links: dict[str, set[UUID]] = defaultdict(set)
    for event_id, rows in deliveries.items():
        link = next((r["link"] for r in rows if r["link"]), None)
        if link:
            links[link.rsplit("/", 1)[-1]].add(event_id)
    receipts: list[tuple[str, UUID, UUID, str]] = [
        (r["receipt_number"], r["payment_id"], r["customer_id"], "PaymentCompleted")
        for r in await conn.fetch(
            f"SELECT payment_id, customer_id, receipt_number FROM payments.payments "
            f"WHERE status IN {COMPLETED_STATUSES} AND kind IN {PAYMENT_COMPLETED_KINDS} "
            "ORDER BY completed_at"
        )
    ]
    receipts += [
        (f"RED-{r['repayment_id'].hex[:16].upper()}", r["payment_id"], r["customer_id"], "RepaymentApplied")
        for r in await conn.fetch("SELECT payment_id, repayment_id, customer_id FROM billing.repayments")
    ]
    known: set[str] = set()
    for number, payment_id, customer_id, event_type in receipts:
        known.add(number)
        delivered = links.get(number, set()) if number else set()
        subject = f"payment {payment_id}, receipt {number}"
        if len(delivered) != 1:
            report.add(
                RECEIPTS_NOTIFIED,
                subject,
                f"{event_type} notified {len(delivered)} times (exactly once expected)",
            )
        for event_id in sorted(delivered, key=str):
            for problem in channel_problems(event_type, customer_id, deliveries[event_id]):
                report.add(RECEIPTS_NOTIFIED, subject, problem)
    for number, unknown in sorted(links.items()):
        if number not in known:
            report.add(
                RECEIPTS_NOTIFIED,
                f"receipt {number}",
                f"{len(unknown)} event(s) notified for a receipt neither payments nor billing issued",
            )


def _origin_problem(contract: str, principal: str | None, key_id: str | None) -> str | None:
    """Why ``principal`` may not have commanded ``contract`` (None when it may)."""
    if principal is None:
        return f"{contract} has no authenticated origin recorded"
    try:
        writers = topic_for_contract(contract).writers_of(contract)
    except KeyError:
        writers = ()
    if principal in writers:
        return None
    allowed = ", ".join(writers) or "nobody"
    return f"{contract} commanded by {principal} (key {key_id}), but only {allowed} may write it"


async def _credit_origins(conn: Conn, report: ReconcileReport) -> None:
    """Every credit to a customer account traces back to an authenticated command or event of a
    principal permitted to write it (issue "trust boundary": money cannot appear unnoticed).

    Credits are the positive ledger entries of GOLD/WALLET. A REFUND credit traces to the ``Refund``
    commands recorded for its payment (``payments.refunds``), an OVERPAYMENT_CREDIT to the events
    recorded under its ledger id (``payments.event_credits``); every other credit (TOP_UP, the
    recipient's TRANSFER, a VOID returning a hold) to the command that created its payment
    (``payments.payments``). The recorded ``commanded_by`` must be a writer of that contract in the
    topic registry; a NULL origin, a missing record or a credit larger than its records is a finding.
    """
    examined = 0
    for r in await conn.fetch(
        f"""
        SELECT e.payment_id, e.posting_kind, e.customer_id, e.account, sum(e.amount) AS amount,
               p.payment_id IS NOT NULL AS known, p.kind, p.commanded_by, p.key_id
          FROM payments.ledger_entries e
          LEFT JOIN payments.payments p ON p.payment_id = e.payment_id
         WHERE e.customer_id IS NOT NULL AND e.amount > 0 AND e.posting_kind NOT IN {_OWN_ORIGIN_POSTINGS}
         GROUP BY e.payment_id, e.posting_kind, e.customer_id, e.account, p.payment_id
         ORDER BY 1, 2, 3, 4
        """
    ):
        examined += 1
        subject = f"payment {r['payment_id']} ({r['posting_kind']} to {r['customer_id']}/{r['account']})"
        if not r["known"]:
            problem: str | None = "no payment, so no command, is recorded for it"
        else:
            contract = PAYMENT_COMMANDS.get(r["kind"], f"a {r['kind']} command")
            problem = _origin_problem(contract, r["commanded_by"], r["key_id"])
        if problem is not None:
            report.add(CREDITS_HAVE_PERMITTED_ORIGIN, subject, f"credit of {_fmt(r['amount'])}: {problem}")

    # Refunds and event credits: each record of the credit's id must have a permitted origin, and
    # together the records must cover the whole credit.
    records: dict[tuple[str, UUID], list[asyncpg.Record]] = defaultdict(list)
    for r in await conn.fetch(
        "SELECT 'REFUND' AS posting_kind, payment_id AS ref, 'refund ' || refund_id AS what, "
        "'Refund' AS contract, amount - bonus_share AS amount, commanded_by, key_id FROM payments.refunds "
        "UNION ALL "
        "SELECT 'OVERPAYMENT_CREDIT', reference_id, 'event ' || coalesce(event_id::text, '(not recorded)'), "
        "event_type, amount, commanded_by, key_id FROM payments.event_credits "
        "ORDER BY 1, 2, 3"
    ):
        records[(r["posting_kind"], r["ref"])].append(r)
    for r in await conn.fetch(
        f"""
        SELECT posting_kind, payment_id, customer_id, account, sum(amount) AS amount
          FROM payments.ledger_entries
         WHERE customer_id IS NOT NULL AND amount > 0 AND posting_kind IN {_OWN_ORIGIN_POSTINGS}
         GROUP BY 1, 2, 3, 4
         ORDER BY 1, 2, 3, 4
        """
    ):
        examined += 1
        credit = f"{r['posting_kind']} to {r['customer_id']}/{r['account']}"
        of = "payment" if r["posting_kind"] == "REFUND" else "refund"
        covered = 0
        for rec in records.get((r["posting_kind"], r["payment_id"]), []):
            covered += rec["amount"]
            problem = _origin_problem(rec["contract"], rec["commanded_by"], rec["key_id"])
            if problem is not None:
                report.add(
                    CREDITS_HAVE_PERMITTED_ORIGIN,
                    f"{rec['what']} ({credit}, {of} {r['payment_id']})",
                    f"credit of {_fmt(rec['amount'])}: {problem}",
                )
        if r["amount"] > covered:
            recorded = "no Refund is" if r["posting_kind"] == "REFUND" else "no event is"
            report.add(
                CREDITS_HAVE_PERMITTED_ORIGIN,
                f"{of} {r['payment_id']} ({credit})",
                f"credit of {_fmt(r['amount'])} but only {_fmt(covered)} is recorded as commanded"
                + (f" ({recorded} recorded for it)" if covered == 0 else ""),
            )
    report.counts["customer_credits"] = examined


async def reconcile(
    conn: Conn,
    *,
    routes: Mapping[str, Sequence[str]] | None = None,
    failed_deliveries_ok: bool = True,
) -> ReconcileReport:
    """Run every check on one consistent snapshot of the four schemas.

    ``conn`` is any connection to the shared database (its ``search_path`` does not matter: the SQL
    is schema-qualified). ``routes`` is notify's channel routing (``NotifySettings.routes``; default
    ``default_routes()``). A delivery that ended FAILED (dead-lettered after its retries, with a
    ``NotificationFailed``) counts as handled unless ``failed_deliveries_ok`` is False; a PENDING one
    is always a discrepancy (stuck, or the system was not quiet).
    """
    routes = default_routes() if routes is None else routes
    report = ReconcileReport()
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        await _counts(conn, report)
        await _payments_ledger(conn, report)
        await _double_debit(conn, report)
        await _bonus(conn, report)
        await _red(conn, report)
        await _billing(conn, report)
        await _overpayments(conn, report)
        await _notified(conn, report, routes, failed_deliveries_ok)
        await _credit_origins(conn, report)
    return report


async def reconcile_report(settings: Settings) -> ReconcileReport:
    """Connect with ``settings.db.dsn`` in a read-only transaction and reconcile.

    A database that cannot be reached, or lacks the services' schemas, is one ``OpsError`` line.
    """
    from shared.ops.common import OpsError

    try:
        conn = await asyncpg.connect(
            settings.db.dsn,
            server_settings={"default_transaction_read_only": "on", "application_name": "aqsha-reconcile"},
        )
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise OpsError(f"cannot connect to PostgreSQL: {exc}") from None
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            return await reconcile(conn, routes=NotifySettings().routes)
    except asyncpg.UndefinedTableError as exc:
        raise OpsError(
            f"the database has no aqsha schemas ({exc}): is AQSHA_PG_DSN the platform's database?"
        ) from None
    finally:
        await conn.close()


async def run_reconcile(settings: Settings, *, echo: Callable[[str], None] = print) -> int:
    """``aqsha reconcile``: connect with ``settings.db.dsn``, print the report; 0 clean, 1 discrepancies."""
    report = await reconcile_report(settings)
    echo(report.render())
    return 0 if report.clean else 1
