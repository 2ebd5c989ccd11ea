"""The bonus ledger: balance = sum of entries, never negative, idempotent per key."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.bonus.domain import (
    BonusLedger,
    EntryKind,
    InsufficientBonusBalance,
    LedgerConflict,
    LedgerEntry,
    LedgerError,
    LedgerInvariantError,
)
from shared.money import Money

pytestmark = pytest.mark.unit


def entry(kind: EntryKind, payment_id: str, tiyn: int, **extra: object) -> LedgerEntry:
    """A ledger entry of ``tiyn``."""
    return LedgerEntry(kind, payment_id, Money(tiyn), **extra)  # type: ignore[arg-type]


def test_balance_is_the_signed_sum_of_entries() -> None:
    ledger = BonusLedger.from_entries(
        "c",
        [
            entry(EntryKind.ACCRUAL, "p1", 1_000),
            entry(EntryKind.REDEMPTION, "m1", 600),
            entry(EntryKind.RESTORE, "m1", 600),
            entry(EntryKind.REVERSAL, "p1", 250, refund_id="r1"),
        ],
    )
    assert ledger.balance == Money(750)


def test_an_operation_that_would_go_negative_is_refused() -> None:
    ledger = BonusLedger("c").post(entry(EntryKind.ACCRUAL, "p1", 100))
    with pytest.raises(InsufficientBonusBalance):
        ledger.post(entry(EntryKind.REDEMPTION, "m1", 101))
    assert ledger.balance == Money(100), "a refused operation changes nothing"


def test_accrual_is_exactly_once_per_payment() -> None:
    ledger = BonusLedger("c").post(entry(EntryKind.ACCRUAL, "p1", 100))
    assert ledger.post(entry(EntryKind.ACCRUAL, "p1", 100)) is ledger
    with pytest.raises(LedgerConflict):
        ledger.post(entry(EntryKind.ACCRUAL, "p1", 99))


def test_restore_must_match_its_redemption() -> None:
    ledger = BonusLedger("c").post(entry(EntryKind.ACCRUAL, "p1", 100))
    with pytest.raises(LedgerInvariantError):
        ledger.post(entry(EntryKind.RESTORE, "m1", 10))


def test_reversal_cannot_exceed_the_accrual() -> None:
    ledger = BonusLedger("c").post(entry(EntryKind.ACCRUAL, "p1", 100))
    with pytest.raises(LedgerInvariantError):
        ledger.post(entry(EntryKind.REVERSAL, "p1", 50, refund_id="r1", shortfall=Money(51)))


def test_stored_history_that_goes_negative_is_rejected() -> None:
    with pytest.raises(LedgerError):
        BonusLedger("c", (entry(EntryKind.REDEMPTION, "m1", 1),))
    with pytest.raises(LedgerInvariantError, match="duplicate"):
        BonusLedger.from_entries("c", [entry(EntryKind.ACCRUAL, "p1", 1)] * 2)


@pytest.mark.parametrize(
    ("kind", "tiyn", "extra"),
    [
        (EntryKind.ACCRUAL, 0, {}),
        (EntryKind.ACCRUAL, -1, {}),
        (EntryKind.REDEMPTION, 1, {"refund_id": "r"}),
        (EntryKind.REVERSAL, 1, {}),
        (EntryKind.ACCRUAL, 1, {"shortfall": Money(1)}),
        (EntryKind.REVERSAL, 0, {"refund_id": "r"}),
    ],
)
def test_malformed_entries_are_refused(kind: EntryKind, tiyn: int, extra: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - several distinct messages
        entry(kind, "p", tiyn, **extra)


def test_a_reversal_may_move_nothing_when_it_records_a_shortfall() -> None:
    shortfall_only = entry(EntryKind.REVERSAL, "p", 0, refund_id="r", shortfall=Money(5))
    assert shortfall_only.signed == Money.zero()


# -- property: random operation sequences ---------------------------------------------------------
operations = st.lists(
    st.one_of(
        st.tuples(st.just("accrue"), st.integers(0, 5), st.integers(1, 50_000)),
        st.tuples(st.just("redeem"), st.integers(0, 5), st.integers(1, 50_000)),
        st.tuples(st.just("restore"), st.integers(0, 5), st.just(0)),
        st.tuples(st.just("refund"), st.integers(0, 5), st.integers(0, 100)),
    ),
    max_size=40,
)


@given(ops=operations)
def test_ledger_sums_to_its_balance_and_never_goes_negative(ops: list[tuple[str, int, int]]) -> None:
    ledger = BonusLedger("c")
    refunded_percent: dict[str, int] = {}
    for step, (op, n, value) in enumerate(ops):
        payment_id = f"p{n}"
        try:
            if op == "accrue":
                ledger = ledger.post(entry(EntryKind.ACCRUAL, payment_id, value))
            elif op == "redeem":
                ledger = ledger.redeem(f"m{n}", Money(value))
            elif op == "restore":
                ledger = ledger.restore(f"m{n}")
            else:
                total = max(refunded_percent.get(payment_id, 0), value)
                refunded_percent[payment_id] = total
                ledger, clawback = ledger.claw_back(
                    payment_id=payment_id,
                    refund_id=f"r{step}",
                    original_amount=Money(100),
                    total_refunded=Money(total),
                )
                assert clawback.reversed + clawback.shortfall == clawback.claim
        except (InsufficientBonusBalance, LedgerConflict):
            pass  # refused: the ledger is unchanged (it is immutable)
        signed_sum = sum((e.signed.tiyn for e in ledger.entries), start=0)
        assert ledger.balance.tiyn == signed_sum
        assert ledger.balance.tiyn >= 0
        for pid in {e.payment_id for e in ledger.entries}:
            claimed = ledger.reversed_for(pid) + ledger.shortfall_for(pid)
            assert ledger.reversed_for(pid) <= claimed <= ledger.accrued_for(pid)
    # The history it built is itself valid when replayed from storage.
    assert BonusLedger.from_entries("c", ledger.entries) == ledger
