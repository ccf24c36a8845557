"""The operator console's Flask app: one web page for the ML engineer's day, on the laptop or on AWS.

It calls only AWS APIs, through the boto3 clients ``clients_factory`` hands out, so the same code
runs against ``scones-local serve``'s stack (whose clients serve passes in) or an AWS account (the
default credential chain, ``scones-console``). It holds no credentials of its own. Pages:

    /pipelines                                 pipelines and their executions, start form
    /pipelines/<name>/executions/<id>          graph, steps, jobs, parameters (refreshes while running)
    /jobs/<training|processing|transform>/<n>  parameters, metrics, CloudWatch log
    /registry, /registry/versions/<v>          versions, evaluation, approval history, approve / reject
    /registry/compare?a=<v>&b=<w>              two versions side by side
    /endpoint                                  status, canary, alarms, invocation plots, deployments
    /captures                                  latest captured images, low-confidence share, drift
    /review                                    human review: pending reviews, answer one

Every AWS error becomes a readable page (status 502, or 404 for what does not exist), never a
traceback: the handlers below. Security: console/auth.py.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime

from botocore.exceptions import BotoCoreError, ClientError
from flask import Flask, Response, redirect, render_template, url_for
from werkzeug.exceptions import HTTPException

from console import formatting
from console.auth import ConsoleAuth
from console.context import EXTENSION, ClientsFactory, ConsoleContext
from scones_common.config import SconesConfig
from scones_common.errors import SconesError

log = logging.getLogger("console")
NOT_FOUND_CODES = {"ResourceNotFound", "ResourceNotFoundException", "NoSuchKey", "NoSuchBucket", "404"}


def _not_found(error: ClientError) -> bool:
    details = error.response.get("Error", {})
    code, message = str(details.get("Code", "")), str(details.get("Message", ""))
    return code in NOT_FOUND_CODES or (code == "ValidationException" and message.startswith("Could not find")) \
        or error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404


def _error_page(status: int, title: str, message: str, detail: str = "") -> Response:
    response = Response(render_template("error.html", title=title, message=message, detail=detail), status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _security_headers(response: Response) -> Response:
    """No script but our own file, no framing (clickjacking), no Referer to other sites. (``no-referrer`` would
    make browsers send ``Origin: null`` with our own forms, which the CSRF check refuses.)"""
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def create_app(clients_factory: ClientsFactory, token: str, allowed_hosts: Iterable[str], config: SconesConfig,
               target: str = "") -> Flask:
    """The console for ``config``'s pipeline, registry group and endpoint.

    ``clients_factory(service)`` returns a boto3 client (thread-safe; the server is threaded);
    ``allowed_hosts`` are the Host header values answered (see :func:`console.auth.loopback_hosts`);
    ``target`` names what the clients reach (shown in the header)."""
    from console.pages import captures, endpoint, pipelines, registry, review

    app = Flask(__name__)
    app.extensions[EXTENSION] = ConsoleContext(clients_factory, config, target or f"AWS {config.project.region}")
    ConsoleAuth(token, allowed_hosts).install(app)
    app.after_request(_security_headers)
    app.jinja_env.autoescape = True
    app.jinja_env.globals.update(fmt=formatting, environment=config.environment)
    app.jinja_env.globals["target"] = app.extensions[EXTENSION].target
    app.jinja_env.globals["now"] = lambda: datetime.now(UTC)
    for module in (pipelines, registry, endpoint, captures, review):
        app.register_blueprint(module.blueprint)

    @app.get("/")
    def home():
        return redirect(url_for("pipelines.index"))

    @app.errorhandler(ClientError)
    def aws_refused(error: ClientError):
        details = error.response.get("Error", {})
        operation = getattr(error, "operation_name", "") or "the request"
        status = 404 if _not_found(error) else 502
        return _error_page(status, "AWS said no" if status == 502 else "Not found",
                           f"{operation}: {details.get('Code', 'Error')}: {details.get('Message', str(error))}",
                           "The console calls AWS with the credentials of the process that runs it; "
                           "check that they reach the account and region you expect.")

    @app.errorhandler(BotoCoreError)
    def aws_unreachable(error: BotoCoreError):
        return _error_page(502, "AWS could not be reached", f"{type(error).__name__}: {error}",
                           "Are the credentials and endpoints set (for the local stack: source "
                           "<run-dir>/local-aws.env, and is scones-local serve still running)?")

    @app.errorhandler(SconesError)
    def refused_by_project(error: SconesError):
        return _error_page(400, "Not done", f"{type(error).__name__}: {error}")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        return _error_page(error.code or 500, error.name, error.description or "")

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        log.exception("console page failed")
        return _error_page(500, "The console failed on this page", f"{type(error).__name__}: {error}",
                           "This is a bug in the console; the server's log has the traceback.")

    return app
