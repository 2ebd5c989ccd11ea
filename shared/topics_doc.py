"""Render the topic registry as Markdown (``docs/topics.md``); ``--check`` fails on drift."""

from __future__ import annotations

import sys
from pathlib import Path

from shared.topics import DAY_MS, FOREVER, MINUTE_MS, TOPICS, dlq_name

DOC = Path(__file__).resolve().parents[1] / "docs" / "topics.md"


def _retention(ms: int) -> str:
    if ms == FOREVER:
        return "forever"
    if ms % DAY_MS == 0:
        return f"{ms // DAY_MS} d"
    return f"{ms // MINUTE_MS} min"


def render() -> str:
    """The whole document."""
    lines = [
        "# Topics",
        "",
        "Generated from `shared/topics.py` by `python -m shared.topics_doc`; a test fails when it drifts.",
        "",
        "Every record's value is the JSON envelope (`docs/contracts/envelope.json`) around one contract",
        "(`docs/contracts/<Type>.v<N>.json`). Records are keyed by customer id, so one customer's messages",
        "are ordered on one partition. Delivery is at least once; consumers de-duplicate by `event_id`",
        "(inbox) and commands by `request_id` (idempotency). Each topic has a dead-letter twin",
        "`<topic>.dlq` (30 d) holding the original key, headers and bytes plus `aqsha-dlq-*` headers.",
        "",
        "| topic | partitions | key | retention | producers | consumers | contracts |",
        "|---|---|---|---|---|---|---|",
    ]
    for spec in TOPICS:
        key = spec.key.split(":")[0]
        lines.append(
            f"| `{spec.name}` | {spec.partitions} | {key} | {_retention(spec.retention_ms)} | "
            f"{', '.join(spec.producers)} | {', '.join(spec.consumers)} | {', '.join(spec.contracts)} |"
        )
    lines += ["", "Dead-letter topics: " + ", ".join(f"`{dlq_name(s.name)}`" for s in TOPICS) + ".", ""]
    for spec in TOPICS:
        lines += [f"### `{spec.name}`", "", spec.description, ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Write docs/topics.md, or with ``--check`` exit 1 if it is stale."""
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if "--check" in args:
        if not DOC.exists() or DOC.read_text() != text:
            print(f"{DOC} is stale: run python -m shared.topics_doc", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
