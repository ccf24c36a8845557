"""Reads the original ``cifar-100-python`` archive: ``meta``, ``train`` and ``test`` pickles.

The members are Python pickles, and ``pickle.load`` runs whatever callable a pickle names: a
crafted archive would run code while it is being staged. :class:`CifarUnpickler` resolves only
the globals the format needs: numpy's array reconstruction (``_reconstruct``, ``ndarray``,
``dtype``; under ``numpy.core`` in the official 2009 file written by numpy 1.x, under
``numpy._core`` in re-pickled copies such as the team's dev archive, checked with
``pickletools``), ``_codecs.encode`` for the latin-1 bytes Python 3 writes in protocol 2, and
``bytes()`` with no argument, which is how protocol 2 writes ``b""`` (an empty array's buffer).
Dicts, lists, strings and numbers need no global. Anything else is refused before it is called.

What loads is then checked field by field (:meth:`CifarArchive.split`), so a damaged or crafted
member is a :class:`CorruptArchiveError` naming the member and field, never a numpy or codec error.
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


def _empty_bytes(*args) -> bytes:
    """What protocol 2 writes for ``b""`` (``bytes()``); any argument (``bytes(10**12)`` allocates) is refused."""
    if args:
        raise pickle.UnpicklingError(f"bytes() called with {len(args)} argument(s); only b'' is pickled that way")
    return b""


_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct(),   # written by numpy 1.x (the official file)
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct(),  # written by numpy 2.x
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_bytes,
    ("__builtin__", "bytes"): _empty_bytes,                           # Python 3 writes builtins under their 2.x name
    ("builtins", "bytes"): _empty_bytes,
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


MAX_FILENAME_BYTES = 200      # the staged name adds a 6-character index; most file systems allow 255 bytes
_REMAKE = "re-download the archive or re-create it from the original"


def _field(record: dict, name: str, member: str):
    for key in (name, name.encode()):
        if key in record:
            return record[key]
    raise CorruptArchiveError(f"{member} has no '{name}' entry; not a cifar-100-python pickle")


def _sequence(value, member: str, name: str) -> list:
    """A list field's items; numpy 1-D arrays count (their items become Python values)."""
    if isinstance(value, np.ndarray) and value.ndim == 1:
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return list(value)
    described = f"a {value.ndim}-D array" if isinstance(value, np.ndarray) else f"a {type(value).__name__}"
    raise CorruptArchiveError(f"{member}: {name} is {described}; expected a list, one entry per image. {_REMAKE}")


def _texts(value, member: str, name: str, max_bytes: int | None = None) -> list[str]:
    """A list of names as text: str, or bytes in UTF-8 (what the official archive holds)."""
    texts = []
    for i, item in enumerate(_sequence(value, member, name)):
        if isinstance(item, bytes):
            try:
                item = item.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise CorruptArchiveError(f"{member}: {name}[{i}] = {item[:60]!r} is not UTF-8 (byte "
                                          f"0x{item[exc.start]:02x} at {exc.start}). {_REMAKE}") from None
        elif not isinstance(item, str):
            raise CorruptArchiveError(f"{member}: {name}[{i}] is a {type(item).__name__} ({item!r:.60}); "
                                      f"expected text. {_REMAKE}")
        if max_bytes is not None and len(item.encode("utf-8", "surrogatepass")) > max_bytes:
            raise CorruptArchiveError(f"{member}: {name}[{i}] = {item[:60]!r}… is {len(item.encode('utf-8', 'surrogatepass'))} "
                                      f"bytes long; a file name here is at most {max_bytes} bytes. {_REMAKE}")
        texts.append(item)
    return texts


def _labels(value, member: str, name: str, count: int) -> np.ndarray:
    """Label ids: whole numbers in [0, count), never truncated from a float or wrapped from a big int."""
    labels = _sequence(value, member, name)
    for i, label in enumerate(labels):
        if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < count:
            raise CorruptArchiveError(f"{member}: {name}[{i}] is {label!r:.60} ({type(label).__name__}); expected a "
                                      f"whole number in [0, {count}), an index into fine_label_names. {_REMAKE}")
    return np.array(labels, dtype=np.int64)


# The largest member each may be, decompressed: the official archive's own with a margin (train 155 MB:
# 50,000 images of 3,072 bytes plus labels and names; test 31 MB; meta 1.5 KB). A member declared larger is
# refused from its tar header, before a byte of it is inflated (a gzip bomb of a few MB can declare GBs).
MEMBER_CAPS = {"meta": 1 << 20, "train": 200 << 20, "test": 48 << 20}
OTHER_MEMBER_CAP = 1 << 20        # anything else in the archive (the official one holds a stray file.txt~)
MAX_MEMBERS = 64


class CifarArchive:
    """Random access to the three pickles of one archive, read once each, in one pass, every member bounded.

    Only ``cifar-100-python/{meta,train,test}`` are read (a ``train`` under another folder is not CIFAR's);
    each must appear once. Sizes are checked from the tar headers before anything is inflated
    (:data:`MEMBER_CAPS`, :data:`OTHER_MEMBER_CAP`), so a crafted archive costs at most the caps to refuse.
    """

    def __init__(self, path: str | Path, caps: dict[str, int] | None = None):
        self.path = Path(path)
        self._members: dict[str, dict] = {}
        self._where: dict[str, str] = {}
        caps = {**MEMBER_CAPS, **(caps or {})}
        try:
            with open(self.path, "rb") as raw, tarfile.open(fileobj=raw, mode="r|gz") as tar:
                for count, member in enumerate(tar, start=1):
                    self._take(tar, member, count, caps)
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise CorruptArchiveError(f"{self.path} is not a readable cifar-100-python .tar.gz ({exc}); "
                                      "re-download it or check the path") from exc
        missing = {"meta", "train", "test"} - set(self._members)
        if missing:
            raise CorruptArchiveError(f"{self.path} lacks {', '.join(sorted(missing))}: expected the "
                                      f"{ARCHIVE_ROOT}/{{meta,train,test}} layout")

    def _take(self, tar: tarfile.TarFile, member: tarfile.TarInfo, count: int, caps: dict[str, int]) -> None:
        where = f"{self.path.name}:{member.name}"
        if count > MAX_MEMBERS:
            raise CorruptArchiveError(f"{self.path} holds more than {MAX_MEMBERS} members; the cifar-100-python "
                                      "archive holds a handful. Re-download it or check the path")
        folder, _, name = member.name.strip("/").rpartition("/")
        ours = folder in (ARCHIVE_ROOT, f"./{ARCHIVE_ROOT}") and name in caps
        cap = caps[name] if ours else OTHER_MEMBER_CAP
        if member.size > cap:
            raise CorruptArchiveError(f"{where} declares {member.size:,} bytes; a {'cifar-100-python ' + name if ours else 'member'} "
                                      f"is at most {cap:,} bytes, so it was refused before being read. {_REMAKE}")
        if not ours or not member.isfile():
            return             # skipped: the stream reads past it (at most the cap)
        if name in self._members:
            raise CorruptArchiveError(f"{where} appears twice in the archive; which one is meant is ambiguous. "
                                      f"{_REMAKE}")
        self._where[name] = where
        self._members[name] = load_member(tar.extractfile(member), where)

    def fine_label_names(self) -> list[str]:
        """``meta``'s fine_label_names, checked to be text (``fine_label_ids`` checks a requested name is there once)."""
        where = self._where["meta"]
        return _texts(_field(self._members["meta"], "fine_label_names", where), where, "fine_label_names")

    def fine_label_ids(self, names: list[str]) -> dict[str, int]:
        """Maps class names to CIFAR fine label ids, read from ``meta``, never assumed."""
        label_names = self.fine_label_names()
        missing = [n for n in names if n not in label_names]
        if missing:
            raise MissingClassesError(f"classes {missing} are not in {self.path}'s fine_label_names "
                                      f"({len(label_names)} names); is this CIFAR-100?")
        repeated = [n for n in names if label_names.count(n) > 1]
        if repeated:
            raise CorruptArchiveError(f"{self._where['meta']}: fine_label_names holds {repeated} more than once, "
                                      f"so the label id is ambiguous. {_REMAKE}")
        return {name: label_names.index(name) for name in names}

    def split(self, name: str) -> CifarSplit:
        record, where = self._members[name], self._where[name]
        data = _field(record, "data", where)
        if not isinstance(data, np.ndarray):
            raise CorruptArchiveError(f"{where}: data is a {type(data).__name__}; expected a uint8 numpy array "
                                      f"(N, 3072) of 32×32 RGB rows. {_REMAKE}")
        labels = _labels(_field(record, "fine_labels", where), where, "fine_labels", len(self.fine_label_names()))
        filenames = _texts(_field(record, "filenames", where), where, "filenames", MAX_FILENAME_BYTES)
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != int(np.prod(IMAGE_SHAPE)):
            raise CorruptArchiveError(f"{where}: data is {data.dtype} {data.shape}; expected uint8 (N, 3072) "
                                      "32×32 RGB rows")
        if not (len(data) == len(labels) == len(filenames)):
            raise CorruptArchiveError(f"{where}: {len(data)} images, {len(labels)} labels, "
                                      f"{len(filenames)} filenames; the counts must match")
        images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return CifarSplit(images=images, fine_labels=labels, filenames=filenames)
