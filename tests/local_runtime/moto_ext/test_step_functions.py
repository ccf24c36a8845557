"""Canary for moto_ext/step_functions.py: fails loudly if a moto upgrade moves what it replaces."""
import inspect

from local_runtime.moto_ext import step_functions


def test_moto_still_names_unnamed_executions_none_and_ignores_history_paging():
    from moto.stepfunctions import responses
    from moto.stepfunctions.parser import models

    step_functions.install()
    assert responses.StepFunctionResponse.start_execution is step_functions._start_execution
    assert responses.StepFunctionResponse.get_execution_history is step_functions._get_execution_history
    original = step_functions._start_execution.__dict__["__scones_original__"]
    assert 'name = self._get_param("name")' in inspect.getsource(original), "moto names executions itself now"
    assert "exec_name = name" in inspect.getsource(models.StepFunctionsParserBackend.start_execution)
    assert "to_history_output" in inspect.getsource(models.StepFunctionsParserBackend.get_execution_history)
