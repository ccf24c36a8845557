"""Pure parts of the training runner: which images run on the stand-in, which log lines are progress."""
import pytest

from local_runtime.pipeline.runners.training import is_image_classification, milestone


@pytest.mark.parametrize("line, epochs, shown", [
    ("[12:00:01] Epoch[9] Validation-accuracy=0.900000", 40, "Epoch[9] Validation-accuracy=0.900000"),
    ("Epoch[10] Train-accuracy=0.81", 40, None),
    ("Epoch[39] Train-accuracy=0.99", 40, "Epoch[39] Train-accuracy=0.99"),
    ("Epoch[3] Time cost=0.1", 40, None),
    ("Epoch[4] Validation-accuracy=0.9", None, "Epoch[4] Validation-accuracy=0.9"),
    ("best epoch 38: {'validation:accuracy': 0.93}", 40, None),
])
def test_milestones_are_quarters_and_the_last_epoch(line, epochs, shown):
    assert milestone(line, epochs) == shown


def test_an_early_stop_is_a_milestone():
    shown = milestone("Early stopping after epoch 12: validation accuracy did not improve", 40)
    assert shown is not None and shown.startswith("Early stopping after epoch 12")


def test_only_the_builtin_image_classification_image_has_a_stand_in():
    assert is_image_classification("811284229777.dkr.ecr.us-east-1.amazonaws.com/image-classification:1")
    assert not is_image_classification("763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5-cpu-py311")
