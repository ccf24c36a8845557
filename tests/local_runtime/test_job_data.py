"""Job data moved through the local S3's store gives the objects a PutObject gives, saved before the write returns."""
import pytest

from local_runtime import state
from local_runtime.job_data import InProcessObjects
from local_runtime.moto_ext.bucket_state import BucketMissingError
from local_runtime.pipeline.s3io import ApiObjects, S3InputMissingError, download_prefix, upload_dir


@pytest.fixture
def movers(local_stack, tmp_path):
    s3 = local_stack.client("s3")
    api = ApiObjects(s3)
    return s3, local_stack.config.storage.bucket, api, InProcessObjects(api)


def test_an_upload_is_the_object_a_put_object_makes(movers, tmp_path):
    s3, bucket, api, in_process = movers
    source = tmp_path / "out"
    (source / "test" / "bicycle").mkdir(parents=True)
    (source / "test" / "bicycle" / "a.png").write_bytes(b"\x89PNG not really" * 50)
    (source / "test.lst").write_text("0\t0\tbicycle/a.png\n")
    assert upload_dir(in_process, source, f"s3://{bucket}/job-data/in-process/") == 2
    assert upload_dir(api, source, f"s3://{bucket}/job-data/api/") == 2
    for name in ("test/bicycle/a.png", "test.lst"):
        direct = s3.head_object(Bucket=bucket, Key=f"job-data/in-process/{name}")
        through_api = s3.head_object(Bucket=bucket, Key=f"job-data/api/{name}")
        for field in ("ETag", "ContentLength", "ContentType"):
            assert direct[field] == through_api[field], field
        assert s3.get_object(Bucket=bucket, Key=f"job-data/in-process/{name}")["Body"].read() == \
            (source / name).read_bytes()


def test_a_download_lists_as_the_api_does_and_reads_the_same_bytes(movers, tmp_path):
    s3, bucket, api, in_process = movers
    for key in ("dl/b/2.png", "dl/a/1.png", "dl/a/10.png", "dlx/not-under-the-prefix.png"):
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    assert in_process.keys(bucket, "dl/") == api.keys(bucket, "dl/")
    assert download_prefix(in_process, f"s3://{bucket}/dl/", tmp_path / "direct") == 3
    download_prefix(api, f"s3://{bucket}/dl/", tmp_path / "api")
    assert sorted(p.relative_to(tmp_path / "direct").as_posix() for p in (tmp_path / "direct").rglob("*.png")) == \
        ["a/1.png", "a/10.png", "b/2.png"]
    assert (tmp_path / "direct" / "b" / "2.png").read_bytes() == (tmp_path / "api" / "b" / "2.png").read_bytes()


def test_missing_inputs_and_buckets_are_named(movers, tmp_path):
    _, bucket, api, in_process = movers
    for objects in (in_process, api):        # SageMaker's words, for an empty prefix and for a missing bucket alike
        for uri, named in ((f"s3://{bucket}/nothing-here/", bucket), ("s3://no-such-bucket/data/", "no-such-bucket")):
            with pytest.raises(S3InputMissingError) as raised:
                download_prefix(objects, uri, tmp_path / "x", "us-east-1", "arn:aws:iam::123456789012:role/sm")
            assert str(raised.value) == (
                f'No S3 objects found under S3 URL "{uri}" given in input data source. Please ensure that the bucket '
                'exists in the selected region (us-east-1), that objects exist under that S3 prefix, and that the role '
                f'"arn:aws:iam::123456789012:role/sm" has "s3:ListBucket" permissions on bucket "{named}".')
    with pytest.raises(S3InputMissingError, match=f"s3://{bucket}/no/such.tar.gz"):
        in_process.read(bucket, "no/such.tar.gz")
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(BucketMissingError, match="no-such-bucket"):
        in_process.write("no-such-bucket", "k", tmp_path / "f")


def test_a_written_object_is_in_the_saved_state_when_the_write_returns(local_stack, movers, tmp_path):
    _, bucket, _, in_process = movers
    state_dir = tmp_path / "state"
    state.restore(local_stack.aws, bucket, state_dir)      # attaches the write-ahead journal to this stack
    try:
        (tmp_path / "model.tar.gz").write_bytes(b"artifact bytes")
        in_process.write(bucket, "saved/model.tar.gz", tmp_path / "model.tar.gz")
        saved = state.mirrored_objects(state_dir)[bucket]
        assert saved["saved/model.tar.gz"].read_bytes() == b"artifact bytes"
    finally:
        state.detach()

