"""The local runtime's configuration: the shared one plus the stand-in trainer's own section.

``local_trainer:`` (seed and threads: knobs with no cloud meaning) is declared by the trainer
(``LocalTrainerSettings``) and read only here, so cloud commands never load it. The trainer gets
it as the JSON object in its environment, as a container image would.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from local_runtime.trainer.local_settings import LOCAL_TRAINER_ENV, LocalTrainerSettings
from scones_common.config import SconesConfig, load_config


class LocalApiSettings(BaseModel):
    """``local_api:``: who besides signed callers may reach the local APIs. ``cors_origins``: the browser origins
    (``https://host:port``) that get a CORS grant, as a bucket's CORS rules grant it on S3; none by default (the
    console is same-origin and needs none)."""
    model_config = ConfigDict(extra="forbid")
    cors_origins: list[str] = Field(default_factory=list)


class LocalConfig(SconesConfig):
    local_trainer: LocalTrainerSettings = Field(default_factory=LocalTrainerSettings)
    local_api: LocalApiSettings = Field(default_factory=LocalApiSettings)


def load_local_config(config_file: str | Path | None = None, overrides: Mapping[str, Any] | None = None,
                      environ: Mapping[str, str] | None = None) -> LocalConfig:
    """The ``local`` environment's configuration, with the ``local_trainer:`` section."""
    return load_config(config_file, "local", overrides, environ, schema=LocalConfig)


def trainer_environment(settings: LocalTrainerSettings) -> dict[str, str]:
    """The local algorithm image's environment: the trainer's section as JSON."""
    return {LOCAL_TRAINER_ENV: json.dumps(settings.model_dump(), sort_keys=True)}
