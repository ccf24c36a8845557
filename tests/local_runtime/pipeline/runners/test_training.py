"""Pure parts of the training runner: which images run on the stand-in, which log lines are progress."""
import pytest

from local_runtime.pipeline.runners.training import is_image_classification, milestone


@pytest.mark.parametrize("line, shown", [
    ("12:00:01 epoch 10/40 train:accuracy=0.81 validation:accuracy=0.90", "epoch 10/40 train:accuracy=0.81 validation:accuracy=0.90"),
    ("12:00:01 epoch 11/40 train:accuracy=0.81", None),
    ("epoch 40/40 train:accuracy=0.99", "epoch 40/40 train:accuracy=0.99"),
    ("epoch 2/3 x=1", "epoch 2/3 x=1"),
    ("best epoch 38: {'validation:accuracy': 0.93}", None),
])
def test_milestones_are_quarters_and_the_last_epoch(line, shown):
    assert milestone(line) == shown


def test_only_the_builtin_image_classification_image_has_a_stand_in():
    assert is_image_classification("811284229777.dkr.ecr.us-east-1.amazonaws.com/image-classification:1")
    assert not is_image_classification("763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5-cpu-py311")
