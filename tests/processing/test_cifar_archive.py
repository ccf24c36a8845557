"""The restricted unpickler: what the CIFAR format needs loads, anything else is refused unrun."""
import io
import os
import pickle
import pickletools

import numpy as np
import pytest

from processing.cifar_archive import CifarUnpickler, CorruptArchiveError, load_member
from tests.builders import RunsOnLoad


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
