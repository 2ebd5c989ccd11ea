"""Render the topic registry as Strimzi resources (``kafka.strimzi.io/v1``, Strimzi 1.x).

``python -m shared.ops.strimzi`` writes three generated files; ``--check`` exits 1 when any of them
drifts from ``shared/topics.py`` (a unit test does the same):

* ``deploy/k8s/topics.yaml``: one ``KafkaTopic`` per registry topic and per dead-letter twin, with the
  registry's partitions, retention and ``segment.ms`` (``shared.topic_config``, the rule
  ``aqsha topics apply`` follows too). Replication is not in the registry (it is a property of the
  cluster, not of the topic's meaning): production runs three replicas with
  ``min.insync.replicas=2``, so ``acks=all`` survives the loss of one broker (``--replicas`` and
  ``--min-insync-replicas`` change it for a smaller cluster);
* ``deploy/k8s/users.yaml``: one ``KafkaUser`` (SCRAM-SHA-512, ``simple`` authorization) per registry
  principal and one for KEDA, with the ACLs of ``shared.ops.kafka_acls``;
* ``deploy/kafka/kafka-init.sh``: the same users and ACLs for the compose broker.

The YAML is written by hand, not with PyYAML, so this module needs nothing beyond the standard
library and the registry (PyYAML is a development dependency only).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from shared.ops import kafka_acls
from shared.ops.kafka_acls import Acl
from shared.topic_config import topic_config as _topic_config
from shared.topics import TopicSpec, all_topics

ROOT: Final = Path(__file__).resolve().parents[2]
OUTPUT: Final = ROOT / "deploy" / "k8s" / "topics.yaml"
USERS_OUTPUT: Final = ROOT / "deploy" / "k8s" / "users.yaml"
COMPOSE_ACLS_OUTPUT: Final = ROOT / "deploy" / "kafka" / "kafka-init.sh"
API_VERSION: Final = "kafka.strimzi.io/v1"
NAMESPACE: Final = "aqsha"
#: The Strimzi ``Kafka`` resource these topics belong to (label ``strimzi.io/cluster``).
CLUSTER: Final = "aqsha"
REPLICAS: Final = 3
MIN_INSYNC_REPLICAS: Final = 2
#: Label naming the registry principal a ``KafkaUser`` stands for.
PRINCIPAL_LABEL: Final = "aqsha.kz/principal"


def topic_config(
    spec: TopicSpec, *, replicas: int = REPLICAS, min_insync_replicas: int = MIN_INSYNC_REPLICAS
) -> dict[str, str | int]:
    """The Kafka topic config of ``spec`` on a cluster with ``replicas`` replicas (shared.topic_config)."""
    return _topic_config(spec, replication_factor=replicas, min_insync_replicas=min_insync_replicas)


def manifest(
    spec: TopicSpec, *, replicas: int = REPLICAS, min_insync_replicas: int = MIN_INSYNC_REPLICAS
) -> dict[str, object]:
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
            "replicas": replicas,
            "config": topic_config(spec, replicas=replicas, min_insync_replicas=min_insync_replicas),
        },
    }


def _acl_manifest(rule: Acl) -> dict[str, object]:
    return {
        "type": "allow",
        "resource": {"type": rule.resource, "name": rule.name, "patternType": "literal"},
        "operations": list(rule.operations),
    }


def user_manifest(name: str, principal: str | None, acls: Sequence[Acl]) -> dict[str, object]:
    """One ``KafkaUser`` (SCRAM-SHA-512, simple authorization) as a plain mapping."""
    labels = {"strimzi.io/cluster": CLUSTER, "app.kubernetes.io/part-of": "aqsha"}
    if principal is not None:
        labels[PRINCIPAL_LABEL] = principal
    return {
        "apiVersion": API_VERSION,
        "kind": "KafkaUser",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "authentication": {"type": "scram-sha-512"},
            "authorization": {"type": "simple", "acls": [_acl_manifest(rule) for rule in acls]},
        },
    }


def user_manifests() -> list[dict[str, object]]:
    """Every ``KafkaUser``, in the order of ``shared.ops.kafka_acls.users``."""
    return [user_manifest(name, principal, acls) for name, (principal, acls) in kafka_acls.users().items()]


def _scalar(value: str | int) -> str:
    # JSON strings are valid YAML double-quoted scalars; integers are written bare.
    return str(value) if isinstance(value, int) else json.dumps(value)


def _render_one(spec: TopicSpec, replicas: int, min_insync_replicas: int) -> list[str]:
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
        f"  replicas: {replicas}",
        "  config:",
    ]
    config = topic_config(spec, replicas=replicas, min_insync_replicas=min_insync_replicas)
    lines += [f"    {key}: {_scalar(value)}" for key, value in config.items()]
    return lines


HEADER: Final = (
    "# GENERATED from shared/topics.py by `python -m shared.ops.strimzi`; do not edit by hand.",
    "# A unit test (tests/unit/test_deploy.py) fails when this file drifts from the registry.",
)


def render(*, replicas: int = REPLICAS, min_insync_replicas: int = MIN_INSYNC_REPLICAS) -> str:
    """The whole ``deploy/k8s/topics.yaml``."""
    lines = list(HEADER)
    for spec in all_topics(include_dlq=True):
        lines += _render_one(spec, replicas, min_insync_replicas)
    return "\n".join(lines) + "\n"


def _render_user(name: str, principal: str | None, acls: Sequence[Acl]) -> list[str]:
    what = f"registry principal {principal}" if principal is not None else "KEDA's lag reads"
    lines = [
        "---",
        f"# {name}: {what}. Its password is in the Secret {name} (made by the User Operator).",
        f"apiVersion: {API_VERSION}",
        "kind: KafkaUser",
        "metadata:",
        f"  name: {name}",
        f"  namespace: {NAMESPACE}",
        "  labels:",
        f"    strimzi.io/cluster: {CLUSTER}",
        "    app.kubernetes.io/part-of: aqsha",
    ]
    if principal is not None:
        lines.append(f"    {PRINCIPAL_LABEL}: {principal}")
    lines += [
        "spec:",
        "  authentication:",
        "    type: scram-sha-512",
        "  authorization:",
        "    type: simple",
        "    acls:",
    ]
    for rule in acls:
        lines += [
            "      - type: allow",
            "        resource:",
            f"          type: {rule.resource}",
            f"          name: {rule.name}",
            "          patternType: literal",
            f"        operations: [{', '.join(rule.operations)}]",
        ]
    return lines


def render_users() -> str:
    """The whole ``deploy/k8s/users.yaml``."""
    lines = [
        *HEADER,
        "# Kafka users and ACLs (shared/ops/kafka_acls.py): every resource literal, no wildcard. Needs",
        "# `authorization: {type: simple}`, a SCRAM-SHA-512 listener and the User Operator on the cluster.",
    ]
    for name, (principal, acls) in kafka_acls.users().items():
        lines += _render_user(name, principal, acls)
    return "\n".join(lines) + "\n"


def outputs(*, replicas: int = REPLICAS, min_insync_replicas: int = MIN_INSYNC_REPLICAS) -> dict[Path, str]:
    """Every generated file and its text."""
    renderers: dict[Path, Callable[[], str]] = {
        OUTPUT: lambda: render(replicas=replicas, min_insync_replicas=min_insync_replicas),
        USERS_OUTPUT: render_users,
        COMPOSE_ACLS_OUTPUT: kafka_acls.render_script,
    }
    return {path: make() for path, make in renderers.items()}


def main(argv: list[str] | None = None) -> int:
    """Write the generated files, or with ``--check`` exit 1 if any is stale."""
    parser = argparse.ArgumentParser(prog="python -m shared.ops.strimzi", description=main.__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated file is stale")
    parser.add_argument("--replicas", type=int, default=REPLICAS, help="replicas of every KafkaTopic")
    parser.add_argument(
        "--min-insync-replicas", type=int, help=f"default: {MIN_INSYNC_REPLICAS}, at most --replicas"
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    min_isr = args.min_insync_replicas
    if min_isr is None:
        min_isr = min(MIN_INSYNC_REPLICAS, args.replicas)
    try:
        texts = outputs(replicas=args.replicas, min_insync_replicas=min_isr)
    except ValueError as exc:
        parser.error(str(exc))
    if args.check:
        stale = [path for path, text in texts.items() if not path.exists() or path.read_text() != text]
        for path in stale:
            print(f"{path} is stale: run python -m shared.ops.strimzi", file=sys.stderr)
        return 1 if stale else 0
    for path, text in texts.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    COMPOSE_ACLS_OUTPUT.chmod(0o755)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
