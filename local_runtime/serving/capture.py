"""Model Monitor data capture: writes the records and files of ``scones_common.contracts.capture`` to S3.

Records are buffered and flushed in files, as SageMaker does, so capture adds no S3 call to
the request path.
"""
from __future__ import annotations

import json
import logging
import random
import threading
from collections import defaultdict
from datetime import UTC, datetime

from local_runtime.periodic import PeriodicThread
from scones_common.contracts.capture import capture_file_key, inference_hour
from scones_common.s3uri import parse_s3_uri

log = logging.getLogger("local_runtime.capture")


class DataCapture(PeriodicThread):
    """Buffers records per (destination, endpoint, variant, hour) and writes them to S3 periodically."""
    name = "data-capture"

    def __init__(self, s3_client, flush_seconds: float = 1.0):
        super().__init__(flush_seconds)
        self.s3 = s3_client
        self._buffers: dict[tuple[str, str, str, str], list[str]] = defaultdict(list)
        self._lock = threading.Lock()
        self.files_written = 0

    def record(self, destination: str, endpoint: str, variant: str, sampling_percentage: int, record: dict) -> bool:
        if sampling_percentage < 100 and random.uniform(0, 100) >= sampling_percentage:
            return False
        hour = inference_hour(record)
        with self._lock:
            self._buffers[(destination, endpoint, variant, hour)].append(json.dumps(record))
        return True

    def flush(self) -> None:
        with self._lock:
            buffers, self._buffers = self._buffers, defaultdict(list)
        now = datetime.now(UTC)
        for (destination, endpoint, variant, _hour), lines in buffers.items():
            location = parse_s3_uri(destination)
            key = capture_file_key(location.key, endpoint, variant, now)
            try:
                self.s3.put_object(Bucket=location.bucket, Key=key, Body=("\n".join(lines) + "\n").encode())
                self.files_written += 1
            except Exception as exc:   # keep the records for the next flush
                log.warning("capture flush to %s failed (%s); will retry", destination, exc)
                with self._lock:
                    self._buffers[(destination, endpoint, variant, _hour)][:0] = lines

    tick = final = flush
