"""Saving and restoring the local AWS state: objects mirror exactly, the registry keeps versions and statuses."""
import json
import os
from contextlib import ExitStack

import pytest

from local_runtime import state
from local_runtime.aws import local_aws
from local_runtime.errors import LocalRuntimeError

BUCKET = "state-tests"


def _sagemaker_with_packages(sm):
    sm.create_model_package_group(ModelPackageGroupName="group")
    spec = {"Containers": [{"Image": "img", "ModelDataUrl": f"s3://{BUCKET}/m.tar.gz"}],
            "SupportedContentTypes": ["image/png"], "SupportedResponseMIMETypes": ["application/json"]}
    for status, accuracy in (("Approved", "0.91"), ("Rejected", "0.80"), ("PendingManualApproval", "0.93")):
        sm.create_model_package(ModelPackageGroupName="group", ModelApprovalStatus=status, InferenceSpecification=spec,
                                CustomerMetadataProperties={"accuracy": accuracy})


def test_save_then_restore_into_a_fresh_server(tmp_path):
    state_dir = tmp_path / "state"
    with ExitStack() as stack:
        aws = stack.enter_context(local_aws("us-east-1"))
        s3, sm = aws.client("s3"), aws.client("sagemaker")
        s3.create_bucket(Bucket=BUCKET)
        for key, body in {"a/evaluation.json": b'{"accuracy": 0.91}', "a/gone.txt": b"x", "b/img.png": b"\x89PNG"}.items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        _sagemaker_with_packages(sm)
        state.save(aws, BUCKET, state_dir)
        s3.put_object(Bucket=BUCKET, Key="a/evaluation.json", Body=b'{"accuracy": 0.95}')   # same size, new content
        s3.delete_object(Bucket=BUCKET, Key="a/gone.txt")
        state.save(aws, BUCKET, state_dir)

    mirrored = sorted(p.relative_to(state_dir / "s3" / BUCKET).as_posix() for p in (state_dir / "s3").rglob("*") if p.is_file())
    assert mirrored == ["a/evaluation.json", "b/img.png"]

    with ExitStack() as stack:
        aws = stack.enter_context(local_aws("us-east-1"))
        s3, sm = aws.client("s3"), aws.client("sagemaker")
        s3.create_bucket(Bucket=BUCKET)
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
    with local_aws("us-east-1") as aws:
        s3 = aws.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.upload_file(str(big), BUCKET, "jobs/model.tar.gz")
        s3.put_object(Bucket=BUCKET, Key="jobs/small.txt", Body=b"x")
        before = {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
        state.save(aws, BUCKET, state_dir)
    with local_aws("us-east-1") as aws:
        s3 = aws.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        assert state.restore(aws, BUCKET, state_dir)
        after = {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert before["jobs/model.tar.gz"].endswith('-2"') and after == before


def test_restore_without_saved_state_says_so(tmp_path):
    with ExitStack() as stack:
        aws = stack.enter_context(local_aws("us-east-1"))
        assert state.restore(aws, BUCKET, tmp_path / "nothing") is False


@pytest.mark.parametrize("content, needle", [('{"groups": ["g"], "packa', "not valid JSON"),
                                             ('["a list"]', "holds a list"),
                                             ('{"groups": []}', "lacks packages")])
def test_an_unreadable_snapshot_is_named_and_nothing_is_restored(tmp_path, content, needle):
    state_dir = tmp_path / "state"
    (state_dir / "s3" / BUCKET).mkdir(parents=True)
    (state_dir / "s3" / BUCKET / "kept.txt").write_text("x")
    (state_dir / "sagemaker.json").write_text(content)
    with ExitStack() as stack:
        aws = stack.enter_context(local_aws("us-east-1"))
        aws.client("s3").create_bucket(Bucket=BUCKET)
        with pytest.raises(state.StateCorruptError, match=needle):
            state.restore(aws, BUCKET, state_dir)
        assert "Contents" not in aws.client("s3").list_objects_v2(Bucket=BUCKET)
    assert (state_dir / "sagemaker.json").read_text() == content


def test_a_save_interrupted_earlier_leaves_no_temporary_file_behind(tmp_path):
    state_dir = tmp_path / "state"
    (state_dir / ".tmp").mkdir(parents=True)
    (state_dir / ".tmp" / ".sagemaker.json.abc.tmp").write_text('{"gro')      # what a kill mid-save leaves
    with ExitStack() as stack:
        aws = stack.enter_context(local_aws("us-east-1"))
        aws.client("s3").create_bucket(Bucket=BUCKET)
        aws.client("s3").put_object(Bucket=BUCKET, Key="a/b.txt", Body=b"b")
        state.save(aws, BUCKET, state_dir)
    assert sorted(p.relative_to(state_dir).as_posix() for p in state_dir.rglob("*") if p.is_file()) == [
        "s3/state-tests/a/b.txt", "sagemaker.json"]


@pytest.mark.parametrize("package, needle", [
    ({"ModelPackageGroupName": "group"}, "KeyError: 'ModelApprovalStatus'"),
    ({"ModelPackageGroupName": "group", "ModelApprovalStatus": "Maybe", "ModelPackageArn": "x"}, "Value 'Maybe'"),
    ("not an object", "TypeError"),
])
def test_a_snapshot_entry_that_cannot_be_replayed_is_named_and_the_file_kept(tmp_path, package, needle):
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    content = json.dumps({"groups": ["group"], "packages": [package], "models": [], "endpoint_configs": [],
                          "endpoints": [], "pipelines": [], "pipeline_executions": [], "jobs": []})
    (state_dir / "sagemaker.json").write_text(content)
    with ExitStack() as stack:
        aws = stack.enter_context(local_aws("us-east-1"))
        with pytest.raises(state.StateCorruptError, match=f"cannot be replayed .*{needle}.*--fresh"):
            state.restore(aws, BUCKET, state_dir)
    assert (state_dir / "sagemaker.json").read_text() == content


def test_an_object_deleted_while_saving_leaves_the_mirror(tmp_path):
    """The mirror must not keep an earlier copy of an object the bucket no longer has: the next
    restore would bring it back."""
    state_dir = tmp_path / "state"
    with local_aws("us-east-1") as aws:
        s3 = aws.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="a.txt", Body=b"v1")
        state.save(aws, BUCKET, state_dir)
        s3.put_object(Bucket=BUCKET, Key="a.txt", Body=b"v2 is longer")

        def delete_after_listing(**_):
            s3.delete_object(Bucket=BUCKET, Key="a.txt")

        s3.meta.events.register("after-call.s3.ListObjectsV2", delete_after_listing)
        try:
            state.save(aws, BUCKET, state_dir)
        finally:
            s3.meta.events.unregister("after-call.s3.ListObjectsV2", delete_after_listing)
    assert not (state_dir / "s3" / BUCKET / "a.txt").exists()


def test_restoring_into_a_missing_bucket_names_it(tmp_path):
    state_dir = tmp_path / "state"
    (state_dir / "s3" / BUCKET).mkdir(parents=True)
    (state_dir / "s3" / BUCKET / "a.txt").write_text("a")
    (state_dir / "sagemaker.json").write_text(json.dumps({key: [] for key in state._SNAPSHOT_KEYS}))
    with local_aws("us-east-1") as aws, pytest.raises(LocalRuntimeError, match=f"bucket {BUCKET} does not exist"):
        state.restore(aws, BUCKET, state_dir)


def test_a_mirrored_file_whose_name_is_no_s3_key_is_named(tmp_path):
    state_dir = tmp_path / "state"
    mirror = state_dir / "s3" / BUCKET
    mirror.mkdir(parents=True)
    (mirror / os.fsdecode(b"photo-\xff.png")).write_bytes(b"x")
    (state_dir / "sagemaker.json").write_text(json.dumps({key: [] for key in state._SNAPSHOT_KEYS}))
    with local_aws("us-east-1") as aws:
        aws.client("s3").create_bucket(Bucket=BUCKET)
        with pytest.raises(state.StateCorruptError, match="not UTF-8"):
            state.restore(aws, BUCKET, state_dir)
        assert "Contents" not in aws.client("s3").list_objects_v2(Bucket=BUCKET)
