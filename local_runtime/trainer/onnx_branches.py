"""Weights of an ONNX ``If`` branch moved into the branch that uses them.

The TorchScript exporter leaves every weight in the main graph, where a branch reaches it as an
outer-scope value. onnxruntime then neither constant-folds nor pre-packs those weights, and the
ImageNet probe's branch ran in 7.5 ms instead of 1.6 ms. Moved into the branch, they are the
branch's own initializers and the branch runs as fast as the same nodes in a main graph.
"""
from __future__ import annotations

from pathlib import Path

import onnx


def _inputs(graph: onnx.GraphProto, names: set[str]) -> set[str]:
    for node in graph.node:
        names.update(node.input)
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                _inputs(attribute.g, names)
    return names


def localise_branch_weights(path: Path) -> int:
    """Moves each main-graph initializer used by exactly one branch of a top-level ``If`` (and nothing
    else) into that branch; rewrites ``path``; returns how many moved."""
    model = onnx.load(str(path))
    graph = model.graph
    branches = [attribute.g for node in graph.node if node.op_type == "If" for attribute in node.attribute
                if attribute.type == onnx.AttributeProto.GRAPH]
    if not branches:
        return 0
    outside = _inputs(onnx.GraphProto(node=[n for n in graph.node if n.op_type != "If"]),
                      {value.name for value in [*graph.output, *graph.input]})   # a weight fed as an input stays
    used = [_inputs(branch, set()) for branch in branches]
    kept, moved = [], 0
    for initializer in graph.initializer:
        users = [branch for branch, names in zip(branches, used) if initializer.name in names]
        if len(users) == 1 and initializer.name not in outside:
            users[0].initializer.append(initializer)
            moved += 1
        else:
            kept.append(initializer)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return moved
