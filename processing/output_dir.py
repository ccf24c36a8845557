"""Writing a staged dataset INTO an output directory that may be a mount point.

In a Processing container ``/opt/ml/processing/output`` is a mount: it cannot be removed or
renamed, and its parent may be read-only. So everything is written into a hidden scratch
folder inside the output directory (same file system), and only when it is complete are its
entries renamed into place, replacing those of an earlier output. The report (the marker that
says "scones-prepare-data wrote this") leaves first and arrives last; a crash in between leaves
hidden ``.scones-*`` folders that the next run recognises and clears.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scones_common.directories import UnsafeDirectoryError, not_ours, refuse_special, written_by

COMMAND = "scones-prepare-data"
REPORT = "staging_report.json"
OWNED = ("train", "validation", "test", "train.lst", "validation.lst", "test.lst", REPORT)
_SCRATCH, _PREVIOUS = ".scones-staging-", ".scones-previous-"


def _leftovers(output: Path) -> list[Path]:
    return [p for p in output.iterdir() if p.name.startswith((_SCRATCH, _PREVIOUS))]


def _interrupted_move(output: Path) -> bool:
    """A crash between the report leaving and arriving: a hidden previous-output folder holds our report.
    A hidden folder alone proves nothing (anyone can name a folder ``.scones-previous-x``)."""
    return any(p.name.startswith(_PREVIOUS) and p.is_dir() and not p.is_symlink() and written_by(p, REPORT, COMMAND)
               for p in _leftovers(output))


def check_output_dir(path: str | Path) -> Path:
    """The resolved output directory if staging may write there; else :class:`UnsafeDirectoryError`.

    Accepted: a new or empty directory, or an earlier output of this command holding nothing else.
    """
    output = refuse_special(path, "--output-dir", "staged/")
    if not output.exists():
        return output
    leftovers = {p.name for p in _leftovers(output)}
    visible = [p.name for p in output.iterdir() if p.name not in leftovers]
    if not visible:
        return output
    if not (written_by(output, REPORT, COMMAND) or _interrupted_move(output)):
        raise not_ours("--output-dir", path, COMMAND, visible)
    foreign = sorted(set(visible) - set(OWNED))
    if foreign:
        raise UnsafeDirectoryError(f"--output-dir {path} is an earlier {COMMAND} output but also holds "
                                   f"{', '.join(foreign)}, which it did not write; nothing was changed. "
                                   "Move them away or choose another directory")
    return output


@contextmanager
def staging_area(output: Path) -> Iterator[Path]:
    """A hidden scratch folder inside ``output``; on success its entries replace the earlier output's."""
    output.mkdir(parents=True, exist_ok=True)
    for leftover in _leftovers(output):
        shutil.rmtree(leftover, ignore_errors=True)
    scratch = Path(tempfile.mkdtemp(prefix=_SCRATCH, dir=output))
    try:
        yield scratch
        _move_in(scratch, output)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _move_in(scratch: Path, output: Path) -> None:
    previous = Path(tempfile.mkdtemp(prefix=_PREVIOUS, dir=output))
    for name in (REPORT, *[n for n in OWNED if n != REPORT]):
        if (output / name).exists() or (output / name).is_symlink():
            os.replace(output / name, previous / name)
    arriving = sorted(p.name for p in scratch.iterdir())
    for name in [n for n in arriving if n != REPORT] + [n for n in arriving if n == REPORT]:
        os.replace(scratch / name, output / name)
    shutil.rmtree(previous)
