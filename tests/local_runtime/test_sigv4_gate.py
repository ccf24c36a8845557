"""Serve only who signs: the local APIs answer requests signed with the stack's own key, and refuse everything
else with the service's own error, in its protocol's format; moto's control API is closed; no CORS grant for
origins nobody configured."""
import datetime
import json
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local_runtime import sigv4_gate

DEFINITION = json.dumps({"Version": "2020-12-01", "Steps": [{"Name": "Stop", "Type": "Fail",
                                                              "Arguments": {"ErrorMessage": "x"}}]})


def _client(stack, service, key_id, secret):
    return boto3.client(service, region_name=stack.aws.region, endpoint_url=stack.aws.url,
                        aws_access_key_id=key_id, aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 0}))


def _refused(call) -> tuple[str, int]:
    with pytest.raises(ClientError) as info:
        call()
    response = info.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def _raw(url, data=None, headers=None, method=None):
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_the_stacks_own_clients_sign_with_a_key_made_for_this_stack(local_stack):
    key = local_stack.aws.key
    assert key.access_key_id.startswith("AKIA") and len(key.access_key_id) == 20 and len(key.secret_access_key) == 40
    assert local_stack.client("sts").get_caller_identity()["Account"] == "123456789012"


def test_foreign_credentials_are_refused_and_create_nothing(local_stack):
    attacker = _client(local_stack, "sagemaker", "ATTACKER", "wrong-secret")
    code, status = _refused(lambda: attacker.create_pipeline(
        PipelineName="planted", PipelineDefinition=DEFINITION, RoleArn=local_stack.resources.role_arn))
    assert (code, status) == ("UnrecognizedClientException", 400)
    sm = local_stack.client("sagemaker")
    assert not sm.list_pipelines(PipelineNamePrefix="planted")["PipelineSummaries"]


@pytest.mark.parametrize("service, call, expected", [
    ("sagemaker", lambda c: c.list_pipelines(), ("InvalidSignatureException", 400)),
    ("stepfunctions", lambda c: c.list_state_machines(), ("InvalidSignatureException", 400)),
    ("lambda", lambda c: c.list_functions(), ("InvalidSignatureException", 403)),
    ("iam", lambda c: c.list_roles(), ("SignatureDoesNotMatch", 403)),
    ("sts", lambda c: c.get_caller_identity(), ("SignatureDoesNotMatch", 403)),
    ("s3", lambda c: c.list_buckets(), ("SignatureDoesNotMatch", 403)),
    ("cloudwatch", lambda c: c.list_metrics(), ("SignatureDoesNotMatch", 400)),
    ("logs", lambda c: c.describe_log_groups(), ("InvalidSignatureException", 400)),
])
def test_a_wrong_secret_gets_each_services_own_refusal(local_stack, service, call, expected):
    client = _client(local_stack, service, local_stack.aws.key.access_key_id, "not-the-secret")
    assert _refused(lambda: call(client)) == expected


@pytest.mark.parametrize("service, call, expected", [
    ("s3", lambda c: c.list_buckets(), ("InvalidAccessKeyId", 403)),
    ("iam", lambda c: c.list_roles(), ("InvalidClientTokenId", 403)),
    ("lambda", lambda c: c.list_functions(), ("UnrecognizedClientException", 403)),
])
def test_an_unknown_key_gets_each_services_own_refusal(local_stack, service, call, expected):
    assert _refused(lambda: call(_client(local_stack, service, "AKIAUNKNOWNUNKNOWN00", "x" * 40))) == expected


def test_unsigned_requests_are_missing_authentication(local_stack):
    status, headers, body = _raw(local_stack.aws.url + "/", data=b"{}", headers={
        "X-Amz-Target": "SageMaker.ListPipelines", "Content-Type": "application/x-amz-json-1.1"})
    assert status == 400 and json.loads(body)["__type"] == "MissingAuthenticationTokenException"
    status, _, body = _raw(local_stack.aws.url + "/", data=b"Action=ListRoles&Version=2010-05-08",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 403 and b"<Code>MissingAuthenticationToken</Code>" in body
    status, _, body = _raw(f"{local_stack.aws.url}/{local_stack.config.storage.bucket}/anything")
    assert status == 403 and b"<Code>AccessDenied</Code>" in body


def test_an_old_signature_is_refused(local_stack):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="POST", url=local_stack.aws.url + "/", data=b"{}", headers={
        "X-Amz-Target": "SageMaker.ListPipelines", "Content-Type": "application/x-amz-json-1.1"})
    key = local_stack.aws.key
    signer = SigV4Auth(Credentials(key.access_key_id, key.secret_access_key), "sagemaker", local_stack.aws.region)
    signer.add_auth(request)
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/", "RAW_URI": "/", "QUERY_STRING": "",
               **{("CONTENT_TYPE" if k.lower() == "content-type" else "HTTP_" + k.upper().replace("-", "_")): v
                  for k, v in request.headers.items()}, "HTTP_HOST": local_stack.aws.url.split("//")[1]}
    keys = {key.access_key_id: key.secret_access_key}
    assert sigv4_gate.verify(environ, b"{}", keys) is None
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=20)
    refused = sigv4_gate.verify(environ, b"{}", keys, now=later)
    assert refused.status == 400 and json.loads(refused.body)["message"].startswith("Signature expired")
    assert sigv4_gate.verify(environ, b"{} ", keys).status == 400      # another body: another signature


def test_presigned_urls_work_and_tampering_is_refused(local_stack):
    s3 = local_stack.client("s3")
    bucket = local_stack.config.storage.bucket
    s3.put_object(Bucket=bucket, Key="gate/presigned.txt", Body=b"signed bytes")
    v4 = boto3.client("s3", region_name=local_stack.aws.region, endpoint_url=local_stack.aws.url,
                      aws_access_key_id=local_stack.aws.key.access_key_id,
                      aws_secret_access_key=local_stack.aws.key.secret_access_key,
                      config=Config(signature_version="s3v4"))
    url = v4.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "gate/presigned.txt"})
    assert "X-Amz-Signature=" in url
    assert _raw(url)[0] == 200 and _raw(url)[2] == b"signed bytes"
    status, _, body = _raw(url.replace("gate/presigned.txt", "gate/other.txt"))
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body
    sigv2 = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "gate/presigned.txt"})
    status, _, body = _raw(sigv2)      # S3 refuses Signature Version 2 for buckets created since June 2020
    assert status == 400 and b"Please use AWS4-HMAC-SHA256" in body


def test_moto_control_api_is_closed(local_stack):
    status, _, _ = _raw(local_stack.aws.url + "/moto-api/reset", data=b"", method="POST")
    assert status == 403
    status, _, _ = _raw(local_stack.aws.url + "/moto-api/reset-auth", data=b"0", method="POST")
    assert status == 403
    assert local_stack.client("lambda").list_functions()["Functions"]        # nothing was reset


def test_no_cors_grant_for_an_unknown_origin(local_stack):
    status, headers, _ = _raw(local_stack.aws.url + "/", method="OPTIONS", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-amz-target,authorization"})
    assert status == 403 and not any(k.lower().startswith("access-control-") for k in headers)
    sm = local_stack.client("sagemaker")
    seen = {}
    sm.meta.events.register("before-send.sagemaker.ListPipelines",
                            lambda request, **_: request.headers.__setitem__("Origin", "https://evil.example"))
    sm.meta.events.register("after-call.sagemaker.ListPipelines",
                            lambda http_response, **_: seen.update(http_response.headers))
    try:
        sm.list_pipelines()
    finally:
        sm.meta.events.unregister("before-send.sagemaker.ListPipelines")
        sm.meta.events.unregister("after-call.sagemaker.ListPipelines")
    assert seen and not any(k.lower().startswith("access-control-") for k in seen)


def test_a_configured_origin_gets_its_grant():
    def app(environ, start_response):
        start_response("200 OK", [("Access-Control-Allow-Origin", "*"), ("Content-Length", "2")])
        return [b"ok"]

    gate = sigv4_gate.SigV4Gate(app, {}, allowed_origins=["http://localhost:3000"])
    answered = {}

    def start_response(status, headers, exc_info=None):
        answered.update(status=status, headers=dict(headers))

    environ = {"REQUEST_METHOD": "OPTIONS", "PATH_INFO": "/", "HTTP_ORIGIN": "http://localhost:3000",
               "HTTP_ACCESS_CONTROL_REQUEST_METHOD": "POST", "HTTP_ACCESS_CONTROL_REQUEST_HEADERS": "authorization"}
    gate(environ, start_response)
    assert answered["status"].startswith("200")
    assert answered["headers"]["Access-Control-Allow-Origin"] == "http://localhost:3000"
    gate({**environ, "HTTP_ORIGIN": "http://localhost:4000"}, start_response)
    assert answered["status"].startswith("403") and "Access-Control-Allow-Origin" not in answered["headers"]


def test_the_endpoint_runtime_serves_only_the_stacks_key(local_stack):
    from tests.builders import solid_png

    endpoint = local_stack.config.endpoint.name
    runtime = boto3.client("sagemaker-runtime", region_name=local_stack.aws.region,
                           endpoint_url=local_stack.aws.runtime_url, aws_access_key_id="ATTACKER",
                           aws_secret_access_key="wrong", config=Config(retries={"max_attempts": 0}))
    assert _refused(lambda: runtime.invoke_endpoint(EndpointName=endpoint, ContentType="image/png",
                                                    Body=solid_png(0))) == ("UnrecognizedClientException", 403)
    status, headers, body = _raw(f"{local_stack.aws.runtime_url}/endpoints/{endpoint}/invocations",
                                 data=solid_png(0), headers={"Content-Type": "image/png"})
    assert status == 403 and headers["x-amzn-ErrorType"].startswith("MissingAuthenticationTokenException")
    assert local_stack.client("sagemaker-runtime").invoke_endpoint(EndpointName=endpoint, ContentType="image/png",
                                                                   Body=solid_png(0))["Body"].read()
