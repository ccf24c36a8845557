"""Reads the original ``cifar-100-python`` archive: ``meta``, ``train`` and ``test`` pickles."""
from __future__ import annotations

import pickle
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_SHAPE = (32, 32, 3)
ARCHIVE_ROOT = "cifar-100-python"


class CorruptArchiveError(RuntimeError):
    """The archive is truncated, not a tar.gz, or not in the cifar-100-python layout."""


class MissingClassesError(RuntimeError):
    """A requested class name is not in the archive's label names."""


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
                        self._members[name] = pickle.load(tar.extractfile(member), encoding="bytes")
        except (tarfile.TarError, EOFError, OSError, zlib.error, pickle.UnpicklingError, ValueError) as exc:
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
