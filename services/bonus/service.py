"""Orchestration: one transaction per event (inbox claim, customer lock, domain decision, rows, outbox).

Every handler runs ``Inbox.once``: the event id is claimed in the same transaction as the effects,
so a redelivered event has no effect. Inside it the customer's balance row is locked first
(``SELECT ... FOR UPDATE``), the ledger is rebuilt from its rows, the pure domain decides, the new
entries, the balance and the outgoing event are written, and everything commits together.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

import asyncpg

from shared.clock import Clock
from shared.contracts.base import Contract
from shared.contracts.bonus import (
    BonusAccrued,
    BonusRedeemed,
    BonusRedemptionDeclined,
    BonusRestored,
    BonusReversed,
)
from shared.contracts.common import ReasonCode
from shared.contracts.envelope import Envelope, new_envelope
from shared.contracts.payments import (
    BonusRedemptionCancelled,
    BonusRedemptionRequested,
    PaymentCompleted,
    PaymentRefunded,
)
from shared.db import Conn
from shared.inbox import Inbox
from shared.money import Money
from shared.outbox import Outbox

from . import store
from .domain import (
    BonusLedger,
    BonusRules,
    Declined,
    DeclineReason,
    Funding,
    Merchant,
    PaymentFacts,
    PaymentKind,
    Redeemed,
    RedemptionConflict,
    RedemptionOutcome,
    RedemptionRequest,
    decide_accrual,
    decide_redemption,
)

log = logging.getLogger("aqsha.bonus")
PRODUCER = "bonus"

#: Domain decline reasons on the wire. The domain's BONUS_CAP_EXCEEDED is the contract's
#: BONUS_EXCEEDS_REDEMPTION_SHARE (same rule: more than 60 % of the purchase); the others match by name.
REASON_CODES: dict[DeclineReason, ReasonCode] = {
    DeclineReason.BONUS_CATEGORY_NOT_ELIGIBLE: ReasonCode.BONUS_CATEGORY_NOT_ELIGIBLE,
    DeclineReason.BONUS_NOT_ALLOWED_FOR_RED: ReasonCode.BONUS_NOT_ALLOWED_FOR_RED,
    DeclineReason.BONUS_BALANCE_INSUFFICIENT: ReasonCode.BONUS_BALANCE_INSUFFICIENT,
    DeclineReason.BONUS_CAP_EXCEEDED: ReasonCode.BONUS_EXCEEDS_REDEMPTION_SHARE,
}


def payment_facts(p: PaymentCompleted) -> PaymentFacts:
    """The domain's view of a completed payment (enums by value, UUIDs as str, fee left out)."""
    return PaymentFacts(
        payment_id=str(p.payment_id),
        customer_id=str(p.customer_id),
        kind=PaymentKind(p.kind.value),
        category=p.category.value if p.category is not None else None,
        provider=p.provider,
        merchant=Merchant(p.merchant.value) if p.merchant is not None else None,
        partner_id=p.partner_id,
        funding=Funding(p.funding.value),
        amount=Money(p.amount),
        bonus_amount_used=Money(p.bonus_amount),
        completed_at=p.completed_at,
    )


class BonusService:
    """Applies payments' events to the bonus ledger."""

    def __init__(self, pool: asyncpg.Pool, rules: BonusRules, clock: Clock, *, group: str) -> None:
        self.pool = pool
        self.rules = rules
        self.clock = clock
        self.inbox = Inbox(group)
        self.outbox = Outbox()

    async def handle(self, envelope: Envelope[Any]) -> None:
        """Dispatch one accepted envelope by payload type."""
        payload = envelope.payload
        if isinstance(payload, PaymentCompleted):
            await self.inbox.once(self.pool, envelope, lambda c: self._accrue(c, envelope, payload))
        elif isinstance(payload, PaymentRefunded):
            await self.inbox.once(self.pool, envelope, lambda c: self._claw_back(c, envelope, payload))
        elif isinstance(payload, BonusRedemptionRequested):
            await self.inbox.once(self.pool, envelope, lambda c: self._redeem(c, envelope, payload))
        elif isinstance(payload, BonusRedemptionCancelled):
            await self.inbox.once(self.pool, envelope, lambda c: self._restore(c, envelope, payload))

    async def _emit(self, conn: Conn, cause: Envelope[Any], payload: Contract) -> None:
        await self.outbox.add(
            conn, new_envelope(payload, producer=PRODUCER, occurred_at=self.clock.now(), causation=cause)
        )

    async def _post(
        self,
        conn: Conn,
        customer_id: UUID,
        before: BonusLedger,
        after: BonusLedger,
        cause: Envelope[Any],
        rule: store.RuleInfo | None = None,
    ) -> bool:
        """Write the entries ``after`` added to ``before`` and the new balance; False if nothing changed."""
        new = after.entries[len(before.entries) :]
        if not new:
            return False
        await store.insert_entries(conn, customer_id, new, event_id=cause.event_id, rule=rule)
        await store.set_balance(conn, customer_id, after.balance)
        return True

    # -- accrual ---------------------------------------------------------------------------------
    async def _accrue(self, conn: Conn, env: Envelope[Any], p: PaymentCompleted) -> None:
        # At most once per payment: the inbox stops a redelivered event; the decision's unique key
        # stops the same payment arriving under another event id (e.g. a producer retry).
        await store.lock_customer(conn, p.customer_id)
        if await store.decision_exists(conn, p.payment_id):
            log.info("payment already decided", extra={"payment_id": str(p.payment_id)})
            return
        facts = payment_facts(p)
        accrual = decide_accrual(facts, self.rules)
        in_force = self.rules.rule_set_at(p.completed_at)
        rule = (
            store.RuleInfo(accrual.rule_set, accrual.rule_id, accrual.promotion_id, accrual.percent)
            if accrual is not None
            else None
        )
        await store.insert_decision(
            conn,
            store.Decision(
                payment_id=p.payment_id,
                customer_id=p.customer_id,
                event_id=env.event_id,
                kind=p.kind.value,
                completed_at=p.completed_at,
                business_date=facts.business_date,
                payment_amount=p.amount,
                accrued=accrual.amount.tiyn if accrual else 0,
                base_amount=accrual.base.tiyn if accrual else None,
                rule=rule,
                rule_set_in_force=in_force.set_id if in_force is not None else None,
            ),
        )
        if accrual is None:
            return  # nothing accrued, nothing published; the decision row records why not
        ledger = await store.load_ledger(conn, p.customer_id)
        after = ledger.accrue(accrual)
        await self._post(conn, p.customer_id, ledger, after, env, rule)
        await self._emit(
            conn,
            env,
            BonusAccrued(
                payment_id=p.payment_id,
                customer_id=p.customer_id,
                amount=accrual.amount.tiyn,
                # The promotion id when a partner promo matched, else the rule id (contract: "the
                # rule or partner promotion that matched").
                rule_set=accrual.rule_set,
                rule_id=accrual.promotion_id or accrual.rule_id,
                percent=format(accrual.percent.normalize(), "f"),
                base_amount=accrual.base.tiyn,
                balance_after=after.balance.tiyn,
            ),
        )

    # -- clawback --------------------------------------------------------------------------------
    async def _claw_back(self, conn: Conn, env: Envelope[Any], p: PaymentRefunded) -> None:
        await store.lock_customer(conn, p.customer_id)
        ledger = await store.load_ledger(conn, p.customer_id)
        after, plan = ledger.claw_back(
            payment_id=str(p.payment_id),
            refund_id=str(p.refund_id),
            original_amount=Money(p.original_amount),
            total_refunded=Money(p.total_refunded),
        )
        # Nothing to reverse (no accrual, a share below one tiyn, or a refund id already applied).
        if not await self._post(conn, p.customer_id, ledger, after, env):
            return
        await self._emit(
            conn,
            env,
            BonusReversed(
                payment_id=p.payment_id,
                refund_id=p.refund_id,
                customer_id=p.customer_id,
                amount=plan.reversed.tiyn,
                shortfall=plan.shortfall.tiyn,
                balance_after=after.balance.tiyn,
            ),
        )

    # -- redemption ------------------------------------------------------------------------------
    async def _redeem(self, conn: Conn, env: Envelope[Any], p: BonusRedemptionRequested) -> None:
        await store.lock_customer(conn, p.customer_id)
        ledger = await store.load_ledger(conn, p.customer_id)
        existing = await store.find_redemption(conn, p.payment_id)
        request = RedemptionRequest(
            payment_id=str(p.payment_id),
            customer_id=str(p.customer_id),
            kind=PaymentKind(p.kind.value),
            merchant=Merchant(p.merchant.value),
            amount=Money(p.purchase_amount),
            bonus_amount=Money(p.amount),
        )
        try:
            outcome = decide_redemption(request, ledger.balance, existing)
        except RedemptionConflict as exc:
            # Same purchase, different bonus amount: refuse without touching the stored outcome.
            await self._emit(
                conn,
                env,
                BonusRedemptionDeclined(
                    payment_id=p.payment_id,
                    customer_id=p.customer_id,
                    reason_code=ReasonCode.IDEMPOTENCY_CONFLICT,
                    message=str(exc)[:500],
                ),
            )
            return
        after = ledger
        if existing is None:
            if isinstance(outcome, Redeemed):
                after = ledger.redeem(request.payment_id, outcome.amount)
                await self._post(conn, p.customer_id, ledger, after, env)
            await store.insert_redemption(
                conn,
                payment_id=p.payment_id,
                customer_id=p.customer_id,
                event_id=env.event_id,
                requested=p.amount,
                purchase=p.purchase_amount,
                outcome=outcome,
            )
        # A repeated request (new event id, same purchase) gets the stored answer again.
        await self._emit(conn, env, self._answer(p, outcome, after))

    @staticmethod
    def _answer(p: BonusRedemptionRequested, outcome: RedemptionOutcome, ledger: BonusLedger) -> Contract:
        if isinstance(outcome, Declined):
            return BonusRedemptionDeclined(
                payment_id=p.payment_id,
                customer_id=p.customer_id,
                reason_code=REASON_CODES[outcome.reason],
                message=outcome.detail[:500],
            )
        return BonusRedeemed(
            payment_id=p.payment_id,
            customer_id=p.customer_id,
            amount=outcome.amount.tiyn,
            balance_after=ledger.balance.tiyn,
        )

    # -- compensation ----------------------------------------------------------------------------
    async def _restore(self, conn: Conn, env: Envelope[Any], p: BonusRedemptionCancelled) -> None:
        await store.lock_customer(conn, p.customer_id)
        ledger = await store.load_ledger(conn, p.customer_id)
        after = ledger.restore(str(p.payment_id))
        # No redemption for this purchase (declined, never asked) or already restored: nothing to do.
        if not await self._post(conn, p.customer_id, ledger, after, env):
            return
        restored = after.entries[-1].amount
        if restored.tiyn != p.amount:
            log.warning(
                "cancellation amount differs from the redemption; restoring the redeemed amount",
                extra={"payment_id": str(p.payment_id), "asked": p.amount, "redeemed": restored.tiyn},
            )
        await store.mark_restored(conn, p.payment_id)
        await self._emit(
            conn,
            env,
            BonusRestored(
                payment_id=p.payment_id,
                customer_id=p.customer_id,
                amount=restored.tiyn,
                balance_after=after.balance.tiyn,
            ),
        )
