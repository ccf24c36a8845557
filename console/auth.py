"""Who may use the console: the login token, the session cookie, the Host check and CSRF tokens.

The console changes the registry (approve, reject) and starts pipelines with whatever credentials
its process has, so a browser must prove it was handed the URL, and another web site must not be
able to drive it through the user's browser:

- **Token.** Generated per start (``secrets.token_urlsafe``) and only ever written to the 0600
  ``local-aws.env`` or printed once. As with Jupyter, the URL carries it: ``/?token=…`` logs the
  browser in and redirects to the same URL without it, so it does not stay in the address bar,
  the history or a Referer.
- **Cookie.** The login is a Flask session cookie signed with a key made per start, ``HttpOnly``
  (no script reads it) and ``SameSite=Strict`` (no other site's page sends it). Its name carries a
  random suffix: cookies are per host, not per port, so two consoles on 127.0.0.1 must not
  overwrite each other's.
- **Host header.** Only ``127.0.0.1:<port>``, ``localhost:<port>`` or the configured host are
  answered: a DNS-rebinding page (evil.example resolving to 127.0.0.1) sends its own name.
- **CSRF.** Every form carries the session's CSRF token; a POST without it, or with an ``Origin``
  that is not the console's, is refused.

Without a valid session every page and form is refused with a readable 401/403 page; only the
stylesheet is public.
"""
from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable
from urllib.parse import urlencode, urlsplit

from flask import Flask, Response, redirect, render_template, request, session

TOKEN_PARAMETER = "token"
CSRF_FIELD = "csrf_token"
PUBLIC_ENDPOINTS = {"static"}


def new_token() -> str:
    """A login token: 256 bits, URL-safe (it travels in the console's URL)."""
    return secrets.token_urlsafe(32)


def _equal(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and hmac.compare_digest(a.encode(), b.encode())


def loopback_hosts(port: int, host: str | None = None) -> set[str]:
    """The Host header values a console bound to ``port`` answers: loopback names, plus ``host`` if given."""
    hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}
    if host and host not in ("127.0.0.1", "localhost"):
        hosts.add(f"{host}:{port}")
    return hosts


def refuse(status: int, title: str, message: str) -> Response:
    response = Response(render_template("refused.html", title=title, message=message), status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


class ConsoleAuth:
    """Installs the checks as ``before_request`` hooks and the CSRF token as a template global."""

    def __init__(self, token: str, allowed_hosts: Iterable[str]):
        if not token:
            raise ValueError("the console needs a login token")
        self.token = token
        self.allowed_hosts = {h.lower() for h in allowed_hosts}

    def install(self, app: Flask) -> None:
        app.secret_key = secrets.token_bytes(32)
        app.config.update(SESSION_COOKIE_NAME=f"scones_console_{secrets.token_hex(4)}",
                          SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict",
                          SESSION_COOKIE_SECURE=False,        # plain HTTP on loopback
                          PERMANENT_SESSION_LIFETIME=12 * 3600)
        app.before_request(self.check)
        app.jinja_env.globals["csrf_token"] = lambda: session.get("csrf", "")
        app.jinja_env.globals["csrf_field"] = CSRF_FIELD

    def host_allowed(self) -> bool:
        return request.host.lower() in self.allowed_hosts

    def check(self) -> Response | None:
        if not self.host_allowed():
            return refuse(403, "Host not allowed",
                          f"This console answers only on {', '.join(sorted(self.allowed_hosts))}; the request named "
                          f"{request.host!r}. Open the URL the console printed (or SCONES_CONSOLE_URL in "
                          "local-aws.env).")
        if request.endpoint in PUBLIC_ENDPOINTS:
            return None
        if TOKEN_PARAMETER in request.args:
            return self._login()
        if not session.get("auth"):
            return refuse(401, "Log in with the console's URL",
                          "This console needs the login token it was started with. Open the full URL: "
                          "scones-local serve writes it as SCONES_CONSOLE_URL into <run-dir>/local-aws.env, "
                          "scones-console prints it when it starts.")
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            return self._check_csrf()
        return None

    def _login(self) -> Response:
        if not _equal(request.args.get(TOKEN_PARAMETER), self.token):
            return refuse(403, "Wrong token",
                          "The token in this URL is not this console's (each start makes a new one). "
                          "Open the URL of the console that is running now.")
        session.clear()
        session["auth"] = True
        session["csrf"] = secrets.token_urlsafe(32)
        rest = [(k, v) for k, values in request.args.lists() if k != TOKEN_PARAMETER for v in values]
        location = request.path + (f"?{urlencode(rest)}" if rest else "")
        response = redirect(location, code=303)
        response.headers["Cache-Control"] = "no-store"
        return response

    def _check_csrf(self) -> Response | None:
        origin = request.headers.get("Origin")
        if origin is not None and (urlsplit(origin).netloc.lower() not in self.allowed_hosts):
            return refuse(403, "Cross-site request refused",
                          f"This form was sent from {origin!r}, not from the console's own pages.")
        if not _equal(request.form.get(CSRF_FIELD), session.get("csrf")):
            return refuse(403, "Cross-site request refused",
                          "The form did not carry this session's CSRF token (a page of another site, or a page "
                          "of an earlier console start). Reload the page and try again.")
        return None
