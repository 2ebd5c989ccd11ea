"""Backward-compatibility check between two JSON Schemas of one contract version.

The rule is "the new schema must accept every message the old one accepted", so consumers on the
new code can still read records already in Kafka (and in outboxes) written by the old code. Within
one ``VERSION`` that forbids: removing a property (``extra="forbid"`` would reject old messages),
changing or narrowing a property's type, making a property required (or adding a required one), and
removing an enum value. Adding an optional property, or widening a type, is fine. A breaking change
needs a new ``VERSION`` (a new model beside the old one) instead.

Constraint changes (patterns, bounds, lengths) are not checked: they are rarely the cause of a
break in practice and cannot be compared precisely in general.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

_JSON_TYPES = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    type(None): "null",
    list: "array",
    dict: "object",
}


_MAX_DEPTH = 32


class _Doc:
    """A schema document, to resolve local ``$ref`` pointers against."""

    def __init__(self, root: Schema) -> None:
        self.root = root

    def resolve(self, node: Schema, seen: frozenset[str] = frozenset()) -> Schema:
        """Follow ``$ref`` (merging sibling keywords such as ``description``) until a concrete node."""
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not isinstance(ref, str) or not ref.startswith("#/") or ref in seen:
                return {k: v for k, v in node.items() if k != "$ref"}
            seen = seen | {ref}
            target: Any = self.root
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                target = target.get(part, {}) if isinstance(target, dict) else {}
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            node = {**target, **siblings} if isinstance(target, dict) else siblings
        return node


def _branches(doc: _Doc, node: Schema) -> list[Schema]:
    """The alternatives of a union node (``anyOf``/``oneOf``), flattened; a plain node is its own."""
    node = doc.resolve(node)
    for key in ("anyOf", "oneOf"):
        if key in node and isinstance(node[key], list):
            out: list[Schema] = []
            for branch in node[key]:
                out.extend(_branches(doc, branch))
            return out
    if "allOf" in node and isinstance(node["allOf"], list) and len(node["allOf"]) == 1:
        return _branches(doc, {**{k: v for k, v in node.items() if k != "allOf"}, **node["allOf"][0]})
    return [node]


def _types(node: Schema) -> set[str]:
    """JSON types a concrete node accepts (empty set = any)."""
    declared = node.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return {t for t in declared if isinstance(t, str)}
    values = (
        node["enum"] if isinstance(node.get("enum"), list) else [node["const"]] if "const" in node else []
    )
    return {_JSON_TYPES.get(type(v), "string") for v in values}


def _enum(node: Schema) -> set[Any] | None:
    if isinstance(node.get("enum"), list):
        return {_hashable(v) for v in node["enum"]}
    if "const" in node:
        return {_hashable(node["const"])}
    return None


def _hashable(value: Any) -> Any:
    return repr(value) if isinstance(value, list | dict) else value


def _signature(node: Schema) -> str:
    """Kind of a union branch, used to pair old and new branches."""
    types = _types(node)
    if "object" in types or "properties" in node:
        return f"object:{node.get('title', '')}"
    return ",".join(sorted(types)) or "any"


def _covered(old: set[str], new: set[str]) -> bool:
    """True when every old type is still accepted (``integer`` fits in ``number``)."""
    if not new:
        return True
    return all(t in new or (t == "integer" and "number" in new) for t in old)


class _Checker:
    def __init__(self, old: Schema, new: Schema) -> None:
        self.old_doc, self.new_doc = _Doc(old), _Doc(new)
        self.problems: list[str] = []
        self._visited: set[tuple[str, str, str]] = set()

    def compare(self, old: Schema, new: Schema, path: str) -> None:
        key = (path, str(old.get("$ref")), str(new.get("$ref")))
        if key in self._visited or path.count(".") > _MAX_DEPTH:  # recursive models: stop descending
            return
        self._visited.add(key)
        where = path or "<root>"
        old_branches = _branches(self.old_doc, old)
        new_branches = _branches(self.new_doc, new)
        old_types = set().union(*(_types(b) for b in old_branches))
        new_types = set().union(*(_types(b) for b in new_branches))
        any_old = any(not _types(b) for b in old_branches)
        any_new = any(not _types(b) for b in new_branches)
        if not any_new and (any_old or not _covered(old_types, new_types)):
            self.problems.append(
                f"{where}: type changed from {_show(old_types, any_old)} to {_show(new_types, any_new)}"
            )
            return
        old_enum = _union_enum(old_branches)
        new_enum = _union_enum(new_branches)
        if old_enum is not None and new_enum is not None:
            removed = old_enum - new_enum
            if removed:
                shown = ", ".join(sorted(map(repr, removed)))
                self.problems.append(f"{where}: enum value(s) removed: {shown}")
        elif old_enum is None and new_enum is not None:
            self.problems.append(f"{where}: restricted to enum values {sorted(map(repr, new_enum))}")
        # Pair branches of the same kind and look inside them.
        new_by_sig = {_signature(b): b for b in new_branches}
        for branch in old_branches:
            match = new_by_sig.get(_signature(branch))
            if match is None and len(old_branches) == 1 and len(new_branches) == 1:
                match = new_branches[0]  # an object model renamed in $defs: compare its structure
            if match is not None:
                self._inside(branch, match, path)

    def _inside(self, old: Schema, new: Schema, path: str) -> None:
        old_props: dict[str, Schema] = old.get("properties", {}) or {}
        new_props: dict[str, Schema] = new.get("properties", {}) or {}
        for name in old_props:
            if name not in new_props:
                self.problems.append(f"{_join(path, name)}: property removed")
        for name, old_prop in old_props.items():
            if name in new_props:
                self.compare(old_prop, new_props[name], _join(path, name))
        old_required = set(old.get("required", []) or [])
        for name in sorted(set(new.get("required", []) or []) - old_required):
            what = "newly required" if name in old_props else "new required property"
            self.problems.append(f"{_join(path, name)}: {what}")
        old_extra, new_extra = old.get("additionalProperties"), new.get("additionalProperties")
        if isinstance(old_extra, dict) and isinstance(new_extra, dict):
            self.compare(old_extra, new_extra, _join(path, "*"))
        if "items" in old and "items" in new and isinstance(old["items"], dict):
            self.compare(old["items"], new["items"], f"{path}[]")
        old_prefix, new_prefix = old.get("prefixItems") or [], new.get("prefixItems") or []
        for i, (o, n) in enumerate(zip(old_prefix, new_prefix, strict=False)):
            self.compare(o, n, f"{path}[{i}]")


def _union_enum(branches: list[Schema]) -> set[Any] | None:
    """Enum values of a union, or None if some branch is not an enum (accepts any value of its type)."""
    values: set[Any] = set()
    for branch in branches:
        if branch.get("type") == "null" and _enum(branch) is None:
            values.add(None)
            continue
        enum = _enum(branch)
        if enum is None:
            return None
        values |= enum
    return values


def _show(types: set[str], anything: bool) -> str:
    if anything:
        return "any"
    return "|".join(sorted(types)) or "any"


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def breaking_changes(old_schema: Schema, new_schema: Schema) -> list[str]:
    """Every way ``new_schema`` rejects messages ``old_schema`` accepted; empty means compatible."""
    checker = _Checker(old_schema, new_schema)
    checker.compare(old_schema, new_schema, "")
    # $defs no longer reachable from properties are not compared: a model unused by the contract
    # cannot break it. A $def that disappeared while still referenced surfaces as a type change.
    return checker.problems
