"""Saving and restoring the local AWS state: objects mirror exactly, the registry keeps versions and statuses,
every acknowledged change is on disk before the answer, and no key or file name leads out of the state folder."""
import json
import os
from contextlib import ExitStack, contextmanager
from types import SimpleNamespace

import pytest
from botocore.exceptions import ClientError

from local_runtime import state
from local_runtime.aws import local_aws
from local_runtime.errors import LocalRuntimeError
from local_runtime.state_store import StateStore, decode_name, encode_name
from tests.local_runtime.moto_ext.test_write_ahead import no_retries

BUCKET = "state-tests"
HOSTILE_KEYS = ["p/f/", "p/f/a.txt", "/abs/x", "../../../../x", "..", ".", "a", "a/b", "a/b/", "%41", "%%x",
                "~home", ".hidden", "sp ace/ü/日本.png", "tab\tkey", "k" * 1024, "x/" * 300]


def _sagemaker_with_packages(sm):
    sm.create_model_package_group(ModelPackageGroupName="group")
    spec = {"Containers": [{"Image": "img", "ModelDataUrl": f"s3://{BUCKET}/m.tar.gz"}],
            "SupportedContentTypes": ["image/png"], "SupportedResponseMIMETypes": ["application/json"]}
    for status, accuracy in (("Approved", "0.91"), ("Rejected", "0.80"), ("PendingManualApproval", "0.93")):
        sm.create_model_package(ModelPackageGroupName="group", ModelApprovalStatus=status, InferenceSpecification=spec,
                                CustomerMetadataProperties={"accuracy": accuracy})


@contextmanager
def in_process(region="us-east-1"):
    """moto in this process (no server, no write-ahead hook): for what does not need the hook, ~1 s faster."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        try:
            yield SimpleNamespace(region=region, client=lambda service: boto3.client(service, region_name=region))
        finally:
            state.detach()


def _files(directory):
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())


def _keys(state_dir, bucket=BUCKET):
    return sorted(state.mirrored_objects(state_dir).get(bucket, {}))


def test_save_then_restore_into_a_fresh_server(tmp_path):
    state_dir = tmp_path / "state"
    with ExitStack() as stack:
        aws = stack.enter_context(in_process())
        s3, sm = aws.client("s3"), aws.client("sagemaker")
        s3.create_bucket(Bucket=BUCKET)
        for key, body in {"a/evaluation.json": b'{"accuracy": 0.91}', "a/gone.txt": b"x", "b/img.png": b"\x89PNG"}.items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        _sagemaker_with_packages(sm)
        state.save(aws, BUCKET, state_dir)
        s3.put_object(Bucket=BUCKET, Key="a/evaluation.json", Body=b'{"accuracy": 0.95}')   # same size, new content
        s3.delete_object(Bucket=BUCKET, Key="a/gone.txt")
        state.save(aws, BUCKET, state_dir)

    assert _keys(state_dir) == ["a/evaluation.json", "b/img.png"]

    with ExitStack() as stack:
        aws = stack.enter_context(in_process())
        s3, sm = aws.client("s3"), aws.client("sagemaker")
        assert state.restore(aws, BUCKET, state_dir)
        assert json.loads(s3.get_object(Bucket=BUCKET, Key="a/evaluation.json")["Body"].read()) == {"accuracy": 0.95}
        packages = sm.list_model_packages(ModelPackageGroupName="group", SortBy="CreationTime",
                                          SortOrder="Ascending")["ModelPackageSummaryList"]
        restored = [sm.describe_model_package(ModelPackageName=p["ModelPackageArn"]) for p in packages]
        assert [(p["ModelPackageVersion"], p["ModelApprovalStatus"], p["CustomerMetadataProperties"]["accuracy"])
                for p in restored] == [(1, "Approved", "0.91"), (2, "Rejected", "0.80"), (3, "PendingManualApproval", "0.93")]


def test_a_multipart_object_comes_back_with_its_etag(tmp_path):
    """The step cache compares ETags: a model artifact past 8 MB, uploaded in parts, must keep its own."""
    big = tmp_path / "model.tar.gz"
    big.write_bytes(bytes(range(256)) * (9 * 1024 * 1024 // 256))
    state_dir = tmp_path / "state"
    with in_process() as aws:
        s3 = aws.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.upload_file(str(big), BUCKET, "jobs/model.tar.gz")
        s3.put_object(Bucket=BUCKET, Key="jobs/small.txt", Body=b"x")
        before = {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
        state.save(aws, BUCKET, state_dir)
    with in_process() as aws:
        s3 = aws.client("s3")
        assert state.restore(aws, BUCKET, state_dir)
        after = {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert before["jobs/model.tar.gz"].endswith('-2"') and after == before


def test_restore_without_saved_state_says_so(tmp_path):
    with ExitStack() as stack:
        aws = stack.enter_context(in_process())
        assert state.restore(aws, BUCKET, tmp_path / "nothing") is False


def test_hostile_keys_stay_in_the_state_folder_and_come_back_exactly(tmp_path):
    """A folder object next to its contents, a key that is both an object and a prefix, `..`, a leading `/`,
    keys past the file-name limit: each is one file inside state/buckets/, and each comes back as it was."""
    run_dir = tmp_path / "run"
    state_dir = run_dir / "state"
    before_outside = _files(tmp_path)
    bodies = {key: f"body of {key!r}".encode() for key in HOSTILE_KEYS}
    with local_aws("us-east-1") as aws:
        s3 = aws.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        state.restore(aws, BUCKET, state_dir)         # attached: each PUT is written before its answer
        for key, body in bodies.items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        assert _keys(state_dir) == sorted(bodies)
        state.save(aws, BUCKET, state_dir)
    outside = [p for p in _files(tmp_path) if not p.startswith("run/state/")]
    assert outside == before_outside
    assert all(os.path.realpath(tmp_path / p).startswith(str(state_dir.resolve())) for p in _files(tmp_path)
               if p.startswith("run/"))
    with local_aws("us-east-1") as aws:
        s3 = aws.client("s3")
        assert state.restore(aws, BUCKET, state_dir)
        listed = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
                  for o in page.get("Contents", [])]
        assert sorted(listed) == sorted(bodies)
        assert all(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == body for key, body in bodies.items())


@pytest.mark.parametrize("name", HOSTILE_KEYS + ["ARN:aws:sagemaker:x/1", "\udcff", "line\nbreak"])
def test_stored_names_are_flat_safe_and_reversible(name):
    encoded = encode_name(name)
    assert "/" not in encoded and encoded not in (".", "..") and not encoded.startswith(".")
    assert len(encoded.encode()) <= 200
    assert decode_name(encoded) in (name, None)     # None: hashed, the name is kept beside it


def test_acknowledged_changes_are_on_disk_before_the_answer(tmp_path):
    """No save call: after restore attaches the journal, each answered request's change is already a file."""
    state_dir = tmp_path / "state"
    with local_aws("us-east-1") as aws:
        s3, sm, events = aws.client("s3"), aws.client("sagemaker"), aws.client("events")
        s3.create_bucket(Bucket=BUCKET)
        state.restore(aws, BUCKET, state_dir)
        _sagemaker_with_packages(sm)
        arn = sm.list_model_packages(ModelPackageGroupName="group")["ModelPackageSummaryList"][-1]["ModelPackageArn"]
        sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved", ApprovalDescription="by me: ok")
        saved = {p["ModelPackageArn"]: p for p in state.load_documents(state_dir, "sagemaker.model-packages")}
        assert saved[arn]["ModelApprovalStatus"] == "Approved" and saved[arn]["ApprovalDescription"] == "by me: ok"
        events.put_rule(Name="mine", ScheduleExpression="rate(1 day)", State="DISABLED")
        assert [r["Name"] for r in state.load_documents(state_dir, "events.rules")] == ["mine"]
        s3.create_bucket(Bucket="users-own")
        s3.put_object(Bucket="users-own", Key="notes.txt", Body=b"mine")
        assert _keys(state_dir, "users-own") == ["notes.txt"]
        s3.delete_objects(Bucket="users-own", Delete={"Objects": [{"Key": "notes.txt"}]})
        assert _keys(state_dir, "users-own") == []
    with local_aws("us-east-1") as aws:              # no save at the end: what was acknowledged comes back
        sm = aws.client("sagemaker")
        assert state.restore(aws, BUCKET, state_dir)
        described = sm.describe_model_package(ModelPackageName=arn)
        assert (described["ModelApprovalStatus"], described["ApprovalDescription"]) == ("Approved", "by me: ok")
        assert aws.client("events").describe_rule(Name="mine")["State"] == "DISABLED"
        assert "users-own" in [b["Name"] for b in aws.client("s3").list_buckets()["Buckets"]]


def test_a_change_that_cannot_be_saved_is_not_acknowledged(tmp_path, monkeypatch):
    state_dir = tmp_path / "state"
    with local_aws("us-east-1") as aws:
        s3 = aws.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        state.restore(aws, BUCKET, state_dir)

        def disk_full(*_args, **_kwargs):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(StateStore, "put_object", disk_full)
        once = no_retries(aws, "s3")
        with pytest.raises(ClientError, match="could not save this change.*No space left"):
            once.put_object(Bucket=BUCKET, Key="a.txt", Body=b"x")


def test_a_symlinked_state_folder_is_refused_and_nothing_is_written_through_it(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run_dir = tmp_path / "run"
    (run_dir / "state" / "buckets").mkdir(parents=True)
    os.symlink(elsewhere, run_dir / "state" / "buckets" / BUCKET)
    with in_process() as aws:
        aws.client("s3").create_bucket(Bucket=BUCKET)
        aws.client("s3").put_object(Bucket=BUCKET, Key="a.txt", Body=b"x")
        with pytest.raises(state.UnsafeStatePathError, match="symlink"):
            state.save(aws, BUCKET, run_dir / "state")
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize("content, needle", [('{"Model', "not valid JSON"), ('["a list"]', "holds a list")])
def test_an_unreadable_resource_file_is_named_and_nothing_is_restored(tmp_path, content, needle):
    state_dir = tmp_path / "state"
    StateStore(state_dir).mark_layout()
    StateStore(state_dir).put_object(BUCKET, "kept.txt", b"x")
    path = StateStore(state_dir).resource_path("sagemaker.models", "m")
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with in_process() as aws:
        with pytest.raises(state.StateCorruptError, match=needle):
            state.restore(aws, BUCKET, state_dir)
        assert aws.client("s3").list_buckets()["Buckets"] == []
    assert path.read_text() == content


@pytest.mark.parametrize("content, needle", [('{"groups": ["g"], "packa', "not valid JSON"),
                                             ('["a list"]', "holds a list"),
                                             ('{"groups": []}', "lacks packages")])
def test_an_unreadable_earlier_snapshot_is_named_and_nothing_is_restored(tmp_path, content, needle):
    state_dir = tmp_path / "state"
    (state_dir / "s3" / BUCKET).mkdir(parents=True)
    (state_dir / "s3" / BUCKET / "kept.txt").write_text("x")
    (state_dir / "sagemaker.json").write_text(content)
    with ExitStack() as stack:
        aws = stack.enter_context(in_process())
        aws.client("s3").create_bucket(Bucket=BUCKET)
        with pytest.raises(state.StateCorruptError, match=needle):
            state.restore(aws, BUCKET, state_dir)
        assert "Contents" not in aws.client("s3").list_objects_v2(Bucket=BUCKET)
    assert (state_dir / "sagemaker.json").read_text() == content


def test_an_earlier_layout_is_read_once_and_rewritten(tmp_path):
    state_dir = tmp_path / "state"
    (state_dir / "s3" / BUCKET / "p").mkdir(parents=True)
    (state_dir / "s3" / BUCKET / "p" / "a.txt").write_text("a")
    (state_dir / "sagemaker.json").write_text(json.dumps({
        "groups": ["group"], "models": [], "endpoint_configs": [], "endpoints": [], "pipelines": [],
        "pipeline_executions": [], "jobs": [],
        "packages": [{"ModelPackageGroupName": "group", "ModelApprovalStatus": "Rejected",
                      "ModelPackageArn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/group/1",
                      "InferenceSpecification": {"Containers": [{"Image": "img"}],
                                                 "SupportedContentTypes": ["image/png"],
                                                 "SupportedResponseMIMETypes": ["application/json"]}}]}))
    with in_process() as aws:
        aws.client("s3").create_bucket(Bucket=BUCKET)
        assert state.restore(aws, BUCKET, state_dir)
    assert not (state_dir / "sagemaker.json").exists() and not (state_dir / "s3").exists()
    assert _keys(state_dir) == ["p/a.txt"]
    assert [p["ModelApprovalStatus"] for p in state.load_documents(state_dir, "sagemaker.model-packages")] == ["Rejected"]


def test_a_save_interrupted_earlier_leaves_no_temporary_file_behind(tmp_path):
    state_dir = tmp_path / "state"
    (state_dir / ".tmp").mkdir(parents=True)
    (state_dir / ".tmp" / ".x.json.abc.tmp").write_text('{"gro')      # what a kill mid-write leaves
    with ExitStack() as stack:
        aws = stack.enter_context(in_process())
        aws.client("s3").create_bucket(Bucket=BUCKET)
        aws.client("s3").put_object(Bucket=BUCKET, Key="a/b.txt", Body=b"b")
        state.save(aws, BUCKET, state_dir)
    assert _files(state_dir) == ["buckets/state-tests/a%2Fb.txt", "layout.json",
                                 "resources/s3.buckets/state-tests.json"]


@pytest.mark.parametrize("package, needle", [
    ({"ModelPackageGroupName": "group"}, "KeyError: 'ModelApprovalStatus'"),
    ({"ModelPackageGroupName": "group", "ModelApprovalStatus": "Maybe", "ModelPackageArn": "x"}, "Value 'Maybe'"),
])
def test_a_document_that_cannot_be_replayed_is_named_and_the_file_kept(tmp_path, package, needle):
    state_dir = tmp_path / "state"
    store = StateStore(state_dir)
    store.mark_layout()
    store.put("sagemaker.model-package-groups", "group", json.dumps({"ModelPackageGroupName": "group"}).encode())
    store.put("sagemaker.model-packages", "p", json.dumps(package).encode())
    path = store.resource_path("sagemaker.model-packages", "p")
    content = path.read_text()
    with in_process() as aws:
        with pytest.raises(state.StateCorruptError, match=f"p.json holds an entry that cannot be replayed .*{needle}"):
            state.restore(aws, BUCKET, state_dir)
    assert path.read_text() == content


def test_restoring_an_earlier_mirror_into_a_missing_bucket_names_it(tmp_path):
    state_dir = tmp_path / "state"
    (state_dir / "s3" / BUCKET).mkdir(parents=True)
    (state_dir / "s3" / BUCKET / "a.txt").write_text("a")
    (state_dir / "sagemaker.json").write_text(json.dumps({key: [] for key in state._LEGACY_KEYS}))
    with in_process() as aws, pytest.raises(LocalRuntimeError, match=f"bucket {BUCKET} does not exist"):
        state.restore(aws, BUCKET, state_dir)


@pytest.mark.parametrize("name", [os.fsdecode(b"photo-\xff.png"), "a%2f", "a%2", "with space"])
def test_a_stored_file_whose_name_was_never_written_by_us_is_named(tmp_path, name):
    state_dir = tmp_path / "state"
    StateStore(state_dir).mark_layout()
    folder = state_dir / "buckets" / BUCKET
    folder.mkdir(parents=True)
    (folder / name).write_bytes(b"x")
    with in_process() as aws:
        with pytest.raises(state.StateCorruptError, match="not a name the local runtime writes"):
            state.restore(aws, BUCKET, state_dir)
