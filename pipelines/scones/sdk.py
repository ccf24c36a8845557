"""The SageMaker Python SDK v3, imported in one place so an SDK change touches one file.

Importing this module prepares the SDK for offline definition building: no role lookup,
no telemetry, no INFO chatter on stdout.
"""
from __future__ import annotations

import logging
import os
import warnings


def skip_role_validation() -> None:
    """Building a ModelTrainer makes the SDK check the training role through IAM (SimulatePrincipalPolicy) unless
    SAGEMAKER_VALIDATE_ROLE is off; a definition only names the role. Called at every build, not only at import,
    so that it holds whatever the process did to its environment since."""
    os.environ.setdefault("SAGEMAKER_VALIDATE_ROLE", "false")


skip_role_validation()
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # some SDK modules build a client at import time
warnings.filterwarnings("ignore", message="Running within a PipelineSession")
for _name in ("sagemaker", "sagemaker.config", "botocore.credentials"):
    logging.getLogger(_name).setLevel(logging.ERROR)

import boto3  # noqa: E402
from sagemaker.core import image_uris  # noqa: E402,F401
from sagemaker.core.lambda_helper import Lambda  # noqa: E402,F401
from sagemaker.core.metadata_properties import MetadataProperties  # noqa: E402,F401
from sagemaker.core.model_metrics import MetricsSource, ModelMetrics  # noqa: E402,F401
from sagemaker.core.processing import ScriptProcessor  # noqa: E402,F401
from sagemaker.core.shapes import (  # noqa: E402,F401
    Channel,
    DataSource,
    OutputDataConfig,
    ProcessingInput,
    ProcessingOutput,
    ProcessingS3Input,
    ProcessingS3Output,
    S3DataSource,
    StoppingCondition,
)
from sagemaker.core.transformer import Transformer  # noqa: E402,F401
from sagemaker.core.workflow.conditions import ConditionEquals, ConditionGreaterThanOrEqualTo  # noqa: E402,F401
from sagemaker.core.workflow.execution_variables import ExecutionVariables  # noqa: E402,F401
from sagemaker.core.workflow.functions import Join, JsonGet  # noqa: E402,F401
from sagemaker.core.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString  # noqa: E402,F401
from sagemaker.core.workflow.pipeline_context import PipelineSession  # noqa: E402
from sagemaker.core.workflow.properties import PropertyFile  # noqa: E402,F401
from sagemaker.mlops.workflow.condition_step import ConditionStep  # noqa: E402,F401
from sagemaker.mlops.workflow.fail_step import FailStep  # noqa: E402,F401
from sagemaker.mlops.workflow.lambda_step import LambdaOutput, LambdaOutputTypeEnum, LambdaStep  # noqa: E402,F401
from sagemaker.mlops.workflow.model_step import ModelStep  # noqa: E402,F401
from sagemaker.mlops.workflow.pipeline import Pipeline  # noqa: E402,F401
from sagemaker.mlops.workflow.steps import CacheConfig, ProcessingStep, TrainingStep, TransformStep  # noqa: E402,F401
from sagemaker.serve.model_builder import ModelBuilder  # noqa: E402,F401
from sagemaker.train import ModelTrainer  # noqa: E402,F401
from sagemaker.train.configs import Compute  # noqa: E402,F401


def quiet_sdk_loggers() -> None:
    """SDK modules set their own levels as they are imported (some lazily): keep them quiet."""
    for name in [n for n in logging.root.manager.loggerDict if n.startswith("sagemaker")]:
        logging.getLogger(name).setLevel(logging.ERROR)


quiet_sdk_loggers()
warnings.filterwarnings("ignore", message="Lambda function won't be updated")



def _validate_each_config_once() -> None:
    """The SDK re-validates the defaults config against its JSON schema on every config lookup
    (~0.1 s each, ~80 lookups per definition). The config is immutable here: validate it once."""
    from sagemaker.core.config.config_manager import SageMakerConfig

    validate = SageMakerConfig.validate_sagemaker_config
    if getattr(validate, "_scones_once", False):
        return
    validated: set[int] = set()

    def validate_once(config=None):
        if id(config) not in validated:
            validate(config)
            validated.add(id(config))

    validate_once._scones_once = True
    SageMakerConfig.validate_sagemaker_config = staticmethod(validate_once)


_validate_each_config_once()

TELEMETRY_OPT_OUT = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}


def pipeline_session(region: str, bucket: str, boto_session: boto3.Session | None = None) -> PipelineSession:
    """A PipelineSession that builds definitions without calling AWS."""
    return PipelineSession(boto_session=boto_session or boto3.Session(region_name=region),
                           default_bucket=bucket, sagemaker_config=TELEMETRY_OPT_OUT)
