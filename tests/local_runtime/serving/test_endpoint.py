"""The local endpoint through boto3's sagemaker-runtime client, and its data capture."""
import json
import uuid

import pytest
from botocore.exceptions import ClientError

from inference_workflow.capture_report import parse_jsonl
from tests.builders import solid_png


def test_invoke_returns_probabilities(local_stack):
    runtime = local_stack.client("sagemaker-runtime")
    response = runtime.invoke_endpoint(EndpointName=local_stack.config.endpoint.name, ContentType="image/png",
                                       Body=solid_png(255))
    probabilities = json.loads(response["Body"].read())
    assert probabilities[0] > 0.99 and abs(sum(probabilities) - 1) < 1e-5
    assert response["InvokedProductionVariant"] == "AllTraffic"


def test_every_answer_carries_a_request_id_as_on_aws(local_stack):
    runtime = local_stack.client("sagemaker-runtime")
    ids = [runtime.invoke_endpoint(EndpointName=local_stack.config.endpoint.name, ContentType="image/png",
                                   Body=solid_png(0))["ResponseMetadata"]["RequestId"] for _ in range(2)]
    with pytest.raises(ClientError) as info:
        runtime.invoke_endpoint(EndpointName=local_stack.config.endpoint.name, ContentType="image/png", Body=b"")
    ids.append(info.value.response["ResponseMetadata"]["RequestId"])
    assert len({str(uuid.UUID(request_id)) for request_id in ids}) == 3


def test_an_answer_carries_the_runtimes_headers_and_no_server_header(local_stack):
    runtime = local_stack.client("sagemaker-runtime")
    answer = runtime.invoke_endpoint(EndpointName=local_stack.config.endpoint.name, ContentType="image/png",
                                     Body=solid_png(0))
    headers = answer["ResponseMetadata"]["HTTPHeaders"]
    assert set(headers) == {"x-amzn-requestid", "x-amzn-invoked-production-variant", "date", "content-type",
                            "content-length"}       # no Connection field: HTTP/1.1 keeps the connection
    assert answer["InvokedProductionVariant"] == "AllTraffic" and answer["ContentType"] == "application/json"
    with pytest.raises(ClientError) as info:
        runtime.invoke_endpoint(EndpointName=local_stack.config.endpoint.name, ContentType="image/png", Body=b"x")
    headers = info.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert set(headers) == {"x-amzn-requestid", "x-amzn-errortype", "date", "content-type", "content-length"}
    assert headers["x-amzn-errortype"] == "ModelError" and headers["content-type"] == "application/json"


def test_a_connection_serves_one_request_after_another_as_the_runtimes_front_end_does(local_stack):
    """Keep-alive: boto3 reuses its connection instead of opening one per call (answers, errors included)."""
    import http.client
    from urllib.parse import urlparse

    from tests.signing import signed_headers

    url = urlparse(local_stack.server.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        path = f"/endpoints/{local_stack.config.endpoint.name}/invocations"
        for body, status in ((solid_png(0), 200), (b"x", 424), (solid_png(255), 200)):
            connection.request("POST", path, body, signed_headers(local_stack, "POST", local_stack.server.url + path,
                                                                   body, {"Content-Type": "image/png"}))
            answer = connection.getresponse()
            assert (answer.status, answer.getheader("Connection")) == (status, None) and answer.read()
            assert not answer.will_close
        connection.sock.getpeername()       # still the first connection: it was never closed
    finally:
        connection.close()


def test_bad_image_is_model_error_424(local_stack):
    runtime = local_stack.client("sagemaker-runtime")
    with pytest.raises(ClientError) as info:
        runtime.invoke_endpoint(EndpointName=local_stack.config.endpoint.name, ContentType="image/png", Body=b"not a png")
    assert info.value.response["Error"]["Code"] == "ModelError"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert "not a PNG or JPEG image" in info.value.response["Error"]["Message"]


def test_unknown_endpoint_is_validation_error(local_stack):
    with pytest.raises(ClientError) as info:
        local_stack.client("sagemaker-runtime").invoke_endpoint(EndpointName="nope", ContentType="image/png",
                                                                Body=solid_png(0))
    assert info.value.response["Error"]["Code"] == "ValidationError"


def test_container_contract_ping_and_invocations(local_stack):
    import urllib.request

    from tests.signing import signed_headers

    ping = f"{local_stack.server.url}/ping"        # signed, as every request to the local runtime must be
    assert urllib.request.urlopen(urllib.request.Request(ping, headers=signed_headers(local_stack, "GET", ping))
                                  ).status == 200
    url, body = f"{local_stack.server.url}/invocations", solid_png(0)
    request = urllib.request.Request(url, data=body, headers=signed_headers(
        local_stack, "POST", url, body, {"Content-Type": "application/x-image"}))
    assert json.loads(urllib.request.urlopen(request).read())[1] > 0.99


def test_capture_layout_and_records(local_stack):
    runtime = local_stack.client("sagemaker-runtime")
    for value in (0, 255, 140):
        runtime.invoke_endpoint(EndpointName=local_stack.config.endpoint.name, ContentType="image/png", Body=solid_png(value))
    local_stack.server.capture.flush()
    s3 = local_stack.client("s3")
    prefix = f"{local_stack.config.storage.prefix}/{local_stack.config.endpoint.capture_prefix}/{local_stack.config.endpoint.name}/AllTraffic/"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=local_stack.config.storage.bucket, Prefix=prefix)["Contents"]]
    assert all(k.endswith(".jsonl") and len(k[len(prefix):].split("/")) == 5 for k in keys)   # yyyy/mm/dd/hh/file
    lines = [line for k in keys for line in s3.get_object(Bucket=local_stack.config.storage.bucket, Key=k)["Body"].read().decode().splitlines()]
    record = json.loads(lines[-1])
    assert set(record) == {"captureData", "eventMetadata", "eventVersion"}
    assert record["captureData"]["endpointInput"]["encoding"] == "BASE64"
    assert record["captureData"]["endpointInput"]["observedContentType"] == "image/png"
    assert record["captureData"]["endpointOutput"]["encoding"] == "JSON"
    parsed = [r for k in keys for r in parse_jsonl(s3.get_object(Bucket=local_stack.config.storage.bucket, Key=k)["Body"].read().decode(), k)]
    assert len(parsed) >= 3 and any(r.image == solid_png(140) for r in parsed)
