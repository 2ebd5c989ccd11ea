"""A bill line names its purchase the way the customer knows it: merchant, partner, date, part of parts.

Billing keeps ``RedPurchaseRequested``'s merchant and partner on the plan (never used by a rule), the
snapshot stores them, and ``BillIssued``'s lines carry them with the purchase date and the number of
parts, all optional in the contract (plans stored before billing kept them have none).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from uuid import UUID

import pytest

from services.billing.domain import (
    BillLine,
    PurchaseApproved,
    RedAccount,
    approve_purchase,
    issue_bill,
    open_account,
)
from services.billing.service import _contract_line
from services.billing.store import account_from_json, account_to_json
from shared.contracts.billing import BillIssued
from shared.contracts.common import Merchant

from .conftest import FakeCalendar, tenge

pytestmark = pytest.mark.unit

PLAN = "6c1f7d2a-44b0-4a57-9a7e-5f1e2d3c4b5a"
OLD_PLAN = "6c1f7d2a-44b0-4a57-9a7e-5f1e2d3c4b5b"


def _account_with_two_purchases() -> RedAccount:
    account = open_account("c1", tenge(500_000), date(2025, 1, 10), new_terms_accepted=True)
    qr = approve_purchase(
        account, PLAN, tenge(60_000), date(2025, 1, 12), merchant="KASPI_QR", partner_id="partner-demo-coffee"
    )
    assert isinstance(qr, PurchaseApproved)
    old = approve_purchase(qr.account, OLD_PLAN, tenge(20_000), date(2025, 1, 13))  # before names were kept
    assert isinstance(old, PurchaseApproved)
    return old.account


def test_the_plan_keeps_the_merchant_and_partner_of_the_purchase() -> None:
    account = _account_with_two_purchases()
    qr = account.purchase(PLAN)
    assert qr is not None
    assert (qr.merchant, qr.partner_id) == ("KASPI_QR", "partner-demo-coffee")
    # A redelivered request answers with the plan as it is (the names included).
    again = approve_purchase(account, PLAN, tenge(60_000), date(2025, 1, 12), merchant="KASPI_MAGAZIN")
    assert isinstance(again, PurchaseApproved)
    assert again.purchase.merchant == "KASPI_QR"


def test_the_snapshot_keeps_the_names_and_reads_snapshots_without_them() -> None:
    account = _account_with_two_purchases()
    data = account_to_json(account)
    assert account_from_json(data) == account
    by_id = {p["id"]: p for p in data["purchases"]}
    assert (by_id[PLAN]["m"], by_id[PLAN]["pt"]) == ("KASPI_QR", "partner-demo-coffee")
    assert "m" not in by_id[OLD_PLAN]
    assert "pt" not in by_id[OLD_PLAN]
    for p in data["purchases"]:  # a snapshot written before billing kept names
        p.pop("m", None)
        p.pop("pt", None)
    legacy = account_from_json(data)
    assert [(p.merchant, p.partner_id) for p in legacy.purchases] == [(None, None), (None, None)]


def test_bill_issued_lines_carry_merchant_partner_date_and_parts(cal: FakeCalendar) -> None:
    issue = issue_bill(_account_with_two_purchases(), date(2025, 2, 10), cal)
    assert issue is not None
    lines = [_contract_line(line, issue.account) for line in issue.bill.lines]
    assert [
        (str(ln.purchase_id), ln.part_no, ln.merchant, ln.partner_id, ln.purchased_on, ln.parts_total)
        for ln in lines
    ] == [
        (PLAN, 1, Merchant.KASPI_QR, "partner-demo-coffee", date(2025, 1, 12), 4),
        (OLD_PLAN, 1, None, None, date(2025, 1, 13), 4),
    ]
    bill = BillIssued(
        bill_id=UUID(int=1),
        customer_id=UUID(int=2),
        statement_date=date(2025, 2, 10),
        due_at=issue.bill.due_at,
        amount=issue.bill.amount.tiyn,
        lines=lines,
    )
    assert BillIssued.model_validate_json(bill.model_dump_json()) == bill


def test_a_line_whose_plan_is_unknown_or_whose_merchant_is_not_a_contract_value_has_no_names(
    cal: FakeCalendar,
) -> None:
    issue = issue_bill(_account_with_two_purchases(), date(2025, 2, 10), cal)
    assert issue is not None
    gone = _contract_line(BillLine("7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", 2, tenge(1_000)), issue.account)
    assert (gone.merchant, gone.partner_id, gone.purchased_on, gone.parts_total) == (None, None, None, None)
    odd = replace(
        issue.account, purchases=tuple(replace(p, merchant="SOMETHING_NEW") for p in issue.account.purchases)
    )
    assert _contract_line(issue.bill.lines[0], odd).merchant is None
