"""The chaos auditor: zero-tolerance invariants over a quiet platform (docs/chaos.md).

Reuses ``shared.ops.reconcile`` for the cross-service money and exactly-once checks (b–f) and adds
what only the chaos run knows: the commands it sent, the poison and forged records it produced, the
gateways, the topics as they are on the broker, and the log audit.
"""

from __future__ import annotations

import email
import re
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.notify.handlers import SUBSCRIPTIONS
from services.notify.settings import EMAIL, INBOX, PUSH, SMS, NotifySettings
from shared import logaudit
from shared.contracts.envelope import ContractError, decode
from shared.contracts.payments import PaymentCommand
from shared.kafka import DLQ_GROUP, DLQ_REASON, assign_from_beginning
from shared.ops import reconcile as rc
from shared.ops.platform import GROUPS
from shared.topics import dlq_name, resolve, topic_by_name
from shared.trust import REASONS as TRUST_REASONS
from tests.chaos.runner import FORGED_HEADER, POISON_HEADER, TERMINAL_TYPES

if TYPE_CHECKING:
    from tests.chaos.runner import Driver
    from tests.chaos.workload import Planned

#: Invariant name -> the reconcile checks it is made of.
RECONCILE_INVARIANTS: dict[str, tuple[str, ...]] = {
    "no_double_debit": (rc.NO_DOUBLE_DEBIT,),
    "ledger_sums_to_zero": (rc.LEDGER_SUMS_TO_ZERO,),
    "balances_match_ledger": (rc.ACCOUNT_BALANCES_MATCH_LEDGER,),
    "balances_never_negative": (rc.ACCOUNT_BALANCES_NEVER_NEGATIVE,),
    "bonus_decision_exactly_once": (rc.BONUS_DECISION_EXACTLY_ONCE,),
    "bonus_balances_match_ledger": (rc.BONUS_BALANCES_MATCH_LEDGER,),
    "red_purchase_has_one_plan": (rc.RED_PURCHASE_HAS_PLAN,),
    "one_penalty_per_bill": (rc.ONE_PENALTY_PER_BILL,),
    "billing_money_conserved": (
        rc.BILLING_MONEY_CONSERVED,
        rc.RED_BILL_PAYMENT_APPLIED,
        rc.OVERPAYMENT_CREDITED_TO_GOLD,
    ),
    "bills_and_receipts_notified": (rc.BILLS_NOTIFIED, rc.RECEIPTS_NOTIFIED),
    "credits_traced_to_permitted_producer": (rc.CREDITS_HAVE_PERMITTED_ORIGIN,),
}
#: Every invariant the report lists, in order (spec letters a–h, then the log audit).
INVARIANTS: tuple[str, ...] = (
    "exactly_one_outcome",  # a
    "nothing_stuck",  # a
    "pending_codes_expired",  # a
    "no_double_debit",  # b
    "ledger_sums_to_zero",  # c
    "balances_match_ledger",  # c
    "balances_never_negative",  # c
    "bonus_decision_exactly_once",  # d
    "bonus_balances_match_ledger",  # d
    "red_purchase_has_one_plan",  # e
    "one_penalty_per_bill",  # e
    "billing_money_conserved",  # e
    "bills_and_receipts_notified",  # f
    "delivered_exactly_once_per_channel",  # f
    "poison_dead_lettered",  # g
    "poison_not_blocking",  # g
    "only_poison_dead_lettered",  # g
    "forged_records_refused",  # i: the trust boundary
    "credits_traced_to_permitted_producer",  # i: every credit has a permitted, verified sender
    "lag_zero_within_60s",  # h
    "logs_clean",
)
NOTIFY_TYPES = {t for name, types in SUBSCRIPTIONS.items() if name != "aqsha.customers.events" for t in types}
#: Where a forged record's ids must not appear (``$1``: its ``refs``).
FORGED_EFFECTS: tuple[tuple[str, str], ...] = (
    ("payment", "SELECT count(*) FROM payments.payments WHERE request_id = ANY($1::uuid[]) "
                "OR payment_id = ANY($1::uuid[])"),
    ("idempotency key", "SELECT count(*) FROM payments.idempotency_keys WHERE key = ANY($1::uuid[]::text[])"),
    ("payments ledger entry", "SELECT count(*) FROM payments.ledger_entries "
                              "WHERE payment_id = ANY($1::uuid[])"),
    ("refund", "SELECT count(*) FROM payments.refunds WHERE refund_id = ANY($1::uuid[]) "
               "OR payment_id = ANY($1::uuid[])"),
    ("bonus decision", "SELECT count(*) FROM bonus.accrual_decisions WHERE payment_id = ANY($1::uuid[])"),
    ("bonus ledger entry", "SELECT count(*) FROM bonus.ledger_entries WHERE payment_id = ANY($1::uuid[])"),
)  # fmt: skip


#: Timestamps and decimal fractions (``22:02:51.185374``, ``0.123456``): their six-digit parts would
#: match a known six-digit code by chance, so they are blanked (same length) before the log audit.
_NOT_SECRET = re.compile(r"\d{2}:\d{2}:\d{2}[.,]\d+|\d+\.\d+")


def _blank(m: re.Match[str]) -> str:
    return "t" * len(m.group(0))


class _Findings:
    def __init__(self) -> None:
        self.by: dict[str, list[str]] = {name: [] for name in INVARIANTS}

    def add(self, invariant: str, detail: str) -> None:
        self.by[invariant].append(detail)


async def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record of ``topic`` (all partitions, from the beginning to the current end)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        try:
            parts = await assign_from_beginning(consumer, [topic])
        except LookupError:  # the topic was never written to
            return []
        ends = await consumer.end_offsets(parts)
        out: list[Any] = []
        remaining = {tp for tp in parts if ends[tp] > 0}
        deadline = time.monotonic() + 120
        while remaining and time.monotonic() < deadline:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for records in batch.values():
                out.extend(records)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        if remaining:
            raise TimeoutError(f"could not read {topic} to its end: {sorted(map(str, remaining))}")
        return out
    finally:
        await consumer.stop()


def _headers(record: Any) -> dict[str, str]:
    return {
        k: (v.decode(errors="replace") if isinstance(v, bytes) else str(v)) for k, v in record.headers or []
    }


def _forged(record: Any) -> bool:
    """A hostile record of the ``forged`` fault (never an event of the platform's)."""
    return any(name == FORGED_HEADER for name, _ in record.headers or ())


async def _committed(bootstrap: str, group: str, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        return {tp: (await consumer.committed(tp)) or 0 for tp in tps}
    finally:
        await consumer.stop()


async def audit(driver: Driver, *, stuck: list[Planned], quiet_seconds: float | None) -> dict[str, Any]:
    """Every invariant; the report dict (``passed`` iff all hold)."""
    platform = driver.platform
    bootstrap = platform.endpoints.kafka
    suffix = platform.topic_suffix
    f = _Findings()
    conn = await asyncpg.connect(platform.dsn)
    try:
        recon = await rc.reconcile(conn, routes=NotifySettings().routes, failed_deliveries_ok=False)
        for invariant, checks in RECONCILE_INVARIANTS.items():
            for check in checks:
                for d in recon.of(check):
                    f.add(invariant, f"[{d.check}] {d.subject}: {d.detail}")

        # -- a: exactly one terminal outcome per command, nothing stuck, expired codes --------------
        events = {
            name: await read_topic(bootstrap, resolve(name, suffix))
            for name in (
                "aqsha.payments.events",
                "aqsha.payments.otp",
                "aqsha.billing.events",
                "aqsha.bonus.events",
            )
        }
        decoded: dict[str, list[Any]] = {}
        for name, records in events.items():
            decoded[name] = []
            for r in records:
                if _forged(r):  # refused by every consumer: audited below, not as the platform's event
                    continue
                try:
                    decoded[name].append(decode(r.value or b""))
                except ContractError:
                    continue
        outcomes: dict[UUID, set[UUID]] = defaultdict(set)
        for env in decoded["aqsha.payments.events"]:
            if env.type in TERMINAL_TYPES:
                rid = getattr(env.payload, "refund_id", None) or getattr(env.payload, "request_id", None)
                if rid is not None:
                    outcomes[rid].add(env.event_id)
        request_ids = [p.command.request_id for p in driver.sent]
        keys = {
            UUID(r["key"]): r["type"]
            for r in await conn.fetch(
                "SELECT key, outcome->>'type' AS type FROM payments.idempotency_keys "
                "WHERE scope = 'payments' AND key = ANY($1::text[])",
                [str(x) for x in request_ids],
            )
        }
        for sent in driver.sent:
            rid = sent.command.request_id
            n = len(outcomes.get(rid, ()))
            if rid not in keys:
                f.add("exactly_one_outcome", f"{sent.type} {rid}: never processed (no idempotency key)")
            elif n != 1:
                f.add("exactly_one_outcome", f"{sent.type} {rid}: {n} distinct terminal outcome events")
        for c in driver.confirms:
            n = len(outcomes.get(c.request_id, ()))
            if n > 1:
                f.add("exactly_one_outcome", f"ConfirmPayment {c.request_id}: {n} distinct outcome events")
        for r in await conn.fetch(
            "SELECT payment_id, request_id, kind, status FROM payments.payments "
            "WHERE status IN ('PENDING_CONFIRMATION', 'PENDING_PROVIDER')"
        ):
            f.add("nothing_stuck", f"payment {r['payment_id']} ({r['kind']}) still {r['status']}")
        for late in stuck:
            f.add("nothing_stuck", f"{late.type} {late.command.request_id} did not settle during its wave")
        pending = await conn.fetchval("SELECT count(*) FROM notify.deliveries WHERE status = 'PENDING'")
        if pending:
            f.add("nothing_stuck", f"{pending} notify deliveries still PENDING")
        for r in await conn.fetch(
            "SELECT request_id, status, reason_code FROM payments.payments "
            "WHERE request_id = ANY($1::uuid[])",
            driver.unconfirmed,
        ):
            if (r["status"], r["reason_code"]) != ("FAILED", "CODE_EXPIRED"):
                f.add(
                    "pending_codes_expired",
                    f"unconfirmed payment {r['request_id']} ended {r['status']}/{r['reason_code']}",
                )

        # -- f: every customer-facing event delivered once per configured channel ------------------
        customers = {
            r["customer_id"]: r["email"]
            for r in await conn.fetch("SELECT customer_id, email FROM notify.customers")
        }
        deliveries: dict[UUID, dict[str, str]] = defaultdict(dict)
        for r in await conn.fetch("SELECT source_event_id, channel, status FROM notify.deliveries"):
            deliveries[r["source_event_id"]][r["channel"]] = r["status"]
        routes = NotifySettings().routes
        seen_events: set[UUID] = set()
        for envs in decoded.values():
            for env in envs:
                if env.type not in NOTIFY_TYPES or env.event_id in seen_events:
                    continue
                seen_events.add(env.event_id)
                cid = getattr(env.payload, "customer_id", None)
                want = rc.expected_channels(
                    routes, env.type, customer_known=cid in customers, has_email=bool(customers.get(cid))
                )
                have = deliveries.get(env.event_id, {})
                for channel in sorted(want):
                    status = have.get(channel)
                    if status != "SENT":
                        f.add(
                            "delivered_exactly_once_per_channel",
                            f"{env.type} {env.event_id} → {channel}: {status or 'no delivery'}",
                        )
        with platform.gateways.lock:
            gateway_keys = {
                PUSH: [m.get("_key") for m in platform.gateways.push],
                SMS: [m.get("_key") for m in platform.gateways.sms],
            }
            mails = list(platform.gateways.mail)
        mail_keys: list[str | None] = [
            email.message_from_string(text).get("X-Idempotency-Key") for _, text in mails
        ]
        sent_rows = await conn.fetch(
            "SELECT source_event_id, channel FROM notify.deliveries WHERE status = 'SENT' AND channel <> $1",
            INBOX,
        )
        expected_keys: dict[str, set[str]] = {PUSH: set(), SMS: set(), EMAIL: set()}
        for r in sent_rows:
            expected_keys[r["channel"]].add(f"{r['source_event_id']}:{r['channel']}")
        resent = 0
        for channel, got in (*gateway_keys.items(), (EMAIL, mail_keys)):
            distinct = {k for k in got if k}
            resent += len([k for k in got if k]) - len(distinct)
            if None in got:
                f.add("delivered_exactly_once_per_channel", f"{channel}: a message without Idempotency-Key")
            for k in sorted(expected_keys[channel] - distinct):
                f.add("delivered_exactly_once_per_channel", f"{channel}: SENT {k} never reached the gateway")
            for k in sorted(distinct - expected_keys[channel]):
                f.add(
                    "delivered_exactly_once_per_channel", f"{channel}: gateway got {k} with no SENT delivery"
                )
        inbox_off = await conn.fetchval(
            "SELECT count(*) FROM notify.deliveries d "
            "LEFT JOIN notify.inbox_messages m ON m.delivery_id = d.id "
            "WHERE d.channel = 'inbox' AND d.status = 'SENT' AND m.id IS NULL"
        )
        if inbox_off:
            f.add(
                "delivered_exactly_once_per_channel", f"{inbox_off} SENT inbox deliveries without a message"
            )

        # -- g: poison on the dead-letter topics, nothing blocked, nothing else dead-lettered ------
        poison_ids = {p.poison_id for p in driver.poisons}
        forged_ids = {r.forged_id for r in driver.forged}
        dlq_hits: dict[str, list[dict[str, str]]] = defaultdict(list)
        forged_hits: dict[str, list[dict[str, str]]] = defaultdict(list)
        other_dead: list[str] = []
        dlq_sources = {p.registry_name for p in driver.poisons} | {r.registry_name for r in driver.forged}
        for name in dlq_sources | set(_all_input_topics()):
            for r in await read_topic(bootstrap, dlq_name(resolve(name, suffix))):
                h = _headers(r)
                pid = h.get(POISON_HEADER)
                fid = h.get(FORGED_HEADER)
                if pid in poison_ids:
                    dlq_hits[pid].append(h)
                elif fid in forged_ids:
                    forged_hits[fid].append(h)
                else:
                    other_dead.append(
                        f"{r.topic}: {h.get('aqsha-type', '?')} {h.get('aqsha-event-id', '?')} "
                        f"group {h.get(DLQ_GROUP)} reason {h.get(DLQ_REASON)}: "
                        f"{h.get('aqsha-dlq-error', '')[:200]}"
                    )
        for line in other_dead:
            f.add("only_poison_dead_lettered", line)
        inbox_rows: dict[str, set[UUID]] = {}
        for svc in GROUPS:
            inbox_rows[GROUPS[svc]] = {
                r["event_id"]
                for r in await conn.fetch(
                    f"SELECT event_id FROM {svc}.inbox WHERE consumer_group = $1", GROUPS[svc]
                )
            }
        idem = {
            r["key"]
            for r in await conn.fetch("SELECT key FROM payments.idempotency_keys WHERE scope = 'payments'")
        }
        topic_records: dict[str, list[Any]] = {}
        for poison in driver.poisons:
            p = poison
            spec = topic_by_name(p.registry_name)
            groups = [GROUPS[c] for c in spec.consumers if c in GROUPS]
            groups_dead = {h.get(DLQ_GROUP) for h in dlq_hits.get(p.poison_id, []) if h.get(DLQ_REASON)}
            for g in groups:
                if g not in groups_dead:
                    f.add(
                        "poison_dead_lettered",
                        f"{p.kind} poison {p.poison_id} on {p.topic}: no dead letter from {g}",
                    )
            for h in dlq_hits.get(p.poison_id, []):
                # Poison is signed by the topic's legitimate writer: its content must be what is refused.
                if h.get(DLQ_REASON) in TRUST_REASONS:
                    f.add(
                        "poison_dead_lettered",
                        f"{p.kind} poison {p.poison_id} on {p.topic}: refused by {h.get(DLQ_GROUP)} at the "
                        f"trust boundary ({h.get(DLQ_REASON)}), not for its content",
                    )
            if p.topic not in topic_records:
                topic_records[p.topic] = await read_topic(bootstrap, p.topic)
            followers = []
            for r in sorted(topic_records[p.topic], key=lambda r: r.offset):
                if r.partition != p.partition or r.offset <= p.offset or (r.key or b"").decode() != p.key:
                    continue
                if _forged(r):
                    continue
                try:
                    followers.append((r, decode(r.value or b"")))
                except ContractError:
                    continue
            if not followers:
                f.add(
                    "poison_not_blocking",
                    f"poison {p.poison_id} on {p.topic}: no valid message followed it on key {p.key}",
                )
                continue
            first = followers[0][0]
            tp = TopicPartition(p.topic, p.partition)
            for g in groups:
                committed = (await _committed(bootstrap, g, [tp]))[tp]
                if committed <= first.offset:
                    f.add(
                        "poison_not_blocking", f"{g} did not get past {p.topic}[{p.partition}]@{first.offset}"
                    )
                    continue
                if p.registry_name == "aqsha.payments.commands":
                    processed = any(
                        isinstance(e.payload, PaymentCommand) and str(e.payload.request_id) in idem
                        for _, e in followers
                    )
                elif p.registry_name == "aqsha.billing.commands":
                    processed = True  # RunBusinessDay has no inbox: the committed offset past it is the proof
                else:
                    # One of the followers the group consumes has its inbox row (types a group does not
                    # consume are acknowledged and skipped; the committed offset above covers them).
                    consumed = [e for _, e in followers if e.event_id in inbox_rows.get(g, set())]
                    skipped_only = all(r.offset < committed for r, _ in followers)
                    processed = bool(consumed) or skipped_only
                if not processed:
                    f.add(
                        "poison_not_blocking",
                        f"{g}: no message after poison {p.poison_id} on key {p.key} was processed",
                    )

        # -- i: forged records refused at the trust boundary, with no effect ------------------------
        await _audit_forged(conn, driver, forged_hits, f)

        # -- h: lag ----------------------------------------------------------------------------------
        if quiet_seconds is None:
            f.add("lag_zero_within_60s", "consumer lag / outboxes did not reach zero within 60 s")
        counts = dict(recon.counts)
    finally:
        await conn.close()

    # -- logs ----------------------------------------------------------------------------------------
    findings: list[logaudit.Finding] = []
    logs = sorted(platform.log_dir.glob("*.log"))
    for path in logs:
        text = path.read_text(encoding="utf-8", errors="replace")
        findings += logaudit.scan_lines(
            (_NOT_SECRET.sub(_blank, line) for line in text.splitlines()),
            source=str(path),
            secrets=driver.codes,
        )
    for finding in findings[:50]:
        f.add("logs_clean", str(finding))
    if not logs:
        f.add("logs_clean", "no service logs found")

    kinds: dict[str, int] = defaultdict(int)
    for rec in driver.faults:
        kinds[rec.kind] += 1
    invariants = {name: not f.by[name] for name in INVARIANTS}
    return {
        "seed": driver.plan.seed,
        "commands": len(driver.sent),
        "confirmations": len(driver.confirms),
        "faults": len(driver.faults),
        "fault_kinds": dict(kinds),
        "faults_detail": [
            {
                "kind": r.kind,
                "target": r.target,
                "wave": r.wave,
                "seconds": r.seconds,
                "detail": r.detail,
                "error": r.error,
            }
            for r in driver.faults
        ],
        "faults_failed": [r.kind for r in driver.faults if r.error],
        "duplicates_produced": driver.duplicates_produced,
        "resends_produced": driver.resends_produced,
        "poison_messages": len(driver.poisons),
        "forged_records": len(driver.forged),
        "forged_cases": _forged_cases(driver),
        "codes_left_to_expire": len(driver.unconfirmed),
        "codes_entered": len(driver.codes),
        "gateway_resends_deduplicated": resent,
        "logs_scanned": [p.name for p in logs],
        "quiet_seconds": quiet_seconds,
        "plan": driver.plan.describe(),
        "reconcile_counts": counts,
        "invariants": invariants,
        "violations": {name: items[:25] for name, items in f.by.items() if items},
        "violation_counts": {name: len(items) for name, items in f.by.items() if items},
        "passed": all(invariants.values()) and not any(r.error for r in driver.faults),
    }


async def _audit_forged(
    conn: asyncpg.Connection, driver: Driver, hits: dict[str, list[dict[str, str]]], f: _Findings
) -> None:
    """Every forged record was dead-lettered by every group consuming its topic, with the expected
    reason and only that reason, and left no trace: no inbox row for its event in any service, no
    payment, idempotency key, ledger entry, refund, bonus decision or notification for its ids, no
    Red account for the customer it tried to give one."""
    inboxes: dict[str, set[UUID]] = {}
    event_ids = [r.event_id for r in driver.forged if r.event_id is not None]
    for svc in GROUPS:
        inboxes[svc] = {
            row["event_id"]
            for row in await conn.fetch(
                f"SELECT event_id FROM {svc}.inbox WHERE event_id = ANY($1::uuid[])", event_ids
            )
        }
    delivered = {
        row["source_event_id"]
        for row in await conn.fetch(
            "SELECT source_event_id FROM notify.deliveries WHERE source_event_id = ANY($1::uuid[])", event_ids
        )
    }
    for rec in driver.forged:
        what = f"{rec.case} ({rec.type} on {rec.topic}, {rec.forged_id})"
        spec = topic_by_name(rec.registry_name)
        groups = [GROUPS[c] for c in spec.consumers if c in GROUPS]
        got = hits.get(rec.forged_id, [])
        by_group = {h.get(DLQ_GROUP) for h in got if h.get(DLQ_REASON) == rec.reason}
        for g in groups:
            if g not in by_group:
                f.add("forged_records_refused", f"{what}: no dead letter from {g} with reason {rec.reason}")
        for h in got:
            if h.get(DLQ_REASON) != rec.reason:
                f.add(
                    "forged_records_refused",
                    f"{what}: {h.get(DLQ_GROUP)} dead-lettered it as {h.get(DLQ_REASON)}, "
                    f"expected {rec.reason}",
                )
        if rec.event_id is not None:
            for svc, seen in inboxes.items():
                if rec.event_id in seen:
                    f.add("forged_records_refused", f"{what}: handled by {svc} (inbox row)")
            if rec.event_id in delivered:
                f.add("forged_records_refused", f"{what}: notify made a delivery for it")
        if rec.refs:
            for label, query in FORGED_EFFECTS:
                n = await conn.fetchval(query, list(rec.refs))
                if n:
                    f.add("forged_records_refused", f"{what}: {n} {label} row(s) for its ids")
        if rec.red_customer is not None:
            n = await conn.fetchval(
                "SELECT count(*) FROM billing.accounts WHERE customer_id = $1", rec.red_customer
            )
            if n:
                f.add("forged_records_refused", f"{what}: billing opened the Red account")


def _forged_cases(driver: Driver) -> dict[str, str]:
    """Each forged case and the refusal it must get."""
    return {r.case: r.reason for r in driver.forged}


def _all_input_topics() -> list[str]:
    from tests.chaos.runner import INPUT_TOPICS

    return list(INPUT_TOPICS)
