"""deploy/: the image, the compose stack and the Kubernetes manifests, checked statically.

Core Kubernetes kinds are validated with ``kubernetes_validate`` (bundled JSON schemas, strict: an
unknown or misspelt field fails) against a pinned Kubernetes version. ``kubernetes_validate`` has no
schema for custom resources and raises ``SchemaNotFoundError`` for them (its CLI only *warns*, which
would let a broken ScaledObject through), so KEDA ``ScaledObject`` and ``TriggerAuthentication``,
Strimzi ``KafkaTopic`` and ``KafkaUser`` (``kafka.strimzi.io/v1``, Strimzi 1.x: ``v1beta2`` is no
longer served) and the ``Kustomization`` are validated against the small schemas below, written from
the fields the CRDs define. Every check is a function returning its problems, and each has a negative
test showing it rejects a broken input.
"""

from __future__ import annotations

import copy
import importlib
import json
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from services.billing import handlers as billing_handlers
from services.billing.settings import BillingSettings
from services.bonus.settings import GROUP as BONUS_GROUP
from services.notify import handlers as notify_handlers
from services.notify.settings import NotifySettings
from services.payments import handlers as payments_handlers
from services.payments.settings import PaymentsSettings
from shared.ops import kafka_acls, kafka_tools, strimzi
from shared.topic_config import topic_config
from shared.topics import (
    EXTERNAL_PRINCIPALS,
    PAYMENTS_EVENTS,
    PRINCIPALS,
    SERVICE_PRINCIPALS,
    TOPICS,
    TopicSpec,
    all_topics,
    dlq_name,
    topic_by_name,
)

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
#: The Kubernetes version the manifests target (one that kubernetes_validate 1.37 bundles).
K8S_VERSION = "1.33.0"
SERVICES = ("payments", "bonus", "billing", "notify")
HTTP_PORT = 8080
#: The Strimzi cluster's TLS listener with SCRAM-SHA-512 authentication (docs/deploy.md).
KAFKA_TLS_PORT = 9093

#: What each service's consumer group really subscribes to, from the services' own code.
SUBSCRIPTIONS: dict[str, tuple[str, set[str]]] = {
    "payments": (
        str(PaymentsSettings.model_fields["consumer_group"].default),
        set(payments_handlers.TOPICS),
    ),
    "bonus": (BONUS_GROUP, {PAYMENTS_EVENTS.name}),  # services/bonus/handlers.py subscribes to it alone
    "billing": (
        str(BillingSettings.model_fields["group"].default),
        {billing_handlers.ACCOUNTS_TOPIC, billing_handlers.PAYMENTS_TOPIC, billing_handlers.COMMANDS_TOPIC},
    ),
    "notify": (str(NotifySettings.model_fields["group"].default), set(notify_handlers.SUBSCRIPTIONS)),
}

# --------------------------------------------------------------------------------------------------
# Schemas of the custom resources (from the KEDA and Strimzi CRD documentation)
# --------------------------------------------------------------------------------------------------

_STRING_MAP: dict[str, Any] = {"type": "object", "additionalProperties": {"type": "string"}}
_METADATA: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "maxLength": 253, "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"},
        "namespace": {"type": "string", "maxLength": 63, "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
    },
}

SCALED_OBJECT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "additionalProperties": False,
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "name": {"type": "string", "minLength": 1},
                        "envSourceContainerName": {"type": "string"},
                    },
                },
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "initialCooldownPeriod": {"type": "integer", "minimum": 0},
                "idleReplicaCount": {"type": "integer", "minimum": 0},
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "fallback": {"type": "object"},
                "advanced": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "restoreToOriginalReplicaCount": {"type": "boolean"},
                        "horizontalPodAutoscalerConfig": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {"name": {"type": "string"}, "behavior": {"type": "object"}},
                        },
                        "scalingModifiers": {"type": "object"},
                    },
                },
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "metadata"],
                        "additionalProperties": False,
                        "properties": {
                            "type": {"type": "string", "minLength": 1},
                            "name": {"type": "string"},
                            "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                            "useCachedMetrics": {"type": "boolean"},
                            "authenticationRef": {"type": "object", "required": ["name"]},
                            # KEDA's trigger metadata is map[string]string: numbers must be quoted.
                            "metadata": _STRING_MAP,
                        },
                        "if": {"properties": {"type": {"const": "kafka"}}},
                        "then": {
                            "properties": {
                                "metadata": {"required": ["bootstrapServers", "consumerGroup"]},
                            }
                        },
                    },
                },
            },
        },
    },
}

_STRIMZI_METADATA: dict[str, Any] = {
    "allOf": [
        _METADATA,
        # The Topic and User Operators only reconcile resources labelled with their Kafka cluster.
        {"required": ["labels"], "properties": {"labels": {"required": ["strimzi.io/cluster"]}}},
    ]
}

# From Strimzi 1.x's CRD (packaging/install/cluster-operator/043-Crd-kafkatopic.yaml, version v1).
KAFKA_TOPIC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "kafka.strimzi.io/v1"},
        "kind": {"const": "KafkaTopic"},
        "metadata": _STRIMZI_METADATA,
        "spec": {
            "type": "object",
            # The CRD makes both optional (cluster defaults); we always state them.
            "required": ["partitions", "replicas"],
            "additionalProperties": False,
            "properties": {
                "topicName": {"type": "string", "minLength": 1, "maxLength": 249},
                "partitions": {"type": "integer", "minimum": 1},
                "replicas": {"type": "integer", "minimum": 1, "maximum": 32767},
                "config": {
                    "type": "object",
                    "additionalProperties": {"type": ["string", "integer", "boolean"]},
                },
            },
        },
    },
}

# From Strimzi 1.x's CRD (packaging/install/cluster-operator/044-Crd-kafkauser.yaml, version v1). In
# v1 an ACL rule has only ``operations`` (v1beta2's singular ``operation`` is gone) and the only
# authorization type is ``simple``.
_ACL_RULE: dict[str, Any] = {
    "type": "object",
    "required": ["resource", "operations"],
    "additionalProperties": False,
    "properties": {
        "type": {"enum": ["allow", "deny"]},
        "resource": {
            "type": "object",
            "required": ["type"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string"},
                "patternType": {"enum": ["literal", "prefix"]},
                "type": {"enum": ["topic", "group", "cluster", "transactionalId"]},
            },
        },
        "host": {"type": "string"},
        "operations": {
            "type": "array",
            "items": {
                "enum": [
                    "Read",
                    "Write",
                    "Create",
                    "Delete",
                    "Alter",
                    "Describe",
                    "ClusterAction",
                    "AlterConfigs",
                    "DescribeConfigs",
                    "IdempotentWrite",
                    "All",
                ]
            },
        },
    },
}
_SECRET_KEY_REF: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"key": {"type": "string"}, "name": {"type": "string"}, "optional": {"type": "boolean"}},
}
KAFKA_USER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "kafka.strimzi.io/v1"},
        "kind": {"const": "KafkaUser"},
        "metadata": _STRIMZI_METADATA,
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "authentication": {
                    "type": "object",
                    "required": ["type"],
                    "additionalProperties": False,
                    "properties": {
                        "type": {"enum": ["tls", "tls-external", "scram-sha-512"]},
                        "password": {
                            "type": "object",
                            "required": ["valueFrom"],
                            "additionalProperties": False,
                            "properties": {
                                "valueFrom": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "properties": {"secretKeyRef": _SECRET_KEY_REF},
                                }
                            },
                        },
                        "validityDays": {"type": "integer", "minimum": 1},
                        "renewalDays": {"type": "integer", "minimum": 1},
                    },
                },
                "authorization": {
                    "type": "object",
                    "required": ["acls", "type"],
                    "additionalProperties": False,
                    "properties": {
                        "type": {"enum": ["simple"]},
                        "acls": {"type": "array", "items": _ACL_RULE},
                    },
                },
                "quotas": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "producerByteRate": {"type": "integer", "minimum": 0},
                        "consumerByteRate": {"type": "integer", "minimum": 0},
                        "requestPercentage": {"type": "integer", "minimum": 0},
                        "controllerMutationRate": {"type": "number", "minimum": 0},
                    },
                },
                "template": {"type": "object"},
            },
        },
    },
}

# KEDA's TriggerAuthentication (keda.sh/v1alpha1), the providers used here: Secrets and ConfigMaps.
_TARGET_REFS: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["parameter", "name", "key"],
        "additionalProperties": False,
        "properties": {
            "parameter": {"type": "string", "minLength": 1},
            "name": {"type": "string", "minLength": 1},
            "key": {"type": "string", "minLength": 1},
        },
    },
}
TRIGGER_AUTHENTICATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "TriggerAuthentication"},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "properties": {
                "secretTargetRef": _TARGET_REFS,
                "configMapTargetRef": _TARGET_REFS,
                "env": {"type": "array"},
                "podIdentity": {"type": "object"},
                "hashiCorpVault": {"type": "object"},
                "azureKeyVault": {"type": "object"},
                "awsSecretManager": {"type": "object"},
                "gcpSecretManager": {"type": "object"},
                "boundServiceAccountToken": {"type": "array"},
            },
        },
    },
}

KUSTOMIZATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "resources"],
    "properties": {
        "apiVersion": {"const": "kustomize.config.k8s.io/v1beta1"},
        "kind": {"const": "Kustomization"},
        "namespace": {"type": "string"},
        "resources": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "images": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "newName": {"type": "string"},
                    "newTag": {"type": "string"},
                    "digest": {"type": "string"},
                },
            },
        },
    },
}

# From the Prometheus Operator's CRDs (monitoring.coreos.com/v1: servicemonitors, prometheusrules).
_PROM_DURATION: dict[str, Any] = {
    "type": "string",
    "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$",
}
SERVICE_MONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "minProperties": 1,
                    "properties": {"matchLabels": _STRING_MAP, "matchExpressions": {"type": "array"}},
                },
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "any": {"type": "boolean"},
                        "matchNames": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "jobLabel": {"type": "string"},
                "targetLabels": {"type": "array", "items": {"type": "string"}},
                "podTargetLabels": {"type": "array", "items": {"type": "string"}},
                "sampleLimit": {"type": "integer", "minimum": 0},
                "targetLimit": {"type": "integer", "minimum": 0},
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string", "minLength": 1},
                            "targetPort": {"type": ["string", "integer"]},
                            "path": {"type": "string", "pattern": "^/"},
                            "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
                            "params": {"type": "object"},
                            "interval": _PROM_DURATION,
                            "scrapeTimeout": _PROM_DURATION,
                            "honorLabels": {"type": "boolean"},
                            "honorTimestamps": {"type": "boolean"},
                            "followRedirects": {"type": "boolean"},
                            "enableHttp2": {"type": "boolean"},
                            "filterRunning": {"type": "boolean"},
                            "relabelings": {"type": "array"},
                            "metricRelabelings": {"type": "array"},
                            "tlsConfig": {"type": "object"},
                            "authorization": {"type": "object"},
                            "basicAuth": {"type": "object"},
                            "oauth2": {"type": "object"},
                        },
                        "oneOf": [{"required": ["port"]}, {"required": ["targetPort"]}],
                    },
                },
            },
        },
    },
}

PROMETHEUS_RULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "required": ["groups"],
            "additionalProperties": False,
            "properties": {
                "groups": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["name", "rules"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "interval": _PROM_DURATION,
                            "query_offset": _PROM_DURATION,
                            "limit": {"type": "integer"},
                            "labels": _STRING_MAP,
                            "partial_response_strategy": {"type": "string"},
                            "rules": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["expr"],
                                    "additionalProperties": False,
                                    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
                                    "properties": {
                                        "alert": {"type": "string"},
                                        "record": {"type": "string"},
                                        "expr": {"type": ["string", "integer"]},
                                        "for": _PROM_DURATION,
                                        "keep_firing_for": _PROM_DURATION,
                                        "labels": _STRING_MAP,
                                        "annotations": _STRING_MAP,
                                    },
                                },
                            },
                        },
                    },
                }
            },
        },
    },
}

CUSTOM_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("keda.sh/v1alpha1", "ScaledObject"): SCALED_OBJECT_SCHEMA,
    ("keda.sh/v1alpha1", "TriggerAuthentication"): TRIGGER_AUTHENTICATION_SCHEMA,
    ("kafka.strimzi.io/v1", "KafkaTopic"): KAFKA_TOPIC_SCHEMA,
    ("kafka.strimzi.io/v1", "KafkaUser"): KAFKA_USER_SCHEMA,
    ("kustomize.config.k8s.io/v1beta1", "Kustomization"): KUSTOMIZATION_SCHEMA,
    ("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR_SCHEMA,
    ("monitoring.coreos.com/v1", "PrometheusRule"): PROMETHEUS_RULE_SCHEMA,
}


def validate_manifest(doc: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` if ``doc`` is invalid; ``SchemaNotFoundError`` if unknown."""
    schema = CUSTOM_SCHEMAS.get((doc.get("apiVersion", ""), doc.get("kind", "")))
    if schema is not None:
        jsonschema.Draft202012Validator.check_schema(schema)
        jsonschema.Draft202012Validator(schema).validate(doc)
    else:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


def load_docs(path: Path) -> list[dict[str, Any]]:
    """Every non-empty YAML document of ``path``."""
    return load_docs_text(path.read_text())


def load_docs_text(text: str) -> list[dict[str, Any]]:
    """Every non-empty YAML document of ``text``."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


MANIFEST_FILES = sorted(K8S.glob("*.yaml"))
ALL_DOCS = [(path.name, doc) for path in MANIFEST_FILES for doc in load_docs(path)]


def find(kind: str, name: str | None = None) -> list[dict[str, Any]]:
    """Manifests of ``kind`` (and ``name``) in deploy/k8s."""
    return [d for _, d in ALL_DOCS if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(kind: str, name: str) -> dict[str, Any]:
    """The single manifest of ``kind`` named ``name``."""
    found = find(kind, name)
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def factory_problems(module_attr: str) -> list[str]:
    """Problems of a ``module:function`` factory reference (it must import and be callable)."""
    module_name, _, attr = module_attr.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        return [f"{module_attr}: {exc}"]
    if not callable(getattr(module, attr, None)):
        return [f"{module_attr}: no callable {attr}"]
    return []


def service_command(name: str) -> list[str]:
    """The command that runs service ``name``."""
    return ["faststream", "run", f"services.{name}.app:create_app", "--factory"]


# --------------------------------------------------------------------------------------------------
# Kubernetes: schema validation
# --------------------------------------------------------------------------------------------------


def test_manifests_exist() -> None:
    names = {p.name for p in MANIFEST_FILES}
    expected = {
        "namespace.yaml",
        "configmap.yaml",
        "secret.example.yaml",
        "trust.example.yaml",
        "topics.yaml",
        "users.yaml",
        "networkpolicy.yaml",
        "keda-auth.yaml",
        "kustomization.yaml",
        "prometheusrule.yaml",
    }
    assert expected | {f"{s}.yaml" for s in SERVICES} <= names
    assert kubernetes_validate.__version__ == "1.37.0"


@pytest.mark.parametrize(("filename", "doc"), ALL_DOCS, ids=[f"{f}:{d['kind']}" for f, d in ALL_DOCS])
def test_every_manifest_validates(filename: str, doc: dict[str, Any]) -> None:
    validate_manifest(doc)


def test_kinds_without_bundled_schema_are_exactly_the_custom_ones() -> None:
    # Pins down how kubernetes_validate treats CRDs: no schema (not a pass), hence CUSTOM_SCHEMAS.
    for api_version, kind in CUSTOM_SCHEMAS:
        doc = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}}
        with pytest.raises(kubernetes_validate.SchemaNotFoundError):
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        validate_manifest({"apiVersion": "example.com/v1", "kind": "Unknown", "metadata": {"name": "x"}})


def _container(doc: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = doc["spec"]["template"]["spec"]["containers"][0]
    return container


def _key(part: str) -> int | str:
    return int(part) if part.isdigit() else part


def _parent(doc: dict[str, Any], path: str) -> tuple[Any, int | str]:
    *parents, last = path.split(".")
    node: Any = doc
    for part in parents:
        node = node[_key(part)]
    return node, _key(last)


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    """A mutation setting the dotted ``path`` (list indices as numbers) to ``value``."""

    def mutate(doc: dict[str, Any]) -> None:
        node, key = _parent(doc, path)
        node[key] = value

    return mutate


def _append(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    """A mutation appending ``value`` to the list at the dotted ``path``."""

    def mutate(doc: dict[str, Any]) -> None:
        node, key = _parent(doc, path)
        node[key].append(value)

    return mutate


def _label(key: str, value: str) -> Callable[[dict[str, Any]], None]:
    """A mutation setting label ``key`` (label keys hold dots, so not a dotted path)."""

    def mutate(doc: dict[str, Any]) -> None:
        doc["metadata"]["labels"][key] = value

    return mutate


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    """A mutation deleting the dotted ``path``."""

    def mutate(doc: dict[str, Any]) -> None:
        node, key = _parent(doc, path)
        del node[key]

    return mutate


BROKEN: list[tuple[str, str, Callable[[dict[str, Any]], None]]] = [
    # (kind, why, mutation of the committed payments manifest of that kind)
    ("Deployment", "misspelt field (strict)", _set("spec.template.spec.containers.0.livnessProbe", {})),
    ("Deployment", "port as a string", _set("spec.template.spec.containers.0.ports.0.containerPort", "8080")),
    ("Deployment", "no selector", _drop("spec.selector")),
    ("Deployment", "container without name", _drop("spec.template.spec.containers.0.name")),
    ("Service", "misspelt field", _set("spec.portz", [])),
    ("ScaledObject", "numeric trigger metadata", _set("spec.triggers.0.metadata.lagThreshold", 50)),
    ("ScaledObject", "no scale target", _drop("spec.scaleTargetRef")),
    ("ScaledObject", "kafka trigger without group", _drop("spec.triggers.0.metadata.consumerGroup")),
    ("ScaledObject", "misspelt replica field", _set("spec.maxReplicas", 3)),
    ("ServiceMonitor", "no selector", _drop("spec.selector")),
    ("ServiceMonitor", "endpoint without port", _drop("spec.endpoints.0.port")),
    ("ServiceMonitor", "interval without unit", _set("spec.endpoints.0.interval", "30")),
    ("ServiceMonitor", "misspelt endpoint field", _set("spec.endpoints.0.honourLabels", True)),
    ("PodDisruptionBudget", "misspelt field (strict)", _set("spec.maxUnavaliable", 1)),
    ("PodDisruptionBudget", "selector as a string", _set("spec.selector", "app=payments")),
]


@pytest.mark.parametrize(("kind", "why", "mutate"), BROKEN, ids=[f"{k}:{w}" for k, w, _ in BROKEN])
def test_validator_rejects_broken_manifests(
    kind: str, why: str, mutate: Callable[[dict[str, Any]], None]
) -> None:
    doc = copy.deepcopy(one(kind, "payments"))
    validate_manifest(doc)  # the original is valid ...
    mutate(doc)
    with pytest.raises(jsonschema.ValidationError):  # ... the broken copy is not
        validate_manifest(doc)


@pytest.mark.parametrize(
    "mutate",
    [
        _set("spec.partitions", 0),
        _set("spec.partitions", "12"),
        _set("metadata.labels", {}),
        _set("metadata.name", "Aqsha_Topic"),
        _set("spec.retention", 1),
    ],
    ids=["zero-partitions", "string-partitions", "no-cluster-label", "bad-name", "unknown-field"],
)
def test_validator_rejects_broken_kafka_topic(mutate: Callable[[dict[str, Any]], None]) -> None:
    doc = copy.deepcopy(find("KafkaTopic")[0])
    mutate(doc)
    with pytest.raises(jsonschema.ValidationError):
        validate_manifest(doc)


BROKEN_NAMED: list[tuple[str, str, str, Callable[[dict[str, Any]], None]]] = [
    # (kind, name, why, mutation of that committed manifest)
    (
        "KafkaUser",
        "aqsha-payments",
        "unknown operation",
        _set("spec.authorization.acls.0.operations", ["Produce"]),
    ),
    (
        "KafkaUser",
        "aqsha-payments",
        "v1beta2 singular operation",
        _set("spec.authorization.acls.0.operation", "Write"),
    ),
    (
        "KafkaUser",
        "aqsha-payments",
        "plural resource type",
        _set("spec.authorization.acls.0.resource.type", "topics"),
    ),
    (
        "KafkaUser",
        "aqsha-payments",
        "regex pattern",
        _set("spec.authorization.acls.0.resource.patternType", "regex"),
    ),
    ("KafkaUser", "aqsha-payments", "acl without operations", _drop("spec.authorization.acls.0.operations")),
    ("KafkaUser", "aqsha-payments", "acl without resource", _drop("spec.authorization.acls.0.resource")),
    (
        "KafkaUser",
        "aqsha-payments",
        "scram-sha-256 (not in Strimzi)",
        _set("spec.authentication.type", "scram-sha-256"),
    ),
    ("KafkaUser", "aqsha-payments", "authentication without type", _drop("spec.authentication.type")),
    ("KafkaUser", "aqsha-payments", "authorization type opa", _set("spec.authorization.type", "opa")),
    ("KafkaUser", "aqsha-payments", "authorization without acls", _drop("spec.authorization.acls")),
    ("KafkaUser", "aqsha-payments", "no cluster label", _set("metadata.labels", {})),
    ("KafkaUser", "aqsha-payments", "misspelt spec field", _set("spec.authorisation", {})),
    ("KafkaUser", "aqsha-payments", "allow as a boolean", _set("spec.authorization.acls.0.type", True)),
    ("TriggerAuthentication", "aqsha-kafka-lag", "ref without key", _drop("spec.secretTargetRef.0.key")),
    ("TriggerAuthentication", "aqsha-kafka-lag", "misspelt provider", _set("spec.secretTargetRefs", [])),
    ("TriggerAuthentication", "aqsha-kafka-lag", "empty spec", _set("spec", {})),
    ("NetworkPolicy", "aqsha-default-deny", "misspelt field (strict)", _set("spec.podSelectr", {})),
    (
        "NetworkPolicy",
        "aqsha-allow-metrics",
        "from as a mapping",
        _set("spec.ingress.0.from", {"podSelector": {}}),
    ),
    ("NetworkPolicy", "aqsha-allow-egress", "no pod selector", _drop("spec.podSelector")),
    ("PrometheusRule", "aqsha", "rule without expr", _drop("spec.groups.0.rules.0.expr")),
    ("PrometheusRule", "aqsha", "group without name", _drop("spec.groups.0.name")),
    ("PrometheusRule", "aqsha", "for without unit", _set("spec.groups.0.rules.0.for", "15")),
    ("PrometheusRule", "aqsha", "alert and record at once", _set("spec.groups.0.rules.0.record", "x")),
]


@pytest.mark.parametrize(
    ("kind", "name", "why", "mutate"), BROKEN_NAMED, ids=[f"{k}:{w}" for k, _, w, _ in BROKEN_NAMED]
)
def test_validator_rejects_broken_named_manifests(
    kind: str, name: str, why: str, mutate: Callable[[dict[str, Any]], None]
) -> None:
    doc = copy.deepcopy(one(kind, name))
    validate_manifest(doc)  # the original is valid ...
    mutate(doc)
    with pytest.raises(jsonschema.ValidationError):  # ... the broken copy is not
        validate_manifest(doc)


@pytest.mark.parametrize("kind", ["KafkaTopic", "KafkaUser"])
def test_strimzi_v1beta2_no_longer_validates(kind: str) -> None:
    # Strimzi 1.x serves kafka.strimzi.io/v1 only: an old manifest has no schema here, as in the cluster.
    doc = copy.deepcopy(find(kind)[0])
    assert doc["apiVersion"] == "kafka.strimzi.io/v1"
    doc["apiVersion"] = "kafka.strimzi.io/v1beta2"
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        validate_manifest(doc)


# --------------------------------------------------------------------------------------------------
# Kubernetes: policy (what the schemas cannot say)
# --------------------------------------------------------------------------------------------------


def deployment_problems(doc: dict[str, Any], name: str) -> list[str]:
    """What is wrong with the Deployment of service ``name`` (empty when nothing)."""
    problems: list[str] = []
    pod = doc["spec"]["template"]["spec"]
    if "replicas" in doc["spec"]:
        problems.append("spec.replicas is set, but KEDA owns the replica count")
    if pod.get("securityContext", {}).get("runAsNonRoot") is not True:
        problems.append("pod securityContext.runAsNonRoot is not true")
    if pod.get("securityContext", {}).get("runAsUser", 0) == 0:
        problems.append("pod runs as uid 0")
    containers = pod["containers"]
    if len(containers) != 1:
        return [*problems, "expected one container"]
    c = containers[0]
    sc = c.get("securityContext", {})
    if sc.get("readOnlyRootFilesystem") is not True:
        problems.append("readOnlyRootFilesystem is not true")
    if sc.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation is not false")
    if "ALL" not in sc.get("capabilities", {}).get("drop", []):
        problems.append("capabilities are not all dropped")
    resources = c.get("resources", {})
    for bound in ("requests", "limits"):
        for what in ("cpu", "memory"):
            if what not in resources.get(bound, {}):
                problems.append(f"no resources.{bound}.{what}")
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    for probe, path in (("livenessProbe", "/health/live"), ("readinessProbe", "/health/ready")):
        get = c.get(probe, {}).get("httpGet", {})
        port = ports.get(get.get("port"), get.get("port"))
        if get.get("path") != path or port != HTTP_PORT:
            problems.append(f"{probe} is not GET {path} on {HTTP_PORT}")
    command = [*c.get("command", []), *c.get("args", [])]
    if command != service_command(name):
        problems.append(f"command {command} does not run services.{name}")
    else:
        problems += factory_problems(command[2])
    refs = {(k, v["name"]) for src in c.get("envFrom", []) for k, v in src.items()}
    for ref_kind, ref_name in refs:
        kind = {"configMapRef": "ConfigMap", "secretRef": "Secret"}[ref_kind]
        if not find(kind, ref_name):
            problems.append(f"envFrom {kind}/{ref_name} does not exist in deploy/k8s")
    if ("configMapRef", "aqsha-config") not in refs:
        problems.append("does not load the shared ConfigMap")
    mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
    if "/tmp" not in mounts:
        problems.append("no writable /tmp although the root filesystem is read-only")
    return problems + credential_problems(pod, c, name)


def _secret_ref(env: dict[str, dict[str, Any]], variable: str) -> dict[str, Any]:
    ref: dict[str, Any] = env.get(variable, {}).get("valueFrom", {}).get("secretKeyRef", {})
    return ref


def credential_problems(pod: dict[str, Any], c: dict[str, Any], name: str) -> list[str]:
    """Least privilege of one service's pod: its own Kafka user, database role and signing key only."""
    problems: list[str] = []
    env = {e["name"]: e for e in c.get("env", [])}
    config = one("ConfigMap", "aqsha-config")["data"]
    user = kafka_acls.kafka_user(name)
    if env.get("AQSHA_KAFKA_SASL_USERNAME", {}).get("value") != user:
        problems.append(f"does not log in to Kafka as {user}")
    if _secret_ref(env, "AQSHA_KAFKA_SASL_PASSWORD") != {"name": user, "key": "password"}:
        problems.append(f"the Kafka password is not the User Operator's Secret {user}")
    if not find("KafkaUser", user):
        problems.append(f"no KafkaUser {user} in deploy/k8s")
    db_secret = f"aqsha-{name}-db"
    if _secret_ref(env, "AQSHA_PG_DSN") != {"name": db_secret, "key": "AQSHA_PG_DSN"}:
        problems.append(f"AQSHA_PG_DSN does not come from its own Secret {db_secret}")
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}

    def volume_at(path: str) -> dict[str, Any]:
        mount = mounts.get(str(Path(path).parent))
        if mount is None:
            problems.append(f"nothing is mounted at {Path(path).parent} for {path}")
            return {}
        if mount.get("readOnly") is not True:
            problems.append(f"{mount['mountPath']} is not mounted read-only")
        volume: dict[str, Any] = volumes.get(mount["name"], {})
        return volume

    signing = volume_at(f"{config['AQSHA_TRUST_KEYS_DIR']}/{name}.pem").get("secret", {})
    if signing.get("secretName") != f"aqsha-{name}-signing" or signing.get("items") != [
        {"key": f"{name}.pem", "path": f"{name}.pem"}
    ]:
        problems.append(f"does not mount exactly its own signing key aqsha-{name}-signing/{name}.pem")
    registry_file = Path(config["AQSHA_TRUST_REGISTRY_FILE"])
    registry = volume_at(str(registry_file)).get("configMap", {})
    if registry.get("name") != "aqsha-trust-registry" or registry_file.name not in {
        i["key"] for i in registry.get("items", [])
    }:
        problems.append("does not mount the trust registry ConfigMap aqsha-trust-registry")
    ca_file = Path(config["AQSHA_KAFKA_SSL_CAFILE"])
    ca = volume_at(str(ca_file)).get("secret", {})
    if ca.get("secretName") != f"{strimzi.CLUSTER}-cluster-ca-cert" or ca_file.name not in {
        i["key"] for i in ca.get("items", [])
    }:
        problems.append("does not mount the Kafka cluster CA")
    allowed = {f"aqsha-{name}-signing", f"{strimzi.CLUSTER}-cluster-ca-cert"}
    for volume in volumes.values():
        secret_name = volume.get("secret", {}).get("secretName")
        if secret_name is not None and secret_name not in allowed:
            problems.append(f"mounts the Secret {secret_name}, which is not its own")
    return problems


@pytest.mark.parametrize("name", SERVICES)
def test_deployment_policy(name: str) -> None:
    doc = one("Deployment", name)
    assert deployment_problems(doc, name) == []
    assert doc["metadata"]["namespace"] == "aqsha"
    labels = doc["spec"]["template"]["metadata"]["labels"]
    assert doc["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = one("Service", name)
    assert service["spec"]["selector"].items() <= labels.items()
    assert [p["port"] for p in service["spec"]["ports"]] == [HTTP_PORT]


@pytest.mark.parametrize(
    ("why", "mutate"),
    [
        ("root", _set("spec.template.spec.securityContext.runAsNonRoot", False)),
        (
            "writable root",
            _set("spec.template.spec.containers.0.securityContext.readOnlyRootFilesystem", False),
        ),
        ("no limits", _drop("spec.template.spec.containers.0.resources.limits")),
        ("wrong liveness", _set("spec.template.spec.containers.0.livenessProbe.httpGet.path", "/healthz")),
        ("wrong readiness port", _set("spec.template.spec.containers.0.readinessProbe.httpGet.port", 9090)),
        ("unknown factory", _set("spec.template.spec.containers.0.command.2", "services.payments.app:nope")),
        ("other service", _set("spec.template.spec.containers.0.command.2", "services.bonus.app:create_app")),
        ("missing config map", _set("spec.template.spec.containers.0.envFrom.0.configMapRef.name", "nope")),
        ("fixed replicas", _set("spec.replicas", 3)),
        ("another Kafka user", _set("spec.template.spec.containers.0.env.0.value", "aqsha-bonus")),
        (
            "another user's password",
            _set("spec.template.spec.containers.0.env.1.valueFrom.secretKeyRef.name", "aqsha-operators"),
        ),
        (
            "a shared DSN",
            _set("spec.template.spec.containers.0.env.2.valueFrom.secretKeyRef.name", "aqsha-secrets"),
        ),
        ("no Kafka password", _drop("spec.template.spec.containers.0.env.1")),
        (
            "another signing key",
            _set("spec.template.spec.volumes.1.secret.secretName", "aqsha-bonus-signing"),
        ),
        (
            "every key of the Secret",
            _drop("spec.template.spec.volumes.1.secret.items"),
        ),
        ("no trust registry", _drop("spec.template.spec.containers.0.volumeMounts.2")),
        ("writable keys", _set("spec.template.spec.containers.0.volumeMounts.1.readOnly", False)),
        (
            "an extra Secret",
            _append(
                "spec.template.spec.volumes",
                {"name": "more", "secret": {"secretName": "aqsha-bonus-signing"}},
            ),
        ),
    ],
)
def test_deployment_policy_rejects(why: str, mutate: Callable[[dict[str, Any]], None]) -> None:
    doc = copy.deepcopy(one("Deployment", "payments"))
    mutate(doc)
    assert deployment_problems(doc, "payments"), why


def test_configmap_carries_the_shared_settings() -> None:
    data = one("ConfigMap", "aqsha-config")["data"]
    assert data["AQSHA_HTTP_HOST"] == "0.0.0.0"
    assert data["AQSHA_HTTP_PORT"] == str(HTTP_PORT)
    assert data["AQSHA_KAFKA_IDEMPOTENT_PRODUCER"] == "true"
    assert data["AQSHA_KAFKA_ACKS"] == "all"
    assert {"AQSHA_KAFKA_BOOTSTRAP", "AQSHA_REDIS_URL"} <= data.keys()
    assert "AQSHA_PG_DSN" not in data, "the DSN holds a password: it belongs in the Secret"
    # Kafka: SCRAM over TLS to the Strimzi cluster, with its CA; replication as the KafkaTopics say.
    assert data["AQSHA_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert data["AQSHA_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert data["AQSHA_KAFKA_BOOTSTRAP"] == f"{strimzi.CLUSTER}-kafka-bootstrap.aqsha.svc:{KAFKA_TLS_PORT}"
    assert "AQSHA_KAFKA_SASL_USERNAME" not in data, "each service logs in as its own user"
    assert int(data["AQSHA_KAFKA_REPLICATION_FACTOR"]) == strimzi.REPLICAS
    assert int(data["AQSHA_KAFKA_MIN_INSYNC_REPLICAS"]) == strimzi.MIN_INSYNC_REPLICAS
    assert data["AQSHA_TRUST_KEYS_DIR"] == "/etc/aqsha/keys"
    assert data["AQSHA_TRUST_REGISTRY_FILE"] == "/etc/aqsha/trust/registry.json"


def _placeholders_only(doc: dict[str, Any]) -> None:
    what = f"{doc['kind']}/{doc['metadata']['name']}"
    assert "data" not in doc or doc["kind"] == "ConfigMap", f"{what}: base64 data could hide a real value"
    for key, value in (doc.get("stringData") or doc.get("data") or {}).items():
        assert "CHANGE_ME" in value, f"{what}: {key} is not a placeholder"
        assert "PRIVATE KEY" not in value, f"{what}: {key} holds a key"


def test_secret_example_holds_placeholders_only() -> None:
    secret = one("Secret", "aqsha-otp")
    assert "data" not in secret, "base64 data could hide a real value; use stringData placeholders"
    values = secret["stringData"]
    assert set(values) == {"AQSHA_OTP_HASH_KEY", "AQSHA_OTP_TRANSPORT_KEY"}
    assert "AQSHA_PG_DSN" not in values, "no DSN shared by every service: each has its own role"
    for _, doc in [(f, d) for f, d in ALL_DOCS if f.endswith(".example.yaml")]:
        _placeholders_only(doc)
    for name in SERVICES:
        dsn = one("Secret", f"aqsha-{name}-db")["stringData"]["AQSHA_PG_DSN"]
        assert dsn.startswith(f"postgresql://aqsha_{name}:"), (
            f"{name}: not the role of deploy/postgres/roles.sql"
        )
        signing = one("Secret", f"aqsha-{name}-signing")
        assert set(signing["stringData"]) == {f"{name}.pem"}, f"{name}: exactly its own key"
    registry = one("ConfigMap", "aqsha-trust-registry")["data"]["registry.json"]
    assert set(json.loads(registry)) == {"keys"}, "the shape shared.trust.TrustRegistry.load reads"


def test_only_payments_and_notify_mount_the_otp_keys() -> None:
    # Least privilege: the code-hash key is payments' alone; the transport key is shared by the two
    # ends of aqsha.payments.otp and nobody else.
    for name in SERVICES:
        container = one("Deployment", name)["spec"]["template"]["spec"]["containers"][0]
        refs = {
            e["name"]
            for e in container.get("env", [])
            if e.get("valueFrom", {}).get("secretKeyRef", {}).get("name") == "aqsha-otp"
        }
        assert not [f for f in container.get("envFrom", []) if "secretRef" in f], f"{name}: a whole Secret"
        want = {
            "payments": {"AQSHA_OTP_HASH_KEY", "AQSHA_OTP_TRANSPORT_KEY"},
            "notify": {"AQSHA_OTP_TRANSPORT_KEY"},
        }.get(name, set())
        assert refs == want, name


def test_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    kustomization = load_docs(K8S / "kustomization.yaml")[0]
    resources = kustomization["resources"]
    assert all((K8S / r).is_file() for r in resources)
    expected = {p.name for p in MANIFEST_FILES if not p.name.endswith(".example.yaml")} - {
        "kustomization.yaml"
    }
    assert set(resources) == expected
    namespaced = [d for _, d in ALL_DOCS if d["kind"] not in ("Namespace", "Kustomization")]
    assert all(d["metadata"]["namespace"] == kustomization["namespace"] == "aqsha" for d in namespaced)
    images = {_container(one("Deployment", s))["image"].rsplit(":", 1)[0] for s in SERVICES}
    assert images == {i["name"] for i in kustomization["images"]}, "one image for every service"


# --------------------------------------------------------------------------------------------------
# Monitoring and disruptions: a ServiceMonitor and a PodDisruptionBudget per service
# --------------------------------------------------------------------------------------------------


def _selects_pods(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    wanted = selector.get("matchLabels", {})
    return bool(wanted) and not selector.get("matchExpressions") and wanted.items() <= labels.items()


def service_monitor_problems(doc: dict[str, Any], name: str) -> list[str]:
    """What is wrong with the ServiceMonitor of service ``name``."""
    problems: list[str] = []
    service = one("Service", name)
    deployment = one("Deployment", name)
    spec = doc["spec"]
    if not _selects_pods(spec["selector"], service["metadata"].get("labels", {})):
        problems.append(f"selector does not select the Service {name}")
    if [
        s
        for s in find("Service")
        if s["metadata"]["name"] != name and _selects_pods(spec["selector"], s["metadata"].get("labels", {}))
    ]:
        problems.append("selector also selects another service's Service")
    if spec.get("namespaceSelector", {}).get("matchNames") != [service["metadata"]["namespace"]]:
        problems.append("namespaceSelector is not the Service's namespace alone")
    port_names = {p.get("name"): p for p in service["spec"]["ports"]}
    annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
    if len(spec["endpoints"]) != 1:
        return [*problems, "expected one endpoint"]
    endpoint = spec["endpoints"][0]
    port = port_names.get(endpoint.get("port"))
    if port is None:
        problems.append(f"endpoint port {endpoint.get('port')} is not a port of the Service")
    elif port["port"] != HTTP_PORT or str(annotations.get("prometheus.io/port")) != str(HTTP_PORT):
        problems.append(f"endpoint port does not lead to the metrics port {HTTP_PORT}")
    if (
        endpoint.get("path", "/metrics") != annotations.get("prometheus.io/path", "/metrics")
        or endpoint.get("path", "/metrics") != "/metrics"
    ):
        problems.append("endpoint path is not /metrics")
    if endpoint.get("honorLabels") is not True:
        problems.append(
            "honorLabels is not true: the services' `service` label would become exported_service"
        )
    if endpoint.get("scheme", "http").lower() != "http":
        problems.append("the metrics endpoint speaks plain HTTP")
    return problems


def disruption_budget_problems(doc: dict[str, Any], name: str) -> list[str]:
    """What is wrong with the PodDisruptionBudget of service ``name``."""
    problems: list[str] = []
    spec = doc["spec"]
    deployment = one("Deployment", name)
    if spec.get("selector") != deployment["spec"]["selector"]:
        problems.append("selector is not the Deployment's")
    if "minAvailable" in spec:
        problems.append("minAvailable blocks every drain while KEDA runs one replica")
    if spec.get("maxUnavailable") != 1:
        problems.append("maxUnavailable is not 1 (one pod at a time: one group rebalance at a time)")
    if spec.get("unhealthyPodEvictionPolicy") != "AlwaysAllow":
        problems.append("a pod that is not ready could block a drain")
    return problems


@pytest.mark.parametrize("name", SERVICES)
def test_service_monitor(name: str) -> None:
    assert service_monitor_problems(one("ServiceMonitor", name), name) == []


@pytest.mark.parametrize("name", SERVICES)
def test_pod_disruption_budget(name: str) -> None:
    assert disruption_budget_problems(one("PodDisruptionBudget", name), name) == []


def test_one_service_monitor_and_budget_per_service_and_the_alert_rules() -> None:
    for kind in ("ServiceMonitor", "PodDisruptionBudget"):
        assert sorted(d["metadata"]["name"] for d in find(kind)) == sorted(SERVICES), kind
    assert [d["metadata"]["name"] for d in find("PrometheusRule")] == ["aqsha"]
    # The NetworkPolicy lets the monitoring namespace reach the port the ServiceMonitors scrape.
    metrics_policy = one("NetworkPolicy", "aqsha-allow-metrics")
    assert {p["port"] for rule in metrics_policy["spec"]["ingress"] for p in rule["ports"]} == {HTTP_PORT}


@pytest.mark.parametrize(
    ("why", "mutate"),
    [
        ("other service", _set("spec.selector.matchLabels", {"app.kubernetes.io/name": "bonus"})),
        ("every service", _set("spec.selector.matchLabels", {"app.kubernetes.io/part-of": "aqsha"})),
        ("unknown port", _set("spec.endpoints.0.port", "http")),
        ("other path", _set("spec.endpoints.0.path", "/health/ready")),
        ("labels renamed", _set("spec.endpoints.0.honorLabels", False)),
        ("labels renamed by default", _drop("spec.endpoints.0.honorLabels")),
        ("any namespace", _set("spec.namespaceSelector", {"any": True})),
        ("https", _set("spec.endpoints.0.scheme", "https")),
    ],
)
def test_service_monitor_policy_rejects(why: str, mutate: Callable[[dict[str, Any]], None]) -> None:
    doc = copy.deepcopy(one("ServiceMonitor", "payments"))
    mutate(doc)
    assert service_monitor_problems(doc, "payments"), why


@pytest.mark.parametrize(
    ("why", "mutate"),
    [
        ("min available", _set("spec.minAvailable", 1)),
        ("two at a time", _set("spec.maxUnavailable", 2)),
        ("other pods", _set("spec.selector.matchLabels", {"app.kubernetes.io/name": "bonus"})),
        ("unhealthy pods block drains", _drop("spec.unhealthyPodEvictionPolicy")),
    ],
)
def test_disruption_budget_policy_rejects(why: str, mutate: Callable[[dict[str, Any]], None]) -> None:
    doc = copy.deepcopy(one("PodDisruptionBudget", "payments"))
    mutate(doc)
    assert disruption_budget_problems(doc, "payments"), why


# --------------------------------------------------------------------------------------------------
# KEDA: consumer groups, topics and the partition cap
# --------------------------------------------------------------------------------------------------


#: The TriggerAuthentication every kafka trigger uses (keda-auth.yaml).
LAG_AUTH = "aqsha-kafka-lag"


def scaled_object_problems(doc: dict[str, Any], name: str) -> list[str]:
    """What is wrong with the ScaledObject of service ``name``."""
    group, topics = SUBSCRIPTIONS[name]
    spec = doc["spec"]
    problems: list[str] = []
    if spec["scaleTargetRef"].get("name") != name or spec["scaleTargetRef"].get("kind", "Deployment") != (
        "Deployment"
    ):
        problems.append("does not scale the service's Deployment")
    if spec.get("minReplicaCount", 0) < 1:
        problems.append("minReplicaCount < 1: the outbox relay and periodic jobs would stop")
    bootstrap = one("ConfigMap", "aqsha-config")["data"]["AQSHA_KAFKA_BOOTSTRAP"]
    triggered: set[str] = set()
    for trigger in spec["triggers"]:
        meta = trigger["metadata"]
        if trigger["type"] != "kafka":
            problems.append(f"trigger {trigger['type']} is not kafka")
            continue
        if meta.get("consumerGroup") != group:
            problems.append(f"consumerGroup {meta.get('consumerGroup')} is not {group}")
        if meta.get("bootstrapServers") != bootstrap:
            problems.append("bootstrapServers differs from AQSHA_KAFKA_BOOTSTRAP")
        if meta.get("allowIdleConsumers", "false") != "false":
            problems.append("allowIdleConsumers lets replicas exceed the partitions")
        if (trigger.get("authenticationRef") or {}).get("name") != LAG_AUTH:
            problems.append(f"trigger {trigger.get('name')} does not authenticate with {LAG_AUTH}")
        triggered.add(meta.get("topic", ""))
    if triggered != topics:
        problems.append(f"triggers on {sorted(triggered)}, but the group consumes {sorted(topics)}")
    specs: list[TopicSpec] = []
    for topic in triggered:
        try:
            specs.append(topic_by_name(topic))
        except KeyError:
            problems.append(f"{topic} is not in shared/topics.py")
    cap = max((s.partitions for s in specs), default=0)
    if not spec.get("minReplicaCount", 0) <= spec.get("maxReplicaCount", 0) <= cap:
        problems.append(f"maxReplicaCount {spec.get('maxReplicaCount')} exceeds the partitions ({cap})")
    return problems


@pytest.mark.parametrize("name", SERVICES)
def test_scaled_object(name: str) -> None:
    assert scaled_object_problems(one("ScaledObject", name), name) == []
    for topic in SUBSCRIPTIONS[name][1]:
        assert name in topic_by_name(topic).consumers, f"{topic}: registry does not list {name} as consumer"


@pytest.mark.parametrize(
    ("why", "mutate"),
    [
        ("too many replicas", _set("spec.maxReplicaCount", 13)),
        ("scale to zero", _set("spec.minReplicaCount", 0)),
        ("wrong group", _set("spec.triggers.0.metadata.consumerGroup", "aqsha-bonus")),
        ("unknown topic", _set("spec.triggers.0.metadata.topic", "aqsha.nope")),
        ("missing topic", _drop("spec.triggers.1")),
        ("idle consumers", _set("spec.triggers.0.metadata.allowIdleConsumers", "true")),
        ("other target", _set("spec.scaleTargetRef.name", "bonus")),
        ("anonymous lag reads", _drop("spec.triggers.0.authenticationRef")),
        ("other credentials", _set("spec.triggers.1.authenticationRef.name", "aqsha-operators")),
    ],
)
def test_scaled_object_policy_rejects(why: str, mutate: Callable[[dict[str, Any]], None]) -> None:
    doc = copy.deepcopy(one("ScaledObject", "payments"))
    mutate(doc)
    assert scaled_object_problems(doc, "payments"), why


# --------------------------------------------------------------------------------------------------
# Strimzi topics: generated from the registry
# --------------------------------------------------------------------------------------------------


def test_topics_yaml_matches_registry() -> None:
    assert strimzi.OUTPUT == K8S / "topics.yaml"
    assert strimzi.OUTPUT.read_text() == strimzi.render(), "run: python -m shared.ops.strimzi"
    assert strimzi.main(["--check"]) == 0
    docs = load_docs(strimzi.OUTPUT)
    assert docs == [strimzi.manifest(spec) for spec in all_topics(include_dlq=True)]
    by_name = {d["spec"]["topicName"]: d for d in docs}
    for spec in all_topics(include_dlq=True):
        topic = by_name[spec.name]
        assert topic["metadata"]["name"] == spec.name
        assert topic["spec"]["partitions"] == spec.partitions
        assert topic["spec"]["config"]["retention.ms"] == spec.retention_ms
        assert topic["spec"]["config"]["cleanup.policy"] == "delete"
        assert topic["spec"]["replicas"] >= topic["spec"]["config"]["min.insync.replicas"] + 1
        assert topic["spec"]["config"].get("segment.ms") == spec.segment_ms
        # the same config `aqsha topics apply` (shared.kafka.ensure_topics) sets
        rf, min_isr = topic["spec"]["replicas"], topic["spec"]["config"]["min.insync.replicas"]
        assert topic["spec"]["config"] == topic_config(
            spec, replication_factor=rf, min_insync_replicas=min_isr
        )
    assert by_name["aqsha.payments.otp"]["spec"]["config"]["segment.ms"] == 10 * 60_000
    assert len(docs) == 2 * len([s for s in all_topics() if not s.is_dlq])


def test_topic_generator_options() -> None:
    small = load_docs_text(strimzi.render(replicas=1, min_insync_replicas=1))
    assert {d["spec"]["replicas"] for d in small} == {1}
    assert {d["spec"]["config"]["min.insync.replicas"] for d in small} == {1}
    with pytest.raises(ValueError, match=r"min\.insync\.replicas"):
        strimzi.render(replicas=1, min_insync_replicas=2)  # every acks=all write would fail
    with pytest.raises(SystemExit):
        strimzi.main(["--check", "--replicas", "2", "--min-insync-replicas", "3"])
    assert strimzi.main(["--check", "--replicas", "1"]) == 1  # min.insync.replicas 1 then; not committed


def test_topics_check_fails_on_drift(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dataclasses import replace

    changed = [replace(s, partitions=s.partitions * 2) for s in all_topics()]
    monkeypatch.setattr(strimzi, "all_topics", lambda include_dlq=True: changed)
    assert strimzi.render() != strimzi.OUTPUT.read_text()
    assert strimzi.main(["--check"]) == 1
    assert "stale" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# Strimzi users: least privilege, generated from the registry
# --------------------------------------------------------------------------------------------------

WRITE = {"Describe", "Write"}
READ = {"Describe", "Read"}
Rights = dict[tuple[str, str], set[str]]


def expected_rights(principal: str | None) -> Rights:
    """What the registry (and the services' code) says a user may do; None is KEDA.

    Written here from the registry, independently of shared/ops/kafka_acls.py, so the two are checked
    against each other.
    """
    rights: Rights = {}

    def allow(kind: str, name: str, operations: set[str]) -> None:
        rights.setdefault((kind, name), set()).update(operations)

    if principal is None:  # KEDA: lag of every service's group on the topics it consumes
        for service in SERVICES:
            group, topics = SUBSCRIPTIONS[service]
            allow("group", group, {"Describe"})
            for topic in topics:
                allow("topic", topic, {"Describe"})
        return rights
    for spec in TOPICS:
        if principal in spec.producers:
            allow("topic", spec.name, WRITE)
    if principal in SERVICE_PRINCIPALS:
        group, topics = SUBSCRIPTIONS[principal]  # what the service's handlers really subscribe to
        for topic in topics:
            allow("topic", topic, READ)
            allow("topic", dlq_name(topic), WRITE)
        allow("group", group, {"Read"})
    elif principal == "ops":
        for spec in TOPICS:
            allow("topic", dlq_name(spec.name), READ)
            if spec.consumers:
                allow("topic", spec.name, WRITE)  # aqsha dlq redrive
        allow("topic", "aqsha.payments.events", READ)  # aqsha payments lookup waits for its reply
        allow("topic", "aqsha.billing.days", READ)  # aqsha billing run-day --wait waits for its day
        allow("group", kafka_tools.REDRIVE_GROUP, {"Read"})
        for service in SERVICES:
            allow("group", SUBSCRIPTIONS[service][0], {"Describe"})  # aqsha lag
    return rights


def user_rights(doc: dict[str, Any]) -> Rights:
    rights: Rights = {}
    for acl in doc["spec"]["authorization"]["acls"]:
        resource = acl["resource"]
        rights.setdefault((resource["type"], resource.get("name", "")), set()).update(acl["operations"])
    return rights


def user_problems(docs: list[dict[str, Any]]) -> list[str]:
    """What is wrong with the KafkaUsers (empty when nothing): least privilege against the registry."""
    problems: list[str] = []
    topics = {spec.name for spec in all_topics(include_dlq=True)}
    groups = {SUBSCRIPTIONS[s][0] for s in SERVICES} | {kafka_tools.REDRIVE_GROUP}
    principals: list[str | None] = []
    for doc in docs:
        name = doc["metadata"]["name"]
        principal = doc["metadata"]["labels"].get(strimzi.PRINCIPAL_LABEL)
        principals.append(principal)
        expected_name = kafka_acls.KEDA_USER if principal is None else kafka_acls.kafka_user(principal)
        if name != expected_name:
            problems.append(f"{name}: the user of {principal or 'KEDA'} is {expected_name}")
        if doc["spec"].get("authentication", {}).get("type") != "scram-sha-512":
            problems.append(f"{name}: not a SCRAM-SHA-512 user")
        for acl in doc["spec"]["authorization"]["acls"]:
            resource = acl["resource"]
            label = f"{name}: {resource.get('type')} {resource.get('name')}"
            if acl.get("type", "allow") != "allow":
                problems.append(f"{label}: only allow rules (a deny can hide a broad allow)")
            if resource.get("patternType", "literal") != "literal" or "*" in resource.get("name", "*"):
                problems.append(f"{label}: a wildcard or prefix resource")
            if resource.get("type") not in ("topic", "group"):
                problems.append(f"{label}: no user gets cluster or transactional-id rights")
            elif resource.get("name") not in (topics if resource["type"] == "topic" else groups):
                problems.append(f"{label}: not a registry topic or a known consumer group")
            if acl.get("host", "*") != "*" or "All" in acl["operations"]:
                problems.append(f"{label}: `All` or a host rule")
        expected = expected_rights(principal)
        actual = user_rights(doc)
        for key in sorted(set(expected) | set(actual)):
            has, want = sorted(actual.get(key, ())), sorted(expected.get(key, ()))
            if has != want:
                problems.append(f"{name}: {key} allows {has}, want {want}")
    if sorted(p for p in principals if p) != sorted(PRINCIPALS) or principals.count(None) != 1:
        problems.append(f"users of {principals}: want one per registry principal and one for KEDA")
    readers: dict[str, set[str]] = {}
    for doc in docs:
        for (kind, resource), operations in user_rights(doc).items():
            if kind == "group" and "Read" in operations:
                readers.setdefault(resource, set()).add(doc["metadata"]["name"])
    for service in SERVICES:
        group = SUBSCRIPTIONS[service][0]
        if readers.get(group) != {kafka_acls.kafka_user(service)}:
            problems.append(
                f"group {group} is read by {sorted(readers.get(group, ()))}, not by {service} alone"
            )
    return problems


def test_users_yaml_matches_registry() -> None:
    assert strimzi.USERS_OUTPUT == K8S / "users.yaml"
    assert strimzi.USERS_OUTPUT.read_text() == strimzi.render_users(), "run: python -m shared.ops.strimzi"
    assert strimzi.COMPOSE_ACLS_OUTPUT.read_text() == kafka_acls.render_script()
    assert strimzi.main(["--check"]) == 0
    docs = load_docs(strimzi.USERS_OUTPUT)
    assert docs == strimzi.user_manifests()
    assert kafka_acls.REDRIVE_GROUP == kafka_tools.REDRIVE_GROUP
    for service in SERVICES:
        assert kafka_acls.consumer_group(service) == SUBSCRIPTIONS[service][0]


def test_users_are_least_privilege() -> None:
    assert user_problems(find("KafkaUser")) == []


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_user_writes_exactly_its_registry_topics(service: str) -> None:
    rights = user_rights(one("KafkaUser", kafka_acls.kafka_user(service)))
    writes = {name for (kind, name), ops in rights.items() if kind == "topic" and "Write" in ops}
    produced = {spec.name for spec in TOPICS if service in spec.producers}
    dead_letters = {dlq_name(spec.name) for spec in TOPICS if service in spec.consumers}
    assert writes == produced | dead_letters
    reads = {name for (kind, name), ops in rights.items() if kind == "topic" and "Read" in ops}
    assert reads == SUBSCRIPTIONS[service][1] == {spec.name for spec in TOPICS if service in spec.consumers}


@pytest.mark.parametrize("principal", [p for p in EXTERNAL_PRINCIPALS if p != "ops"])
def test_each_external_user_writes_exactly_its_topics(principal: str) -> None:
    rights = user_rights(one("KafkaUser", kafka_acls.kafka_user(principal)))
    assert rights == {("topic", spec.name): WRITE for spec in TOPICS if principal in spec.producers}


def test_operators_run_the_business_day_redrive_and_read_lag_only() -> None:
    rights = user_rights(one("KafkaUser", kafka_acls.OPERATORS_USER))
    assert rights[("topic", "aqsha.billing.commands")] == WRITE
    dlqs = {spec.name for spec in all_topics(include_dlq=True) if spec.is_dlq}
    # aqsha payments lookup waits for payments' reply, billing run-day --wait for BusinessDayClosed
    replies = {"aqsha.payments.events", "aqsha.billing.days"}
    assert {
        name for (kind, name), ops in rights.items() if kind == "topic" and "Read" in ops
    } == dlqs | replies
    originals = {name for (kind, name), ops in rights.items() if kind == "topic" and "Write" in ops}
    assert originals == {spec.name for spec in TOPICS if spec.consumers}, (
        "redrive: where dead letters come from"
    )
    groups = {name: ops for (kind, name), ops in rights.items() if kind == "group"}
    assert groups.pop(kafka_tools.REDRIVE_GROUP) == {"Read"}
    assert groups == {SUBSCRIPTIONS[s][0]: {"Describe"} for s in SERVICES}, "lag: describe, never read"


def test_no_user_has_a_wildcard_resource() -> None:
    for doc in find("KafkaUser"):
        for acl in doc["spec"]["authorization"]["acls"]:
            assert acl["resource"]["patternType"] == "literal"
            assert "*" not in acl["resource"]["name"]
            assert "host" not in acl or acl["host"] == "*"


def _acl(kind: str, name: str, *operations: str, pattern: str = "literal") -> dict[str, Any]:
    return {
        "type": "allow",
        "resource": {"type": kind, "name": name, "patternType": pattern},
        "operations": list(operations),
    }


@pytest.mark.parametrize(
    ("why", "user", "mutate"),
    [
        ("wildcard topic", "aqsha-bonus", _append("spec.authorization.acls", _acl("topic", "*", "Read"))),
        (
            "prefix topic",
            "aqsha-bonus",
            _append("spec.authorization.acls", _acl("topic", "aqsha.", "Read", pattern="prefix")),
        ),
        (
            "writes another's topic",
            "aqsha-payments",
            _append("spec.authorization.acls", _acl("topic", "aqsha.bonus.events", "Write")),
        ),
        (
            "reads another's group",
            "aqsha-bonus",
            _append("spec.authorization.acls", _acl("group", "aqsha-payments", "Read")),
        ),
        (
            "operators read a group",
            "aqsha-operators",
            _append("spec.authorization.acls", _acl("group", "aqsha-billing", "Read")),
        ),
        (
            "cluster rights",
            "aqsha-notify",
            _append("spec.authorization.acls", _acl("cluster", "kafka-cluster", "Alter")),
        ),
        ("All", "aqsha-onboarding", _set("spec.authorization.acls.0.operations", ["All"])),
        ("cannot write its events", "aqsha-bonus", _drop("spec.authorization.acls.0")),
        ("KEDA reads", "aqsha-keda", _set("spec.authorization.acls.0.operations", ["Describe", "Read"])),
        (
            "gateway tops up",
            "aqsha-app-gateway",
            _set("spec.authorization.acls.0.resource.name", "aqsha.red.accounts"),
        ),
        ("wrong principal", "aqsha-bonus", _label(strimzi.PRINCIPAL_LABEL, "payments")),
        ("password", "aqsha-billing", _set("spec.authentication.type", "tls-external")),
    ],
)
def test_user_policy_rejects(why: str, user: str, mutate: Callable[[dict[str, Any]], None]) -> None:
    docs = copy.deepcopy(find("KafkaUser"))
    doc = next(d for d in docs if d["metadata"]["name"] == user)
    mutate(doc)
    assert user_problems(docs), why


def test_user_policy_rejects_a_missing_or_extra_user() -> None:
    docs = copy.deepcopy(find("KafkaUser"))
    assert user_problems([d for d in docs if d["metadata"]["name"] != "aqsha-notify"])
    extra = copy.deepcopy(one("KafkaUser", "aqsha-bonus"))
    assert user_problems([*docs, extra])


# --------------------------------------------------------------------------------------------------
# KEDA: how the autoscaler reads lag
# --------------------------------------------------------------------------------------------------


def test_keda_reads_lag_as_its_own_user_over_tls() -> None:
    auth = one("TriggerAuthentication", LAG_AUTH)["spec"]
    secrets = {r["parameter"]: (r["name"], r["key"]) for r in auth["secretTargetRef"]}
    assert secrets == {
        "password": (kafka_acls.KEDA_USER, "password"),  # the User Operator's Secret of aqsha-keda
        "ca": (f"{strimzi.CLUSTER}-cluster-ca-cert", "ca.crt"),
    }
    values = {}
    for ref in auth["configMapTargetRef"]:
        values[ref["parameter"]] = one("ConfigMap", ref["name"])["data"][ref["key"]]
    assert values == {"username": kafka_acls.KEDA_USER, "sasl": "scram_sha512", "tls": "enable"}
    keda = user_rights(one("KafkaUser", kafka_acls.KEDA_USER))
    assert all(ops == {"Describe"} for ops in keda.values()), "KEDA only describes"
    for service in SERVICES:
        for trigger in one("ScaledObject", service)["spec"]["triggers"]:
            meta = trigger["metadata"]
            assert keda[("group", meta["consumerGroup"])] == {"Describe"}
            assert keda[("topic", meta["topic"])] == {"Describe"}


# --------------------------------------------------------------------------------------------------
# NetworkPolicy
# --------------------------------------------------------------------------------------------------

#: Services whose code uses Redis (grep redis services/*/app.py): only they may reach it.
REDIS_USERS = {s for s in SERVICES if "redis" in (ROOT / "services" / s / "app.py").read_text().lower()}
DNS = {("UDP", 53), ("TCP", 53)}
BASE_EGRESS = DNS | {("TCP", KAFKA_TLS_PORT), ("TCP", 5432)}
NOTIFY_GATEWAYS = {("TCP", 443), ("TCP", 80), ("TCP", 25), ("TCP", 587)}


def _selects(policy: dict[str, Any], labels: dict[str, str]) -> bool:
    selector = policy["spec"]["podSelector"]
    if set(selector) - {"matchLabels"}:
        return False  # matchExpressions: not used here, so not understood
    return bool(selector.get("matchLabels", {}).items() <= labels.items())


def _ports(rule: dict[str, Any]) -> set[tuple[str, int | str]]:
    return {(p.get("protocol", "TCP"), p["port"]) for p in rule.get("ports", [])}


def network_problems(policies: list[dict[str, Any]]) -> list[str]:
    """What is wrong with the NetworkPolicies for each service pod (empty when nothing)."""
    problems: list[str] = []
    for service in SERVICES:
        labels = one("Deployment", service)["spec"]["template"]["metadata"]["labels"]
        mine = [p for p in policies if _selects(p, labels)]
        deny = [
            p for p in mine
            if set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
            and not p["spec"].get("ingress") and not p["spec"].get("egress")
        ]  # fmt: skip
        if not deny:
            problems.append(f"{service}: no default-deny policy for ingress and egress")
        ingress: set[tuple[str, tuple[str, int | str]]] = set()
        egress: set[tuple[str, int | str]] = set()
        for policy in mine:
            for rule in policy["spec"].get("ingress", []):
                peers = rule.get("from")
                if not peers or not rule.get("ports"):
                    problems.append(f"{service}: {policy['metadata']['name']} lets anyone in, or on any port")
                    continue
                for peer in peers:
                    namespace = peer.get("namespaceSelector", {}).get("matchLabels", {})
                    where = (
                        namespace.get("kubernetes.io/metadata.name", "?")
                        if set(peer) == {"namespaceSelector"}
                        else "?"
                    )
                    ingress |= {(where, port) for port in _ports(rule)}
            for rule in policy["spec"].get("egress", []):
                if not rule.get("ports"):
                    problems.append(f"{service}: {policy['metadata']['name']} lets it out on any port")
                egress |= _ports(rule)
                for peer in rule.get("to", []):
                    strimzi_labels = peer.get("podSelector", {}).get("matchLabels", {})
                    if "strimzi.io/cluster" in strimzi_labels and _ports(rule) != {("TCP", KAFKA_TLS_PORT)}:
                        problems.append(f"{service}: Kafka reached on {sorted(_ports(rule))}")
        if ingress != {("monitoring", ("TCP", HTTP_PORT))}:
            problems.append(
                f"{service}: ingress {sorted(ingress)}, want port {HTTP_PORT} from monitoring only"
            )
        want = BASE_EGRESS | ({("TCP", 6379)} if service in REDIS_USERS else set())
        want |= NOTIFY_GATEWAYS if service == "notify" else set()
        if egress != want:
            problems.append(f"{service}: egress {sorted(egress)}, want {sorted(want)}")
    return problems


def test_network_policies() -> None:
    assert {"payments"} == REDIS_USERS
    assert network_problems(find("NetworkPolicy")) == []
    bootstrap = one("ConfigMap", "aqsha-config")["data"]["AQSHA_KAFKA_BOOTSTRAP"]
    assert bootstrap.endswith(f":{KAFKA_TLS_PORT}")


@pytest.mark.parametrize(
    ("why", "name", "mutate"),
    [
        ("no default deny", "aqsha-default-deny", _set("spec.policyTypes", ["Ingress"])),
        ("ingress from anywhere", "aqsha-allow-metrics", _drop("spec.ingress.0.from")),
        (
            "ingress from another namespace",
            "aqsha-allow-metrics",
            _set(
                "spec.ingress.0.from.0.namespaceSelector.matchLabels",
                {"kubernetes.io/metadata.name": "default"},
            ),
        ),
        ("egress anywhere", "aqsha-allow-egress", _drop("spec.egress.2.ports")),
        ("plaintext Kafka", "aqsha-allow-egress", _set("spec.egress.1.ports.0.port", 9092)),
        ("no DNS", "aqsha-allow-egress", _drop("spec.egress.0")),
        (
            "Redis for everyone",
            "aqsha-allow-redis",
            _set("spec.podSelector.matchLabels", {"app.kubernetes.io/part-of": "aqsha"}),
        ),
        ("gateways for everyone", "aqsha-allow-notify-gateways", _set("spec.podSelector", {})),
    ],
)
def test_network_policy_checks_reject(why: str, name: str, mutate: Callable[[dict[str, Any]], None]) -> None:
    policies = copy.deepcopy(find("NetworkPolicy"))
    mutate(next(p for p in policies if p["metadata"]["name"] == name))
    assert network_problems(policies), why


# --------------------------------------------------------------------------------------------------
# compose
# --------------------------------------------------------------------------------------------------

COMPOSE_PATH = DEPLOY / "compose.yaml"
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


def _pinned(image: str, repository: str) -> bool:
    name, _, tag = image.partition(":")
    return name == repository and bool(re.fullmatch(r"\d+\.\d+(\.\d+)?(-[a-z0-9.]+)?", tag))


def _has_healthcheck(svc: dict[str, Any]) -> bool:
    check = svc.get("healthcheck")
    return isinstance(check, dict) and not bool(check.get("disable")) and bool(check.get("test"))


def _is_one_shot(svc: dict[str, Any]) -> bool:
    return bool(svc.get("restart", "no") == "no")


def compose_problems(doc: dict[str, Any]) -> list[str]:
    """What is wrong with a compose document (empty when nothing)."""
    problems: list[str] = []
    services: dict[str, dict[str, Any]] = doc.get("services", {})
    for name, svc in services.items():
        if not (_has_healthcheck(svc) or _is_one_shot(svc)):
            problems.append(f"{name}: neither a health check nor a one-shot")
        for dep, cond in (svc.get("depends_on") or {}).items():
            condition = cond.get("condition") if isinstance(cond, dict) else None
            if dep not in services:
                problems.append(f"{name}: depends on unknown service {dep}")
            elif condition not in CONDITIONS:
                problems.append(f"{name}: depends on {dep} without a valid condition ({condition})")
            elif condition == "service_healthy" and not _has_healthcheck(services[dep]):
                problems.append(f"{name}: waits for {dep} to be healthy, but {dep} has no health check")
            elif condition == "service_completed_successfully" and not _is_one_shot(services[dep]):
                problems.append(f"{name}: waits for {dep} to complete, but {dep} restarts")
    kafka = services.get("kafka", {})
    if not _pinned(kafka.get("image", ""), "apache/kafka"):
        problems.append(f"kafka image {kafka.get('image')} is not a pinned apache/kafka")
    kafka_env = kafka.get("environment", {})
    zookeeper = any("ZOOKEEPER" in key for key in kafka_env)
    if "controller" not in kafka_env.get("KAFKA_PROCESS_ROLES", "") or zookeeper:
        problems.append("kafka is not in KRaft mode")
    for infra, repo in (("postgres", "postgres"), ("redis", "redis")):
        if not _pinned(services.get(infra, {}).get("image", ""), repo):
            problems.append(f"{infra} image is not a pinned official {repo} image")
    topics = services.get("topics", {})
    if topics.get("command") != ["aqsha", "topics", "apply"] or not _is_one_shot(topics):
        problems.append("topics is not the one-shot `aqsha topics apply`")
    for name in SERVICES:
        if name not in services:
            problems.append(f"service {name} is missing")
            continue
        svc = services[name]
        if svc.get("command") != service_command(name):
            problems.append(f"{name}: command {svc.get('command')} does not run services.{name}")
        else:
            problems += factory_problems(svc["command"][2])
        env = svc.get("environment", {})
        wanted = {"AQSHA_HTTP_HOST": "0.0.0.0", "AQSHA_HTTP_PORT": str(HTTP_PORT)}
        wanted["AQSHA_KAFKA_IDEMPOTENT_PRODUCER"] = "true"
        for key, value in wanted.items():
            if str(env.get(key)) != value:
                problems.append(f"{name}: {key}={env.get(key)!r}, want {value!r}")
        for key in ("AQSHA_KAFKA_BOOTSTRAP", "AQSHA_PG_DSN", "AQSHA_REDIS_URL"):
            if not env.get(key):
                problems.append(f"{name}: {key} is not set")
        if not str(env.get("AQSHA_KAFKA_BOOTSTRAP", "")).startswith("kafka:"):
            problems.append(f"{name}: AQSHA_KAFKA_BOOTSTRAP does not point at the kafka service")
        if not _has_healthcheck(svc) or "/health/ready" not in " ".join(svc["healthcheck"]["test"]):
            problems.append(f"{name}: health check is not GET /health/ready")
        deps = svc.get("depends_on") or {}
        for dep, condition in (
            ("kafka", "service_healthy"),
            ("postgres", "service_healthy"),
            ("topics", "service_completed_successfully"),
        ):
            if (deps.get(dep) or {}).get("condition") != condition:
                problems.append(f"{name}: does not wait for {dep} ({condition})")
    return problems + compose_security_problems(doc)


#: The compose broker's super user (deploy/kafka/broker_jaas.conf): administration only.
COMPOSE_ADMIN = "admin"
KAFKA_INIT = "kafka-init"


def _script_users(text: str) -> list[str]:
    """The SCRAM users a kafka-init script creates (its `user NAME ...` lines)."""
    return re.findall(r"^user (\S+) ", text, re.MULTILINE)


def compose_security_problems(doc: dict[str, Any]) -> list[str]:
    """Least privilege in compose: authenticated Kafka with ACLs, one user and one database role each."""
    problems: list[str] = []
    services: dict[str, dict[str, Any]] = doc.get("services", {})
    kafka_env = services.get("kafka", {}).get("environment", {})
    protocols = dict(
        item.split(":", 1) for item in kafka_env.get("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "").split(",")
    )
    listeners = [item.split("://", 1)[0] for item in kafka_env.get("KAFKA_LISTENERS", "").split(",") if item]
    for listener in listeners:
        if not protocols.get(listener, "").startswith("SASL_"):
            problems.append(f"kafka listener {listener} does not authenticate ({protocols.get(listener)})")
    if (
        kafka_env.get("KAFKA_AUTHORIZER_CLASS_NAME")
        != "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    ):
        problems.append("kafka has no ACLs (KRaft's StandardAuthorizer)")
    if kafka_env.get("KAFKA_SUPER_USERS") != f"User:{COMPOSE_ADMIN}":
        problems.append(
            f"kafka super users {kafka_env.get('KAFKA_SUPER_USERS')!r}, want User:{COMPOSE_ADMIN} alone"
        )
    if str(kafka_env.get("KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND", "false")) != "false":
        problems.append("kafka allows everyone where no ACL is found")
    init = services.get(KAFKA_INIT, {})
    init_env = init.get("environment", {})
    script = next(
        (v for v in init.get("volumes", []) if v.split(":")[1:2] == [init.get("command", ["", ""])[-1]]), ""
    )
    if init.get("image") != services.get("kafka", {}).get("image") or not _is_one_shot(init):
        problems.append(f"{KAFKA_INIT} is not a one-shot of the broker's image")
    if script.split(":", 1)[0] != "./kafka/kafka-init.sh":
        problems.append(f"{KAFKA_INIT} does not run deploy/kafka/kafka-init.sh")
    if (services.get("topics", {}).get("depends_on") or {}).get(KAFKA_INIT, {}).get("condition") != (
        "service_completed_successfully"
    ):
        problems.append(f"topics does not wait for {KAFKA_INIT}")
    created = _script_users(strimzi.COMPOSE_ACLS_OUTPUT.read_text())
    registry_users = {kafka_acls.kafka_user(p): p for p in PRINCIPALS}
    for user in created:
        # admin is the broker's super user (its SCRAM login serves make run's local tools, dev only).
        if user not in registry_users and user != COMPOSE_ADMIN:
            problems.append(f"{KAFKA_INIT} creates {user}, not a registry principal's user")
    postgres = services.get("postgres", {})
    if not any(
        v.startswith("./postgres/roles.sql:/docker-entrypoint-initdb.d/") for v in postgres.get("volumes", [])
    ):
        problems.append("postgres does not create the roles of deploy/postgres/roles.sql")
    for name in SERVICES:
        env = services.get(name, {}).get("environment", {})
        user = str(env.get("AQSHA_KAFKA_SASL_USERNAME"))
        if not str(env.get("AQSHA_KAFKA_SECURITY_PROTOCOL", "")).startswith("SASL_"):
            problems.append(f"{name}: Kafka without SASL")
        if env.get("AQSHA_KAFKA_SASL_MECHANISM") != "SCRAM-SHA-512":
            problems.append(
                f"{name}: SASL mechanism {env.get('AQSHA_KAFKA_SASL_MECHANISM')}, want SCRAM-SHA-512"
            )
        if user not in registry_users:
            problems.append(f"{name}: Kafka user {user} is not a registry principal's user")
        elif registry_users[user] != name:
            problems.append(f"{name}: logs in to Kafka as {user}, the user of {registry_users[user]}")
        if user not in created:
            problems.append(f"{name}: {KAFKA_INIT} does not create its user {user}")
        variable = kafka_acls.password_variable(name)
        if not env.get("AQSHA_KAFKA_SASL_PASSWORD") or env.get("AQSHA_KAFKA_SASL_PASSWORD") != init_env.get(
            variable
        ):
            problems.append(f"{name}: its Kafka password is not the one {KAFKA_INIT} sets ({variable})")
        dsn = str(env.get("AQSHA_PG_DSN", ""))
        role = re.match(r"postgresql://([^:@/]+)(?::([^@]*))?@", dsn)
        if role is None or role.group(1) != f"aqsha_{name}":
            problems.append(f"{name}: does not connect to PostgreSQL as its role aqsha_{name}")
        elif role.group(2) != postgres.get("environment", {}).get(f"AQSHA_PG_PASSWORD_{name.upper()}"):
            problems.append(f"{name}: its database password is not the one postgres sets")
    return problems


def test_compose_structure() -> None:
    doc = yaml.safe_load(COMPOSE_PATH.read_text())
    assert compose_problems(doc) == []
    services = doc["services"]
    assert (services["payments"]["depends_on"]["redis"]["condition"]) == "service_healthy"
    notify_env = services["notify"]["environment"]
    assert notify_env["AQSHA_PUSH_WEBHOOK_URL"].startswith("http://gateways:")
    assert notify_env["AQSHA_SMTP_HOST"] == "gateways"
    for svc in services.values():
        build = svc.get("build")
        if build:
            assert (COMPOSE_PATH.parent / build["context"]).resolve() == ROOT
            assert (ROOT / build["dockerfile"]).is_file()
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (COMPOSE_PATH.parent / source).is_file(), volume


def test_compose_users_are_registry_principals() -> None:
    doc = yaml.safe_load(COMPOSE_PATH.read_text())
    services = doc["services"]
    registry_users = {kafka_acls.kafka_user(p) for p in PRINCIPALS}
    created = _script_users(strimzi.COMPOSE_ACLS_OUTPUT.read_text())
    assert created == [COMPOSE_ADMIN, *(kafka_acls.kafka_user(p) for p in kafka_acls.COMPOSE_PRINCIPALS)]
    assert set(created) - {COMPOSE_ADMIN} <= registry_users
    logins = {
        str(svc["environment"]["AQSHA_KAFKA_SASL_USERNAME"])
        for svc in services.values()
        if isinstance(svc.get("environment"), dict) and "AQSHA_KAFKA_SASL_USERNAME" in svc["environment"]
    }
    assert logins - {COMPOSE_ADMIN} <= registry_users, "every Kafka login is a registry principal's user"
    admins = {
        n
        for n, svc in services.items()
        if (svc.get("environment") or {}).get("AQSHA_KAFKA_SASL_USERNAME") == COMPOSE_ADMIN
    }
    assert admins == {"topics"}, "only the topic one-shot administers the broker"
    # the one-shot passes every user's password; the dev-only admin password agrees everywhere
    init_env = services[KAFKA_INIT]["environment"]
    assert {kafka_acls.password_variable(p) for p in kafka_acls.COMPOSE_PRINCIPALS} <= init_env.keys()
    admin_password = services["topics"]["environment"]["AQSHA_KAFKA_SASL_PASSWORD"]
    assert admin_password.startswith("dev-only-")
    jaas = (DEPLOY / "kafka" / "broker_jaas.conf").read_text()
    admin_properties = (DEPLOY / "kafka" / "admin.properties").read_text()
    assert f'username="{COMPOSE_ADMIN}"' in jaas
    assert f'password="{admin_password}"' in jaas
    assert f'user_{COMPOSE_ADMIN}="{admin_password}"' in jaas
    assert f'username="{COMPOSE_ADMIN}" password="{admin_password}"' in admin_properties
    assert "KafkaServer" in jaas
    # .env.example documents exactly the variables compose reads, with dev-only values
    example = dict(
        line.split("=", 1)
        for line in (DEPLOY / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    used = set(re.findall(r"\$\{(\w+):-", COMPOSE_PATH.read_text()))
    assert set(example) == used
    assert all(value.startswith("dev-only-") for value in example.values())
    for variable, value in example.items():
        assert f"${{{variable}:-{value}}}" in COMPOSE_PATH.read_text(), (
            f"{variable}: default differs from .env.example"
        )


def test_kafka_init_script_is_consistent() -> None:
    text = strimzi.COMPOSE_ACLS_OUTPUT.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert "*" not in re.sub(r"#.*", "", text).replace('"$@"', "").replace("${ops[@]}", ""), "no wildcard ACL"
    for principal in kafka_acls.COMPOSE_PRINCIPALS:
        assert (
            f'user {kafka_acls.kafka_user(principal)} "${{{kafka_acls.password_variable(principal)}:?' in text
        )


def test_topics_command_is_the_console_script() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["aqsha"] == "shared.ops.cli:main"
    assert factory_problems(scripts["aqsha"]) == []


@pytest.mark.parametrize(
    ("why", "mutate"),
    [
        ("unknown dependency", _set("services.payments.depends_on.nope", {"condition": "service_healthy"})),
        ("bad condition", _set("services.bonus.depends_on.kafka", {"condition": "service_ready"})),
        ("no health check", _drop("services.billing.healthcheck")),
        ("healthy one-shot", _set("services.notify.depends_on.topics", {"condition": "service_healthy"})),
        ("restarting one-shot", _set("services.topics.restart", "always")),
        ("confluent image", _set("services.kafka.image", "confluentinc/cp-kafka:7.6.0")),
        ("unpinned kafka", _set("services.kafka.image", "apache/kafka:latest")),
        ("zookeeper", _set("services.kafka.environment.KAFKA_PROCESS_ROLES", "broker")),
        ("wrong factory", _set("services.bonus.command.2", "services.bonus.app:make_app")),
        ("loopback http", _set("services.notify.environment.AQSHA_HTTP_HOST", "127.0.0.1")),
        ("no topics wait", _drop("services.payments.depends_on.topics")),
        (
            "plaintext listener",
            _set(
                "services.kafka.environment.KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
                "CONTROLLER:SASL_PLAINTEXT,INTERNAL:PLAINTEXT,EXTERNAL:SASL_PLAINTEXT",
            ),
        ),
        ("no authorizer", _drop("services.kafka.environment.KAFKA_AUTHORIZER_CLASS_NAME")),
        (
            "anonymous super user",
            _set("services.kafka.environment.KAFKA_SUPER_USERS", "User:admin;User:ANONYMOUS"),
        ),
        ("allow if no ACL", _set("services.kafka.environment.KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND", "true")),
        ("no users", _drop("services.kafka-init")),
        ("topics before users", _drop("services.topics.depends_on.kafka-init")),
        (
            "service without SASL",
            _set("services.bonus.environment.AQSHA_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT"),
        ),
        ("PLAIN service", _set("services.bonus.environment.AQSHA_KAFKA_SASL_MECHANISM", "PLAIN")),
        (
            "another service's user",
            _set("services.billing.environment.AQSHA_KAFKA_SASL_USERNAME", "aqsha-payments"),
        ),
        ("the super user", _set("services.notify.environment.AQSHA_KAFKA_SASL_USERNAME", COMPOSE_ADMIN)),
        (
            "the operators' user",
            _set("services.payments.environment.AQSHA_KAFKA_SASL_USERNAME", "aqsha-operators"),
        ),
        ("password mismatch", _set("services.bonus.environment.AQSHA_KAFKA_SASL_PASSWORD", "guess")),
        (
            "the owner's DSN",
            _set(
                "services.payments.environment.AQSHA_PG_DSN", "postgresql://aqsha:aqsha@postgres:5432/aqsha"
            ),
        ),
        (
            "another role",
            _set(
                "services.bonus.environment.AQSHA_PG_DSN",
                "postgresql://aqsha_payments:${AQSHA_PG_PASSWORD_PAYMENTS:-dev-only-pg-payments}@postgres:5432/aqsha",
            ),
        ),
        ("no roles", _set("services.postgres.volumes", [])),
    ],
)
def test_compose_checks_reject(why: str, mutate: Callable[[dict[str, Any]], None]) -> None:
    doc = copy.deepcopy(yaml.safe_load(COMPOSE_PATH.read_text()))
    # YAML anchors share one object between services: unshare them before mutating one service.
    doc = yaml.safe_load(yaml.safe_dump(doc))
    mutate(doc)
    assert compose_problems(doc), why


# --------------------------------------------------------------------------------------------------
# Dockerfile
# --------------------------------------------------------------------------------------------------

DOCKERFILE = DEPLOY / "Dockerfile"


def dockerfile_problems(text: str) -> list[str]:
    """What is wrong with the Dockerfile text (empty when nothing)."""
    lines = [line.strip() for line in text.replace("\\\n", " ").splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    froms = [i for i, line in enumerate(instructions) if line.upper().startswith("FROM ")]
    problems: list[str] = []
    if len(froms) < 2:
        return ["not a multi-stage build"]
    final = instructions[froms[-1] :]
    users = [line.split(None, 1)[1] for line in final if line.upper().startswith("USER ")]
    if not users:
        problems.append("the final stage has no USER")
    elif users[-1].split(":")[0] in {"root", "0"}:
        problems.append("the final stage runs as root")
    if not any(line.upper().startswith("COPY --FROM=") for line in final):
        problems.append("the final stage copies nothing from the builder")
    if not any("uv sync" in line and "--frozen" in line and "--no-dev" in line for line in instructions):
        problems.append("no `uv sync --frozen --no-dev`")
    if any("uv" in line.split() for line in final if line.upper().startswith("RUN ")):
        problems.append("uv runs in the final stage")
    return problems


def test_dockerfile() -> None:
    text = DOCKERFILE.read_text()
    assert dockerfile_problems(text) == []
    makefile_uv = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    docker_uv = re.search(r"^ARG UV_VERSION=(\S+)$", text, re.MULTILINE)
    assert makefile_uv
    assert docker_uv
    assert docker_uv.group(1) == makefile_uv.group(1), "the image must use the Makefile's pinned uv"
    base = re.search(r"^ARG PYTHON_IMAGE=python:(\S+)$", text, re.MULTILINE)
    assert base
    assert re.match(r"\d+\.\d+\.\d+-slim", base.group(1)), "pin the Python base image"
    assert "USER 10001" in text, "numeric uid, matching runAsUser in deploy/k8s"
    for name in SERVICES:
        run_as = one("Deployment", name)["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
        assert run_as == 10001


@pytest.mark.parametrize(
    "text",
    [
        "FROM python:3.11-slim\nRUN pip install uv && uv sync --frozen --no-dev\nUSER 10001\n",
        "FROM python:3.11 AS builder\nRUN uv sync --frozen --no-dev\nFROM python:3.11-slim\n"
        "COPY --from=builder /app/.venv /app/.venv\n",
        "FROM python:3.11 AS builder\nRUN uv sync --frozen --no-dev\nFROM python:3.11-slim\n"
        "COPY --from=builder /app/.venv /app/.venv\nUSER root\n",
        "FROM python:3.11 AS builder\nRUN uv sync\nFROM python:3.11-slim\n"
        "COPY --from=builder /app/.venv /app/.venv\nUSER 10001\n",
    ],
    ids=["single-stage", "no-user", "root-user", "unlocked-sync"],
)
def test_dockerfile_checks_reject(text: str) -> None:
    assert dockerfile_problems(text)


def test_dockerignore_keeps_the_build_inputs() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "allow-list: nothing enters the context unless listed"
    for needed in ("pyproject.toml", "uv.lock", "README.md", "shared", "services"):
        assert f"!{needed}" in patterns, needed
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE.read_text(), re.MULTILINE)
    for sources in copied:
        for source in sources.split():
            assert f"!{source}" in patterns, f"{source} is copied but excluded from the build context"
