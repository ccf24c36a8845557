"""The incident, replayed against ``scones-local serve``: a live model, the absolute threshold lowered until anything
passes, and a challenger trained on swapped labels. The champion gate's own Fail step stops it: no new package, the
endpoint on its old config, and a user's EventBridge rule with an SQS target hears the execution fail.

The live model is a small ONNX model written here (no training: the challenger's run is the test's one training),
deployed as a registered, approved package by the real deploy Lambda."""
import json
import tarfile
import threading
import time
from pathlib import Path

import pytest

from local_runtime.serve import serve
from local_runtime.settings import load_local_config
from local_runtime.stack import deploy_artifact
from pipelines.scones import cli
from tests.builders import make_cifar_archive
from tests.tiny_run import TINY_EPOCHS


def write_top_bottom_artifact(path: Path) -> Path:
    """A real ONNX model that tells the synthetic classes apart (tests/builders.py: bicycles are bright at the top,
    motorcycles at the bottom): the champion a swapped-label challenger must not replace."""
    import onnx
    from onnx import TensorProto, helper

    def constant(name, values, kind=TensorProto.INT64, dims=None):
        return helper.make_tensor(name, kind, dims or [len(values)], values)

    graph = helper.make_graph(
        [helper.make_node("Slice", ["image", "zero", "half", "rows"], ["top"]),
         helper.make_node("Slice", ["image", "half", "full", "rows"], ["bottom"]),
         helper.make_node("ReduceMean", ["top", "axes"], ["top_mean"], keepdims=0),
         helper.make_node("ReduceMean", ["bottom", "axes"], ["bottom_mean"], keepdims=0),
         helper.make_node("Sub", ["top_mean", "bottom_mean"], ["difference"]),
         helper.make_node("Unsqueeze", ["difference", "one"], ["column"]),
         helper.make_node("MatMul", ["column", "weight"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1)],
        "top-bottom", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 2])],
        [constant("zero", [0]), constant("half", [16]), constant("full", [32]), constant("rows", [2]),
         constant("axes", [1, 2, 3]), constant("one", [1]),
         constant("weight", [20.0, -20.0], TensorProto.FLOAT, [1, 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    folder = path.parent / "top-bottom-model"
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, folder / "model.onnx")
    (folder / "model-meta.json").write_text(json.dumps({"image_shape": [3, 32, 32], "mean": [0, 0, 0],
                                                        "std": [1, 1, 1], "class_names": ["bicycle", "motorcycle"]}))
    with tarfile.open(path, "w:gz") as tar:
        for item in sorted(folder.iterdir()):
            tar.add(item, arcname=item.name)
    return path

EXECUTION_EVENTS = "SageMaker Model Building Pipeline Execution Status Change"


def _swap(labels):
    return [48 if label == 8 else 8 if label == 48 else label for label in labels]


def _messages(sqs, url: str, until, timeout: float = 30.0) -> list[dict]:
    bodies, deadline = [], time.monotonic() + timeout
    while not until(bodies) and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            bodies.append(json.loads(message["Body"]))
    return bodies


@pytest.mark.e2e
def test_a_swapped_label_challenger_is_stopped_by_the_champion_gate(tmp_path):
    # the challenger's own data: the tiny archive's images with the train labels swapped (never our held-out data)
    swapped = make_cifar_archive(tmp_path / "swapped-labels.tar.gz", per_class_train=30, per_class_test=10,
                                 replaced={"train": {"fine_labels": _swap}})
    champion = write_top_bottom_artifact(tmp_path / "champion" / "model.tar.gz")
    config = load_local_config(environ={})
    stop, seen = threading.Event(), {}

    def session(stack, env_file):
        try:
            sm, sqs, bus = stack.client("sagemaker"), stack.client("sqs"), stack.client("events")
            seen["champion"] = deploy_artifact(stack, champion, "champion")       # live, Approved: v1
            seen["config_before"] = sm.describe_endpoint(EndpointName=config.endpoint.name)["EndpointConfigName"]
            url = sqs.create_queue(QueueName="my-pipeline-events")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            bus.put_rule(Name="my-pipeline-events", State="ENABLED", EventPattern=json.dumps({
                "source": ["aws.sagemaker"], "detail-type": [EXECUTION_EVENTS]}))
            bus.put_targets(Rule="my-pipeline-events", Targets=[{"Id": "mine", "Arn": arn}])

            seen["code"] = cli.run_pipeline(["--environment", "local", "--data-source", str(swapped),
                                             "--accuracy-threshold", "0", "--epochs", str(TINY_EPOCHS), "--wait",
                                             "--poll-seconds", "0.5"])
            newest = sm.list_pipeline_executions(PipelineName=config.pipeline.name)["PipelineExecutionSummaries"][0]
            seen["execution"] = sm.describe_pipeline_execution(PipelineExecutionArn=newest["PipelineExecutionArn"])
            seen["steps"] = {s["StepName"]: s for s in sm.list_pipeline_execution_steps(
                PipelineExecutionArn=newest["PipelineExecutionArn"])["PipelineExecutionSteps"]}
            seen["packages"] = sm.list_model_packages(ModelPackageGroupName=config.registry.model_package_group)[
                "ModelPackageSummaryList"]
            seen["config_after"] = sm.describe_endpoint(EndpointName=config.endpoint.name)["EndpointConfigName"]
            stack.executions.events.wait_idle()
            seen["events"] = _messages(sqs, url, lambda bodies: any(
                b["detail"]["currentPipelineExecutionStatus"] == "Failed" for b in bodies))
        finally:
            stop.set()

    serve(config, tmp_path / "run", stop, on_ready=session)

    assert seen["code"] == 1 and seen["execution"]["PipelineExecutionStatus"] == "Failed"
    steps = seen["steps"]
    assert steps["CheckAccuracy"]["Metadata"]["Condition"]["Outcome"] == "True"      # the lowered gate let it through
    assert steps["FindChampion"]["StepStatus"] == "Succeeded" and steps["ScoreChampion"]["StepStatus"] == "Succeeded"
    assert steps["ChampionGate"]["Metadata"]["Condition"]["Outcome"] == "False"
    stopped = steps["ChallengerWorseThanChampion"]
    assert stopped["StepStatus"] == "Failed"
    message = stopped["Metadata"]["Fail"]["ErrorMessage"]
    assert message.startswith("Champion gate: the challenger is worse than v1 on accuracy")
    assert "accuracy 0." in message and "vs 1.0000;" in message     # the live model on the challenger's test images
    assert "tolerance 0.02" in message and "not registered" in message
    assert "RegisterModel" not in steps and "DeployModel" not in steps
    assert [p["ModelPackageArn"] for p in seen["packages"]] == [seen["champion"]]       # no new package
    assert seen["config_after"] == seen["config_before"] == f"{config.endpoint.name}-v1"
    statuses = [(e["detail"]["currentPipelineExecutionStatus"], e["detail"].get("previousPipelineExecutionStatus"))
                for e in seen["events"]]
    assert statuses == [("Executing", None), ("Failed", "Executing")]
    failed = seen["events"][-1]
    assert failed["source"] == "aws.sagemaker" and failed["detail-type"] == EXECUTION_EVENTS
    assert failed["detail"]["pipelineExecutionArn"] == seen["execution"]["PipelineExecutionArn"]
    assert failed["resources"] == [failed["detail"]["pipelineArn"], failed["detail"]["pipelineExecutionArn"]]
