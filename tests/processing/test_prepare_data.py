import json
import tarfile

import numpy as np
import pytest
from PIL import Image

from processing.cifar_archive import CorruptArchiveError, MissingClassesError
from processing.prepare_data import main, stage
from tests.builders import FINE_NAMES, make_cifar_archive


def _read_lst(path):
    return [line.split("\t") for line in path.read_text().splitlines()]


def test_stage_writes_algorithm_layout(cifar_archive, tmp_path):
    out = tmp_path / "staged"
    report = stage(cifar_archive, out, validation_fraction=0.25, seed=1)
    assert report["totals"] == {"train": 60, "validation": 20, "test": 20}
    assert report["cifar_fine_label_ids"] == {"bicycle": 8, "motorcycle": 48}
    assert report["counts"]["validation"] == {"bicycle": 10, "motorcycle": 10}
    for split, n in report["totals"].items():
        rows = _read_lst(out / f"{split}.lst")
        assert len(rows) == n
        assert [int(r[0]) for r in rows] == list(range(n))
        for _index, class_id, relative in rows[:5]:
            assert relative.startswith(("bicycle/", "motorcycle/"))
            assert int(class_id) == (0 if relative.startswith("bicycle/") else 1)
            image = Image.open(out / split / relative)
            assert image.size == (32, 32) and image.mode == "RGB"
    assert json.loads((out / "staging_report.json").read_text())["num_training_samples"] == 60


def test_pixels_survive_staging_exactly(tmp_path):
    archive = make_cifar_archive(tmp_path / "a.tar.gz", per_class_train=4, per_class_test=2, other_classes=0)
    out = tmp_path / "out"
    stage(archive, out, validation_fraction=0.25, seed=0)
    with tarfile.open(archive) as tar:
        import pickle
        test = pickle.load(tar.extractfile("cifar-100-python/test"), encoding="bytes")
    first = test[b"data"][0].reshape(3, 32, 32).transpose(1, 2, 0)
    staged = [np.array(Image.open(p)) for p in (out / "test").rglob("*.png")]
    assert any(np.array_equal(first, s) for s in staged)


def test_str_pickle_keys_are_accepted(tmp_path):
    archive = make_cifar_archive(tmp_path / "a.tar.gz", str_keys=True)
    assert stage(archive, tmp_path / "out")["totals"]["test"] == 20


def test_labels_found_by_name_not_position(tmp_path):
    names = list(FINE_NAMES)
    names[8], names[48] = "motorcycle", "bicycle"
    archive = make_cifar_archive(tmp_path / "a.tar.gz", fine_names=names)
    report = stage(archive, tmp_path / "out")
    assert report["cifar_fine_label_ids"] == {"bicycle": 48, "motorcycle": 8}


@pytest.mark.parametrize("damage", ["truncated", "missing_member", "no_classes", "not_gzip"])
def test_bad_archives_fail_and_write_nothing(tmp_path, damage):
    archive = tmp_path / "a.tar.gz"
    if damage == "truncated":
        make_cifar_archive(archive)
        archive.write_bytes(archive.read_bytes()[:4000])
        expected = CorruptArchiveError
    elif damage == "missing_member":
        make_cifar_archive(archive, omit="test")
        expected = CorruptArchiveError
    elif damage == "no_classes":
        make_cifar_archive(archive, fine_names=[f"c{i}" for i in range(100)])
        expected = MissingClassesError
    else:
        archive.write_bytes(b"this is not an archive")
        expected = CorruptArchiveError
    out = tmp_path / "out"
    earlier = stage(make_cifar_archive(tmp_path / "good.tar.gz"), out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(expected):
        stage(archive, out)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert json.loads((out / "staging_report.json").read_text())["source_sha256"] == earlier["source_sha256"]


def test_cli_reports_clear_error(tmp_path, capsys):
    assert main(["--data-source", str(tmp_path / "missing.tar.gz"), "--output-dir", str(tmp_path / "o")]) == 2
    assert "DataSourceError" in capsys.readouterr().err


def test_cli_stages_file_url(cifar_archive, tmp_path, capsys):
    assert main(["--data-source", cifar_archive.as_uri(), "--output-dir", str(tmp_path / "o")]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["train"] == 72


@pytest.mark.shared_data
def test_real_dev_archive_stages(shared_archive, tmp_path):
    report = stage(shared_archive, tmp_path / "out")
    assert report["totals"] == {"train": 720, "validation": 80, "test": 200}
    assert report["cifar_fine_label_ids"] == {"bicycle": 8, "motorcycle": 48}
    assert report["duplicates_dropped"]["test"] == 0


@pytest.mark.parametrize("seed, expected", [("-1", "outside [0, 1000000000]"), ("10000000000", "outside"),
                                            ("1.5", "'1.5' is not a whole number")])
def test_cli_refuses_a_seed_the_splitter_cannot_use(cifar_archive, tmp_path, capsys, seed, expected):
    with pytest.raises(SystemExit) as info:
        main(["--data-source", str(cifar_archive), "--output-dir", str(tmp_path / "o"), "--seed", seed])
    assert info.value.code == 2 and expected in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_hidden_leftover_folder_does_not_make_a_users_train_folder_ours(cifar_archive, tmp_path):
    """A `.scones-previous-*` entry beside a user's own train/ used to pass as an interrupted staging: train/ went."""
    from scones_common.directories import UnsafeDirectoryError

    out = tmp_path / "mine"
    (out / "train").mkdir(parents=True)
    (out / "train" / "holiday.png").write_bytes(b"mine")
    (out / ".scones-previous-x").mkdir()
    with pytest.raises(UnsafeDirectoryError, match="not an earlier output"):
        stage(cifar_archive, out)
    assert (out / "train" / "holiday.png").read_bytes() == b"mine"


def test_a_staging_interrupted_mid_move_is_still_recognised(cifar_archive, tmp_path):
    """The report leaves first and arrives last: a crash in between leaves it in the hidden previous folder."""
    out = tmp_path / "staged"
    stage(cifar_archive, out)
    previous = out / ".scones-previous-crash"
    previous.mkdir()
    (out / "staging_report.json").rename(previous / "staging_report.json")
    assert stage(cifar_archive, out)["totals"]["test"] > 0
    assert not previous.exists()
