"""What changed between two model package versions, as rows of (field, a, b, differs).

Pure on purpose: the operator console's compare view and ``scones-registry compare A B`` show the
same rows, and neither should need AWS (or moto) to be tested. :func:`version_facts` flattens what
DescribeModelPackage returns, the evaluation.json its ModelStatistics points to and the training
job's hyperparameters into plain values (the precision at the threshold with its 95 % lower bound,
the champion gate's record, the approval history among them); :func:`compare` lines two such
mappings up and :func:`format_comparison` prints the rows side by side with a marker column.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Floats from two evaluations that agree to this many decimals are the same figure: a JSON round trip
# or a re-computation must not show up as a change.
FLOAT_TOLERANCE = 1e-9


@dataclass(frozen=True)
class ComparisonRow:
    field: str
    a: Any
    b: Any
    differs: bool


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def same(a: Any, b: Any) -> bool:
    """Equal as values: numbers within :data:`FLOAT_TOLERANCE` (``"0.91"`` from metadata equals ``0.91``), NaN
    equal to NaN, anything else by ``==``."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    x, y = _number(a), _number(b)
    if x is not None and y is not None and not (isinstance(a, str) and isinstance(b, str)):
        if math.isnan(x) or math.isnan(y):
            return math.isnan(x) and math.isnan(y)
        return math.isclose(x, y, rel_tol=0.0, abs_tol=FLOAT_TOLERANCE)
    return a == b


def compare(a: Mapping[str, Any], b: Mapping[str, Any], fields: Sequence[str] | None = None) -> list[ComparisonRow]:
    """One row per field, in ``fields``' order (default: a's keys, then the keys only b has); a field one side
    lacks is ``None`` there."""
    names = list(fields) if fields is not None else [*a, *(k for k in b if k not in a)]
    return [ComparisonRow(name, a.get(name), b.get(name), not same(a.get(name), b.get(name))) for name in names]


def evaluation_uri(package: Mapping[str, Any]) -> str | None:
    """The evaluation.json RegisterModel attached as the package's model statistics, if any."""
    statistics = package.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {})
    return statistics.get("S3Uri") or None


def _metric(metrics: Mapping[str, Any], name: str) -> Any:
    value = metrics.get(name)
    return value.get("value") if isinstance(value, Mapping) else value


def training_job_name(model_data_url: str | None) -> str | None:
    """The training job behind an artifact: SageMaker writes it to ``<output path>/<job name>/output/model.tar.gz``."""
    parts = (model_data_url or "").split("/")
    return parts[-3] if len(parts) >= 4 and parts[-2:] == ["output", "model.tar.gz"] else None


def approval_history(metadata: Mapping[str, str]) -> str | None:
    """Every decision and deployment outcome the package records (pipelines/registry/audit.py), one per line,
    oldest first; None when there is none."""
    from pipelines.registry.audit import decisions, deployment_records

    entries = [(d.when, f"{d.when} {d.status} by {d.who}: {d.reason}") for d in decisions(metadata)]
    entries += [(r.when, f"{r.when} deployment {r.outcome} on {r.endpoint}" + (f": {r.reason}" if r.reason else ""))
                for r in deployment_records(metadata)]
    return "\n".join(line for _, line in sorted(entries)) or None


def version_facts(package: Mapping[str, Any], evaluation: Mapping[str, Any] | None,
                  hyperparameters: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The fields worth comparing, from DescribeModelPackage's answer, the evaluation.json (or None when the
    package has none or it could not be read) and the training job's hyperparameters (None when unknown).
    Keys are human-readable field names, values plain (the approval history is one line per entry)."""
    metadata = package.get("CustomerMetadataProperties", {}) or {}
    containers = package.get("InferenceSpecification", {}).get("Containers", [{}]) or [{}]
    created = package.get("CreationTime")
    facts: dict[str, Any] = {
        "version": package.get("ModelPackageVersion"),
        "status": package.get("ModelApprovalStatus"),
        "created": created.isoformat(timespec="seconds") if hasattr(created, "isoformat") else created,
        "data source": metadata.get("data_source"),
        "git commit": metadata.get("git_commit"),
        "model artifact": containers[0].get("ModelDataUrl"),
        "image": containers[0].get("Image"),
        "evaluation": evaluation_uri(package),
        "training job": training_job_name(containers[0].get("ModelDataUrl")),
        "champion gate tolerance": metadata.get("champion_tolerance"),
        "champion at registration": metadata.get("champion"),
        "approval history": approval_history(metadata),
    }
    for name in sorted(hyperparameters or {}):
        facts[f"hyperparameter {name}"] = hyperparameters[name]
    metrics = (evaluation or {}).get("metrics", {}) if isinstance(evaluation, Mapping) else {}
    facts["accuracy"] = _metric(metrics, "accuracy") if metrics else _number(metadata.get("accuracy"))
    if not metrics:
        return facts
    facts["ROC AUC"] = _metric(metrics, "roc_auc")
    facts["test images"] = metrics.get("count")
    facts["confidence threshold"] = _metric(metrics, "confidence_threshold")
    facts["coverage at threshold"] = _metric(metrics, "coverage")
    facts["precision at threshold"] = _metric(metrics, "confident_precision")
    precision = metrics.get("confident_precision")
    precision = precision if isinstance(precision, Mapping) else {}
    facts["precision 95 % lower bound"] = precision.get("lower_bound")
    coverage = metrics.get("coverage")
    facts["confident images"] = precision["confident"] if "confident" in precision else (
        coverage.get("confident") if isinstance(coverage, Mapping) else None)
    facts["ECE"] = metrics.get("calibration", {}).get("ece")
    for name, figures in metrics.get("per_class", {}).items():
        for figure in ("precision", "recall", "f1"):
            facts[f"{name} {figure}"] = figures.get(figure)
    confusion = metrics.get("confusion_matrix", {})
    labels = confusion.get("labels", [])
    for i, row in enumerate(confusion.get("matrix", [])):
        for j, count in enumerate(row):
            if i < len(labels) and j < len(labels):
                facts[f"true {labels[i]} → predicted {labels[j]}"] = count
    return facts


def _shown(value: Any) -> list[str]:
    """A value as the lines it prints on: floats to 4 decimals, None as '-', multi-line text line by line."""
    if value is None:
        return ["-"]
    if isinstance(value, float):
        return [f"{value:.4f}"]
    return str(value).split("\n") or [""]


def format_comparison(rows: Sequence[ComparisonRow], a_label: str, b_label: str, width: int = 48) -> str:
    """The rows as a side-by-side table; ``*`` in the last column marks a field that differs. A value longer than
    ``width`` wraps onto continuation lines (nothing is cut off)."""
    import textwrap

    def cells(value: Any) -> list[str]:
        return [piece for line in _shown(value) for piece in (textwrap.wrap(line, width) or [""])]

    field_width = max([len("field"), *(len(r.field) for r in rows)])
    a_width = min(width, max([len(a_label), *(len(c) for r in rows for c in cells(r.a))]))
    b_width = min(width, max([len(b_label), *(len(c) for r in rows for c in cells(r.b))]))
    lines = [f"{'field':<{field_width}}  {a_label:<{a_width}}  {b_label:<{b_width}}  differs"]
    lines.append("-" * len(lines[0]))
    for row in rows:
        a, b = cells(row.a), cells(row.b)
        for i in range(max(len(a), len(b))):
            name = row.field if i == 0 else ""
            mark = "*" if row.differs and i == 0 else ""
            left = a[i] if i < len(a) else ""
            right = b[i] if i < len(b) else ""
            lines.append(f"{name:<{field_width}}  {left:<{a_width}}  {right:<{b_width}}  {mark}".rstrip())
    differing = sum(r.differs for r in rows)
    lines.append(f"{differing} of {len(rows)} fields differ")
    return "\n".join(lines)
