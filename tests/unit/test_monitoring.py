"""deploy/observability: the Prometheus alert rules and the Grafana dashboard, checked statically.

The rules file and the dashboard are validated against small hand-written JSON schemas (the fields
Prometheus and Grafana read), every PromQL expression is parsed with a real PromQL parser
(``promql-parser``, bindings of the Rust parser: syntax, function arity and argument types), and
every metric and label an expression uses must be one ``shared.observability.Metrics`` really
exports, so a renamed metric or a misspelt label fails here rather than as an alert that never
fires. The PrometheusRule of deploy/k8s must be the rules file's groups, regenerated. (Where
Prometheus is installed, ``promtool check rules deploy/observability/aqsha-rules.yaml`` agrees; it is
not a test here, since a fresh machine lacks it.) Every check is a function returning its
problems, and each has a negative test showing it rejects a broken input.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import jsonschema
import promql_parser
import pytest
import yaml

from shared.observability import BUSINESS_DAY_FACTS, Metrics
from shared.ops import monitoring
from shared.trust import REASONS as TRUST_REASONS

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
RULES_FILE = monitoring.RULES
DASHBOARD_FILE = monitoring.DASHBOARD
DOCS = ROOT / "docs" / "observability.md"

#: Every series the services expose, with its labels.
EXPORTED = Metrics("test").exported()
#: Labels Prometheus adds to every scraped series (kubernetes_sd with the Prometheus Operator's
#: ServiceMonitor; its ``service`` target label is not among them: honorLabels keeps the services').
TARGET_LABELS = frozenset({"job", "instance", "namespace", "pod", "container", "endpoint"})
#: Series Prometheus itself makes for every target.
GENERATED = {"up": (), "scrape_duration_seconds": (), "scrape_samples_scraped": ()}
TRUST_REGEX = "|".join(TRUST_REASONS)
SEVERITIES = ("critical", "warning")
#: What operators asked alerts for (the issue): each must exist.
REQUIRED_ALERTS = {
    "AqshaConsumerLagGrowing",  # lag growing
    "AqshaPartitionStalled",  # a partition stalled
    "AqshaForgedRecords",  # dead letters of any trust reason: page
    "AqshaOutboxBacklogGrowing",
    "AqshaNotReady",  # readiness failing
    "AqshaServiceUnavailable",
    "AqshaHandlerErrorRate",
}

# --------------------------------------------------------------------------------------------------
# Schemas
# --------------------------------------------------------------------------------------------------

_DURATION = {"type": "string", "pattern": r"^([0-9]+(ms|s|m|h|d|w|y))+$"}
_STRING_MAP: dict[str, Any] = {"type": "object", "additionalProperties": {"type": "string"}}

#: A Prometheus rules file (https://prometheus.io/docs/prometheus/latest/configuration/alerting_rules/).
RULES_SCHEMA: dict[str, Any] = {
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
                    "interval": _DURATION,
                    "limit": {"type": "integer", "minimum": 0},
                    "query_offset": _DURATION,
                    "labels": _STRING_MAP,
                    "rules": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["expr"],
                            "additionalProperties": False,
                            "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
                            "properties": {
                                "alert": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"},
                                "record": {"type": "string", "pattern": r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"},
                                "expr": {"type": "string", "minLength": 1},
                                "for": _DURATION,
                                "keep_firing_for": _DURATION,
                                "labels": _STRING_MAP,
                                "annotations": _STRING_MAP,
                            },
                        },
                    },
                },
            },
        }
    },
}

_DATASOURCE = {
    "type": "object",
    "required": ["type", "uid"],
    "properties": {"type": {"const": "prometheus"}, "uid": {"const": "${datasource}"}},
}
_GRID_POS = {
    "type": "object",
    "required": ["h", "w", "x", "y"],
    "additionalProperties": False,
    "properties": {
        "h": {"type": "integer", "minimum": 1},
        "w": {"type": "integer", "minimum": 1, "maximum": 24},
        "x": {"type": "integer", "minimum": 0, "maximum": 23},
        "y": {"type": "integer", "minimum": 0},
    },
}
_TARGET = {
    "type": "object",
    "required": ["refId", "expr", "datasource"],
    "properties": {
        "refId": {"type": "string", "pattern": "^[A-Z]$"},
        "expr": {"type": "string", "minLength": 1},
        "datasource": _DATASOURCE,
        "legendFormat": {"type": "string"},
        "instant": {"type": "boolean"},
        "range": {"type": "boolean"},
    },
}
_THRESHOLD_STEP = {
    "type": "object",
    "required": ["color", "value"],
    "properties": {"color": {"type": "string"}, "value": {"type": ["number", "null"]}},
}

#: The fields of Grafana's dashboard JSON model that Grafana needs to import and draw this dashboard
#: (https://grafana.com/docs/grafana/latest/dashboards/build-dashboards/view-dashboard-json-model/).
DASHBOARD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["title", "uid", "schemaVersion", "panels", "templating", "time", "timezone"],
    "properties": {
        "title": {"type": "string", "minLength": 1},
        "uid": {"type": "string", "pattern": r"^[a-zA-Z0-9_-]{1,40}$"},
        "schemaVersion": {"type": "integer", "minimum": 36},
        "version": {"type": "integer"},
        "editable": {"type": "boolean"},
        "graphTooltip": {"enum": [0, 1, 2]},
        "refresh": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "timezone": {"type": "string"},
        "time": {
            "type": "object",
            "required": ["from", "to"],
            "properties": {"from": {"type": "string"}, "to": {"type": "string"}},
        },
        "templating": {
            "type": "object",
            "required": ["list"],
            "properties": {
                "list": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "type"],
                        "properties": {
                            "name": {"type": "string", "pattern": r"^\w+$"},
                            "type": {"enum": ["datasource", "query", "custom", "constant", "interval"]},
                        },
                        "allOf": [
                            {
                                "if": {"properties": {"type": {"const": "datasource"}}},
                                "then": {
                                    "required": ["query"],
                                    "properties": {"query": {"const": "prometheus"}},
                                },
                            },
                            {
                                "if": {"properties": {"type": {"const": "query"}}},
                                "then": {"required": ["query", "datasource"]},
                            },
                        ],
                    },
                }
            },
        },
        "panels": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["id", "type", "title", "gridPos"],
                "properties": {
                    "id": {"type": "integer", "minimum": 1},
                    "type": {"enum": ["row", "timeseries", "stat", "bargauge", "table", "state-timeline"]},
                    "title": {"type": "string", "minLength": 1},
                    "description": {"type": "string"},
                    "gridPos": _GRID_POS,
                    "datasource": _DATASOURCE,
                    "targets": {"type": "array", "minItems": 1, "items": _TARGET},
                    "fieldConfig": {
                        "type": "object",
                        "required": ["defaults"],
                        "properties": {
                            "defaults": {
                                "type": "object",
                                "properties": {
                                    "unit": {"type": "string"},
                                    "thresholds": {
                                        "type": "object",
                                        "required": ["mode", "steps"],
                                        "properties": {
                                            "mode": {"enum": ["absolute", "percentage"]},
                                            "steps": {
                                                "type": "array",
                                                "minItems": 1,
                                                "items": _THRESHOLD_STEP,
                                            },
                                        },
                                    },
                                },
                            },
                            "overrides": {"type": "array"},
                        },
                    },
                },
                "if": {"properties": {"type": {"const": "row"}}},
                "then": {"required": ["collapsed", "panels"]},
                "else": {"required": ["datasource", "targets"]},
            },
        },
    },
}

# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


def load_rules() -> dict[str, Any]:
    """The plain rules file."""
    doc: dict[str, Any] = yaml.safe_load(RULES_FILE.read_text())
    return doc


def load_dashboard() -> dict[str, Any]:
    """The Grafana dashboard."""
    doc: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text())
    return doc


def alerts(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The alerting rules of a rules document, by name."""
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"] if "alert" in r}


# --------------------------------------------------------------------------------------------------
# PromQL: syntax, metric names and labels
# --------------------------------------------------------------------------------------------------


def _selectors(expr: Any) -> list[Any]:
    found: list[Any] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)

    promql_parser.walk(expr, visit)
    return found


def _aggregations(expr: Any) -> list[Any]:
    found: list[Any] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.AggregateExpr):
            found.append(node)

    promql_parser.walk(expr, visit)
    return found


def _labels_of(name: str) -> set[str] | None:
    """The labels series ``name`` carries once scraped; ``None`` if nothing exports it."""
    if name in EXPORTED:
        return set(EXPORTED[name]) | TARGET_LABELS
    if name in GENERATED:
        return set(GENERATED[name]) | TARGET_LABELS
    return None


#: Aggregations that keep the labels of the series they pick.
_SELECTING = {"topk", "bottomk", "limitk", "limit_ratio"}


def _is_scalar(node: Any) -> bool:
    if isinstance(node, promql_parser.ParenExpr):
        return _is_scalar(node.expr)
    if isinstance(node, promql_parser.Call):
        return str(node.func.return_type).endswith("Scalar")
    return isinstance(node, promql_parser.NumberLiteral)


def result_labels(node: Any) -> set[str]:
    """The labels the result of a parsed expression carries (what ``$labels`` can name)."""
    if isinstance(node, promql_parser.VectorSelector):
        return _labels_of(node.name or "") or set()
    if isinstance(node, promql_parser.MatrixSelector):
        return result_labels(node.vector_selector)
    if isinstance(node, promql_parser.ParenExpr | promql_parser.UnaryExpr | promql_parser.SubqueryExpr):
        return result_labels(node.expr)
    if isinstance(node, promql_parser.AggregateExpr):
        inner = result_labels(node.expr)
        if str(node.op) in _SELECTING:
            return inner
        if node.modifier is None:
            return set()
        labels = set(node.modifier.labels)
        return labels if str(node.modifier.type).endswith("By") else inner - labels
    if isinstance(node, promql_parser.Call):
        vectors = [result_labels(a) for a in node.args if not _is_scalar(a)]
        labels = vectors[0] if vectors else set()
        return labels - {"le"} if node.func.name == "histogram_quantile" else labels
    if isinstance(node, promql_parser.BinaryExpr):
        lhs, rhs = result_labels(node.lhs), result_labels(node.rhs)
        if str(node.op) == "or":
            return lhs | rhs
        if _is_scalar(node.lhs):
            return rhs
        return lhs  # one-to-one matching and and/unless keep the left side's labels
    return set()


def expr_problems(expr: str) -> list[str]:
    """What is wrong with one PromQL expression: syntax, unknown metrics, labels they do not have."""
    try:
        parsed = promql_parser.parse(expr)
    except ValueError as exc:
        return [f"does not parse: {exc}"]
    problems: list[str] = []
    names: list[str] = []
    for selector in _selectors(parsed):
        if not selector.name:
            problems.append(f"selector {selector} names no metric")
            continue
        labels = _labels_of(selector.name)
        if labels is None:
            problems.append(f"{selector.name} is not exported by shared.observability")
            continue
        names.append(selector.name)
        for matcher in selector.matchers.matchers:
            if matcher.name not in labels:
                problems.append(f"{selector.name} has no label {matcher.name!r}")
    if not names:
        problems.append("uses no aqsha metric")
    available = set().union(*(_labels_of(n) or set() for n in names)) if names else set()
    for aggregation in _aggregations(parsed):
        if aggregation.modifier is None:
            continue
        for label in aggregation.modifier.labels:
            if label not in available:
                problems.append(f"aggregates by {label!r}, which none of its series has")
    return problems


def trust_matchers(expr: str) -> list[tuple[str, str]]:
    """``(operator, value)`` of every ``reason`` regex matcher on ``aqsha_dead_letters_total``."""
    found = []
    for selector in _selectors(promql_parser.parse(expr)):
        if selector.name != "aqsha_dead_letters_total":
            continue
        for m in selector.matchers.matchers:
            op = str(m.op)
            if m.name == "reason" and op in ("MatchOp.Re", "MatchOp.NotRe"):
                found.append((op.removeprefix("MatchOp."), m.value))
    return found


# --------------------------------------------------------------------------------------------------
# Alert rules
# --------------------------------------------------------------------------------------------------


def rules_problems(doc: dict[str, Any]) -> list[str]:
    """What is wrong with a Prometheus rules document."""
    try:
        jsonschema.Draft202012Validator(RULES_SCHEMA).validate(doc)
    except jsonschema.ValidationError as exc:
        return [f"schema: {exc.message} at {list(exc.absolute_path)}"]
    problems: list[str] = []
    seen: set[str] = set()
    for group in doc["groups"]:
        if group["name"] in seen:
            problems.append(f"group {group['name']} twice")
        seen.add(group["name"])
    names = [r["alert"] for g in doc["groups"] for r in g["rules"] if "alert" in r]
    if len(names) != len(set(names)):
        problems.append("an alert name is used twice")
    for name, rule in alerts(doc).items():
        severity = rule.get("labels", {}).get("severity")
        if severity not in SEVERITIES:
            problems.append(f"{name}: severity {severity!r} is not one of {SEVERITIES}")
        notes = rule.get("annotations", {})
        for key in ("summary", "description", "runbook"):
            if not notes.get(key):
                problems.append(f"{name}: no {key} annotation")
        if notes.get("runbook") and notes["runbook"] != f"docs/observability.md#{name.lower()}":
            problems.append(f"{name}: runbook is not docs/observability.md#{name.lower()}")
        expr_errors = expr_problems(rule["expr"])
        problems += [f"{name}: {p}" for p in expr_errors]
        if expr_errors:
            continue
        labels = result_labels(promql_parser.parse(rule["expr"]))
        for text in notes.values():
            for used in re.findall(r"\$labels\.(\w+)", text):
                if used not in labels:
                    problems.append(f"{name}: annotation uses $labels.{used}, which the result lacks")
        for op, value in trust_matchers(rule["expr"]):
            if value != TRUST_REGEX:
                problems.append(f"{name}: reason{op}{value!r} is not exactly shared.trust.REASONS")
    missing = REQUIRED_ALERTS - set(names)
    if missing:
        problems.append(f"missing alerts: {sorted(missing)}")
    forged = alerts(doc).get("AqshaForgedRecords")
    if forged is not None:
        if trust_matchers(forged["expr"]) != [("Re", TRUST_REGEX)]:
            problems.append("AqshaForgedRecords does not select every trust reason")
        if forged.get("labels", {}).get("severity") != "critical" or forged.get("for", "0s") not in (
            "0s",
            "0m",
        ):
            problems.append("AqshaForgedRecords must page at once (critical, no for)")
    return problems


def test_rules_file_is_valid() -> None:
    assert rules_problems(load_rules()) == []


def test_every_alert_has_a_runbook_section_in_the_docs() -> None:
    headings = {
        line.removeprefix("### ").strip() for line in DOCS.read_text().splitlines() if line.startswith("### ")
    }
    assert set(alerts(load_rules())) <= headings


def test_prometheus_rule_is_the_rules_file_regenerated() -> None:
    assert monitoring.main(["--check"]) == 0, "run: python -m shared.ops.monitoring"
    rule = yaml.safe_load(monitoring.OUTPUT.read_text())
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"] == load_rules()


def test_prometheus_rule_check_fails_on_drift(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "prometheusrule.yaml"
    stale.write_text(monitoring.OUTPUT.read_text().replace("for: 15m", "for: 1h", 1))
    monkeypatch.setattr(monitoring, "OUTPUT", stale)
    assert monitoring.main(["--check"]) == 1
    assert monitoring.main([]) == 0  # regenerates
    assert monitoring.main(["--check"]) == 0


def test_render_refuses_a_rules_file_it_cannot_nest() -> None:
    with pytest.raises(ValueError, match="groups"):
        monitoring.render("rules: []\n")
    with pytest.raises(ValueError, match="second top-level"):
        monitoring.render("groups: []\nextra: 1\n")


def _rule(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def pick(doc: dict[str, Any]) -> dict[str, Any]:
        return alerts(doc)[name]

    return pick


BROKEN_RULES: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("syntax error", lambda d: _rule("AqshaNotReady")(d).update(expr="aqsha_ready ==")),
    ("rate of a vector", lambda d: _rule("AqshaNotReady")(d).update(expr="rate(aqsha_ready) > 0")),
    ("renamed metric", lambda d: _rule("AqshaNotReady")(d).update(expr="aqsha_is_ready == 0")),
    (
        "retried is no outcome label any more",
        lambda d: _rule("AqshaHandlerErrorRate")(d).update(
            expr='rate(aqsha_messages_handled_total{outcom="retried"}[5m]) > 0'
        ),
    ),
    ("label it lacks", lambda d: _rule("AqshaNotReady")(d).update(expr='aqsha_ready{topic="x"} == 0')),
    (
        "aggregates by a label it lacks",
        lambda d: _rule("AqshaNotReady")(d).update(expr="max by (topic) (aqsha_ready) == 0"),
    ),
    ("no severity", lambda d: _rule("AqshaNotReady")(d)["labels"].clear()),
    ("severity not routed", lambda d: _rule("AqshaNotReady")(d)["labels"].update(severity="info")),
    ("no runbook", lambda d: _rule("AqshaNotReady")(d)["annotations"].pop("runbook")),
    ("misspelt field", lambda d: _rule("AqshaNotReady")(d).update(fro="5m")),
    ("bad duration", lambda d: _rule("AqshaNotReady")(d).update({"for": "5 minutes"})),
    (
        "annotation label the result lacks",
        lambda d: _rule("AqshaServiceUnavailable")(d)["annotations"].update(summary="{{ $labels.pod }}"),
    ),
    (
        "a trust reason left out",
        lambda d: _rule("AqshaForgedRecords")(d).update(
            expr=_rule("AqshaForgedRecords")(d)["expr"].replace("unsigned|", "")
        ),
    ),
    (
        "a trust reason left out of the non-trust alert",
        lambda d: _rule("AqshaDeadLetters")(d).update(
            expr=_rule("AqshaDeadLetters")(d)["expr"].replace("|key_mismatch", "")
        ),
    ),
    ("forged records wait", lambda d: _rule("AqshaForgedRecords")(d).update({"for": "10m"})),
    ("required alert gone", lambda d: d["groups"][0]["rules"].pop(0)),
    ("duplicate alert", lambda d: d["groups"][1]["rules"].append(copy.deepcopy(d["groups"][0]["rules"][0]))),
]


@pytest.mark.parametrize(("why", "mutate"), BROKEN_RULES, ids=[w for w, _ in BROKEN_RULES])
def test_rules_checks_reject(why: str, mutate: Callable[[dict[str, Any]], None]) -> None:
    doc = copy.deepcopy(load_rules())
    mutate(doc)
    assert rules_problems(doc), why


# --------------------------------------------------------------------------------------------------
# Dashboard
# --------------------------------------------------------------------------------------------------

#: Grafana's built-in interval variables, replaced by a duration before parsing.
GRAFANA_INTERVALS = {"__rate_interval", "__interval", "__range"}

#: What the dashboard must show, as the metric each needs.
REQUIRED_METRICS = {
    "aqsha_consumer_lag": "consumer lag per group",
    "aqsha_messages_handled_total": "throughput by outcome",
    "aqsha_handler_duration_seconds_bucket": "handler p99 latency",
    "aqsha_dead_letters_total": "dead letters by reason",
    "aqsha_outbox_backlog": "outbox backlog",
    "aqsha_business_day_closed_timestamp_seconds": "business-day progress",
    "aqsha_business_day_facts_total": "bills issued per business day",
}


def substitute(expr: str, variables: set[str]) -> tuple[str, list[str]]:
    """``expr`` with Grafana variables replaced (intervals by ``5m``, others by ``.*``); unknown ones."""
    unknown: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in GRAFANA_INTERVALS:
            return "5m"
        if name in variables:
            return ".*"
        unknown.append(name)
        return match.group(0)

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", replace, expr), unknown


def _overlaps(a: dict[str, int], b: dict[str, int]) -> bool:
    return (
        a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    )


def dashboard_problems(doc: dict[str, Any]) -> list[str]:
    """What is wrong with the Grafana dashboard."""
    try:
        jsonschema.Draft202012Validator(DASHBOARD_SCHEMA).validate(doc)
    except jsonschema.ValidationError as exc:
        return [f"schema: {exc.message} at {list(exc.absolute_path)}"]
    problems: list[str] = []
    variables = {v["name"] for v in doc["templating"]["list"]}
    if "datasource" not in variables:
        problems.append("no datasource variable (the panels use ${datasource})")
    for variable in doc["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
            found = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", query)
            if found is None:
                problems.append(
                    f"variable {variable['name']}: query {query!r} is not label_values(metric, label)"
                )
            elif _labels_of(found.group(1)) is None or found.group(2) not in (
                _labels_of(found.group(1)) or set()
            ):
                problems.append(f"variable {variable['name']}: {query} names no exported metric or label")
    ids = [p["id"] for p in doc["panels"]]
    if len(ids) != len(set(ids)):
        problems.append("panel ids are not unique")
    used: set[str] = set()
    placed: list[tuple[str, dict[str, int]]] = []
    for panel in doc["panels"]:
        where = f"panel {panel['id']} ({panel['title']})"
        pos = panel["gridPos"]
        if pos["x"] + pos["w"] > 24:
            problems.append(f"{where}: wider than the 24-column grid")
        for other, other_pos in placed:
            if _overlaps(pos, other_pos):
                problems.append(f"{where}: overlaps {other}")
        placed.append((where, pos))
        for target in panel.get("targets", []):
            expr, unknown = substitute(target["expr"], variables)
            problems += [f"{where}: unknown variable ${name}" for name in unknown]
            problems += [f"{where}: {p}" for p in expr_problems(expr)]
            if not expr_problems(expr):
                used |= {s.name for s in _selectors(promql_parser.parse(expr))}
                for op, value in trust_matchers(expr):
                    if value != TRUST_REGEX:
                        problems.append(f"{where}: reason{op}{value!r} is not exactly shared.trust.REASONS")
        refs = [t["refId"] for t in panel.get("targets", [])]
        if len(refs) != len(set(refs)):
            problems.append(f"{where}: refIds are not unique")
    for metric, what in REQUIRED_METRICS.items():
        if metric not in used:
            problems.append(f"no panel shows {what} ({metric})")
    return problems


def test_dashboard_is_valid() -> None:
    assert dashboard_problems(load_dashboard()) == []


def test_dashboard_shows_every_trust_reason_and_business_day_fact() -> None:
    doc = load_dashboard()
    exprs = [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]
    assert any(("Re", TRUST_REGEX) in trust_matchers(substitute(e, {"service"})[0]) for e in exprs)
    # The facts panel groups by fact, whose values are exactly what billing counts.
    assert any("by (fact)" in e and "aqsha_business_day_facts_total" in e for e in exprs)
    assert BUSINESS_DAY_FACTS == ("accounts", "bills", "overdue", "penalties")


def _panel(title: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def pick(doc: dict[str, Any]) -> dict[str, Any]:
        return next(p for p in doc["panels"] if p["title"] == title)

    return pick


LAG = "Consumer lag per group and topic"
BROKEN_DASHBOARDS: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("no uid", lambda d: d.pop("uid")),
    ("schemaVersion as a string", lambda d: d.update(schemaVersion="39")),
    ("panel without gridPos", lambda d: _panel(LAG)(d).pop("gridPos")),
    ("panel without targets", lambda d: _panel(LAG)(d).pop("targets")),
    ("too wide", lambda d: _panel(LAG)(d)["gridPos"].update(w=25)),
    ("off the grid", lambda d: _panel(LAG)(d)["gridPos"].update(x=20)),
    (
        "overlapping panels",
        lambda d: _panel(LAG)(d)["gridPos"].update(y=_panel("Outbox backlog")(d)["gridPos"]["y"]),
    ),
    ("duplicate id", lambda d: _panel(LAG)(d).update(id=_panel("Outbox backlog")(d)["id"])),
    ("hard-coded datasource", lambda d: _panel(LAG)(d)["datasource"].update(uid="P1809F7CD0C75ACF3")),
    ("unknown panel type", lambda d: _panel(LAG)(d).update(type="graph")),
    ("bad expr", lambda d: _panel(LAG)(d)["targets"][0].update(expr="sum by (group (aqsha_consumer_lag)")),
    ("renamed metric", lambda d: _panel(LAG)(d)["targets"][0].update(expr="sum(aqsha_kafka_lag)")),
    (
        "undefined variable",
        lambda d: _panel(LAG)(d)["targets"][0].update(expr='aqsha_consumer_lag{group=~"$grp"}'),
    ),
    (
        "label it lacks",
        lambda d: _panel(LAG)(d)["targets"][0].update(expr="sum by (outcome) (aqsha_consumer_lag)"),
    ),
    (
        "no lag panel",
        lambda d: d.update(panels=[p for p in d["panels"] if "aqsha_consumer_lag" not in json.dumps(p)]),
    ),
    (
        "variable over an unknown metric",
        lambda d: d["templating"]["list"][1]["query"].update(query="label_values(x, y)"),
    ),
    (
        "a trust reason left out",
        lambda d: _panel("Refused by the trust check (time range)")(d)["targets"][0].update(
            expr=_panel("Refused by the trust check (time range)")(d)["targets"][0]["expr"].replace(
                "bad_signature|", ""
            )
        ),
    ),
]


@pytest.mark.parametrize(("why", "mutate"), BROKEN_DASHBOARDS, ids=[w for w, _ in BROKEN_DASHBOARDS])
def test_dashboard_checks_reject(why: str, mutate: Callable[[dict[str, Any]], None]) -> None:
    doc = copy.deepcopy(load_dashboard())
    assert dashboard_problems(doc) == []
    mutate(doc)
    assert dashboard_problems(doc), why


def test_the_metric_catalogue_is_what_the_registry_renders() -> None:
    # The names the checks above accept are the ones /metrics really serves once each has a sample.
    m = Metrics("billing")
    m.message("t", "X", "ok")
    m.retry("t", "X", "transient")
    m.failure("t", "X", "handler_error")
    m.observe("t", "X", 0.01)
    m.dead_lettered("t", "unsigned")
    m.set_backlog(1)
    m.set_lag("g", {("t", 0): 1}, {("t", 0): 5})
    m.loop_lag.labels("billing").set(0)
    m.set_readiness({"postgres": {"status": "ok"}})
    m.business_day_run(date(2025, 10, 22), dict.fromkeys(BUSINESS_DAY_FACTS, 1))
    rendered = {
        line.split("{", 1)[0].split(" ", 1)[0]
        for line in m.render().decode().splitlines()
        if line and not line.startswith("#")
    }
    assert rendered == set(EXPORTED)
