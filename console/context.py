"""What every page needs, kept apart from the app factory so pages and app do not import each other."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import current_app

from scones_common.config import SconesConfig

ClientsFactory = Callable[[str], Any]
EXTENSION = "scones_console"


@dataclass(frozen=True)
class ConsoleContext:
    """The AWS clients, the project's configuration, and a label for what the clients reach."""
    clients: ClientsFactory
    config: SconesConfig
    target: str

    def client(self, service: str):
        return self.clients(service)


def context() -> ConsoleContext:
    return current_app.extensions[EXTENSION]
