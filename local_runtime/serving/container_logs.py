"""The endpoint's CloudWatch log group, where a real endpoint's container writes.

A ModelError's ``LogStreamArn`` and message point at ``/aws/sagemaker/Endpoints/<endpoint>``;
the local endpoint writes its container errors there, so the group they name exists and holds
them (``aws logs tail /aws/sagemaker/Endpoints/<endpoint>`` against the local stack).
"""
from __future__ import annotations

import logging
import threading
import time

from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger("local_runtime.endpoint")
INSTANCE = "local"


def log_group(endpoint: str) -> str:
    return f"/aws/sagemaker/Endpoints/{endpoint}"


def log_group_arn(region: str, account: str, endpoint: str) -> str:
    return f"arn:aws:logs:{region}:{account}:log-group:{log_group(endpoint)}"


class ContainerLogs:
    """Best effort: a logging failure never changes the answer to the request."""

    def __init__(self, clients):
        self._clients = clients
        self._logs = None
        self._streams: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def write(self, endpoint: str, variant: str, message: str) -> None:
        group, stream = log_group(endpoint), f"{variant}/{INSTANCE}"
        try:
            with self._lock:
                if self._logs is None:
                    self._logs = self._clients.client("logs")
                if (group, stream) not in self._streams:
                    self._create(group, stream)
                    self._streams.add((group, stream))
            self._logs.put_log_events(logGroupName=group, logStreamName=stream,
                                      logEvents=[{"timestamp": int(time.time() * 1000), "message": message}])
        except (BotoCoreError, ClientError) as exc:
            log.warning("could not write to %s: %s", group, exc)

    def _create(self, group: str, stream: str) -> None:
        for create, arguments in ((self._logs.create_log_group, {"logGroupName": group}),
                                  (self._logs.create_log_stream, {"logGroupName": group, "logStreamName": stream})):
            try:
                create(**arguments)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                    raise
