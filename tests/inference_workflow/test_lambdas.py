"""Each handler with real PNGs and real events; AWS calls go to moto."""
import base64
import importlib
import json

import boto3
import pytest
from moto import mock_aws

from tests.builders import png_bytes

serialize = importlib.import_module("inference_workflow.serialize_image_data.lambda_function")
classify = importlib.import_module("inference_workflow.classify_image.lambda_function")
filtering = importlib.import_module("inference_workflow.filter_inferences.lambda_function")


@pytest.fixture
def bucket(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="images")
        monkeypatch.setattr(serialize, "s3", s3)
        yield s3


def test_serialize_returns_base64_string(bucket):
    image = png_bytes()
    bucket.put_object(Bucket="images", Key="test/bicycle/a.png", Body=image)
    result = serialize.lambda_handler({"s3_bucket": "images", "s3_key": "test/bicycle/a.png"}, None)
    assert isinstance(result["image_data"], str)
    assert base64.b64decode(result["image_data"]) == image
    assert result["inferences"] == [] and result["s3_key"] == "test/bicycle/a.png"
    json.dumps(result)  # the state's output must be JSON-serializable


@pytest.mark.parametrize("event", [{}, {"s3_bucket": "images"}, {"s3_bucket": "", "s3_key": "x.png"}, None, [], 3, "x.png",
                                   {"s3_bucket": ["images"], "s3_key": "x.png"}])
def test_serialize_rejects_bad_events(bucket, event):
    with pytest.raises(serialize.InvalidEventError):
        serialize.lambda_handler(event, None)


def test_serialize_missing_object(bucket):
    with pytest.raises(serialize.ImageNotFoundError, match="does not exist"):
        serialize.lambda_handler({"s3_bucket": "images", "s3_key": "test/none.png"}, None)


def test_serialize_too_large_names_the_limit(bucket):
    bucket.put_object(Bucket="images", Key="big.png", Body=png_bytes(size=32) + b"\0" * 300_000)
    with pytest.raises(serialize.ImageTooLargeError, match="256 KiB"):
        serialize.lambda_handler({"s3_bucket": "images", "s3_key": "big.png"}, None)


def test_serialize_not_an_image(bucket):
    bucket.put_object(Bucket="images", Key="test.lst", Body=b"0\t1\tbicycle/a.png\n")
    with pytest.raises(serialize.NotAnImageError):
        serialize.lambda_handler({"s3_bucket": "images", "s3_key": "test.lst"}, None)


class _Body:
    def __init__(self, data: bytes):
        self.data = data

    def read(self):
        return self.data


class _Runtime:
    """Records the request; answers like sagemaker-runtime (used only where no endpoint is needed)."""

    def __init__(self, answer=b"[0.97, 0.03]", error=None):
        self.answer, self.error, self.calls = answer, error, []

    def invoke_endpoint(self, **kwargs):
        self.calls.append(kwargs)
        if self.error:
            raise self.error
        return {"Body": _Body(self.answer)}


def _event():
    return {"image_data": base64.b64encode(png_bytes()).decode(), "s3_bucket": "b", "s3_key": "test/bicycle/a.png",
            "inferences": []}


def test_classify_uses_endpoint_from_environment(monkeypatch):
    runtime = _Runtime()
    monkeypatch.setattr(classify, "runtime", runtime)
    monkeypatch.setenv("ENDPOINT_NAME", "my-endpoint")
    result = classify.lambda_handler(_event(), None)
    assert result["inferences"] == [0.97, 0.03]
    assert runtime.calls[0]["EndpointName"] == "my-endpoint" and runtime.calls[0]["ContentType"] == "image/png"
    assert runtime.calls[0]["Body"] == png_bytes()


def test_classify_requires_endpoint_name(monkeypatch):
    monkeypatch.delenv("ENDPOINT_NAME", raising=False)
    with pytest.raises(classify.EndpointNotConfiguredError):
        classify.lambda_handler(_event(), None)


@pytest.mark.parametrize("image_data", ["***not base64***", "ééé", 12, None, ["aGk="]])
def test_classify_rejects_bad_base64(monkeypatch, image_data):
    monkeypatch.setenv("ENDPOINT_NAME", "e")
    with pytest.raises(classify.InvalidEventError):
        classify.lambda_handler({"image_data": image_data}, None)


def test_classify_surfaces_aws_error_names(monkeypatch):
    from botocore.exceptions import ClientError

    error = ClientError({"Error": {"Code": "ModelError", "Message": "bad image"}}, "InvokeEndpoint")
    monkeypatch.setattr(classify, "runtime", _Runtime(error=error))
    monkeypatch.setenv("ENDPOINT_NAME", "e")
    with pytest.raises(Exception) as info:
        classify.lambda_handler(_event(), None)
    assert type(info.value).__name__ == "ModelError" and "bad image" in str(info.value)


def test_classify_rejects_non_probability_answer(monkeypatch):
    monkeypatch.setattr(classify, "runtime", _Runtime(answer=b'{"oops": 1}'))
    monkeypatch.setenv("ENDPOINT_NAME", "e")
    with pytest.raises(classify.InvalidInferenceError):
        classify.lambda_handler(_event(), None)


def test_filter_passes_confident(monkeypatch):
    monkeypatch.delenv("THRESHOLD", raising=False)
    result = filtering.lambda_handler({**_event(), "inferences": [0.02, 0.98]}, None)
    assert result["predicted_label"] == "motorcycle" and result["confidence"] == 0.98


def test_filter_raises_named_error_below_default_threshold(monkeypatch):
    monkeypatch.delenv("THRESHOLD", raising=False)
    with pytest.raises(filtering.ThresholdConfidenceError, match="0.93"):
        filtering.lambda_handler({**_event(), "inferences": [0.6, 0.4]}, None)


@pytest.mark.parametrize("raw", ["1.5", "-0.1", "high", "nan", "inf", "1_0"])
def test_filter_validates_threshold(monkeypatch, raw):
    monkeypatch.setenv("THRESHOLD", raw)
    with pytest.raises(filtering.ThresholdConfigError):
        filtering.lambda_handler({**_event(), "inferences": [0.99, 0.01]}, None)


@pytest.mark.parametrize("inferences", [[], None, [float("nan"), 0.1], [5.0, -4.0], [float("inf"), 0.0], [True, False],
                                        ["0.9", "0.1"], 0.9])
def test_filter_rejects_anything_but_probabilities(monkeypatch, inferences):
    monkeypatch.setenv("THRESHOLD", "0.5")
    with pytest.raises(filtering.InvalidInferencesError, match="numbers in \\[0, 1\\]"):
        filtering.lambda_handler({"inferences": inferences}, None)


def test_classify_names_an_unreachable_endpoint(monkeypatch):
    from botocore.config import Config

    from local_runtime.aws import free_port

    closed = boto3.client("sagemaker-runtime", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{free_port()}",
                          aws_access_key_id="x", aws_secret_access_key="x",
                          config=Config(retries={"max_attempts": 1}, connect_timeout=1))
    monkeypatch.setattr(classify, "runtime", closed)
    monkeypatch.setenv("ENDPOINT_NAME", "e")
    with pytest.raises(classify.EndpointUnreachableError, match="cannot reach the SageMaker runtime for e"):
        classify.lambda_handler(_event(), None)


@pytest.mark.parametrize("event", [None, [], [{"image_data": "aGk="}], 7, "aGk=", True])
def test_every_lambda_names_an_event_that_is_not_an_object(monkeypatch, event):
    monkeypatch.setenv("ENDPOINT_NAME", "vehicles")
    for module in (serialize, classify, filtering):
        with pytest.raises(module.InvalidEventError, match="JSON object"):
            module.lambda_handler(event, None)
