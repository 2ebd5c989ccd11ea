"""ReconcileReport rendering and serialisation, and notify's expected channels (no database)."""

from __future__ import annotations

import json

import pytest

from services.notify.settings import default_routes
from shared.ops.reconcile import (
    BONUS_DECISION_EXACTLY_ONCE,
    CHECKS,
    LEDGER_SUMS_TO_ZERO,
    Discrepancy,
    ReconcileReport,
    expected_channels,
)

pytestmark = pytest.mark.unit


def test_a_new_report_lists_every_check_clean() -> None:
    report = ReconcileReport(counts={"payments": 3})
    assert report.clean
    assert report.checks == dict.fromkeys(CHECKS, 0)
    text = report.render()
    assert text.startswith("aqsha reconcile: CLEAN\n")
    assert "payments  3" in text
    for check in CHECKS:
        assert f"{check}" in text
    assert "discrepancies:" not in text
    assert "FAILED" not in text


def test_discrepancies_are_counted_rendered_and_serialised() -> None:
    report = ReconcileReport(counts={"payments": 2, "bills": 0})
    report.add(LEDGER_SUMS_TO_ZERO, "payments.ledger_entries", "the whole ledger is off by 1 ₸")
    report.add(BONUS_DECISION_EXACTLY_ONCE, "p-1", "2 bonus decisions")
    report.add(BONUS_DECISION_EXACTLY_ONCE, "p-2", "0 bonus decisions")
    assert not report.clean
    assert report.checks[LEDGER_SUMS_TO_ZERO] == 1
    assert report.checks[BONUS_DECISION_EXACTLY_ONCE] == 2
    assert sum(report.checks.values()) == 3
    assert report.of(BONUS_DECISION_EXACTLY_ONCE) == [
        Discrepancy(BONUS_DECISION_EXACTLY_ONCE, "p-1", "2 bonus decisions"),
        Discrepancy(BONUS_DECISION_EXACTLY_ONCE, "p-2", "0 bonus decisions"),
    ]
    text = report.render()
    assert text.startswith("aqsha reconcile: 3 DISCREPANCIES\n")
    assert "[ledger_sums_to_zero] payments.ledger_entries: the whole ledger is off by 1 ₸" in text
    assert "[bonus_decision_exactly_once] p-2: 0 bonus decisions" in text
    assert any(line.split() == [BONUS_DECISION_EXACTLY_ONCE, "2", "FAILED"] for line in text.splitlines())
    assert any(line.split() == [CHECKS[-1], "ok"] for line in text.splitlines())
    data = report.as_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["clean"] is False
    assert data["counts"] == {"payments": 2, "bills": 0}
    assert data["discrepancies"][0] == {  # type: ignore[index]
        "check": LEDGER_SUMS_TO_ZERO,
        "subject": "payments.ledger_entries",
        "detail": "the whole ledger is off by 1 ₸",
    }


def test_one_discrepancy_is_singular() -> None:
    report = ReconcileReport()
    report.add(LEDGER_SUMS_TO_ZERO, "x", "y")
    assert report.render().startswith("aqsha reconcile: 1 DISCREPANCY\n")


def test_discrepancy_is_immutable() -> None:
    d = Discrepancy("c", "s", "d")
    with pytest.raises(AttributeError):
        d.check = "other"  # type: ignore[misc]


def test_expected_channels_mirror_notify_routing() -> None:
    routes = default_routes()
    both = {"customer_known": True, "has_email": True}
    assert expected_channels(routes, "BillIssued", **both) == {"inbox", "push", "email"}
    assert expected_channels(routes, "BillIssued", customer_known=True, has_email=False) == {"inbox", "push"}
    assert expected_channels(routes, "PaymentFailed", **both) == {"inbox", "push"}
    assert expected_channels(routes, "OtpRequested", **both) == {"sms"}
    custom = {"PaymentCompleted": ["sms", "inbox", "fax"]}
    assert expected_channels(custom, "PaymentCompleted", customer_known=False, has_email=False) == {"inbox"}
    assert expected_channels(custom, "PaymentCompleted", customer_known=True, has_email=False) == {
        "sms",
        "inbox",
    }
