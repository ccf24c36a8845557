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
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

from local_runtime.periodic import PeriodicThread
from scones_common.contracts.capture import capture_file_key, inference_hour
from scones_common.s3uri import parse_s3_uri

log = logging.getLogger("local_runtime.capture")


Record = Callable[[], dict]


class DataCapture(PeriodicThread):
    """Buffers records per (destination, endpoint, variant) and writes them to S3 periodically, a file per
    hour of inference.

    A record arrives as a function that builds it: the JSON record (base64 of the image, an event
    id, the time) is made at flush, in this thread, instead of costing ~30 µs of each request.
    A record that cannot be built is logged and dropped alone.
    """
    name = "data-capture"

    def __init__(self, s3_client, flush_seconds: float = 1.0):
        super().__init__(flush_seconds)
        self.s3 = s3_client
        self._buffers: dict[tuple[str, str, str], list[Record]] = defaultdict(list)
        self._lock = threading.Lock()
        self._flushing = threading.Lock()    # an explicit flush returns only after a tick's writes
        self.files_written = 0

    def record(self, destination: str, endpoint: str, variant: str, sampling_percentage: int, record: Record) -> bool:
        if sampling_percentage < 100 and random.uniform(0, 100) >= sampling_percentage:
            return False
        with self._lock:
            self._buffers[(destination, endpoint, variant)].append(record)
        return True

    def flush(self) -> None:
        with self._flushing:
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            buffers, self._buffers = self._buffers, defaultdict(list)
        now = datetime.now(UTC)
        for (destination, endpoint, variant), pending in buffers.items():
            hours: dict[str, list[dict]] = defaultdict(list)
            for make in pending:
                try:
                    record = make()
                except Exception as exc:   # e.g. CaptureContentTypeHeader calls image bytes JSON
                    log.warning("capture record for %s dropped: %s: %s", endpoint, type(exc).__name__, exc)
                    continue
                hours[inference_hour(record)].append(record)
            location = parse_s3_uri(destination)
            for records in hours.values():
                key = capture_file_key(location.key, endpoint, variant, now)
                try:
                    self.s3.put_object(Bucket=location.bucket, Key=key,
                                       Body="".join(json.dumps(record) + "\n" for record in records).encode())
                    self.files_written += 1
                except Exception as exc:   # keep the records, as they were, for the next flush
                    log.warning("capture flush to %s failed (%s); will retry", destination, exc)
                    with self._lock:
                        self._buffers[(destination, endpoint, variant)][:0] = [partial(dict, r) for r in records]

    tick = final = flush
