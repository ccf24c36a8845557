"""The one configuration loader.

Layers, later wins: ``configs/pipeline.yaml`` < ``configs/environments/<env>.yaml``
< ``SCONES__SECTION__KEY`` environment variables < explicit overrides (CLI flags).
The merged mapping is parsed into frozen dataclasses and every value is checked, so a
typo fails at start-up with the key, the bad value and what is allowed, not an hour
into a training job.

Hand-written on purpose: a pydantic-settings version (tried for issue 11) was no shorter once it
kept these messages, read ``SCONES__`` values as YAML scalars, refused a misspelt section and took
an ``environ`` mapping (a private-method override), and it added ~0.25 s to every command's start.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scones_common import algorithm_contract
from scones_common.errors import SconesError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
ENV_PREFIX = "SCONES__"
ENVIRONMENT_VARIABLE = f"{ENV_PREFIX}ENVIRONMENT"     # picks the environment when no flag does
ENVIRONMENTS = ("local", "dev", "prod")
APPROVAL_STATUSES = ("PendingManualApproval", "Approved", "Rejected")
NO_AUGMENTATION = "none"          # config only: augmentation_type is then left out of the request
LOCAL_TRAINER_ENV = "SCONES_LOCAL_TRAINER"
OFFICIAL_SOURCE = "cifar-100"

# Whole-string, ASCII-only patterns (used with fullmatch): AWS refuses a trailing newline or a non-ASCII digit.
_INSTANCE_TYPE = re.compile(r"ml\.[a-z][a-z0-9-]*\.(\d*xlarge|large|medium|small|metal)", re.ASCII)
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", re.ASCII)
_REGION = re.compile(r"[a-z]{2}(-gov)?-[a-z]+-\d", re.ASCII)
_SCHEDULE = re.compile(r"cron\(([^ )]+ ){5}[^ )]+\)|rate\(\d+ (minute|minutes|hour|hours|day|days)\)", re.ASCII)
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+", re.ASCII)
_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", re.ASCII)
_DURATION = re.compile(r"P(T?\d+[YMWDHS])+", re.ASCII)
_WHOLE_NUMBER = re.compile(r"\s*-?\d+\s*", re.ASCII)
SEED_MAX = 10**9     # local_trainer seeds become seed·1000 + k for torch.manual_seed (a 64-bit integer)


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


def _check(predicate: Callable[[Any], bool], expected: str) -> dict:
    return {"check": (predicate, expected)}


def _in_range(lo: float, hi: float) -> dict:
    return _check(lambda v: lo <= v <= hi, f"a number in [{lo}, {hi}]")


def _one_of(*options: str) -> dict:
    return _check(lambda v: v in options, "one of " + ", ".join(map(str, options)))


def _matches(pattern: re.Pattern, example: str) -> dict:
    return _check(lambda v: bool(pattern.fullmatch(v)), f"a value like {example}")


def _algorithm(name: str, narrower: tuple[Callable[[Any], bool], str] | None = None) -> dict:
    """The built-in algorithm's documented rule for hyperparameter ``name`` (plus an optional narrower one)."""
    rule = algorithm_contract.HYPERPARAMETERS[name].rule

    def accepts(value: Any) -> bool:
        return algorithm_contract.value_error(name, algorithm_contract.to_text(value)) is None

    if narrower is None:
        return _check(accepts, rule.expects)
    predicate, expected = narrower
    return _check(lambda v: accepts(v) and predicate(v), expected)


def _whole_in(lo: int, hi: int) -> dict:
    return _check(lambda v: lo <= v <= hi, f"a whole number in [{lo}, {hi}]")


_POSITIVE = _check(lambda v: v > 0, "a number > 0")
_INSTANCE = _matches(_INSTANCE_TYPE, "ml.m5.xlarge (ml.<family>.<size>)")


@dataclass(frozen=True)
class ProjectConfig:
    name: str = field(default="scones-vehicle-classifier", metadata=_matches(_NAME, "scones-vehicle-classifier (letters, digits, hyphens, ≤ 63)"))
    region: str = field(default="us-east-1", metadata=_matches(_REGION, "us-east-1"))
    git_commit: str = "unknown"


@dataclass(frozen=True)
class StorageConfig:
    bucket: str = field(default="", metadata=_check(lambda v: v == "" or bool(_BUCKET.fullmatch(v)), "an S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)"))
    prefix: str = field(default="scones-vehicle-classifier", metadata=_check(lambda v: not v.startswith("/") and not v.endswith("/"), "a key prefix without leading or trailing '/'"))


@dataclass(frozen=True)
class DataConfig:
    source: str = field(default=OFFICIAL_SOURCE, metadata=_check(bool, f"'{OFFICIAL_SOURCE}', an s3:// URI, a file:// URL or a path"))
    cache_dir: str = "~/.cache/scones"
    validation_fraction: float = field(default=0.1, metadata=_check(lambda v: 0 < v < 0.5, "a fraction in (0, 0.5)"))
    seed: int = field(default=42, metadata=_whole_in(0, SEED_MAX))


@dataclass(frozen=True)
class Hyperparameters:
    """Hyperparameters sent to the built-in algorithm: documented names, documented ranges only."""
    epochs: int = field(default=40, metadata=_algorithm("epochs"))
    learning_rate: float = field(default=0.1, metadata=_algorithm(
        "learning_rate", (lambda v: v > 0, "a float in (0, 1] (the algorithm accepts [0, 1]; 0 would not train)")))
    mini_batch_size: int = field(default=64, metadata=_algorithm("mini_batch_size"))
    optimizer: str = field(default="nag", metadata=_algorithm("optimizer"))
    momentum: float = field(default=0.9, metadata=_algorithm("momentum"))
    weight_decay: float = field(default=0.0005, metadata=_algorithm("weight_decay"))
    use_pretrained_model: int = field(default=0, metadata=_algorithm("use_pretrained_model"))
    num_layers: int = field(default=18, metadata=_algorithm("num_layers"))
    augmentation_type: str = field(default="crop_color_transform", metadata=_check(
        lambda v: v == NO_AUGMENTATION or algorithm_contract.value_error("augmentation_type", v) is None,
        f"'{NO_AUGMENTATION}' (not sent: no augmentation) or "
        + algorithm_contract.HYPERPARAMETERS["augmentation_type"].rule.expects))
    early_stopping: bool = False
    early_stopping_patience: int = field(default=10, metadata=_algorithm("early_stopping_patience"))


ENSEMBLE_AVERAGES = ("logits", "probabilities")


@dataclass(frozen=True)
class LocalTrainerConfig:
    """Knobs of the local stand-in trainer only; never in the cloud request. The one declaration.

    The local training runner hands them to the trainer as the JSON object in the environment
    variable ``SCONES_LOCAL_TRAINER``, the way a container image gets its environment; the trainer
    parses that object with this same class (``local_runtime/trainer/local_settings.py``).
    Defaults are the variant chosen on validation (README "Trainer": the table of what was tried).
    """
    label_smoothing: float = field(default=0.0, metadata=_check(lambda v: 0 <= v < 0.5, "a number in [0, 0.5)"))
    seed: int = field(default=0, metadata=_whole_in(0, SEED_MAX))
    ensemble_size: int = field(default=3, metadata=_whole_in(1, 8))          # members exported as one ONNX graph
    width: int = field(default=8, metadata=_whole_in(4, 128))               # first stage; then 2× and 4×
    ema_decay: float = field(default=0.99, metadata=_check(lambda v: 0 <= v < 1, "a number in [0, 1)"))  # 0 = off
    flip_tta: bool = False                  # the exported graph also averages each image's mirror
    temperature: float = field(default=1.0, metadata=_check(lambda v: 0.1 <= v <= 10, "a number in [0.1, 10]"))
    temperature_scaling: bool = False       # fit the temperature on validation instead of the fixed one
    mixup_alpha: float = field(default=0.0, metadata=_check(lambda v: 0 <= v <= 1, "a number in [0, 1] (0 = off)"))
    cutout: int = field(default=0, metadata=_whole_in(0, 32))               # side of the square erased per image (0 = off)
    ensemble_average: str = field(default="logits", metadata=_one_of(*ENSEMBLE_AVERAGES))  # how views are combined
    coarse_fraction: float = field(default=0.5, metadata=_check(lambda v: 0 <= v < 1, "a number in [0, 1) (0 = off)"))
    coarse_resolution: int = field(default=16, metadata=_whole_in(8, 32))   # image width in the coarse epochs; the three 2×2 max-pools need ≥ 8
    train_on_validation: bool = True        # fit on train + validation with the schedule chosen out of fold
    channels_last: bool = True              # faster convolutions on CPU
    threads: int = field(default=2, metadata=_whole_in(1, 64))              # torch intra-op threads
    imagenet_probe: bool = True             # blend in a linear probe on frozen ImageNet features (README round 6)
    probe_resolution: int = field(default=96, metadata=_whole_in(32, 224))  # images upsampled to this width
    probe_blocks: int = field(default=15, metadata=_whole_in(1, 16))       # EfficientNet-Lite0 blocks kept
    probe_regularization: float = field(default=0.1, metadata=_check(lambda v: 0 < v <= 100, "a number in (0, 100]"))
    probe_weight: float = field(default=0.5, metadata=_check(lambda v: 0 <= v <= 1, "a number in [0, 1]"))
    # images whose members alone are this confident skip the probe; 1 = every image gets it (README round 7)
    probe_skip_confidence: float = field(default=0.98, metadata=_check(lambda v: 0.5 <= v <= 1, "a number in [0.5, 1]"))
    # images the first member alone is this confident of skip the other members and the probe; 1 = off (round 8);
    # no effect with ensemble_size 1
    early_exit_confidence: float = field(default=0.998, metadata=_check(lambda v: 0.5 <= v <= 1, "a number in [0.5, 1]"))

    def __post_init__(self):
        if self.temperature_scaling and self.temperature != 1.0:
            raise ConfigError("local_trainer.temperature", self.temperature,
                              "1.0 when local_trainer.temperature_scaling is true (that fits the temperature)")
        if self.temperature_scaling and self.train_on_validation:
            raise ConfigError("local_trainer.temperature_scaling", self.temperature_scaling,
                              "false when local_trainer.train_on_validation is true (the temperature is fitted "
                              "on a held-out validation split; set train_on_validation: false to fit it)")


@dataclass(frozen=True)
class TrainingConfig:
    instance_type: str = field(default="ml.g4dn.xlarge", metadata=_INSTANCE)
    instance_count: int = field(default=1, metadata=_in_range(1, 100))
    volume_size_gb: int = field(default=30, metadata=_in_range(1, 16384))
    max_runtime_seconds: int = field(default=3600, metadata=_POSITIVE)
    hyperparameters: Hyperparameters = field(default_factory=Hyperparameters)


@dataclass(frozen=True)
class ProcessingConfig:
    instance_type: str = field(default="ml.m5.xlarge", metadata=_INSTANCE)
    framework_version: str = "2.5"
    py_version: str = "py311"


@dataclass(frozen=True)
class EvaluationConfig:
    accuracy_threshold: float = field(default=0.85, metadata=_in_range(0, 1))
    transform_instance_type: str = field(default="ml.m5.xlarge", metadata=_INSTANCE)


@dataclass(frozen=True)
class RegistryConfig:
    model_package_group: str = field(default="scones-vehicle-classifier", metadata=_matches(_NAME, "scones-vehicle-classifier"))
    approval_status: str = field(default="PendingManualApproval", metadata=_one_of(*APPROVAL_STATUSES))


@dataclass(frozen=True)
class EndpointConfig:
    name: str = field(default="scones-vehicle-classifier", metadata=_matches(_NAME, "scones-vehicle-classifier"))
    instance_type: str = field(default="ml.m5.large", metadata=_INSTANCE)
    initial_instance_count: int = field(default=1, metadata=_in_range(1, 100))
    capture_sampling_percentage: int = field(default=100, metadata=_in_range(0, 100))
    capture_prefix: str = "data-capture"
    local_transition_seconds: float = field(default=2.0, metadata=_in_range(0, 600))


@dataclass(frozen=True)
class InferenceConfig:
    confidence_threshold: float = field(default=0.93, metadata=_in_range(0, 1))
    state_machine_name: str = field(default="scones-inference-workflow", metadata=_matches(_NAME, "scones-inference-workflow"))


@dataclass(frozen=True)
class ScheduleConfig:
    enabled: bool = True
    expression: str = field(default="cron(0 3 ? * MON *)", metadata=_matches(_SCHEDULE, "cron(0 3 ? * MON *) or rate(7 days)"))


def _alarm_period(v: int) -> bool:
    return v in (10, 20, 30) or (v > 0 and v % 60 == 0)


@dataclass(frozen=True)
class DeploymentConfig:
    """Blue/green with canary traffic shifting and alarm-driven rollback (SageMaker deployment guardrails)."""
    canary_percent: int = field(default=10, metadata=_in_range(1, 50))
    wait_seconds: int = field(default=600, metadata=_in_range(0, 3600))
    termination_wait_seconds: int = field(default=0, metadata=_in_range(0, 3600))
    alarm_period_seconds: int = field(default=60, metadata=_check(_alarm_period, "10, 20, 30 or a multiple of 60"))
    alarm_evaluation_periods: int = field(default=1, metadata=_in_range(1, 100))
    error_rate_threshold: float = field(default=0.05, metadata=_in_range(0, 1))
    latency_threshold_ms: float = field(default=500.0, metadata=_POSITIVE)
    low_confidence_share_threshold: float = field(default=0.7, metadata=_in_range(0, 1))


@dataclass(frozen=True)
class MonitorConfig:
    """The scheduled drift monitor and the alarm that starts retraining on drift."""
    schedule: str = field(default="rate(1 hour)", metadata=_matches(_SCHEDULE, "rate(1 hour) or cron(0 * * * ? *)"))
    window_minutes: int = field(default=60, metadata=_in_range(1, 10080))
    psi_threshold: float = field(default=0.2, metadata=_POSITIVE)
    min_records: int = field(default=30, metadata=_in_range(1, 1000000))
    report_prefix: str = "drift-reports"
    retrain_on_drift: bool = True


@dataclass(frozen=True)
class PipelineConfig:
    name: str = field(default="scones-vehicle-classifier", metadata=_matches(_NAME, "scones-vehicle-classifier"))
    cache_enabled: bool = True
    cache_expire_after: str = field(default="P30D", metadata=_matches(_DURATION, "an ISO 8601 duration such as P30D"))
    role_arn: str = field(default="", metadata=_check(lambda v: v == "" or bool(_ROLE_ARN.fullmatch(v)), "an IAM role ARN arn:aws:iam::<12 digits>:role/<name>"))


@dataclass(frozen=True)
class SconesConfig:
    environment: str = field(default="local", metadata=_one_of(*ENVIRONMENTS))
    project: ProjectConfig = field(default_factory=ProjectConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    local_trainer: LocalTrainerConfig = field(default_factory=LocalTrainerConfig)
    processing: ProcessingConfig = field(default_factory=ProcessingConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    endpoint: EndpointConfig = field(default_factory=EndpointConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    deployment: DeploymentConfig = field(default_factory=DeploymentConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)

    def __post_init__(self):
        if self.environment == "local" and self.training.hyperparameters.early_stopping \
                and self.local_trainer.train_on_validation:
            raise ConfigError("local_trainer.train_on_validation", True,
                              "false when training.hyperparameters.early_stopping is true (the local trainer "
                              "stops early on a held-out validation split)")

    def require_cloud(self) -> "SconesConfig":
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
        return dataclasses.asdict(self)


def _coerce(key: str, value: Any, kind: type) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(key, value, "true or false")
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, (int, str)) or (isinstance(value, str) and not _WHOLE_NUMBER.fullmatch(value)):
            raise ConfigError(key, value, "a whole number")
        try:
            return int(value)
        except ValueError:          # more digits than Python converts (sys.get_int_max_str_digits)
            raise ConfigError(key, value, "a whole number of a sensible size") from None
    if kind is float:
        try:
            if isinstance(value, bool):
                raise TypeError
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(key, value, "a number") from None
        except OverflowError:       # an integer beyond the float range
            number = math.inf
        if not math.isfinite(number):
            raise ConfigError(key, value, "a finite number (not inf or nan)")
        return number
    if kind is str:
        if isinstance(value, (dict, list, bytes)) or value is None:
            raise ConfigError(key, value, "a string")
        return str(value)
    raise TypeError(f"unsupported config field type {kind}")


def _build(cls: type, raw: Mapping[str, Any], path: str) -> Any:
    if not isinstance(raw, Mapping):
        raise ConfigError(path or "<root>", raw, "a mapping of keys to values")
    for name in raw:
        if not isinstance(name, str):
            key = f"{path}.{name!r}" if path else repr(name)
            raise ConfigError(key, raw[name], "a text key; keys are names such as "
                              + ", ".join(f.name for f in dataclasses.fields(cls)[:3]) + ", …",
                              "Fix the key in the config file (YAML reads 1, true or null unquoted as non-text).")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        key = f"{path}.{unknown[0]}" if path else unknown[0]
        raise ConfigError(key, raw[unknown[0]], "one of the known keys: " + ", ".join(sorted(names)))
    values = {}
    for f in dataclasses.fields(cls):
        if f.name not in raw:
            continue
        key = f"{path}.{f.name}" if path else f.name
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            values[f.name] = _build(kind, {} if raw[f.name] is None else raw[f.name], key)
            continue
        value = _coerce(key, raw[f.name], kind)
        if "check" in f.metadata:
            predicate, expected = f.metadata["check"]
            if not predicate(value):
                raise ConfigError(key, value, expected)
        values[f.name] = value
    return cls(**values)


def parse_section(cls: type, raw: Mapping[str, Any], path: str) -> Any:
    """Parses and checks one config section (a dataclass above) from a mapping, e.g. one read from JSON."""
    return _build(cls, raw, path)


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


def _env_value(name: str, value: str) -> Any:
    """A ``SCONES__`` value read as one YAML value (``7`` a number, ``true`` a boolean, ``a`` text)."""
    if not value:
        return value
    try:
        return yaml.safe_load(value)
    except (yaml.YAMLError, ValueError) as exc:
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise ConfigError(name, value, f"one YAML value such as 7, true, 0.5 or text ({problem}); quote text "
                          f"that holds YAML syntax, e.g. {name}='\"a: b\"'", f"Fix ${name}.") from None


def _env_overrides(environ: Mapping[str, str]) -> dict:
    flat = {name[len(ENV_PREFIX):].lower().replace("__", "."): _env_value(name, value)
            for name, value in environ.items() if name.startswith(ENV_PREFIX)}
    return dotted_to_nested(flat)


def load_config(config_file: str | Path | None = None, environment: str | None = None,
                overrides: Mapping[str, Any] | None = None,
                environ: Mapping[str, str] | None = None) -> SconesConfig:
    """Loads, merges and validates the configuration.

    ``overrides`` takes dotted keys (``{"training.hyperparameters.epochs": 5}``), which is what
    the CLIs' typed flags produce; ``None`` values mean "flag not given" and are skipped.
    """
    environ = os.environ if environ is None else environ
    path = Path(config_file) if config_file else CONFIG_DIR / "pipeline.yaml"
    merged = _read_yaml(path)
    env_layer = _env_overrides(environ)
    cli_layer = dotted_to_nested({k: v for k, v in (overrides or {}).items() if v is not None})
    environment = environment or cli_layer.get("environment") or env_layer.get("environment") or merged.get("environment") or "local"
    if environment not in ENVIRONMENTS:
        raise ConfigError("environment", environment, "one of " + ", ".join(ENVIRONMENTS))
    overlay = path.parent / "environments" / f"{environment}.yaml"
    if overlay.exists():
        merged = deep_merge(merged, _read_yaml(overlay))
    merged = deep_merge(deep_merge(merged, env_layer), cli_layer)
    merged["environment"] = environment
    return _build(SconesConfig, merged, "")
