"""Executes a SageMaker pipeline definition (the JSON ``get_pipeline().definition()`` returns) locally."""
from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from local_runtime.aws import ACCOUNT_ID
from local_runtime.errors import LocalRuntimeError
from local_runtime.pipeline.cache import StepCache, cache_key
from local_runtime.pipeline.expressions import Context, resolve
from local_runtime.pipeline.graph import StepNode, collect_steps, execution_order
from local_runtime.pipeline.request_validation import ValidationException, step_request, validate_request
from local_runtime.pipeline.runners import control, models, processing, training, transform
from local_runtime.pipeline.runners.base import StepContext, StepFailedError
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


class ParameterError(LocalRuntimeError, ValueError):
    """A start parameter is not declared by the pipeline, or has the wrong type."""


@dataclass
class StepRecord:
    name: str
    type: str
    status: str = "NotStarted"      # Executing, Succeeded, Failed, Skipped, Cached
    seconds: float = 0.0
    failure: str | None = None
    log_path: str | None = None
    progress: str | None = None     # the job's latest progress line while Executing


@dataclass
class ExecutionRecord:
    execution_id: str
    pipeline_name: str
    parameters: dict
    status: str = "Executing"
    failure: str | None = None
    started: float = field(default_factory=time.time)
    seconds: float = 0.0
    steps: list[StepRecord] = field(default_factory=list)

    def step(self, name: str) -> StepRecord:
        return next(s for s in self.steps if s.name == name)


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


class PipelineExecutor:
    """Runs steps in dependency order; condition branches run only when selected.

    ``persist`` makes what the steps wrote to S3 durable (the run saves its state); it is called
    before a step's cache entry is recorded, so an entry never outlives its outputs.
    ``image_environment`` is the environment of the local built-in algorithm image (the stand-in
    trainer), e.g. ``SCONES_LOCAL_TRAINER``: local-only settings that never enter a request.
    """

    def __init__(self, definition: dict | str, clients, run_dir: Path,
                 on_step: Callable[[StepRecord], None] | None = None,
                 image_environment: dict[str, str] | None = None, persist: Callable[[], None] | None = None):
        self.definition = json.loads(definition) if isinstance(definition, str) else definition
        self.nodes = collect_steps(self.definition)
        self.order = execution_order(self.nodes)
        self.clients = clients
        self.run_dir = Path(run_dir)
        self.cache = StepCache(self.run_dir / "cache", clients.client("s3"))
        self.persist = persist or (lambda: None)
        self.on_step = on_step or (lambda record: None)
        self.image_environment = dict(image_environment or {})
        self.last_properties: dict[str, dict] = {}

    def start(self, pipeline_name: str, parameters: dict[str, Any] | None = None) -> ExecutionRecord:
        execution_id = uuid.uuid4().hex[:12]
        record = ExecutionRecord(execution_id, pipeline_name, bind_parameters(self.definition, parameters or {}),
                                 steps=[StepRecord(n, self.nodes[n].type) for n in self.order])
        ctx = Context(parameters=record.parameters, execution={
            "PipelineExecutionId": execution_id, "PipelineName": pipeline_name,
            "PipelineExecutionArn": f"arn:aws:sagemaker:{self.clients.region}:{ACCOUNT_ID}:pipeline/{pipeline_name}/execution/{execution_id}",
            "StartDateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        self.last_properties = ctx.step_properties
        selected: set[str] = set()
        started = time.perf_counter()
        try:
            for name in self.order:
                node = self.nodes[name]
                step = record.step(name)
                if node.branch_of and name not in selected:
                    step.status = "Skipped"
                    continue
                self._run_step(node, step, ctx, record, selected)
            record.status = "Succeeded"
        except (StepFailedError, control.PipelineFailStepError) as exc:
            record.status, record.failure = "Failed", str(exc)
        except BaseException:               # Ctrl-C: the record says so, the finally saves it
            record.status, record.failure = "Stopped", "interrupted"
            raise
        finally:
            record.seconds = round(time.perf_counter() - started, 3)
            for step in record.steps:
                if step.status == "NotStarted":
                    step.status = "Skipped"
            self._save(record)
        return record

    def _run_step(self, node: StepNode, step: StepRecord, ctx: Context, record: ExecutionRecord,
                  selected: set[str]) -> None:
        step.status = "Executing"
        self.on_step(step)
        started = time.perf_counter()
        try:
            if node.type == "Condition":
                ctx.step_properties[node.name] = control.condition(node.spec, ctx)
                branch = "IfSteps" if ctx.step_properties[node.name]["Outcome"] == "true" else "ElseSteps"
                selected.update(child["Name"] for child in node.spec["Arguments"].get(branch, []))
            elif node.type == "Fail":
                control.fail(resolve(node.spec.get("Arguments", {}), ctx), node.name)
            else:
                self._run_job(node, step, ctx, record)
        except control.PipelineFailStepError as exc:
            step.status, step.failure = "Failed", exc.message
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
            if step.status != "Executing":
                self.on_step(step)
        if step.status == "Executing":
            step.status = "Succeeded"
            self.on_step(step)

    def _run_job(self, node: StepNode, step: StepRecord, ctx: Context, record: ExecutionRecord) -> None:
        runner = _RUNNERS.get(node.type)
        if runner is None:
            raise StepFailedError(node.name, f"step type {node.type!r} is not supported by the local runtime")
        arguments = resolve(node.spec.get("Arguments", {}), ctx)
        work_dir = self.run_dir / "jobs" / record.execution_id / node.name

        def report(message: str) -> None:
            step.progress = message
            self.on_step(step)

        step_ctx = StepContext(node.name, node.type, record.pipeline_name, record.execution_id, work_dir,
                               self.clients, node.spec, report, self.image_environment)
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
            step.status = "Cached"
            return
        work_dir.mkdir(parents=True, exist_ok=True)
        step.log_path = str(work_dir / "job.log")
        properties, property_files = runner(arguments, step_ctx)
        ctx.step_properties[node.name] = properties
        ctx.property_files[node.name] = property_files
        if key:
            self.persist()
            self.cache.record(key, node.type, properties, property_files)

    def _save(self, record: ExecutionRecord) -> None:
        write_atomic(self.run_dir / "executions" / f"{record.execution_id}.json",
                     json.dumps(asdict(record), indent=2, default=str))
