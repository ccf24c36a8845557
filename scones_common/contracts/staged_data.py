"""What PrepareData stages and everything downstream reads: the splits, their ``.lst`` files and
the folder layout of their images.

::

    <split>/<class name>/<index>_<source name>.png      one folder per class
    <split>.lst                                         index<TAB>class id<TAB>path under <split>/
    staging_report.json

The ``.lst`` format is the built-in image-classification algorithm's: tab-separated image
index, class id (the algorithm also accepts it written as a float, ``1.000000``) and the image's
path relative to the channel folder.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from scones_common.contracts.classes import CLASS_NAMES
from scones_common.errors import SconesError

SPLITS = ("train", "validation", "test")
STAGING_REPORT = "staging_report.json"


class LstFormatError(SconesError, ValueError):
    """A ``.lst`` line is not ``index<TAB>class id<TAB>relative path``."""


@dataclass(frozen=True)
class LstEntry:
    index: int
    class_id: int
    path: str        # relative to the split's image folder


def lst_name(split: str) -> str:
    return f"{split}.lst"


def image_path(class_id: int, index: int, source_name: str) -> str:
    """Where an image goes under its split folder: the class's folder names its label."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in source_name)
    return f"{CLASS_NAMES[class_id]}/{index:05d}_{safe}"


def label_of_path(path: str) -> str | None:
    """The class an image path belongs to: the nearest enclosing folder named after a class."""
    return next((part for part in reversed(PurePosixPath(path).parts[:-1]) if part in CLASS_NAMES), None)


def format_lst(entries: Iterable[LstEntry]) -> str:
    return "".join(f"{entry.index}\t{entry.class_id}\t{entry.path}\n" for entry in entries)


def _entry(line: str, where: str) -> LstEntry:
    fields = line.split("\t")
    if len(fields) != 3:
        raise LstFormatError(f"{where}: expected index<TAB>class id<TAB>relative path, got {len(fields)} "
                             f"tab-separated field(s) in {line[:80]!r}")
    index, label, path = fields
    try:
        index_value, label_value = int(index), float(label)
    except ValueError:
        raise LstFormatError(f"{where}: index {index[:20]!r} and class id {label[:20]!r} must be numbers") from None
    if not label_value.is_integer() or label_value < 0:
        raise LstFormatError(f"{where}: class id {label!r} is not a whole number ≥ 0")
    relative = PurePosixPath(path)
    if not path or relative.is_absolute() or ".." in relative.parts:
        raise LstFormatError(f"{where}: image path {path[:80]!r} must be relative to the channel folder")
    return LstEntry(index_value, int(label_value), path)


def parse_lst(text: str, source: str) -> list[LstEntry]:
    """The entries of a ``.lst`` file's text; a bad line is named by ``source:line``. Blank lines are skipped."""
    return [_entry(line, f"{source}:{number}") for number, line in enumerate(text.splitlines(), 1) if line.strip()]


def read_lst(path: Path) -> list[LstEntry]:
    return parse_lst(path.read_text(), str(path))
