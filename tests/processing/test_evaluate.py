import json
import re

import numpy as np
import pytest

from processing.evaluate import ThresholdError, evaluate, main, score
from processing.predictions import PredictionFormatError, PredictionsMissingError, parse_prediction


def test_score_metrics():
    y_true = [0, 0, 1, 1]
    probabilities = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7]])
    metrics = score(y_true, probabilities, 0.85)["metrics"]
    assert metrics["accuracy"]["value"] == 0.75 and metrics["count"] == 4
    assert metrics["confusion_matrix"]["matrix"] == [[1, 1], [0, 2]]
    assert metrics["per_class"]["bicycle"]["precision"] == 1.0 and metrics["per_class"]["motorcycle"]["recall"] == 1.0
    assert metrics["roc_auc"]["value"] == 1.0
    assert metrics["confidence_threshold"]["value"] == 0.85
    assert metrics["coverage"]["value"] == 0.25 and metrics["confident_precision"]["value"] == 1.0
    assert len(metrics["coverage_curve"]["thresholds"]) == len(metrics["coverage_curve"]["precision"])
    assert sum(b["count"] for b in metrics["calibration"]["bins"]) == 4


def test_precision_at_the_threshold_carries_its_lower_confidence_bound():
    y_true = [0] * 60 + [1] * 40
    probabilities = np.array([[0.99, 0.01]] * 59 + [[0.6, 0.4]] + [[0.02, 0.98]] * 39 + [[0.97, 0.03]])
    precision = score(y_true, probabilities, 0.93)["metrics"]["confident_precision"]
    assert precision["value"] == pytest.approx(98 / 99)
    assert (precision["correct"], precision["confident"]) == (98, 99)
    assert precision["lower_bound"] == pytest.approx(0.95298, abs=5e-6) and precision["lower_bound"] < precision["value"]
    assert precision["confidence_level"] == 0.95 and precision["method"] == "Clopper-Pearson one-sided"
    nobody = score([0, 1], np.array([[0.6, 0.4], [0.45, 0.55]]), 0.93)["metrics"]["confident_precision"]
    assert nobody["value"] is None and nobody["lower_bound"] is None and nobody["confident"] == 0


def test_threshold_outside_unit_interval_is_refused():
    with pytest.raises(ThresholdError, match="1.5"):
        score([0, 1], np.array([[0.9, 0.1], [0.1, 0.9]]), 1.5)


def _predictions(tmp_path, rows):
    lst = tmp_path / "test.lst"
    lst.write_text("".join(f"{i}\t{c}\t{path}\n" for i, (path, c, _) in enumerate(rows)))
    for path, _, probabilities in rows:
        if probabilities is not None:
            target = tmp_path / "pred" / f"{path}.out"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(probabilities))
    return lst


def test_evaluate_reads_transform_output(tmp_path):
    lst = _predictions(tmp_path, [("bicycle/a.png", 0, [0.9, 0.1]), ("motorcycle/b.png", 1, [0.1, 0.9])])
    report = evaluate(tmp_path / "pred", lst, tmp_path / "out", 0.93)
    assert report["metrics"]["accuracy"]["value"] == 1.0 and report["metrics"]["coverage"]["value"] == 0.0
    assert json.loads((tmp_path / "out" / "evaluation.json").read_text()) == report


def test_missing_prediction_is_named(tmp_path, capsys):
    lst = _predictions(tmp_path, [("bicycle/a.png", 0, [0.9, 0.1]), ("motorcycle/b.png", 1, None)])
    with pytest.raises(PredictionsMissingError, match="1 of 2"):
        evaluate(tmp_path / "pred", lst, tmp_path / "out", 0.93)
    assert main(["--predictions-dir", str(tmp_path / "pred"), "--lst", str(lst), "--output-dir", str(tmp_path / "o"),
                 "--confidence-threshold", "0.93"]) == 2


ROWS = [("bicycle/a.png", 0, [0.9, 0.1]), ("bicycle/c.png", 0, [0.3, 0.7]), ("motorcycle/b.png", 1, [0.2, 0.8])]


def _write_outs(tmp_path, name, render):
    lst = tmp_path / "test.lst"
    lst.write_text("".join(f"{i}\t{c}\t{path}\n" for i, (path, c, _) in enumerate(ROWS)))
    for path, _, probabilities in ROWS:
        target = tmp_path / name / f"{path}.out"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render(probabilities))
    return lst


def test_either_output_shape_scores_the_same(tmp_path):
    from local_runtime.pipeline.runners.transform import prediction_record

    shapes = {"bare": json.dumps, "documented": lambda p: json.dumps({"prediction": p}),
              "jsonlines": prediction_record, "pretty": lambda p: json.dumps({"prediction": p}, indent=2)}
    reports = {name: evaluate(tmp_path / name, _write_outs(tmp_path, name, render), tmp_path / f"out-{name}", 0.93)
               for name, render in shapes.items()}
    assert reports["documented"]["metrics"]["accuracy"]["value"] == pytest.approx(2 / 3)
    assert all(report == reports["documented"] for report in reports.values())


@pytest.mark.parametrize("text, fragment", [
    ('{"prediction": [0.1, 0.9]}\n{"prediction": [0.2, 0.8]}\n', "holds 2 JSON Lines records"),
    ('{"predictions": [0.1, 0.9]}', "expected [p0, p1, ...]"),
    ("[]", "expected [p0, p1, ...]"),
    ("not json", "is not JSON"),
])
def test_unreadable_prediction_is_named(text, fragment):
    with pytest.raises(PredictionFormatError, match=re.escape(fragment)):
        parse_prediction(text, "bicycle/a.png.out")


def test_main_writes_threshold_fields(tmp_path):
    lst = _predictions(tmp_path, [("bicycle/a.png", 0, [0.95, 0.05]), ("motorcycle/b.png", 1, [0.2, 0.8])])
    assert main(["--predictions-dir", str(tmp_path / "pred"), "--lst", str(lst), "--output-dir", str(tmp_path / "o"),
                 "--images-dir", "none", "--confidence-threshold", "0.9"]) == 0
    metrics = json.loads((tmp_path / "o" / "evaluation.json").read_text())["metrics"]
    assert metrics["confidence_threshold"]["value"] == 0.9
    assert metrics["coverage"] == {"value": 0.5, "confident": 1} and metrics["confident_precision"]["value"] == 1.0


@pytest.mark.parametrize("row, why", [
    ([-5, 7], "outside [0, 1]"),                    # used to score: accuracy 0.5, coverage 100 %
    ([0.2, 0.3, 0.5], "has 3 values; the model has 2 classes"),
    ([float("nan"), float("nan")], "not a finite number"),
    ([0.7], "has 1 value; the model has 2 classes"),
    ([0.7, 0.7], "sums to 1.4"),
])
def test_predictions_that_are_not_probability_vectors_are_refused_by_name(tmp_path, row, why):
    from processing.predictions import NotProbabilitiesError

    lst = _predictions(tmp_path, [("bicycle/a.png", 0, [0.9, 0.1]), ("motorcycle/b.png", 1, row)])
    with pytest.raises(NotProbabilitiesError, match=re.escape(why)):
        evaluate(tmp_path / "pred", lst, tmp_path / "out", 0.93)
    assert not (tmp_path / "out").exists()


def test_rounded_probabilities_still_score(tmp_path):
    lst = _predictions(tmp_path, [("bicycle/a.png", 0, [0.9999, 0.0002]), ("motorcycle/b.png", 1, [0.1, 0.9])])
    assert evaluate(tmp_path / "pred", lst, tmp_path / "out", 0.93)["metrics"]["accuracy"]["value"] == 1.0


@pytest.mark.parametrize("argument", [".", "/", "~", "users-own"])
def test_the_output_dir_is_new_empty_or_an_earlier_evaluation(tmp_path, monkeypatch, capsys, argument):
    lst = _predictions(tmp_path, [("bicycle/a.png", 0, [0.95, 0.05]), ("motorcycle/b.png", 1, [0.2, 0.8])])
    here = tmp_path / "here"
    (here / "users-own").mkdir(parents=True)
    (here / "users-own" / "evaluation.json").write_text('{"mine": true}')
    monkeypatch.chdir(here)
    args = ["--predictions-dir", str(tmp_path / "pred"), "--lst", str(lst), "--images-dir", "none",
            "--confidence-threshold", "0.9"]
    assert main(args + ["--output-dir", argument]) == 2
    assert "UnsafeDirectoryError" in capsys.readouterr().err
    assert (here / "users-own" / "evaluation.json").read_text() == '{"mine": true}'
    assert sorted(p.name for p in here.iterdir()) == ["users-own"]
    assert main(args + ["--output-dir", "mine"]) == 0 and main(args + ["--output-dir", "mine"]) == 0   # its own again
