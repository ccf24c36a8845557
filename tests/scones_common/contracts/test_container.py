from pathlib import Path

from scones_common.contracts.container import TrainingContainer


def test_training_container_layout():
    job = TrainingContainer(Path("/opt/ml"))
    assert str(job.channel("train_lst")) == "/opt/ml/input/data/train_lst"
    assert str(job.hyperparameters) == "/opt/ml/input/config/hyperparameters.json"
    assert (str(job.model_dir), str(job.failure)) == ("/opt/ml/model", "/opt/ml/output/failure")
