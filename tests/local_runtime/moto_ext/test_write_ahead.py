"""The moto server answers only after the attached journal has taken the request's change; canaries for the
server pieces the wrapper replaces."""
import inspect

import pytest
from botocore.exceptions import ClientError

from local_runtime.aws import local_aws
from local_runtime.moto_ext import write_ahead
from local_runtime.moto_ext.write_ahead import Change, describe


class Recording:
    def __init__(self, fail: bool = False):
        self.changes, self.commits, self.fail = [], [], fail

    def after_request(self, change, touched):
        if self.fail:
            raise OSError(28, "No space left on device")
        self.changes.append((change, touched))

    def commit(self, touched):
        self.commits.append(touched)


def _environ(method, path, query="", target=None):
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query}
    if target:
        environ["HTTP_X_AMZ_TARGET"] = target
    return environ


@pytest.mark.parametrize("environ, expected", [
    (_environ("PUT", "/b/p/f/"), Change("s3", None, "PUT", "b", "p/f/")),
    (_environ("PUT", "/b/../../x"), Change("s3", None, "PUT", "b", "../../x")),
    (_environ("DELETE", "/b/k"), Change("s3", None, "DELETE", "b", "k")),
    (_environ("POST", "/b", "delete"), Change("s3", None, "POST", "b", None)),
    (_environ("POST", "/b/k", "uploadId=1"), Change("s3", None, "POST", "b", "k")),        # completes: appears
    (_environ("PUT", "/b/k", "partNumber=1&uploadId=1"), Change("s3", "unsaved", "PUT", "b", "k")),
    (_environ("PUT", "/b/k", "tagging"), Change("s3", "unsaved", "PUT", "b", "k")),
    (_environ("PUT", "/b"), Change("s3", None, "PUT", "b", None)),
    (_environ("POST", "/", target="SageMaker.UpdateModelPackage"), Change("sagemaker", "UpdateModelPackage", "POST")),
])
def test_requests_are_described_by_what_they_may_change(environ, expected):
    assert describe(environ, expected.service) == expected


def test_reads_are_told_apart():
    assert Change("sagemaker", "DescribeEndpoint", "POST").reads and not Change("sagemaker", "UpdateEndpoint", "POST").reads
    assert Change("s3", None, "GET", "b", "k").reads and not Change("s3", None, "PUT", "b", "k").reads


def no_retries(aws, service):
    """A client of this local AWS (its endpoint and key) that tries once: a 500 is not retried with backoff."""
    import boto3
    from botocore.config import Config

    base = aws.client(service)
    frozen = base._request_signer._credentials.get_frozen_credentials()
    return boto3.client(service, region_name=aws.region, endpoint_url=base.meta.endpoint_url,
                        aws_access_key_id=frozen.access_key, aws_secret_access_key=frozen.secret_key,
                        aws_session_token=frozen.token or None, config=Config(retries={"total_max_attempts": 1}))


def test_the_journal_sees_each_request_before_it_is_answered_and_a_failure_is_not_acknowledged():
    journal = Recording()
    with local_aws("us-east-1") as aws:
        write_ahead.attach(journal)
        aws.client("s3").create_bucket(Bucket="bucket-b")
        aws.client("s3").put_object(Bucket="bucket-b", Key="x/y", Body=b"1")
        aws.client("sagemaker").create_model_package_group(ModelPackageGroupName="g")
        changes = [change for change, _ in journal.changes]
        assert Change("s3", None, "PUT", "bucket-b", "x/y") in changes
        assert Change("sagemaker", "CreateModelPackageGroup", "POST") in changes

        write_ahead.attach(Recording(fail=True))
        with pytest.raises(ClientError) as raised:
            no_retries(aws, "sagemaker").create_model_package_group(ModelPackageGroupName="h")
        assert raised.value.response["Error"]["Code"] == "InternalFailure"
        assert "could not save this change" in raised.value.response["Error"]["Message"]
        with pytest.raises(ClientError, match="InternalError"):
            no_retries(aws, "s3").put_object(Bucket="bucket-b", Key="k", Body=b"1")
    assert write_ahead.attached() is None            # the server's end detaches it


def test_touched_kinds_are_committed_with_the_next_request_or_commit():
    journal = Recording()
    write_ahead.attach(journal)
    try:
        write_ahead.touch("sagemaker.endpoints")
        write_ahead.commit("sagemaker.jobs")
        assert journal.commits == [{"sagemaker.endpoints", "sagemaker.jobs"}]
    finally:
        write_ahead.detach(journal)
    write_ahead.commit("sagemaker.jobs")            # detached: nothing happens
    assert len(journal.commits) == 1


def test_canary_the_server_pieces_the_wrapper_replaces():
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    entry = inspect.getsource(ThreadedMotoServer._server_entry)
    assert "DomainDispatcherApplication(create_backend_app)" in entry and "make_server(" in entry
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    assert {"_ip_address", "_port", "_server_ready_event", "_server"} <= set(vars(server))
    assert "environ" in inspect.signature(DomainDispatcherApplication.get_application).parameters


def test_rest_reads_and_lambda_invocations_change_nothing_saved():
    assert describe(_environ("GET", "/2015-03-31/functions/f"), "lambda").reads
    invoke = describe(_environ("POST", "/2015-03-31/functions/f/invocations"), "lambda")
    assert invoke.action == "Invoke" and invoke.reads
    assert not describe(_environ("POST", "/2015-03-31/functions"), "lambda").reads      # CreateFunction
