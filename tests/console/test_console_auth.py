"""The console's security model, without AWS: token login, cookie, Host check, CSRF, headers, and readable
error pages when AWS fails (the clients here only fail)."""
import re

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from console.app import create_app
from console.auth import loopback_hosts
from scones_common.config import load_config

BASE = "http://127.0.0.1:5000"
TOKEN = "the-token"


class FailingClients:
    """Every AWS call raises ``error``: what the console shows then is the point."""

    def __init__(self, error: Exception):
        self.error = error

    def __call__(self, service):
        return self

    def __getattr__(self, name):
        def call(*args, **kwargs):
            raise self.error
        return call


@pytest.fixture(scope="module")
def config():
    return load_config(environment="local", environ={})


def _app(config, error: Exception | None = None):
    error = error or ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed here"}},
                                 "ListPipelines")
    return create_app(FailingClients(error), TOKEN, loopback_hosts(5000), config, "test")


def _logged_in(app):
    client = app.test_client()
    assert client.get(f"/?token={TOKEN}", base_url=BASE).status_code == 303
    return client


def _csrf(client) -> str:
    with client.session_transaction(base_url=BASE) as session:
        return session["csrf"]


def test_without_the_token_every_page_and_form_is_refused_readably(config):
    client = _app(config).test_client()
    for path in ("/", "/pipelines", "/registry", "/registry/versions/1", "/endpoint", "/captures", "/review",
                 "/jobs/training/x"):
        response = client.get(path, base_url=BASE)
        assert response.status_code == 401 and b"login token" in response.data, path
    response = client.post("/registry/versions/1/approve", data={"reason": "x"}, base_url=BASE)
    assert response.status_code == 401
    wrong = client.get("/pipelines?token=guess", base_url=BASE)
    assert wrong.status_code == 403 and b"Wrong token" in wrong.data
    assert client.get("/static/console.css", base_url=BASE).status_code == 200      # the stylesheet is public


def test_the_token_logs_in_with_a_strict_httponly_cookie_and_is_dropped_from_the_url(config):
    client = _app(config).test_client()
    response = client.get(f"/registry?token={TOKEN}&x=1", base_url=BASE)
    assert response.status_code == 303 and response.headers["Location"] == "/registry?x=1"
    cookie = response.headers["Set-Cookie"]
    assert re.match(r"scones_console_[0-9a-f]{8}=", cookie) and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert TOKEN not in cookie
    page = client.get("/review", base_url=BASE)      # logged in: the page reaches AWS (which, here, says no)
    assert page.status_code == 502 and b"AccessDeniedException" in page.data


def test_two_consoles_do_not_share_a_login(config):
    first, second = _app(config), _app(config)
    assert first.config["SESSION_COOKIE_NAME"] != second.config["SESSION_COOKIE_NAME"]
    client = _logged_in(first)
    assert client.get("/review", base_url=BASE).status_code == 502        # past the login: AWS said no
    assert second.test_client().get("/review", base_url=BASE).status_code == 401


@pytest.mark.parametrize("host", ["evil.example:5000", "127.0.0.1:5001", "localhost", "127.0.0.1.nip.io:5000"])
def test_other_host_names_are_refused_even_with_the_token(config, host):
    response = _app(config).test_client().get(f"/review?token={TOKEN}", base_url=f"http://{host}")
    assert response.status_code == 403 and b"Host not allowed" in response.data


def test_localhost_and_a_configured_host_are_answered(config):
    app = create_app(FailingClients(RuntimeError()), TOKEN, loopback_hosts(5000, "10.0.0.5"), config)
    for base in ("http://localhost:5000", "http://10.0.0.5:5000"):
        assert app.test_client().get(f"/review?token={TOKEN}", base_url=base).status_code == 303


def test_forms_need_the_sessions_csrf_token_and_a_same_origin(config):
    client = _logged_in(_app(config))
    csrf = _csrf(client)
    missing = client.post("/registry/versions/1/approve", data={"reason": "good"}, base_url=BASE)
    assert missing.status_code == 403 and b"CSRF" in missing.data
    wrong = client.post("/registry/versions/1/approve", data={"reason": "good", "csrf_token": "x" + csrf}, base_url=BASE)
    assert wrong.status_code == 403
    foreign = client.post("/registry/versions/1/approve", data={"reason": "good", "csrf_token": csrf}, base_url=BASE,
                          headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403 and b"evil.example" in foreign.data
    # with the token and its own origin, the request reaches AWS (which, here, says no)
    passed = client.post("/registry/versions/1/approve", data={"reason": "good", "csrf_token": csrf}, base_url=BASE,
                         headers={"Origin": BASE})
    assert passed.status_code == 502 and b"AccessDeniedException" in passed.data


def test_pages_carry_a_strict_policy(config):
    client = _logged_in(_app(config))
    headers = client.get("/review", base_url=BASE).headers
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY" and headers["Referrer-Policy"] == "same-origin"
    assert headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("error, status, text", [
    (ClientError({"Error": {"Code": "AccessDeniedException", "Message": "User is not authorized"}}, "ListPipelines"),
     502, b"ListPipelines: AccessDeniedException: User is not authorized"),
    (ClientError({"Error": {"Code": "ResourceNotFound", "Message": "Pipeline x does not exist"}}, "ListPipelines"),
     404, b"Pipeline x does not exist"),
    (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), 502, b"Could not connect to the endpoint URL"),
    (ZeroDivisionError("boom"), 500, b"ZeroDivisionError: boom"),
])
def test_every_failure_is_a_readable_page_never_a_traceback(config, error, status, text):
    client = _logged_in(_app(config, error))
    for path in ("/pipelines", "/registry", "/endpoint", "/captures"):
        response = client.get(path, base_url=BASE)
        assert response.status_code == status and text in response.data, path
        assert b"Traceback" not in response.data and b"<nav>" in response.data
