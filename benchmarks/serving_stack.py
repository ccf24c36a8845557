"""What the serving benchmarks share: the local stack with a real model behind the endpoint."""
from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "runs"
sys.path.insert(0, str(ROOT))

from local_runtime.settings import load_local_config  # noqa: E402
from local_runtime.stack import LocalStack, deploy_artifact, local_stack  # noqa: E402
from scones_common.logs import setup_logging  # noqa: E402


def _run_files(pattern: str, run_dir: Path | None) -> list[Path]:
    """Files of one ``scones-local run --run-dir`` directory, or of every run under ``runs/``."""
    return sorted(Path(run_dir).glob(pattern) if run_dir else RUNS.glob(f"*/{pattern}"))


def newest_trained_artifact(run_dir: Path | None = None) -> Path | None:
    """The model.tar.gz of the latest local TrainModel job, if a local run has trained one."""
    artifacts = sorted(_run_files("jobs/*/TrainModel/model.tar.gz", run_dir), key=lambda p: p.stat().st_mtime)
    return artifacts[-1] if artifacts else None


def staged_test_images(limit: int = 200, run_dir: Path | None = None) -> list[bytes]:
    """Staged test PNGs a local run left, else synthetic CIFAR-like ones of both classes."""
    staged = _run_files("jobs/*/PrepareData/opt/ml/processing/output/test/*/*.png", run_dir)[:limit]
    if staged:
        return [p.read_bytes() for p in staged]
    from tests.builders import png_bytes

    return [png_bytes(fine_label=(8, 48)[i % 2], seed=i) for i in range(limit)]


def model_artifact(requested: str | None, scratch: Path, run_dir: Path | None = None) -> tuple[Path, str]:
    if requested:
        return Path(requested), f"given: {requested}"
    trained = newest_trained_artifact(run_dir)
    if trained:
        return trained, f"trained by a local run: {trained}"
    from tests.builders import write_tiny_model_artifact

    return write_tiny_model_artifact(scratch / "model.tar.gz"), "tiny test model (no local run found; run scones-local first)"


@contextmanager
def serving_stack(requested_artifact: str | None = None,
                  run_dir: Path | None = None) -> Iterator[tuple[LocalStack, str]]:
    setup_logging("WARNING")
    with ExitStack() as exits:
        scratch = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="scones-bench-")))
        artifact, description = model_artifact(requested_artifact, scratch, run_dir)
        stack = exits.enter_context(local_stack(load_local_config(environ={}), scratch))
        deploy_artifact(stack, artifact, "benchmark")
        yield stack, description


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def answering_stages(classifier, images: list[bytes]) -> tuple[list[str], list[int]] | None:
    """The cascade's stage names and, per image, the index of the stage that answers it; None for a
    model without a cascade. For reading latency by path.

    A cascade exports as a chain of ``If`` nodes, each with the next stages in its larger branch. A
    copy of the graph outputs every ``If``'s condition (through the enclosing branches), and an
    image's stage is the first ``If`` that takes its smaller branch.
    """
    import json

    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    model = onnx.load(str(classifier.model_path))
    chain, graph = [], model.graph
    while len(ifs := [node for node in graph.node if node.op_type == "If"]) == 1:
        branches = {attribute.name: attribute.g for attribute in ifs[0].attribute}
        then_continues = _size(branches["then_branch"]) > _size(branches["else_branch"])
        chain.append((ifs[0], branches, then_continues))
        graph = branches["then_branch" if then_continues else "else_branch"]
    if not chain:
        return None
    for level, (node, _, _) in enumerate(chain):
        name = node.input[0]
        for outer in range(level - 1, -1, -1):
            outer_node, branches, then_continues = chain[outer]
            onward, other = (branches["then_branch"], branches["else_branch"])[::1 if then_continues else -1]
            onward.output.append(helper.make_tensor_value_info(name, TensorProto.BOOL, None))
            unused = f"{name}/not_reached/{outer}"
            other.node.append(helper.make_node("Constant", [], [unused], value=helper.make_tensor("v", TensorProto.BOOL, [], [False])))
            other.output.append(helper.make_tensor_value_info(unused, TensorProto.BOOL, None))
            name = f"{name}/at/{outer}"
            outer_node.output.append(name)
        model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.BOOL, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    stages = []
    for image in images:
        conditions = session.run(None, {classifier.input_name: classifier.preprocess([image])})[1:]
        onward = [bool(condition) == then_continues for condition, (_, _, then_continues) in zip(conditions, chain)]
        stages.append(onward.index(False) if False in onward else len(chain))
    names = json.loads((classifier.model_path.parent / "model-meta.json").read_text()).get("stages")
    if not names or len(names) != len(chain) + 1:     # a model exported before the stages were written down
        names = ["members", "members + the ImageNet probe"] if len(chain) == 1 else [
            f"stage {i + 1}" for i in range(len(chain) + 1)]
    return names, stages


def _size(graph) -> int:
    return sum(1 + sum(_size(a.g) for a in node.attribute if a.g.node) for node in graph.node)
