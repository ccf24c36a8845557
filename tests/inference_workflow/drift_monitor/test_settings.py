"""The drift monitor's settings from its environment: what the function refuses before it reads anything."""
import importlib.util
import sys
from pathlib import Path

import pytest

FUNCTION_DIR = Path(__file__).resolve().parents[3] / "inference_workflow" / "drift_monitor"


@pytest.fixture(scope="module")
def monitor():
    """The handler module loaded as Lambda loads it: its own folder first on the path."""
    spec = importlib.util.spec_from_file_location("drift_monitor_settings_under_test", FUNCTION_DIR / "lambda_function.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    sys.path.insert(0, str(FUNCTION_DIR))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(FUNCTION_DIR))
    yield module
    sys.modules.pop(spec.name, None)


BASE = {"ENDPOINT_NAME": "e", "CAPTURE_S3_URI": "s3://b/capture/", "REPORT_S3_URI": "s3://b/reports"}


def test_settings_read_with_defaults(monitor):
    settings = monitor.MonitorSettings.from_environment(BASE)
    assert (settings.window_minutes, settings.psi_threshold, settings.min_records) == (60.0, 0.2, 30)
    assert settings.capture_s3_uri == "s3://b/capture"


@pytest.mark.parametrize("name, value", [
    ("WINDOW_MINUTES", "inf"), ("WINDOW_MINUTES", "nan"), ("WINDOW_MINUTES", "1e12"), ("WINDOW_MINUTES", "0"),
    ("WINDOW_MINUTES", "an hour"), ("PSI_THRESHOLD", "nan"), ("PSI_THRESHOLD", "inf"), ("PSI_THRESHOLD", "-0.1"),
    ("MIN_RECORDS", "0"), ("MIN_RECORDS", "2.5"),
])
def test_settings_that_would_crash_or_never_flag_drift_are_refused(monitor, name, value):
    with pytest.raises(monitor.MonitorConfigError, match=name):
        monitor.MonitorSettings.from_environment({**BASE, name: value})
