"""Export every contract's JSON Schema to ``docs/contracts/`` and guard it against drift and breaks.

``python -m shared.contracts.export`` writes ``<Type>.v<VERSION>.json`` per contract plus
``envelope.json`` (sorted keys, indent 2, trailing newline). It refuses to overwrite a committed
schema with a backward-incompatible one (see ``compat``) unless ``--allow-breaking`` is given: bump
``VERSION`` instead. ``--check`` writes nothing and exits 1 when the committed files are stale.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path
from typing import Any

from shared.contracts.base import Contract
from shared.contracts.compat import breaking_changes
from shared.contracts.envelope import Envelope, RawEnvelope
from shared.contracts.registry import all_contracts

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "docs" / "contracts"
ENVELOPE_FILE = "envelope.json"
HEADERS_FILE = "record-headers.json"
_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_filename(model: type[Contract]) -> str:
    """File name of a contract's schema: ``<TYPE>.v<VERSION>.json``."""
    return f"{model.TYPE}.v{model.VERSION}.json"


def contract_schema(model: type[Contract]) -> dict[str, Any]:
    """The JSON Schema of one contract, with its type, version and kind as ``x-aqsha-*`` keys."""
    schema = model.model_json_schema(mode="validation")
    schema["title"] = model.TYPE
    schema["$schema"] = _DIALECT
    schema["$id"] = schema_filename(model)
    schema["x-aqsha-type"] = model.TYPE
    schema["x-aqsha-version"] = model.VERSION
    schema["x-aqsha-kind"] = model.KIND
    return schema


def envelope_schema() -> dict[str, Any]:
    """The JSON Schema of the envelope (the payload is any contract, validated by its own schema)."""
    schema = RawEnvelope.model_json_schema(mode="validation")
    schema["title"] = "Envelope"
    schema["description"] = (Envelope.__doc__ or "").strip()
    schema["$schema"] = _DIALECT
    schema["$id"] = ENVELOPE_FILE
    return schema


def headers_schema() -> dict[str, Any]:
    """The JSON Schema of every record's Kafka headers: the producer's signature (docs/security.md)."""
    from shared.trust import RECORD_HEADERS_SCHEMA

    return {**RECORD_HEADERS_SCHEMA, "title": "RecordHeaders", "$schema": _DIALECT, "$id": HEADERS_FILE}


def render(schema: dict[str, Any]) -> str:
    """Canonical file text: sorted keys, indent 2, UTF-8 characters kept, trailing newline."""
    return json.dumps(schema, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def generate() -> dict[str, str]:
    """File name → rendered text, for the envelope and every registered contract."""
    files = {ENVELOPE_FILE: render(envelope_schema()), HEADERS_FILE: render(headers_schema())}
    for model in all_contracts():
        files[schema_filename(model)] = render(contract_schema(model))
    return files


def _committed(directory: Path) -> dict[str, str]:
    if not directory.is_dir():
        return {}
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(directory.glob("*.json"))}


def compare(directory: Path = DEFAULT_DIR) -> tuple[list[str], list[str]]:
    """(drift, breaks): how committed files differ from generated ones, and which changes break."""
    generated, committed = generate(), _committed(directory)
    drift: list[str] = []
    breaks: list[str] = []
    for name in sorted(generated.keys() | committed.keys()):
        new, old = generated.get(name), committed.get(name)
        if old is None:
            drift.append(f"{name}: missing (new contract, run `python -m shared.contracts.export`)")
        elif new is None:
            drift.append(f"{name}: committed but no such contract exists any more")
            breaks.append(f"{name}: contract removed")
        elif old != new:
            diff = difflib.unified_diff(
                old.splitlines(), new.splitlines(), f"committed/{name}", f"generated/{name}", lineterm="", n=1
            )
            lines = list(diff)
            shown = "\n    ".join(lines[:40]) + ("\n    ..." if len(lines) > 40 else "")
            drift.append(f"{name}: stale\n    {shown}")
            breaks.extend(f"{name}: {p}" for p in breaking_changes(json.loads(old), json.loads(new)))
    return drift, breaks


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m shared.contracts.export", description=__doc__)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if files are stale")
    parser.add_argument("--allow-breaking", action="store_true", help="overwrite even incompatible schemas")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="output directory (docs/contracts)")
    args = parser.parse_args(argv)
    directory: Path = args.dir
    drift, breaks = compare(directory)
    if breaks:
        print("backward-incompatible changes (bump the contract's VERSION instead):", file=sys.stderr)
        for problem in breaks:
            print(f"  - {problem}", file=sys.stderr)
    if args.check:
        for item in drift:
            print(f"  ~ {item}", file=sys.stderr)
        if drift or breaks:
            print(f"{len(drift)} schema file(s) out of date in {directory}", file=sys.stderr)
            return 1
        print(f"schemas up to date: {len(generate())} files in {directory}")
        return 0
    if breaks and not args.allow_breaking:
        return 1
    directory.mkdir(parents=True, exist_ok=True)
    generated = generate()
    for name, text in generated.items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    for path in directory.glob("*.json"):
        if path.name not in generated:
            path.unlink()
    print(f"wrote {len(generated)} schema files to {directory}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
