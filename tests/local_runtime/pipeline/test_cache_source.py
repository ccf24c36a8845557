"""CacheHitResult names the execution whose result a cached step reused, as SageMaker reports it."""
from local_runtime.pipeline.executor import PipelineExecutor
from tests.local_runtime.pipeline.test_executor import _definition


def test_a_cached_step_names_the_execution_that_produced_its_result(aws, tmp_path):
    executor = PipelineExecutor(_definition(aws), aws, tmp_path)
    first = executor.start("p")
    second = executor.start("p")
    third = executor.start("p")
    assert second.step("Score").status == third.step("Score").status == "Cached"
    assert second.step("Score").cache_source_arn == first.execution_arn
    assert third.step("Score").cache_source_arn == first.execution_arn != third.execution_arn
