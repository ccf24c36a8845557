"""The restricted unpickler: what the CIFAR format needs loads, anything else is refused unrun."""
import gzip
import io
import os
import pickle
import pickletools
import tarfile
import tracemalloc

import numpy as np
import pytest

from processing.cifar_archive import CifarArchive, CifarUnpickler, CorruptArchiveError, load_member
from processing.prepare_data import stage
from tests.builders import RunsOnLoad, make_cifar_archive


def _globals(payload: bytes) -> set[str]:
    return {arg.replace(" ", ".") for op, arg, _ in pickletools.genops(payload) if op.name == "GLOBAL"}


def _record() -> dict:
    return {b"data": np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072), b"fine_labels": [8, 48],
            b"filenames": [b"a.png", b"b.png"], b"batch_label": b"training batch 1 of 1"}


@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_numpy_arrays_and_builtin_containers_load(protocol):
    payload = pickle.dumps(_record(), protocol=protocol)
    record = load_member(io.BytesIO(payload), "train")
    assert np.array_equal(record[b"data"], _record()[b"data"]) and record[b"fine_labels"] == [8, 48]


def test_the_official_files_numpy_1_names_load():
    """The 2009 archive was written by numpy 1.x: its pickles name numpy.core.multiarray."""
    payload = pickle.dumps(_record(), protocol=2)
    official = payload.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert "numpy.core.multiarray._reconstruct" in _globals(official)
    assert load_member(io.BytesIO(official), "train")[b"fine_labels"] == [8, 48]


def test_python_2_strings_load_as_bytes():
    # protocol 2 as Python 2 wrote it: SHORT_BINSTRING for str, read back as bytes
    payload = b"\x80\x02}q\x00U\x04dataq\x01U\x03abcq\x02s."
    assert load_member(io.BytesIO(payload), "meta") == {b"data": b"abc"}


@pytest.mark.parametrize("plant", [RunsOnLoad(os.system, "true"), RunsOnLoad(eval, "1"),
                                   RunsOnLoad(getattr, np.ndarray, "tofile"), RunsOnLoad(np.load, "x.npy")])
def test_any_other_global_is_refused_before_it_runs(plant):
    payload = pickle.dumps({**_record(), b"planted": plant}, protocol=2)
    with pytest.raises(CorruptArchiveError, match=r"^train refers to .*refused without running it"):
        load_member(io.BytesIO(payload), "train")


def test_codecs_encode_is_latin1_only():
    allowed = pickle.dumps({b"k": b"\xff\x00"}, protocol=2)            # Python 3 writes bytes as _codecs.encode
    assert "_codecs.encode" in _globals(allowed)
    assert load_member(io.BytesIO(allowed), "meta") == {b"k": b"\xff\x00"}
    other_codec = allowed.replace(b"latin1", b"utf_16")
    with pytest.raises(CorruptArchiveError, match="meta is not a readable pickle"):
        load_member(io.BytesIO(other_codec), "meta")


def test_a_member_that_is_not_a_dict_is_refused():
    with pytest.raises(CorruptArchiveError, match="holds a list"):
        load_member(io.BytesIO(pickle.dumps([1, 2], protocol=2)), "meta")


def test_the_unpickler_names_the_member():
    with pytest.raises(CorruptArchiveError, match="^archive.tar.gz:cifar-100-python/test refers to posix.system"):
        CifarUnpickler(io.BytesIO(pickle.dumps(RunsOnLoad(os.system, "true"), protocol=2)),
                       "archive.tar.gz:cifar-100-python/test").load()


def _damaged(tmp_path, member, field, value):
    return make_cifar_archive(tmp_path / "a.tar.gz", per_class_train=6, per_class_test=3, other_classes=1,
                              replaced={member: {field: value}})


@pytest.mark.parametrize("member, field, value, expected", [
    ("train", "fine_labels", "8" * 115, r"fine_labels is a str; expected a list"),
    ("train", "fine_labels", None, r"fine_labels is a NoneType; expected a list"),
    ("train", "fine_labels", 8, r"fine_labels is a int; expected a list"),
    ("train", "fine_labels", np.zeros((2, 2), np.int64), r"fine_labels is a 2-D array"),
    ("train", "fine_labels", lambda labels: [[label] for label in labels], r"fine_labels\[0\] is \[8\] \(list\)"),
    ("train", "fine_labels", lambda labels: [8.5] + labels[1:], r"fine_labels\[0\] is 8.5 \(float\)"),
    ("train", "fine_labels", lambda labels: np.array(labels, dtype=np.float64), r"fine_labels\[0\] is 8.0 \(float\)"),
    ("test", "fine_labels", lambda labels: labels[:-1] + [10**30], r"fine_labels\[8\] is 1000000000000000000000000000000"),
    ("test", "fine_labels", lambda labels: labels[:-1] + [2**64 - 1], r"fine_labels\[8\] is 18446744073709551615"),
    ("test", "fine_labels", lambda labels: [-1] + labels[1:], r"fine_labels\[0\] is -1 \(int\); expected a whole number in \[0, 100\)"),
    ("test", "fine_labels", lambda labels: [100] + labels[1:], r"fine_labels\[0\] is 100"),
    ("test", "fine_labels", lambda labels: [True] + labels[1:], r"fine_labels\[0\] is True \(bool\)"),
    ("meta", "fine_label_names", b"bicycle motorcycle", r"fine_label_names is a bytes; expected a list"),
    ("meta", "fine_label_names", {b"bicycle": 8}, r"fine_label_names is a dict; expected a list"),
    ("meta", "fine_label_names", lambda names: names[:-1] + [b"\xffcaf\xe9"], r"fine_label_names\[99\] = b'\\xffcaf\\xe9' is not UTF-8"),
    ("meta", "fine_label_names", lambda names: names[:-1] + [None], r"fine_label_names\[99\] is a NoneType"),
    ("meta", "fine_label_names", lambda names: names[:-1] + [b"bicycle"], r"fine_label_names holds \['bicycle'\] more than once"),
    ("train", "filenames", None, r"filenames is a NoneType; expected a list"),
    ("train", "filenames", b"img_00000.png", r"filenames is a bytes; expected a list"),
    ("train", "filenames", lambda names: [b"\xff.png"] + names[1:], r"filenames\[0\] = b'\\xff.png' is not UTF-8"),
    ("train", "filenames", lambda names: [3] + names[1:], r"filenames\[0\] is a int"),
    ("train", "filenames", lambda names: [b"x" * 300 + b".png"] + names[1:], r"filenames\[0\] = .* is 304 bytes long; .* at most 200"),
    ("train", "filenames", lambda names: ["é".encode() * 101] + names[1:], r"filenames\[0\] = .* is 202 bytes long"),
    ("test", "data", "pixels", r"data is a str; expected a uint8 numpy array"),
    ("test", "data", lambda data: data.tolist(), r"data is a list; expected a uint8 numpy array"),
    ("test", "data", lambda data: data.astype(np.float32), r"data is float32 \(9, 3072\)"),
])
def test_a_malformed_field_names_the_member_and_field(tmp_path, member, field, value, expected):
    archive = _damaged(tmp_path, member, field, value)
    out = tmp_path / "out"
    with pytest.raises(CorruptArchiveError, match=f"^a.tar.gz:cifar-100-python/{member}: {expected}"):
        stage(archive, out)
    assert not out.exists() or not any(out.rglob("*.png"))


def test_empty_bytes_and_empty_arrays_are_plain_data(tmp_path):
    """Protocol 2 writes b"" (also an empty array's buffer) as a call of builtins.bytes()."""
    payload = pickle.dumps({**_record(), b"batch_label": b"", b"empty": np.zeros((0, 3072), np.uint8)}, protocol=2)
    assert "__builtin__.bytes" in _globals(payload)
    record = load_member(io.BytesIO(payload), "train")
    assert record[b"batch_label"] == b"" and record[b"empty"].shape == (0, 3072)
    archive = make_cifar_archive(tmp_path / "a.tar.gz", planted={"meta": b"", "train": np.zeros(0, np.int64)})
    assert stage(archive, tmp_path / "out")["totals"]["test"] == 20


def test_bytes_with_an_argument_is_refused():
    """``bytes(n)`` would allocate n bytes; only the empty call protocol 2 writes is allowed."""
    payload = b"\x80\x02c__builtin__\nbytes\nJ\x00\xca\x9a;\x85R."          # bytes(10**9)
    with pytest.raises(CorruptArchiveError, match="meta is not a readable pickle .*only b'' is pickled that way"):
        load_member(io.BytesIO(payload), "meta")


def _tar_header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    return info.tobuf(format=tarfile.GNU_FORMAT)


def _gzip_bomb(path, name: str, inflated: int, chunk: int = 1 << 20) -> int:
    """A tar.gz whose member ``name`` declares and holds ``inflated`` zero bytes, as gzip members of one
    compressed chunk repeated (3 GiB in ~3 MB), so it is cheap to build; returns its size on disk."""
    zeros = gzip.compress(bytes(chunk), compresslevel=9)
    with open(path, "wb") as out:
        out.write(gzip.compress(_tar_header(name, inflated)))
        for _ in range(inflated // chunk):
            out.write(zeros)
    return path.stat().st_size


@pytest.fixture
def bytes_read(monkeypatch):
    """Counts the bytes CifarArchive reads from the archive file (compressed: what the disk gives it)."""
    from processing import cifar_archive

    counted = {"bytes": 0}

    class Counting(io.FileIO):
        def readinto(self, buffer):
            n = super().readinto(buffer)
            counted["bytes"] += n or 0
            return n

    monkeypatch.setattr(cifar_archive, "open", lambda path, mode="rb": io.BufferedReader(Counting(path, "r")),
                        raising=False)
    return counted


def test_a_gzip_bomb_is_refused_from_its_header_before_it_is_inflated(tmp_path, bytes_read):
    """3 GiB of `train` in a 3 MB archive: refused after reading a few KB (it used to be read in full: 6 GB)."""
    bomb = tmp_path / "bomb.tar.gz"
    on_disk = _gzip_bomb(bomb, "cifar-100-python/train", 3 << 30)
    tracemalloc.start()
    with pytest.raises(CorruptArchiveError, match=r"cifar-100-python/train declares 3,221,225,472 bytes.*at most"):
        CifarArchive(bomb)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert bytes_read["bytes"] < 256 * 1024 < on_disk
    assert peak < 16 << 20


def test_a_member_past_its_cap_costs_no_more_than_the_cap(tmp_path, bytes_read):
    """A member within its declared size still cannot exceed its cap: the caps bound every byte inflated."""
    archive = make_cifar_archive(tmp_path / "a.tar.gz")
    with pytest.raises(CorruptArchiveError, match="train declares .* at most 1,000 bytes"):
        CifarArchive(archive, caps={"train": 1000})
    bomb = tmp_path / "other.tar.gz"
    _gzip_bomb(bomb, "cifar-100-python/file.txt~", 64 << 20)
    with pytest.raises(CorruptArchiveError, match="file.txt~ declares 67,108,864 bytes; a member is at most"):
        CifarArchive(bomb)


def test_only_the_cifar_folders_members_are_read_and_each_once(tmp_path):
    archive = make_cifar_archive(tmp_path / "a.tar.gz")
    foreign = pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"fine_labels": [8], b"filenames": [b"x.png"]},
                           protocol=2)
    appended = tmp_path / "appended.tar.gz"
    with tarfile.open(archive) as source, tarfile.open(appended, "w:gz") as out:
        for member in source.getmembers():
            out.addfile(member, source.extractfile(member))
        info = tarfile.TarInfo("other/train")
        info.size = len(foreign)
        out.addfile(info, io.BytesIO(foreign))
    loaded = CifarArchive(appended).split("train")
    assert len(loaded.filenames) == len(CifarArchive(archive).split("train").filenames)
    twice = tmp_path / "twice.tar.gz"
    with tarfile.open(archive) as source, tarfile.open(twice, "w:gz") as out:
        for member in source.getmembers() + [source.getmember("cifar-100-python/train")]:
            out.addfile(member, source.extractfile(member))
    with pytest.raises(CorruptArchiveError, match="cifar-100-python/train appears twice"):
        CifarArchive(twice)


def test_the_caps_hold_the_official_archives_members():
    """From the official archive's own sizes: train 155 MB, test 31 MB (50,000 and 10,000 images of 3,072 bytes)."""
    from processing.cifar_archive import MEMBER_CAPS

    assert MEMBER_CAPS["train"] > 50_000 * 3072 * 1.25 and MEMBER_CAPS["test"] > 10_000 * 3072 * 1.25
