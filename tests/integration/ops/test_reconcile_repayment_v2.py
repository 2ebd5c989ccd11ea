"""``aqsha reconcile`` over RepaymentApplied v2 allocations (docs/billing.md §5, docs/reconcile.md).

The world of ``test_reconcile.py`` (its fixture and helpers, reused): a Red bill repayment whose
overpayment went back to Gold. billing now stores the v2 allocation, with ``prepayment_used``.
"""

from __future__ import annotations

import pytest

from services.billing.store import derived_id
from shared.ops.reconcile import BILLING_MONEY_CONSERVED, OVERPAYMENT_CREDITED_TO_GOLD
from tests.integration.ops.test_reconcile import World, _only, _reconcile, _sql, world  # noqa: F401

pytestmark = pytest.mark.integration

ALLOCATION = "SELECT allocation FROM billing.repayments WHERE payment_id = $1"


async def test_the_stored_allocation_is_v2_and_the_world_is_clean(world: World) -> None:  # noqa: F811
    stored = await world.pools["billing"].fetchval(
        "SELECT allocation FROM repayments WHERE payment_id = $1", world.ids["red_bill"]
    )
    assert stored["prepayment_used"] == 0
    assert stored["refunded_to_gold"] == 500_00
    assert (await _reconcile(world)).clean


async def test_an_earlier_prepayment_counts_as_money_in(world: World) -> None:  # noqa: F811
    # 100 tiyn of earlier prepayment released with the payment and sent to Gold with the rest: money
    # in (amount + prepayment_used) still equals money out; the Gold credit is now 100 short.
    pid = world.ids["red_bill"]
    await _sql(
        world,
        "UPDATE billing.repayments SET allocation = allocation || jsonb_build_object("
        "'prepayment_used', 100, 'refunded_to_gold', (allocation->>'refunded_to_gold')::bigint + 100) "
        "WHERE payment_id = $1",
        args=(pid,),
    )
    report = await _reconcile(world)
    assert _only(report, OVERPAYMENT_CREDITED_TO_GOLD) == [
        f"refund {derived_id('overpayment', pid)} (repayment {pid})"
    ]
    # Without the prepayment counted as money in, the same row would not balance.
    await _sql(
        world,
        "UPDATE billing.repayments SET allocation = jsonb_set(allocation, '{prepayment_used}', '0') "
        "WHERE payment_id = $1",
        args=(pid,),
    )
    failing = {name for name, n in (await _reconcile(world)).checks.items() if n}
    assert BILLING_MONEY_CONSERVED in failing


async def test_a_v2_gold_refund_must_be_credited_exactly_a_v1_one_at_least(world: World) -> None:  # noqa: F811
    # 100 of the Gold refund moved to "carried": still conserved. v2 says the refund was 100 less
    # than payments credited: a finding. A v1 row (no prepayment_used) could not show an earlier
    # prepayment, so a larger credit is allowed there.
    pid = world.ids["red_bill"]
    moved = (
        "UPDATE billing.repayments SET allocation = allocation || jsonb_build_object("
        "'carried', (allocation->>'carried')::bigint + 100, "
        "'refunded_to_gold', (allocation->>'refunded_to_gold')::bigint - 100) WHERE payment_id = $1"
    )
    await _sql(world, moved, args=(pid,))
    report = await _reconcile(world)
    assert _only(report, OVERPAYMENT_CREDITED_TO_GOLD) == [
        f"refund {derived_id('overpayment', pid)} (repayment {pid})"
    ]
    assert "payments credited 500 ₸" in report.discrepancies[0].detail.replace("\u00a0", " ")
    await _sql(
        world,
        "UPDATE billing.repayments SET allocation = allocation - 'prepayment_used' WHERE payment_id = $1",
        args=(pid,),
    )
    assert (await _reconcile(world)).clean
