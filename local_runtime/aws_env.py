"""The local AWS account and a scoped process environment: what the moto patches and the executor need.

``aws.py`` starts the moto server and installs the patches (``moto_ext``). The patches and the
pipeline executor need the account id moto files everything under (and the key the local AWS signs
with), and the Lambda invoker needs to set environment variables for a while; if they imported these from ``aws.py`` they would import the
module that imports them, an import cycle. So they live here, below all of them, importing nothing
of ours.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

ACCOUNT_ID = "123456789012"
_SIGNING_KEY: list[tuple[str, str] | None] = [None]


@contextmanager
def signing_key(access_key_id: str, secret_access_key: str) -> Iterator[None]:
    """The local AWS's key while it runs: what the stack's internal clients inside moto (the Step Functions
    interpreter's) sign with."""
    previous = _SIGNING_KEY[0]
    _SIGNING_KEY[0] = (access_key_id, secret_access_key)
    try:
        yield
    finally:
        _SIGNING_KEY[0] = previous


def current_signing_key() -> tuple[str, str] | None:
    return _SIGNING_KEY[0]


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
