"""Orders the steps of a definition: DependsOn plus data references, branches after their condition."""
from __future__ import annotations

from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter

from local_runtime.errors import LocalRuntimeError
from local_runtime.pipeline.expressions import referenced_steps


class DefinitionError(LocalRuntimeError, ValueError):
    """The definition is malformed: unknown step reference, duplicate name or a cycle."""


@dataclass
class StepNode:
    name: str
    type: str
    spec: dict
    branch_of: str | None = None           # the ConditionStep that may select this step
    depends_on: set[str] = field(default_factory=set)


def collect_steps(definition: dict) -> dict[str, StepNode]:
    nodes: dict[str, StepNode] = {}

    def add(spec: dict, branch_of: str | None) -> None:
        name = spec["Name"]
        if name in nodes:
            raise DefinitionError(f"step name {name!r} is used twice")
        own = _own_arguments(spec)
        depends = set(spec.get("DependsOn", [])) | referenced_steps(own)
        depends |= {p["Get"].split(".")[1] for p in _property_file_refs(own)}
        if branch_of:
            depends.add(branch_of)
        nodes[name] = StepNode(name, spec["Type"], spec, branch_of, depends)
        if spec["Type"] == "Condition":
            for branch in ("IfSteps", "ElseSteps"):
                for child in spec["Arguments"].get(branch, []):
                    add(child, name)

    for spec in definition["Steps"]:
        add(spec, None)
    for node in nodes.values():
        node.depends_on.discard(node.name)
        unknown = node.depends_on - set(nodes)
        if unknown:
            raise DefinitionError(f"step {node.name!r} depends on unknown steps {sorted(unknown)}")
    return nodes


def _own_arguments(spec: dict) -> dict:
    """A condition's branches are steps of their own: only its Conditions are its inputs."""
    arguments = spec.get("Arguments", {})
    if spec["Type"] == "Condition":
        return {"Conditions": arguments.get("Conditions", [])}
    return arguments


def _property_file_refs(arguments: dict) -> list[dict]:
    refs: list[dict] = []

    def walk(value):
        if isinstance(value, dict):
            if "PropertyFile" in value and isinstance(value["PropertyFile"], dict):
                refs.append(value["PropertyFile"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(arguments)
    return refs


def execution_order(nodes: dict[str, StepNode]) -> list[str]:
    """A deterministic topological order (ties broken by definition order)."""
    position = {name: i for i, name in enumerate(nodes)}
    sorter = TopologicalSorter({name: node.depends_on for name, node in nodes.items()})
    try:
        sorter.prepare()
    except CycleError as exc:
        raise DefinitionError(f"steps form a cycle: {exc.args[1]}") from None
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=position.__getitem__)
        order += ready
        sorter.done(*ready)
    return order
