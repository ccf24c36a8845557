"""Executes a SageMaker pipeline definition (the JSON ``get_pipeline().definition()`` returns) locally.

The result is an :class:`ExecutionRecord`: per-step status, times, failure, the step metadata
``ListPipelineExecutionSteps`` reports, and every step's properties and property files (what a
caller reads instead of re-downloading outputs). The record types and :class:`ParameterError` live in
``local_runtime/execution_records.py``, which the moto patches answering those actions share.
"""
from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from local_runtime.aws_env import ACCOUNT_ID
from local_runtime.errors import LocalRuntimeError
from local_runtime.execution_records import ExecutionRecord, ParameterError, StepRecord
from local_runtime.pipeline.cache import StepCache, cache_key
from local_runtime.pipeline.expressions import Context, resolve
from local_runtime.pipeline.graph import StepNode, collect_steps, execution_order
from local_runtime.pipeline.jobs import JobTracker, NoJobTracker
from local_runtime.pipeline.runners import control, models, processing, training, transform
from local_runtime.pipeline.runners.base import JobStoppedError, StepContext, StepFailedError
from local_runtime.pipeline.runners.job_process import StopSignal
from local_runtime.pipeline.s3io import JobObjects
from local_runtime.pipeline.step_requests import step_request
from local_runtime.request_validation import ValidationException, validate_request
from scones_common.atomic import write_atomic

log = logging.getLogger("local_runtime.pipeline")

_RUNNERS: dict[str, Callable[[dict, StepContext], tuple[dict, dict]]] = {
    "Processing": processing.run,
    "Training": training.run,
    "Model": models.create_model,
    "RegisterModel": models.register_model,
    "Transform": transform.run,
    "Lambda": control.invoke_lambda,
}


def save_record(run_dir: Path, record: ExecutionRecord) -> Path:
    """The execution's record on disk, ``<run dir>/executions/<execution id>.json``, written atomically."""
    path = Path(run_dir) / "executions" / f"{record.execution_id}.json"
    write_atomic(path, json.dumps(asdict(record), indent=2, default=str))
    return path


class ExecutionStoppedError(LocalRuntimeError, RuntimeError):
    """StopPipelineExecution was called: no further step starts."""


def bind_parameters(definition: dict, given: dict[str, Any]) -> dict[str, Any]:
    declared = {p["Name"]: p for p in definition.get("Parameters", [])}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise ParameterError(f"parameters {unknown} are not declared; declared: {sorted(declared)}")
    casts = {"String": str, "Integer": int, "Float": float, "Boolean": lambda v: str(v).lower() == "true"}
    bound = {}
    for name, spec in declared.items():
        value = given.get(name, spec.get("DefaultValue"))
        try:
            bound[name] = casts[spec["Type"]](value)
        except (TypeError, ValueError):
            raise ParameterError(f"parameter {name}={value!r} is not a valid {spec['Type']}") from None
    return bound


def step_metadata(node: StepNode, properties: dict, region: str) -> dict:
    """What ListPipelineExecutionSteps reports for a finished step (botocore's PipelineExecutionStepMetadata)."""
    arn = f"arn:aws:sagemaker:{region}:{ACCOUNT_ID}"
    if node.type == "Training":
        return {"TrainingJob": {"Arn": properties.get("TrainingJobArn") or f"{arn}:training-job/{properties['TrainingJobName']}"}}
    if node.type == "Processing":
        return {"ProcessingJob": {"Arn": properties.get("ProcessingJobArn")
                                  or f"{arn}:processing-job/{properties['ProcessingJobName']}"}}
    if node.type == "Transform":
        return {"TransformJob": {"Arn": properties.get("TransformJobArn")
                                 or f"{arn}:transform-job/{properties['TransformJobName']}"}}
    if node.type == "Model":
        return {"Model": {"Arn": properties.get("ModelArn") or f"{arn}:model/{properties['ModelName']}"}}
    if node.type == "RegisterModel":
        return {"RegisterModel": {"Arn": properties["ModelPackageArn"]}}
    if node.type == "Lambda":
        return {"Lambda": {"Arn": node.spec["FunctionArn"],
                           "OutputParameters": [{"Name": o["Name"], "Value": str(o["Value"])}
                                                for o in properties.get("OutputParameters", [])]}}
    return {}


class PipelineExecutor:
    """Runs steps in dependency order; condition branches run only when selected.

    ``persist`` makes what the steps wrote to S3 durable (the run saves its state); it is called
    before a step's cache entry is recorded, so an entry never outlives its outputs.
    ``image_environment`` is the environment of the local built-in algorithm image (the stand-in
    trainer), e.g. ``SCONES_LOCAL_TRAINER``: local-only settings that never enter a request.
    """

    def __init__(self, definition: dict | str, clients, run_dir: Path,
                 on_step: Callable[[StepRecord], None] | None = None,
                 image_environment: dict[str, str] | None = None, persist: Callable[[], None] | None = None,
                 jobs: JobTracker | None = None, objects: JobObjects | None = None):
        self.definition = json.loads(definition) if isinstance(definition, str) else definition
        self.nodes = collect_steps(self.definition)
        self.order = execution_order(self.nodes)
        self.clients = clients
        self.run_dir = Path(run_dir)
        self.cache = StepCache(self.run_dir / "cache", clients.client("s3"))
        self.persist = persist or (lambda: None)
        self.on_step = on_step or (lambda record: None)
        self.image_environment = dict(image_environment or {})
        self.jobs = jobs or NoJobTracker()
        self.objects = objects

    def prepare(self, pipeline_name: str, parameters: dict[str, Any] | None = None,
                execution_arn: str | None = None) -> ExecutionRecord:
        """A new execution's record with its parameters bound (a ParameterError if they do not fit)."""
        execution_id = execution_arn.rsplit("/", 1)[1] if execution_arn else uuid.uuid4().hex[:12]
        arn = execution_arn or (f"arn:aws:sagemaker:{self.clients.region}:{ACCOUNT_ID}:pipeline/"
                                f"{pipeline_name}/execution/{execution_id}")
        return ExecutionRecord(execution_id, pipeline_name, bind_parameters(self.definition, parameters or {}),
                               steps=[StepRecord(n, self.nodes[n].type) for n in self.order], execution_arn=arn)

    def start(self, pipeline_name: str, parameters: dict[str, Any] | None = None) -> ExecutionRecord:
        return self.run(self.prepare(pipeline_name, parameters))

    def run(self, record: ExecutionRecord, stop: StopSignal | None = None) -> ExecutionRecord:
        """Runs (or, after a failure, resumes) ``record``: steps that already succeeded keep their results,
        as RetryPipelineExecution does. ``stop`` (StopPipelineExecution) stops the running job and starts no step."""
        stop = stop or StopSignal()
        done = {s.name for s in record.steps if s.status in ("Succeeded", "Cached")}
        ctx = Context(parameters=record.parameters, execution={
            "PipelineExecutionId": record.execution_id, "PipelineName": record.pipeline_name,
            "PipelineExecutionArn": record.execution_arn,
            "StartDateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.started))},
            step_properties=record.properties, property_files=record.property_files)
        record.status, record.failure, record.ended_at = "Executing", None, None
        selected = {child["Name"] for name in done if self.nodes[name].type == "Condition"
                    for child in self.nodes[name].spec["Arguments"].get(
                        "IfSteps" if record.properties[name]["Outcome"] == "true" else "ElseSteps", [])}
        started = time.perf_counter()
        try:
            for name in self.order:
                node = self.nodes[name]
                step = record.step(name)
                if name in done:
                    continue
                if node.branch_of and name not in selected:
                    step.status = "Skipped"
                    continue
                if stop.is_set():
                    raise ExecutionStoppedError("stopped by StopPipelineExecution")
                step.status, step.failure, step.progress = "NotStarted", None, None
                self._run_step(node, step, ctx, record, selected, stop)
            record.status = "Succeeded"
        except (StepFailedError, control.PipelineFailStepError) as exc:
            record.status, record.failure = "Failed", str(exc)
        except ExecutionStoppedError:
            record.status = "Stopped"
        except BaseException:               # Ctrl-C: the record says so, the finally saves it
            record.status, record.failure = "Stopped", "interrupted"
            raise
        finally:
            record.seconds = round(record.seconds + time.perf_counter() - started, 3)
            record.ended_at = time.time()
            for step in record.steps:
                if step.status == "NotStarted":
                    step.status = "Skipped"
            self._save(record)
        return record

    def _run_step(self, node: StepNode, step: StepRecord, ctx: Context, record: ExecutionRecord,
                  selected: set[str], stop: StopSignal) -> None:
        step.status, step.started_at, step.ended_at = "Executing", time.time(), None
        step.attempts += 1
        self.on_step(step)
        started = time.perf_counter()
        try:
            if node.type == "Condition":
                ctx.step_properties[node.name] = control.condition(node.spec, ctx)
                outcome = ctx.step_properties[node.name]["Outcome"]
                step.metadata = {"Condition": {"Outcome": "True" if outcome == "true" else "False"}}
                branch = "IfSteps" if outcome == "true" else "ElseSteps"
                selected.update(child["Name"] for child in node.spec["Arguments"].get(branch, []))
            elif node.type == "Fail":
                control.fail(resolve(node.spec.get("Arguments", {}), ctx), node.name)
            else:
                self._run_job(node, step, ctx, record, stop)
        except JobStoppedError as exc:
            step.status = "Stopped"
            raise ExecutionStoppedError(str(exc)) from exc
        except control.PipelineFailStepError as exc:
            step.status, step.failure = "Failed", exc.message
            step.metadata = {"Fail": {"ErrorMessage": exc.message}}
            raise
        except StepFailedError as exc:
            step.status, step.failure = "Failed", exc.reason
            step.log_path = str(exc.log_path) if exc.log_path else None
            raise
        except Exception as exc:   # any other error is this step's failure, named
            step.status, step.failure = "Failed", f"{type(exc).__name__}: {exc}"
            raise StepFailedError(node.name, step.failure) from exc
        finally:
            step.seconds = round(time.perf_counter() - started, 3)
            step.ended_at = time.time()
            if step.status != "Executing":
                self.on_step(step)
        if step.status == "Executing":
            step.status = "Succeeded"
            self.on_step(step)

    def _run_job(self, node: StepNode, step: StepRecord, ctx: Context, record: ExecutionRecord,
                 stop: StopSignal) -> None:
        runner = _RUNNERS.get(node.type)
        if runner is None:
            raise StepFailedError(node.name, f"step type {node.type!r} is not supported by the local runtime")
        arguments = resolve(node.spec.get("Arguments", {}), ctx)
        work_dir = self.run_dir / "jobs" / record.execution_id / node.name

        def report(message: str) -> None:
            step.progress = message
            self.on_step(step)

        step_ctx = StepContext(node.name, node.type, record.pipeline_name, record.execution_id, work_dir,
                               self.clients, node.spec, report, self.image_environment, self.objects, stop)
        request = step_request(node.type, arguments, step_ctx.job_name)
        if request:
            try:
                validate_request(*request)
            except ValidationException as exc:
                raise StepFailedError(node.name, exc.failure_reason) from exc
        key = cache_key(node, arguments)
        entry = self.cache.lookup(key, node.name) if key else None
        if entry:
            ctx.step_properties[node.name] = entry.properties
            ctx.property_files[node.name] = entry.property_files
            step.metadata = step_metadata(node, entry.properties, self.clients.region)
            step.cache_source_arn = entry.source_execution_arn or record.execution_arn
            step.status = "Cached"
            return
        work_dir.mkdir(parents=True, exist_ok=True)
        step.log_path = str(work_dir / "job.log")
        job = self.jobs.started(step_ctx, arguments)
        if job:
            step.metadata = job
        try:
            properties, property_files = runner(arguments, step_ctx)
        except JobStoppedError:
            self.jobs.stopped(step_ctx)
            raise
        except Exception as exc:
            self.jobs.failed(step_ctx, getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}")
            raise
        self.jobs.succeeded(step_ctx, properties)
        ctx.step_properties[node.name] = properties
        ctx.property_files[node.name] = property_files
        if not job:
            step.metadata = step_metadata(node, properties, self.clients.region)
        if key:
            self.persist()
            self.cache.record(key, node.type, properties, property_files, record.execution_arn)

    def _save(self, record: ExecutionRecord) -> None:
        save_record(self.run_dir, record)
