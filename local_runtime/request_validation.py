"""Checks a SageMaker request against botocore's service model the way the service does.

botocore's own ParamValidator checks types, required members and minimums on the client; the
service also enforces the model's ``pattern``, ``max`` and ``enum`` traits and answers with a
``ValidationException`` such as::

    1 validation error detected: Value 'x' at 'customerMetadataProperties.data_source' failed
    to satisfy constraint: Member must satisfy regular expression pattern: ...

The local executor turns step arguments into jobs and resources without such a service in
between, and moto's UpdateEndpoint leaves the model's limits unchecked, so this walks the shapes
itself and refuses with the same wording. Member paths are written as the service writes them:
lowerCamelCase, list items as ``name.<n>.member`` (from 1).

It sits in ``local_runtime/``, below both of its users (the pipeline executor and the moto
patches), so neither sibling imports the other; the pipeline's own part, which request a step
becomes, is ``pipeline/step_requests.py``.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

import botocore.session
import regex

from local_runtime.errors import LocalRuntimeError

_SURROGATE_PAIR = re.compile(r"\\u(D[89AB][0-9A-F]{2})\\u(D[C-F][0-9A-F]{2})", re.IGNORECASE)


class ValidationException(LocalRuntimeError, ValueError):
    """The request breaks a constraint of the service model: the service would refuse it."""

    def __init__(self, operation: str, problems: list[str]):
        self.operation, self.problems = operation, problems
        count = f"{len(problems)} validation error{'s' if len(problems) > 1 else ''} detected"
        super().__init__(f"{count}: {'; '.join(problems)}")

    @property
    def failure_reason(self) -> str:
        """A pipeline step's FailureReason when the service refused the job's request."""
        return f"ClientError: Failed to invoke sagemaker:{self.operation}. Error Details: {self}"


@functools.cache
def _service_model(service: str):
    return botocore.session.get_session().get_service_model(service)


def _java_char(match: re.Match) -> str:
    high, low = int(match.group(1), 16), int(match.group(2), 16)
    return f"\\U{0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00):08X}"


@functools.cache
def compile_pattern(pattern: str) -> regex.Pattern:
    """A service-model (Java) pattern as a Python one: ``\\p{L}`` classes and UTF-16 surrogate pairs."""
    return regex.compile(_SURROGATE_PAIR.sub(_java_char, pattern))


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _shown(value: object) -> str:
    return "null" if value is None else str(value)


@dataclass
class _Walk:
    problems: list[str]

    def fail(self, value: object, path: str, constraint: str) -> None:
        self.problems.append(f"Value '{_shown(value)}' at '{path}' failed to satisfy constraint: {constraint}")

    def shape(self, shape, value: object, path: str) -> None:
        kind = shape.type_name
        handler = getattr(self, f"_{kind}", None)
        if handler is not None:
            handler(shape, value, path)

    def _structure(self, shape, value: object, path: str) -> None:
        if not isinstance(value, Mapping):
            self.fail(value, path, "Member must be a structure")
            return
        for name in shape.required_members:
            if value.get(name) is None:
                self.problems.append(f"Value null at '{self._join(path, name)}' failed to satisfy constraint: "
                                     "Member must not be null")
        for name, member_value in value.items():
            member = shape.members.get(name)
            if member is None:
                self.fail(member_value, self._join(path, name),
                          f"Member must be one of the known members: {', '.join(shape.members)}")
            elif member_value is not None:
                self.shape(member, member_value, self._join(path, name))

    @staticmethod
    def _join(path: str, name: str) -> str:
        return f"{path}.{_camel(name)}" if path else _camel(name)

    def _list(self, shape, value: object, path: str) -> None:
        if not isinstance(value, list):
            self.fail(value, path, "Member must be a list")
            return
        self._count(shape, value, path)
        for index, item in enumerate(value, start=1):
            self.shape(shape.member, item, f"{path}.{index}.member")

    def _map(self, shape, value: object, path: str) -> None:
        if not isinstance(value, Mapping):
            self.fail(value, path, "Member must be a map")
            return
        self._count(shape, value, path)
        for key, item in value.items():
            self.shape(shape.key, key, f"{path}.key")
            self.shape(shape.value, item, f"{path}.{key}")

    def _count(self, shape, value, path: str) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and len(value) < low:
            self.fail(value, path, f"Member must have length greater than or equal to {low}")
        if high is not None and len(value) > high:
            self.fail(value, path, f"Member must have length less than or equal to {high}")

    def _string(self, shape, value: object, path: str) -> None:
        if not isinstance(value, str):
            self.fail(value, path, "Member must be a string")
            return
        self._count(shape, value, path)
        if shape.enum and value not in shape.enum:
            self.fail(value, path, f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
        pattern = shape.metadata.get("pattern")
        if pattern and not compile_pattern(pattern).fullmatch(value):
            self.fail(value, path, f"Member must satisfy regular expression pattern: {pattern}")

    def _number(self, shape, value: object, path: str, kinds: tuple[type, ...], noun: str) -> None:
        if isinstance(value, bool) or not isinstance(value, kinds):
            self.fail(value, path, f"Member must be {noun}")
            return
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and value < low:
            self.fail(value, path, f"Member must have value greater than or equal to {low}")
        if high is not None and value > high:
            self.fail(value, path, f"Member must have value less than or equal to {high}")

    def _integer(self, shape, value: object, path: str) -> None:
        self._number(shape, value, path, (int,), "an integer")

    _long = _integer

    def _float(self, shape, value: object, path: str) -> None:
        self._number(shape, value, path, (int, float), "a number")

    _double = _float

    def _boolean(self, shape, value: object, path: str) -> None:
        if not isinstance(value, bool):
            self.fail(value, path, "Member must be a boolean")


def request_problems(operation: str, request: Mapping, service: str = "sagemaker") -> list[str]:
    """Every constraint ``request`` breaks, worded as the service words them (empty: valid)."""
    walk = _Walk([])
    walk.shape(_service_model(service).operation_model(operation).input_shape, request, "")
    return walk.problems


def validate_request(operation: str, request: Mapping, service: str = "sagemaker") -> None:
    """Raises :class:`ValidationException` when the service would refuse ``request``."""
    problems = request_problems(operation, request, service)
    if problems:
        raise ValidationException(operation, problems)
