"""The guarded release on the local stack: how long each outcome takes and what a client sees.

Deploys a tiny model, then approves, one after another while a client calls the endpoint every
50 ms: an artifact that is not a model (fails the health check), a model that loads but fails
every invocation (rolled back by the 5XX-rate alarm during the canary) and a good model (all
traffic after the canary). Prints, per case, the time from approval to the end of the update,
the calls answered and the endpoint's FailureReason. Local settings: configs/environments/local.yaml
(canary 10 % for 20 s, alarm period 10 s).
Usage: python benchmarks/bench_release.py [--rounds 1]
"""
from __future__ import annotations

import argparse
import tempfile
from contextlib import ExitStack
from pathlib import Path

from serving_stack import ROOT  # noqa: F401  (puts the repository on sys.path)

from local_runtime.alarms import wait_for_state
from local_runtime.settings import load_local_config
from local_runtime.stack import deploy_artifact, local_stack
from scones_common.logs import setup_logging
from tests.builders import write_tiny_model_artifact
from tests.local_stack import approve_while_calling


def cases(scratch: Path, round_: int) -> list[tuple[str, Path]]:
    broken = scratch / f"broken-{round_}" / "model.tar.gz"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"this is not a model archive")
    return [("artifact that cannot load", broken),
            ("model failing every invocation", write_tiny_model_artifact(scratch / f"failing-{round_}" / "model.tar.gz",
                                                                         graph_size=16)),
            ("good model", write_tiny_model_artifact(scratch / f"good-{round_}" / "model.tar.gz",
                                                     inverted=round_ % 2 == 0))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    setup_logging("WARNING")
    config = load_local_config(environ={})
    print(f"canary {config.deployment.canary_percent} % for {config.deployment.wait_seconds} s, "
          f"alarm period {config.deployment.alarm_period_seconds} s")
    with ExitStack() as exits:
        scratch = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="scones-bench-release-")))
        stack = exits.enter_context(local_stack(config, scratch, 0.2))
        deploy_artifact(stack, write_tiny_model_artifact(scratch / "first" / "model.tar.gz"), "bench/first")
        alarm = f"{config.endpoint.name}-invocation-5xx-rate"
        for round_ in range(args.rounds):
            for name, artifact in cases(scratch, round_):
                wait_for_state(stack.client("cloudwatch"), alarm, "OK", timeout=60)   # the last rollback's alarm clears
                outcome = approve_while_calling(stack, artifact, f"bench/{round_}/{name.replace(' ', '-')}")
                described = outcome.described
                result = "rolled back / failed" if described.get("FailureReason") else "completed"
                print(f"{name:<32} {result:<20} {outcome.seconds:6.2f} s  calls ok {outcome.caller.ok:>4} of "
                      f"{outcome.caller.ok + outcome.caller.failed:<4} ({100 * outcome.caller.success_share:.1f} %)  "
                      f"{(described.get('FailureReason') or '')[:90]}")


if __name__ == "__main__":
    main()
