"""Property tests over random sequences of Red operations (domain brief §4 invariants)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from services.billing.domain import (
    PENALTY,
    ApplyPenalty,
    PurchaseApproved,
    PurchaseCancelled,
    PurchaseRefunded,
    RedAccount,
    allocate_repayment,
    approve_purchase,
    cancel_purchase,
    open_account,
    overdue_actions,
    refund_purchase,
    run_business_day,
)
from shared.money import Money

from .conftest import FakeCalendar

pytestmark = pytest.mark.unit

CAL = FakeCalendar(frozenset({date(2025, 3, 21), date(2025, 3, 24), date(2025, 5, 1), date(2025, 5, 9)}))


@dataclass(frozen=True)
class Step:
    """One random operation after ``wait`` business days."""

    wait: int
    kind: str
    amount: int
    pick: int


steps = st.lists(
    st.builds(
        Step,
        wait=st.integers(0, 20),
        kind=st.sampled_from(["buy", "buy", "pay", "pay", "refund", "cancel"]),
        amount=st.integers(1, 30_000_00),
        pick=st.integers(0, 10),
    ),
    max_size=25,
)


@dataclass
class Totals:
    """Money in and out, to check that no tiyn is lost or invented."""

    deposited: int = 0
    refund_excess: int = 0
    gold: int = 0


def _check(account: RedAccount) -> None:
    assert Money.zero() <= account.available <= account.limit
    assert not account.carried.is_negative
    for p in account.purchases:
        assert Money.zero() <= p.limit_held <= p.price
        assert all(Money.zero() <= part.paid <= part.amount for part in p.parts)
    for b in account.bills:
        assert not b.owed.is_negative


def _conservation(account: RedAccount, totals: Totals) -> None:
    principal_paid = sum(part.paid.tiyn for p in account.purchases for part in p.parts)
    charged = sum(b.penalty.tiyn for b in account.bills)
    penalty_unpaid = account.penalty_due.tiyn + sum(b.penalty_owed.tiyn for b in account.bills)
    money_in = totals.deposited + totals.refund_excess
    money_out = principal_paid + (charged - penalty_unpaid) + account.carried.tiyn + totals.gold
    assert money_in == money_out


@settings(max_examples=150, deadline=None)
@given(steps, st.booleans(), st.integers(1, 31), st.integers(1_000_00, 200_000_00))
def test_random_sequences_keep_every_invariant(
    ops: list[Step], new_terms: bool, opened_day: int, limit_tiyn: int
) -> None:
    opened = date(2025, 1, min(opened_day, 31))
    account = open_account("c1", Money(limit_tiyn), opened, new_terms_accepted=new_terms)
    today = opened
    totals = Totals()
    counter = 0
    for op in ops:
        for _ in range(op.wait):
            today += timedelta(days=1)
            day = run_business_day(account, today, CAL)
            account = day.account
            if day.issue is not None:
                totals.gold += day.issue.refunded_to_gold.tiyn
                event("bill issued")
            if any(isinstance(a, ApplyPenalty) for a in day.actions):
                event("penalty")
            # Running the same date again changes nothing.
            assert run_business_day(account, today, CAL).account == account
            for bill in account.bills:
                assert overdue_actions(bill, today) == []
            _check(account)
        live = [p.purchase_id for p in account.purchases if not p.settled]
        if op.kind == "buy":
            counter += 1
            result = approve_purchase(account, f"p{counter}", Money(op.amount), today)
            if isinstance(result, PurchaseApproved):
                assert result.account.available == account.available - Money(op.amount)
                account = result.account
            else:
                assert account.available < Money(op.amount)
        elif op.kind == "pay":
            repayment = allocate_repayment(account, Money(op.amount), today)
            a = repayment.allocation
            # The allocation never loses or invents a tiyn.
            assert a.paid == a.to_bills + a.to_penalty + a.to_purchases_total + a.carried + a.refunded_to_gold
            assert not a.limit_restored.is_negative
            if a.carried.tiyn > 0:
                event("carried")
            if a.refunded_to_gold:
                event("refunded to gold")
            if a.limit_restored:
                event("limit restored")
            totals.deposited += op.amount
            totals.gold += a.refunded_to_gold.tiyn
            account = repayment.account
        elif op.kind == "refund" and live:
            pid = live[op.pick % len(live)]
            purchase = account.purchase(pid)
            assert purchase is not None
            refundable = (purchase.price - purchase.refunded).tiyn
            # A purchase can be fully refunded yet not settled: the refund's excess paid an older
            # line of the same bill first (bill lines in order), so its own billed part is still open.
            if refundable > 0:
                amount = Money(1 + op.amount % refundable)
                refund = refund_purchase(account, pid, amount, today)
                assert isinstance(refund, PurchaseRefunded)
                if refund.excess is not None:
                    totals.refund_excess += refund.excess.paid.tiyn
                    totals.gold += refund.excess.refunded_to_gold.tiyn
                assert not refund.limit_restored.is_negative
                account = refund.account
        elif op.kind == "cancel" and account.purchases:
            pid = account.purchases[op.pick % len(account.purchases)].purchase_id
            cancelled = cancel_purchase(account, pid)
            if isinstance(cancelled, PurchaseCancelled):
                totals.gold += cancelled.refunded_to_gold.tiyn
                account = cancelled.account
                event("cancelled")
        _check(account)
        _conservation(account, totals)
    assert all(b.penalty in (Money.zero(), PENALTY) for b in account.bills)
