"""Local endpoint speed through boto3's sagemaker-runtime client, as the classify Lambda calls it.

Prints latency percentiles and requests/s for sequential calls, and requests/s with several
clients in flight. 32×32 PNGs from the staged test split when a local run left them, else
synthetic ones; the model a local run trained, else a tiny test model. ``--run-dir``: that
``scones-local run --run-dir`` directory instead of those under ``runs/``.
Also prints the floor on this host: the same boto3 calls answered by a do-nothing server (cheroot,
a constant JSON body) in the same process, i.e. what the client and HTTP cost without any endpoint.
Usage: python benchmarks/bench_endpoint.py [--requests 2000] [--concurrency 4] [--model-artifact PATH] [--run-dir DIR]
"""
from __future__ import annotations

import argparse
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import boto3
from cheroot import wsgi
from serving_stack import answering_stages, percentile, serving_stack, staged_test_images


@contextmanager
def do_nothing_server():
    """An HTTP/1.1 keep-alive server answering every request with a constant probability list."""
    def app(environ, start_response):
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "10")])
        return [b"[0.5, 0.5]"]

    server = wsgi.Server(("127.0.0.1", 0), app, numthreads=4)
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.bind_addr[1]}"
    finally:
        server.stop()


def floor_latencies(images: list[bytes], requests: int) -> list[float]:
    with do_nothing_server() as url:
        client = boto3.client("sagemaker-runtime", region_name="us-east-1", endpoint_url=url,
                              aws_access_key_id="floor", aws_secret_access_key="floor")
        latencies = []
        for i in range(50 + requests):
            started = time.perf_counter()
            client.invoke_endpoint(EndpointName="floor", ContentType="image/png", Body=images[i % len(images)])["Body"].read()
            latencies.append((time.perf_counter() - started) * 1000)
        return latencies[50:]


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
    cpu = time.process_time()
    floor = floor_latencies(images, args.requests)
    floor_cpu = (time.process_time() - cpu) / (50 + args.requests) * 1000
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
    print(f"floor on this host, the same calls to a do-nothing server: p50 {percentile(floor, 50):.2f} ms  "
          f"p95 {percentile(floor, 95):.2f} ms  {1000 / (sum(floor) / len(floor)):.0f} requests/s  "
          f"({floor_cpu:.2f} ms of CPU per call, client and server)")


if __name__ == "__main__":
    main()
