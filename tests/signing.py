"""Requests signed with a local stack's key, for tests that speak HTTP themselves (the local APIs answer only
signed requests, as AWS does)."""
from __future__ import annotations

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def signed_headers(stack, method: str, url: str, body: bytes = b"", headers: dict | None = None,
                   service: str = "sagemaker") -> dict[str, str]:
    """``headers`` plus X-Amz-Date and Authorization: SigV4 by ``stack``'s key over the request as given."""
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    key = stack.aws.key
    SigV4Auth(Credentials(key.access_key_id, key.secret_access_key), service, stack.aws.region).add_auth(request)
    return dict(request.headers.items())
