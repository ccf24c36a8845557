"""``scones-local``: run the whole system on this machine.

    scones-local run [--data-source sample|cifar-100|PATH|URL|s3://…] [--epochs N] [--executions N] [--fresh]
    scones-local serve [--run-dir runs/local] [--aws-port N] [--runtime-port N]
    scones-local fire-schedule [RULE] [--run-dir runs/local]      (against a running serve)
    scones-local buildspec [--phases build,...] [--data-source …] [--run-dir runs/local]   (against a running serve)
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from local_runtime.run_dir import check_run_dir
from local_runtime.settings import load_local_config
from scones_common.cli_args import port, whole_number
from scones_common.config import load_config
from scones_common.errors import cli_entry

log = logging.getLogger("local_runtime")


def confidence_line(metrics: dict) -> str:
    """What the confidence threshold does on the test split: drivers routed without a human, and how right they
    are, with the precision's 95 % lower confidence bound (information: at a few hundred images it is wide)."""
    precision = metrics["confident_precision"]
    bound = precision.get("lower_bound")
    shown = "n/a" if precision["value"] is None else f"{precision['value']:.4f}" + (
        f" (95% lower bound {bound:.4f})" if bound is not None else "")
    return (f"At confidence >= {metrics['confidence_threshold']['value']:.2f}: coverage {metrics['coverage']['value']:.1%} "
            f"({metrics['coverage']['confident']} of {metrics['count']}), precision {shown}, "
            f"ECE {metrics['calibration']['ece']:.3f}")


def data_line(source: str) -> str:
    """Which data the run trained on, and how to switch: the shipped sample is the offline default."""
    from processing.cifar_source import SAMPLE_SOURCE

    if source == SAMPLE_SOURCE:
        return ("Data: sample, the dev subset of CIFAR-100 shipped with the package (800 train / 200 test images); "
                "--data-source cifar-100 trains on the official archive (a 161 MB download)")
    return f"Data: {source}; --data-source sample uses the dev subset shipped with the package (offline)"


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
    lines.append(data_line(summary.data_source))
    if summary.accuracy is not None:
        metrics = summary.evaluation["metrics"]
        lines.append(f"Test accuracy {summary.accuracy:.4f}  ROC AUC {metrics['roc_auc']['value']:.4f}  "
                     + "  ".join(f"{c}: P {m['precision']:.3f} R {m['recall']:.3f}" for c, m in metrics["per_class"].items()))
        lines.append(confidence_line(metrics))
    if summary.model_package_arn:
        lines.append(f"Registered {summary.model_package_arn}")
    elif summary.already_registered:
        lines.append(f"Not registered again: this model artifact is already {summary.already_registered}")
    if not summary.succeeded:
        lines.append("Endpoint unchanged: the pipeline failed before deploying")
    elif summary.endpoint:
        lines.append(f"Endpoint {summary.endpoint}")
    else:
        lines.append("Endpoint not deployed: the package awaits approval (scones-local serve, then "
                     "scones-registry --environment local approve <version>)")
    if summary.workflow:
        from inference_workflow.executions import format_table

        lines += ["", "Inference workflow executions:", format_table(summary.workflow)]
        lines.append(f"Data capture: {summary.capture_records} records; report {summary.report}")
        lines.append(_drift_line(summary.drift))
        lines.append(review_line(summary, run_dir))
    lines.append("Timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in summary.seconds.items()))
    lines.append(f"Everything is under {run_dir}")
    lines.append(f"Operator console: `scones-local serve --run-dir {run_dir}` brings this run up with its console "
                 "(URL in local-aws.env as SCONES_CONSOLE_URL); a finished run's console is not running")
    return "\n".join(lines)


def review_line(summary, run_dir: Path) -> str:
    """How many executions wait for a person, and the commands that answer them once serve is up."""
    waiting = summary.waiting_for_review
    metrics = summary.review or {}
    rate = metrics.get("review_rate")
    figures = (f" (review rate {rate:.0%} of {metrics.get('executions')} executions so far; {metrics.get('answered', 0)} "
               f"answered, {metrics.get('pending', 0)} pending)") if rate is not None else ""
    if not waiting:
        return f"Human review: no execution of this run waits for a person{figures}"
    return (f"Human review: {waiting} workflow execution(s) waiting for review{figures}. Answer them once "
            f"`scones-local serve --run-dir {run_dir}` is up: source {run_dir}/local-aws.env, then "
            "`scones-review --environment local list` and `scones-review --environment local answer ID "
            "bicycle|motorcycle`")


def _drift_line(drift: dict | None) -> str:
    if drift is None:
        return "Drift monitor: did not run (see the log)"
    if not drift.get("enough_data"):
        return (f"Drift monitor: {drift.get('records', 0)} records in its window, too few to judge "
                "(monitor.min_records)")
    violations = ", ".join(v["feature"] for v in drift["violations"]) or "none"
    return f"Drift monitor: drift score {drift['drift_score']:.3f} on {drift['records']} records; violations: {violations}"


def _config(args: argparse.Namespace):
    from pipelines.scones.launch import git_commit

    source = args.data_source
    return load_local_config(args.config, overrides={
        "data.source": str(Path(source).resolve()) if source and Path(source).exists() else source,
        "training.hyperparameters.epochs": args.epochs, "evaluation.accuracy_threshold": args.accuracy_threshold,
        "project.git_commit": git_commit()})


def _run(args: argparse.Namespace) -> int:
    import signal

    check_run_dir(args.run_dir)            # a refused directory costs no stack start-up
    from local_runtime.run import run_local

    # Ctrl-C (SIGINT) stops the run and keeps its finished steps, also where a shell started it in the background:
    # such a shell sets SIGINT to "ignored", and Python then installs no KeyboardInterrupt handler of its own.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    summary = run_local(_config(args), Path(args.run_dir), args.executions, args.fresh, args.concurrency)
    print(format_summary(summary, Path(args.run_dir).resolve()))
    return 0 if summary.succeeded else 1


def _serve(args: argparse.Namespace) -> int:
    import signal
    import threading

    check_run_dir(args.run_dir)
    from local_runtime.serve import serve

    stop = threading.Event()

    def stop_serving(signum, _frame) -> None:
        """Ctrl-C or SIGTERM: the stack stops and saves as soon as it is up, at any moment of its start (a
        KeyboardInterrupt could land inside the start or the save). A second Ctrl-C interrupts at once."""
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGTERM, stop_serving)
    signal.signal(signal.SIGINT, stop_serving)      # also where a background shell started us with SIGINT ignored

    def ready(stack, env_file: Path) -> None:
        print(f"Local AWS APIs at {stack.aws.url}, SageMaker runtime at {stack.server.url}.\n"
              f"In another shell:  source {env_file}\n"
              f"  scones-registry list | approve N | reject N --reason ... | live\n"
              f"  scones-review list | answer ID bicycle|motorcycle     # the images the model is unsure of\n"
              f"  scones-workflow-test --state-machine-arn {stack.resources.state_machine_arn} "
              f"--bucket {stack.config.storage.bucket} --prefix {stack.config.storage.prefix}/staged/<execution>/test/ "
              "-n 10\n"
              f"Every change is saved to {args.run_dir}/state before it is acknowledged; Ctrl-C stops.", flush=True)

    try:
        serve(_config(args), Path(args.run_dir), stop, args.aws_port, args.runtime_port, ready)
    except KeyboardInterrupt:
        pass
    return 0


def _served_clients(run_dir: Path):
    """Clients for the stack a running ``serve`` exposes, found through the env file it writes."""
    from local_runtime.aws import LocalAws
    from local_runtime.serve import ENV_FILE, read_env_file

    env = read_env_file(run_dir / ENV_FILE)
    return LocalAws.from_environment(env)       # with serve's key: the local APIs answer only signed requests


def _fire_schedule(args: argparse.Namespace) -> int:
    from local_runtime.provision import schedule_rule_name
    from local_runtime.scheduler import fire_rule

    rule = args.rule or schedule_rule_name(load_config(args.config, "local"))
    deliveries = fire_rule(_served_clients(Path(args.run_dir).resolve()), rule)
    for delivery in deliveries:
        print(f"{rule} -> {delivery.arn}: {'started ' if delivery.ok else 'FAILED '}{delivery.result}")
    if not deliveries:
        print(f"{rule} has no targets")
    return 0 if deliveries and all(d.ok for d in deliveries) else 1


def _buildspec(args: argparse.Namespace) -> int:
    from local_runtime.buildspec import BuildspecError, run_buildspec
    from local_runtime.serve import ENV_FILE

    if args.data_source is not None and not args.data_source.strip():     # "" is not "the default download"
        raise BuildspecError("--data-source is empty; pass 'sample', 'cifar-100', a path or a URI, or leave it out")
    extra = {"SCONES__DATA__SOURCE": str(Path(args.data_source).resolve()) if Path(args.data_source).exists()
             else args.data_source} if args.data_source is not None else {}
    if args.epochs:
        extra["SCONES__TRAINING__HYPERPARAMETERS__EPOCHS"] = str(args.epochs)
    phases = tuple(p.strip() for p in args.phases.split(",")) if args.phases is not None else None
    result = run_buildspec(Path(args.buildspec).resolve(), Path(args.run_dir).resolve() / ENV_FILE, phases, extra)
    for phase in result.phases:
        print(f"{phase.name:<11} {'skipped' if phase.skipped else 'exit ' + str(phase.exit_code)}")
    if result.artifacts_missing:
        print(f"artifacts missing: {', '.join(result.artifacts_missing)}")
    return 0 if result.succeeded else 1


@cli_entry
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="stage, train, evaluate, register, deploy, run the inference workflow")
    serve = sub.add_parser("serve", help="keep the local stack of a run directory up for scones-registry & co")
    for command in (run, serve):
        command.add_argument("--config")
        command.add_argument("--run-dir", default="runs/local")
        command.add_argument("--data-source", help="'sample' (the shipped dev subset, the default), 'cifar-100' (official download), archive path, file:// URL or s3:// URI")
        command.add_argument("--epochs", type=int)
        command.add_argument("--accuracy-threshold", type=float)
    run.add_argument("--executions", type=whole_number(0), default=10, help="inference workflow executions on test images")
    run.add_argument("--concurrency", type=whole_number(1, 64), default=4)
    run.add_argument("--fresh", action="store_true", help="forget earlier runs (state, cache) first")
    serve.add_argument("--aws-port", type=port, help="port of the local AWS APIs (default: any free port)")
    serve.add_argument("--runtime-port", type=port, help="port of the local SageMaker runtime (default: any free port)")
    fire = sub.add_parser("fire-schedule", help="fire a schedule rule of a running serve now (default: retraining)")
    fire.add_argument("rule", nargs="?", help="rule name (default: the retraining schedule rule)")
    build = sub.add_parser("buildspec", help="run buildspec.yml's phases against a running serve")
    build.add_argument("--buildspec", default=str(Path(__file__).resolve().parents[1] / "buildspec.yml"))
    build.add_argument("--phases", help="comma-separated (default: every phase but install)")
    build.add_argument("--data-source", help="passed to the build as SCONES__DATA__SOURCE")
    build.add_argument("--epochs", type=int, help="passed to the build as SCONES__TRAINING__HYPERPARAMETERS__EPOCHS")
    for command in (fire, build):
        command.add_argument("--config")
        command.add_argument("--run-dir", default="runs/local")
    args = parser.parse_args(argv)
    if args.command == "serve" and args.aws_port and args.aws_port == args.runtime_port:
        parser.error(f"--aws-port and --runtime-port are both {args.aws_port}; the two servers need two ports")
    commands = {"run": _run, "serve": _serve, "fire-schedule": _fire_schedule, "buildspec": _buildspec}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
