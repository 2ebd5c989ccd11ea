"""The smoke benchmark runs and produces a sane report. Never a timing assertion (a shared machine)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench.runner import main

pytestmark = pytest.mark.e2e

KEYS = (
    "payments_per_s",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "baseline_payments_per_s",
    "raw_limit_payments_per_s",
    "bills_per_s",
    "duration_s",
    "ratios",
    "cpu_s_per_1000_payments",
    "peak_memory_mb",
    "machine",
    "verify_us_per_message",
    "sign_us_per_message",
    "verifications_per_payment",
    "verify_cpu_ms_per_payment",
)


def test_smoke_benchmark_writes_a_sane_report(tmp_path: Path) -> None:
    assert main(["--smoke", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "latest.json").read_text())
    assert set(KEYS) <= set(report)
    for key in ("payments_per_s", "baseline_payments_per_s", "raw_limit_payments_per_s", "bills_per_s"):
        assert report[key] > 0, key
    # The trust boundary's cost was measured on real records: every one verified and signed.
    for key in ("verify_us_per_message", "sign_us_per_message", "verifications_per_payment"):
        assert report[key] > 0, key
    assert report["trust"]["records_measured"] > 0
    assert report["billing"]["bills"] == report["billing"]["accounts"]
    assert (tmp_path / "latest.png").stat().st_size > 0
    assert len(list(tmp_path.glob("bench-*.json"))) == 1
