"""Inference workflow speed on the local runtime: the real state machine, Lambdas and endpoint.

Prints execution latency (Step Functions' own startDate→stopDate, and what the caller saw
through start_execution + describe_execution polling) for executions one at a time, and
executions/s with several in flight. Inputs are staged test images uploaded to local S3.
Usage: python benchmarks/bench_workflow.py [--executions 200] [--concurrency 4] [--model-artifact PATH]
"""
from __future__ import annotations

import argparse
import time
from collections import Counter

from serving_stack import percentile, serving_stack, staged_test_images

from inference_workflow.executions import run_execution, run_executions


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--executions", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--model-artifact")
    args = parser.parse_args()
    with serving_stack(args.model_artifact) as (stack, model):
        s3, bucket = stack.client("s3"), stack.config.storage.bucket
        events = []
        for index, image in enumerate(staged_test_images(100)):
            key = f"bench/test/{index:03d}.png"
            s3.put_object(Bucket=bucket, Key=key, Body=image)
            events.append({"s3_bucket": bucket, "s3_key": key})
        sfn, machine = stack.client("stepfunctions"), stack.resources.state_machine_arn
        for event in events[:10]:
            run_execution(sfn, machine, event)
        sequential = [run_execution(sfn, machine, events[i % len(events)]) for i in range(args.executions)]
        started = time.perf_counter()
        parallel = run_executions(sfn, machine, [events[i % len(events)] for i in range(args.executions)],
                                  args.concurrency)
        throughput = args.executions / (time.perf_counter() - started)
    ended = [r for r in sequential if not r.waiting_for_review]      # the others wait for a person's review
    recorded = [r.execution_seconds * 1000 for r in ended if r.execution_seconds is not None]
    observed = [r.seconds * 1000 for r in ended]
    outcomes = Counter(r.outcome for r in sequential + parallel)
    print(f"model: {model}")
    print(f"inference workflow (3 Lambda tasks + endpoint), {args.executions} executions; latency of the "
          f"{len(ended)} that ended (the rest wait for review)")
    print(f"  one at a time, recorded by Step Functions  p50 {percentile(recorded, 50):.1f} ms  "
          f"p95 {percentile(recorded, 95):.1f} ms")
    print(f"  one at a time, seen by the caller (polling) p50 {percentile(observed, 50):.1f} ms  "
          f"p95 {percentile(observed, 95):.1f} ms")
    print(f"  {args.concurrency} in flight                          {throughput:.1f} executions/s")
    print(f"  outcomes: {dict(outcomes)}")


if __name__ == "__main__":
    main()
