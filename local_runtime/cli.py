"""``scones-local``: run the whole system on this machine.

    scones-local run [--data-source PATH|URL|s3://…|cifar-100] [--epochs N] [--executions N] [--fresh]
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from scones_common.config import ConfigError, load_config
from scones_common.logs import setup_logging

log = logging.getLogger("local_runtime")


def format_summary(summary, run_dir: Path) -> str:
    execution = summary.execution
    lines = [f"\nPipeline {execution['pipeline_name']} execution {execution['execution_id']}: "
             f"{execution['status']} in {execution['seconds']:.1f}s"]
    for step in execution["steps"]:
        lines.append(f"  {step['name']:<24} {step['status']:<10} {step['seconds']:7.2f}s"
                     + (f"  {step['failure']}" if step.get("failure") else "")
                     + (f"  (logs: {step['log_path']})" if step["status"] == "Failed" and step.get("log_path") else ""))
    if execution.get("failure"):
        lines.append(f"  failure: {execution['failure']}")
    if summary.accuracy is not None:
        per_class = summary.evaluation["metrics"]["per_class"]
        lines.append(f"Test accuracy {summary.accuracy:.4f}  ROC AUC {summary.evaluation['metrics']['roc_auc']['value']:.4f}  "
                     + "  ".join(f"{c}: P {m['precision']:.3f} R {m['recall']:.3f}" for c, m in per_class.items()))
    if summary.model_package_arn:
        lines.append(f"Registered {summary.model_package_arn}")
    lines.append(f"Endpoint {summary.endpoint or 'not deployed (awaiting approval?)'}")
    if summary.workflow:
        from inference_workflow.test_cases import WorkflowResult, format_table

        lines += ["", "Inference workflow executions:", format_table([WorkflowResult(**r) for r in summary.workflow])]
        lines.append(f"Data capture: {summary.capture_records} records; report {summary.report}")
    lines.append("Timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in summary.seconds.items()))
    lines.append(f"Everything is under {run_dir}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="stage, train, evaluate, register, deploy, run the inference workflow")
    run.add_argument("--config")
    run.add_argument("--data-source", help="'cifar-100' (official download), archive path, file:// URL or s3:// URI")
    run.add_argument("--epochs", type=int)
    run.add_argument("--accuracy-threshold", type=float)
    run.add_argument("--executions", type=int, default=10, help="inference workflow executions on test images")
    run.add_argument("--concurrency", type=int, default=4)
    run.add_argument("--run-dir", default="runs/local")
    run.add_argument("--fresh", action="store_true", help="forget earlier runs (state, cache) first")
    args = parser.parse_args(argv)
    try:
        from pipelines.scones.cli import git_commit

        config = load_config(args.config, "local", overrides={
            "data.source": str(Path(args.data_source).resolve()) if args.data_source and Path(args.data_source).exists()
            else args.data_source,
            "training.hyperparameters.epochs": args.epochs, "evaluation.accuracy_threshold": args.accuracy_threshold,
            "project.git_commit": git_commit()})
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    from local_runtime.run import run_local

    run_dir = Path(args.run_dir).resolve()
    try:
        summary = run_local(config, run_dir, args.executions, args.fresh, args.concurrency)
    except Exception as exc:
        log.exception("local run failed during setup: %s: %s", type(exc).__name__, exc)
        return 1
    print(format_summary(summary, run_dir))
    (run_dir / "summary.json").write_text(json.dumps(summary.__dict__, indent=2, default=str))
    return 0 if summary.succeeded else 1


if __name__ == "__main__":
    sys.exit(main())
