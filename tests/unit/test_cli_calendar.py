"""``aqsha billing calendar``: wiring, usage errors and the text rendering (no infrastructure)."""

from __future__ import annotations

from datetime import date, datetime, time
from uuid import UUID

import pytest
from typer.testing import CliRunner

from shared.clock import ALMATY
from shared.ops.cli import app
from shared.ops.service_tools import render_calendar

pytestmark = pytest.mark.unit

CUSTOMER = UUID("3b0c7e1a-5d2f-4a8e-9c1b-7e6f5a4d3c2b")
PURCHASE = UUID("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")


def _month(statement: date, due_on: date, status: str, amount: int, **extra: object) -> dict[str, object]:
    month: dict[str, object] = {
        "statement_date": statement,
        "status": status,
        "bill_id": None,
        "due_on": due_on,
        "due_at": datetime.combine(due_on, time(20, 0), tzinfo=ALMATY),
        "amount": amount,
        "owed": amount,
        "penalty": 0,
        "prepayment": 0,
        "penalty_charged": 0,
        "lines": [
            {
                "purchase_id": PURCHASE,
                "part_no": 2,
                "amount": 600_000,
                "price": 2_400_000,
                "purchased_on": date(2025, 10, 20),
            }
        ],
    }
    month.update(extra)
    return month


def test_the_calendar_command_is_wired_and_checks_its_argument() -> None:
    assert "calendar" in CliRunner().invoke(app, ["billing", "--help"]).stdout
    result = CliRunner().invoke(
        app, ["billing", "calendar", "nope"], env={"AQSHA_PG_DSN": "postgresql://nobody@127.0.0.1:1/x"}
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == "aqsha: error: invalid customer id 'nope': expected a UUID"
    assert result.stdout == ""


def test_render_calendar_shows_the_next_bill_and_every_month() -> None:
    overdue = _month(
        date(2025, 10, 22), date(2025, 11, 24), "OVERDUE", 1_500_000, owed=500_000, penalty_charged=200_000
    )
    upcoming = _month(
        date(2025, 11, 22), date(2025, 12, 22), "UPCOMING", 1_100_000, penalty=200_000, prepayment=100_000
    )
    text = render_calendar(
        {
            "customer_id": CUSTOMER,
            "as_of": date(2025, 11, 26),
            "billing_day": 22,
            "closed": False,
            "carried": 0,
            "penalty_due": 0,
            "next_bill": upcoming,
            "months": [overdue, upcoming],
        }
    ).replace("\u00a0", " ")
    assert text.splitlines() == [
        f"customer {CUSTOMER}: Kaspi Red bill calendar, business days closed through 26.11.2025, "
        "billing day 22",
        "next bill 22.11.2025: 11 000 ₸",
        "  22.10.2025  OVERDUE   15 000 ₸, due 24.11.2025 20:00, still owed 5 000 ₸ "
        "(late: one-time penalty 2 000 ₸ charged)",
        "      part 2/4 of the 24 000 ₸ purchase of 20.10.2025 (9a8b7c6d): 6 000 ₸",
        "  22.11.2025  UPCOMING  11 000 ₸, due 22.12.2025 20:00",
        "      part 2/4 of the 24 000 ₸ purchase of 20.10.2025 (9a8b7c6d): 6 000 ₸",
        "      unpaid penalty brought forward: 2 000 ₸",
        "      prepayment from earlier payments: −1 000 ₸",
    ]


def test_render_calendar_when_nothing_is_left_to_bill() -> None:
    text = render_calendar(
        {
            "customer_id": CUSTOMER,
            "as_of": date(2025, 11, 26),
            "billing_day": 22,
            "closed": True,
            "carried": 0,
            "penalty_due": 0,
            "next_bill": None,
            "months": [],
        }
    )
    assert text.endswith("billing day 22 (Red closed)\nno bill to come: nothing is left to bill")
