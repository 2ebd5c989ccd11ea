"""Kafka users and their ACLs, derived from the topic registry (least privilege, docs/deploy.md).

One Kafka user per principal of ``shared.topics`` and one for KEDA's lag reads. What each may do
follows from the registry alone:

* a **service** (``SERVICE_PRINCIPALS``) writes the topics it produces and the dead-letter topics of
  what it consumes, reads the topics it consumes, and reads its consumer group ``aqsha-<service>``;
* an **external system** (onboarding, app gateway, cash network, Red origination) writes exactly the
  topics that list it as a producer;
* the **operators** (principal ``ops``, user ``aqsha-operators``: the ``aqsha`` CLI and the scheduler)
  write the topics they produce (billing commands, payments commands: the registry lets them write
  only ``RunBusinessDay`` and ``LookupDebt``), read every ``.dlq`` topic and write every consumed
  topic (``aqsha dlq redrive`` sends a dead letter back where it came from), read the replies to
  their commands (``aqsha payments lookup`` waits on ``aqsha.payments.events``), read the redrive
  group and describe the services' groups (``aqsha lag``); they never read a service's group, so
  they cannot move its offsets;
* **KEDA** (``aqsha-keda``) describes the services' groups and the topics they consume: enough to
  compute lag, nothing to read or write.

Every resource is a literal name: no wildcard, no prefix. Reading or writing implies describing in
Kafka; ``Describe`` is listed anyway so the rules read the same in every tool. The idempotent producer
needs nothing more (``Write`` on a topic suffices since Kafka 2.8).

``shared.ops.strimzi`` turns these rules into Strimzi ``KafkaUser`` resources (``deploy/k8s/users.yaml``)
and :func:`render_script` into ``deploy/kafka/kafka-init.sh``, the compose one-shot that creates the
SCRAM users and the same ACLs with ``kafka-configs`` and ``kafka-acls``. Standard library and the
registry only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from shared.topics import (
    BILLING_DAYS,
    EXTERNAL_PRINCIPALS,
    PAYMENTS_EVENTS,
    PRINCIPALS,
    SERVICE_PRINCIPALS,
    TOPICS,
    dlq_name,
)

#: The operators' principal in the registry, and their Kafka user.
OPS_PRINCIPAL: Final = "ops"
OPERATORS_USER: Final = "aqsha-operators"
#: KEDA's Kafka user (lag reads only); not a registry principal: it signs nothing.
KEDA_USER: Final = "aqsha-keda"
#: Consumer group of ``aqsha dlq`` (``shared.ops.kafka_tools.REDRIVE_GROUP``; a unit test checks).
REDRIVE_GROUP: Final = "aqsha-ops-redrive"
#: Topics the operators read replies on, without a group: ``aqsha payments lookup`` (DebtLookedUp) and
#: ``aqsha billing run-day --wait`` (BusinessDayClosed).
OPS_REPLY_TOPICS: Final = (PAYMENTS_EVENTS.name, BILLING_DAYS.name)

WRITE: Final = ("Describe", "Write")
READ: Final = ("Describe", "Read")
DESCRIBE: Final = ("Describe",)
GROUP_READ: Final = ("Read",)

ResourceType = Literal["topic", "group"]


@dataclass(frozen=True, slots=True)
class Acl:
    """Allow ``operations`` on one literally named topic or consumer group."""

    resource: ResourceType
    name: str
    operations: tuple[str, ...]


def kafka_user(principal: str) -> str:
    """The Kafka user (SASL username, ``KafkaUser`` name) of a registry principal."""
    if principal not in PRINCIPALS:
        raise ValueError(f"unknown principal {principal!r}; known: {', '.join(PRINCIPALS)}")
    return OPERATORS_USER if principal == OPS_PRINCIPAL else f"aqsha-{principal}"


def consumer_group(service: str) -> str:
    """The consumer group of a service (its settings' default: ``aqsha-<service>``)."""
    if service not in SERVICE_PRINCIPALS:
        raise ValueError(f"{service!r} is not a service")
    return f"aqsha-{service}"


def _merge(rules: list[Acl]) -> list[Acl]:
    """One rule per resource, its operations merged and sorted; resources in first-seen order."""
    merged: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        merged.setdefault((rule.resource, rule.name), set()).update(rule.operations)
    out: list[Acl] = []
    for (resource, name), operations in merged.items():
        kind: ResourceType = "topic" if resource == "topic" else "group"
        out.append(Acl(kind, name, tuple(sorted(operations))))
    return out


def _produced(principal: str) -> list[Acl]:
    return [Acl("topic", spec.name, WRITE) for spec in TOPICS if principal in spec.producers]


def service_acls(service: str) -> list[Acl]:
    """A service: write what it produces and its dead letters, read what it consumes and its group."""
    consumed = [spec for spec in TOPICS if service in spec.consumers]
    rules = _produced(service)
    rules += [Acl("topic", spec.name, READ) for spec in consumed]
    rules += [Acl("topic", dlq_name(spec.name), WRITE) for spec in consumed]
    if consumed:
        rules.append(Acl("group", consumer_group(service), GROUP_READ))
    return _merge(rules)


def operator_acls() -> list[Acl]:
    """The operators: their commands and replies, dead-letter reads and redrives, lag of every group."""
    rules = _produced(OPS_PRINCIPAL)
    rules += [Acl("topic", dlq_name(spec.name), READ) for spec in TOPICS]
    # redrive: back to the original topic (only topics with consumers ever have dead letters)
    rules += [Acl("topic", spec.name, WRITE) for spec in TOPICS if spec.consumers]
    rules += [Acl("topic", name, READ) for name in OPS_REPLY_TOPICS]
    rules.append(Acl("group", REDRIVE_GROUP, GROUP_READ))
    rules += [Acl("group", consumer_group(s), DESCRIBE) for s in SERVICE_PRINCIPALS if _consumes(s)]
    return _merge(rules)


def keda_acls() -> list[Acl]:
    """KEDA: describe each service's group and the topics it consumes (committed and end offsets)."""
    rules: list[Acl] = []
    for service in SERVICE_PRINCIPALS:
        if _consumes(service):
            rules.append(Acl("group", consumer_group(service), DESCRIBE))
            rules += [Acl("topic", spec.name, DESCRIBE) for spec in TOPICS if service in spec.consumers]
    return _merge(rules)


def _consumes(service: str) -> bool:
    return any(service in spec.consumers for spec in TOPICS)


def acls_for(principal: str) -> list[Acl]:
    """The ACLs of a registry principal."""
    if principal in SERVICE_PRINCIPALS:
        return service_acls(principal)
    if principal == OPS_PRINCIPAL:
        return operator_acls()
    if principal in EXTERNAL_PRINCIPALS:
        return _merge(_produced(principal))
    raise ValueError(f"unknown principal {principal!r}")


def users() -> dict[str, tuple[str | None, list[Acl]]]:
    """Every Kafka user: name → (registry principal or None for KEDA, its ACLs), registry order."""
    out: dict[str, tuple[str | None, list[Acl]]] = {kafka_user(p): (p, acls_for(p)) for p in PRINCIPALS}
    out[KEDA_USER] = (None, keda_acls())
    return out


# -- compose: deploy/kafka/kafka-init.sh -------------------------------------------------------------

#: Users compose creates (SCRAM-SHA-512): the services and the operators. The external systems and
#: KEDA do not run in compose.
COMPOSE_PRINCIPALS: Final = (*SERVICE_PRINCIPALS, OPS_PRINCIPAL)


def password_variable(principal: str) -> str:
    """The environment variable holding a compose user's password (``AQSHA_KAFKA_PASSWORD_<NAME>``)."""
    return "AQSHA_KAFKA_PASSWORD_" + kafka_user(principal).removeprefix("aqsha-").upper().replace("-", "_")


def render_script() -> str:
    """``deploy/kafka/kafka-init.sh``: SCRAM users and their ACLs on the compose broker (idempotent)."""
    lines = [
        "#!/usr/bin/env bash",
        "# GENERATED from shared/topics.py by `python -m shared.ops.strimzi`; do not edit by hand.",
        "# A unit test (tests/unit/test_deploy.py) fails when this file drifts from the registry.",
        "#",
        "# The compose one-shot `kafka-init` (deploy/compose.yaml) runs it in the apache/kafka image as the",
        "# broker's super user (deploy/kafka/admin.properties): one SCRAM-SHA-512 user per service and for",
        "# the operators, each with exactly the ACLs of shared/ops/kafka_acls.py (the same rules as the",
        "# Strimzi KafkaUsers of deploy/k8s/users.yaml). Re-running it changes nothing.",
        "set -euo pipefail",
        "",
        'BOOTSTRAP="${KAFKA_BOOTSTRAP:-kafka:9092}"',
        'ADMIN_CONFIG="${KAFKA_ADMIN_CONFIG:-/opt/aqsha/admin.properties}"',
        "BIN=/opt/kafka/bin",
        "",
        "user() {  # user NAME PASSWORD: create or update the SCRAM-SHA-512 credential",
        '  "$BIN/kafka-configs.sh" --bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN_CONFIG" \\',
        '    --alter --entity-type users --entity-name "$1" --add-config "SCRAM-SHA-512=[password=$2]"',
        "}",
        "",
        'allow() {  # allow NAME "OPERATION..." --topic|--group NAME...: one call, one JVM',
        '  local name="$1" ops=()',
        '  for op in $2; do ops+=(--operation "$op"); done',
        "  shift 2",
        '  "$BIN/kafka-acls.sh" --bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN_CONFIG" --add \\',
        '    --allow-principal "User:$name" --resource-pattern-type literal "${ops[@]}" "$@"',
        "}",
    ]
    lines += [
        "",
        "# admin: the broker's super user also gets a SCRAM login, for `make run`'s local tools (topics, the",
        "# demo acting as every outside system) on the SCRAM-only external listener. Development only.",
        'user admin "${AQSHA_KAFKA_PASSWORD_ADMIN:-dev-only-kafka-admin}"',
    ]
    for principal in COMPOSE_PRINCIPALS:
        name = kafka_user(principal)
        variable = password_variable(principal)
        lines += ["", f"# {principal}", f'user {name} "${{{variable}:?{variable} is not set}}"']
        by_operations: dict[tuple[str, ...], list[Acl]] = {}
        for rule in acls_for(principal):
            by_operations.setdefault(rule.operations, []).append(rule)
        for operations, rules in by_operations.items():
            lines.append(f'allow {name} "{" ".join(operations)}" \\')
            lines += [f"  --{rule.resource} {rule.name} \\" for rule in rules[:-1]]
            lines.append(f"  --{rules[-1].resource} {rules[-1].name}")
    lines += ["", 'echo "kafka-init: users and ACLs applied"']
    return "\n".join(lines) + "\n"
