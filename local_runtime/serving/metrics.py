"""SageMaker's endpoint invocation metrics, published to the local CloudWatch off the request path.

Per invocation SageMaker records, in namespace ``AWS/SageMaker`` with dimensions
EndpointName/VariantName: Invocations (1), Invocation4XXErrors and Invocation5XXErrors (1 or 0,
so the Average is the error rate), ModelLatency and OverheadLatency (microseconds). Requests only
add to in-memory aggregates per (endpoint, variant, second); a thread sends them every
``flush_seconds`` as ``StatisticValues`` (SampleCount, Sum, Minimum, Maximum), at most 20 data
points per PutMetricData; a failed send is retried at the next flush.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from local_runtime.periodic import PeriodicThread

log = logging.getLogger("local_runtime.metrics")
NAMESPACE = "AWS/SageMaker"
UNITS = {"Invocations": "None", "Invocation4XXErrors": "None", "Invocation5XXErrors": "None",
         "ModelLatency": "Microseconds", "OverheadLatency": "Microseconds"}
BATCH = 20    # kept below PutMetricData's per-request limit


@dataclass
class Aggregate:
    count: int = 0
    total: float = 0.0
    minimum: float = float("inf")
    maximum: float = float("-inf")

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)


def invocation_values(status_class: int, model_us: float | None, overhead_us: float) -> dict[str, float]:
    """The metric values of one invocation; ``status_class`` is 2, 4 or 5 (the model's HTTP status // 100)."""
    values = {"Invocations": 1.0, "Invocation4XXErrors": float(status_class == 4),
              "Invocation5XXErrors": float(status_class == 5), "OverheadLatency": overhead_us}
    if model_us is not None:
        values["ModelLatency"] = model_us
    return values


def metric_data(aggregates: dict[tuple[str, str, int, str], Aggregate]) -> list[dict]:
    return [{"MetricName": metric, "Unit": UNITS[metric], "Timestamp": datetime.fromtimestamp(second, UTC),
             "Dimensions": [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}],
             "StatisticValues": {"SampleCount": a.count, "Sum": a.total, "Minimum": a.minimum, "Maximum": a.maximum}}
            for (endpoint, variant, second, metric), a in aggregates.items()]


class EndpointMetrics(PeriodicThread):
    name = "endpoint-metrics"

    def __init__(self, cloudwatch, flush_seconds: float = 1.0):
        super().__init__(flush_seconds)
        self.cloudwatch = cloudwatch
        self._aggregates: dict[tuple[str, str, int, str], Aggregate] = {}
        self._lock = threading.Lock()

    def record(self, endpoint: str, variant: str, when: float, values: dict[str, float]) -> None:
        second = int(when)
        with self._lock:
            for metric, value in values.items():
                key = (endpoint, variant, second, metric)
                aggregate = self._aggregates.get(key)
                if aggregate is None:
                    aggregate = self._aggregates[key] = Aggregate()
                aggregate.add(value)

    def flush(self) -> None:
        with self._lock:
            aggregates, self._aggregates = self._aggregates, {}
        keys = list(aggregates)
        for start in range(0, len(keys), BATCH):
            chunk = {key: aggregates[key] for key in keys[start:start + BATCH]}
            try:
                self.cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=metric_data(chunk))
            except Exception as exc:   # keep the unsent figures for the next flush
                log.warning("publishing endpoint metrics failed (%s); will retry", exc)
                with self._lock:
                    for key in keys[start:]:
                        self._aggregates.setdefault(key, aggregates[key])
                return

    tick = final = flush
