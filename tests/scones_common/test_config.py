import re

import pytest

from scones_common.config import ConfigError, load_config


def test_defaults_and_local_overlay():
    config = load_config(environ={})
    assert config.environment == "local"
    assert config.storage.bucket == "scones-local"
    assert config.inference.confidence_threshold == 0.93
    assert config.data.source == "sample"                       # the local overlay: the shipped dev subset
    assert load_config(environment="dev", environ={}).data.source == "cifar-100"


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
    ("data.seed", -1, "a whole number in [0, 1000000000]"),
    ("data.seed", 10**9 + 1, "a whole number in [0, 1000000000]"),
    ("data.seed", True, "a whole number"),
    ("data.source", " ", "'sample'"),
    ("schedule.enabled", "maybe", "true or false"),
    ("storage.nope", 3, "known keys"),
    ("nope", 3, "known keys"),
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
])
def test_bad_values_name_key_value_and_range(key, value, fragment):
    with pytest.raises(ConfigError) as info:
        load_config(environ={}, overrides={key: value})
    message = str(info.value)
    assert key in message and repr(value)[:100] in message and fragment in message


def test_sections_of_other_parts_are_not_loaded_by_the_shared_schema(tmp_path):
    (tmp_path / "pipeline.yaml").write_text("local_trainer: {seed: not-a-number}\n")
    config = load_config(tmp_path / "pipeline.yaml", environ={"SCONES__LOCAL_TRAINER__THREADS": "x"})
    assert "local_trainer" not in config.model_dump()


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


def test_no_augmentation():
    config = load_config(environ={}, overrides={"training.hyperparameters.augmentation_type": "none"})
    assert config.training.hyperparameters.augmentation_type == "none"


@pytest.mark.parametrize("value", ["[unclosed", "a: b: c", "1\x00", "!!python/object/apply:os.system [true]", "7.5"])
def test_an_env_value_of_the_wrong_kind_names_the_variable(value):
    with pytest.raises(ConfigError, match=r"config data.seed = .* expected a whole number\. .*\$SCONES__DATA__SEED"):
        load_config(environ={"SCONES__DATA__SEED": value})


def test_env_values_are_text_never_yaml():
    config = load_config(environ={"SCONES__PROJECT__GIT_COMMIT": "!!python/object/apply:os.system [true]"})
    assert config.project.git_commit == "!!python/object/apply:os.system [true]"


@pytest.mark.parametrize("environ, key", [
    ({"SCONES__DATA": "3", "SCONES__DATA__SEED": "1"}, "data"),
    ({"SCONES__DATA__SEED": "1", "SCONES__DATA": "3"}, "data"),
    ({"SCONES__TRAINNG__INSTANCE_COUNT": "1"}, "trainng"),
    ({"SCONES__DATA__SEEDS": "1"}, "data.seeds"),
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
    with pytest.raises(ConfigError, match="give either data or keys inside it"):
        load_config(environ={}, overrides={"data": 3, "data.seed": 1})


@pytest.mark.parametrize("content, expected", [
    (b"project:\n  name: caf\xe9\n", "UTF-8 text (byte 0xe9 at offset 20"),
    (b"training: [unclosed\n", "valid YAML"),
    (b"project: {name: x}\nstorage: {bucket: \"a\tb\x01\"}\n", "valid YAML"),
    (b"- a\n- b\n", "a YAML mapping at the top level"),
    (b"1: 2\n", "a text key"),
    (b"training: {true: 2}\n", "a text key"),
    (b"data: []\n", "a mapping of keys to values"),
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
