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

from local_runtime.stack import LocalStack, deploy_artifact, local_stack  # noqa: E402
from scones_common.config import load_config  # noqa: E402
from scones_common.logs import setup_logging  # noqa: E402


def newest_trained_artifact(runs: Path = RUNS) -> Path | None:
    """The model.tar.gz of the latest local TrainModel job, if a local run has trained one."""
    artifacts = sorted(runs.glob("*/jobs/*/TrainModel/model.tar.gz"), key=lambda p: p.stat().st_mtime)
    return artifacts[-1] if artifacts else None


def staged_test_images(limit: int = 200) -> list[bytes]:
    """Staged test PNGs a local run left, else synthetic CIFAR-like ones of both classes."""
    staged = sorted(RUNS.glob("*/jobs/*/PrepareData/opt/ml/processing/output/test/*/*.png"))[:limit]
    if staged:
        return [p.read_bytes() for p in staged]
    from tests.builders import png_bytes

    return [png_bytes(fine_label=(8, 48)[i % 2], seed=i) for i in range(limit)]


def model_artifact(requested: str | None, scratch: Path) -> tuple[Path, str]:
    if requested:
        return Path(requested), f"given: {requested}"
    trained = newest_trained_artifact()
    if trained:
        return trained, f"trained by a local run: {trained.relative_to(ROOT)}"
    from tests.builders import write_tiny_model_artifact

    return write_tiny_model_artifact(scratch / "model.tar.gz"), "tiny test model (no local run found; run scones-local first)"


@contextmanager
def serving_stack(requested_artifact: str | None = None) -> Iterator[tuple[LocalStack, str]]:
    setup_logging("WARNING")
    with ExitStack() as exits:
        scratch = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="scones-bench-")))
        artifact, description = model_artifact(requested_artifact, scratch)
        stack = exits.enter_context(local_stack(load_config(environment="local", environ={}), scratch))
        deploy_artifact(stack, artifact, "benchmark")
        yield stack, description


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def skips_probe(classifier, images: list[bytes]) -> list[bool] | None:
    """Per image, whether the cascade answers from its members alone (the condition of the graph's
    top-level ``If``); None for a model without a cascade. For reading latency by path."""
    import onnx
    import onnxruntime as ort

    graph = onnx.load(str(classifier.model_path))
    branches = [node for node in graph.graph.node if node.op_type == "If"]
    if len(branches) != 1:
        return None
    graph.graph.output.append(onnx.helper.make_tensor_value_info(branches[0].input[0], onnx.TensorProto.BOOL, None))
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    return [bool(session.run(None, {classifier.input_name: classifier.preprocess([image])})[-1]) for image in images]
