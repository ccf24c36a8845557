"""Directory arguments that a command fills or clears: refuse the ones that hold other things.

``--output-dir .`` used to empty the current folder. A command that writes or deletes inside a
directory given on the command line accepts only a new or empty directory, or one it wrote
itself earlier (it leaves a marker file saying so), and never the current folder, a parent of
it, the file-system root or the home folder.
"""
from __future__ import annotations

import json
from pathlib import Path

from scones_common.atomic import write_atomic
from scones_common.errors import SconesError


class UnsafeDirectoryError(SconesError):
    """A directory argument names a place the command must not fill or clear."""


def refuse_special(path: str | Path, flag: str, example: str) -> Path:
    """The resolved ``path``, unless it is the root, the current folder, the home folder or a parent of either."""
    resolved = Path(path).expanduser().resolve()
    cwd, home = Path.cwd().resolve(), Path.home().resolve()
    reasons = [(resolved == Path(resolved.anchor), "the file-system root"),
               (resolved == cwd, "the current directory"),
               (resolved in cwd.parents, "a parent of the current directory"),
               (resolved == home, "your home folder"),
               (resolved in home.parents, "a parent of your home folder")]
    what = next((reason for matched, reason in reasons if matched), None)
    if what:
        raise UnsafeDirectoryError(f"{flag} {path} is {what} ({resolved}); the command would write into it or clear "
                                   f"it. Nothing was changed: pass a directory of its own, e.g. {flag} {example}")
    if resolved.exists() and not resolved.is_dir():
        raise UnsafeDirectoryError(f"{flag} {path} is a file, not a directory; nothing was changed")
    return resolved


def read_marker(directory: Path, marker: str) -> dict | None:
    """The marker's content if ``directory/marker`` is a JSON object, else None."""
    try:
        content = json.loads((directory / marker).read_text())
    except (OSError, ValueError):
        return None
    return content if isinstance(content, dict) else None


def written_by(directory: Path, marker: str, command: str) -> bool:
    return (read_marker(directory, marker) or {}).get("written_by") == command


def write_marker(directory: Path, marker: str, command: str, **fields) -> None:
    write_atomic(directory / marker, json.dumps({"written_by": command, **fields}, indent=2))


def not_ours(flag: str, path: Path, command: str, entries: list[str]) -> UnsafeDirectoryError:
    shown = ", ".join(sorted(entries)[:5]) + (", …" if len(entries) > 5 else "")
    return UnsafeDirectoryError(f"{flag} {path} is not empty ({shown}) and is not an earlier output of {command}; "
                                "nothing was changed. Pass a new or empty directory, or move those files away")


def check_output_dir(path: str | Path, flag: str, command: str, marker: str, example: str) -> Path:
    """The resolved output directory if ``command`` may write there, else :class:`UnsafeDirectoryError`.

    The rule every command that writes into a directory argument follows: a new or empty directory, or an
    earlier output of the same command (its JSON ``marker`` file says ``written_by: command``); never the
    file-system root, the current folder, the home folder or a parent of either, and never a folder holding
    someone else's files (their ``evaluation.json`` or ``index.html`` would be overwritten). Checked before
    any work, so a refused directory costs nothing and nothing in it changes.
    """
    directory = refuse_special(path, flag, example)
    if not directory.exists() or written_by(directory, marker, command):
        return directory
    entries = [p.name for p in directory.iterdir()]
    if entries:
        raise not_ours(flag, Path(path), command, entries)
    return directory
