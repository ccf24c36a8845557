"""The only places the local runtime reaches into moto's internals, each with a canary test.

moto is the local AWS control plane; these fill the gaps that matter for this system:
Lambda code runs in-process (moto needs Docker), UpdateEndpoint exists (moto has none),
approving a package emits the EventBridge event the deploy Lambda's rule acts on (moto emits
none), TestEventPattern answers (moto leaves it empty), and the per-request work moto repeats is done once (see hot_paths).
"""
from __future__ import annotations


def install() -> None:
    from local_runtime.moto_ext import (
        blue_green,
        event_patterns,
        hot_paths,
        lambda_invoker,
        model_package_updates,
        update_endpoint,
    )

    lambda_invoker.install()
    update_endpoint.install()
    hot_paths.install()
    model_package_updates.install()
    event_patterns.install()
    blue_green.install()
