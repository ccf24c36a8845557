"""The built-in image-classification algorithm's documented hyperparameters and its validation wording."""
import pytest

from scones_common.algorithm_contract import HYPERPARAMETERS, HyperparameterValidationError, to_text, validate

DOCUMENTED = {  # IC-Hyperparameter in the SageMaker developer guide
    "num_classes", "num_training_samples", "augmentation_type", "beta_1", "beta_2", "checkpoint_frequency",
    "early_stopping", "early_stopping_min_epochs", "early_stopping_patience", "early_stopping_tolerance", "epochs",
    "eps", "gamma", "image_shape", "kv_store", "learning_rate", "lr_scheduler_factor", "lr_scheduler_step",
    "mini_batch_size", "momentum", "multi_label", "num_layers", "optimizer", "precision_dtype", "resize", "top_k",
    "use_pretrained_model", "use_weighted_loss", "weight_decay"}
REQUIRED = {"num_classes": "2", "num_training_samples": "800"}


def test_exactly_the_29_documented_names():
    assert set(HYPERPARAMETERS) == DOCUMENTED and len(DOCUMENTED) == 29
    assert {h.name for h in HYPERPARAMETERS.values() if h.required} == {"num_classes", "num_training_samples"}


def test_documented_defaults_are_valid_values():
    values = validate(REQUIRED)
    assert values["epochs"] == 30 and values["optimizer"] == "sgd" and values["num_layers"] == "152"
    assert values["image_shape"] == (3, 224, 224) and values["eps"] == 1e-8 and values["early_stopping"] == "False"
    assert values["augmentation_type"] is None and values["resize"] is None


def test_booleans_are_written_as_the_algorithm_documents_them():
    assert (to_text(True), to_text(False), to_text(0.0005), to_text(18)) == ("True", "False", "0.0005", "18")


@pytest.mark.parametrize("raw, message", [
    ({**REQUIRED, "label_smoothing": "0.1", "width": "2"},
     "Additional hyperparameters are not allowed ('label_smoothing', 'width' were unexpected)"),
    ({"num_classes": "2"}, "No value(s) were specified for 'num_training_samples' which are required hyperparameter(s)"),
    ({**REQUIRED, "epochs": 5}, "The value '5' is not valid for the 'epochs' hyperparameter which expects a string"),
    ({**REQUIRED, "epochs": "0"}, "The value '0' is not valid for the 'epochs' hyperparameter which expects a positive integer"),
    ({**REQUIRED, "learning_rate": "1.5"}, "'learning_rate' hyperparameter which expects a float between 0 and 1"),
    ({**REQUIRED, "learning_rate": "nan"}, "'learning_rate' hyperparameter which expects a float between 0 and 1"),
    ({**REQUIRED, "top_k": "1"}, "'top_k' hyperparameter which expects a positive integer larger than 1"),
    ({**REQUIRED, "num_layers": "19"}, "'num_layers' hyperparameter which accepts one of the following: '18', '34'"),
    ({**REQUIRED, "image_shape": "3,32"}, "'image_shape' hyperparameter which expects a string 'num_channels,height,width'"),
    ({**REQUIRED, "lr_scheduler_step": "10,x"}, "'lr_scheduler_step' hyperparameter"),
    ({**REQUIRED, "epochs": "5", "checkpoint_frequency": "6"}, "positive integer no greater than epochs (5)"),
])
def test_invalid_hyperparameters_fail_with_the_algorithms_wording(raw, message):
    with pytest.raises(HyperparameterValidationError) as caught:
        validate(raw)
    assert message in str(caught.value)
    assert caught.value.failure_reason == f"ClientError: {caught.value} (caused by ValidationError)"


def test_resize_is_required_for_image_content_types_only():
    with pytest.raises(HyperparameterValidationError, match="'resize'.*'train'"):
        validate(REQUIRED, {"train": "application/x-image", "train_lst": "application/x-image"})
    assert validate(REQUIRED, {"train": "application/x-recordio"})["resize"] is None
    assert validate({**REQUIRED, "resize": "32", "image_shape": "3, 32, 32", "lr_scheduler_step": "10, 20"},
                    {"train": "image/png"})["lr_scheduler_step"] == (10, 20)
