"""``python -m tests.mutation [--jobs N] [--keep] [--report-only] [--minimum PCT]``: ``make mutation``.

Runs mutmut (configuration: ``[tool.mutmut]`` in pyproject.toml) over the pure modules with the unit
tier, then writes reports/mutation/latest.json and latest.md (per-package and per-module scores,
every surviving mutant with its line and diff). Exit code 0 iff every ``services/*/domain``
package reached the minimum score and no mutant was left unchecked.

By default every run starts from nothing (``mutants/`` removed): mutmut keeps a verdict until the
function it mutated changes, so a cached "killed" would outlive the test that killed it. ``--keep``
reuses the cache for a quicker look while writing tests; survivors are re-tested then.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

from mutmut.mutation.data import SourceFileMutationData
from mutmut.stats import status_by_exit_code
from mutmut.utils.file_utils import walk_mutatable_files

from tests.mutation.report import KILLED, REPORT_DIR, build, render_summary, write

MUTANTS = Path("mutants")
#: What mutmut's fork server imports before forking the workers ([tool.mutmut] preload_modules_file):
#: the fixed list beside this file plus every test module the run selects, made fresh for each run.
PRELOAD = REPORT_DIR / "preload.txt"
BASE_PRELOAD = Path(__file__).with_name("preload.txt")


def write_preload(pyproject: Path = Path("pyproject.toml"), out: Path = PRELOAD) -> list[str]:
    """Write the fork server's import list: the base modules and the selected test modules."""
    selection = tomllib.loads(pyproject.read_text(encoding="utf-8"))["tool"]["mutmut"][
        "pytest_add_cli_args_test_selection"
    ]
    files: list[Path] = []
    for arg in selection:
        if arg.startswith("-"):
            continue
        path = Path(arg)
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    modules = [
        ".".join(f.with_suffix("").parts)
        for f in files
        if f.name.startswith("test_") or f.name == "conftest.py"
    ]
    base = [line.strip() for line in BASE_PRELOAD.read_text(encoding="utf-8").splitlines()]
    names = [line for line in base if line and not line.startswith("#")] + modules
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(names) + "\n", encoding="utf-8")
    return names


def forget_survivors() -> int:
    """Reset the cached verdict of every mutant not killed, so that mutmut runs it again."""
    reset = 0
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        for name, exit_code in data.exit_code_by_key.items():
            if exit_code is not None and status_by_exit_code[exit_code] not in KILLED:
                data.exit_code_by_key[name] = None
                reset += 1
        data.save()
    return reset


def run_mutmut(jobs: int, log: Path) -> int:
    """``mutmut run`` with ``jobs`` workers, its (very chatty) progress output sent to ``log``."""
    mutmut = Path(sys.executable).with_name("mutmut")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w", encoding="utf-8") as out:
        done = subprocess.run(
            [str(mutmut), "run", "--max-children", str(jobs)],
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    return done.returncode


def main(argv: Sequence[str] | None = None) -> int:
    """Run mutmut, write the report, print the summary."""
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__)
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("MUTATION_JOBS") or 2))
    parser.add_argument("--keep", action="store_true", help="reuse mutants/ (survivors are re-tested)")
    parser.add_argument("--report-only", action="store_true", help="only rewrite the report from mutants/")
    parser.add_argument("--minimum", type=float, default=90.0, help="minimum score of each domain package")
    args = parser.parse_args(argv)

    seconds: float | None = None
    if not args.report_only:
        if not args.keep:
            shutil.rmtree(MUTANTS, ignore_errors=True)
        elif MUTANTS.is_dir():
            print(f"re-testing {forget_survivors()} cached survivors")
        write_preload()
        log = REPORT_DIR / "mutmut.log"
        print(f"mutmut run with {args.jobs} workers (progress: {log}) ...", flush=True)
        started = time.monotonic()
        code = run_mutmut(args.jobs, log)
        seconds = time.monotonic() - started
        if code != 0:
            tail = log.read_text(encoding="utf-8", errors="replace")[-4000:]
            print(tail, file=sys.stderr)
            print(f"mutmut failed (exit {code}); see {log}", file=sys.stderr)
            return code
    report = build(
        seconds=seconds,
        jobs=None if args.report_only else args.jobs,
        minimum=args.minimum,
        tool=f"mutmut {version('mutmut')}",
    )
    write(report)
    print(render_summary(report))
    if seconds is not None:
        print(f"  mutmut took {seconds / 60:.1f} min with {args.jobs} workers")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
