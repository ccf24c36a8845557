import boto3
import pytest
from moto import mock_aws

from pipelines.registry import cli as registry_cli
from pipelines.registry import packages


@pytest.fixture
def sm(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    with mock_aws():
        client = boto3.client("sagemaker", region_name="us-east-1")
        client.create_model_package_group(ModelPackageGroupName="scones-vehicle-classifier")
        for accuracy in ("0.91", "0.93"):
            client.create_model_package(
                ModelPackageGroupName="scones-vehicle-classifier", ModelApprovalStatus="PendingManualApproval",
                CustomerMetadataProperties={"accuracy": accuracy, "git_commit": "abc1234"},
                InferenceSpecification={"Containers": [{"Image": "img", "ModelDataUrl": "s3://b/m.tar.gz"}],
                                        "SupportedContentTypes": ["image/png"], "SupportedResponseMIMETypes": ["application/json"]})
        yield client


def test_list_approve_reject(sm, capsys):
    assert registry_cli.main(["list"]) == 0
    table = capsys.readouterr().out
    assert "0.9100" in table and "0.9300" in table and "PendingManualApproval" in table
    assert registry_cli.main(["approve", "2", "--reason", "best accuracy so far"]) == 0
    assert registry_cli.main(["reject", "1", "--reason", "fails on night photos"]) == 0
    statuses = {r.version: r.status for r in packages.list_packages(sm, "scones-vehicle-classifier")}
    assert statuses == {2: "Approved", 1: "Rejected"}
    detail = sm.describe_model_package(ModelPackageName=packages.resolve_package(sm, "scones-vehicle-classifier", "1"))
    assert detail["ApprovalDescription"].startswith("Rejected by arn:aws:") and detail["ApprovalDescription"].endswith(
        ": fails on night photos")
    assert detail["CustomerMetadataProperties"]["decision-1-reason"] == "fails on night photos"


def test_unknown_version_is_a_clear_error(sm, capsys):
    assert registry_cli.main(["approve", "9", "--reason", "x"]) == 2
    assert "no model package version 9" in capsys.readouterr().err


@pytest.mark.parametrize("ref, message", [
    ("arn:aws:sagemaker:us-east-1:123456789012:model-package/other-group/1", "a version of group other-group, not of"),
    ("arn:aws:sagemaker:us-east-1:123456789012:model-package/unversioned", "not the ARN of a versioned model package"),
    ("arn:aws:iam::123456789012:user/alice", "not the ARN of a versioned model package"),
])
def test_a_package_outside_the_configured_group_is_refused_and_left_as_it_was(sm, capsys, ref, message):
    sm.create_model_package_group(ModelPackageGroupName="other-group")
    other = sm.create_model_package(ModelPackageGroupName="other-group", ModelApprovalStatus="PendingManualApproval",
                                    InferenceSpecification={"Containers": [{"Image": "img"}],
                                                            "SupportedContentTypes": ["image/png"],
                                                            "SupportedResponseMIMETypes": ["application/json"]})
    assert registry_cli.main(["approve", ref, "--reason", "looks good"]) == 2
    assert message in capsys.readouterr().err
    assert sm.describe_model_package(ModelPackageName=other["ModelPackageArn"])["ModelApprovalStatus"] == \
        "PendingManualApproval"
    own = packages.list_packages(sm, "scones-vehicle-classifier")[0].arn
    assert packages.resolve_package(sm, "scones-vehicle-classifier", own) == own


def test_list_shows_an_accuracy_that_is_not_a_number_as_written(sm, capsys):
    arn = packages.resolve_package(sm, "scones-vehicle-classifier", "1")
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="PendingManualApproval",
                            CustomerMetadataProperties={"accuracy": "bogus"})
    assert registry_cli.main(["list"]) == 0
    assert "bogus" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["approve", "reject"])
def test_decisions_require_a_reason(sm, command, capsys):
    with pytest.raises(SystemExit):
        registry_cli.main([command, "1"])
    assert registry_cli.main([command, "1", "--reason", "  "]) == 2
    assert "needs --reason" in capsys.readouterr().err


def test_live_without_endpoint(sm, capsys):
    assert registry_cli.main(["live"]) == 0
    assert "does not exist" in capsys.readouterr().out


@pytest.mark.parametrize("variable, value", [("SCONES__INFERENCE__CONFIDENCE_THRESHOLD", "1.5"),
                                             ("SCONES__REGISTRY__MODEL_PACKAGE_GROUP", "no spaces allowed")])
def test_a_bad_config_value_is_one_line_not_a_traceback(variable, value):
    from tests.console import run_script

    result = run_script("scones-registry", "--environment", "local", "list", env={variable: value})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "ConfigError" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_compare_prints_two_versions_side_by_side(sm, capsys):
    import json

    import numpy as np

    from processing.evaluate import score

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="compare-bucket")
    arns = []
    for version, probabilities in ((3, [[0.99, 0.01], [0.02, 0.98], [0.03, 0.97]]),
                                   (4, [[0.1, 0.9], [0.98, 0.02], [0.6, 0.4]])):
        s3.put_object(Bucket="compare-bucket", Key=f"eval/{version}/evaluation.json",
                      Body=json.dumps(score([0, 1, 1], np.array(probabilities), 0.93)))
        arns.append(sm.create_model_package(
            ModelPackageGroupName="scones-vehicle-classifier", ModelApprovalStatus="Approved",
            CustomerMetadataProperties={"accuracy": "1.0", "git_commit": f"commit{version}", "data_source": "sample",
                                        "challenger": "accuracy=1.0000 coverage=1.0000 precision=1.0000 lcb95=0.3684 n=3"},
            ModelMetrics={"ModelQuality": {"Statistics": {"ContentType": "application/json",
                                                          "S3Uri": f"s3://compare-bucket/eval/{version}/evaluation.json"}}},
            InferenceSpecification={"Containers": [{"Image": "img", "ModelDataUrl":
                                                    f"s3://b/models/train-{version}/output/model.tar.gz"}],
                                    "SupportedContentTypes": ["image/png"],
                                    "SupportedResponseMIMETypes": ["application/json"]})["ModelPackageArn"])
    assert registry_cli.main(["compare", "3", arns[1]]) == 0
    out = capsys.readouterr().out
    lines = {line.split("  ")[0].strip(): line for line in out.splitlines()}
    assert out.splitlines()[0].split() == ["field", "v3", "v4", "differs"]
    assert lines["accuracy"].split() == ["accuracy", "1.0000", "0.0000", "*"]
    assert lines["git commit"].split() == ["git", "commit", "commit3", "commit4", "*"]
    assert lines["data source"].split() == ["data", "source", "sample", "sample"]
    assert "precision 95 % lower bound" in lines and "true bicycle → predicted motorcycle" in lines
    assert "note: v3: training job train-3:" in out          # moto has no such job: said, not fatal
    assert registry_cli.main(["list"]) == 0
    assert "1.0000 (>=0.3684, n=3)" in capsys.readouterr().out
