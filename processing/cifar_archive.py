"""Reads the original ``cifar-100-python`` archive: ``meta``, ``train`` and ``test`` pickles.

The members are Python pickles, and ``pickle.load`` runs whatever callable a pickle names: a
crafted archive would run code while it is being staged. :class:`CifarUnpickler` resolves only
the globals the format needs: numpy's array reconstruction (``_reconstruct``, ``ndarray``,
``dtype``; under ``numpy.core`` in the official 2009 file written by numpy 1.x, under
``numpy._core`` in re-pickled copies such as the team's dev archive, checked with
``pickletools``) and ``_codecs.encode`` for the latin-1 bytes Python 3 writes in protocol 2.
Dicts, lists, strings and numbers need no global. Anything else is refused before it is called.
"""
from __future__ import annotations

import pickle
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from processing.errors import ProcessingError

IMAGE_SHAPE = (32, 32, 3)
ARCHIVE_ROOT = "cifar-100-python"
_PICKLE_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
                  MemoryError, OverflowError)


class CorruptArchiveError(ProcessingError):
    """The archive is truncated, not a tar.gz, not in the cifar-100-python layout, or a member
    pickle names something other than plain data and numpy arrays."""


class MissingClassesError(ProcessingError):
    """A requested class name is not in the archive's label names."""


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct  # numpy ≥ 2
    except ImportError:                                       # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


def _latin1_bytes(text, encoding: str = "latin1") -> bytes:
    """What ``_codecs.encode`` does for protocol-2 bytes, and nothing else (no other codec)."""
    if not isinstance(text, str) or encoding.replace("-", "").lower() != "latin1":
        raise pickle.UnpicklingError(f"_codecs.encode({type(text).__name__}, {encoding!r}) is not a latin-1 bytes value")
    return text.encode("latin1")


_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct(),   # written by numpy 1.x (the official file)
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct(),  # written by numpy 2.x
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_bytes,
}


class CifarUnpickler(pickle.Unpickler):
    """Loads one CIFAR member; any global outside the format is a :class:`CorruptArchiveError`."""

    def __init__(self, file, member: str):
        super().__init__(file, encoding="bytes")
        self.member = member

    def find_class(self, module: str, name: str):
        allowed = _ALLOWED_GLOBALS.get((module, name))
        if allowed is None:
            raise CorruptArchiveError(
                f"{self.member} refers to {module}.{name}, which a cifar-100-python pickle never needs "
                "(only dicts, lists, strings, numbers and numpy arrays); refused without running it. "
                "Use the official archive or re-create this one from plain data")
        return allowed


def load_member(file, member: str) -> dict:
    """One member's record, read with :class:`CifarUnpickler`."""
    try:
        record = CifarUnpickler(file, member).load()
    except _PICKLE_ERRORS + (OSError, zlib.error, tarfile.TarError) as exc:
        raise CorruptArchiveError(f"{member} is not a readable pickle ({type(exc).__name__}: {exc}); "
                                  "re-download the archive or check the path") from exc
    if not isinstance(record, dict):
        raise CorruptArchiveError(f"{member} holds a {type(record).__name__}; a cifar-100-python member is a dict")
    return record


@dataclass(frozen=True)
class CifarSplit:
    images: np.ndarray        # (N, 32, 32, 3) uint8, HWC
    fine_labels: np.ndarray   # (N,) int64
    filenames: list[str]


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _field(record: dict, name: str, member: str):
    for key in (name, name.encode()):
        if key in record:
            return record[key]
    raise CorruptArchiveError(f"{member} has no '{name}' entry; not a cifar-100-python pickle")


class CifarArchive:
    """Random access to the three pickles of one archive, read once each."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._members: dict[str, dict] = {}
        try:
            with tarfile.open(self.path, "r:gz") as tar:
                for member in tar.getmembers():
                    name = member.name.rsplit("/", 1)[-1]
                    if member.isfile() and name in ("meta", "train", "test"):
                        self._members[name] = load_member(tar.extractfile(member), f"{self.path.name}:{member.name}")
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise CorruptArchiveError(f"{self.path} is not a readable cifar-100-python .tar.gz ({exc}); "
                                      "re-download it or check the path") from exc
        missing = {"meta", "train", "test"} - set(self._members)
        if missing:
            raise CorruptArchiveError(f"{self.path} lacks {', '.join(sorted(missing))}: expected the "
                                      f"{ARCHIVE_ROOT}/{{meta,train,test}} layout")

    def fine_label_ids(self, names: list[str]) -> dict[str, int]:
        """Maps class names to CIFAR fine label ids, read from ``meta``, never assumed."""
        label_names = [_text(n) for n in _field(self._members["meta"], "fine_label_names", "meta")]
        missing = [n for n in names if n not in label_names]
        if missing:
            raise MissingClassesError(f"classes {missing} are not in {self.path}'s fine_label_names "
                                      f"({len(label_names)} names); is this CIFAR-100?")
        return {name: label_names.index(name) for name in names}

    def split(self, name: str) -> CifarSplit:
        record = self._members[name]
        data = np.asarray(_field(record, "data", name))
        labels = np.asarray(_field(record, "fine_labels", name), dtype=np.int64)
        filenames = [_text(f) for f in _field(record, "filenames", name)]
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != int(np.prod(IMAGE_SHAPE)):
            raise CorruptArchiveError(f"{name}: data is {data.dtype} {data.shape}; expected uint8 (N, 3072) "
                                      "32×32 RGB rows")
        if not (len(data) == len(labels) == len(filenames)):
            raise CorruptArchiveError(f"{name}: {len(data)} images, {len(labels)} labels, "
                                      f"{len(filenames)} filenames; the counts must match")
        images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return CifarSplit(images=images, fine_labels=labels, filenames=filenames)
