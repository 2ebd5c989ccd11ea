"""Builders for the bonus domain tests: payments, instants and a test-owned rules file."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from services.bonus.domain import (
    ALMATY,
    Funding,
    Merchant,
    PaymentFacts,
    PaymentKind,
)
from shared.money import Money

SWITCH_OVER = date(2025, 6, 1)

# Test-owned rules with fixed promotion windows, so the shipped demo data can change freely.
TEST_RULES = """
[[rule_sets]]
id = "legacy"
effective_from = 2014-01-01

[[rule_sets.rules]]
id = "legacy.flights"
percent = 5
kinds = ["SERVICE", "PURCHASE"]
categories = ["flight"]

[[rule_sets.rules]]
id = "legacy.restaurants"
percent = 5
kinds = ["SERVICE"]
categories = ["restaurant"]
providers = ["rest-listed"]

[[rule_sets.rules]]
id = "legacy.services"
percent = 1
kinds = ["SERVICE"]

[[rule_sets]]
id = "current"
effective_from = 2025-06-01
max_percent = 15

[[rule_sets.rules]]
id = "current.partner_qr_promo"
promotional = true
kinds = ["PURCHASE"]
merchants = ["KASPI_QR"]
fundings = ["GOLD", "RED"]

[[rule_sets.rules]]
id = "current.kaspi_travel"
percent = "7.5"
kinds = ["PURCHASE"]
merchants = ["KASPI_TRAVEL"]

[[rule_sets.promotions]]
id = "promo-coffee-june"
partner_id = "partner-coffee"
percent = 10
from = 2025-06-10
to = 2025-07-01

[[rule_sets.promotions]]
id = "promo-coffee-august"
partner_id = "partner-coffee"
percent = 15
from = 2025-08-01
to = 2025-09-01
"""


def almaty(day: date, at: time = time(12, 0)) -> datetime:
    """An aware instant on an Asia/Almaty date."""
    return datetime.combine(day, at, tzinfo=ALMATY)


def payment(**overrides: Any) -> PaymentFacts:
    """A service payment of 20 000 ₸ from Gold on 2025-03-15 noon Almaty, with overrides."""
    fields: dict[str, Any] = {
        "payment_id": "pay-1",
        "customer_id": "cust-1",
        "kind": PaymentKind.SERVICE,
        "category": "utilities",
        "provider": "alseco",
        "merchant": None,
        "partner_id": None,
        "funding": Funding.GOLD,
        "amount": Money.of_tenge(20_000),
        "bonus_amount_used": Money.zero(),
        "completed_at": almaty(date(2025, 3, 15)),
    }
    fields.update(overrides)
    return PaymentFacts(**fields)


def qr_purchase(**overrides: Any) -> PaymentFacts:
    """A Kaspi QR purchase at the coffee partner, 10 000 ₸ from Gold, on 2025-06-15."""
    fields: dict[str, Any] = {
        "kind": PaymentKind.PURCHASE,
        "category": None,
        "provider": None,
        "merchant": Merchant.KASPI_QR,
        "partner_id": "partner-coffee",
        "amount": Money.of_tenge(10_000),
        "completed_at": almaty(date(2025, 6, 15)),
    }
    fields.update(overrides)
    return payment(**fields)
