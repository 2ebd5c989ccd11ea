"""The chaos suite inside ``make test``: the quick seeded run, and the mutation check of the auditor.

Each test starts its own private broker (Tansu on moto S3), PostgreSQL, Redis and the four services,
so they never touch the machine's shared servers (docs/chaos.md).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.__main__ import DEFAULT_SEED, QUICK
from tests.chaos.runner import Config, run_chaos

# Each test starts its own infrastructure and platform; on a loaded 2-core machine a run can take
# several minutes, so the tier's default 300 s timeout is raised (timings are never asserted).
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


def _run(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    cfg = Config(
        run_dir=tmp_path / "run", report_path=tmp_path / "report.json", say=lambda _: None, **changes
    )
    return asyncio.run(run_chaos(cfg))


def test_quick_chaos_run_passes_every_invariant(tmp_path: Path) -> None:
    report = _run(tmp_path, seed=DEFAULT_SEED, commands=QUICK["commands"], faults=QUICK["faults"])
    failed = {k: v for k, v in report["invariants"].items() if not v}
    assert report["passed"], f"invariants failed: {failed}; violations: {report.get('violations')}"
    assert report["seed"] == DEFAULT_SEED
    assert report["commands"] >= QUICK["commands"]
    assert report["faults"] == QUICK["faults"]
    assert report["invariants"]["logs_clean"] is True
    assert (tmp_path / "report.json").exists()


# A short, duplicate-heavy run: every command and every service event is delivered twice, a third
# of the commands are resent. Seed 4 has ten Red bill payments with nothing owed, so billing refunds
# them to Gold (OverpaymentRefunded): payments credits those only through the inbox, while its other
# consumers also have unique keys of their own (bonus decisions, billing facts, notify deliveries).
MUTATION_RUN = {"seed": 4, "commands": 60, "faults": 0, "waves": 3, "dup_rate": 1.0, "resend_rate": 0.35}


@pytest.mark.mutation
def test_auditor_catches_a_disabled_inbox(tmp_path: Path) -> None:
    report = _run(tmp_path, mutation="inbox", **MUTATION_RUN)
    assert not report["passed"]
    failed = {k for k, v in report["invariants"].items() if not v}
    # Redelivered events act again: money or bonus moves twice, or a unique key refuses the second
    # effect and the event is dead-lettered although it was valid.
    assert failed & {
        "only_poison_dead_lettered",
        "bonus_decision_exactly_once",
        "billing_money_conserved",
        "balances_match_ledger",
        "ledger_sums_to_zero",
        "delivered_exactly_once_per_channel",
    }, failed


@pytest.mark.mutation
def test_auditor_catches_a_disabled_idempotency_guard(tmp_path: Path) -> None:
    report = _run(tmp_path, mutation="idempotency", **MUTATION_RUN)
    assert not report["passed"]
    failed = {k for k, v in report["invariants"].items() if not v}
    # A resent command runs again: a second outcome (or a refused second effect, dead-lettered).
    assert "exactly_one_outcome" in failed or "only_poison_dead_lettered" in failed, failed


# A short run whose only fault is the forged one: with the trust boundary switched off in every
# service (the test-only AQSHA_TEST_DISABLE_VERIFICATION), the hostile records take effect.
TRUST_MUTATION_RUN = {"seed": 7, "commands": 40, "faults": 1, "waves": 3, "fault_kinds": ("forged",)}


@pytest.mark.mutation
def test_auditor_catches_disabled_verification(tmp_path: Path) -> None:
    report = _run(tmp_path, mutation="verification", **TRUST_MUTATION_RUN)
    assert not report["passed"]
    assert report["fault_kinds"] == {"forged": 1}
    failed = {k for k, v in report["invariants"].items() if not v}
    assert "forged_records_refused" in failed, failed
