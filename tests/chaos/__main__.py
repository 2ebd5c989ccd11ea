"""``python -m tests.chaos [--seed N] [--commands N] [--faults N] [--quick]``: the chaos suite.

Exit code 0 iff every invariant held; the report is printed and written to
reports/chaos/latest.json (docs/chaos.md).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from tests.chaos.runner import DEFAULT_REPORT, Config, run_chaos
from tests.chaos.workload import FAULT_KINDS

DEFAULT_SEED = 20251120
#: The full run (``make chaos``) and the quick one (``make test``).
FULL = {"commands": 2000, "faults": 32}
#: The quick run's seven faults are the first seven of every plan: each service killed, poison,
#: forged records and a Redis FLUSHALL (``workload._fault_plan``).
QUICK = {"commands": 100, "faults": 7}


def render(report: dict[str, object]) -> str:
    """The human-readable summary."""
    lines = [
        "",
        f"aqsha chaos report — seed {report['seed']}: " + ("PASSED" if report.get("passed") else "FAILED"),
        f"  commands {report.get('commands')} (+{report.get('confirmations')} confirmations), "
        f"faults {report.get('faults')} {report.get('fault_kinds')}",
        f"  duplicates {report.get('duplicates_produced')}, resends {report.get('resends_produced')}, "
        f"poison {report.get('poison_messages')}, forged {report.get('forged_records')}, "
        f"codes left to expire {report.get('codes_left_to_expire')}",
        f"  quiet {report.get('quiet_seconds')}s after the workload; run took {report.get('seconds')}s",
        "  invariants:",
    ]
    invariants = report.get("invariants") or {}
    assert isinstance(invariants, dict)
    for name, ok in invariants.items():
        lines.append(f"    {'✔' if ok else '✘'} {name}")
    violations = report.get("violations") or {}
    assert isinstance(violations, dict)
    for name, items in violations.items():
        lines.append(f"  ✘ {name}:")
        lines += [f"      {item}" for item in items[:10]]
    if report.get("faults_failed"):
        lines.append(f"  ✘ faults that could not be executed: {report['faults_failed']}")
    lines.append(f"  replay: make chaos SEED={report['seed']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run, print, exit 0 iff passed."""
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--seed", type=int, default=int(os.environ.get("SEED") or DEFAULT_SEED))
    parser.add_argument("--commands", type=int, help="commands to send (full: 2000, quick: 200)")
    parser.add_argument("--faults", type=int, help="faults to inject (full: 32, quick: 8)")
    parser.add_argument("--quick", action="store_true", help="the short run of make test")
    parser.add_argument("--report", type=Path, default=DEFAULT_REPORT, help="where to write the JSON report")
    parser.add_argument("--run-dir", type=Path, help="run directory (logs, clock); default .run/chaos")
    parser.add_argument(
        "--mutation", choices=("inbox", "idempotency", "verification"), help="turn a test-only switch on"
    )
    parser.add_argument(
        "--fault-kind",
        action="append",
        choices=FAULT_KINDS,
        help="inject only faults of this kind (repeatable; diagnosis and focused runs)",
    )
    parser.add_argument(
        "--service-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for every service (diagnosis, e.g. AQSHA_KAFKA_MAX_HANDLER_ATTEMPTS=12)",
    )
    parser.add_argument("--dup-rate", type=float, default=0.15)
    parser.add_argument("--resend-rate", type=float, default=0.05)
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    cfg = Config(
        seed=args.seed,
        commands=args.commands or sizes["commands"],
        faults=args.faults if args.faults is not None else sizes["faults"],
        dup_rate=args.dup_rate,
        resend_rate=args.resend_rate,
        report_path=args.report,
        mutation=args.mutation,
        fault_kinds=tuple(args.fault_kind) if args.fault_kind else None,
        extra_env=dict(item.split("=", 1) for item in args.service_env),
    )
    if args.run_dir is not None:
        cfg.run_dir = args.run_dir
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # reconnect noise during broker restarts
    report = asyncio.run(run_chaos(cfg))
    print(render(report), flush=True)
    return 0 if report.get("passed") else 1


if __name__ == "__main__":
    raise SystemExit(main())
