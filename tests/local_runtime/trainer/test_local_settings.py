import json

import pytest

from local_runtime.pipeline.runners.training import local_trainer_environment
from local_runtime.trainer.local_settings import (
    LOCAL_TRAINER_ENV,
    LocalSettingsError,
    LocalTrainerConfig,
    parse_local_settings,
)
from scones_common.config import load_config


def test_absent_or_empty_means_defaults():
    assert parse_local_settings(None) == parse_local_settings("") == LocalTrainerConfig()


def test_known_knobs_are_taken():
    settings = parse_local_settings(json.dumps({"label_smoothing": 0.1, "ensemble_size": 2, "flip_tta": False,
                                                "temperature_scaling": True, "train_on_validation": False,
                                                "seed": 3, "width": 24}))
    assert (settings.label_smoothing, settings.ensemble_size, settings.flip_tta) == (0.1, 2, False)
    assert (settings.temperature_scaling, settings.seed, settings.width) == (True, 3, 24)


@pytest.mark.parametrize("text, message", [
    ("{not json", "is not JSON"),
    ("[1, 2]", "must be a JSON object, got list"),
    ('{"epochs": 3}', "unknown keys \\['epochs'\\]; known: \\[.*'width'\\]"),
    ('{"label_smoothing": 0.5}', "label_smoothing = 0.5 is invalid: expected a number in \\[0, 0.5\\)"),
    ('{"ensemble_size": 0}', "ensemble_size = 0 is invalid"),
    ('{"ensemble_size": true}', "ensemble_size = True is invalid"),
    ('{"flip_tta": "maybe"}', "flip_tta = 'maybe' is invalid: expected true or false"),
    ('{"seed": 1.5}', "seed = 1.5 is invalid: expected a whole number"),
    ('{"seed": -1}', "seed = -1 is invalid: expected a whole number in \\[0, 1000000000\\]"),
    ('{"coarse_resolution": 7}', "coarse_resolution = 7 is invalid: expected a whole number in \\[8, 32\\]"),
    ('{"temperature": Infinity}', "temperature = inf is invalid: expected a finite number"),
    ('{"threads": 0}', "threads = 0 is invalid: expected a whole number in \\[1, 64\\] \\(config local_trainer.threads\\)"),
    ('{"mixup_alpha": 2}', "mixup_alpha = 2.0 is invalid: expected a number in \\[0, 1\\]"),
    ('{"train_on_validation": 1.5}', "train_on_validation = 1.5 is invalid: expected true or false"),
    ('{"temperature_scaling": true}', "temperature_scaling = True is invalid: expected false when "
                                      "local_trainer.train_on_validation is true"),
])
def test_bad_values_are_named(text, message):
    with pytest.raises(LocalSettingsError, match=message):
        parse_local_settings(text)


def test_the_trainer_reads_the_config_section_it_is_given():
    """One declaration: what the config loader builds, serialised as the runner does, parses back equal."""
    config = load_config(environ={}, overrides={"local_trainer.width": 24, "local_trainer.seed": 7,
                                                "local_trainer.mixup_alpha": 0.2})
    environment = local_trainer_environment(config.local_trainer)
    assert parse_local_settings(environment[LOCAL_TRAINER_ENV]) == config.local_trainer
