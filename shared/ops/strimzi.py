"""Render the topic registry as Strimzi ``KafkaTopic`` manifests (``deploy/k8s/topics.yaml``).

``python -m shared.ops.strimzi`` writes the file; ``--check`` exits 1 when the committed file drifts
from ``shared/topics.py`` (a unit test does the same). Every registry topic and its dead-letter twin
becomes one ``KafkaTopic`` with the registry's partitions and retention. Replication is not in the
registry (it is a property of the cluster, not of the topic's meaning): production runs three
replicas with ``min.insync.replicas=2``, so ``acks=all`` survives the loss of one broker.

The YAML is written by hand, not with PyYAML, so this module needs nothing beyond the standard
library and the registry (PyYAML is a development dependency only).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Final

from shared.topics import TopicSpec, all_topics

OUTPUT: Final = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "topics.yaml"
API_VERSION: Final = "kafka.strimzi.io/v1beta2"
NAMESPACE: Final = "aqsha"
#: The Strimzi ``Kafka`` resource these topics belong to (label ``strimzi.io/cluster``).
CLUSTER: Final = "aqsha"
REPLICAS: Final = 3
MIN_INSYNC_REPLICAS: Final = 2
CLEANUP_POLICY: Final = "delete"


def topic_config(spec: TopicSpec) -> dict[str, str | int]:
    """The Kafka topic config of ``spec`` (``retention.ms`` -1 is Kafka's "keep forever")."""
    return {
        "cleanup.policy": CLEANUP_POLICY,
        "retention.ms": spec.retention_ms,
        "min.insync.replicas": MIN_INSYNC_REPLICAS,
    }


def manifest(spec: TopicSpec) -> dict[str, object]:
    """One ``KafkaTopic`` resource as a plain mapping (what the YAML parses back to)."""
    return {
        "apiVersion": API_VERSION,
        "kind": "KafkaTopic",
        "metadata": {
            "name": spec.name,
            "namespace": NAMESPACE,
            "labels": {
                "strimzi.io/cluster": CLUSTER,
                "app.kubernetes.io/part-of": "aqsha",
                "aqsha.kz/dead-letter": "true" if spec.is_dlq else "false",
            },
        },
        "spec": {
            "topicName": spec.name,
            "partitions": spec.partitions,
            "replicas": REPLICAS,
            "config": topic_config(spec),
        },
    }


def _scalar(value: str | int) -> str:
    # JSON strings are valid YAML double-quoted scalars; integers are written bare.
    return str(value) if isinstance(value, int) else json.dumps(value)


def _render_one(spec: TopicSpec) -> list[str]:
    lines = [
        "---",
        f"# {' '.join(spec.description.split())}",
        f"apiVersion: {API_VERSION}",
        "kind: KafkaTopic",
        "metadata:",
        f"  name: {spec.name}",
        f"  namespace: {NAMESPACE}",
        "  labels:",
        f"    strimzi.io/cluster: {CLUSTER}",
        "    app.kubernetes.io/part-of: aqsha",
        f'    aqsha.kz/dead-letter: "{"true" if spec.is_dlq else "false"}"',
        "spec:",
        f"  topicName: {spec.name}",
        f"  partitions: {spec.partitions}",
        f"  replicas: {REPLICAS}",
        "  config:",
    ]
    lines += [f"    {key}: {_scalar(value)}" for key, value in topic_config(spec).items()]
    return lines


def render() -> str:
    """The whole ``deploy/k8s/topics.yaml``."""
    lines = [
        "# GENERATED from shared/topics.py by `python -m shared.ops.strimzi`; do not edit by hand.",
        "# A unit test (tests/unit/test_deploy.py) fails when this file drifts from the registry.",
    ]
    for spec in all_topics(include_dlq=True):
        lines += _render_one(spec)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write deploy/k8s/topics.yaml, or with ``--check`` exit 1 if it is stale."""
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if "--check" in args:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT} is stale: run python -m shared.ops.strimzi", file=sys.stderr)
            return 1
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
