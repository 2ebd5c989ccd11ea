"""Turn mutmut's results (``mutants/**.meta``) into ``reports/mutation/latest.json`` and ``latest.md``.

Run from the repository root after ``mutmut run`` (``make mutation`` does both). The score of a
module or package is the share of its mutants that the unit tests killed:

    score = (killed + timeout) / (every mutant - skipped - not checked)

A mutant no test reaches ("no tests") counts against the score like a survivor: nothing would
notice that change either. Survivors recorded as equivalent in docs/testing.md (a table row whose
first cell is the mutant's name in backticks, under "## Equivalent mutants") are marked as such, and
a second score counts them as killed; the first score never does.
"""

from __future__ import annotations

import ast
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import libcst as cst
from mutmut.mutation.data import SourceFileMutationData
from mutmut.mutation.diff_apply import get_diff_for_mutant, read_functions_from_index
from mutmut.stats import status_by_exit_code
from mutmut.utils.file_utils import walk_mutatable_files
from mutmut.utils.format_utils import orig_function_and_class_names_from_key

REPORT_DIR = Path("reports/mutation")
EQUIVALENTS_DOC = Path("docs/testing.md")
#: Statuses that count as killed: a test failed, or the mutant made the tests run past their limit.
KILLED = frozenset({"killed", "timeout", "caught by type check"})
#: Statuses left out of the score: excluded by a pragma, or never run (an interrupted run).
UNSCORED = frozenset({"skipped", "not checked"})
_EQUIVALENT_ROW = re.compile(r"^\|\s*`([^`]+__mutmut_\d+)`\s*\|\s*(.*?)\s*\|\s*(.*?)\s*\|\s*$")
_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+\d+(?:,\d+)? @@")


@dataclass
class Tally:
    """Mutant counts by status for one module or package."""

    statuses: Counter[str] = field(default_factory=Counter)
    equivalent: int = 0

    def add(self, status: str, *, equivalent: bool) -> None:
        self.statuses[status] += 1
        if equivalent and status not in KILLED:
            self.equivalent += 1

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    @property
    def scored(self) -> int:
        return self.total - sum(self.statuses[s] for s in UNSCORED)

    @property
    def killed(self) -> int:
        return sum(self.statuses[s] for s in KILLED)

    def score(self, *, count_equivalent: bool = False) -> float | None:
        """Percent killed (of the scored mutants), or ``None`` when there is none."""
        if not self.scored:
            return None
        killed = self.killed + (self.equivalent if count_equivalent else 0)
        return round(100 * killed / self.scored, 2)

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "killed": self.statuses["killed"],
            "timeout": self.statuses["timeout"],
            "survived": self.statuses["survived"],
            "no_tests": self.statuses["no tests"],
            "other": {
                s: n for s, n in sorted(self.statuses.items()) if s not in {*KILLED, "survived", "no tests"}
            },
            "equivalent": self.equivalent,
            "score": self.score(),
            "score_with_equivalents": self.score(count_equivalent=True),
        }


def module_of(path: Path) -> str:
    """``services/billing/domain/bills.py`` → ``services.billing.domain.bills`` (``__init__`` dropped)."""
    parts = list(path.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_of(path: Path) -> str:
    """The package a module is scored under: ``services.<name>.domain``, ``shared.contracts``, ``shared``."""
    parts = path.parts
    if parts[0] == "services":
        return ".".join(parts[:3])
    if len(parts) > 2:
        return ".".join(parts[:2])
    return parts[0]


def is_domain_package(package: str) -> bool:
    """True for ``services.<name>.domain``: the packages held to the minimum score."""
    return package.startswith("services.") and package.endswith(".domain")


def read_equivalents(doc: Path = EQUIVALENTS_DOC) -> dict[str, str]:
    """Mutant name → why it is equivalent, from the table under "## Equivalent mutants" in ``doc``."""
    if not doc.is_file():
        return {}
    found: dict[str, str] = {}
    inside = False
    for line in doc.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            inside = line.strip().lower() == "## equivalent mutants"
            continue
        match = _EQUIVALENT_ROW.match(line) if inside else None
        if match:
            found[match.group(1)] = match.group(3)
    return found


def _function_start(source: str, mutant_name: str) -> int | None:
    """First line (decorators included) of the mutated function or method in the original source."""
    name, class_name = orig_function_and_class_names_from_key(mutant_name)
    body: Iterable[ast.stmt] = ast.parse(source).body
    if class_name is not None:
        owner = next((n for n in body if isinstance(n, ast.ClassDef) and n.name == class_name), None)
        body = owner.body if owner is not None else []
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            return min([node.lineno, *(d.lineno for d in node.decorator_list)])
    return None


def mutated_line(path: Path, mutant_name: str, diff: str) -> int | None:
    """The line of ``path`` the mutant changes (its first removed line), or ``None`` if unknown."""
    old_line: int | None = None
    for line in diff.splitlines():
        hunk = _HUNK.match(line)
        if hunk:
            old_line = int(hunk.group(1))
            continue
        if old_line is None or line.startswith(("---", "+++")):
            continue
        if line.startswith("-"):
            break
        if not line.startswith("+"):
            old_line += 1
    else:
        return None
    start = _function_start(path.read_text(encoding="utf-8"), mutant_name)
    functions = read_functions_from_index(mutant_name, path)
    if old_line is None or start is None or functions is None:
        return None
    # The diff's code may begin with comment lines above the function; the function proper starts
    # at its first decorator or ``def``.
    code = cst.Module([functions[0]]).code.strip().splitlines()
    head = next(
        (i for i, text in enumerate(code) if text.lstrip().startswith(("@", "def ", "async def "))), 0
    )
    return start - head + old_line - 1


def collect(
    equivalents: Mapping[str, str],
) -> tuple[dict[str, Tally], dict[str, Tally], list[dict[str, Any]]]:
    """Tallies per package and per module, and every mutant not killed (with its diff)."""
    packages: dict[str, Tally] = {}
    modules: dict[str, Tally] = {}
    survivors: list[dict[str, Any]] = []
    for path in sorted(walk_mutatable_files()):
        data = SourceFileMutationData(path=path)
        data.load()
        module, package = module_of(path), package_of(path)
        for name, exit_code in sorted(data.exit_code_by_key.items(), key=lambda kv: _natural(kv[0])):
            status = status_by_exit_code[exit_code]
            equivalent = name in equivalents
            modules.setdefault(module, Tally()).add(status, equivalent=equivalent)
            packages.setdefault(package, Tally()).add(status, equivalent=equivalent)
            if status in KILLED or status in UNSCORED:
                continue
            diff = get_diff_for_mutant(name, path=path)
            survivors.append(
                {
                    "mutant": name,
                    "status": status,
                    "package": package,
                    "module": module,
                    "file": str(path),
                    "line": mutated_line(path, name, diff),
                    "function": ".".join(
                        reversed([n for n in orig_function_and_class_names_from_key(name) if n])
                    ),
                    "equivalent": equivalents.get(name),
                    "diff": diff,
                }
            )
    return packages, modules, survivors


def _natural(name: str) -> tuple[str, int]:
    base, _, number = name.rpartition("__mutmut_")
    return base, int(number) if number.isdigit() else 0


def build(
    *, seconds: float | None = None, jobs: int | None = None, minimum: float = 90.0, tool: str = "mutmut"
) -> dict[str, Any]:
    """The whole report as a JSON-ready dict."""
    equivalents = read_equivalents()
    packages, modules, survivors = collect(equivalents)
    failing = [
        name
        for name, tally in packages.items()
        if is_domain_package(name) and (tally.score() or 0.0) < minimum
    ]
    not_checked = sum(t.statuses["not checked"] for t in packages.values())
    return {
        "tool": tool,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": None if seconds is None else round(seconds, 1),
        "jobs": jobs,
        "minimum_domain_score": minimum,
        "passed": not failing and not not_checked,
        "below_minimum": failing,
        "not_checked": not_checked,
        "packages": {name: t.as_dict() for name, t in sorted(packages.items())},
        "modules": {name: t.as_dict() for name, t in sorted(modules.items())},
        "unexplained_survivors": sum(1 for s in survivors if not s["equivalent"]),
        "survivors": survivors,
        "stale_equivalents": sorted(set(equivalents) - {s["mutant"] for s in survivors}),
    }


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} %"


def _table(rows: Mapping[str, Mapping[str, Any]], heading: str) -> list[str]:
    lines = [
        f"| {heading} | mutants | killed | timeout | survived | no tests | equivalent | score "
        "| with equivalents |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, t in rows.items():
        lines.append(
            f"| `{name}` | {t['total']} | {t['killed']} | {t['timeout']} | {t['survived']} | {t['no_tests']} "
            f"| {t['equivalent']} | {_pct(t['score'])} | {_pct(t['score_with_equivalents'])} |"
        )
    return lines


def render_markdown(report: Mapping[str, Any]) -> str:
    """The human-readable report: scores per package and module, then every survivor with its diff."""
    verdict = "PASSED" if report["passed"] else "FAILED"
    lines = [
        f"# Mutation report — {verdict}",
        "",
        f"{report['tool']}, {report['generated_at']}"
        + (f", {report['seconds']} s" if report["seconds"] is not None else "")
        + (f", {report['jobs']} workers" if report["jobs"] else "")
        + f". Minimum per domain package: {report['minimum_domain_score']} %.",
        "",
        "Score = (killed + timeout) / (mutants − skipped − not checked); "
        "see docs/testing.md for how to read it.",
        "",
    ]
    if report["below_minimum"]:
        lines += [f"**Below the minimum:** {', '.join(report['below_minimum'])}", ""]
    if report["not_checked"]:
        lines += [f"**{report['not_checked']} mutants were not checked** (an interrupted run?).", ""]
    lines += ["## Per package", "", *_table(report["packages"], "package"), ""]
    lines += ["## Per module", "", *_table(report["modules"], "module"), ""]
    survivors = report["survivors"]
    lines += [
        f"## Surviving mutants ({len(survivors)}, "
        f"{report['unexplained_survivors']} not recorded as equivalent)",
        "",
    ]
    for s in survivors:
        where = f"{s['file']}:{s['line']}" if s["line"] else s["file"]
        note = f" — equivalent: {s['equivalent']}" if s["equivalent"] else ""
        lines += [f"### `{s['mutant']}` ({s['status']}) {where} in `{s['function']}`{note}", ""]
        lines += ["```diff", s["diff"], "```", ""]
    if report["stale_equivalents"]:
        lines += ["## Equivalents recorded in docs/testing.md that no longer survive", ""]
        lines += [f"- `{name}`" for name in report["stale_equivalents"]] + [""]
    return "\n".join(lines)


def render_summary(report: Mapping[str, Any]) -> str:
    """A few lines for the terminal."""
    lines = ["", f"mutation score per package ({'PASSED' if report['passed'] else 'FAILED'}):"]
    for name, t in report["packages"].items():
        mark = "✘" if name in report["below_minimum"] else " "
        lines.append(
            f" {mark} {name:<26} {_pct(t['score']):>8}  ({t['killed'] + t['timeout']}/{t['total']} killed, "
            f"{t['survived']} survived, {t['no_tests']} no tests, {t['equivalent']} equivalent)"
        )
    lines.append(
        f"  {len(report['survivors'])} surviving mutants, {report['unexplained_survivors']} not recorded "
        f"as equivalent; details: {REPORT_DIR / 'latest.md'}"
    )
    return "\n".join(lines)


def write(report: Mapping[str, Any], directory: Path = REPORT_DIR) -> None:
    """``latest.json`` and ``latest.md`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "latest.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", "utf-8")
    (directory / "latest.md").write_text(render_markdown(report), "utf-8")
