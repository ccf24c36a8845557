"""Serve only who signs: AWS Signature Version 4 checked in front of the local APIs, as AWS checks it.

Each local stack (``scones-local serve`` or ``run``) makes its own access key (:func:`new_access_key`);
it is written only to ``<run-dir>/local-aws.env`` (mode 0600) and handed to the stack's own clients.
Every request to the local AWS APIs and to the endpoint runtime must carry a valid SigV4 signature by
that key, in the ``Authorization`` header or as a presigned URL's query; anything else is refused
before moto sees it, with the error the service itself gives, in its protocol's format:

=================  =========================================  ======================================
protocol           services                                   unsigned / unknown key / bad signature
=================  =========================================  ======================================
JSON (awsJson)     SageMaker, Step Functions, Logs, Events,   400 ``MissingAuthenticationTokenException``
                   SQS; CloudWatch's CBOR too                 / ``UnrecognizedClientException`` /
                                                              ``InvalidSignatureException`` (``__type``)
REST-JSON          Lambda, SageMaker runtime                  the same codes, HTTP 403, x-amzn-ErrorType
query (XML)        IAM, STS, SNS                              403 ``MissingAuthenticationToken`` /
                                                              ``InvalidClientTokenId`` /
                                                              ``SignatureDoesNotMatch`` (ErrorResponse)
REST-XML           S3                                         403 ``AccessDenied`` /
                                                              ``InvalidAccessKeyId`` /
                                                              ``SignatureDoesNotMatch`` (Error)
=================  =========================================  ======================================

The signature is recomputed with botocore's own signers over the request as received
(:class:`botocore.auth.SigV4Auth`, :class:`~botocore.auth.S3SigV4Auth` for S3: no path
normalisation), over exactly the headers the client signed; the payload hash is the body's SHA-256,
or what ``x-amz-content-sha256`` declares (``UNSIGNED-PAYLOAD``, the streaming forms; a declared hash
must match the body, and ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD`` chunks are checked chunk by chunk).
Presigned URLs are checked as :class:`~botocore.auth.S3SigV4QueryAuth` signs them (every query
parameter but ``X-Amz-Signature``; ``UNSIGNED-PAYLOAD`` for S3), with their ``X-Amz-Expires``. A
signature more than 15 minutes away from now is refused, as AWS refuses it.

``/moto-api/*`` (moto's own control API: reset, configuration, state) is closed to every caller.
Cross-origin requests get no CORS grant unless their origin is configured
(``local_api.cors_origins``); S3 buckets' own CORS configuration (PutBucketCors) still answers for S3.
"""
from __future__ import annotations

import hashlib
import hmac
import io
import json
import re
import secrets
import string
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote
from xml.sax.saxutils import escape

MAX_SKEW = timedelta(minutes=15)
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
TIMESTAMP = "%Y%m%dT%H%M%SZ"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_QUERY_COMPATIBLE = {"monitoring": "Sender", "sqs": "Sender"}     # awsQueryCompatible: x-amzn-query-error
_JSON_CONTENT_TYPE = "application/x-amz-json-1.1"


@dataclass(frozen=True)
class AccessKey:
    access_key_id: str
    secret_access_key: str


def new_access_key() -> AccessKey:
    """A fresh key pair shaped like AWS's: ``AKIA`` + 16 upper-case letters and digits, a 40-character secret."""
    key_alphabet = string.ascii_uppercase + "234567"
    secret_alphabet = string.ascii_letters + string.digits + "+/"
    return AccessKey("AKIA" + "".join(secrets.choice(key_alphabet) for _ in range(16)),
                     "".join(secrets.choice(secret_alphabet) for _ in range(40)))


# -- refusals in each protocol's format ----------------------------------------------------------------------

@dataclass(frozen=True)
class Refusal:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def __call__(self, environ: dict, start_response) -> list[bytes]:
        """As a WSGI answer."""
        reason = {400: "Bad Request", 403: "Forbidden", 404: "Not Found"}.get(self.status, "Error")
        start_response(f"{self.status} {reason}", [*self.headers, ("Content-Length", str(len(self.body)))])
        return [b"" if environ.get("REQUEST_METHOD") == "HEAD" else self.body]


# situation -> protocol -> (code, HTTP status, message)
_SIGNATURE_MESSAGE = ("The request signature we calculated does not match the signature you provided. Check your "
                      "AWS Secret Access Key and signing method. Consult the service documentation for details.")
_TOKEN_MESSAGE = "The security token included in the request is invalid."
_CODES: dict[str, dict[str, tuple[str, int, str]]] = {
    "missing": {"json": ("MissingAuthenticationTokenException", 400, "Request is missing Authentication Token"),
                "rest-json": ("MissingAuthenticationTokenException", 403, "Missing Authentication Token"),
                "query": ("MissingAuthenticationToken", 403, "Request is missing Authentication Token"),
                "rest-xml": ("AccessDenied", 403, "Access Denied")},
    "unknown-key": {"json": ("UnrecognizedClientException", 400, _TOKEN_MESSAGE),
                    "rest-json": ("UnrecognizedClientException", 403, _TOKEN_MESSAGE),
                    "query": ("InvalidClientTokenId", 403, _TOKEN_MESSAGE),
                    "rest-xml": ("InvalidAccessKeyId", 403,
                                 "The AWS Access Key Id you provided does not exist in our records.")},
    "bad-token": {"json": ("UnrecognizedClientException", 400, _TOKEN_MESSAGE),
                  "rest-json": ("UnrecognizedClientException", 403, _TOKEN_MESSAGE),
                  "query": ("InvalidClientTokenId", 403, _TOKEN_MESSAGE),
                  "rest-xml": ("InvalidToken", 400, "The provided token is malformed or otherwise invalid.")},
    "bad-signature": {"json": ("InvalidSignatureException", 400, _SIGNATURE_MESSAGE),
                      "rest-json": ("InvalidSignatureException", 403, _SIGNATURE_MESSAGE),
                      "query": ("SignatureDoesNotMatch", 403, _SIGNATURE_MESSAGE),
                      "rest-xml": ("SignatureDoesNotMatch", 403,
                                   "The request signature we calculated does not match the signature you provided. "
                                   "Check your key and signing method.")},
    "expired": {"json": ("InvalidSignatureException", 400, "Signature expired"),
                "rest-json": ("InvalidSignatureException", 403, "Signature expired"),
                "query": ("SignatureDoesNotMatch", 403, "Signature expired"),
                "rest-xml": ("RequestTimeTooSkewed", 403,
                             "The difference between the request time and the current time is too large.")},
    "presign-expired": {"json": ("InvalidSignatureException", 400, "Signature expired"),
                        "rest-json": ("InvalidSignatureException", 403, "Signature expired"),
                        "query": ("SignatureDoesNotMatch", 403, "Signature expired"),
                        "rest-xml": ("AccessDenied", 403, "Request has expired")},
    "malformed": {"json": ("IncompleteSignatureException", 400, "Authorization header requires 'Credential', "
                                                                "'Signature' and 'SignedHeaders' parameters"),
                  "rest-json": ("IncompleteSignatureException", 403, "Authorization header requires 'Credential', "
                                                                     "'Signature' and 'SignedHeaders' parameters"),
                  "query": ("IncompleteSignature", 400, "Authorization header requires 'Credential', 'Signature' "
                                                        "and 'SignedHeaders' parameters"),
                  "rest-xml": ("AuthorizationHeaderMalformed", 400, "The authorization header is malformed.")},
    "unsupported": {"json": ("IncompleteSignatureException", 400, "Only AWS4-HMAC-SHA256 signatures are accepted"),
                    "rest-json": ("IncompleteSignatureException", 403,
                                  "Only AWS4-HMAC-SHA256 signatures are accepted"),
                    "query": ("IncompleteSignature", 400, "Only AWS4-HMAC-SHA256 signatures are accepted"),
                    "rest-xml": ("InvalidRequest", 400, "The authorization mechanism you have provided is not "
                                                        "supported. Please use AWS4-HMAC-SHA256.")},
    "payload-mismatch": {"json": ("InvalidSignatureException", 400, _SIGNATURE_MESSAGE),
                         "rest-json": ("InvalidSignatureException", 403, _SIGNATURE_MESSAGE),
                         "query": ("SignatureDoesNotMatch", 403, _SIGNATURE_MESSAGE),
                         "rest-xml": ("XAmzContentSHA256Mismatch", 400,
                                      "The provided 'x-amz-content-sha256' header does not match what was computed.")},
    "closed": {"json": ("AccessDeniedException", 403, "moto's control API is closed on the local stack"),
               "rest-json": ("AccessDeniedException", 403, "moto's control API is closed on the local stack"),
               "query": ("AccessDenied", 403, "moto's control API is closed on the local stack"),
               "rest-xml": ("AccessDenied", 403, "Access Denied")},
}


def _cbor_text(text: str) -> bytes:
    data = text.encode()
    size = len(data)
    if size < 24:
        head = bytes([0x60 | size])
    elif size < 256:
        head = bytes([0x78, size])
    else:
        head = bytes([0x79]) + size.to_bytes(2, "big")
    return head + data


def _cbor_map(items: dict[str, str]) -> bytes:
    return bytes([0xA0 | len(items)]) + b"".join(_cbor_text(k) + _cbor_text(v) for k, v in items.items())


def refusal(situation: str, protocol: str, service: str | None = None, detail: str | None = None,
            extra: Mapping[str, str] | None = None) -> Refusal:
    """The service's own answer to a request it does not accept, in ``protocol``'s error format."""
    flavour = "json" if protocol == "cbor" else protocol
    code, status, message = _CODES[situation][flavour]
    if detail:
        message = f"{message} {detail}".strip() if situation in ("expired", "presign-expired") else message
    request_id = str(uuid.uuid4())
    headers = [("x-amzn-RequestId", request_id)]
    if protocol in ("json", "cbor"):
        query_code = _CODES[situation]["query"][0]
        if service in _QUERY_COMPATIBLE:
            headers.append(("x-amzn-query-error", f"{query_code};{_QUERY_COMPATIBLE[service]}"))
        headers.append(("x-amzn-ErrorType", code))
        if protocol == "cbor":
            headers += [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]
            body = _cbor_map({"__type": code, "message": message})
        else:
            headers.append(("Content-Type", _JSON_CONTENT_TYPE))
            body = json.dumps({"__type": code, "message": message}).encode()
    elif protocol == "rest-json":
        headers += [("x-amzn-ErrorType", f"{code}:http://internal.amazon.com/coral/com.amazon.coral.service/"),
                    ("Content-Type", "application/json")]
        body = json.dumps({"Type": "User", "message": message}).encode()
    elif protocol == "query":
        body = (f'<ErrorResponse xmlns="https://{service or "sts"}.amazonaws.com/doc/"><Error><Type>Sender</Type>'
                f"<Code>{code}</Code><Message>{escape(message)}</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>").encode()
        headers.append(("Content-Type", "text/xml"))
    else:
        fields = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in (extra or {}).items())
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{escape(message)}'
                f"</Message>{fields}<RequestId>{request_id}</RequestId><HostId>{request_id}</HostId></Error>").encode()
        headers += [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
    return Refusal(status, headers, body)


# -- the request as received --------------------------------------------------------------------------------

_LAMBDA_PATH = re.compile(r"^/20\d\d-\d\d-\d\d/")
_SERVICE_PROTOCOLS = {"lambda": "rest-json", "s3": "rest-xml", "iam": "query", "sts": "query", "sns": "query",
                      "ses": "query", "elasticloadbalancing": "query", "autoscaling": "query", "rds": "query"}


def protocol_of(environ: dict, body: bytes, service: str | None) -> str:
    """Which error format the service the request is for answers in."""
    if (environ.get("HTTP_SMITHY_PROTOCOL") or "").lower() == "rpc-v2-cbor":
        return "cbor"
    if environ.get("HTTP_X_AMZ_TARGET"):
        return "json"
    content_type = (environ.get("CONTENT_TYPE") or "").lower()
    query = environ.get("QUERY_STRING") or ""
    if "Action=" in query or (content_type.startswith("application/x-www-form-urlencoded") and b"Action=" in body):
        return "query"
    if service in _SERVICE_PROTOCOLS:
        return _SERVICE_PROTOCOLS[service]
    path = environ.get("PATH_INFO") or "/"
    if _LAMBDA_PATH.match(path) or path.startswith("/endpoints/") or path in ("/ping", "/invocations"):
        return "rest-json"
    return "rest-xml"


def _header(environ: dict, name: str) -> str | None:
    lowered = name.lower()
    if lowered == "content-type":
        return environ.get("CONTENT_TYPE")
    if lowered == "content-length":
        return environ.get("CONTENT_LENGTH")
    return environ.get("HTTP_" + lowered.upper().replace("-", "_"))


def _raw_target(environ: dict) -> tuple[str, str]:
    """The path and query exactly as the client sent them (what it signed)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        path, _, query = raw.partition("?")
        if path.startswith(("http://", "https://")):        # an absolute-form request target
            path = "/" + path.split("://", 1)[1].partition("/")[2]
        return path or "/", query
    path = quote(environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8", "replace"), safe="/~")
    return path, environ.get("QUERY_STRING", "")


def _query_pairs(query: str) -> list[tuple[str, str]]:
    pairs = []
    for part in query.split("&") if query else []:
        key, _, value = part.partition("=")
        pairs.append((unquote(key), unquote(value)))
    return pairs


@dataclass
class _Signature:
    access_key: str
    date: str
    region: str
    service: str
    signed_headers: list[str]
    signature: str
    timestamp: str
    presigned: bool
    expires: int | None = None
    token: str | None = None


class _Malformed(Exception):
    pass


def _parse(environ: dict, query: str) -> _Signature | None:
    """The signature's parts, None when the request carries none (:class:`_Malformed` when it is unreadable)."""
    authorization = environ.get("HTTP_AUTHORIZATION")
    pairs = dict(_query_pairs(query))
    if authorization:
        if not authorization.startswith("AWS4-HMAC-SHA256 "):
            raise _Malformed("unsupported")
        fields = dict(part.strip().split("=", 1) for part in authorization[len("AWS4-HMAC-SHA256 "):].split(",")
                      if "=" in part)
        if not {"Credential", "SignedHeaders", "Signature"} <= set(fields):
            raise _Malformed("malformed")
        credential, signed, signature = fields["Credential"], fields["SignedHeaders"], fields["Signature"]
        timestamp = environ.get("HTTP_X_AMZ_DATE") or ""
        if not timestamp and environ.get("HTTP_DATE"):
            from email.utils import parsedate_to_datetime

            try:
                timestamp = parsedate_to_datetime(environ["HTTP_DATE"]).astimezone(UTC).strftime(TIMESTAMP)
            except (TypeError, ValueError):
                timestamp = ""
        token = environ.get("HTTP_X_AMZ_SECURITY_TOKEN")
        presigned, expires = False, None
    elif pairs.get("X-Amz-Algorithm") or pairs.get("X-Amz-Signature") or pairs.get("X-Amz-Credential"):
        if pairs.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
            raise _Malformed("unsupported")
        try:
            credential, signed, signature = (pairs["X-Amz-Credential"], pairs["X-Amz-SignedHeaders"],
                                             pairs["X-Amz-Signature"])
            timestamp, expires = pairs["X-Amz-Date"], int(pairs.get("X-Amz-Expires", "604800"))
        except (KeyError, ValueError):
            raise _Malformed("malformed") from None
        token = pairs.get("X-Amz-Security-Token")
        presigned = True
    elif pairs.get("AWSAccessKeyId") or pairs.get("Signature"):
        raise _Malformed("unsupported")          # SigV2 (query or presigned): AWS no longer accepts it either
    else:
        return None
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not timestamp:
        raise _Malformed("malformed")
    return _Signature(parts[0], parts[1], parts[2], parts[3], [h.strip().lower() for h in signed.split(";") if h],
                      signature.strip(), timestamp, presigned, expires, token)


def _verifier(signature: _Signature, secret: str, payload_hash: str | None):
    """botocore's signer for the service, over exactly the headers the client signed."""
    from botocore.auth import S3SigV4Auth, SigV4Auth
    from botocore.credentials import Credentials

    base = S3SigV4Auth if signature.service == "s3" else SigV4Auth

    class Verifier(base):
        def headers_to_sign(self, request):
            from botocore.compat import HTTPHeaders

            headers = HTTPHeaders()
            for name, value in request.headers.items():
                headers[name.lower()] = value
            return headers

        def payload(self, request):
            return payload_hash if payload_hash is not None else super().payload(request)

    return Verifier(Credentials(signature.access_key, secret), signature.service, signature.region)


def _expected(environ: dict, body: bytes, signature: _Signature, secret: str, path: str,
              query: str) -> tuple[str, str, str]:
    """(the signature the request should carry, the canonical request, the string to sign)."""
    from botocore.awsrequest import AWSRequest

    headers = {}
    for name in signature.signed_headers:
        value = _header(environ, name)
        if value is None:
            raise _Malformed("bad-signature")
        headers[name] = value
    pairs = [(k, v) for k, v in _query_pairs(query) if not (signature.presigned and k == "X-Amz-Signature")]
    payload_hash = None
    if signature.presigned:
        payload_hash = UNSIGNED_PAYLOAD if signature.service == "s3" else hashlib.sha256(body).hexdigest()
    verifier = _verifier(signature, secret, payload_hash)
    request = AWSRequest(method=environ.get("REQUEST_METHOD", "GET"),
                         url=f"http://{headers.get('host') or environ.get('HTTP_HOST', 'localhost')}{path}",
                         headers=headers, data=body)
    request.params = pairs          # the canonical query string from the decoded pairs, encoded as SigV4 says
    request.context["timestamp"] = signature.timestamp
    canonical = verifier.canonical_request(request)
    string_to_sign = verifier.string_to_sign(request, canonical)
    return verifier.signature(string_to_sign, request), canonical, string_to_sign


def _chunks_signed(body: bytes, seed: str, signature: _Signature, secret: str) -> bool:
    """``STREAMING-AWS4-HMAC-SHA256-PAYLOAD``: each chunk's signature chains from the previous one."""
    key = f"AWS4{secret}".encode()
    for part in (signature.date, signature.region, signature.service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    scope = f"{signature.date}/{signature.region}/{signature.service}/aws4_request"
    previous, stream = seed, io.BytesIO(body)
    while True:
        header = stream.readline().rstrip(b"\r\n").decode("latin-1")
        size_text, _, extension = header.partition(";")
        if not extension.startswith("chunk-signature="):
            return False
        size = int(size_text, 16)
        data = stream.read(size)
        stream.read(2)
        to_sign = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", signature.timestamp, scope, previous, EMPTY_SHA256,
                             hashlib.sha256(data).hexdigest()])
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, extension[len("chunk-signature="):]):
            return False
        previous = expected
        if size == 0:
            return True


def verify(environ: dict, body: bytes, keys: Mapping[str, str], now: datetime | None = None,
           protocol: str | None = None) -> Refusal | None:
    """None when the request is signed by one of ``keys`` (access key id -> secret), else the service's refusal."""
    path, query = _raw_target(environ)
    try:
        signature = _parse(environ, query)
    except _Malformed as exc:
        return refusal(str(exc), protocol or protocol_of(environ, body, None))
    if signature is None:
        return refusal("missing", protocol or protocol_of(environ, body, None))
    protocol = protocol or protocol_of(environ, body, signature.service)
    secret = keys.get(signature.access_key)
    if secret is None:
        return refusal("unknown-key", protocol, signature.service, extra={"AWSAccessKeyId": signature.access_key})
    if signature.token is not None:       # the local stack issues no session tokens
        return refusal("bad-token", protocol, signature.service)
    try:
        signed_at = datetime.strptime(signature.timestamp, TIMESTAMP).replace(tzinfo=UTC)
    except ValueError:
        return refusal("malformed", protocol, signature.service)
    now = now or datetime.now(UTC)
    if signature.presigned:
        if now > signed_at + timedelta(seconds=signature.expires or 0) or signed_at - now > MAX_SKEW:
            return refusal("presign-expired", protocol, signature.service)
    elif abs(now - signed_at) > MAX_SKEW:
        return refusal("expired", protocol, signature.service,
                       f": {signature.timestamp} is now earlier than {(now - MAX_SKEW).strftime(TIMESTAMP)}"
                       if signed_at < now else f": {signature.timestamp} is later than the request's time allows")
    if signature.date != signature.timestamp[:8]:
        return refusal("bad-signature", protocol, signature.service)
    try:
        expected, canonical, string_to_sign = _expected(environ, body, signature, secret, path, query)
    except _Malformed as exc:
        return refusal(str(exc), protocol, signature.service)
    if not hmac.compare_digest(expected, signature.signature):
        return refusal("bad-signature", protocol, signature.service,
                       extra={"AWSAccessKeyId": signature.access_key, "StringToSign": string_to_sign,
                              "CanonicalRequest": canonical})
    declared = environ.get("HTTP_X_AMZ_CONTENT_SHA256")
    if declared and re.fullmatch(r"[0-9a-f]{64}", declared) and declared != hashlib.sha256(body).hexdigest():
        return refusal("payload-mismatch", protocol, signature.service)
    if declared == STREAMING_SIGNED and not _chunks_signed(body, signature.signature, signature, secret):
        return refusal("bad-signature", protocol, signature.service)
    return None


# -- the WSGI layer -----------------------------------------------------------------------------------------

def read_body(environ: dict) -> bytes:
    """The whole request body (by Content-Length, or to the end of a chunked one); the environ is given a fresh
    stream holding it, so the application behind reads it as sent."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    if environ.get("wsgi.input_terminated"):
        body = stream.read()
    else:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        body = stream.read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


_S3_PREFLIGHT = re.compile(r"^/[^/]+(/|$)")


class SigV4Gate:
    """The WSGI layer in front of moto: only requests signed by ``keys`` reach ``app``."""

    def __init__(self, app: Callable, keys: Callable[[], Mapping[str, str]] | Mapping[str, str],
                 allowed_origins: Iterable[str] = ()):
        self.app = app
        self._keys = keys if callable(keys) else (lambda: keys)
        self.allowed_origins = frozenset(o.rstrip("/") for o in allowed_origins)

    def __call__(self, environ: dict, start_response) -> Any:
        path = environ.get("PATH_INFO") or "/"
        origin = environ.get("HTTP_ORIGIN")
        if path.startswith("/moto-api"):
            body = read_body(environ)
            return refusal("closed", protocol_of(environ, body, None))(environ, start_response)
        if environ.get("REQUEST_METHOD") == "OPTIONS" and origin and environ.get(
                "HTTP_ACCESS_CONTROL_REQUEST_METHOD"):
            return self._preflight(environ, start_response, origin)
        body = read_body(environ)
        refused = verify(environ, body, self._keys())
        if refused is not None:
            return refused(environ, start_response)
        if not origin:
            return self.app(environ, start_response)

        def with_cors(status, headers, exc_info=None):
            kept = [(k, v) for k, v in headers if not k.lower().startswith("access-control-")
                    or self._s3_request(environ)]
            if origin.rstrip("/") in self.allowed_origins:
                kept = [(k, v) for k, v in kept if not k.lower().startswith("access-control-")]
                kept += [("Access-Control-Allow-Origin", origin), ("Vary", "Origin"),
                         ("Access-Control-Expose-Headers", "x-amzn-RequestId, x-amzn-ErrorType, x-amz-request-id, "
                                                           "ETag, x-amz-version-id, x-amz-function-error")]
            return start_response(status, kept, exc_info)
        return self.app(environ, with_cors)

    @staticmethod
    def _s3_request(environ: dict) -> bool:
        return protocol_of(environ, b"", None) == "rest-xml"

    def _preflight(self, environ: dict, start_response, origin: str) -> Any:
        """A browser asking whether ``origin`` may call: yes only for configured origins (and, for S3, what the
        bucket's own CORS configuration allows); never for anyone else."""
        if origin.rstrip("/") in self.allowed_origins:
            headers = [("Access-Control-Allow-Origin", origin), ("Vary", "Origin"),
                       ("Access-Control-Allow-Methods", environ["HTTP_ACCESS_CONTROL_REQUEST_METHOD"]),
                       ("Access-Control-Max-Age", "600"), ("Content-Length", "0")]
            requested = environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS")
            if requested:
                headers.append(("Access-Control-Allow-Headers", requested))
            start_response("200 OK", headers)
            return [b""]
        if self._s3_request(environ) and _S3_PREFLIGHT.match(environ.get("PATH_INFO") or "/"):
            return self.app(environ, start_response)      # S3 answers from the bucket's CORS configuration
        body = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessForbidden</Code><Message>CORSResponse: " \
               b"This CORS request is not allowed.</Message></Error>"
        start_response("403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
        return [body]


def close_global_cors() -> None:
    """moto answers every origin (flask-cors on every backend); the gate decides instead. Called before the server
    creates its backend applications."""
    from moto.moto_server import werkzeug_app

    werkzeug_app.DISABLE_GLOBAL_CORS = True



class RuntimeSignatures:
    """The same check for the endpoint runtime (``serving/endpoint_server.py``), which answers in REST-JSON as the
    SageMaker runtime does. ``clients`` is the stack's :class:`~local_runtime.aws.LocalAws`; without a key (a runtime
    built on clients that have none) nothing is checked."""

    def __init__(self, clients):
        key = getattr(clients, "key", None)
        self.keys = {key.access_key_id: key.secret_access_key} if key is not None else None

    def refused(self, environ: dict, body: bytes) -> tuple[int, dict[str, str], bytes] | None:
        """(status, headers, body) of the refusal, or None when the request is signed by the stack's key."""
        if self.keys is None:
            return None
        answer = verify(environ, body, self.keys, protocol="rest-json")
        return None if answer is None else (answer.status, dict(answer.headers), answer.body)
