"""The local AWS state on disk, written ahead: what the local APIs acknowledge is saved before the answer.

moto keeps every resource in memory; the run directory's ``state/`` folder keeps them across starts.
The design, in three parts:

- **Layout** (``state_store.py``): one JSON file per resource (``state/resources/<kind>/<name>.json``)
  and one file per S3 object (``state/buckets/<bucket>/<key>``), names percent-encoded so any key
  maps to one flat, safe file name; every file written to ``state/.tmp`` and renamed into place.
- **Kinds** (:data:`KINDS`): each kind of saved resource is a :class:`Kind`: the moto service and
  actions that change it, ``dump`` (its documents, read from moto's backends by
  ``moto_ext/resource_state.py`` and friends) and ``restore`` (one document put back through the
  API). Making a new resource durable is adding a Kind, in restore order.
- **Hooks** (``moto_ext/write_ahead.py``): the moto server hands every request it handled to the
  attached :class:`Journal` before answering; the journal writes the object a PUT/DELETE named and
  the kinds the action may have changed (a changed document is rewritten, a vanished one removed,
  an unchanged one left alone). Code that changes state outside a request calls :func:`commit`
  (an execution's worker, a job, a blue/green deployment ending).

:func:`restore` puts a saved state back into a fresh stack and attaches the journal, from then on
nothing acknowledged is lost to a kill; :func:`save` writes everything that differs (the end of a run,
or a stack that was never restored). A saved state from before this layout (``sagemaker.json`` and
an ``s3/`` tree) is read once and rewritten in this layout.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError, ParamValidationError

from local_runtime.moto_ext import bucket_state, resource_state, user_state, write_ahead
from local_runtime.state_store import (
    StateCorruptError,
    StateStore,
    UnsafeStatePathError,
    digest,
    dump_document,
    encode_name,
    read_document,
)

__all__ = ["KINDS", "Journal", "Kind", "SavedState", "StateCorruptError", "UnsafeStatePathError", "commit",
           "commit_objects", "detach", "load_documents", "mirrored_objects", "read_saved", "read_state_json",
           "restore", "save"]
log = logging.getLogger("local_runtime.state")
LEGACY_SNAPSHOT = "sagemaker.json"      # the layout before write-ahead saving: one snapshot and an s3/ tree
LEGACY_MIRROR = "s3"
_LEGACY_KEYS = ("groups", "packages", "models", "endpoint_configs", "endpoints")


def read_state_json(path: Path) -> dict:
    """A run directory's JSON record, or :class:`StateCorruptError` saying which file and what to do."""
    return read_document(path)


_MULTIPART_CHUNK = TransferConfig().multipart_chunksize      # the part size upload_file sends large objects in
_MULTIPART_THRESHOLD = TransferConfig().multipart_threshold  # the size from which it does (the ETag then differs)


def _file_etag(path: Path, multipart: bool) -> str:
    """The ETag S3 gives a file's bytes: their MD5, or for a multipart upload the MD5 of the parts' MD5s."""
    with open(path, "rb") as handle:
        if not multipart:
            return f'"{hashlib.file_digest(handle, "md5").hexdigest()}"'
        digests = [hashlib.md5(chunk).digest() for chunk in iter(lambda: handle.read(_MULTIPART_CHUNK), b"")]
    return f'"{hashlib.md5(b"".join(digests)).hexdigest()}-{len(digests)}"'


def _multipart_etag(body: bytes) -> str:
    """The ETag upload_file gives ``body`` from its multipart threshold on: the MD5 of the parts' MD5s."""
    digests = [hashlib.md5(body[i:i + _MULTIPART_CHUNK]).digest() for i in range(0, len(body), _MULTIPART_CHUNK)]
    return f'"{hashlib.md5(b"".join(digests)).hexdigest()}-{len(digests)}"'


# -- kinds -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Kind:
    """One kind of saved resource.

    ``service``/``actions``: the moto service whose requests may change it, and a pattern of the
    actions that do (None: any action of the service that is not a read). ``background``: it also
    changes outside requests (the reads of its service then write it too, so nothing is shown that
    is not saved). ``dump(region)``: ``{name: document}`` as moto holds them now. ``restore(context,
    document)``: puts one document back. ``order``: sorts documents before restoring. ``version(region)``:
    optional, a cheap value that changes whenever a document would (a poll then costs no dump).
    """
    name: str
    service: str
    actions: str | None
    dump: Callable[[str], dict[str, dict]]
    restore: Callable[["_Restoring", dict], None]
    background: bool = False
    order: Callable[[dict], object] | None = None
    version: Callable[[str], object] | None = None     # cheap: unchanged means no document changed


    def changed_by(self, change: write_ahead.Change) -> bool:
        if change.service != self.service:
            return False
        if change.reads and not self.background:
            return False
        return self.actions is None or not change.action or bool(re.search(self.actions, change.action))


@dataclass
class _Restoring:
    clients: object
    region: str
    provisioned_rules: set[str]

    def client(self, service: str):
        return self.clients.client(service)


def _restore_bucket(ctx: _Restoring, doc: dict) -> None:
    bucket_state.ensure_bucket(doc["Name"], doc.get("Region") or ctx.region)


def _restore_group(ctx: _Restoring, doc: dict) -> None:
    sm = ctx.client("sagemaker")
    try:
        sm.create_model_package_group(**doc)
    except ClientError as exc:
        if "already exists" not in str(exc):
            raise


def _restore_package(ctx: _Restoring, doc: dict) -> None:
    request = {k: doc[k] for k in resource_state.PACKAGE_FIELDS if k in doc}
    # Created with its final status: an UpdateModelPackage would emit an approval event and redeploy.
    arn = ctx.client("sagemaker").create_model_package(**request, ModelApprovalStatus=doc["ModelApprovalStatus"])[
        "ModelPackageArn"]
    if arn != doc["ModelPackageArn"]:
        log.warning("restored package %s as %s", doc["ModelPackageArn"], arn)
    if doc.get("ApprovalDescription"):
        resource_state.set_approval_description(ctx.region, arn, doc["ApprovalDescription"])


def _restore_endpoint(ctx: _Restoring, doc: dict) -> None:
    try:
        ctx.client("sagemaker").create_endpoint(**doc)
    except ClientError as exc:
        log.warning("could not restore endpoint %s: %s", doc["EndpointName"], exc)


def _restore_rule(ctx: _Restoring, doc: dict) -> None:
    """A rule the provisioning created keeps the template's definition and takes the saved state (enabled or
    not); any other rule comes back whole, with its targets."""
    events = ctx.client("events")
    bus, name = doc.get("EventBusName", "default"), doc["Name"]
    if bus not in resource_state.event_buses(ctx.region):
        events.create_event_bus(Name=bus)
    if f"{bus}/{name}" in ctx.provisioned_rules:
        action = events.enable_rule if doc.get("State") == "ENABLED" else events.disable_rule
        action(Name=name, EventBusName=bus)
        return
    events.put_rule(**{k: v for k, v in doc.items() if k != "Targets"})
    if doc.get("Targets"):
        events.put_targets(Rule=name, EventBusName=bus, Targets=doc["Targets"])


def _create(service: str, operation: str) -> Callable[[_Restoring, dict], None]:
    return lambda ctx, doc: getattr(ctx.client(service), operation)(**doc)


def _executions_version(region: str) -> tuple:
    from local_runtime.moto_ext import pipeline_executions

    return pipeline_executions.version(region)


def _executions(region: str) -> dict[str, dict]:
    from local_runtime.moto_ext import pipeline_executions

    return {saved["PipelineExecutionArn"]: saved for saved in pipeline_executions.snapshot(region)}


def _jobs(region: str) -> dict[str, dict]:
    from local_runtime.moto_ext import sagemaker_jobs

    return {f"{saved['kind']}/{saved['attributes'].get(saved['kind'].lower() + '_job_name')}": saved
            for saved in sagemaker_jobs.snapshot(region)}


def _restore_job(ctx: _Restoring, doc: dict) -> None:
    from local_runtime.moto_ext import sagemaker_jobs

    sagemaker_jobs.restore(ctx.region, [doc])


def _restore_execution(ctx: _Restoring, doc: dict) -> None:
    from local_runtime.moto_ext import pipeline_executions

    pipeline_executions.restore(ctx.region, [doc])


KINDS: tuple[Kind, ...] = (        # in restore order: what a resource refers to comes back first
    Kind("s3.buckets", "s3", None, lambda region: bucket_state.buckets(), _restore_bucket),
    Kind("sagemaker.model-package-groups", "sagemaker", r"ModelPackageGroup", resource_state.model_package_groups,
         _restore_group),
    Kind("sagemaker.model-packages", "sagemaker", r"ModelPackage", resource_state.model_packages, _restore_package,
         order=lambda doc: (doc.get("ModelPackageGroupName", ""), doc.get("ModelPackageVersion") or 0)),
    Kind("sagemaker.models", "sagemaker", r"Model$", resource_state.models, _create("sagemaker", "create_model")),
    Kind("sagemaker.endpoint-configs", "sagemaker", r"EndpointConfig$", resource_state.endpoint_configs,
         _create("sagemaker", "create_endpoint_config")),
    Kind("sagemaker.endpoints", "sagemaker", r"Endpoints?$", resource_state.endpoints, _restore_endpoint,
         background=True),
    Kind("sagemaker.pipelines", "sagemaker", r"Pipelines?$|Tags$", resource_state.pipelines,
         _create("sagemaker", "create_pipeline")),
    Kind("sagemaker.jobs", "sagemaker", r"Jobs?$", _jobs, _restore_job, background=True),
    Kind("sagemaker.pipeline-executions", "sagemaker", r"PipelineExecution|Pipelines?$", _executions,
         _restore_execution, background=True, order=lambda doc: doc.get("StartTime") or 0,
         version=_executions_version),
    # what users create (moto_ext/user_state.py): roles first, then what runs under them
    Kind("iam.roles", "iam", None, user_state.roles, user_state.restore_role),
    Kind("lambda.functions", "lambda", None, user_state.functions, user_state.restore_function),
    Kind("stepfunctions.state-machines", "stepfunctions", r"StateMachine", user_state.state_machines,
         user_state.restore_state_machine),
    Kind("events.rules", "events", r"Rules?$|Targets$|EventBus$", resource_state.event_rules, _restore_rule),
    # log events are written when the state is saved (serve stopping, the end of a run), not on each
    # PutLogEvents: rewriting every stream per log line would cost more than the logs are worth
    Kind("logs.streams", "logs (saved at stop)", None, user_state.log_streams, user_state.restore_log_stream),
)
_BY_NAME = {kind.name: kind for kind in KINDS}


# -- the journal ---------------------------------------------------------------------------------------

class Journal:
    """Writes what changed to one ``state/`` folder; attached to the moto server by :func:`restore`."""

    def __init__(self, state_dir: Path, region: str):
        self.store = StateStore(state_dir)
        self.region = region
        self._lock = threading.RLock()
        self._written: dict[str, dict[str, str]] = {}      # kind -> file name -> digest of what is on disk
        self._objects: dict[str, dict[str, tuple]] = {}    # bucket -> key -> fingerprint of what is on disk
        self._versions: dict[str, object] = {}             # kind -> its version when last written

    def load_disk(self) -> None:
        """What the state folder holds now, so that the first sync writes only what differs."""
        for kind in KINDS:
            self._written[kind.name] = {path.name: digest(data) for path, data in self.store.documents(kind.name)}
        for bucket in self.store.buckets():
            self._objects[bucket] = {key: ("on disk", path) for key, path in self.store.objects(bucket)}

    def index_objects(self) -> None:
        """After a restore: moto's objects are exactly the files, so those are what is on disk."""
        for bucket in self.store.buckets():
            self._objects[bucket] = {key: bucket_state.fingerprint(obj)
                                     for key, obj in bucket_state.current_objects(bucket).items()}

    # the write_ahead.Journal protocol
    def after_request(self, change: write_ahead.Change, touched: set[str]) -> None:
        kinds = set(touched)
        matched = [kind.name for kind in KINDS if kind.service != "s3" and kind.changed_by(change)]   # S3: below
        if not matched and not change.reads and change.service != "s3":
            matched = [kind.name for kind in KINDS if kind.service == change.service]     # an action not named above
        kinds.update(matched)
        objects = change.service == "s3" and not change.reads and change.action != "unsaved" and change.bucket
        if not kinds and not objects:
            return                       # a read of nothing that changes in the background: no lock taken
        with self._lock:
            if objects:
                if change.key:
                    self._sync_object(change.bucket, change.key)
                else:
                    kinds.add("s3.buckets")
                    self._sync_buckets({change.bucket})
            self._sync_kinds(kinds)

    def commit(self, touched: set[str]) -> None:
        with self._lock:
            self._sync_kinds(touched)

    def sync_objects(self, bucket: str, keys: list[str]) -> None:
        with self._lock:
            for key in keys:
                self._sync_object(bucket, key)

    def sync_all(self) -> None:
        """Everything that differs from moto's state: every kind and every bucket."""
        with self._lock:
            self._sync_kinds({kind.name for kind in KINDS})
            self._sync_buckets(None)
            self.store.mark_layout()

    # writing
    def _sync_kinds(self, names: set[str]) -> None:
        for kind in KINDS:
            if kind.name in names:
                self._sync_kind(kind)

    def _sync_kind(self, kind: Kind) -> None:
        version = kind.version(self.region) if kind.version else None
        if version is not None and self._versions.get(kind.name) == version:
            return
        written = self._written.setdefault(kind.name, {})
        present = set()
        for name, document in kind.dump(self.region).items():
            data = dump_document(document)
            file_name = encode_name(name) + ".json"
            present.add(file_name)
            fingerprint = digest(data)
            if written.get(file_name) != fingerprint:
                self.store.put(kind.name, name, data)
                written[file_name] = fingerprint
        for file_name in set(written) - present:
            self.store.remove(kind.name, file_name)
            del written[file_name]
        if version is not None:
            self._versions[kind.name] = version

    def _write_object(self, bucket: str, key: str, obj) -> None:
        self.store.put_object(bucket, key, bucket_state.body_of(obj))
        self._objects.setdefault(bucket, {})[key] = bucket_state.fingerprint(obj)

    def _unchanged(self, bucket: str, key: str, obj) -> bool:
        """Whether the file holds ``obj``: by identity once written or restored here; a file found on disk
        (a save without a restore) by its size and ETag, once."""
        index = self._objects.setdefault(bucket, {})
        entry = index.get(key)
        if entry == bucket_state.fingerprint(obj):
            return True
        if not (entry and entry[0] == "on disk"):
            return False
        try:
            same = entry[1].stat().st_size == obj.size and _file_etag(entry[1], "-" in obj.etag) == obj.etag
        except OSError:
            same = False
        if same:
            index[key] = bucket_state.fingerprint(obj)
        return same

    def _sync_object(self, bucket: str, key: str) -> None:
        index = self._objects.setdefault(bucket, {})
        obj = bucket_state.current_object(bucket, key)
        if obj is None and key not in index:
            self._sync_buckets({bucket})       # not the key the path named (an encoding moto reads otherwise)
        elif obj is None:
            self.store.delete_object(bucket, key)
            del index[key]
        elif not self._unchanged(bucket, key, obj):
            self._write_object(bucket, key, obj)

    def _sync_buckets(self, names: set[str] | None) -> None:
        existing = set(bucket_state.buckets())
        for bucket in sorted(existing if names is None else names & existing):
            index = self._objects.setdefault(bucket, {})
            current = bucket_state.current_objects(bucket)
            for key, obj in current.items():
                if not self._unchanged(bucket, key, obj):
                    self._write_object(bucket, key, obj)
            for key in set(index) - set(current):
                self.store.delete_object(bucket, key)
                del index[key]
        for bucket in sorted(set(self._objects) - existing if names is None else (names or set()) - existing):
            self.store.remove_bucket(bucket)
            self._objects.pop(bucket, None)


# -- restore and save ------------------------------------------------------------------------------------

def _journal_for(state_dir: Path) -> Journal | None:
    journal = write_ahead.attached()
    if isinstance(journal, Journal) and journal.store.root.resolve() == Path(state_dir).resolve():
        return journal
    return None


def commit(*kinds: str) -> None:
    """Writes these kinds now (for state changed outside a request, e.g. by a background thread)."""
    unknown = [k for k in kinds if k not in _BY_NAME]
    if unknown:
        raise ValueError(f"unknown state kinds {unknown}; known: {sorted(_BY_NAME)}")
    write_ahead.commit(*kinds)


def commit_objects(bucket: str, keys: list[str]) -> None:
    """Writes these objects now (put into the local S3 outside a request: job outputs, local_runtime/job_data.py)."""
    journal = write_ahead.attached()
    if isinstance(journal, Journal):
        journal.sync_objects(bucket, keys)


def detach() -> None:
    """Stops writing ahead (the stack is stopping; its moto server answers no more requests)."""
    write_ahead.detach()


def save(clients, bucket: str, state_dir: Path) -> None:
    """Writes everything that differs from the saved state (all kinds, all buckets; ``bucket`` is kept for callers)."""
    journal = _journal_for(state_dir)
    if journal is None:
        journal = Journal(Path(state_dir), clients.region)
        journal.load_disk()
    journal.sync_all()
    shutil.rmtree(journal.store.root / ".tmp", ignore_errors=True)


def load_documents(state_dir: Path, kind: str) -> list[dict]:
    """The saved documents of one kind (for reports and tests), in restore order."""
    store = StateStore(Path(state_dir))
    documents = [read_document(path) for path, _ in store.documents(kind)]
    order = _BY_NAME[kind].order
    return sorted(documents, key=order) if order else documents


def mirrored_objects(state_dir: Path) -> dict[str, dict[str, Path]]:
    """Bucket -> key -> the file holding the saved object's bytes."""
    store = StateStore(Path(state_dir))
    return {bucket: dict(store.objects(bucket)) for bucket in store.buckets()}


def _legacy_documents(state_dir: Path) -> dict[str, list[dict]]:
    """The kinds of a snapshot written before this layout (``sagemaker.json``)."""
    path = state_dir / LEGACY_SNAPSHOT
    snapshot = read_state_json(path)
    missing = [k for k in _LEGACY_KEYS if not isinstance(snapshot.get(k), list)]
    if missing:
        raise StateCorruptError(f"{path} lacks {', '.join(missing)}; it is not a saved state of this "
                                "version. Move it away or rerun with --fresh")
    return {"sagemaker.model-package-groups": [{"ModelPackageGroupName": g} for g in snapshot["groups"]],
            "sagemaker.model-packages": snapshot["packages"], "sagemaker.models": snapshot["models"],
            "sagemaker.endpoint-configs": snapshot["endpoint_configs"], "sagemaker.endpoints": snapshot["endpoints"],
            "sagemaker.pipelines": snapshot.get("pipelines", []), "sagemaker.jobs": snapshot.get("jobs", []),
            "sagemaker.pipeline-executions": snapshot.get("pipeline_executions", [])}


def _legacy_objects(mirror: Path) -> Iterator[tuple[str, bytes, str | None]]:
    """Each file of an ``s3/<bucket>/`` tree as ``(key, body, etag)`` (no symlink followed)."""
    for directory, _folders, files in os.walk(mirror, followlinks=False):
        for name in sorted(files):
            path = Path(directory) / name
            if path.is_symlink():
                continue
            key = path.relative_to(mirror).as_posix()
            try:
                key.encode("utf-8")
            except UnicodeEncodeError:
                raise StateCorruptError(f"{path} is in the bucket mirror, but its name is not UTF-8, so it is no S3 "
                                        "key (the file was put there by hand?). Move it away or rerun with --fresh"
                                        ) from None
            body = path.read_bytes()
            yield key, body, _multipart_etag(body) if len(body) >= _MULTIPART_THRESHOLD else None


def _read_objects(files: list[tuple[str, Path]]) -> Iterator[tuple[str, bytes, str | None]]:
    """``(key, body, etag)`` of listed files, read one at a time while they are put back."""
    for key, path in files:
        body = path.read_bytes()
        yield key, body, _multipart_etag(body) if len(body) >= _MULTIPART_THRESHOLD else None


def _replay(ctx: _Restoring, kind: Kind, documents: list[tuple[str, dict]]) -> None:
    if kind.order:
        documents = sorted(documents, key=lambda item: kind.order(item[1]))
    for where, document in documents:
        try:
            kind.restore(ctx, document)
        except (KeyError, TypeError, AttributeError, ValueError, ParamValidationError, ClientError) as exc:
            raise StateCorruptError(f"{where} holds an entry that cannot be replayed ({type(exc).__name__}: {exc}); "
                                    "it was edited or is from another version. Move it away or rerun with --fresh "
                                    "(the file is left as it is)") from None


@dataclass
class SavedState:
    """A state folder as read and checked, before anything is put back (:func:`read_saved`)."""
    documents: dict[str, list[tuple[str, dict]]]                     # kind -> (where, document)
    objects: dict[str, Iterable[tuple[str, bytes, str | None]]]      # bucket -> (key, body, etag), read as put back
    current: bool       # in this layout
    legacy: bool        # in the earlier layout, rewritten in this one by restore()


def read_saved(state_dir: Path) -> SavedState:
    """Reads and checks every saved document and object name of ``state_dir``; needs no stack, so
    ``scones-local run`` and ``serve`` call it before starting one: a damaged state is named in a moment,
    not after the stack's few seconds of start."""
    state_dir = Path(state_dir)
    store = StateStore(state_dir)
    legacy = (state_dir / LEGACY_SNAPSHOT).exists() or (state_dir / LEGACY_MIRROR).is_dir()
    current = store.layout_version() is not None
    if current:
        documents = {kind.name: [(str(path), read_document(path)) for path, _ in store.documents(kind.name)]
                     for kind in KINDS}
        listed = {name: list(store.objects(name)) for name in store.buckets()}      # every name checked first
        objects = {name: _read_objects(files) for name, files in listed.items()}
    elif legacy:
        where = str(state_dir / LEGACY_SNAPSHOT)
        documents = {name: [(where, doc) for doc in docs]
                     for name, docs in (_legacy_documents(state_dir).items()
                                        if (state_dir / LEGACY_SNAPSHOT).exists() else {}.items())}
        mirror = state_dir / LEGACY_MIRROR
        objects = {child.name: list(_legacy_objects(child)) for child in sorted(mirror.iterdir())
                   if child.is_dir() and not child.is_symlink()} if mirror.is_dir() else {}
    else:
        documents, objects = {}, {}
    return SavedState(documents, objects, current, legacy)


def restore(clients, bucket: str, state_dir: Path, saved: SavedState | None = None) -> bool:
    """Puts the saved state back into this (fresh) stack, then writes ahead into ``state_dir`` from now on.

    Returns whether there was a saved state. A state in the earlier layout is read and rewritten in
    this one. Every saved file is read and checked before anything is written (``saved``: as
    :func:`read_saved` read it already).
    """
    state_dir = Path(state_dir)
    saved = saved or read_saved(state_dir)
    documents, objects, current, legacy = saved.documents, saved.objects, saved.current, saved.legacy
    ctx = _Restoring(clients, clients.region, set(resource_state.event_rules(clients.region)))   # provisioned
    if legacy and not current:
        for name in objects:
            if name not in bucket_state.buckets():
                raise bucket_state.BucketMissingError(f"bucket {name} does not exist in the local AWS: create it "
                                                      "before restoring objects into it")
    restored_objects = 0
    for kind in KINDS:
        _replay(ctx, kind, documents.get(kind.name, []))
        if kind.name == "s3.buckets":
            for name, items in objects.items():
                bucket_state.ensure_bucket(name, clients.region)
                restored_objects += bucket_state.put_objects(name, items)
    journal = Journal(state_dir, clients.region)
    journal.load_disk()              # also after an interrupted migration: what is there but not saved goes
    if current:
        journal.index_objects()
    write_ahead.attach(journal)
    journal.sync_all()               # what provisioning created, and a migrated state in this layout
    if legacy:
        (state_dir / LEGACY_SNAPSHOT).unlink(missing_ok=True)
        shutil.rmtree(state_dir / LEGACY_MIRROR, ignore_errors=True)
    restored = current or legacy
    if restored:
        log.info("restored %d objects, %d packages, %d endpoints, %d pipeline executions from %s",
                 restored_objects, len(documents.get("sagemaker.model-packages", [])),
                 len(documents.get("sagemaker.endpoints", [])),
                 len(documents.get("sagemaker.pipeline-executions", [])), state_dir)
    return restored
