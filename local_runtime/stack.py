"""The local stack: local AWS APIs, the endpoint runtime and what the SAM template provisions.

One way to bring the serving side up, used by the main run, the tests and the benchmarks. It is
also where the siblings under ``local_runtime/`` are wired to one another: the pipeline executor
records its jobs through ``moto_ext.sagemaker_jobs`` (as :class:`JobStates` callbacks) and is
attached to ``moto_ext.pipeline_executions`` as the handler of started executions, and moves job data
through the local S3's store (``job_data.py``); neither package imports the other.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import ClientError, WaiterError

from local_runtime.alarms import AlarmEvaluator
from local_runtime.aws import LocalAws, free_port, local_aws
from local_runtime.moto_ext import pipeline_executions, sagemaker_jobs
from local_runtime.pipeline.events import PipelineEvents
from local_runtime.pipeline.jobs import JobStates
from local_runtime.pipeline.service import ExecutionService
from local_runtime.provision import Provisioned, provision
from local_runtime.serving.deployments import DeploymentDriver
from local_runtime.serving.endpoint_server import READ_TIMEOUT_SECONDS, EndpointServer
from local_runtime.settings import LocalConfig, trainer_environment

log = logging.getLogger("local_runtime")


@dataclass
class LocalStack:
    aws: LocalAws
    config: LocalConfig
    resources: Provisioned
    server: EndpointServer
    executions: ExecutionService | None = None
    alarms: AlarmEvaluator | None = None
    deployments: DeploymentDriver | None = None

    def client(self, service: str):
        return self.aws.client(service)


JOBS, EXECUTIONS = "sagemaker.jobs", "sagemaker.pipeline-executions"


def _saved(change, kind: str):
    """``change`` (a job-state callback of the executor's worker thread), then the kind saved before it returns."""
    from local_runtime import state

    def saved(*args, **kwargs):
        result = change(*args, **kwargs)
        state.commit(kind)
        return result
    return saved


class SavedPipelineEvents(PipelineEvents):
    """The executor's status changes, each saved (``state.commit``) before its event is published."""

    def __init__(self, clients):
        super().__init__(clients)
        self._saved: dict[tuple[str, str | None], str] = {}

    def _save(self, key: tuple[str, str | None], status: str) -> None:
        from local_runtime import state

        if self._saved.get(key) != status:      # a running step's progress lines change nothing saved
            state.commit(EXECUTIONS)
            self._saved[key] = status

    def execution(self, record) -> None:
        self._save((record.execution_arn, None), record.status)
        super().execution(record)

    def step(self, record, step) -> None:
        self._save((record.execution_arn, step.name), step.status)
        super().step(record, step)


@contextmanager
def local_stack(config: LocalConfig, run_dir: Path, capture_flush_seconds: float = 1.0, aws_port: int | None = None,
                runtime_port: int | None = None,
                read_timeout_seconds: float = READ_TIMEOUT_SECONDS) -> Iterator[LocalStack]:
    """Starts moto, the pipeline executions' worker and the endpoint server; provisions bucket, Lambdas,
    state machine and rules."""
    port = free_port(runtime_port)
    with local_aws(config.project.region, runtime_url=f"http://127.0.0.1:{port}", port=aws_port,
                   endpoint_transition_seconds=config.endpoint.local_transition_seconds,
                   cors_origins=tuple(getattr(getattr(config, "local_api", None), "cors_origins", ()))) as aws:
        from local_runtime import state
        from local_runtime.job_data import InProcessObjects
        from local_runtime.pipeline.s3io import ApiObjects

        executions = ExecutionService(aws, run_dir, trainer_environment(config.local_trainer),
                                      persist=lambda: state.save(aws, config.storage.bucket, Path(run_dir) / "state"),
                                      job_states=JobStates(started=_saved(sagemaker_jobs.job_started, JOBS),
                                                           finished=_saved(sagemaker_jobs.job_finished, JOBS),
                                                           failed=_saved(sagemaker_jobs.job_failed, JOBS),
                                                           stopped=_saved(sagemaker_jobs.job_stopped, JOBS)),
                                      events=SavedPipelineEvents(aws),
                                      objects=InProcessObjects(ApiObjects(aws.client("s3"))))
        pipeline_executions.attach(executions)
        server = EndpointServer(aws, run_dir, config.endpoint.name, port=port,
                                capture_flush_seconds=capture_flush_seconds,
                                read_timeout_seconds=read_timeout_seconds).start()
        alarms = deployments = None
        try:
            resources = provision(aws, config)
            alarms = AlarmEvaluator(aws).start()
            deployments = DeploymentDriver(aws, server).start()
            yield LocalStack(aws, config, resources, server, executions, alarms, deployments)
        finally:
            for part in (deployments, alarms):
                if part:
                    part.stop()
            server.stop()          # its last capture records go through the local S3, hence to the saved state
            pipeline_executions.detach(executions)
            executions.close()
            state.detach()


def deploy_artifact(stack: LocalStack, artifact: Path, label: str, approval_status: str = "Approved",
                    evaluation_dir: Path | None = None) -> str:
    """Registers ``model.tar.gz`` as a package and runs the real deploy Lambda on it.

    For serving a model trained elsewhere (or a test model) without running the pipeline;
    returns the package ARN. A package that is not Approved is registered but not deployed.
    ``evaluation_dir`` (evaluation.json, baseline.json) is uploaded and registered as the package's
    model statistics, as RegisterModel does, so the drift monitor finds its baseline.
    """
    from pipelines.scones.pipeline import algorithm_image_uri

    config = stack.config
    s3, sm = stack.client("s3"), stack.client("sagemaker")
    key = f"{config.storage.prefix}/models/{label}/model.tar.gz"
    s3.upload_file(str(artifact), config.storage.bucket, key)
    group = config.registry.model_package_group
    if not sm.list_model_package_groups(NameContains=group)["ModelPackageGroupSummaryList"]:
        sm.create_model_package_group(ModelPackageGroupName=group)
    image = algorithm_image_uri(config.project.region)
    extra = {}
    if evaluation_dir is not None:
        for item in sorted(Path(evaluation_dir).iterdir()):
            s3.upload_file(str(item), config.storage.bucket, f"{config.storage.prefix}/evaluation/{label}/{item.name}")
        extra["ModelMetrics"] = {"ModelQuality": {"Statistics": {
            "ContentType": "application/json",
            "S3Uri": f"s3://{config.storage.bucket}/{config.storage.prefix}/evaluation/{label}/evaluation.json"}}}
    package_arn = sm.create_model_package(
        ModelPackageGroupName=group, ModelApprovalStatus=approval_status,
        CustomerMetadataProperties={"source": label},
        InferenceSpecification={"Containers": [{"Image": image, "ModelDataUrl": f"s3://{config.storage.bucket}/{key}"}],
                                "SupportedContentTypes": ["image/png", "application/x-image"],
                                "SupportedResponseMIMETypes": ["application/json"]},
        **extra,
    )["ModelPackageArn"]
    response = stack.client("lambda").invoke(FunctionName=stack.resources.deploy_function_arn,
                                             Payload=json.dumps({"model_package_arn": package_arn}).encode())
    result = json.loads(response["Payload"].read())
    if response.get("FunctionError"):
        raise RuntimeError(f"deploy Lambda failed: {result.get('errorType')}: {result.get('errorMessage')}")
    if approval_status == "Approved":
        wait_until_settled(sm, config.endpoint.name,
                           timeout=60 + 3 * config.endpoint.local_transition_seconds + 2 * config.deployment.wait_seconds)
    return package_arn


def wait_until_settled(sm, endpoint_name: str, timeout: float = 120.0, poll: float = 0.1) -> dict | None:
    """Waits with the SDK's ``endpoint_in_service`` waiter while the endpoint is Creating/Updating.

    Returns the final DescribeEndpoint (InService, Failed, or still in progress after ``timeout``),
    or None when there is no such endpoint.
    """
    try:
        sm.get_waiter("endpoint_in_service").wait(
            EndpointName=endpoint_name, WaiterConfig={"Delay": poll, "MaxAttempts": max(1, int(timeout / poll))})
    except WaiterError as exc:
        log.debug("endpoint %s did not reach InService: %s", endpoint_name, exc)
    try:
        return sm.describe_endpoint(EndpointName=endpoint_name)
    except ClientError:
        return None
