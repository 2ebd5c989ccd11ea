"""Billing use cases: load the account snapshot, let the pure domain decide, store facts and events.

Every use case runs in the caller's transaction (the inbox claim's), with the account row locked
``FOR UPDATE`` so one customer's messages are applied one at a time even across instances. Events
go to the outbox in the same transaction; the relay publishes them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from services.billing import store
from services.billing.domain import (
    AccountClosed,
    Allocation,
    ApplyPenalty,
    Bill,
    DeclineReason,
    PurchaseApproved,
    PurchaseCancelled,
    PurchaseRefunded,
    RecordOverdue,
    RedAccount,
    Rejected,
    WorkingDays,
    accept_new_terms,
    allocate_repayment,
    approve_purchase,
    cancel_purchase,
    close_account,
    open_account,
    refund_purchase,
)
from services.billing.domain import BillLine as DomainBillLine
from services.billing.domain import run_business_day as run_account_day
from shared.clock import Clock, business_date_of, credited_business_date
from shared.contracts.base import Contract
from shared.contracts.billing import (
    BillIssued,
    BillOverdueRecorded,
    BillPaid,
    BusinessDayClosed,
    LimitRestored,
    LimitRestoreReason,
    OverpaymentReason,
    OverpaymentRefunded,
    PenaltyApplied,
    PurchaseRepayment,
    RedAccountClosed,
    RedAccountOpened,
    RedPurchaseApproved,
    RedPurchaseDeclined,
    RedTermsAccepted,
    RepaymentAllocationV2,
    RepaymentApplied,
)
from shared.contracts.billing import BillLine as ContractBillLine
from shared.contracts.common import Funding, Merchant, PaymentKind, ReasonCode
from shared.contracts.envelope import Envelope, new_envelope
from shared.contracts.payments import (
    PaymentCompleted,
    PaymentRefunded,
    RedPurchaseCancelled,
    RedPurchaseRequested,
)
from shared.db import Conn
from shared.money import Money
from shared.outbox import Outbox

log = logging.getLogger("aqsha.billing")
PRODUCER = "billing"

_DECLINE_CODES: Mapping[DeclineReason, ReasonCode] = {
    DeclineReason.INSUFFICIENT_LIMIT: ReasonCode.INSUFFICIENT_LIMIT,
    DeclineReason.ACCOUNT_CLOSED: ReasonCode.RED_ACCOUNT_CLOSED,
    DeclineReason.INVALID_AMOUNT: ReasonCode.INVALID_AMOUNT,
    DeclineReason.PURCHASE_CANCELLED: ReasonCode.INVALID_PAYMENT_STATE,
}


def _uuid(s: str) -> UUID:
    return UUID(s)


def _limit_reason(account: RedAccount) -> LimitRestoreReason:
    # domain §4 "Limit": new terms restore on the fourth part; old terms by the amount paid.
    return (
        LimitRestoreReason.FOURTH_PART_PAID
        if account.new_terms_accepted
        else LimitRestoreReason.OLD_TERMS_PAYMENT
    )


@dataclass
class DayReport:
    """What one business-day run did (counts of facts newly recorded)."""

    business_date: date
    accounts: int = 0
    bills: int = 0
    overdue: int = 0
    penalties: int = 0

    def counts(self) -> dict[str, int]:
        """As a mapping for the run log."""
        return {
            "accounts": self.accounts,
            "bills": self.bills,
            "overdue": self.overdue,
            "penalties": self.penalties,
        }


@dataclass
class _Pending:
    """Facts and events of one batch; an event is published only if its fact row was inserted."""

    bills: list[tuple[Any, ...]] = field(default_factory=list)
    overdue: list[tuple[UUID, UUID, date]] = field(default_factory=list)
    penalties: list[tuple[UUID, UUID, int, date]] = field(default_factory=list)
    # (fact kind, bill uuid, payload) in the order they happened.
    events: list[tuple[str, UUID, Contract]] = field(default_factory=list)


class BusinessDayRefused(ValueError):
    """A business-day run that must not be attempted (e.g. a far-future date)."""


class BillingService:
    """Billing's use cases over a pool, a working-day calendar and a clock."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        calendar: WorkingDays,
        clock: Clock,
        outbox: Outbox | None = None,
        batch_size: int = 500,
        max_catch_up_days: int = 400,
    ) -> None:
        self.pool = pool
        self.calendar = calendar
        self.clock = clock
        self.outbox = outbox or Outbox()
        self.batch_size = batch_size
        self.max_catch_up_days = max_catch_up_days

    def _env(self, payload: Contract, causation: Envelope[Any] | None = None) -> Envelope[Any]:
        return new_envelope(payload, producer=PRODUCER, occurred_at=self.clock.now(), causation=causation)

    async def _emit(
        self, conn: Conn, payloads: list[Contract], causation: Envelope[Any] | None = None
    ) -> None:
        await self.outbox.add_many(conn, [self._env(p, causation) for p in payloads])

    # ---------------------------------------------------------------------------- dispatch

    async def handle(self, conn: Conn, env: Envelope[Any]) -> None:
        """Apply one inbound envelope inside the caller's (inbox) transaction."""
        p = env.payload
        if isinstance(p, RedAccountOpened):
            await self.open_account(conn, env, p)
        elif isinstance(p, RedTermsAccepted):
            await self._update(conn, p.customer_id, accept_new_terms)
        elif isinstance(p, RedAccountClosed):
            await self.close_account(conn, env, p)
        elif isinstance(p, RedPurchaseRequested):
            await self.request_purchase(conn, env, p)
        elif isinstance(p, RedPurchaseCancelled):
            await self.cancel_purchase(conn, env, p)
        elif isinstance(p, PaymentRefunded):
            await self.refund_purchase(conn, env, p)
        elif isinstance(p, PaymentCompleted):
            await self.repay(conn, env, p)
        else:
            log.warning("billing ignores %s", env.type)

    async def _update(self, conn: Conn, customer_id: UUID, change: Any) -> None:
        stored = await store.lock_account(conn, customer_id)
        if stored is None:
            log.warning("no Red account", extra={"customer_id": str(customer_id)})
            return
        await store.save_account(conn, customer_id, change(stored.account))

    # ---------------------------------------------------------------------------- accounts

    async def open_account(self, conn: Conn, env: Envelope[Any], p: RedAccountOpened) -> None:
        """Create the Red account (a repeated opening is ignored)."""
        account = open_account(
            str(p.customer_id),
            Money(p.limit),
            p.opened_on,
            new_terms_accepted=p.accepted_new_terms,
            loan_payment_day=p.loan_payment_day,
        )
        if not await store.insert_account(conn, p.customer_id, account):
            log.info("Red account already open", extra={"customer_id": str(p.customer_id)})

    async def close_account(self, conn: Conn, env: Envelope[Any], p: RedAccountClosed) -> None:
        """Close Red; a positive balance goes back to Gold (domain §4 "Closing Red")."""
        stored = await store.lock_account(conn, p.customer_id)
        if stored is None:
            return
        if stored.account.closed:
            return  # closing again changes nothing (no write, no event)
        result = close_account(stored.account)
        if isinstance(result, Rejected):
            log.warning(
                "Red account not closed", extra={"customer_id": str(p.customer_id), "reason": result.reason}
            )
            return
        assert isinstance(result, AccountClosed)
        await store.save_account(conn, p.customer_id, result.account)
        if result.refunded_to_gold:
            refund = OverpaymentRefunded(
                refund_id=store.derived_id("closed", p.customer_id),
                customer_id=p.customer_id,
                amount=result.refunded_to_gold.tiyn,
                reason=OverpaymentReason.ACCOUNT_CLOSED,
            )
            await self._emit(conn, [refund], env)

    # ---------------------------------------------------------------------------- purchases

    async def request_purchase(self, conn: Conn, env: Envelope[Any], p: RedPurchaseRequested) -> None:
        """Approve the purchase if the available limit covers it, else decline with a reason."""
        stored = await store.lock_account(conn, p.customer_id)
        if stored is None:
            decline = RedPurchaseDeclined(
                payment_id=p.payment_id,
                customer_id=p.customer_id,
                reason_code=ReasonCode.NO_RED_ACCOUNT,
                message="The customer has no Kaspi Red account.",
                available=0,
            )
            await self._emit(conn, [decline], env)
            return
        result = approve_purchase(
            stored.account,
            str(p.payment_id),
            Money(p.amount),
            business_date_of(p.requested_at),
            merchant=p.merchant.value,
            partner_id=p.partner_id,
        )
        if isinstance(result, PurchaseApproved):
            await store.save_account(conn, p.customer_id, result.account)
            approved = RedPurchaseApproved(
                payment_id=p.payment_id,
                customer_id=p.customer_id,
                plan_id=p.payment_id,  # the plan is keyed by the purchase (docs/billing.md)
                amount=result.purchase.price.tiyn,
                parts=[part.amount.tiyn for part in result.purchase.parts],
                available_after=result.available.tiyn,
            )
            await self._emit(conn, [approved], env)
            return
        declined = RedPurchaseDeclined(
            payment_id=p.payment_id,
            customer_id=p.customer_id,
            reason_code=_DECLINE_CODES[result.reason],
            message=f"Red purchase declined: {result.reason.value}, available {result.available}.",
            available=result.available.tiyn,
        )
        await self._emit(conn, [declined], env)

    async def cancel_purchase(self, conn: Conn, env: Envelope[Any], p: RedPurchaseCancelled) -> None:
        """Compensation: drop the plan and release its limit; repeating it has no effect."""
        stored = await store.lock_account(conn, p.customer_id)
        if stored is None:
            return
        result = cancel_purchase(stored.account, str(p.payment_id))
        if isinstance(result, Rejected):
            log.warning(
                "Red cancellation rejected", extra={"payment_id": str(p.payment_id), "reason": result.reason}
            )
            return
        assert isinstance(result, PurchaseCancelled)
        if result.already:
            return
        await store.save_account(conn, p.customer_id, result.account)
        events: list[Contract] = []
        if result.limit_released.tiyn > 0:
            events.append(
                LimitRestored(
                    customer_id=p.customer_id,
                    amount=result.limit_released.tiyn,
                    available_after=result.account.available.tiyn,
                    reason=LimitRestoreReason.CANCELLATION,
                    purchase_id=p.payment_id,
                )
            )
        if result.refunded_to_gold:
            events.append(
                OverpaymentRefunded(
                    refund_id=store.derived_id("cancel", p.payment_id),
                    customer_id=p.customer_id,
                    amount=result.refunded_to_gold.tiyn,
                    reason=OverpaymentReason.OVERPAYMENT,
                )
            )
        await self._emit(conn, events, env)

    async def refund_purchase(self, conn: Conn, env: Envelope[Any], p: PaymentRefunded) -> None:
        """A merchant refund of a RED purchase (rule: docs/billing.md §6)."""
        if p.funding != Funding.RED or p.kind != PaymentKind.PURCHASE:
            return
        stored = await store.lock_account(conn, p.customer_id)
        if stored is None:
            return
        result = refund_purchase(
            stored.account, str(p.payment_id), Money(p.amount), business_date_of(env.occurred_at)
        )
        if isinstance(result, Rejected):
            log.warning(
                "Red refund rejected", extra={"payment_id": str(p.payment_id), "reason": result.reason}
            )
            return
        assert isinstance(result, PurchaseRefunded)
        await store.save_account(conn, p.customer_id, result.account)
        events: list[Contract] = []
        if result.excess is not None:
            events += [
                BillPaid(
                    bill_id=store.bill_uuid(b), customer_id=p.customer_id, paid_on=result.excess.credited_on
                )
                for b in result.excess.bills_settled
            ]
        if result.limit_restored.tiyn > 0:
            events.append(
                LimitRestored(
                    customer_id=p.customer_id,
                    amount=result.limit_restored.tiyn,
                    available_after=result.account.available.tiyn,
                    reason=LimitRestoreReason.REFUND,
                    purchase_id=p.payment_id,
                )
            )
        if result.excess is not None and result.excess.refunded_to_gold:
            events.append(
                OverpaymentRefunded(
                    refund_id=store.derived_id("refund", p.refund_id),
                    customer_id=p.customer_id,
                    amount=result.excess.refunded_to_gold.tiyn,
                    reason=OverpaymentReason.OVERPAYMENT,
                )
            )
        await self._emit(conn, events, env)

    # ---------------------------------------------------------------------------- repayments

    async def repay(self, conn: Conn, env: Envelope[Any], p: PaymentCompleted) -> None:
        """A completed RED_BILL payment: credit it (20:00 cut-off) and allocate it (domain §4)."""
        if p.kind != PaymentKind.RED_BILL:
            return
        paid_at = p.paid_at or p.completed_at
        # domain §4 (002 Q1541): money paid after 20:00 Asia/Almaty is credited the next day.
        credited = credited_business_date(paid_at)
        stored = await store.lock_account(conn, p.customer_id)
        account = stored.account if stored is not None else None
        if account is None:
            # Money never vanishes: a repayment without a Red account goes back to Gold.
            allocation = RepaymentAllocationV2(to_bill=0, refunded_to_gold=p.amount)
            rep = None
        else:
            rep = allocate_repayment(account, Money(p.amount), credited)
            allocation = _contract_allocation(rep.allocation, account.open_bills)
        repayment_id = store.derived_id("repayment", p.payment_id)
        fresh = await store.insert_repayment(
            conn,
            payment_id=p.payment_id,
            repayment_id=repayment_id,
            customer_id=p.customer_id,
            amount=p.amount,
            paid_at=paid_at,
            credited_on=credited,
            allocation=allocation.model_dump(mode="json"),
        )
        if not fresh:
            return  # this payment was already applied (a second delivery under another event id)
        events: list[Contract] = [
            RepaymentApplied(
                repayment_id=repayment_id,
                payment_id=p.payment_id,
                customer_id=p.customer_id,
                amount=p.amount,
                credited_on=credited,
                allocation=allocation,
            )
        ]
        if rep is not None:
            after, a = rep.account, rep.allocation
            await store.save_account(conn, p.customer_id, after)
            events += [
                BillPaid(bill_id=store.bill_uuid(b), customer_id=p.customer_id, paid_on=credited)
                for b in a.bills_settled
            ]
            if a.limit_restored.tiyn > 0:
                events.append(
                    LimitRestored(
                        customer_id=p.customer_id,
                        amount=a.limit_restored.tiyn,
                        available_after=after.available.tiyn,
                        reason=_limit_reason(after),
                        purchase_id=_uuid(a.purchases_settled[0]) if len(a.purchases_settled) == 1 else None,
                    )
                )
        # 002 Q2184/Q1516: everything repaid → the rest goes to Kaspi Gold at once. The Gold credit is
        # what really leaves Red, an earlier carried prepayment released with this payment included:
        # the allocation's ``refunded_to_gold`` (v2) says the same, so the inbox tells one story.
        to_gold = allocation.refunded_to_gold
        if to_gold:
            events.append(
                OverpaymentRefunded(
                    refund_id=store.derived_id("overpayment", p.payment_id),
                    customer_id=p.customer_id,
                    amount=to_gold,
                    reason=OverpaymentReason.OVERPAYMENT,
                )
            )
        await self._emit(conn, events, env)

    # ---------------------------------------------------------------------------- business day

    async def run_business_day(
        self, business_date: date, *, requested_by: str = "ops", causation: Envelope[Any] | None = None
    ) -> DayReport:
        """Close business for ``business_date`` over every open account, in batches.

        Fineract close-of-business: each account keeps ``last_closed_business_date``; an account
        behind ``business_date`` first runs every unclosed date before it, in order. An account
        already closed through the date is skipped, so a re-run is a no-op; the fact tables'
        unique keys refuse any duplicate bill, overdue record or penalty regardless.

        The run is recorded (``business_day_runs``) and announced with ``BusinessDayClosed`` (keyed
        by the date, caused by ``causation``: the ``RunBusinessDay`` that asked) in one transaction.
        """
        report = DayReport(business_date)
        after: UUID | None = None
        async with self.pool.acquire() as conn:
            oldest = await conn.fetchval(
                "SELECT min(last_closed_business_date) FROM accounts WHERE NOT closed "
                "AND last_closed_business_date < $1",
                business_date,
            )
            if oldest is not None and (business_date - oldest).days > self.max_catch_up_days:
                # A mistyped far-future date would otherwise close millions of days per account in
                # one transaction and block billing's consumer; refuse it before any work is done.
                raise BusinessDayRefused(
                    f"business date {business_date} is {(business_date - oldest).days} days after the oldest "
                    f"open watermark {oldest}; at most {self.max_catch_up_days} days are caught up per run"
                )
            while True:
                async with conn.transaction():
                    batch = await store.lock_batch_to_close(conn, business_date, after, self.batch_size)
                    if not batch:
                        break
                    pending = _Pending()
                    saved: list[tuple[UUID, RedAccount]] = []
                    for customer_id, stored in batch:
                        account = stored.account
                        d = stored.last_closed + timedelta(days=1)
                        while d <= business_date:
                            account = self._close_day(customer_id, account, d, pending)
                            d += timedelta(days=1)
                        saved.append((customer_id, account))
                    await self._flush(conn, pending, report)
                    await store.save_batch(conn, saved, business_date)
                    report.accounts += len(batch)
                    after = batch[-1][0]
            async with conn.transaction():
                await store.record_run(conn, business_date, report.counts(), requested_by)
                closed = BusinessDayClosed(
                    business_date=business_date, requested_by=requested_by, **report.counts()
                )
                envelope = new_envelope(
                    closed,
                    key=business_date.isoformat(),
                    producer=PRODUCER,
                    occurred_at=self.clock.now(),
                    causation=causation,
                )
                await self.outbox.add(conn, envelope)
        log.info("business day closed", extra={"business_date": business_date.isoformat(), **report.counts()})
        return report

    def _close_day(self, customer_id: UUID, account: RedAccount, d: date, pending: _Pending) -> RedAccount:
        day = run_account_day(account, d, self.calendar)
        # Overdue facts are evaluated on the account before today's bill issue (domain order).
        for action in day.actions:
            bill = day.account.bill(action.bill_id)
            assert bill is not None
            bid = store.bill_uuid(action.bill_id)
            if isinstance(action, RecordOverdue):
                pending.overdue.append((bid, customer_id, action.overdue_on))
                owed = bill.owed if bill.owed else bill.amount
                pending.events.append(
                    (
                        "overdue",
                        bid,
                        BillOverdueRecorded(
                            bill_id=bid,
                            customer_id=customer_id,
                            due_at=bill.due_at,
                            overdue_since=action.overdue_on,
                            outstanding=max(owed.tiyn, 1),
                        ),
                    )
                )
            elif isinstance(action, ApplyPenalty):
                pending.penalties.append((bid, customer_id, action.amount.tiyn, action.charged_on))
                pending.events.append(
                    (
                        "penalty",
                        bid,
                        PenaltyApplied(
                            bill_id=bid,
                            customer_id=customer_id,
                            amount=action.amount.tiyn,
                            applied_on=action.charged_on,
                            outstanding_after=(bill.owed + action.amount).tiyn,
                        ),
                    )
                )
        issue = day.issue
        if issue is not None:
            bill = issue.bill
            bid = store.bill_uuid(bill.bill_id)
            lines = [_contract_line(ln, issue.account) for ln in bill.lines]
            # What ``ln.model_dump(mode="json")`` gives for a validated line, built directly.
            line_rows = [
                {
                    "purchase_id": str(ln.purchase_id),
                    "part_no": ln.part_no,
                    "amount": ln.amount,
                    "merchant": ln.merchant.value if ln.merchant is not None else None,
                    "partner_id": ln.partner_id,
                    "purchased_on": ln.purchased_on.isoformat() if ln.purchased_on is not None else None,
                    "parts_total": ln.parts_total,
                }
                for ln in lines
            ]
            pending.bills.append(
                (
                    bid,
                    customer_id,
                    bill.statement_date,
                    bill.due_at,
                    bill.amount.tiyn,
                    bill.penalty_brought_forward.tiyn,
                    bill.carry_applied.tiyn,
                    line_rows,
                )
            )
            pending.events.append(
                (
                    "bill",
                    bid,
                    BillIssued(
                        bill_id=bid,
                        customer_id=customer_id,
                        statement_date=bill.statement_date,
                        due_at=bill.due_at,
                        amount=bill.amount.tiyn,
                        penalty=bill.penalty_brought_forward.tiyn,
                        carried_prepayment=bill.carry_applied.tiyn,
                        lines=lines,
                    ),
                )
            )
            if bill.settled:
                pending.events.append(
                    ("bill", bid, BillPaid(bill_id=bid, customer_id=customer_id, paid_on=d))
                )
            if issue.limit_restored.tiyn > 0:
                pending.events.append(
                    (
                        "bill",
                        bid,
                        LimitRestored(
                            customer_id=customer_id,
                            amount=issue.limit_restored.tiyn,
                            available_after=issue.account.available.tiyn,
                            reason=_limit_reason(issue.account),
                        ),
                    )
                )
            if issue.refunded_to_gold:
                pending.events.append(
                    (
                        "bill",
                        bid,
                        OverpaymentRefunded(
                            refund_id=store.derived_id("issue", bid),
                            customer_id=customer_id,
                            amount=issue.refunded_to_gold.tiyn,
                            reason=OverpaymentReason.OVERPAYMENT,
                        ),
                    )
                )
        return day.account

    async def _flush(self, conn: Conn, pending: _Pending, report: DayReport) -> None:
        new_bills = await store.insert_bills(conn, pending.bills)
        new_overdue = await store.insert_overdue(conn, pending.overdue)
        new_penalties = await store.insert_penalties(conn, pending.penalties)
        report.bills += len(new_bills)
        report.overdue += len(new_overdue)
        report.penalties += len(new_penalties)
        fresh = {"bill": new_bills, "overdue": new_overdue, "penalty": new_penalties}
        payloads = [payload for kind, bid, payload in pending.events if bid in fresh[kind]]
        await self._emit(conn, payloads)


def _contract_line(line: DomainBillLine, account: RedAccount) -> ContractBillLine:
    """A bill line as ``BillIssued`` carries it: the part, and what the customer knows the purchase by
    (merchant, partner, purchase date, how many parts) when the plan has them (docs/billing.md)."""
    purchase = account.purchase(line.purchase_id)
    merchant = purchase.merchant if purchase is not None else None
    return ContractBillLine(
        purchase_id=_uuid(line.purchase_id),
        part_no=line.part_no,
        amount=line.amount.tiyn,
        merchant=Merchant(merchant) if merchant in _MERCHANTS else None,
        partner_id=purchase.partner_id if purchase is not None else None,
        purchased_on=purchase.purchased_on if purchase is not None else None,
        parts_total=len(purchase.parts) if purchase is not None else None,
    )


_MERCHANTS = frozenset(m.value for m in Merchant)


def _contract_allocation(a: Allocation, open_before: tuple[Bill, ...]) -> RepaymentAllocationV2:
    """The domain allocation in contract terms (``RepaymentApplied`` v2): the whole story.

    The domain's ``carried`` is the net change of the carried prepayment (docs/billing.md §5): when it
    is negative, an earlier prepayment joined this payment (to repay purchases, or back to Gold) and
    is reported as ``prepayment_used``, so the destinations sum to ``amount + prepayment_used`` and
    ``refunded_to_gold`` is the whole Gold refund.
    """
    carried = a.carried.tiyn
    to_bill = (a.to_bills + a.to_penalty).tiyn
    return RepaymentAllocationV2(
        bill_id=store.bill_uuid(open_before[0].bill_id) if open_before and to_bill else None,
        to_bill=to_bill,
        to_purchases=[
            PurchaseRepayment(purchase_id=_uuid(pid), amount=amt.tiyn)
            for pid, amt in a.to_purchases.items()
            if amt.tiyn > 0
        ],
        carried=max(carried, 0),
        refunded_to_gold=a.refunded_to_gold.tiyn,
        prepayment_used=max(-carried, 0),
    )
