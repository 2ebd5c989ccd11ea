"""docs/cli.md and the README match the ``aqsha`` CLI's ``--help`` (a drift test).

The CLI's command tree (every command and subcommand ``aqsha --help`` and its subcommands' ``--help``
show, with their options) must equal docs/cli.md's "Command reference" table, both ways; every
``aqsha ...`` example in docs/cli.md and the README must name a real command with real options;
and the README's list of commands names every command group and command, and nothing else.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from shared.ops.cli import GLOBAL_OPTIONS, app

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
CLI_MD = ROOT / "docs" / "cli.md"
README = ROOT / "README.md"


def _options(command: Any) -> set[str]:
    out: set[str] = set()
    for param in command.params:
        if getattr(param, "param_type_name", "") != "option":
            continue
        out |= {o for o in (*param.opts, *param.secondary_opts) if o.startswith("--") and o != "--help"}
    return out


def cli_tree() -> dict[str, set[str]]:
    """``"billing run-day"`` → its long options, for every leaf command of ``aqsha``."""
    tree: dict[str, set[str]] = {}

    def walk(command: Any, path: tuple[str, ...]) -> None:
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                walk(sub, (*path, name))
        else:
            tree[" ".join(path)] = _options(command)

    walk(typer.main.get_command(app), ())
    return tree


def reference_table() -> dict[str, set[str]]:
    """docs/cli.md's "Command reference": ``| `aqsha CMD ARGS` | `--a`, `--b` |`` rows."""
    text = CLI_MD.read_text(encoding="utf-8")
    section = text.split("## Command reference", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, set[str]] = {}
    for line in section.splitlines():
        found = re.match(r"^\|\s*`aqsha ([a-z][a-z -]*?)(?: [A-Z\[][^`]*)?`\s*\|(.*)\|\s*$", line)
        if found:
            rows[found.group(1).strip()] = set(re.findall(r"`(--[a-z][a-z-]*)`", found.group(2)))
    return rows


def test_every_command_and_option_is_in_the_reference_and_nothing_else() -> None:
    tree = cli_tree()
    documented = reference_table()
    assert sorted(tree) == sorted(documented), "docs/cli.md 'Command reference' lists other commands"
    for command, options in tree.items():
        assert options == documented[command], (command, sorted(options ^ documented[command]))
    top = CliRunner().invoke(app, ["--help"]).stdout
    for option in GLOBAL_OPTIONS:  # the options of `aqsha` itself
        assert option in top
        assert f"`{option}" in CLI_MD.read_text(encoding="utf-8"), option


def _examples(path: Path) -> list[str]:
    """Every ``aqsha ...`` command line in a Markdown file: code blocks and inline code."""
    text = path.read_text(encoding="utf-8")
    lines: list[str] = []
    language: str | None = None  # inside a fenced block: its language
    for raw in text.splitlines():
        if raw.startswith("```"):
            language = None if language is not None else raw[3:].strip()
            continue
        if language in ("bash", "sh", "console", ""):
            line = raw.split("#", 1)[0].strip().removeprefix("$ ")
            if line.startswith("aqsha ") or " aqsha " in line:
                lines.append(line[line.index("aqsha ") :])
        elif language is None:
            lines += [m for m in re.findall(r"`([^`]+)`", raw) if m.startswith("aqsha ")]
    return lines


@pytest.mark.parametrize("doc", [CLI_MD, README], ids=lambda p: p.name)
def test_every_example_names_a_real_command_and_real_options(doc: Path) -> None:
    tree = cli_tree()
    groups = {path.split()[0] for path in tree if " " in path}
    checked = 0
    for example in _examples(doc):
        words = [w for w in re.split(r"[\s|]+", example.removeprefix("aqsha ").strip()) if w]
        globals_ = [w for w in words if w.split("=", 1)[0] in GLOBAL_OPTIONS]
        words = [w for w in words if w not in globals_]
        if not words or words[0].startswith("-") or words[0].isupper():
            continue  # `aqsha --help`, `aqsha COMMAND --help`: no command named
        path = words[0]
        if path in groups:
            if len(words) < 2 or f"{path} {words[1]}" not in tree:
                continue  # "aqsha dlq" as a group, or `dlq list|show|redrive` prose
            path = f"{path} {words[1]}"
        assert path in tree, (doc.name, example)
        for word in words:
            option = word.split("=", 1)[0]
            if option.startswith("--"):
                assert option in tree[path] | set(GLOBAL_OPTIONS), (doc.name, example, option)
        checked += 1
    assert checked >= (20 if doc == CLI_MD else 1), checked


def test_the_readme_lists_every_command() -> None:
    text = README.read_text(encoding="utf-8")
    bullet = text.split("**`aqsha` CLI**", 1)[1].split("\n- ", 1)[0]
    listed: set[str] = set()
    for item in re.findall(r"`([a-z][a-z |-]*)`", bullet):
        head, *rest = item.split(" ", 1)
        if rest:
            listed |= {f"{head} {sub}" for sub in rest[0].split("|")}
        else:
            listed.add(head)
    assert listed == set(cli_tree()), sorted(listed ^ set(cli_tree()))
