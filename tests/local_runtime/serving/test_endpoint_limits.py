"""The local endpoint under bad input, on a real server: answered as the SageMaker runtime answers,
with a JSON error document, and normal requests still served afterwards.

What no SDK sends (Expect, chunked bodies, short bodies, unknown operations) goes through raw
sockets; everything else through boto3. HTTP framing itself is werkzeug's and not tested here.
"""
import http.client
import io
import json
import socket
import time
from contextlib import ExitStack
from urllib.parse import urlparse

import numpy as np
import pytest
from botocore.exceptions import ClientError, WaiterError
from PIL import Image

from local_runtime.serving.endpoint_server import MAX_PAYLOAD_BYTES
from tests.builders import png_bytes, solid_png, write_tiny_model_artifact
from tests.scones_common.test_images import encoded, png_16bit_rgb, png_declaring

READ_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from tests.local_stack import start_local_stack

    with ExitStack() as exits:
        yield start_local_stack(exits, tmp_path_factory.mktemp("limits"), read_timeout_seconds=READ_TIMEOUT)


def invoke(stack, body: bytes, content_type: str = "image/png", endpoint: str | None = None) -> list[float]:
    response = stack.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=endpoint or stack.config.endpoint.name, ContentType=content_type, Body=body)
    return json.loads(response["Body"].read())


def invoke_error(stack, body: bytes, content_type: str = "image/png", endpoint: str | None = None) -> dict:
    with pytest.raises(ClientError) as info:
        invoke(stack, body, content_type, endpoint)
    return info.value.response


def assert_still_serving(stack) -> None:
    assert invoke(stack, solid_png(255))[0] > 0.99


def connect(stack) -> socket.socket:
    address = urlparse(stack.server.url)
    return socket.create_connection((address.hostname, address.port), timeout=10)


def response_to(sock: socket.socket) -> tuple[int, dict, dict]:
    """Reads one HTTP response from the socket: status, headers, JSON body."""
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, dict(response.getheaders()), json.loads(response.read())


def raw(stack, data: bytes) -> tuple[int, dict, dict]:
    with connect(stack) as sock:
        sock.sendall(data)
        return response_to(sock)


def request_head(content_length: str, extra: str = "") -> bytes:
    return (f"POST /invocations HTTP/1.1\r\nHost: local\r\nContent-Type: image/png\r\n"
            f"Content-Length: {content_length}\r\n{extra}\r\n").encode()


# --- payload cap -------------------------------------------------------------------------------

def test_payload_over_6_mb_is_a_413_as_the_runtime_answers_it(stack):
    response = invoke_error(stack, b"\x00" * (MAX_PAYLOAD_BYTES + 1))
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert response["Error"]["Code"] == "413"        # the runtime's front end names no error type
    assert response["Error"]["Message"] == f"HTTP content length exceeded {MAX_PAYLOAD_BYTES} bytes."
    assert response["ResponseMetadata"]["RequestId"]
    assert_still_serving(stack)


def test_payload_of_exactly_6_mb_reaches_the_model(stack):
    response = invoke_error(stack, b"\x00" * MAX_PAYLOAD_BYTES)
    assert response["Error"]["Code"] == "ModelError" and response["OriginalStatusCode"] == 400


def test_oversize_with_expect_continue_is_refused_before_the_body_is_sent(stack):
    with connect(stack) as sock:
        sock.sendall(request_head(str(10 * MAX_PAYLOAD_BYTES), "Expect: 100-continue\r\n"))
        answer = b""
        while chunk := sock.recv(65536):          # the answer, then the server closes: no "100 Continue" first
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ") and b"\r\nConnection: close" in head
    assert json.loads(body)["Message"] == f"HTTP content length exceeded {MAX_PAYLOAD_BYTES} bytes."
    assert_still_serving(stack)


def signature_lines(stack, body: bytes) -> str:
    """X-Amz-Date and Authorization for ``POST /invocations`` to host ``local`` with ``body`` (image/png)."""
    from tests.signing import signed_headers

    headers = signed_headers(stack, "POST", "http://local/invocations", body, {"Content-Type": "image/png"})
    return "".join(f"{k}: {v}\r\n" for k, v in headers.items() if k in ("X-Amz-Date", "Authorization"))


def test_a_body_within_the_cap_waits_for_100_continue_and_is_answered(stack):
    image = solid_png(255)
    with connect(stack) as sock:
        sock.sendall(request_head(str(len(image)), "Expect: 100-continue\r\n" + signature_lines(stack, image)))
        interim = sock.recv(4096)       # the client sends nothing more until it has this
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n")
        sock.sendall(image)
        status, _, body = response_to(sock)
    assert status == 200 and body[0] > 0.99


def test_a_chunked_body_over_6_mb_is_a_413_and_one_within_is_served(stack):
    image = solid_png(0)
    chunked = f"{len(image):x}\r\n".encode() + image + b"\r\n0\r\n\r\n"
    head = b"POST /invocations HTTP/1.1\r\nHost: local\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n"
    status, _, body = raw(stack, head + signature_lines(stack, image).encode() + b"\r\n" + chunked)
    assert status == 200 and body[1] > 0.99
    exactly = f"{MAX_PAYLOAD_BYTES:x}\r\n".encode() + b"\x00" * MAX_PAYLOAD_BYTES + b"\r\n"
    signed = signature_lines(stack, b"\x00" * MAX_PAYLOAD_BYTES).encode() + b"\r\n"
    status, _, body = raw(stack, head + signed + exactly + b"0\r\n\r\n")
    assert status == 424 and body["OriginalStatusCode"] == 400       # reached the model, which refused it
    status, _, body = raw(stack, head + b"\r\n" + exactly + b"1\r\n\x00\r\n0\r\n\r\n")
    assert status == 413 and "exceeded" in body["Message"]
    assert_still_serving(stack)


# --- slow clients and what reaches the application -------------------------------------------------

def test_a_body_shorter_than_its_content_length_times_out_with_408(stack):
    started = time.monotonic()
    status, _, body = raw(stack, request_head("100") + b"only ten b")
    assert status == 408 and "did not arrive" in body["Message"]
    assert time.monotonic() - started < READ_TIMEOUT + 2
    assert_still_serving(stack)


def test_an_idle_connection_is_closed_at_the_read_timeout(stack):
    started = time.monotonic()
    with connect(stack) as sock:
        assert sock.recv(1) == b""
    assert READ_TIMEOUT * 0.9 < time.monotonic() - started < READ_TIMEOUT + 2


@pytest.mark.parametrize("data, status, error_type", [
    (b"POST /nowhere HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 404, "UnknownOperationException"),
    (b"GET /invocations HTTP/1.1\r\n\r\n", 404, "UnknownOperationException"),
    (b"DELETE /endpoints/x/invocations HTTP/1.1\r\n\r\n", 404, "UnknownOperationException"),
    (b"NOT HTTP AT ALL\r\n\r\n", 400, None),
    (b"POST /invocations HTTP/1.1\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n", 431, None)])
def test_what_is_no_operation_gets_a_json_error_document_with_a_request_id(stack, data, status, error_type):
    answered, headers, body = raw(stack, data)
    assert answered == status and headers["Content-Type"] == "application/json" and body["Message"]
    assert headers.get("x-amzn-ErrorType") == error_type and "x-amzn-RequestId" in headers and "Server" not in headers
    assert_still_serving(stack)


# --- what the model rejects: ModelError with the container's status ------------------------------

@pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")   # as scones_common.images sets it
def test_decompression_bomb_is_a_model_error_and_the_server_stays_up(stack):
    for width, height in ((10000, 10000), (100000, 100000)):
        response = invoke_error(stack, png_declaring(width, height))
        assert response["Error"]["Code"] == "ModelError" and response["OriginalStatusCode"] == 400
        assert "decompression-bomb guard" in response["OriginalMessage"]
    assert_still_serving(stack)


def test_model_error_carries_the_members_of_botocores_shape(stack):
    response = invoke_error(stack, b"not a png")
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert response["OriginalStatusCode"] == 400 and "not a PNG or JPEG image" in response["OriginalMessage"]
    assert response["Error"]["Message"].startswith('Received client error (400) from primary with message "')
    group = f"/aws/sagemaker/Endpoints/{stack.config.endpoint.name}"
    assert response["LogStreamArn"].endswith(f":log-group:{group}")
    logs = stack.client("logs")
    messages = [e["message"] for s in logs.describe_log_streams(logGroupName=group)["logStreams"]
                for e in logs.get_log_events(logGroupName=group, logStreamName=s["logStreamName"])["events"]]
    assert any("not a PNG or JPEG image" in m for m in messages)


@pytest.mark.parametrize("body", [b"", b"not a png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, png_bytes()[:80],
                                  b"GIF89a\x00\x00", b"\xff\xd8\xff\xe0" + b"\x00" * 20])
def test_no_object_reprs_in_error_messages(stack, body):
    response = invoke_error(stack, body)
    assert " at 0x" not in response["Error"]["Message"] and " at 0x" not in response["OriginalMessage"]


def test_unsupported_content_type_is_a_model_error_415(stack):
    response = invoke_error(stack, solid_png(0), content_type="text/csv")
    assert response["Error"]["Code"] == "ModelError" and response["OriginalStatusCode"] == 415


def test_16bit_png_predicts_like_its_8bit_version(stack):
    image = Image.open(io.BytesIO(png_bytes(fine_label=48, seed=3)))
    pixels = np.asarray(image.convert("RGB"))
    eight_bit = invoke(stack, encoded(Image.fromarray(pixels)))
    sixteen_bit = invoke(stack, png_16bit_rgb(pixels))
    grey16 = invoke(stack, encoded(Image.fromarray(np.asarray(image.convert("L")).astype(np.uint16) * 257)))
    grey8 = invoke(stack, encoded(image.convert("L")))
    assert sixteen_bit == pytest.approx(eight_bit, abs=1e-6) and grey16 == pytest.approx(grey8, abs=1e-6)
    assert max(grey8) < 0.99        # a mid-grey image: clipping it to white would have been confidently "bicycle"


# --- a model that cannot be loaded ----------------------------------------------------------------

def serve_artifact_at(stack, key: str, endpoint: str) -> None:
    """An endpoint on the local control plane whose model points at s3://<bucket>/<key> (present or not)."""
    sm, bucket = stack.client("sagemaker"), stack.config.storage.bucket
    sm.create_model(ModelName=endpoint, ExecutionRoleArn=stack.resources.role_arn,
                    PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/image-classification:1",
                                      "ModelDataUrl": f"s3://{bucket}/{key}"})
    sm.create_endpoint_config(EndpointConfigName=endpoint, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": endpoint, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=endpoint)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig={"Delay": 1, "MaxAttempts": 60})


def test_an_artifact_deleted_after_in_service_goes_on_serving_as_on_sagemaker(stack, tmp_path):
    """The container loaded the model when it passed /ping: the S3 object is not read again."""
    s3, bucket = stack.client("s3"), stack.config.storage.bucket
    s3.upload_file(str(write_tiny_model_artifact(tmp_path / "model.tar.gz")), bucket, "deleted/model.tar.gz")
    serve_artifact_at(stack, "deleted/model.tar.gz", "deleted-artifact")
    s3.delete_object(Bucket=bucket, Key="deleted/model.tar.gz")
    assert invoke(stack, solid_png(0), endpoint="deleted-artifact")[1] > 0.99


def test_a_restarted_server_without_the_artifact_answers_model_error_500_until_it_appears(stack, tmp_path):
    """State restored by ``scones-local serve`` whose model data is gone: each request says so, and once the
    artifact is back the next request loads it."""
    import boto3

    from local_runtime.serving.endpoint_server import EndpointServer

    s3, bucket = stack.client("s3"), stack.config.storage.bucket
    s3.upload_file(str(write_tiny_model_artifact(tmp_path / "model.tar.gz")), bucket, "missing/model.tar.gz")
    serve_artifact_at(stack, "missing/model.tar.gz", "missing-artifact")
    s3.delete_object(Bucket=bucket, Key="missing/model.tar.gz")
    restarted = EndpointServer(stack.aws, tmp_path / "restarted", "missing-artifact").start()
    try:
        runtime = boto3.client("sagemaker-runtime", region_name=stack.aws.region, endpoint_url=restarted.url,
                               aws_access_key_id=stack.aws.key.access_key_id,
                               aws_secret_access_key=stack.aws.key.secret_access_key)
        with pytest.raises(ClientError) as info:
            runtime.invoke_endpoint(EndpointName="missing-artifact", ContentType="image/png", Body=solid_png(0))
        response = info.value.response
        assert response["Error"]["Code"] == "ModelError" and response["OriginalStatusCode"] == 500
        assert "missing/model.tar.gz" in response["OriginalMessage"]
        assert response["Error"]["Message"].startswith("Received server error (500)")
        s3.upload_file(str(write_tiny_model_artifact(tmp_path / "model.tar.gz")), bucket, "missing/model.tar.gz")
        answer = runtime.invoke_endpoint(EndpointName="missing-artifact", ContentType="image/png", Body=solid_png(0))
        assert json.loads(answer["Body"].read())[1] > 0.99
    finally:
        restarted.stop()


def test_an_endpoint_on_a_corrupt_artifact_fails_its_health_check(stack):
    """SageMaker: Creating → Failed, "did not pass the ping health check"; invoking it is a ValidationError."""
    sm = stack.client("sagemaker")
    stack.client("s3").put_object(Bucket=stack.config.storage.bucket, Key="corrupt/model.tar.gz", Body=b"not a tarball")
    with pytest.raises(WaiterError):
        serve_artifact_at(stack, "corrupt/model.tar.gz", "corrupt-artifact")
    described = sm.describe_endpoint(EndpointName="corrupt-artifact")
    assert described["EndpointStatus"] == "Failed" and "did not pass the ping health check" in described["FailureReason"]
    assert "cannot be loaded" in described["FailureReason"]
    assert invoke_error(stack, solid_png(0), endpoint="corrupt-artifact")["Error"]["Code"] == "ValidationError"
    assert_still_serving(stack)


def test_a_burst_of_200_simultaneous_connections_is_answered_without_resets(stack):
    """The accept backlog and the worker threads hold a burst (the old server's backlog of 5 reset 146–175 of
    200). Every client connects at once; each must get a status line back. Loopback only, bounded in time."""
    import threading
    from collections import Counter

    clients = 200
    host, port = urlparse(stack.server.url).hostname, urlparse(stack.server.url).port
    assert host == "127.0.0.1"
    outcomes, lock, start = Counter(), threading.Lock(), threading.Barrier(clients)

    def client() -> None:
        start.wait()
        try:
            with socket.create_connection((host, port), timeout=30) as connection:
                connection.sendall(b"GET /ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                answer = b""
                while chunk := connection.recv(65536):
                    answer += chunk
            outcome = "answered" if answer.startswith(b"HTTP/1.1 ") else f"no status line: {answer[:40]!r}"
        except OSError as exc:               # ConnectionResetError, refused, timed out
            outcome = type(exc).__name__
        with lock:
            outcomes[outcome] += 1

    began = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert outcomes == {"answered": clients} and time.monotonic() - began < 30
