"""The run directory's ``state/`` folder: one file per resource and per S3 object, each written atomically.

Layout (``LAYOUT_VERSION`` 2)::

    state/layout.json                          {"version": 2}: the folder is in this layout
    state/resources/<kind>/<name>.json         one resource (a model package, an execution, a rule…)
    state/buckets/<bucket>/<key>               one S3 object's bytes
    state/.tmp/                                temporary files, renamed into place (never listed)

``<name>``, ``<bucket>`` and ``<key>`` are file names made from the resource name, bucket name or
object key by :func:`encode_name`: percent-encoding of everything but letters, digits and ``-_.~``
(so ``/`` is ``%2F`` and a key is one flat file name, whatever it holds: a folder object ``p/f/``
next to ``p/f/a.txt``, a key that is both an object and a prefix, ``..``, a leading ``/``), with a
leading dot encoded too (no ``.``, ``..`` or hidden names). A name whose encoding is longer than
:data:`MAX_ENCODED` is stored as ``%%<sha256>`` with its name in ``%%<sha256>.name`` (``%%`` never
starts an encoding). :func:`decode_name` reverses it and refuses anything that is not exactly what
:func:`encode_name` writes, so a file put there by hand is named, never guessed at.

Nothing is written outside ``state/``: every folder on the way is checked to be a real directory
(not a symlink) before anything is written into it, and renames replace a symlink rather than
follow it. Writes are not fsync'ed (a power cut is out of scope; a killed process is not: every
file is whole, old or new).
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, unquote

from local_runtime.errors import LocalRuntimeError
from scones_common.atomic import write_atomic

LAYOUT_VERSION = 2
LAYOUT_FILE = "layout.json"
RESOURCES, BUCKETS, SCRATCH = "resources", "buckets", ".tmp"
MAX_ENCODED = 200            # file names are at most 255 bytes; a temporary name adds a few
_HASHED = "%%"
_NAME_SUFFIX = ".name"
_SAFE = "-_.~"


class StateCorruptError(LocalRuntimeError):
    """A saved state file cannot be read (cut short, edited by hand, or from an incompatible version)."""


class UnsafeStatePathError(StateCorruptError):
    """A folder of the saved state is a symlink or not a directory: writing through it could leave the run directory."""


def _quote(text: str) -> str:
    encoded = quote(text, safe=_SAFE, errors="surrogatepass")
    return "%2E" + encoded[1:] if encoded.startswith(".") else encoded


def encode_name(name: str) -> str:
    """The file name that stores ``name`` (an S3 key, a bucket or a resource name): reversible, flat, safe."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a stored name is non-empty text, not {name!r}")
    encoded = _quote(name)
    if len(encoded) <= MAX_ENCODED:
        return encoded
    return _HASHED + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()


def decode_name(file_name: str) -> str | None:
    """The name :func:`encode_name` stored as ``file_name``; None for a hashed name (read its ``.name`` file)."""
    if file_name.startswith(_HASHED):
        return None
    try:
        name = unquote(file_name, errors="surrogatepass")
    except UnicodeDecodeError:
        name = ""
    if not name or _quote(name) != file_name or len(file_name) > MAX_ENCODED:
        raise StateCorruptError(f"{file_name!r} is in the saved state, but it is not a name the local runtime writes "
                                "(a file put there by hand?); move it away or rerun with --fresh")
    return name


def digest(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def dump_document(document: dict) -> bytes:
    return json.dumps(document, indent=1, sort_keys=True, default=str).encode()


def read_document(path: Path) -> dict:
    """A saved JSON object, or :class:`StateCorruptError` saying which file and what to do."""
    try:
        content = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise StateCorruptError(f"{path} is not valid JSON ({exc}); it was probably cut short by a crash. "
                                "Move it away to start without the saved state, or rerun with --fresh") from None
    if not isinstance(content, dict):
        raise StateCorruptError(f"{path} holds a {type(content).__name__}, not a saved state object; "
                                "move it away or rerun with --fresh")
    return content


class StateStore:
    """The files of one ``state/`` folder. Thread-safe; callers serialise whole syncs themselves."""

    def __init__(self, state_dir: Path):
        self.root = Path(state_dir)
        self._checked: set[Path] = set()
        self._lock = threading.Lock()

    # -- folders -------------------------------------------------------------------------------------
    def _real_dir(self, path: Path, create: bool = True) -> Path:
        """``path`` as a real directory inside the state folder (created if missing), never through a symlink."""
        if path in self._checked:
            return path
        parent = path.parent
        if path != self.root:
            self._real_dir(parent, create)
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            if not create:
                return path
            if path == self.root:
                path.parent.mkdir(parents=True, exist_ok=True)     # the run directory (checked by its command)
            try:
                os.mkdir(path)
            except FileExistsError:
                pass
            mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode) or not stat.S_ISDIR(mode):
            raise UnsafeStatePathError(f"{path} is {'a symlink' if stat.S_ISLNK(mode) else 'not a directory'}; the "
                                       "saved state is written only into real folders of the run directory. Move it "
                                       "away or rerun with --fresh")
        with self._lock:
            self._checked.add(path)
        return path

    @property
    def scratch(self) -> Path:
        return self._real_dir(self.root / SCRATCH)

    def _write(self, path: Path, data: bytes) -> None:
        self._real_dir(path.parent)
        write_atomic(path, data, durable=False, scratch_dir=self.scratch)

    @staticmethod
    def _unlink(path: Path) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    def _files(self, folder: Path) -> Iterator[Path]:
        """Regular files of ``folder`` (no symlinks followed), sorted; nothing when it does not exist."""
        if not os.path.lexists(folder):
            return
        self._real_dir(folder, create=False)
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if entry.is_file(follow_symlinks=False):
                yield Path(entry.path)

    # -- layout --------------------------------------------------------------------------------------
    def layout_version(self) -> int | None:
        path = self.root / LAYOUT_FILE
        if not path.exists():
            return None
        version = read_document(path).get("version")
        if version != LAYOUT_VERSION:
            raise StateCorruptError(f"{path} says layout version {version!r}; this version of scones-local reads "
                                    f"{LAYOUT_VERSION}. Move the state folder away or rerun with --fresh")
        return version

    def mark_layout(self) -> None:
        self._real_dir(self.root)
        self._write(self.root / LAYOUT_FILE, dump_document({"version": LAYOUT_VERSION, "written_by": "scones-local"}))

    # -- resources -----------------------------------------------------------------------------------
    def resource_path(self, kind: str, name: str) -> Path:
        return self.root / RESOURCES / encode_name(kind) / (encode_name(name) + ".json")

    def put(self, kind: str, name: str, data: bytes) -> None:
        """Stores one resource's document (``dump_document`` bytes) under ``kind``/``name``."""
        self._write(self.resource_path(kind, name), data)

    def delete(self, kind: str, name: str) -> None:
        self._unlink(self.resource_path(kind, name))

    def remove(self, kind: str, file_name: str) -> None:
        """Removes a stored document by its file name (as :meth:`documents` lists it)."""
        self._unlink(self.root / RESOURCES / encode_name(kind) / Path(file_name).name)

    def documents(self, kind: str) -> Iterator[tuple[Path, bytes]]:
        """Each stored document of ``kind`` as (path, bytes)."""
        for path in self._files(self.root / RESOURCES / encode_name(kind)):
            if path.suffix == ".json":
                yield path, path.read_bytes()

    def resource_kinds(self) -> list[str]:
        folder = self.root / RESOURCES
        if not os.path.lexists(folder):
            return []
        self._real_dir(folder, create=False)
        return sorted(decode_name(e.name) or e.name for e in os.scandir(folder) if e.is_dir(follow_symlinks=False))

    # -- objects -------------------------------------------------------------------------------------
    def _object_folder(self, bucket: str) -> Path:
        return self.root / BUCKETS / encode_name(bucket)

    def object_path(self, bucket: str, key: str) -> Path:
        return self._object_folder(bucket) / encode_name(key)

    def put_object(self, bucket: str, key: str, body: bytes) -> Path:
        path = self.object_path(bucket, key)
        if path.name.startswith(_HASHED):        # the key first: a body is never without its name
            self._write(path.with_name(path.name + _NAME_SUFFIX), key.encode("utf-8", "surrogatepass"))
        self._write(path, body)
        return path

    def delete_object(self, bucket: str, key: str) -> None:
        path = self.object_path(bucket, key)
        self._unlink(path)
        if path.name.startswith(_HASHED):
            self._unlink(path.with_name(path.name + _NAME_SUFFIX))

    def buckets(self) -> list[str]:
        folder = self.root / BUCKETS
        if not os.path.lexists(folder):
            return []
        self._real_dir(folder, create=False)
        names = []
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if entry.is_dir(follow_symlinks=False):
                names.append(decode_name(entry.name) or entry.name)
        return names

    def objects(self, bucket: str) -> Iterator[tuple[str, Path]]:
        """Each stored object of ``bucket`` as (key, path of its bytes)."""
        for path in self._files(self._object_folder(bucket)):
            if path.name.startswith(_HASHED):
                if path.name.endswith(_NAME_SUFFIX):
                    continue
                name_file = path.with_name(path.name + _NAME_SUFFIX)
                try:
                    key = name_file.read_bytes().decode("utf-8", "surrogatepass")
                except (OSError, UnicodeDecodeError):
                    raise StateCorruptError(f"{path} is a stored object whose key file {name_file.name} is missing "
                                            "or unreadable; move it away or rerun with --fresh") from None
                if encode_name(key) != path.name:
                    raise StateCorruptError(f"{name_file} names a key that is not stored as {path.name}; move both "
                                            "away or rerun with --fresh")
                yield key, path
            else:
                yield decode_name(path.name), path

    def remove_bucket(self, bucket: str) -> None:
        for key, _path in list(self.objects(bucket)):
            self.delete_object(bucket, key)
        try:
            os.rmdir(self._object_folder(bucket))
        except OSError:
            pass
