"""The only places the local runtime reaches into moto's internals, each with a canary test.

moto is the local AWS control plane; these fill the gaps that matter for this system:
Lambda code runs in-process (moto needs Docker), UpdateEndpoint exists (moto has none), and
and the per-request work moto repeats is done once (a workflow execution: ~85 ms → see hot_paths).
"""
from __future__ import annotations


def install() -> None:
    from local_runtime.moto_ext import hot_paths, lambda_invoker, update_endpoint

    lambda_invoker.install()
    update_endpoint.install()
    hot_paths.install()
