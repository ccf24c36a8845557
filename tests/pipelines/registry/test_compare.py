"""The comparison of two versions is a pure function: plain values in, rows out (no AWS, no moto)."""
from datetime import UTC, datetime

import numpy as np
import pytest

from pipelines.registry.compare import ComparisonRow, compare, evaluation_uri, format_comparison, same, version_facts


def _package(version, status="Approved", accuracy="0.91", commit="abc1234", uri="s3://b/p/evaluation/x/evaluation.json"):
    return {"ModelPackageVersion": version, "ModelApprovalStatus": status,
            "ModelPackageArn": f"arn:aws:sagemaker:us-east-1:123456789012:model-package/g/{version}",
            "CreationTime": datetime(2026, 12, 1, 10, version, tzinfo=UTC),
            "CustomerMetadataProperties": {"accuracy": accuracy, "git_commit": commit, "data_source": "sha256:ab sample"},
            "InferenceSpecification": {"Containers": [{"Image": "img", "ModelDataUrl": f"s3://b/m/{version}.tar.gz"}]},
            "ModelMetrics": {"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": uri}}}}


def _evaluation(probabilities):
    from processing.evaluate import score

    return score([0, 1, 1, 1, 0], np.array(probabilities), 0.93)


def test_rows_follow_the_fields_and_mark_what_differs():
    rows = compare({"status": "Approved", "accuracy": 0.9, "commit": "a"}, {"status": "Approved", "accuracy": 0.95,
                                                                           "extra": 1})
    assert rows == [ComparisonRow("status", "Approved", "Approved", False), ComparisonRow("accuracy", 0.9, 0.95, True),
                    ComparisonRow("commit", "a", None, True), ComparisonRow("extra", None, 1, True)]
    assert [r.field for r in compare({"a": 1, "b": 2}, {"a": 1, "b": 2}, fields=["b", "a"])] == ["b", "a"]


def test_numbers_compare_as_values_and_text_as_text():
    assert same("0.91", 0.91) and same(0.1 + 0.2, 0.3) and same(float("nan"), float("nan")) and same(None, None)
    assert not same(0.91, 0.92) and not same(None, 0) and not same("1e5", "100000")    # two commits, not numbers
    assert not same(True, 1.0)


def test_version_facts_flatten_the_package_and_its_evaluation():
    facts = version_facts(_package(3), _evaluation([[0.99, 0.01], [0.7, 0.3], [0.2, 0.8], [0.05, 0.95], [0.6, 0.4]]))
    assert facts["version"] == 3 and facts["status"] == "Approved" and facts["created"] == "2026-12-01T10:03:00+00:00"
    assert facts["data source"] == "sha256:ab sample" and facts["git commit"] == "abc1234"
    assert facts["accuracy"] == 0.8 and facts["coverage at threshold"] == 0.4 and facts["precision at threshold"] == 1.0
    assert facts["confidence threshold"] == 0.93 and facts["test images"] == 5
    assert facts["true motorcycle → predicted bicycle"] == 1 and facts["bicycle recall"] == 1.0
    assert evaluation_uri(_package(3)) == "s3://b/p/evaluation/x/evaluation.json"


def test_without_an_evaluation_the_metadata_accuracy_is_compared():
    facts = version_facts(_package(1, accuracy="0.875", uri=""), None)
    assert facts["accuracy"] == 0.875 and facts["evaluation"] is None and "coverage at threshold" not in facts


def test_two_versions_show_what_changed():
    a = version_facts(_package(1, status="Approved"), _evaluation([[0.99, 0.01], [0.7, 0.3], [0.2, 0.8], [0.05, 0.95],
                                                                   [0.6, 0.4]]))
    b = version_facts(_package(2, status="PendingManualApproval", commit="def5678"),
                      _evaluation([[0.99, 0.01], [0.3, 0.7], [0.2, 0.8], [0.05, 0.95], [0.6, 0.4]]))
    changed = {r.field for r in compare(a, b) if r.differs}
    assert {"version", "status", "git commit", "accuracy", "model artifact", "created"} <= changed
    assert "data source" not in changed and "image" not in changed and "test images" not in changed


def test_the_precision_bound_gate_record_hyperparameters_and_approval_history_are_compared():
    package = _package(4)
    package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] = "s3://b/p/models/train-abc/output/model.tar.gz"
    package["CustomerMetadataProperties"].update({
        "champion_tolerance": "0.02", "champion": "v3 accuracy=0.9000 coverage=0.8000 precision=1.0000 lcb95=0.8 n=4",
        "decision-1": "Approved by arn:aws:iam::1:user/ana at 2026-12-02T09:00:00Z", "decision-1-reason": "beats v3",
        "deployment-1": "completed on ep at 2026-12-02T09:05:00Z"})
    facts = version_facts(package, _evaluation([[0.99, 0.01], [0.7, 0.3], [0.02, 0.98], [0.05, 0.95], [0.6, 0.4]]),
                          {"epochs": "6", "learning_rate": "0.01"})
    assert facts["precision at threshold"] == 1.0 and facts["confident images"] == 3
    assert facts["precision 95 % lower bound"] == pytest.approx(0.05 ** (1 / 3))
    assert facts["training job"] == "train-abc"
    assert (facts["hyperparameter epochs"], facts["hyperparameter learning_rate"]) == ("6", "0.01")
    assert facts["champion gate tolerance"] == "0.02" and facts["champion at registration"].startswith("v3 ")
    assert facts["approval history"].split("\n") == [
        "2026-12-02T09:00:00Z Approved by arn:aws:iam::1:user/ana: beats v3",
        "2026-12-02T09:05:00Z deployment completed on ep"]
    older = version_facts(_package(1), None)
    assert older["approval history"] is None and older["training job"] is None


def test_the_side_by_side_table_marks_differences_and_wraps_long_values():
    rows = compare({"accuracy": 0.95, "status": "Approved", "history": "line one\nline two " + "x" * 60},
                   {"accuracy": 0.475, "status": "Approved", "history": None})
    table = format_comparison(rows, "v1", "v2", width=30)
    lines = table.splitlines()
    assert lines[0].split() == ["field", "v1", "v2", "differs"]
    assert lines[2].split() == ["accuracy", "0.9500", "0.4750", "*"] and lines[3].split() == ["status", "Approved",
                                                                                               "Approved"]
    assert lines[4].split()[:3] == ["history", "line", "one"] and lines[4].endswith("*")
    assert all(len(line) <= len(lines[0]) + 2 for line in lines[:-1]) and "x" * 30 in table
    assert lines[-1] == "2 of 3 fields differ"
