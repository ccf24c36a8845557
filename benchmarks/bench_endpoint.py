"""Local endpoint speed through boto3's sagemaker-runtime client, as the classify Lambda calls it.

Prints latency percentiles and requests/s for sequential calls, and requests/s with several
clients in flight. 32×32 PNGs from the staged test split when a local run left them, else
synthetic ones; the model a local run trained, else a tiny test model. ``--run-dir``: that
``scones-local run --run-dir`` directory instead of those under ``runs/``.
Usage: python benchmarks/bench_endpoint.py [--requests 2000] [--concurrency 4] [--model-artifact PATH] [--run-dir DIR]
"""
from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from serving_stack import answering_stages, percentile, serving_stack, staged_test_images


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--model-artifact")
    parser.add_argument("--run-dir", type=Path)
    args = parser.parse_args()
    images = staged_test_images(run_dir=args.run_dir)
    with serving_stack(args.model_artifact, args.run_dir) as (stack, model):
        name = stack.config.endpoint.name

        def invoke(index: int, client) -> float:
            started = time.perf_counter()
            client.invoke_endpoint(EndpointName=name, ContentType="image/png", Body=images[index % len(images)])["Body"].read()
            return time.perf_counter() - started

        runtime = stack.client("sagemaker-runtime")
        for i in range(50):
            invoke(i, runtime)
        started = time.perf_counter()
        latencies = [invoke(i, runtime) for i in range(args.requests)]
        sequential = args.requests / (time.perf_counter() - started)

        clients = [stack.client("sagemaker-runtime") for _ in range(args.concurrency)]
        started = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(lambda i: invoke(i, clients[i % args.concurrency]), range(args.requests)))
        concurrent = args.requests / (time.perf_counter() - started)
        captured = stack.server.capture
        cascade = answering_stages(stack.server.registry.get(name).model, images)
    ms = [x * 1000 for x in latencies]
    print(f"model: {model}")
    print(f"endpoint, boto3 invoke_endpoint, {args.requests} requests of {len(images)} distinct 32x32 PNGs "
          f"(data capture on, 100 %)")
    print(f"  sequential latency  p50 {percentile(ms, 50):.2f} ms  p95 {percentile(ms, 95):.2f} ms  "
          f"p99 {percentile(ms, 99):.2f} ms")
    if cascade is not None:
        names, stages = cascade
        for stage, label in enumerate(names):
            part = [t for i, t in enumerate(ms) if stages[i % len(images)] == stage]
            if part:
                print(f"    answered by {label}: {stages.count(stage) / len(stages):4.0%} of images  "
                      f"p50 {percentile(part, 50):.2f} ms  p80 {percentile(part, 80):.2f} ms  "
                      f"p95 {percentile(part, 95):.2f} ms")
    print(f"  sequential          {sequential:.0f} requests/s")
    print(f"  {args.concurrency} clients in flight {concurrent:.0f} requests/s")
    print(f"  capture files written: {captured.files_written}")


if __name__ == "__main__":
    main()
