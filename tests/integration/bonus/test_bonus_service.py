"""The bonus service end to end on real PostgreSQL and Kafka (issue 4 acceptance).

The app is started ONCE for the module (one consumer-group join); every test uses fresh customer
ids. Ordering trick for "nothing was published": one customer's events share a partition and the
outbox relays in id order, so once a later event for that customer arrived, an earlier one would
have arrived before it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest

from services.bonus import queries
from services.bonus.domain import BonusRules, load_rules
from services.bonus.service import BonusService
from shared.clock import SystemClock
from shared.contracts.common import Funding, Merchant, PaymentKind, ServiceCategory
from shared.contracts.payments import PaymentCompleted, PaymentFailed
from shared.contracts.samples import sample
from shared.db import create_pool
from tests.integration.bonus.conftest import SWITCH_OVER, Bonus, cancelled, completed, redemption, refunded

pytestmark = pytest.mark.integration

ALMATY = ZoneInfo("Asia/Almaty")
TENGE = 100  # tiyn


def _utility(customer: UUID, at: datetime, amount: int = 20_000 * TENGE) -> PaymentCompleted:
    return completed(
        customer, at=at, amount=amount, category=ServiceCategory.ELECTRICITY, provider="almaty-energo"
    )


async def _fund(bonus: Bonus, customer: UUID, bonus_tiyn: int) -> None:
    """Give the customer ``bonus_tiyn`` through a Kaspi Travel purchase (5 % in the current program)."""
    pay = completed(
        customer,
        at=datetime(2025, 6, 1, 12, tzinfo=ALMATY),
        amount=bonus_tiyn * 20,
        kind=PaymentKind.PURCHASE,
        merchant=Merchant.KASPI_TRAVEL,
        partner_id="travel-air-astana",
    )
    await bonus.publish(pay)
    accrued = await bonus.one(customer, "BonusAccrued", pay.payment_id)
    assert accrued.amount == bonus_tiyn


# -- accrual: programs on their own dates ---------------------------------------------------------


async def test_legacy_program_accrues_1_percent_on_services_and_5_on_flights_and_listed_restaurants(
    bonus: Bonus,
) -> None:
    customer = uuid4()
    day = datetime(2024, 6, 15, 12, tzinfo=ALMATY)
    utility = completed(
        customer, at=day, amount=20_000 * TENGE, category=ServiceCategory.UTILITIES, provider="astana-erc"
    )
    flight = completed(
        customer,
        at=day,
        amount=80_000 * TENGE,
        kind=PaymentKind.PURCHASE,
        category=ServiceCategory.FLIGHT,
        merchant=Merchant.KASPI_TRAVEL,
    )
    listed = completed(
        customer,
        at=day,
        amount=10_000 * TENGE,
        category=ServiceCategory.RESTAURANT,
        provider="rest-dastarkhan",
    )
    unlisted = completed(
        customer, at=day, amount=10_000 * TENGE, category=ServiceCategory.RESTAURANT, provider="rest-other"
    )
    qr = completed(
        customer,
        at=day,
        amount=5_000 * TENGE,
        kind=PaymentKind.PURCHASE,
        merchant=Merchant.KASPI_QR,
        partner_id="partner-demo-coffee",
    )
    for p in (qr, utility, flight, listed, unlisted):
        await bonus.publish(p)
    expected = {
        utility.payment_id: (
            200 * TENGE,
            "legacy.services",
            "1",
        ),  # "200 bonus on a 20 000 ₸ utility payment"
        flight.payment_id: (4_000 * TENGE, "legacy.flights", "5"),
        listed.payment_id: (500 * TENGE, "legacy.restaurants", "5"),
        unlisted.payment_id: (100 * TENGE, "legacy.services", "1"),
    }
    for payment_id, (amount, rule_id, percent) in expected.items():
        event = await bonus.one(customer, "BonusAccrued", payment_id)
        assert (event.amount, event.rule_set, event.rule_id, event.percent) == (
            amount,
            "legacy",
            rule_id,
            percent,
        )
    # A purchase at Kaspi QR earned nothing under legacy: no event, but a recorded decision.
    assert bonus.of(customer, "BonusAccrued", qr.payment_id) == []
    decision = await bonus.decision(qr.payment_id)
    assert (decision["outcome"], decision["accrued"], decision["rule_set"]) == ("NO_BONUS", 0, "legacy")
    assert await bonus.balance(customer) == 4_800 * TENGE


async def test_switch_over_day_judges_each_payment_by_the_program_in_force_at_completion(
    bonus: Bonus,
) -> None:
    customer = uuid4()
    last_legacy = _utility(customer, datetime(2024, 12, 31, 23, 59, 59, tzinfo=ALMATY))
    first_current = _utility(customer, datetime(2025, 1, 1, 0, 0, tzinfo=ALMATY))
    # 19:30 UTC on 31 December is 00:30 on 1 January in Almaty (UTC+5): the current program.
    utc_evening = _utility(customer, datetime(2024, 12, 31, 19, 30, tzinfo=UTC))
    later = _utility(customer, datetime(2025, 6, 1, 9, tzinfo=ALMATY))
    for p in (first_current, utc_evening, later, last_legacy):
        await bonus.publish(p)
    event = await bonus.one(customer, "BonusAccrued", last_legacy.payment_id)
    assert (event.amount, event.rule_set) == (200 * TENGE, "legacy")
    for p in (first_current, utc_evening, later):
        decision = await bonus.decision(p.payment_id)
        assert (decision["outcome"], decision["rule_set"]) == ("NO_BONUS", "current")
    assert len(bonus.of(customer, "BonusAccrued")) == 1
    assert await bonus.balance(customer) == 200 * TENGE


async def test_partner_promotions_inside_and_outside_their_window_and_by_funding(bonus: Bonus) -> None:
    customer = uuid4()

    def qr(at: datetime, partner: str, funding: Funding = Funding.GOLD) -> PaymentCompleted:
        return completed(
            customer,
            at=at,
            amount=10_000 * TENGE,
            kind=PaymentKind.PURCHASE,
            merchant=Merchant.KASPI_QR,
            partner_id=partner,
            funding=funding,
        )

    coffee_gold = qr(datetime(2025, 7, 1, 10, tzinfo=ALMATY), "partner-demo-coffee")
    coffee_red = qr(datetime(2025, 7, 1, 11, tzinfo=ALMATY), "partner-demo-coffee", Funding.RED)
    coffee_wallet = qr(datetime(2025, 7, 1, 12, tzinfo=ALMATY), "partner-demo-coffee", Funding.WALLET)
    coffee_card = qr(datetime(2025, 7, 1, 12, tzinfo=ALMATY), "partner-demo-coffee", Funding.EXTERNAL_CARD)
    coffee_after = qr(
        datetime(2026, 1, 1, 0, 0, tzinfo=ALMATY), "partner-demo-coffee"
    )  # window is [from, to)
    electronics_last_day = qr(datetime(2025, 3, 31, 23, 59, tzinfo=ALMATY), "partner-demo-electronics")
    electronics_after = qr(datetime(2025, 4, 1, 0, 0, tzinfo=ALMATY), "partner-demo-electronics")
    no_promo = qr(datetime(2025, 7, 1, 10, tzinfo=ALMATY), "partner-without-promo")
    misses = (coffee_wallet, coffee_card, coffee_after, electronics_after, no_promo)
    for p in (*misses, coffee_gold, coffee_red, electronics_last_day):
        await bonus.publish(p)
    for p, amount, promo, percent in (
        (coffee_gold, 1_000 * TENGE, "promo-demo-coffee-2025", "10"),
        (coffee_red, 1_000 * TENGE, "promo-demo-coffee-2025", "10"),
        (electronics_last_day, 1_500 * TENGE, "promo-demo-electronics-2025", "15"),
    ):
        event = await bonus.one(customer, "BonusAccrued", p.payment_id)
        assert (event.amount, event.rule_set, event.rule_id, event.percent) == (
            amount,
            "current",
            promo,
            percent,
        )
    for p in misses:
        assert bonus.of(customer, "BonusAccrued", p.payment_id) == []
        assert (await bonus.decision(p.payment_id))["outcome"] == "NO_BONUS"
    row = await bonus.pool.fetchrow(
        "SELECT rule_id, promotion_id FROM ledger_entries WHERE payment_id = $1",
        coffee_gold.payment_id,
    )
    assert row is not None
    assert tuple(row) == ("current.partner_qr_promo", "promo-demo-coffee-2025")
    assert await bonus.balance(customer) == 3_500 * TENGE


async def test_kaspi_travel_earns_its_configured_percent_on_the_money_paid(bonus: Bonus) -> None:
    customer = uuid4()
    at = datetime(2025, 8, 20, 15, tzinfo=ALMATY)
    wallet = completed(
        customer, at=at, amount=123_456_78, kind=PaymentKind.PURCHASE, merchant=Merchant.KASPI_TRAVEL,
        funding=Funding.WALLET, fee=1_000_00,
    )  # fmt: skip
    part_bonus = completed(
        customer, at=at, amount=50_000 * TENGE, kind=PaymentKind.PURCHASE, merchant=Merchant.KASPI_TRAVEL,
        bonus_amount=10_000 * TENGE,
    )  # fmt: skip
    await bonus.publish(wallet)
    await bonus.publish(part_bonus)
    first = await bonus.one(customer, "BonusAccrued", wallet.payment_id)
    assert (first.rule_id, first.percent, first.base_amount, first.amount) == (
        "current.kaspi_travel",
        "5",
        123_456_78,
        6_172_83,  # 5 % of 123 456,78 ₸ = 6 172,839 ₸, rounded down to the tiyn; the fee earns nothing
    )
    second = await bonus.one(customer, "BonusAccrued", part_bonus.payment_id)
    assert (second.base_amount, second.amount, second.balance_after) == (
        40_000 * TENGE,
        2_000 * TENGE,
        6_172_83 + 2_000 * TENGE,
    )


async def test_accrual_happens_exactly_once_when_payment_completed_is_delivered_three_times(
    bonus: Bonus,
) -> None:
    customer = uuid4()
    pay = _utility(customer, datetime(2024, 5, 5, 10, tzinfo=ALMATY))
    env = bonus.envelope(pay)
    await bonus.publish(env, times=3)
    # The same payment under another event id (e.g. a producer retry) is stopped by the decision key.
    await bonus.publish(pay)
    barrier = _utility(customer, datetime(2024, 5, 6, 10, tzinfo=ALMATY), amount=1_000 * TENGE)
    await bonus.publish(barrier)
    await bonus.one(customer, "BonusAccrued", barrier.payment_id)
    assert len(bonus.of(customer, "BonusAccrued", pay.payment_id)) == 1
    entries = await queries.ledger(bonus.pool, customer)
    assert [(e["kind"], e["amount"]) for e in entries] == [("ACCRUAL", 200 * TENGE), ("ACCRUAL", 10 * TENGE)]
    assert await queries.balance(bonus.pool, customer) == 210 * TENGE
    assert (
        await bonus.pool.fetchval(
            "SELECT count(*) FROM accrual_decisions WHERE payment_id = $1",
            pay.payment_id,
        )
        == 1
    )


# -- clawback -------------------------------------------------------------------------------------


async def test_refunds_claw_back_in_proportion_to_the_amount_refunded(bonus: Bonus) -> None:
    customer = uuid4()
    pay = completed(
        customer, at=datetime(2025, 6, 1, tzinfo=ALMATY), amount=20_000 * TENGE, kind=PaymentKind.PURCHASE,
        merchant=Merchant.KASPI_TRAVEL,
    )  # fmt: skip
    await bonus.publish(pay)
    await bonus.one(customer, "BonusAccrued", pay.payment_id)  # 1 000 ₸
    first = refunded(pay, amount=6_000 * TENGE, total_refunded=6_000 * TENGE)
    await bonus.publish(first)
    await bonus.publish(first, times=1)  # the same refund again under a new event id: no second clawback
    rest = refunded(pay, amount=14_000 * TENGE, total_refunded=20_000 * TENGE)
    await bonus.publish(rest)
    events = await bonus.wait_for(customer, "BonusReversed", pay.payment_id, count=2)
    assert [(e.refund_id, e.amount, e.shortfall, e.balance_after) for e in events] == [
        (first.refund_id, 300 * TENGE, 0, 700 * TENGE),
        (rest.refund_id, 700 * TENGE, 0, 0),
    ]
    # A refund of a payment that earned nothing reverses nothing.
    plain = _utility(customer, datetime(2025, 6, 2, tzinfo=ALMATY))
    await bonus.publish(plain)
    await bonus.publish(refunded(plain, amount=20_000 * TENGE, total_refunded=20_000 * TENGE))
    barrier = completed(
        customer, at=datetime(2025, 6, 3, tzinfo=ALMATY), amount=200 * TENGE, kind=PaymentKind.PURCHASE,
        merchant=Merchant.KASPI_TRAVEL,
    )  # fmt: skip
    await bonus.publish(barrier)
    await bonus.one(customer, "BonusAccrued", barrier.payment_id)
    assert len(bonus.of(customer, "BonusReversed")) == 2
    assert await bonus.balance(customer) == 10 * TENGE


async def test_clawback_of_an_already_spent_bonus_takes_what_is_there_and_records_the_shortfall(
    bonus: Bonus,
) -> None:
    customer = uuid4()
    travel = completed(
        customer, at=datetime(2025, 6, 1, tzinfo=ALMATY), amount=100_000 * TENGE, kind=PaymentKind.PURCHASE,
        merchant=Merchant.KASPI_TRAVEL,
    )  # fmt: skip
    await bonus.publish(travel)
    await bonus.one(customer, "BonusAccrued", travel.payment_id)  # 5 000 ₸
    spend = redemption(customer, amount=4_000 * TENGE, purchase_amount=10_000 * TENGE)
    await bonus.publish(spend)
    assert (await bonus.one(customer, "BonusRedeemed", spend.payment_id)).balance_after == 1_000 * TENGE
    await bonus.publish(refunded(travel, amount=100_000 * TENGE, total_refunded=100_000 * TENGE))
    reversed_ = await bonus.one(customer, "BonusReversed", travel.payment_id)
    assert (reversed_.amount, reversed_.shortfall, reversed_.balance_after) == (
        1_000 * TENGE,
        4_000 * TENGE,
        0,
    )
    row = await bonus.pool.fetchrow("SELECT amount, shortfall FROM ledger_entries WHERE kind = 'REVERSAL' "
                                    "AND customer_id = $1", customer)  # fmt: skip
    assert row is not None
    assert tuple(row) == (1_000 * TENGE, 4_000 * TENGE)
    assert await bonus.balance(customer) == 0


# -- spending -------------------------------------------------------------------------------------


async def test_redemption_caps_and_declines(bonus: Bonus) -> None:
    customer = uuid4()
    await _fund(bonus, customer, 5_000 * TENGE)
    over_share = redemption(customer, amount=6_000 * TENGE + 1, purchase_amount=10_000 * TENGE)
    over_balance = redemption(customer, amount=5_000 * TENGE + 1, purchase_amount=20_000 * TENGE)
    qr = redemption(customer, amount=100 * TENGE, purchase_amount=1_000 * TENGE, merchant=Merchant.KASPI_QR)
    travel = redemption(
        customer, amount=100 * TENGE, purchase_amount=1_000 * TENGE, merchant=Merchant.KASPI_TRAVEL
    )
    service = redemption(
        customer, amount=100 * TENGE, purchase_amount=1_000 * TENGE, kind=PaymentKind.SERVICE
    )
    red_bill = redemption(
        customer, amount=100 * TENGE, purchase_amount=1_000 * TENGE, kind=PaymentKind.RED_BILL
    )
    exactly_60 = redemption(customer, amount=3_000 * TENGE, purchase_amount=5_000 * TENGE)
    expected = {
        over_share.payment_id: "BONUS_EXCEEDS_REDEMPTION_SHARE",  # the domain's BONUS_CAP_EXCEEDED
        over_balance.payment_id: "BONUS_BALANCE_INSUFFICIENT",
        qr.payment_id: "BONUS_CATEGORY_NOT_ELIGIBLE",
        travel.payment_id: "BONUS_CATEGORY_NOT_ELIGIBLE",
        service.payment_id: "BONUS_CATEGORY_NOT_ELIGIBLE",
        red_bill.payment_id: "BONUS_NOT_ALLOWED_FOR_RED",
    }
    for req in (over_share, over_balance, qr, travel, service, red_bill, exactly_60):
        await bonus.publish(req)
    for payment_id, code in expected.items():
        declined = await bonus.one(customer, "BonusRedemptionDeclined", payment_id)
        assert declined.reason_code == code
        assert declined.message
    redeemed = await bonus.one(customer, "BonusRedeemed", exactly_60.payment_id)
    assert (redeemed.amount, redeemed.balance_after) == (3_000 * TENGE, 2_000 * TENGE)
    # Idempotent by request: a repeated request gets the same answer and debits nothing more.
    await bonus.publish(exactly_60)
    await bonus.publish(over_balance)
    again = await bonus.wait_for(customer, "BonusRedeemed", exactly_60.payment_id, count=2)
    assert again[1] == again[0]
    declined_again = await bonus.wait_for(
        customer, "BonusRedemptionDeclined", over_balance.payment_id, count=2
    )
    assert declined_again[1].reason_code == "BONUS_BALANCE_INSUFFICIENT"
    # The same purchase with another bonus amount is a conflict, not a second debit.
    conflict = exactly_60.model_copy(update={"amount": 1_000 * TENGE})
    await bonus.publish(conflict)
    answer = await bonus.one(customer, "BonusRedemptionDeclined", exactly_60.payment_id)
    assert answer.reason_code == "IDEMPOTENCY_CONFLICT"
    assert await bonus.balance(customer) == 2_000 * TENGE
    assert (
        await bonus.pool.fetchval(
            "SELECT count(*) FROM ledger_entries WHERE customer_id = $1 AND kind = 'REDEMPTION'", customer
        )
        == 1
    )


async def test_a_failed_purchase_returns_the_redeemed_bonus(bonus: Bonus) -> None:
    customer = uuid4()
    await _fund(bonus, customer, 5_000 * TENGE)
    req = redemption(customer, amount=3_000 * TENGE, purchase_amount=5_000 * TENGE)
    await bonus.publish(req)
    assert (await bonus.one(customer, "BonusRedeemed", req.payment_id)).balance_after == 2_000 * TENGE
    cancel = cancelled(req)
    await bonus.publish(cancel)
    await bonus.publish(cancel)  # a second compensation (new event id) returns nothing more
    restored = await bonus.one(customer, "BonusRestored", req.payment_id)
    assert (restored.amount, restored.balance_after) == (3_000 * TENGE, 5_000 * TENGE)
    # Cancelling a declined redemption returns nothing.
    declined = redemption(customer, amount=9_000 * TENGE, purchase_amount=20_000 * TENGE)
    await bonus.publish(declined)
    await bonus.one(customer, "BonusRedemptionDeclined", declined.payment_id)
    await bonus.publish(cancelled(declined))
    barrier = redemption(customer, amount=1 * TENGE, purchase_amount=10 * TENGE)
    await bonus.publish(barrier)
    await bonus.one(customer, "BonusRedeemed", barrier.payment_id)
    assert len(bonus.of(customer, "BonusRestored")) == 1
    assert await bonus.balance(customer) == 5_000 * TENGE - 1 * TENGE
    restored_at = await bonus.pool.fetchval(
        "SELECT restored_at FROM redemptions WHERE payment_id = $1", req.payment_id
    )
    assert restored_at is not None


async def test_other_event_types_on_the_topic_are_skipped(bonus: Bonus) -> None:
    customer = uuid4()
    failed = sample(PaymentFailed).model_copy(update={"customer_id": customer, "payment_id": uuid4()})
    await bonus.publish(failed)
    pay = _utility(customer, datetime(2024, 7, 1, tzinfo=ALMATY))
    await bonus.publish(pay)
    await bonus.one(customer, "BonusAccrued", pay.payment_id)
    assert [e.TYPE for e in bonus.of(customer)] == ["BonusAccrued"]
    assert await bonus.pool.fetchval("SELECT count(*) FROM inbox WHERE event_type = 'PaymentFailed'") == 0


async def test_concurrent_redemptions_for_one_customer_never_overspend(bonus: Bonus) -> None:
    """Direct service calls in parallel (bypassing Kafka's per-key ordering): the row lock serialises them."""
    customer = uuid4()
    await _fund(bonus, customer, 1_000 * TENGE)
    service_pool = await create_pool(bonus.settings.db.dsn, "bonus", max_size=8)
    try:
        service = BonusService(service_pool, _rules(), SystemClock(), group="test-concurrency")
        requests = [redemption(customer, amount=300 * TENGE, purchase_amount=1_000 * TENGE) for _ in range(6)]
        await asyncio.gather(*(service.handle(bonus.envelope(r)) for r in requests))
    finally:
        await service_pool.close()
    outcomes = await bonus.pool.fetch(
        "SELECT outcome, count(*) AS n FROM redemptions WHERE customer_id = $1 GROUP BY outcome ORDER BY 1",
        customer,
    )
    assert {r["outcome"]: r["n"] for r in outcomes} == {"DECLINED": 3, "REDEEMED": 3}
    assert await bonus.balance(customer) == 100 * TENGE


def _rules() -> BonusRules:
    return load_rules(current_start=SWITCH_OVER)
