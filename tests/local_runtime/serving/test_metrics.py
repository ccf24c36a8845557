"""Endpoint metrics: per-invocation values and their batching into StatisticValues."""
from local_runtime.serving.metrics import EndpointMetrics, invocation_values


class RecordingCloudWatch:
    def __init__(self, fail_first: bool = False):
        self.calls, self.fail_first = [], fail_first

    def put_metric_data(self, Namespace, MetricData):
        if self.fail_first:
            self.fail_first = False
            raise ConnectionError("down")
        self.calls.append((Namespace, MetricData))


def test_invocation_values_follow_sagemaker():
    assert invocation_values(5, 1000.0, 50.0) == {"Invocations": 1.0, "Invocation4XXErrors": 0.0,
                                                 "Invocation5XXErrors": 1.0, "OverheadLatency": 50.0,
                                                 "ModelLatency": 1000.0}
    assert "ModelLatency" not in invocation_values(4, None, 10.0)


def test_batches_per_second_and_retries_after_a_failure():
    cloudwatch = RecordingCloudWatch(fail_first=True)
    metrics = EndpointMetrics(cloudwatch)
    for latency in (100.0, 300.0):
        metrics.record("e", "AllTraffic", 1000.2, invocation_values(2, latency, 10.0))
    metrics.flush()                      # fails: nothing lost
    metrics.flush()
    (namespace, data), = cloudwatch.calls
    latency = next(d for d in data if d["MetricName"] == "ModelLatency")
    assert namespace == "AWS/SageMaker" and latency["Unit"] == "Microseconds"
    assert latency["StatisticValues"] == {"SampleCount": 2, "Sum": 400.0, "Minimum": 100.0, "Maximum": 300.0}
    assert latency["Dimensions"] == [{"Name": "EndpointName", "Value": "e"}, {"Name": "VariantName", "Value": "AllTraffic"}]
