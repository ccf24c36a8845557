"""The only places the local runtime reaches into moto's internals, each with a canary test.

moto is the local AWS control plane; these fill the gaps that matter for this system:
Lambda code runs in-process (moto needs Docker), endpoints go through Creating/Updating and
refuse what SageMaker refuses (moto has no UpdateEndpoint and no phases), a blue/green update with
a DeploymentConfig is recorded for the local deployment driver, approving a package emits the
EventBridge event the deploy Lambda's rule acts on (moto emits none), TestEventPattern answers
(moto leaves it empty), pipeline executions really execute and list their steps, the jobs they
run show their real state, the per-request work moto repeats is done once (see hot_paths), and
the run directory's saved objects go back into the bucket without a request each (bucket_state).
"""
from __future__ import annotations


def install(endpoint_transition_seconds: float | None = None) -> None:
    from local_runtime.moto_ext import (
        blue_green,
        cloudwatch_metrics,
        endpoint_lifecycle,
        event_patterns,
        hot_paths,
        lambda_invoker,
        model_package_updates,
        pipeline_executions,
        sagemaker_fidelity,
        step_functions,
    )

    lambda_invoker.install()
    endpoint_lifecycle.install(endpoint_transition_seconds)
    hot_paths.install()
    model_package_updates.install()
    pipeline_executions.install()
    event_patterns.install()
    blue_green.install()
    sagemaker_fidelity.install()
    step_functions.install()
    cloudwatch_metrics.install()
