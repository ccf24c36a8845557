import re

import pytest

from scones_common.config import ConfigError, load_config


def test_defaults_and_local_overlay():
    config = load_config(environ={})
    assert config.environment == "local"
    assert config.storage.bucket == "scones-local"
    assert config.inference.confidence_threshold == 0.93
    assert config.training.hyperparameters.epochs == 80          # the local overlay: the CPU stand-in needs more epochs


def test_layers_file_overlay_env_cli(tmp_path):
    (tmp_path / "environments").mkdir()
    (tmp_path / "pipeline.yaml").write_text("training:\n  hyperparameters:\n    epochs: 10\n    learning_rate: 0.2\n")
    (tmp_path / "environments" / "dev.yaml").write_text("training:\n  hyperparameters:\n    epochs: 20\n")
    environ = {"SCONES__TRAINING__HYPERPARAMETERS__EPOCHS": "30", "SCONES__ENVIRONMENT": "dev"}
    config = load_config(tmp_path / "pipeline.yaml", environ=environ)
    assert config.environment == "dev"
    assert config.training.hyperparameters.epochs == 30
    assert config.training.hyperparameters.learning_rate == 0.2
    config = load_config(tmp_path / "pipeline.yaml", environ=environ,
                         overrides={"training.hyperparameters.epochs": 5, "data.seed": None})
    assert config.training.hyperparameters.epochs == 5
    assert config.data.seed == 42


@pytest.mark.parametrize("key, value, fragment", [
    ("inference.confidence_threshold", 1.5, "[0, 1]"),
    ("inference.confidence_threshold", "high", "a number"),
    ("training.instance_type", "p3.2xlarge", "ml.m5.xlarge"),
    ("registry.approval_status", "Maybe", "PendingManualApproval"),
    ("schedule.expression", "every monday", "cron("),
    ("training.hyperparameters.epochs", 2.5, "whole number"),
    ("training.hyperparameters.optimizer", "lion", "sgd"),
    ("data.validation_fraction", 0.7, "(0, 0.5)"),
    ("storage.bucket", "My_Bucket", "bucket name"),
    ("training.hyperparameters.epoch", 3, "known keys"),
    ("training.hyperparameters.learning_rate", 10, "(0, 1]"),
    ("training.hyperparameters.learning_rate", 0, "(0, 1]"),
    ("training.hyperparameters.momentum", 1.5, "a float between 0 and 1"),
    ("training.hyperparameters.num_layers", 19, "'18'"),
    ("training.hyperparameters.mini_batch_size", 0, "a positive integer"),
    ("training.hyperparameters.augmentation_type", "flip", "crop_color_transform"),
    ("training.hyperparameters.label_smoothing", 0.1, "known keys"),
    ("local_trainer.label_smoothing", 0.5, "[0, 0.5)"),
    ("local_trainer.width", 2, "a whole number in [4, 128]"),
    ("local_trainer.ensemble_size", 9, "a whole number in [1, 8]"),
    ("local_trainer.threads", "two", "a whole number"),
    ("local_trainer.coarse_fraction", 1.0, "[0, 1)"),
    ("local_trainer.coarse_resolution", 40, "a whole number in [8, 32]"),
    ("local_trainer.coarse_resolution", 7, "a whole number in [8, 32]"),     # three 2×2 max-pools need 8 px
    ("local_trainer.probe_skip_confidence", 0.4, "a number in [0.5, 1]"),
    ("local_trainer.early_exit_confidence", 1.5, "a number in [0.5, 1]"),
    ("local_trainer.seed", 10**9 + 1, "a whole number in [0, 1000000000]"),
    ("local_trainer.seed", -1, "a whole number in [0, 1000000000]"),
    ("data.seed", -1, "a whole number in [0, 1000000000]"),
    ("project.region", "us-east-1\n", "us-east-1"),                           # patterns match the whole value
    ("project.region", "us-east-\u0661", "us-east-1"),                        # ASCII digits only
    ("storage.bucket", "bucket\n", "bucket name"),
    ("pipeline.role_arn", "arn:aws:iam::123456789012:role/r\n", "role ARN"),
    ("pipeline.cache_expire_after", "P\u0663D", "ISO 8601"),
    ("training.instance_count", "\u0661", "a whole number"),
    pytest.param("training.instance_count", "1" * 5000, "a whole number", id="5000-digits"),
    ("deployment.latency_threshold_ms", "1e400", "a finite number"),
    ("deployment.latency_threshold_ms", float("inf"), "a finite number"),
    pytest.param("deployment.latency_threshold_ms", 10**400, "a finite number", id="integer-beyond-float"),
    ("project.name", b"scones", "a string"),
    ("local_trainer.depth", 3, "known keys"),
])
def test_bad_values_name_key_value_and_range(key, value, fragment):
    with pytest.raises(ConfigError) as info:
        load_config(environ={}, overrides={key: value})
    message = str(info.value)
    assert key in message and repr(value)[:100] in message and fragment in message


def test_local_early_stopping_needs_a_held_out_validation_split():
    overrides = {"training.hyperparameters.early_stopping": True}
    with pytest.raises(ConfigError, match="local_trainer.train_on_validation.*early_stopping is true"):
        load_config(environ={}, overrides=overrides)
    assert load_config(environ={}, overrides={**overrides, "local_trainer.train_on_validation": False})
    assert load_config(environment="dev", environ={}, overrides=overrides)     # the cloud algorithm has no such knob


def test_unknown_environment_rejected():
    with pytest.raises(ConfigError, match="environment"):
        load_config(environment="staging", environ={})


def test_cloud_run_requires_bucket_and_role():
    config = load_config(environment="dev", environ={})
    with pytest.raises(ConfigError, match="pipeline.role_arn"):
        config.require_cloud()
    config = load_config(environment="dev", environ={}, overrides={"storage.bucket": ""})
    with pytest.raises(ConfigError, match="storage.bucket"):
        config.require_cloud()


def test_env_values_parsed_as_yaml_scalars():
    config = load_config(environ={"SCONES__SCHEDULE__ENABLED": "true", "SCONES__DATA__SEED": "7"})
    assert config.schedule.enabled is True and config.data.seed == 7


def test_broken_yaml_file_is_named(tmp_path):
    bad = tmp_path / "pipeline.yaml"
    bad.write_text("training: [unclosed\n")
    with pytest.raises(ConfigError, match="valid YAML"):
        load_config(bad, environ={})


def test_local_trainer_section_and_no_augmentation():
    config = load_config(environ={"SCONES__LOCAL_TRAINER__LABEL_SMOOTHING": "0.05"},
                         overrides={"training.hyperparameters.augmentation_type": "none"})
    assert config.local_trainer.label_smoothing == 0.05 and config.local_trainer.seed == 0
    assert config.training.hyperparameters.augmentation_type == "none"


@pytest.mark.parametrize("value", ["[unclosed", "a: b: c", "1\x00", "!!python/object/apply:os.system [true]"])
def test_env_value_that_is_not_one_yaml_value_names_the_variable(value):
    with pytest.raises(ConfigError, match=r"SCONES__LOCAL_TRAINER__THREADS = .* one YAML value .* quote text"):
        load_config(environ={"SCONES__LOCAL_TRAINER__THREADS": value})


@pytest.mark.parametrize("environ, key", [
    ({"SCONES__LOCAL_TRAINER": "3", "SCONES__LOCAL_TRAINER__THREADS": "1"}, "local_trainer"),
    ({"SCONES__LOCAL_TRAINER__THREADS": "1", "SCONES__LOCAL_TRAINER": "3"}, "local_trainer"),
    ({"SCONES__TRAINING__HYPERPARAMETERS": "x", "SCONES__TRAINING__HYPERPARAMETERS__EPOCHS": "3"},
     "training.hyperparameters"),
    ({"SCONES__DATA____SEED": "1"}, "data..seed"),
    ({"SCONES__": "1"}, ""),
])
def test_env_variables_that_contradict_or_misname_keys_are_refused(environ, key):
    with pytest.raises(ConfigError) as info:
        load_config(environ=environ)
    assert info.value.key == key


def test_a_section_given_as_a_value_and_as_keys_on_the_command_line_is_refused():
    with pytest.raises(ConfigError, match="give either local_trainer or keys inside it"):
        load_config(environ={}, overrides={"local_trainer": 3, "local_trainer.threads": 1})


@pytest.mark.parametrize("content, expected", [
    (b"project:\n  name: caf\xe9\n", "UTF-8 text (byte 0xe9 at offset 20"),
    (b"training: [unclosed\n", "valid YAML"),
    (b"project: {name: x}\nstorage: {bucket: \"a\tb\x01\"}\n", "valid YAML"),
    (b"- a\n- b\n", "a YAML mapping at the top level"),
    (b"1: 2\n", "a text key"),
    (b"training: {true: 2}\n", "a text key"),
    (b"local_trainer: []\n", "a mapping of keys to values"),
    (b"data: {seed: " + b"9" * 5000 + b"}\n", "valid YAML"),
])
def test_a_config_file_that_cannot_be_read_is_named(tmp_path, content, expected):
    bad = tmp_path / "pipeline.yaml"
    bad.write_bytes(content)
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_config(bad, environ={})


def test_a_directory_given_as_config_file_or_overlay_is_named(tmp_path):
    with pytest.raises(ConfigError, match=f"'{re.escape(str(tmp_path))}' is invalid: expected a YAML file, not a directory"):
        load_config(tmp_path, environ={})
    (tmp_path / "pipeline.yaml").write_text("project: {name: x}\n")
    (tmp_path / "environments" / "local.yaml").mkdir(parents=True)
    with pytest.raises(ConfigError, match="local.yaml' is invalid: expected a YAML file, not a directory"):
        load_config(tmp_path / "pipeline.yaml", environ={})
