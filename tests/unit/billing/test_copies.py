"""The daily job's hand-written copies equal ``dataclasses.replace`` (and notice a new field)."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import date

import pytest

from services.billing.domain import RedAccount
from services.billing.domain.bills import billed, with_overdue_flags, with_parts
from services.billing.domain.ledger import Ledger
from services.billing.domain.model import Bill, Part, Purchase

from .conftest import FakeCalendar, run_days, tenge
from .test_bills import account_with_purchase

pytestmark = pytest.mark.unit

# The copies spell out every field; adding one to a model must fail here until they are updated.
FIELDS = {
    Part: ("number", "amount", "statement_date", "paid", "billed"),
    Purchase: (
        "purchase_id",
        "price",
        "purchased_on",
        "parts",
        "limit_held",
        "refunded",
        "merchant",
        "partner_id",
    ),
    Bill: (
        "bill_id",
        "statement_date",
        "due_on",
        "due_at",
        "lines",
        "penalty_brought_forward",
        "carry_applied",
        "penalty",
        "paid",
        "paid_on",
        "overdue_recorded",
        "penalty_applied",
        "parts_paid_on",
    ),
    RedAccount: (
        "customer_id",
        "limit",
        "opened_on",
        "billing_day",
        "new_terms_accepted",
        "purchases",
        "bills",
        "carried",
        "penalty_due",
        "cancelled_purchase_ids",
        "closed",
    ),
}


def test_the_models_have_the_fields_the_copies_spell_out() -> None:
    for model, names in FIELDS.items():
        assert tuple(f.name for f in fields(model)) == names, model.__name__


def _billed_account(cal: FakeCalendar) -> RedAccount:
    account, _ = run_days(account_with_purchase(), date(2025, 2, 10), date(2025, 2, 10), cal)
    return account


def test_copies_equal_replace(cal: FakeCalendar) -> None:
    account = _billed_account(cal)
    assert account.bills
    assert account.purchases
    purchase = account.purchases[0]
    part = purchase.parts[-1]
    assert billed(part) == replace(part, billed=True)
    assert with_parts(purchase, purchase.parts[:2]) == replace(purchase, parts=purchase.parts[:2])
    bill = account.bills[0]
    assert with_overdue_flags(bill) == bill
    assert with_overdue_flags(bill, overdue_recorded=True) == replace(bill, overdue_recorded=True)
    assert with_overdue_flags(bill, penalty_applied=True, penalty=tenge(2000)) == replace(
        bill, penalty_applied=True, penalty=tenge(2000)
    )
    assert Ledger(account).freeze() == account
    closed = replace(account, closed=True, new_terms_accepted=not account.new_terms_accepted)
    assert Ledger(closed).freeze() == closed
