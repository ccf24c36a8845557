import boto3
import pytest
from moto import mock_aws

from inference_workflow.executions import (
    NotTestSplitError,
    WorkflowResult,
    format_table,
    generate_test_cases,
    main,
    true_label,
)


@pytest.fixture
def s3(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket="images")
        for key in ("p/staged/test/bicycle/a.png", "p/staged/test/motorcycle/b.png", "p/staged/test.lst",
                    "p/staged/train/bicycle/c.png"):
            client.put_object(Bucket="images", Key=key, Body=b"x")
        yield client


def test_only_test_images_are_chosen(s3):
    cases = generate_test_cases(s3, "images", "p/staged/test/", 10)
    assert sorted(c["s3_key"] for c in cases) == ["p/staged/test/bicycle/a.png", "p/staged/test/motorcycle/b.png"]


def test_non_test_prefix_refused(s3):
    with pytest.raises(NotTestSplitError, match="test split only"):
        generate_test_cases(s3, "images", "p/staged/train/", 1)


def test_label_and_table():
    assert true_label("p/staged/test/motorcycle/b.png") == "motorcycle"
    table = format_table([WorkflowResult("t/bicycle/a.png", "bicycle", "SUCCEEDED", "bicycle", 0.97, seconds=0.03),
                          WorkflowResult("t/bicycle/b.png", "bicycle", "FAILED", error="ThresholdConfidenceError: low")])
    assert "0.970" in table and "ThresholdConfidenceError" in table and "1/2 confident; 1/1" in table


def test_cli_names_a_wrong_prefix_without_a_traceback(s3, capsys):
    code = main(["--state-machine-arn", "arn:aws:states:us-east-1:123456789012:stateMachine:m", "--bucket", "images",
                 "--prefix", "p/staged/train/"])
    assert code == 2 and "NotTestSplitError" in capsys.readouterr().err
