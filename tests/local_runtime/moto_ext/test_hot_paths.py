"""Canaries for the hot-path caches: fail loudly if a moto upgrade moves what they replace."""
import inspect

from local_runtime.moto_ext import hot_paths


def test_task_clients_are_installed_where_lambda_tasks_look_them_up():
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.utils import boto_client

    hot_paths.install()
    assert boto_client.boto_client_for is hot_paths.cached_boto_client_for
    assert lambda_eval_utils.boto_client_for is hot_paths.cached_boto_client_for
    assert "boto_client_for(" in inspect.getsource(lambda_eval_utils), "Lambda tasks no longer call boto_client_for"


def test_task_clients_are_reused_per_service_and_port(monkeypatch):
    monkeypatch.setenv("MOTO_PORT", "59999")
    first = hot_paths.cached_boto_client_for("us-east-1", "lambda")
    assert hot_paths.cached_boto_client_for("us-east-1", "lambda") is first
    assert first.meta.endpoint_url == "http://127.0.0.1:59999"
    assert hot_paths.cached_boto_client_for("us-east-1", "s3") is not first


def test_execution_worker_still_parses_through_the_replaced_method():
    from moto.stepfunctions.parser.backend import execution_worker

    source = inspect.getsource(execution_worker)
    assert "self._get_evaluation_entrypoint()" in source, "moto no longer gets its program from _get_evaluation_entrypoint"
    hot_paths.install()
    assert execution_worker.ExecutionWorker._get_evaluation_entrypoint is hot_paths._cached_entrypoint


def test_program_state_lives_in_the_environment_not_the_components():
    from moto.stepfunctions.parser.asl.component.common.retry import max_attempts_decl

    assert "env.heap" in inspect.getsource(max_attempts_decl), "retry counters moved out of env.heap: a shared program is unsafe"


def test_dispatch_list_is_computed_once_and_unchanged():
    from moto import backends
    from moto.moto_server import werkzeug_app

    hot_paths.install()
    assert backends.list_of_moto_modules() is backends.list_of_moto_modules()
    assert "s3" in backends.list_of_moto_modules() and "stepfunctions" in backends.list_of_moto_modules()
    assert "backends.list_of_moto_modules()" in inspect.getsource(werkzeug_app)
