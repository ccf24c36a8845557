"""The project's modules import one another without cycles, and only downwards through the layers.

Why a test: an import cycle works until someone moves an import out of a function or reorders two
lines, then fails at import time with a half-initialised module; and a sibling that leans on a
sibling (the executor on the moto patches, the trainer container on the executor) is how a cycle
starts. The layers (the team's design note layers.md): ``scones_common`` at the bottom, the
containers, the cloud path and the Lambdas above it, ``local_runtime`` on top, whose siblings
(serving, pipeline, moto_ext, trainer) are wired together by ``local_runtime/stack.py``, not by
importing one another. The check reads the source (AST), so it is fast and sees every ``import`` at
any nesting level: an import inside a function still ties the two modules together.

Resolution rules:
- relative imports are resolved against the importing module's package;
- ``from pkg import name`` counts as importing ``pkg.name`` when that is one of our modules, else ``pkg``;
- a module is only tied to the module it names, not to the packages above it (``import a.b.c`` runs
  ``a/__init__`` too, but counting that would make every package that lazily imports its own
  submodules look cyclic);
- benchmarks and the Lambda folders are script roots (their own directory is on ``sys.path``):
  there ``import serving_stack`` / ``from drift import …`` mean the file next to them.
"""
from __future__ import annotations

import ast
import functools
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("scones_common", "processing", "pipelines", "inference_workflow", "local_runtime", "benchmarks", "console")
LOCAL_SIBLINGS = ("local_runtime.serving", "local_runtime.pipeline", "local_runtime.moto_ext", "local_runtime.trainer")
# Sibling imports not yet removed, each for a reason outside this check; a new one fails the test, and an
# entry here goes once its import does.
# - serving's endpoint server and deployment driver call the endpoint patches directly (health checks,
#   finishing a blue/green update): the patches would need to be handed to them by stack.py.
# - the Transform runner scores with the endpoint's own inference code (serving.model, serving.resolve):
#   that code would need to move below both.
KNOWN_SIBLING_IMPORTS = {
    "local_runtime.serving.deployments -> local_runtime.moto_ext.blue_green",
    "local_runtime.serving.endpoint_server -> local_runtime.moto_ext.endpoint_lifecycle",
    "local_runtime.pipeline.runners.transform -> local_runtime.serving.model",
    "local_runtime.pipeline.runners.transform -> local_runtime.serving.resolve",
}
ModuleGraph = dict[str, set[str]]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@functools.cache
def _is_script_root(directory: Path) -> bool:
    return directory == ROOT / "benchmarks" or (directory / "lambda_function.py").exists()


def project_modules() -> dict[str, Path]:
    """Every module of ours by dotted name (``benchmarks.X`` for the benchmark scripts)."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "__pycache__" not in path.parts:
                modules[_module_name(path)] = path
    return modules


def _imported(node: ast.Import | ast.ImportFrom, name: str, path: Path, modules: dict[str, Path]) -> Iterable[str]:
    """The modules of ours one import statement names (possibly none)."""
    is_package = path.name == "__init__.py"
    directory = path.parent

    def ours(dotted: str) -> str | None:
        if dotted in modules:
            return dotted
        if _is_script_root(directory):
            local = _module_name(directory) + "." + dotted
            if local in modules:
                return local
        return None

    if isinstance(node, ast.Import):
        for alias in node.names:
            # ``import a.b.c`` names a.b.c: the longest prefix that is one of our modules
            parts = alias.name.split(".")
            for end in range(len(parts), 0, -1):
                found = ours(".".join(parts[:end]))
                if found:
                    yield found
                    break
        return
    if node.level:
        package = name if is_package else name.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
        base_module = base if base in modules else None
    else:
        base_module = ours(node.module or "")
        base = base_module or ""
    for alias in node.names:
        submodule = f"{base}.{alias.name}" if base else ""
        if submodule in modules:
            yield submodule
        elif base_module:
            yield base_module


def _import_statements(statements: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement at any depth: in functions, classes, ``if``/``try``/``with``/``match`` bodies.

    Imports are statements, so only statement bodies are visited, not expressions (several times
    faster than ``ast.walk``, which keeps the whole check well under a second)."""
    for statement in statements:
        if isinstance(statement, ast.Import | ast.ImportFrom):
            yield statement
            continue
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            children = getattr(statement, field, None)
            if isinstance(children, list):
                for child in children:
                    # except handlers and match cases are not statements but hold a body of them
                    yield from _import_statements(child.body if isinstance(child, ast.excepthandler | ast.match_case)
                                                  else [child])


def import_graph() -> ModuleGraph:
    modules = project_modules()
    graph: ModuleGraph = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in _import_statements(tree.body):
            graph[name].update(_imported(node, name, path, modules))
    return graph


def cycles(graph: ModuleGraph) -> list[list[str]]:
    """Strongly connected components with more than one module, plus modules that import themselves
    (Tarjan's algorithm, iterative: the graph is small but recursion depth should not depend on it)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph[node]:
                    found.append(sorted(component))
    return found


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def crossings(graph: ModuleGraph, importers: Iterable[str], imported: Iterable[str]) -> list[str]:
    """``a -> b`` for every import from a module under one of ``importers`` to one under ``imported``."""
    importers, imported = tuple(importers), tuple(imported)
    return sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets
                  if any(_within(a, p) for p in importers) and any(_within(b, p) for p in imported))


@functools.cache
def graph() -> ModuleGraph:
    """Built once per session, on first use (not when the suite is collected)."""
    return import_graph()


def test_the_graph_sees_the_project():
    """A guard on the walk itself: if it found nothing, every assertion below would pass vacuously."""
    modules = graph()
    assert len(modules) > 100
    assert "local_runtime.pipeline.executor" in modules["local_runtime.pipeline.service"]
    assert "local_runtime.moto_ext.pipeline_executions" in modules["local_runtime.moto_ext"]     # inside install()
    assert "inference_workflow.drift_monitor.drift" in modules["inference_workflow.drift_monitor.lambda_function"]
    assert "benchmarks.serving_stack" in modules["benchmarks.bench_endpoint"]


def test_no_import_cycles():
    found = cycles(graph())
    assert not found, "import cycles (each line one strongly connected component):\n" + "\n".join(
        " <-> ".join(component) for component in found)


def test_shared_code_imports_nothing_of_ours():
    others = [p for p in PACKAGES if p != "scones_common"]
    assert crossings(graph(), ["scones_common"], others) == []


def test_cloud_path_and_containers_never_import_the_local_runtime():
    """The operator console counts as cloud path: it must work against an AWS account."""
    assert crossings(graph(), ["processing", "pipelines", "inference_workflow", "scones_common", "console"],
                     ["local_runtime"]) == []


def test_each_lambda_imports_only_its_own_folder():
    """A Lambda's zip holds its folder alone: anything else of ours would be missing in the cloud."""
    lambdas = sorted(_module_name(p.parent) for p in (ROOT / "inference_workflow").glob("*/lambda_function.py"))
    assert len(lambdas) >= 5
    crossed = [edge for folder in lambdas for edge in crossings(graph(), [folder], PACKAGES)
               if not _within(edge.split(" -> ")[1], folder)]
    assert crossed == []


def test_local_runtime_siblings_do_not_import_one_another():
    crossed = [edge for sibling in LOCAL_SIBLINGS
               for edge in crossings(graph(), [sibling], [s for s in LOCAL_SIBLINGS if s != sibling])
               if edge not in KNOWN_SIBLING_IMPORTS]
    assert crossed == [], "siblings are wired by local_runtime/stack.py, not imported:\n" + "\n".join(crossed)


def test_moto_patches_executor_and_trainer_meet_only_through_the_stack():
    """The seams layers.md asks for, stated on their own so that no allowance above can ever cover them: the
    patches and the executor reach each other through callbacks stack.py wires, and neither imports aws.py
    (which installs the patches); the trainer container does not import the executor."""
    assert crossings(graph(), ["local_runtime.moto_ext"], ["local_runtime.pipeline", "local_runtime.aws"]) == []
    assert crossings(graph(), ["local_runtime.pipeline"], ["local_runtime.moto_ext", "local_runtime.aws"]) == []
    assert crossings(graph(), ["local_runtime.trainer"], ["local_runtime.pipeline"]) == []
