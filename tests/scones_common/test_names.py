from pathlib import Path

from scones_common.config import load_config
from scones_common.names import DEPLOY_FUNCTION_SUFFIX, capture_uri, deploy_function_name, raw_data_uri

TEMPLATE = Path(__file__).resolve().parents[2] / "inference_workflow" / "template.yaml"


def _config(**overrides):
    return load_config(environment="local", environ={}, overrides=overrides)


def test_the_pipeline_calls_the_deploy_lambda_the_template_creates():
    assert deploy_function_name(_config()) == "scones-vehicle-classifier-deploy-model"
    assert f"FunctionName: !Sub ${{ProjectName}}-{DEPLOY_FUNCTION_SUFFIX}\n" in TEMPLATE.read_text()


def test_s3_locations():
    config = _config(**{"data.source": "/data/cifar-100-python-dev.tar.gz"})
    assert raw_data_uri(config) == "s3://scones-local/scones-vehicle-classifier/raw/cifar-100-python-dev.tar.gz"
    assert raw_data_uri(_config()).endswith("/raw/cifar-100-python.tar.gz")
    assert capture_uri(config) == "s3://scones-local/scones-vehicle-classifier/data-capture"
