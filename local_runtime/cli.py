"""``scones-local``: run the whole system on this machine.

    scones-local run [--data-source PATH|URL|s3://…|cifar-100] [--epochs N] [--executions N] [--fresh]
    scones-local serve [--run-dir runs/local] [--aws-port N] [--runtime-port N]
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from scones_common.config import ConfigError, load_config
from scones_common.logs import setup_logging

log = logging.getLogger("local_runtime")


def format_summary(summary, run_dir: Path) -> str:
    execution = summary.execution
    lines = [f"\nPipeline {execution.pipeline_name} execution {execution.execution_id}: "
             f"{execution.status} in {execution.seconds:.1f}s"]
    for step in execution.steps:
        lines.append(f"  {step.name:<24} {step.status:<10} {step.seconds:7.2f}s"
                     + (f"  {step.failure}" if step.failure else "")
                     + (f"  (logs: {step.log_path})" if step.status == "Failed" and step.log_path else ""))
    if execution.failure:
        lines.append(f"  failure: {execution.failure}")
    if summary.accuracy is not None:
        metrics = summary.evaluation["metrics"]
        lines.append(f"Test accuracy {summary.accuracy:.4f}  ROC AUC {metrics['roc_auc']['value']:.4f}  "
                     + "  ".join(f"{c}: P {m['precision']:.3f} R {m['recall']:.3f}" for c, m in metrics["per_class"].items()))
    if summary.model_package_arn:
        lines.append(f"Registered {summary.model_package_arn}")
    if not summary.succeeded:
        lines.append("Endpoint unchanged: the pipeline failed before deploying")
    elif summary.endpoint:
        lines.append(f"Endpoint {summary.endpoint}")
    else:
        lines.append("Endpoint not deployed: the package awaits approval (scones-local serve, then "
                     "scones-registry --environment local approve <version>)")
    if summary.workflow:
        from inference_workflow.test_cases import format_table

        lines += ["", "Inference workflow executions:", format_table(summary.workflow)]
        lines.append(f"Data capture: {summary.capture_records} records; report {summary.report}")
    lines.append("Timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in summary.seconds.items()))
    lines.append(f"Everything is under {run_dir}")
    return "\n".join(lines)


def _config(args: argparse.Namespace):
    from pipelines.scones.launch import git_commit

    source = args.data_source
    return load_config(args.config, "local", overrides={
        "data.source": str(Path(source).resolve()) if source and Path(source).exists() else source,
        "training.hyperparameters.epochs": args.epochs, "evaluation.accuracy_threshold": args.accuracy_threshold,
        "project.git_commit": git_commit()})


def _run(args: argparse.Namespace) -> int:
    from local_runtime.run import run_local

    run_dir = Path(args.run_dir).resolve()
    summary = run_local(_config(args), run_dir, args.executions, args.fresh, args.concurrency)
    print(format_summary(summary, run_dir))
    return 0 if summary.succeeded else 1


def _serve(args: argparse.Namespace) -> int:
    import signal
    import threading

    from local_runtime.serve import serve

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def ready(stack, env_file: Path) -> None:
        print(f"Local AWS APIs at {stack.aws.url}, SageMaker runtime at {stack.server.url}.\n"
              f"In another shell:  source {env_file}\n"
              f"  scones-registry list | approve N | reject N --reason ... | live\n"
              f"  scones-workflow-test --state-machine-arn {stack.resources.state_machine_arn} "
              f"--bucket {stack.config.storage.bucket} --prefix {stack.config.storage.prefix}/staged/test/ -n 10\n"
              f"Ctrl-C saves the state to {args.run_dir}/state and stops.", flush=True)

    try:
        serve(_config(args), Path(args.run_dir).resolve(), stop, args.aws_port, args.runtime_port, ready)
    except KeyboardInterrupt:
        pass
    return 0


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="stage, train, evaluate, register, deploy, run the inference workflow")
    serve = sub.add_parser("serve", help="keep the local stack of a run directory up for scones-registry & co")
    for command in (run, serve):
        command.add_argument("--config")
        command.add_argument("--run-dir", default="runs/local")
        command.add_argument("--data-source", help="'cifar-100' (official download), archive path, file:// URL or s3:// URI")
        command.add_argument("--epochs", type=int)
        command.add_argument("--accuracy-threshold", type=float)
    run.add_argument("--executions", type=int, default=10, help="inference workflow executions on test images")
    run.add_argument("--concurrency", type=int, default=4)
    run.add_argument("--fresh", action="store_true", help="forget earlier runs (state, cache) first")
    serve.add_argument("--aws-port", type=int, help="port of the local AWS APIs (default: any free port)")
    serve.add_argument("--runtime-port", type=int, help="port of the local SageMaker runtime (default: any free port)")
    args = parser.parse_args(argv)
    from local_runtime.aws import PortInUseError
    from processing.cifar_archive import CorruptArchiveError, MissingClassesError
    from processing.cifar_source import DataSourceError

    try:
        return _run(args) if args.command == "run" else _serve(args)
    except (ConfigError, DataSourceError, CorruptArchiveError, MissingClassesError, PortInUseError) as exc:
        log.error("%s: %s", type(exc).__name__, exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
