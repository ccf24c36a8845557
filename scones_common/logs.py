"""The one logging setup: human-readable lines on stderr, so stdout stays clean for data."""
from __future__ import annotations

import logging
import os
import sys

_NOISY_LIBRARIES = ("botocore", "boto3", "urllib3", "s3transfer", "sagemaker", "werkzeug", "moto", "PIL", "matplotlib")


def _quiet_libraries(record: logging.LogRecord) -> bool:
    """Some libraries (the SageMaker SDK) raise their own loggers' levels; only their warnings pass."""
    return record.levelno >= logging.WARNING or not record.name.startswith(_NOISY_LIBRARIES)


def setup_logging(level: str | int | None = None) -> None:
    level = level or os.environ.get("SCONES_LOG_LEVEL", "INFO")
    root = logging.getLogger()
    root.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_quiet_libraries)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(level)
    for name in _NOISY_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
