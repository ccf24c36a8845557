"""The local AWS account and a scoped process environment: what the moto patches and the executor need.

``aws.py`` starts the moto server and installs the patches (``moto_ext``). The patches and the
pipeline executor need the account id moto files everything under, and the Lambda invoker needs to
set environment variables for a while; if they imported these from ``aws.py`` they would import the
module that imports them, an import cycle. So they live here, below all of them, importing nothing
of ours.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

ACCOUNT_ID = "123456789012"


@contextmanager
def applied_environment(variables: dict[str, str]) -> Iterator[None]:
    previous = {k: os.environ.get(k) for k in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
