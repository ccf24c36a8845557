"""Resolves the expressions of a pipeline definition: Get, Std:Join, Std:JsonGet.

``Get`` reaches ``Parameters.<name>``, ``Execution.<variable>``, ``Steps.<step>.<property path>``
(with ``[n]`` and ``['name']`` indexing) and ``Steps.<step>.PropertyFiles.<file>``.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from local_runtime.errors import LocalRuntimeError

_TOKEN = re.compile(r"""([A-Za-z0-9_:]+)|\[(\d+)\]|\['([^']*)'\]|\["([^"]*)"\]""")


class ExpressionError(LocalRuntimeError, ValueError):
    """An expression references something that does not exist (yet)."""


@dataclass
class Context:
    parameters: dict[str, Any]
    execution: dict[str, Any]
    step_properties: dict[str, dict] = field(default_factory=dict)
    property_files: dict[str, dict[str, Any]] = field(default_factory=dict)   # step -> file name -> parsed JSON


def split_path(path: str) -> list[str | int]:
    parts: list[str | int] = []
    position = 0
    for match in _TOKEN.finditer(path):
        name, index, quoted, double_quoted = match.groups()
        parts.append(int(index) if index is not None else name or quoted or double_quoted)
        position = match.end()
        if position < len(path) and path[position] == ".":
            position += 1
    return parts


def _lookup(node: Any, key: str | int, where: str) -> Any:
    if isinstance(node, list):
        if isinstance(key, int):
            return node[key]
        for item in node:   # e.g. Outputs['staged'] selects the output whose *Name is 'staged'
            if isinstance(item, dict) and any(k.endswith("Name") and v == key for k, v in item.items()):
                return item
        raise ExpressionError(f"{where}: no list item named {key!r}")
    if isinstance(node, dict) and key in node:
        return node[key]
    raise ExpressionError(f"{where}: no property {key!r}")


def json_get(document: Any, path: str, where: str = "JsonGet") -> Any:
    node = document
    for key in split_path(path):
        node = _lookup(node, key, f"{where} {path}")
    return node


def _get(reference: str, ctx: Context) -> Any:
    root, _, rest = reference.partition(".")
    if root == "Parameters":
        if rest not in ctx.parameters:
            raise ExpressionError(f"pipeline parameter {rest!r} is not declared")
        return ctx.parameters[rest]
    if root == "Execution":
        if rest not in ctx.execution:
            raise ExpressionError(f"unknown execution variable {rest!r}")
        return ctx.execution[rest]
    if root == "Steps":
        step, _, path = rest.partition(".")
        if step not in ctx.step_properties:
            raise ExpressionError(f"step {step!r} has not run, so {reference} is not available")
        node, previous = ctx.step_properties[step], None
        for key in split_path(path):
            node = _lookup(node, key, reference)
            if previous == "OutputParameters" and isinstance(key, str):
                node = node["Value"]    # a Lambda step's OutputParameters['name'] is that output's value
            previous = key
        return node
    raise ExpressionError(f"cannot resolve Get {reference!r}")


def _property_file(reference: str, ctx: Context) -> Any:
    match = re.fullmatch(r"Steps\.([^.]+)\.PropertyFiles\.([^.]+)", reference)
    if not match:
        raise ExpressionError(f"{reference!r} is not a property file reference")
    step, name = match.groups()
    try:
        return ctx.property_files[step][name]
    except KeyError:
        raise ExpressionError(f"property file {name!r} of step {step!r} was not produced") from None


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def resolve(value: Any, ctx: Context) -> Any:
    if isinstance(value, list):
        return [resolve(v, ctx) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Get"}:
        return _get(value["Get"], ctx)
    if set(value) == {"Std:Join"}:
        spec = value["Std:Join"]
        return spec["On"].join(_as_text(resolve(v, ctx)) for v in spec["Values"])
    if set(value) == {"Std:JsonGet"}:
        spec = value["Std:JsonGet"]
        document = _property_file(spec["PropertyFile"]["Get"], ctx)
        return json_get(document, spec["Path"], f"JsonGet on {spec['PropertyFile']['Get']}")
    return {k: resolve(v, ctx) for k, v in value.items()}


def referenced_steps(value: Any) -> set[str]:
    """Step names an argument tree reads from: these are implicit dependencies."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= referenced_steps(item)
    elif isinstance(value, dict):
        reference = value.get("Get")
        if isinstance(reference, str) and reference.startswith("Steps."):
            found.add(reference.split(".")[1])
        for item in value.values():
            found |= referenced_steps(item)
    return found
