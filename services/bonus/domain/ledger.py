"""The bonus ledger: a customer's balance is the sum of its entries and never goes negative."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from shared.money import Money

from .accrual import Accrual
from .clawback import Clawback, plan_clawback

_ZERO: Final = Money.zero()


class EntryKind(StrEnum):
    """Ledger movements: earned (+), clawed back (−), spent (−), returned after a failed purchase (+)."""

    ACCRUAL = "ACCRUAL"
    REVERSAL = "REVERSAL"
    REDEMPTION = "REDEMPTION"
    RESTORE = "RESTORE"


_SIGN: Final = {
    EntryKind.ACCRUAL: 1,
    EntryKind.REVERSAL: -1,
    EntryKind.REDEMPTION: -1,
    EntryKind.RESTORE: 1,
}


class LedgerError(ValueError):
    """Base class for refused ledger operations."""


class InsufficientBonusBalance(LedgerError):
    """The operation would take the balance below zero, so it is refused."""


class LedgerConflict(LedgerError):
    """An entry with the same key exists with different content (same id, different payload)."""


class LedgerInvariantError(LedgerError):
    """A sequence of entries that no valid history can produce."""


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One movement of a bonus balance; ``amount`` is a magnitude, the kind gives the sign."""

    kind: EntryKind
    payment_id: str
    amount: Money
    refund_id: str | None = None
    shortfall: Money = _ZERO

    def __post_init__(self) -> None:
        if not self.payment_id:
            raise ValueError("payment_id is required")
        if self.amount.is_negative or self.shortfall.is_negative:
            raise ValueError("amount and shortfall are magnitudes, never negative")
        is_reversal = self.kind is EntryKind.REVERSAL
        if is_reversal != (self.refund_id is not None):
            raise ValueError("refund_id is given for REVERSAL entries and only for them")
        if not is_reversal and self.shortfall:
            raise ValueError("only a REVERSAL records a shortfall")
        # A REVERSAL may move nothing when the bonus was already spent: it then records the shortfall.
        if self.amount.tiyn == 0 and not (is_reversal and self.shortfall):
            raise ValueError("an entry moves a positive amount")

    @property
    def signed(self) -> Money:
        """The effect on the balance: + for ACCRUAL and RESTORE, − for REVERSAL and REDEMPTION."""
        return self.amount * _SIGN[self.kind]

    @property
    def key(self) -> tuple[str, ...]:
        """Idempotency key: one accrual, redemption and restore per payment; one reversal per refund."""
        if self.refund_id is not None:
            return (self.kind.value, self.payment_id, self.refund_id)
        return (self.kind.value, self.payment_id)


@dataclass(frozen=True, slots=True)
class BonusLedger:
    """One customer's bonus ledger (immutable: every operation returns a new ledger)."""

    customer_id: str
    entries: tuple[LedgerEntry, ...] = ()
    _balance: Money = field(init=False, repr=False, compare=False, default=_ZERO)

    def __post_init__(self) -> None:
        balance = _ZERO
        keys: set[tuple[str, ...]] = set()
        for index, entry in enumerate(self.entries):
            if entry.key in keys:
                raise LedgerInvariantError(f"entry {index}: duplicate key {entry.key}")
            keys.add(entry.key)
            balance += entry.signed
            if balance.is_negative:
                raise LedgerInvariantError(f"entry {index}: balance would be {balance.tiyn} tiyn")
        object.__setattr__(self, "_balance", balance)

    @classmethod
    def from_entries(cls, customer_id: str, entries: Iterable[LedgerEntry]) -> BonusLedger:
        """Rebuild a ledger from stored entries, checking they form a valid history."""
        ledger = cls(customer_id)
        for index, entry in enumerate(entries):
            if ledger.find(entry.key) is not None:
                raise LedgerInvariantError(f"entry {index}: duplicate key {entry.key}")
            ledger = ledger.post(entry)
        return ledger

    # -- reading -------------------------------------------------------------------------------
    @property
    def balance(self) -> Money:
        """The spendable bonus: the sum of all signed entries, never negative."""
        return self._balance

    def _total(self, kind: EntryKind, payment_id: str) -> Money:
        return sum(
            (e.amount for e in self.entries if e.kind is kind and e.payment_id == payment_id),
            start=_ZERO,
        )

    def find(self, key: tuple[str, ...]) -> LedgerEntry | None:
        """The entry with this idempotency key, if posted."""
        return next((e for e in self.entries if e.key == key), None)

    def accrued_for(self, payment_id: str) -> Money:
        """Bonus accrued for a payment (zero when none)."""
        return self._total(EntryKind.ACCRUAL, payment_id)

    def reversed_for(self, payment_id: str) -> Money:
        """Bonus actually taken back for a payment over all its refunds."""
        return self._total(EntryKind.REVERSAL, payment_id)

    def shortfall_for(self, payment_id: str) -> Money:
        """Bonus that refunds of a payment should have taken back but the balance did not hold."""
        return sum(
            (
                e.shortfall
                for e in self.entries
                if e.kind is EntryKind.REVERSAL and e.payment_id == payment_id
            ),
            start=_ZERO,
        )

    def redemption_for(self, payment_id: str) -> Money | None:
        """Bonus spent on a payment, or ``None`` when there was no redemption."""
        entry = self.find((EntryKind.REDEMPTION.value, payment_id))
        return entry.amount if entry else None

    # -- writing -------------------------------------------------------------------------------
    def post(self, entry: LedgerEntry) -> BonusLedger:
        """Append an entry; a repeat of an existing entry is a no-op, a different one a conflict."""
        existing = self.find(entry.key)
        if existing is not None:
            if existing != entry:
                raise LedgerConflict(f"{entry.key} already posted as {existing}, not {entry}")
            return self
        after = self._balance + entry.signed
        if after.is_negative:
            raise InsufficientBonusBalance(
                f"{entry.kind} of {entry.amount} exceeds the balance {self._balance}"
            )
        self._check_links(entry)
        return BonusLedger(self.customer_id, (*self.entries, entry))

    def _check_links(self, entry: LedgerEntry) -> None:
        if entry.kind is EntryKind.RESTORE and self.redemption_for(entry.payment_id) != entry.amount:
            raise LedgerInvariantError(f"RESTORE of {entry.payment_id} must equal its REDEMPTION")
        if entry.kind is EntryKind.REVERSAL:
            claimed = self.reversed_for(entry.payment_id) + self.shortfall_for(entry.payment_id)
            if claimed + entry.amount + entry.shortfall > self.accrued_for(entry.payment_id):
                raise LedgerInvariantError(f"reversals of {entry.payment_id} would exceed its accrual")

    def accrue(self, accrual: Accrual) -> BonusLedger:
        """Credit an accrual; exactly once per payment (a replay is a no-op)."""
        if accrual.customer_id != self.customer_id:
            raise ValueError("accrual belongs to another customer")
        return self.post(LedgerEntry(EntryKind.ACCRUAL, accrual.payment_id, accrual.amount))

    def claw_back(
        self, *, payment_id: str, refund_id: str, original_amount: Money, total_refunded: Money
    ) -> tuple[BonusLedger, Clawback]:
        """Reverse bonus for a refund (``total_refunded`` cumulative, this one included)."""
        # Proportional and never below a zero balance (brief §3 interpretation; issue 4). Replaying
        # the same refund_id returns the ledger unchanged and the recorded clawback.
        accrued = self.accrued_for(payment_id)
        existing = self.find((EntryKind.REVERSAL.value, payment_id, refund_id))
        if existing is not None:
            claim = existing.amount + existing.shortfall
            target = self.reversed_for(payment_id) + self.shortfall_for(payment_id)
            return self, Clawback(target, claim, existing.amount, existing.shortfall)
        plan = plan_clawback(
            accrued=accrued,
            original_amount=original_amount,
            total_refunded=total_refunded,
            already_claimed=self.reversed_for(payment_id) + self.shortfall_for(payment_id),
            available=self._balance,
        )
        if not plan.claim:
            return self, plan  # nothing accrued, or a share too small to reach one tiyn
        entry = LedgerEntry(
            EntryKind.REVERSAL, payment_id, plan.reversed, refund_id=refund_id, shortfall=plan.shortfall
        )
        return self.post(entry), plan

    def redeem(self, payment_id: str, amount: Money) -> BonusLedger:
        """Debit bonus spent on a purchase; refused if it exceeds the balance; once per payment."""
        return self.post(LedgerEntry(EntryKind.REDEMPTION, payment_id, amount))

    def restore(self, payment_id: str) -> BonusLedger:
        """Return the bonus redeemed for a purchase that failed; idempotent, no-op without one."""
        redeemed = self.redemption_for(payment_id)
        if redeemed is None:
            return self
        return self.post(LedgerEntry(EntryKind.RESTORE, payment_id, redeemed))
