"""CompareWithChampion's entry point: both models on the same test images, comparison.json for the pipeline."""
import json

import pytest

from processing import champion


def _write(tmp_path, name: str, probabilities: list[list[float]]):
    folder = tmp_path / name
    for i, row in enumerate(probabilities):
        target = folder / "test" / f"img_{i}.png.out"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps({"prediction": row}) + "\n")
    return folder


@pytest.fixture
def test_split(tmp_path):
    labels = [0] * 10 + [1] * 10
    lst = tmp_path / "test.lst"
    lst.write_text("".join(f"{i}\t{c}\ttest/img_{i}.png\n" for i, c in enumerate(labels)))
    good = [[0.99, 0.01]] * 10 + [[0.01, 0.99]] * 10
    swapped = [[0.01, 0.99]] * 10 + [[0.9, 0.1]] * 10           # trained on swapped labels
    return lst, _write(tmp_path, "champion", good), _write(tmp_path, "challenger", swapped)


def _run(tmp_path, lst, challenger, champion_dir, found="true", tolerance="0.02"):
    out = tmp_path / "out"
    code = champion.main(["--challenger-predictions-dir", str(challenger), "--champion-predictions-dir",
                          str(champion_dir), "--lst", str(lst), "--output-dir", str(out), "--confidence-threshold",
                          "0.93", "--tolerance", tolerance, "--champion-found", found, "--champion-package-arn",
                          "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/1" if found == "true" else "",
                          "--champion-version", "1" if found == "true" else "", "--champion-source", "endpoint",
                          "--champion-model-name", "scones-vehicle-classifier-v1"])
    return code, json.loads((out / champion.COMPARISON_REPORT).read_text()) if code == 0 else None


def test_a_worse_challenger_fails_the_gate_with_both_figures_recorded(tmp_path, test_split):
    lst, good, swapped = test_split
    code, record = _run(tmp_path, lst, swapped, good)
    assert code == 0           # a failed gate is the pipeline's decision, not the job's error
    assert record["gate"]["verdict"] == "fail" and record["gate"]["worse_on"] == ["accuracy", "coverage", "precision"]
    assert record["challenger"]["figures"]["accuracy"] == 0.0 and record["champion"]["figures"]["accuracy"] == 1.0
    assert record["champion"]["figures"]["precision_lower_bound"] == pytest.approx(0.05 ** (1 / 20))
    assert record["tolerance"] == 0.02 and record["count"] == 20
    assert "v1" in record["gate"]["message"] and "accuracy 0.0000 vs 1.0000" in record["gate"]["message"]
    assert record["metadata"] == {
        "champion_tolerance": "0.02",
        "champion": "v1 accuracy=1.0000 coverage=1.0000 precision=1.0000 lcb95=0.8609 n=20",
        "challenger": "accuracy=0.0000 coverage=0.5000 precision=0.0000 lcb95=0.0000 n=10"}


def test_an_equal_challenger_passes(tmp_path, test_split):
    lst, good, _ = test_split
    code, record = _run(tmp_path, lst, good, good)
    assert record["gate"] == {"verdict": "pass", "passed": True, "worse_on": [],
                              "message": record["gate"]["message"]} and "not worse than v1" in record["gate"]["message"]


def test_without_a_champion_only_the_challenger_is_scored(tmp_path, test_split):
    lst, _, swapped = test_split
    code, record = _run(tmp_path, lst, swapped, tmp_path / "nothing-here", found="false")
    assert record["gate"]["verdict"] == "pass" and record["champion"]["figures"] is None
    assert record["metadata"]["champion"] == "none"


def test_champion_predictions_missing_for_some_test_image_stop_the_job(tmp_path, test_split):
    lst, good, swapped = test_split
    (good / "test" / "img_3.png.out").unlink()
    assert _run(tmp_path, lst, swapped, good)[0] == 2


@pytest.mark.parametrize("arguments", [{"tolerance": "0.5"}, {"found": "yes"}])
def test_bad_arguments_are_user_errors(tmp_path, test_split, arguments):
    lst, good, swapped = test_split
    assert _run(tmp_path, lst, swapped, good, **arguments)[0] == 2
