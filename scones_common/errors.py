"""The root of the project's named errors and the one wrapper every console script runs under.

Every package has its own root (``ProcessingError``, ``PipelinesError``, ``LocalRuntimeError``,
``InferenceWorkflowError``) deriving from :class:`SconesError`, so a command can tell "the user
gave something we cannot use" (exit 2) from "AWS said no" (exit 1) from a bug (a traceback).
The Lambdas ship alone and keep their own exceptions.
"""
from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable

from scones_common.logs import setup_logging

EXIT_USER_ERROR = 2
EXIT_AWS_ERROR = 1
EXIT_ENVIRONMENT_ERROR = 1
EXIT_INTERRUPTED = 130


class SconesError(Exception):
    """Something the user can fix: a bad argument, config value, data source, directory or state file."""


def one_line(exc: BaseException) -> str:
    """``Name: message`` with the message's whitespace collapsed, so the error is one line on stderr."""
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _is_aws_error(exc: BaseException) -> bool:
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:      # a Processing container without botocore raises none of them
        return False
    return isinstance(exc, (BotoCoreError, ClientError))


def cli_entry(main: Callable[[list[str] | None], int | None]) -> Callable[[list[str] | None], int]:
    """Wraps a console script's ``main(argv)``: logging set up once, every error one line on stderr.

    Exit codes: 0 success (or what ``main`` returns), 2 a :class:`SconesError` (and argparse usage
    errors), 1 an AWS/botocore error or an operating-system error (disk full, permission denied),
    130 Ctrl-C. Anything else is a bug and keeps its traceback.
    """
    @functools.wraps(main)
    def entry(argv: list[str] | None = None) -> int:
        setup_logging()
        log = logging.getLogger(main.__module__)
        try:
            return int(main(argv) or 0)
        except KeyboardInterrupt as exc:
            detail = " ".join(str(exc).split())
            sys.stderr.write(f"interrupted{': ' + detail if detail else ''}\n")
            return EXIT_INTERRUPTED
        except SconesError as exc:
            log.error("%s", one_line(exc))
            return EXIT_USER_ERROR
        except Exception as exc:
            if _is_aws_error(exc):
                log.error("AWS error: %s", one_line(exc))
                return EXIT_AWS_ERROR
            if isinstance(exc, OSError):
                log.error("%s", one_line(exc))
                return EXIT_ENVIRONMENT_ERROR
            raise

    entry.__scones_cli__ = True
    return entry
