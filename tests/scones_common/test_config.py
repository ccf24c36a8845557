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
    ("local_trainer.coarse_resolution", 40, "a whole number in [4, 32]"),
    ("local_trainer.depth", 3, "known keys"),
])
def test_bad_values_name_key_value_and_range(key, value, fragment):
    with pytest.raises(ConfigError) as info:
        load_config(environ={}, overrides={key: value})
    message = str(info.value)
    assert key in message and repr(value) in message and fragment in message


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
