"""A local AWS with the executor tests' bucket, one per test module."""
from contextlib import ExitStack

import pytest

from local_runtime.aws import local_aws

BUCKET = "exec-tests"


@pytest.fixture(scope="module")
def aws():
    with ExitStack() as stack:
        clients = stack.enter_context(local_aws("us-east-1"))
        clients.client("s3").create_bucket(Bucket=BUCKET)
        yield clients
