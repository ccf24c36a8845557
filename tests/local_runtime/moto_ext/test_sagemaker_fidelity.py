"""Canary for moto_ext/sagemaker_fidelity.py, and its Fail-step check on definitions."""
import inspect
import json

import pytest

from local_runtime.moto_ext import sagemaker_fidelity


def test_moto_still_answers_validation_for_unknown_pipelines_and_omits_default_weights():
    from moto.sagemaker import models, utils

    assert "raise ValidationError" in inspect.getsource(utils.get_pipeline_from_name)
    assert 'production_variant.get("InitialVariantWeight", None)' in inspect.getsource(
        getattr(models.FakeEndpoint._process_production_variants, "__wrapped__",
                models.FakeEndpoint._process_production_variants))
    sagemaker_fidelity.install()
    assert models.get_pipeline_from_name is sagemaker_fidelity.get_pipeline_from_name


@pytest.mark.parametrize("steps, refused", [
    ([{"Name": "F", "Type": "Fail"}, {"Name": "A", "Type": "Lambda", "DependsOn": ["F"]}], True),
    ([{"Name": "C", "Type": "Condition", "Arguments": {"IfSteps": [{"Name": "F", "Type": "Fail"}], "ElseSteps": []}},
      {"Name": "A", "Type": "Lambda", "Arguments": {"X": {"Get": "Steps.F.Properties"}}}], True),
    ([{"Name": "F", "Type": "Fail", "DependsOn": ["A"]}, {"Name": "A", "Type": "Lambda"}], False)])
def test_a_dependency_on_a_fail_step_is_refused(steps, refused):
    definition = json.dumps({"Steps": steps})
    if refused:
        with pytest.raises(sagemaker_fidelity.FailStepDependencyError, match="depends on Fail step F"):
            sagemaker_fidelity.check_fail_dependencies(definition)
    else:
        sagemaker_fidelity.check_fail_dependencies(definition)
