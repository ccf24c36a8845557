import json

import pytest

from local_runtime.trainer.local_settings import LocalSettingsError, LocalTrainerSettings, parse_local_settings


def test_absent_or_empty_means_defaults():
    assert parse_local_settings(None) == parse_local_settings("") == LocalTrainerSettings()


def test_known_knobs_are_taken():
    settings = parse_local_settings(json.dumps({"label_smoothing": 0.1, "ensemble_size": 2, "flip_tta": False,
                                                "temperature_scaling": True, "seed": 3, "width": 24}))
    assert (settings.label_smoothing, settings.ensemble_size, settings.flip_tta) == (0.1, 2, False)
    assert (settings.temperature_scaling, settings.seed, settings.width) == (True, 3, 24)


@pytest.mark.parametrize("text, message", [
    ("{not json", "is not JSON"),
    ("[1, 2]", "must be a JSON object, got list"),
    ('{"epochs": 3}', "unknown keys \\['epochs'\\]"),
    ('{"label_smoothing": 0.5}', "label_smoothing = 0.5 is invalid: expected a number in \\[0, 0.5\\)"),
    ('{"ensemble_size": 0}', "ensemble_size = 0 is invalid"),
    ('{"ensemble_size": true}', "ensemble_size = True is invalid"),
    ('{"flip_tta": "yes"}', "flip_tta = 'yes' is invalid: expected true or false"),
    ('{"seed": 1.5}', "seed = 1.5 is invalid"),
    ('{"threads": 0}', "threads = 0 is invalid: expected a whole number in \\[1, 64\\]"),
])
def test_bad_values_are_named(text, message):
    with pytest.raises(LocalSettingsError, match=message):
        parse_local_settings(text)
