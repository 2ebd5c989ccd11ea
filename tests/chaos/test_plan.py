"""The chaos plan is a pure function of the seed (same seed → same workload and fault schedule)."""

from __future__ import annotations

import pytest

from tests.chaos.workload import FAULT_KINDS, SERVICE_NAMES, make_plan

pytestmark = pytest.mark.unit


def _signature(seed: int) -> list[object]:
    plan = make_plan(seed, 400, 12)
    commands = [(w.at, p.type, p.command.model_dump(mode="json"), p.confirm, p.duplicate) for w in plan.waves
                for p in w.commands]  # fmt: skip
    return [commands, plan.faults, [c.phone for c in plan.customers]]


def test_same_seed_same_plan() -> None:
    assert _signature(42) == _signature(42)
    assert _signature(42) != _signature(43)


def test_plan_sizes_and_coverage() -> None:
    plan = make_plan(20251120, 2000, 32)
    assert plan.command_count == 2000
    assert len(plan.faults) == 32
    assert {f.kind for f in plan.faults} == set(FAULT_KINDS)
    assert {f.target for f in plan.faults if f.kind == "kill"} == set(SERVICE_NAMES)
    assert all(0 < f.wave < len(plan.waves) - 1 for f in plan.faults)
    types = plan.describe()["command_types"]
    assert set(types) == {"TopUp", "PayService", "Transfer", "Purchase", "Refund", "PayRedBill"}
    times = [w.at for w in plan.waves]
    assert times == sorted(times)
    assert any(w.at.hour >= 20 for w in plan.waves)  # Red bills after the 20:00 cut-off
    assert any(p.needs_code and not p.confirm for w in plan.waves for p in w.commands)


def test_plan_limited_to_fault_kinds() -> None:
    plan = make_plan(7, 40, 3, waves=3, kinds=("forged",))
    assert [f.kind for f in plan.faults] == ["forged"] * 3
    assert all(f.wave == 1 for f in plan.faults)  # wave 0 onboards, the last runs clean
    with pytest.raises(ValueError, match="unknown fault kinds"):
        make_plan(7, 40, 3, kinds=("meteor",))
