"""deploy/: the image, the compose stack and the Kubernetes manifests, checked statically.

Core Kubernetes kinds are validated with ``kubernetes_validate`` (bundled JSON schemas, strict: an
unknown or misspelt field fails) against a pinned Kubernetes version. ``kubernetes_validate`` has no
schema for custom resources and raises ``SchemaNotFoundError`` for them (its CLI only *warns*, which
would let a broken ScaledObject through), so KEDA ``ScaledObject``, Strimzi ``KafkaTopic`` and the
``Kustomization`` are validated against the small schemas below, written from the fields the CRDs
document. Every check is a function returning its problems, and each has a negative test showing it
rejects a broken input.
"""

from __future__ import annotations

import copy
import importlib
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
from shared.ops import strimzi
from shared.topics import PAYMENTS_EVENTS, TopicSpec, all_topics, topic_by_name

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
#: The Kubernetes version the manifests target (one that kubernetes_validate 1.37 bundles).
K8S_VERSION = "1.33.0"
SERVICES = ("payments", "bonus", "billing", "notify")
HTTP_PORT = 8080

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

KAFKA_TOPIC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "kafka.strimzi.io/v1beta2"},
        "kind": {"const": "KafkaTopic"},
        "metadata": {
            "allOf": [
                _METADATA,
                # The topic operator only reconciles topics labelled with their Kafka cluster.
                {
                    "required": ["labels"],
                    "properties": {"labels": {"required": ["strimzi.io/cluster"]}},
                },
            ]
        },
        "spec": {
            "type": "object",
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

CUSTOM_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("keda.sh/v1alpha1", "ScaledObject"): SCALED_OBJECT_SCHEMA,
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"): KAFKA_TOPIC_SCHEMA,
    ("kustomize.config.k8s.io/v1beta1", "Kustomization"): KUSTOMIZATION_SCHEMA,
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
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


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
        "topics.yaml",
        "kustomization.yaml",
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


def test_secret_example_holds_placeholders_only() -> None:
    secret = one("Secret", "aqsha-secrets")
    assert "data" not in secret, "base64 data could hide a real value; use stringData placeholders"
    values = secret["stringData"]
    assert {"AQSHA_PG_DSN", "AQSHA_OTP_HASH_KEY"} <= values.keys()
    for key, value in values.items():
        assert "CHANGE_ME" in value, f"{key} is not a placeholder"


def test_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    kustomization = load_docs(K8S / "kustomization.yaml")[0]
    resources = kustomization["resources"]
    assert all((K8S / r).is_file() for r in resources)
    expected = {p.name for p in MANIFEST_FILES} - {"kustomization.yaml", "secret.example.yaml"}
    assert set(resources) == expected
    namespaced = [d for _, d in ALL_DOCS if d["kind"] not in ("Namespace", "Kustomization")]
    assert all(d["metadata"]["namespace"] == kustomization["namespace"] == "aqsha" for d in namespaced)
    images = {_container(one("Deployment", s))["image"].rsplit(":", 1)[0] for s in SERVICES}
    assert images == {i["name"] for i in kustomization["images"]}, "one image for every service"


# --------------------------------------------------------------------------------------------------
# KEDA: consumer groups, topics and the partition cap
# --------------------------------------------------------------------------------------------------


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
    assert len(docs) == 2 * len([s for s in all_topics() if not s.is_dlq])


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
