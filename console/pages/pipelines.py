"""Pipelines, their executions (graph, steps, parameters), the jobs steps ran, and the start form.

Reads: ListPipelines, ListPipelineExecutions, DescribePipelineExecution (who started it),
DescribePipeline / DescribePipelineDefinitionForExecution (the graph), ListPipelineExecutionSteps
(status per step), ListPipelineParametersForExecution, Describe{Training,Processing,Transform}Job and
CloudWatch Logs. Writes: StartPipelineExecution with the definition's declared parameters.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

from botocore.exceptions import ClientError
from flask import Blueprint, abort, redirect, render_template, request, url_for

from console import formatting
from console.context import context
from console.errors import ConsoleError
from console.graph import pipeline_steps, render_svg

blueprint = Blueprint("pipelines", __name__)
EXECUTIONS_SHOWN = 25
FINISHED = ("Succeeded", "Failed", "Stopped")
JOB_KINDS = {"training": ("TrainingJob", "describe_training_job", "TrainingJobName", "/aws/sagemaker/TrainingJobs"),
             "processing": ("ProcessingJob", "describe_processing_job", "ProcessingJobName",
                            "/aws/sagemaker/ProcessingJobs"),
             "transform": ("TransformJob", "describe_transform_job", "TransformJobName", "/aws/sagemaker/TransformJobs")}
LOG_EVENTS_SHOWN = 400


class ParameterValueError(ConsoleError, ValueError):
    """A start-form value that does not fit the parameter's declared type."""


@dataclass(frozen=True)
class ExecutionRow:
    execution_id: str
    arn: str
    display_name: str
    status: str
    started: datetime | None
    seconds: float | None
    started_by: str
    trigger: str
    failure: str


@dataclass
class StepRow:
    name: str
    type: str
    status: str
    started: datetime | None
    seconds: float | None
    cache_source: str | None           # execution id the cached result came from
    failure: str
    job: tuple[str, str] | None        # (kind, name) for the job page
    package_version: str | None
    detail: str
    attempts: int = 1


@dataclass
class ExecutionView:
    pipeline: str
    execution_id: str
    describe: dict
    rows: list[StepRow]
    parameters: list[dict]
    graph_svg: str
    seconds: float | None
    running: bool
    not_run: list[str] = field(default_factory=list)


def execution_id(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def execution_seconds(describe: dict, now: datetime | None = None) -> float | None:
    """Finished: creation to last modification; running: creation to now."""
    start = describe.get("CreationTime")
    end = describe.get("LastModifiedTime") if describe.get("PipelineExecutionStatus") in FINISHED \
        else (now or datetime.now(UTC))
    return formatting.seconds_between(start, end)


def declared_parameters(definition: dict) -> list[dict]:
    """The definition's Parameters (Name, Type, DefaultValue), as the start form shows them."""
    return [{"Name": p["Name"], "Type": p.get("Type", "String"), "DefaultValue": p.get("DefaultValue", "")}
            for p in definition.get("Parameters", [])]


def start_parameters(declared: list[dict], form: dict[str, str]) -> list[dict]:
    """StartPipelineExecution's PipelineParameters: the values the form changed from their defaults, each
    checked against its declared type (SageMaker would refuse them later, with a vaguer message)."""
    chosen = []
    for parameter in declared:
        name, kind = parameter["Name"], parameter["Type"]
        value = (form.get(f"param-{name}") or "").strip()
        if value == "" or value == str(parameter["DefaultValue"]):
            continue
        if kind == "Integer":
            try:
                int(value)
            except ValueError:
                raise ParameterValueError(f"{name} must be a whole number, got {value!r}") from None
        elif kind == "Float":
            try:
                number = float(value)
            except ValueError:
                raise ParameterValueError(f"{name} must be a number, got {value!r}") from None
            if not math.isfinite(number):
                raise ParameterValueError(f"{name} must be a finite number, got {value!r}")
        elif kind == "Boolean" and value.lower() not in ("true", "false"):
            raise ParameterValueError(f"{name} must be true or false, got {value!r}")
        chosen.append({"Name": name, "Value": value})
    return chosen


def job_of(metadata: dict) -> tuple[str, str] | None:
    """(kind, job name) of the job a step ran, from ListPipelineExecutionSteps' Metadata."""
    for kind, (key, *_rest) in JOB_KINDS.items():
        arn = metadata.get(key, {}).get("Arn")
        if arn:
            return kind, arn.rsplit("/", 1)[-1]
    return None


def step_detail(metadata: dict) -> str:
    """What else the step's Metadata says: a condition's outcome, a Fail step's message, a model, a Lambda."""
    if "Condition" in metadata:
        return f"condition {str(metadata['Condition'].get('Outcome', '')).lower()}"
    if "Fail" in metadata:
        return metadata["Fail"].get("ErrorMessage", "")
    if "Model" in metadata:
        return f"model {formatting.last_part(metadata['Model'].get('Arn'))}"
    if "Lambda" in metadata:
        outputs = ", ".join(f"{o.get('Name')}={o.get('Value')}" for o in metadata["Lambda"].get("OutputParameters", []))
        return f"Lambda {formatting.last_part(metadata['Lambda'].get('Arn')).split(':')[-1]}" + (
            f": {outputs}" if outputs else "")
    return ""


def step_rows(steps: list[dict], types: dict[str, str]) -> list[StepRow]:
    rows = []
    for step in sorted(steps, key=lambda s: s.get("StartTime") or datetime.min.replace(tzinfo=UTC)):
        metadata = step.get("Metadata", {}) or {}
        source = step.get("CacheHitResult", {}).get("SourcePipelineExecutionArn")
        package = metadata.get("RegisterModel", {}).get("Arn")
        rows.append(StepRow(step["StepName"], types.get(step["StepName"], ""), step["StepStatus"], step.get("StartTime"),
                            formatting.seconds_between(step.get("StartTime"), step.get("EndTime")),
                            execution_id(source) if source else None, step.get("FailureReason", ""), job_of(metadata),
                            formatting.version_of(package) if package else None, step_detail(metadata),
                            step.get("AttemptCount", 1)))
    return rows


def _pages(sm, operation: str, key: str, **request_args) -> list[dict]:
    items, token = [], None
    while True:
        response = getattr(sm, operation)(**request_args, **({"NextToken": token} if token else {}))
        items += response.get(key, [])
        token = response.get("NextToken")
        if not token:
            return items


def list_executions(sm, pipeline: str, limit: int = EXECUTIONS_SHOWN) -> list[ExecutionRow]:
    summaries = sm.list_pipeline_executions(PipelineName=pipeline, SortOrder="Descending",
                                            MaxResults=limit)["PipelineExecutionSummaries"]
    rows = []
    for summary in summaries:
        describe = sm.describe_pipeline_execution(PipelineExecutionArn=summary["PipelineExecutionArn"])
        rows.append(ExecutionRow(execution_id(summary["PipelineExecutionArn"]), summary["PipelineExecutionArn"],
                                 summary.get("PipelineExecutionDisplayName", ""), describe["PipelineExecutionStatus"],
                                 describe.get("CreationTime") or summary.get("StartTime"), execution_seconds(describe),
                                 formatting.started_by(describe), formatting.trigger(describe),
                                 describe.get("FailureReason", "")))
    return rows


def definition_of(sm, pipeline: str, execution_arn: str | None = None) -> dict:
    """The definition the execution ran (DescribePipelineDefinitionForExecution), else the pipeline's current one."""
    if execution_arn:
        try:
            return json.loads(sm.describe_pipeline_definition_for_execution(
                PipelineExecutionArn=execution_arn)["PipelineDefinition"])
        except (ClientError, ValueError, KeyError):
            pass
    return json.loads(sm.describe_pipeline(PipelineName=pipeline)["PipelineDefinition"])


def execution_view(sm, pipeline: str, execution: str) -> ExecutionView:
    pipeline_arn = sm.describe_pipeline(PipelineName=pipeline)["PipelineArn"]
    arn = f"{pipeline_arn}/execution/{execution}"
    describe = sm.describe_pipeline_execution(PipelineExecutionArn=arn)
    definition = definition_of(sm, pipeline, arn)
    steps = _pages(sm, "list_pipeline_execution_steps", "PipelineExecutionSteps", PipelineExecutionArn=arn)
    parameters = _pages(sm, "list_pipeline_parameters_for_execution", "PipelineParameters", PipelineExecutionArn=arn)
    types = {name: step.type for name, step in pipeline_steps(definition).items()}
    rows = step_rows(steps, types)
    links = {}
    for row in rows:
        if row.job:
            links[row.name] = url_for("pipelines.job", kind=row.job[0], name=row.job[1])
        elif row.package_version:
            links[row.name] = url_for("registry.version", version=row.package_version)
        else:
            links[row.name] = f"#step-{row.name}"
    svg = render_svg(definition, {r.name: r.status for r in rows}, links,
                     {r.name for r in rows if r.cache_source})
    status = describe["PipelineExecutionStatus"]
    return ExecutionView(pipeline, execution, describe, rows, parameters, svg, execution_seconds(describe),
                         status not in FINISHED, [name for name in types if name not in {r.name for r in rows}])


def log_lines(logs, group: str, job_name: str, limit: int = LOG_EVENTS_SHOWN) -> tuple[list[str], bool]:
    """The job's CloudWatch log (streams ``<job>/…``), the last ``limit`` lines, and whether lines were left out."""
    try:
        streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=f"{job_name}/")["logStreams"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return [], False
        raise
    lines: list[tuple[int, str, str]] = []
    for stream in streams:
        events = logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"], limit=limit,
                                     startFromHead=False)["events"]
        lines += [(e["timestamp"], stream["logStreamName"], e["message"].rstrip("\n")) for e in events]
    lines.sort(key=lambda item: item[0])
    prefix = len(streams) > 1
    text = [(f"[{name}] " if prefix else "") + message for _, name, message in lines]
    return text[-limit:], len(text) > limit


def job_view(sm, logs, kind: str, name: str) -> dict:
    key, operation, argument, group = JOB_KINDS[kind]
    job = getattr(sm, operation)(**{argument: name})
    job.pop("ResponseMetadata", None)
    lines, truncated = log_lines(logs, group, name)
    status = job.get(f"{key}Status", "")
    if kind == "training":
        parameters = job.get("HyperParameters", {})
        started, ended = job.get("TrainingStartTime"), job.get("TrainingEndTime")
    elif kind == "processing":
        parameters = {"arguments": " ".join(job.get("AppSpecification", {}).get("ContainerArguments", [])),
                      "entrypoint": " ".join(job.get("AppSpecification", {}).get("ContainerEntrypoint", [])),
                      "image": job.get("AppSpecification", {}).get("ImageUri", ""), **job.get("Environment", {})}
        started, ended = job.get("ProcessingStartTime"), job.get("ProcessingEndTime")
    else:
        parameters = {"model": job.get("ModelName", ""),
                      "input": job.get("TransformInput", {}).get("DataSource", {}).get("S3DataSource", {}).get("S3Uri", ""),
                      "content type": job.get("TransformInput", {}).get("ContentType", ""),
                      "output": job.get("TransformOutput", {}).get("S3OutputPath", ""), **job.get("Environment", {})}
        started, ended = job.get("TransformStartTime"), job.get("TransformEndTime")
    return {"kind": kind, "name": name, "job": job, "status": status, "parameters": parameters,
            "metrics": job.get("FinalMetricDataList", []), "started": started, "ended": ended,
            "seconds": formatting.seconds_between(started, ended), "failure": job.get("FailureReason", ""),
            "log": lines, "log_truncated": truncated, "log_group": group, "running": status == "InProgress",
            "artifacts": job.get("ModelArtifacts", {}).get("S3ModelArtifacts", "")}


@blueprint.get("/pipelines")
def index():
    ctx = context()
    sm = ctx.client("sagemaker")
    names = sorted(p["PipelineName"] for p in _pages(sm, "list_pipelines", "PipelineSummaries"))
    chosen = request.args.get("pipeline") or (ctx.config.pipeline.name if ctx.config.pipeline.name in names
                                              else (names[0] if names else None))
    rows, declared = [], []
    if chosen:
        if chosen not in names:
            abort(404, f"no pipeline named {chosen!r}")
        rows = list_executions(sm, chosen)
        declared = declared_parameters(definition_of(sm, chosen))
    running = any(r.status not in FINISHED for r in rows)
    return render_template("pipelines.html", names=names, chosen=chosen, rows=rows, declared=declared,
                           running=running, message=request.args.get("message"))


@blueprint.post("/pipelines/<name>/start")
def start(name: str):
    ctx = context()
    sm = ctx.client("sagemaker")
    declared = declared_parameters(definition_of(sm, name))
    parameters = start_parameters(declared, request.form.to_dict())
    caller = ctx.client("sts").get_caller_identity()["Arn"]
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    response = sm.start_pipeline_execution(
        PipelineName=name, PipelineExecutionDisplayName=f"console-{stamp}",
        PipelineExecutionDescription=f"started from the operator console by {caller}"[:3072],
        PipelineParameters=parameters)
    return redirect(url_for("pipelines.execution", name=name, execution=execution_id(response["PipelineExecutionArn"])),
                    code=303)


@blueprint.get("/pipelines/<name>/executions/<execution>")
def execution(name: str, execution: str):
    view = execution_view(context().client("sagemaker"), name, execution)
    return render_template("execution.html", view=view)


@blueprint.get("/jobs/<kind>/<name>")
def job(kind: str, name: str):
    if kind not in JOB_KINDS:
        abort(404, f"no job kind {kind!r}: training, processing or transform")
    ctx = context()
    return render_template("job.html", view=job_view(ctx.client("sagemaker"), ctx.client("logs"), kind, name))
