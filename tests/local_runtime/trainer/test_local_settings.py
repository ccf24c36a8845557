import json

import pytest

from local_runtime.trainer.local_settings import (
    LOCAL_TRAINER_ENV,
    LocalSettingsError,
    LocalTrainerSettings,
    from_environment,
    parse_local_settings,
)


def test_absent_or_empty_means_defaults():
    assert parse_local_settings(None) == parse_local_settings("") == LocalTrainerSettings()
    assert LocalTrainerSettings().model_dump() == {"seed": 0, "threads": 2}


def test_known_knobs_are_taken_from_the_environment(monkeypatch):
    monkeypatch.setenv(LOCAL_TRAINER_ENV, json.dumps({"seed": 3, "threads": 1}))
    assert from_environment() == LocalTrainerSettings(seed=3, threads=1)


@pytest.mark.parametrize("text, message", [
    ("{not json", "SCONES_LOCAL_TRAINER is not JSON"),
    ("[1, 2]", "SCONES_LOCAL_TRAINER must be a JSON object, got list"),
    ('{"epochs": 3, "ensemble_size": 2}', r"unknown keys \['ensemble_size', 'epochs'\]; known: \['seed', 'threads'\]"),
    ('{"seed": 1.5}', r"SCONES_LOCAL_TRAINER seed = 1.5 is invalid: expected a whole number in \[0, 1000000000\]"),
    ('{"seed": -1}', r"seed = -1 is invalid: expected a whole number in \[0, 1000000000\]"),
    ('{"seed": true}', "seed = True is invalid: expected a whole number"),
    ('{"seed": "x"}', "seed = 'x' is invalid"),
    ('{"threads": 0}', r"threads = 0 is invalid: expected a whole number in \[1, 64\]"),
    ('{"threads": 65}', r"threads = 65 is invalid"),
])
def test_bad_values_are_named(text, message):
    with pytest.raises(LocalSettingsError, match=message):
        parse_local_settings(text)


def test_what_the_local_runtime_sends_parses_back_equal():
    """One declaration: the config section, serialised into the trainer's environment, parses back equal."""
    from local_runtime.settings import trainer_environment

    settings = LocalTrainerSettings(seed=7, threads=1)
    assert parse_local_settings(trainer_environment(settings)[LOCAL_TRAINER_ENV]) == settings
