"""EvaluateModel writes the drift baseline next to evaluation.json from the real test PNGs."""
import json

import numpy as np
from PIL import Image

from inference_workflow.drift_monitor.drift import Profile
from inference_workflow.drift_monitor.png import decode_rgb
from processing.evaluate import main
from tests.builders import synthetic_images


def test_evaluate_writes_the_baseline_the_monitor_reads(tmp_path):
    images, predictions, rows = tmp_path / "images", tmp_path / "pred", []
    rng = np.random.default_rng(0)
    for i, (label, fine) in enumerate([(0, 8), (1, 48)] * 3):
        relative = f"{'bicycle' if label == 0 else 'motorcycle'}/{i}.png"
        (images / relative).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(synthetic_images(1, fine, rng)[0]).save(images / relative)
        (predictions / relative).parent.mkdir(parents=True, exist_ok=True)
        (predictions / f"{relative}.out").write_text(json.dumps([0.97, 0.03] if label == 0 else [0.4, 0.6]))
        rows.append(f"{i}\t{label}\t{relative}\n")
    (tmp_path / "test.lst").write_text("".join(rows))
    assert main(["--predictions-dir", str(predictions), "--lst", str(tmp_path / "test.lst"), "--output-dir",
                 str(tmp_path / "out"), "--images-dir", str(images), "--confidence-threshold", "0.93"]) == 0
    baseline = Profile.from_dict(json.loads((tmp_path / "out" / "baseline.json").read_text()))
    assert baseline.count == 6 and baseline.images == 6 and baseline.classes == [3, 3]
    assert baseline.low_confidence_share == 0.5 and baseline.class_names == ("bicycle", "motorcycle")
    monitor_side = baseline.empty_like()
    for line in rows:
        monitor_side.add_image(decode_rgb((images / line.split("\t")[2].strip()).read_bytes()))
    assert monitor_side.brightness == baseline.brightness and monitor_side.channels == baseline.channels


def test_evaluate_without_images_writes_no_baseline(tmp_path):
    (tmp_path / "pred").mkdir()
    (tmp_path / "pred" / "a.png.out").write_text("[0.9, 0.1]")
    (tmp_path / "test.lst").write_text("0\t0\ta.png\n")
    assert main(["--predictions-dir", str(tmp_path / "pred"), "--lst", str(tmp_path / "test.lst"),
                 "--output-dir", str(tmp_path / "out"), "--images-dir", "none", "--confidence-threshold", "0.93"]) == 0
    assert not (tmp_path / "out" / "baseline.json").exists()


def test_a_missing_test_image_is_a_named_error(tmp_path, capsys):
    (tmp_path / "pred").mkdir()
    (tmp_path / "images").mkdir()
    (tmp_path / "pred" / "a.png.out").write_text("[0.9, 0.1]")
    (tmp_path / "test.lst").write_text("0\t0\ta.png\n")
    assert main(["--predictions-dir", str(tmp_path / "pred"), "--lst", str(tmp_path / "test.lst"), "--output-dir",
                 str(tmp_path / "out"), "--images-dir", str(tmp_path / "images"), "--confidence-threshold", "0.93"]) == 2
    assert "BaselineImagesMissingError" in capsys.readouterr().err
