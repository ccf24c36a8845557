"""Ranged argparse types: a bad flag is a usage error (exit 2) naming the value and the range, before any work."""
import argparse
import re

import pytest

from inference_workflow.capture_report import main as capture_report
from local_runtime.cli import main as scones_local
from scones_common.cli_args import finite_number, port, whole_number


@pytest.mark.parametrize("parse, text, value", [
    (whole_number(0), "0", 0), (whole_number(1, 64), "64", 64), (port, "8080", 8080),
    (finite_number(0, 1), "0.93", 0.93), (finite_number(0, low_open=True), "1e3", 1000.0),
])
def test_values_in_range_parse(parse, text, value):
    assert parse(text) == value


@pytest.mark.parametrize("parse, text, fragment", [
    (whole_number(0), "-1", "outside >= 0"), (whole_number(1, 64), "65", "outside [1, 64]"),
    (whole_number(0), "2.5", "not a whole number"), (port, "0", "outside [1, 65535]"), (port, "http", "a TCP port"),
    (finite_number(0, 1), "nan", "[0, 1]"), (finite_number(0, 1), "1.5", "[0, 1]"), (finite_number(0, 1), "x", "[0, 1]"),
    (finite_number(0, low_open=True), "0", "(0, ∞)"), (finite_number(0, low_open=True), "inf", "(0, ∞)"),
])
def test_values_out_of_range_are_refused_with_the_range(parse, text, fragment):
    with pytest.raises(argparse.ArgumentTypeError, match=re.escape(fragment)):
        parse(text)


@pytest.mark.parametrize("command, argv", [
    (scones_local, ["run", "--executions", "-1"]),
    (scones_local, ["run", "--concurrency", "0"]),
    (capture_report, ["--capture-uri", "s3://b/p", "--threshold", "nan"]),
])
def test_clis_stop_at_parsing(command, argv, capsys):
    with pytest.raises(SystemExit) as exited:
        command(argv)
    error = capsys.readouterr().err
    assert exited.value.code == 2 and ("is outside" in error or "is not a number" in error), error
