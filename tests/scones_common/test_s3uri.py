import pytest

from scones_common.s3uri import InvalidS3UriError, S3Uri, parse_s3_uri


def test_parse_and_join():
    uri = parse_s3_uri("s3://bucket/a/b/")
    assert uri == S3Uri("bucket", "a/b/")
    assert str(uri.join("c", "/d.txt")) == "s3://bucket/a/b/c/d.txt"
    assert str(S3Uri("bucket", "").join("x")) == "s3://bucket/x"


@pytest.mark.parametrize("bad", ["https://x/y", "s3://", "bucket/key", ""])
def test_rejects_non_s3(bad):
    with pytest.raises(InvalidS3UriError):
        parse_s3_uri(bad)
