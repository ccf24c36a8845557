"""The one configuration loader, on pydantic-settings.

Layers, later wins: ``configs/pipeline.yaml`` < ``configs/environments/<env>.yaml``
< ``SCONES__SECTION__KEY`` environment variables < explicit overrides (CLI flags).
Every value is checked when the configuration is loaded, so a typo fails at start-up with the
key, the bad value and what is allowed, not an hour into a training job.

Sections that belong to one part only (``local_trainer:``, the local stand-in's seed and
threads) sit in the same files but are declared by that part, as a subclass of
:class:`SconesConfig` passed as ``schema``; every other schema skips them, so a cloud command
never parses them.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, ClassVar

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from scones_common import algorithm_contract
from scones_common.errors import SconesError

ENV_PREFIX = "SCONES__"
ENVIRONMENT_VARIABLE = f"{ENV_PREFIX}ENVIRONMENT"     # picks the environment when no flag does
ENVIRONMENTS = ("local", "dev", "prod")
APPROVAL_STATUSES = ("PendingManualApproval", "Approved", "Rejected")
NO_AUGMENTATION = "none"          # config only: augmentation_type is then left out of the request
OFFICIAL_SOURCE = "cifar-100"
PART_SECTIONS = ("local_trainer",)   # declared by the part that reads them (schema subclasses)
SEED_MAX = 10**9

# Whole-string, ASCII-only patterns (used with fullmatch): AWS refuses a trailing newline or a non-ASCII digit.
_INSTANCE_TYPE = re.compile(r"ml\.[a-z][a-z0-9-]*\.(\d*xlarge|large|medium|small|metal)", re.ASCII)
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", re.ASCII)
_REGION = re.compile(r"[a-z]{2}(-gov)?-[a-z]+-\d", re.ASCII)
_SCHEDULE = re.compile(r"cron\(([^ )]+ ){5}[^ )]+\)|rate\(\d+ (minute|minutes|hour|hours|day|days)\)", re.ASCII)
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+", re.ASCII)
_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", re.ASCII)
_DURATION = re.compile(r"P(T?\d+[YMWDHS])+", re.ASCII)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+", re.ASCII)
_WHOLE_NUMBER = re.compile(r"\s*-?\d+\s*", re.ASCII)


def config_dir() -> Path:
    """``configs/`` of the checkout (where users edit it), else the copy inside the installed wheel."""
    checkout = Path(__file__).resolve().parent.parent / "configs"
    if checkout.is_dir():
        return checkout
    return Path(str(resources.files("scones_common") / "configs"))


class ConfigError(SconesError, ValueError):
    """A configuration value is missing, of the wrong type or out of range."""

    def __init__(self, key: str, value: Any, expected: str, fix: str | None = None):
        self.key, self.value, self.expected = key, value, expected
        fix = fix or (f"Fix it in configs/, in ${ENV_PREFIX}{key.upper().replace('.', '__')} "
                      "or on the command line.")
        shown = repr(value)
        if len(shown) > 120:
            shown = f"{shown[:100]}… ({len(shown)} characters)"
        super().__init__(f"config {key} = {shown} is invalid: expected {expected}. {fix}")


# --- value rules: each raises ValueError(<what is expected>), which becomes a ConfigError -------------------------

def _rule(predicate: Callable[[Any], bool], expected: str) -> AfterValidator:
    def check(value: Any) -> Any:
        if not predicate(value):
            raise ValueError(expected)
        return value
    return AfterValidator(check)


def _in_range(lo: float, hi: float) -> AfterValidator:
    return _rule(lambda v: lo <= v <= hi, f"a number in [{lo}, {hi}]")


def _whole_in(lo: int, hi: int) -> AfterValidator:
    return _rule(lambda v: lo <= v <= hi, f"a whole number in [{lo}, {hi}]")


def _one_of(*options: str) -> AfterValidator:
    return _rule(lambda v: v in options, "one of " + ", ".join(options))


def _matches(pattern: re.Pattern, example: str) -> AfterValidator:
    return _rule(lambda v: bool(pattern.fullmatch(v)), f"a value like {example}")


def _algorithm(name: str, narrower: tuple[Callable[[Any], bool], str] | None = None) -> AfterValidator:
    """The built-in algorithm's documented rule for hyperparameter ``name`` (plus an optional narrower one)."""
    def accepts(value: Any) -> bool:
        return algorithm_contract.value_error(name, algorithm_contract.to_text(value)) is None

    if narrower is None:
        return _rule(accepts, algorithm_contract.HYPERPARAMETERS[name].rule.expects)
    predicate, expected = narrower
    return _rule(lambda v: accepts(v) and predicate(v), expected)


def _text(value: Any) -> Any:
    if isinstance(value, (dict, list, bytes)) or value is None:
        raise ValueError("a string")
    return value


def _whole(value: Any) -> Any:
    """YAML and flags give ints; environment variables give digit strings (ASCII only, as AWS reads them)."""
    if isinstance(value, bool) or (isinstance(value, str) and not _WHOLE_NUMBER.fullmatch(value)):
        raise ValueError("a whole number")
    return value


def _number(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 1e308:
        raise ValueError("a finite number (not inf or nan)")
    return value


Text = Annotated[str, BeforeValidator(_text)]
Whole = Annotated[int, BeforeValidator(_whole)]
Number = Annotated[float, BeforeValidator(_number)]
InstanceType = Annotated[Text, _matches(_INSTANCE_TYPE, "ml.m5.xlarge (ml.<family>.<size>)")]
Seed = Annotated[Whole, _whole_in(0, SEED_MAX)]
Positive = Annotated[Number, _rule(lambda v: v > 0, "a number > 0")]
Fraction = Annotated[Number, _in_range(0, 1)]
ResourceName = Annotated[Text, _matches(_NAME, "scones-vehicle-classifier (letters, digits, hyphens, ≤ 63)")]
Schedule = Annotated[Text, _matches(_SCHEDULE, "cron(0 3 ? * MON *) or rate(7 days)")]

_EXPECTED_BY_ERROR_TYPE = {
    "int_parsing": "a whole number", "int_from_float": "a whole number", "int_type": "a whole number",
    "int_parsing_size": "a whole number of a sensible size",
    "float_parsing": "a number", "float_type": "a number", "finite_number": "a finite number (not inf or nan)",
    "bool_parsing": "true or false", "bool_type": "true or false",
    "string_type": "a string", "model_type": "a mapping of keys to values", "dict_type": "a mapping of keys to values",
}


class Section(BaseModel):
    """A config section: unknown keys refused, values frozen, numbers finite."""
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, coerce_numbers_to_str=True,
                              validate_default=False)


class ProjectConfig(Section):
    name: ResourceName = "scones-vehicle-classifier"
    region: Annotated[Text, _matches(_REGION, "us-east-1")] = "us-east-1"
    git_commit: Text = "unknown"


class StorageConfig(Section):
    bucket: Annotated[Text, _rule(lambda v: v == "" or bool(_BUCKET.fullmatch(v)),
                                  "an S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)")] = ""
    prefix: Annotated[Text, _rule(lambda v: not v.startswith("/") and not v.endswith("/"),
                                  "a key prefix without leading or trailing '/'")] = "scones-vehicle-classifier"


class DataConfig(Section):
    source: Annotated[Text, _rule(lambda v: bool(v.strip()), f"'{OFFICIAL_SOURCE}', 'sample', an s3:// URI, "
                                  "a file:// URL or a path")] = OFFICIAL_SOURCE
    cache_dir: Text = "~/.cache/scones"
    validation_fraction: Annotated[Number, _rule(lambda v: 0 < v < 0.5, "a fraction in (0, 0.5)")] = 0.1
    seed: Seed = 42


class Hyperparameters(Section):
    """Hyperparameters sent to the built-in algorithm: documented names, documented ranges only."""
    epochs: Annotated[Whole, _algorithm("epochs")] = 25
    learning_rate: Annotated[Number, _algorithm("learning_rate", (
        lambda v: v > 0, "a float in (0, 1] (the algorithm accepts [0, 1]; 0 would not train)"))] = 0.003
    mini_batch_size: Annotated[Whole, _algorithm("mini_batch_size")] = 32
    optimizer: Annotated[Text, _algorithm("optimizer")] = "nag"
    momentum: Annotated[Number, _algorithm("momentum")] = 0.9
    weight_decay: Annotated[Number, _algorithm("weight_decay")] = 0.0005
    use_pretrained_model: Annotated[Whole, _algorithm("use_pretrained_model")] = 1
    num_layers: Annotated[Whole, _algorithm("num_layers")] = 18
    augmentation_type: Annotated[Text, _rule(
        lambda v: v == NO_AUGMENTATION or algorithm_contract.value_error("augmentation_type", v) is None,
        f"'{NO_AUGMENTATION}' (not sent: no augmentation) or "
        + algorithm_contract.HYPERPARAMETERS["augmentation_type"].rule.expects)] = "crop_color_transform"
    early_stopping: bool = False
    early_stopping_patience: Annotated[Whole, _algorithm("early_stopping_patience")] = 10


class TrainingConfig(Section):
    instance_type: InstanceType = "ml.g4dn.xlarge"
    instance_count: Annotated[Whole, _in_range(1, 100)] = 1
    volume_size_gb: Annotated[Whole, _in_range(1, 16384)] = 30
    max_runtime_seconds: Annotated[Whole, _rule(lambda v: v > 0, "a number > 0")] = 3600
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)


class ProcessingConfig(Section):
    instance_type: InstanceType = "ml.m5.xlarge"
    framework_version: Text = "2.5"
    py_version: Text = "py311"


class EvaluationConfig(Section):
    accuracy_threshold: Fraction = 0.85
    # how much worse than the live champion a challenger may be (accuracy, coverage, precision at the threshold)
    champion_tolerance: Annotated[Number, _in_range(0, 0.1)] = 0.02
    transform_instance_type: InstanceType = "ml.m5.xlarge"


class RegistryConfig(Section):
    model_package_group: Annotated[Text, _matches(_NAME, "scones-vehicle-classifier")] = "scones-vehicle-classifier"
    approval_status: Annotated[Text, _one_of(*APPROVAL_STATUSES)] = "PendingManualApproval"


class EndpointConfig(Section):
    name: Annotated[Text, _matches(_NAME, "scones-vehicle-classifier")] = "scones-vehicle-classifier"
    instance_type: InstanceType = "ml.m5.large"
    initial_instance_count: Annotated[Whole, _in_range(1, 100)] = 1
    capture_sampling_percentage: Annotated[Whole, _in_range(0, 100)] = 100
    capture_prefix: Text = "data-capture"
    local_transition_seconds: Annotated[Number, _in_range(0, 600)] = 2.0


class InferenceConfig(Section):
    confidence_threshold: Fraction = 0.93
    state_machine_name: Annotated[Text, _matches(_NAME, "scones-inference-workflow")] = "scones-inference-workflow"


class ReviewConfig(Section):
    """Human review of low-confidence inferences (the workflow's SQS callback, inference_workflow/human_review/)."""
    timeout_seconds: Annotated[Whole, _in_range(1, 31536000)] = 604800       # a week; an execution lasts a year at most
    queue_name: ResourceName = "scones-vehicle-classifier-review"
    dead_letter_queue_name: ResourceName = "scones-vehicle-classifier-review-dlq"
    max_receive_count: Annotated[Whole, _in_range(1, 1000)] = 5


class ScheduleConfig(Section):
    enabled: bool = True
    expression: Schedule = "cron(0 3 ? * MON *)"


class DeploymentConfig(Section):
    """Blue/green with canary traffic shifting and alarm-driven rollback (SageMaker deployment guardrails)."""
    canary_percent: Annotated[Whole, _in_range(1, 50)] = 10
    wait_seconds: Annotated[Whole, _in_range(0, 3600)] = 600
    termination_wait_seconds: Annotated[Whole, _in_range(0, 3600)] = 0
    alarm_period_seconds: Annotated[Whole, _rule(lambda v: v in (10, 20, 30) or (v > 0 and v % 60 == 0),
                                                 "10, 20, 30 or a multiple of 60")] = 60
    alarm_evaluation_periods: Annotated[Whole, _in_range(1, 100)] = 1
    error_rate_threshold: Fraction = 0.05
    latency_threshold_ms: Positive = 500.0
    low_confidence_share_threshold: Fraction = 0.7


class MonitorConfig(Section):
    """The scheduled drift monitor and the alarm that starts retraining on drift."""
    schedule: Annotated[Text, _matches(_SCHEDULE, "rate(1 hour) or cron(0 * * * ? *)")] = "rate(1 hour)"
    window_minutes: Annotated[Whole, _in_range(1, 10080)] = 60
    psi_threshold: Positive = 0.2
    min_records: Annotated[Whole, _in_range(1, 1000000)] = 30
    report_prefix: Text = "drift-reports"
    retrain_on_drift: bool = True


class NotificationsConfig(Section):
    """Who hears about failed executions and challengers stopped at the champion gate (an SNS topic's email)."""
    email: Annotated[Text, _rule(lambda v: v == "" or bool(_EMAIL.fullmatch(v)), "an email address, or '' for nobody")] = ""


class PipelineConfig(Section):
    name: Annotated[Text, _matches(_NAME, "scones-vehicle-classifier")] = "scones-vehicle-classifier"
    cache_enabled: bool = True
    cache_expire_after: Annotated[Text, _matches(_DURATION, "an ISO 8601 duration such as P30D")] = "P30D"
    role_arn: Annotated[Text, _rule(lambda v: v == "" or bool(_ROLE_ARN.fullmatch(v)),
                                    "an IAM role ARN arn:aws:iam::<12 digits>:role/<name>")] = ""


class SconesConfig(BaseSettings):
    """The whole configuration every part shares. Load it with :func:`load_config`."""
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True,
                                      allow_inf_nan=False, coerce_numbers_to_str=True)
    layers: ClassVar[tuple[dict, ...]] = ()

    environment: Annotated[Text, _one_of(*ENVIRONMENTS)] = "local"
    project: ProjectConfig = Field(default_factory=ProjectConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    processing: ProcessingConfig = Field(default_factory=ProcessingConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    endpoint: EndpointConfig = Field(default_factory=EndpointConfig)
    inference: InferenceConfig = Field(default_factory=InferenceConfig)
    review: ReviewConfig = Field(default_factory=ReviewConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    deployment: DeploymentConfig = Field(default_factory=DeploymentConfig)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)
    notifications: NotificationsConfig = Field(default_factory=NotificationsConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)

    def require_cloud(self) -> SconesConfig:
        """Cloud runs need what a local run can default; say which key is missing."""
        if not self.storage.bucket:
            raise ConfigError("storage.bucket", self.storage.bucket, "an S3 bucket name for cloud runs")
        if not self.pipeline.role_arn:
            raise ConfigError("pipeline.role_arn", self.pipeline.role_arn, "the SageMaker execution role ARN for cloud runs")
        return self

    @property
    def s3_root(self) -> str:
        return f"s3://{self.storage.bucket}/{self.storage.prefix}"

    def to_dict(self) -> dict:
        return self.model_dump()


# --- the layers -------------------------------------------------------------------------------------------------

class _Layers(PydanticBaseSettingsSource):
    """Already-merged YAML files and CLI overrides: one mapping, fed to pydantic-settings as a source."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict):
        super().__init__(settings_cls)
        self.data = data

    def get_field_value(self, field, field_name):        # pragma: no cover - __call__ answers for all fields
        return self.data.get(field_name), field_name, False

    def __call__(self) -> dict:
        return self.data


class _Environment(EnvSettingsSource):
    """``SCONES__SECTION__KEY`` variables read from a given mapping (a test's or the process's)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]):
        self.environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name.lower(): value for name, value in self.environ.items()}


def _check_keys(raw: Mapping[str, Any], schema: type[BaseModel], path: str) -> None:
    """Names the first key that is not text, or that no section declares; recurses into sections."""
    for name, value in raw.items():
        if not isinstance(name, str):
            key = f"{path}.{name!r}" if path else repr(name)
            raise ConfigError(key, value, "a text key; keys are names such as "
                              + ", ".join(list(schema.model_fields)[:3]) + ", …",
                              "Fix the key in the config file (YAML reads 1, true or null unquoted as non-text).")
        key = f"{path}.{name}" if path else name
        if name not in schema.model_fields:
            raise ConfigError(key, value, "one of the known keys: " + ", ".join(sorted(schema.model_fields)))
        kind = schema.model_fields[name].annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            if value is None:
                continue
            if not isinstance(value, Mapping):
                raise ConfigError(key, value, "a mapping of keys to values")
            _check_keys(value, kind, key)


def _without_part_sections(raw: dict, schema: type[BaseModel]) -> dict:
    return {k: v for k, v in raw.items() if k in schema.model_fields or k not in PART_SECTIONS}


def _env_layer(environ: Mapping[str, str], schema: type[BaseModel]) -> dict:
    """The variables as nested keys, refusing misnamed ones (pydantic-settings would skip them silently)."""
    flat = {}
    for name, value in environ.items():
        if not name.upper().startswith(ENV_PREFIX):
            continue
        dotted = name[len(ENV_PREFIX):].lower().replace("__", ".")
        if dotted.split(".")[0] in PART_SECTIONS and dotted.split(".")[0] not in schema.model_fields:
            continue
        flat[dotted] = value
    return dotted_to_nested(flat)


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def dotted_to_nested(flat: Mapping[str, Any]) -> dict:
    """``{"a.b": 1}`` → ``{"a": {"b": 1}}``; a key set both as a value and as a section is refused."""
    nested: dict = {}
    for dotted in sorted(flat, key=lambda k: k.count(".")):     # sections before the keys inside them
        value = flat[dotted]
        *parents, leaf = dotted.split(".")
        if "" in parents or not leaf:
            raise ConfigError(dotted, value, "a key of non-empty dotted names such as training.instance_type")
        node = nested
        for depth, part in enumerate(parents):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                section = ".".join(parents[:depth + 1])
                raise ConfigError(section, node, f"a mapping, since {dotted} is also set: give either "
                                  f"{section} or keys inside it")
        if isinstance(node.get(leaf), dict):
            raise ConfigError(dotted, value, f"a mapping, since keys inside {dotted} are also set: give either "
                              f"{dotted} or keys inside it")
        node[leaf] = value
    return nested


_FILE_FIX = "Fix the file, or pass --config with a readable YAML file."


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("config file", str(path), "an existing YAML file", _FILE_FIX) from None
    except IsADirectoryError:
        raise ConfigError("config file", str(path), "a YAML file, not a directory", _FILE_FIX) from None
    except UnicodeDecodeError as exc:
        raise ConfigError("config file", str(path), f"UTF-8 text (byte 0x{exc.object[exc.start]:02x} at "
                          f"offset {exc.start} is not)", _FILE_FIX) from None
    except OSError as exc:
        raise ConfigError("config file", str(path), f"a readable file ({exc.strerror or exc})", _FILE_FIX) from None
    except (yaml.YAMLError, ValueError) as exc:    # ValueError: e.g. an integer of more than 4300 digits
        raise ConfigError("config file", str(path), f"valid YAML ({exc})", _FILE_FIX) from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError("config file", str(path), "a YAML mapping at the top level", _FILE_FIX)
    return data


def _first_error(exc: ValidationError) -> ConfigError:
    error = exc.errors()[0]
    key = ".".join(str(part) for part in error["loc"])
    if error["type"] == "value_error":
        expected = str(error["ctx"]["error"])
    else:
        expected = _EXPECTED_BY_ERROR_TYPE.get(error["type"], error["msg"])
    return ConfigError(key, error["input"], expected)


def load_config(config_file: str | Path | None = None, environment: str | None = None,
                overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None,
                schema: type[SconesConfig] = SconesConfig) -> SconesConfig:
    """Loads, merges and validates the configuration as ``schema`` (a part's subclass adds its section).

    ``overrides`` takes dotted keys (``{"training.hyperparameters.epochs": 5}``), which is what
    the CLIs' typed flags produce; ``None`` values mean "flag not given" and are skipped.
    """
    environ = os.environ if environ is None else environ
    path = Path(config_file) if config_file else config_dir() / "pipeline.yaml"
    files = _read_yaml(path)
    env_layer = _env_layer(environ, schema)
    cli_layer = dotted_to_nested({k: v for k, v in (overrides or {}).items() if v is not None})
    environment = (environment or cli_layer.get("environment") or env_layer.get("environment")
                   or files.get("environment") or "local")
    if environment not in ENVIRONMENTS:
        raise ConfigError("environment", environment, "one of " + ", ".join(ENVIRONMENTS))
    overlay = path.parent / "environments" / f"{environment}.yaml"
    if overlay.exists():
        files = deep_merge(files, _read_yaml(overlay))
    files = deep_merge(_without_part_sections(files, schema), cli_layer)
    files["environment"] = environment
    _check_keys(files, schema, "")
    _check_keys(env_layer, schema, "")

    class Loaded(schema):
        @classmethod
        def settings_customise_sources(cls, settings_cls, **_sources) -> tuple[PydanticBaseSettingsSource, ...]:
            return (_Layers(settings_cls, cli_layer | {"environment": environment}),
                    _Environment(settings_cls, environ), _Layers(settings_cls, files))

    try:
        loaded = Loaded()
    except ValidationError as exc:
        raise _first_error(exc) from None
    return schema.model_validate(loaded.model_dump())
