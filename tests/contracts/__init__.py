"""Documents recorded from the AWS documentation, used by tests instead of hand-built dicts.

Each ``<name>.json`` holds ``source`` (where the document was copied from), ``notes`` (what, if
anything, was changed and why) and ``document`` (the document itself, as AWS sends it).
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def names() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.json"))


def load_record(name: str) -> dict:
    return json.loads((HERE / f"{name}.json").read_text())


def load_document(name: str):
    """A fresh copy of the recorded document: tests may change it freely."""
    return copy.deepcopy(load_record(name)["document"])
