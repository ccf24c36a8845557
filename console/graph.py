"""The pipeline graph as server-drawn SVG: steps from the definition JSON, edges from DependsOn and
property references, each step coloured by its status in one execution.

Pure (no AWS, no plotting library): the definition is the JSON DescribePipeline or
DescribePipelineDefinitionForExecution returns, the statuses what ListPipelineExecutionSteps says.
Drawn by hand rather than with a layout engine so the console needs nothing beyond Python, and so
each box can be a link to its step. The layout is layered top to bottom (a step sits one row below
its deepest input); an edge that skips rows runs down a lane of its own on the right, so it never
crosses a box.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from html import escape
from typing import Any

_STEP_REF = re.compile(r"^Steps\.([^.\[]+)")

# Studio's palette, roughly: what a status looks like on the graph and in the step table.
STATUS_COLOURS = {
    "Succeeded": ("#e6f4ea", "#1e7e34"),
    "Executing": ("#e3f0fd", "#1a73e8"),
    "Starting": ("#e3f0fd", "#1a73e8"),
    "Stopping": ("#fff4e0", "#b26a00"),
    "Stopped": ("#eeeeee", "#616161"),
    "Failed": ("#fdecea", "#c5221f"),
    "NotRun": ("#ffffff", "#9e9e9e"),
}
BOX_WIDTH, BOX_HEIGHT, ROW_GAP, COLUMN_GAP, MARGIN, LANE_GAP = 200, 44, 28, 30, 16, 14


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: str        # depends | data | if | else


@dataclass
class Step:
    name: str
    type: str
    branch_of: str | None = None
    inputs: set[str] = field(default_factory=set)


def _references(value: Any, found: set[str]) -> None:
    """Step names an argument tree refers to: ``{"Get": "Steps.X…"}`` and JsonGet's ``PropertyFile``."""
    if isinstance(value, Mapping):
        get = value.get("Get")
        if isinstance(get, str):
            match = _STEP_REF.match(get)
            if match:
                found.add(match.group(1))
        for item in value.values():
            _references(item, found)
    elif isinstance(value, list):
        for item in value:
            _references(item, found)


def pipeline_steps(definition: Mapping[str, Any]) -> dict[str, Step]:
    """Every step, condition branches included, in definition order."""
    steps: dict[str, Step] = {}

    def add(spec: Mapping[str, Any], branch_of: str | None) -> None:
        arguments = spec.get("Arguments", {}) or {}
        own = {"Conditions": arguments.get("Conditions", [])} if spec.get("Type") == "Condition" else arguments
        inputs: set[str] = set()
        _references(own, inputs)
        # PropertyFiles a step declares name itself; only references to other steps are inputs
        steps[spec["Name"]] = Step(spec["Name"], spec.get("Type", "?"), branch_of, inputs)
        for dependency in spec.get("DependsOn", []) or []:
            steps[spec["Name"]].inputs.add(dependency)
        if spec.get("Type") == "Condition":
            for branch in ("IfSteps", "ElseSteps"):
                for child in arguments.get(branch, []) or []:
                    add(child, spec["Name"])

    for spec in definition.get("Steps", []):
        add(spec, None)
    return steps


def pipeline_edges(definition: Mapping[str, Any]) -> list[Edge]:
    """DependsOn and data references (``depends`` / ``data``), and condition → branch step (``if`` / ``else``).
    References to unknown steps are dropped: the graph shows what exists."""
    steps = pipeline_steps(definition)
    edges: dict[tuple[str, str], Edge] = {}

    def specs(items):
        for spec in items:
            yield spec
            if spec.get("Type") == "Condition":
                arguments = spec.get("Arguments", {}) or {}
                for branch, kind in (("IfSteps", "if"), ("ElseSteps", "else")):
                    for child in arguments.get(branch, []) or []:
                        edges[(spec["Name"], child["Name"])] = Edge(spec["Name"], child["Name"], kind)
                    yield from specs(arguments.get(branch, []) or [])

    for spec in specs(definition.get("Steps", [])):
        name = spec["Name"]
        declared = set(spec.get("DependsOn", []) or [])
        for source in sorted(steps[name].inputs):
            if source in steps and source != name and (source, name) not in edges:
                edges[(source, name)] = Edge(source, name, "depends" if source in declared else "data")
    return list(edges.values())


def transitive_reduction(edges: list[Edge]) -> list[Edge]:
    """The edges not implied by a longer path: what the picture needs. PrepareData → EvaluateModel (the test
    labels) is real, but PrepareData → … → EvaluateModel already says EvaluateModel comes after it."""
    successors: dict[str, set[str]] = {}
    for edge in edges:
        successors.setdefault(edge.source, set()).add(edge.target)

    def reachable_without(source: str, target: str) -> bool:
        seen, stack = set(), [s for s in successors.get(source, ()) if s != target]
        while stack:
            node = stack.pop()
            if node == target:
                return True
            if node not in seen:
                seen.add(node)
                stack.extend(successors.get(node, ()))
        return False

    return [edge for edge in edges if not reachable_without(edge.source, edge.target)]


@dataclass(frozen=True)
class Box:
    name: str
    type: str
    row: int
    column: int
    x: float
    y: float


def layout(definition: Mapping[str, Any]) -> tuple[dict[str, Box], list[Edge]]:
    """Rows by longest path from the sources; within a row, by the mean column of the inputs, then
    definition order (so the main chain stays in one column)."""
    steps = pipeline_steps(definition)
    edges = pipeline_edges(definition)
    inputs: dict[str, list[str]] = {name: [] for name in steps}
    for edge in edges:
        inputs[edge.target].append(edge.source)
    rows: dict[str, int] = {}

    def row_of(name: str, visiting: frozenset = frozenset()) -> int:
        if name not in rows:
            if name in visiting:            # a cycle (an invalid definition): break it rather than recurse forever
                return 0
            rows[name] = 1 + max((row_of(s, visiting | {name}) for s in inputs[name]), default=-1)
        return rows[name]

    for name in steps:
        row_of(name)
    order = {name: i for i, name in enumerate(steps)}
    columns: dict[str, int] = {}
    for row in range(max(rows.values(), default=-1) + 1):
        members = [name for name in steps if rows[name] == row]

        def weight(name: str) -> tuple[float, int]:
            placed = [columns[s] for s in inputs[name] if s in columns]
            return (sum(placed) / len(placed) if placed else 0.0, order[name])

        for column, name in enumerate(sorted(members, key=weight)):
            columns[name] = column
    boxes = {name: Box(name, steps[name].type, rows[name], columns[name],
                       MARGIN + columns[name] * (BOX_WIDTH + COLUMN_GAP), MARGIN + rows[name] * (BOX_HEIGHT + ROW_GAP))
             for name in steps}
    return boxes, edges


def _edge_path(a: Box, b: Box, lane_x: float | None) -> str:
    if lane_x is None:      # adjacent rows: a curve from the bottom of a to the top of b
        x1, y1 = a.x + BOX_WIDTH / 2, a.y + BOX_HEIGHT
        x2, y2 = b.x + BOX_WIDTH / 2, b.y
        middle = (y1 + y2) / 2
        return f"M{x1:.0f},{y1:.0f} C{x1:.0f},{middle:.0f} {x2:.0f},{middle:.0f} {x2:.0f},{y2 - 2:.0f}"
    x1, y1 = a.x + BOX_WIDTH, a.y + BOX_HEIGHT / 2
    x2, y2 = b.x + BOX_WIDTH, b.y + BOX_HEIGHT / 2
    return f"M{x1:.0f},{y1:.0f} H{lane_x:.0f} V{y2:.0f} H{x2 + 2:.0f}"


def render_svg(definition: Mapping[str, Any], statuses: Mapping[str, str] | None = None,
               links: Mapping[str, str] | None = None, cached: set[str] | None = None) -> str:
    """The graph as an inline ``<svg>`` element. ``statuses``: step name → StepStatus (steps without one
    did not run); ``links``: step name → URL the box opens; ``cached``: steps that were cache hits."""
    statuses, links, cached = statuses or {}, links or {}, cached or set()
    boxes, edges = layout(definition)
    edges = transitive_reduction(edges)
    if not boxes:
        return '<svg xmlns="http://www.w3.org/2000/svg" width="300" height="40" role="img">' \
               '<text x="10" y="24">the definition has no steps</text></svg>'
    right = max(box.x for box in boxes.values()) + BOX_WIDTH
    long_edges = [e for e in edges if boxes[e.target].row - boxes[e.source].row != 1]
    lanes = {edge: right + LANE_GAP * (i + 1) for i, edge in enumerate(
        sorted(long_edges, key=lambda e: (boxes[e.target].row - boxes[e.source].row, boxes[e.source].row)))}
    width = right + LANE_GAP * (len(lanes) + 1) + MARGIN
    height = MARGIN * 2 + (max(box.row for box in boxes.values()) + 1) * (BOX_HEIGHT + ROW_GAP) - ROW_GAP
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="pipeline-graph" width="{width:.0f}" '
             f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
             'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" '
             'aria-label="pipeline graph">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
             'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#757575"/></marker></defs>']
    for edge in edges:
        a, b = boxes[edge.source], boxes[edge.target]
        dash = ' stroke-dasharray="4 3"' if edge.kind == "else" else ""
        parts.append(f'<path class="edge edge-{edge.kind}" d="{_edge_path(a, b, lanes.get(edge))}" fill="none" '
                     f'stroke="#757575" stroke-width="1.4"{dash} marker-end="url(#arrow)">'
                     f'<title>{escape(edge.source)} → {escape(edge.target)} ({edge.kind})</title></path>')
        if edge.kind in ("if", "else"):
            x, y = (b.x + BOX_WIDTH / 2 + 6, b.y - 6) if edge not in lanes else (lanes[edge] + 3, b.y - 2)
            parts.append(f'<text x="{x:.0f}" y="{y:.0f}" font-size="10" fill="#616161">'
                         f'{"true" if edge.kind == "if" else "false"}</text>')
    for box in boxes.values():
        status = statuses.get(box.name, "NotRun")
        fill, stroke = STATUS_COLOURS.get(status, STATUS_COLOURS["NotRun"])
        dash = ' stroke-dasharray="5 3"' if status == "NotRun" else ""
        label = status if status != "NotRun" else "not run"
        if box.name in cached:
            label += " (cached)"
        body = (f'<rect x="{box.x:.0f}" y="{box.y:.0f}" width="{BOX_WIDTH}" height="{BOX_HEIGHT}" rx="6" '
                f'fill="{fill}" stroke="{stroke}" stroke-width="1.6"{dash}/>'
                f'<text x="{box.x + 10:.0f}" y="{box.y + 19:.0f}" font-size="13" font-weight="600" '
                f'fill="#202124">{escape(_short(box.name))}</text>'
                f'<text x="{box.x + 10:.0f}" y="{box.y + 36:.0f}" font-size="11" fill="{stroke}">'
                f'{escape(box.type)} · {escape(label)}</text>'
                f'<title>{escape(box.name)}: {escape(box.type)}, {escape(label)}</title>')
        group = f'<g class="step step-{escape(status.lower())}" data-step="{escape(box.name)}">{body}</g>'
        if box.name in links:
            group = f'<a href="{escape(links[box.name])}">{group}</a>'
        parts.append(group)
    parts.append("</svg>")
    return "".join(parts)


def _short(name: str, limit: int = 24) -> str:
    return name if len(name) <= limit else name[:limit - 1] + "…"
