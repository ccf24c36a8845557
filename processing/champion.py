"""Compares the challenger with the champion on the same test images and writes ``comparison.json``.

The CompareWithChampion Processing step's entry point. Both models' batch-transform predictions of
the test split are read (``<relative path>.out`` per image, as EvaluateModel reads them): the
challenger's from BatchTransformTest, the champion's from ScoreChampion, which scored the same staged
images with the live model (FindChampion names it). Both are scored alike (accuracy; coverage and
precision at the confidence threshold, with the precision's 95 % lower bound as information) and the
rule of ``champion_gate.py`` decides. ``comparison.json`` is the step's PropertyFile: ChampionGate
reads ``gate.verdict``, the Fail step ``gate.message``, RegisterModel the ``metadata`` strings. The
tolerance is an argument the definition carries from the config (never a pipeline parameter), and it
is recorded in the file and in the package, so a raised tolerance is visible.

Without a champion (``--champion-found false``) the champion predictions are not read and the gate
passes: the first model of a group passes on the absolute accuracy gate alone.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from processing.champion_gate import Figures, check_tolerance, decide
from processing.confidence import coverage_at
from processing.confidence_bounds import lower_bound
from processing.errors import ProcessingError
from processing.predictions import read_predictions
from scones_common.contracts.container import PREDICTIONS_INPUT, PROCESSING, TEST_LST
from scones_common.contracts.staged_data import read_lst
from scones_common.errors import cli_entry

log = logging.getLogger("champion")
CHAMPION_PREDICTIONS_INPUT = f"{PROCESSING}/input/champion-predictions"
COMPARISON_OUTPUT = f"{PROCESSING}/comparison"
COMPARISON_REPORT = "comparison.json"


class ChampionArgumentError(ProcessingError, ValueError):
    """An argument describing the champion or the gate is not usable."""


def figures(y_true, probabilities, threshold: float) -> Figures:
    """What the gate compares, computed the same way for both models."""
    probabilities = np.asarray(probabilities, dtype=float)
    y_true = np.asarray(y_true)
    at = coverage_at(y_true, probabilities, threshold)
    hits = probabilities.argmax(axis=1) == y_true
    confident = probabilities.max(axis=1) >= threshold
    return Figures(accuracy=float(hits.mean()) if len(hits) else 0.0, coverage=at["coverage"],
                   precision=at["precision"], confident=at["confident"], count=int(len(hits)),
                   precision_lower_bound=lower_bound(int(hits[confident].sum()), int(confident.sum())))


def _figures_record(value: Figures | None) -> dict | None:
    return None if value is None else {
        "accuracy": value.accuracy, "coverage": value.coverage, "precision": value.precision,
        "precision_lower_bound": value.precision_lower_bound, "confident": value.confident, "count": value.count}


def champion_label(version: str, package_arn: str, model_name: str) -> str:
    """How messages and metadata name the champion: its version, or its model when it is not in the registry."""
    if version:
        return f"v{version}"
    return f"model {model_name}" if model_name else "the champion"


def compare(challenger_dir: Path, champion_dir: Path, lst_path: Path, threshold: float, tolerance: float,
            champion: dict) -> dict:
    """The comparison record; ``champion`` holds found, model_package_arn, version, source, model_name."""
    tolerance = check_tolerance(tolerance)
    entries = read_lst(Path(lst_path))
    relatives, y_true = [e.path for e in entries], [e.class_id for e in entries]
    challenger = figures(y_true, read_predictions(Path(challenger_dir), relatives), threshold)
    found = champion["found"]
    champion_figures = figures(y_true, read_predictions(Path(champion_dir), relatives), threshold) if found else None
    label = champion_label(champion.get("version", ""), champion.get("model_package_arn", ""),
                           champion.get("model_name", ""))
    result = decide(challenger, champion_figures, tolerance, threshold, label)
    return {
        "tolerance": tolerance, "confidence_threshold": threshold, "count": len(entries),
        "champion": {**champion, "figures": _figures_record(champion_figures)},
        "challenger": {"figures": _figures_record(challenger)},
        "gate": {"verdict": result.verdict, "passed": result.passed, "worse_on": list(result.worse_on),
                 "message": result.message},
        "metadata": {"champion_tolerance": f"{tolerance:g}",
                     "champion": f"{label} {champion_figures.metadata()}" if champion_figures else "none",
                     "challenger": challenger.metadata()},
    }


def _flag(text: str) -> bool:
    if text not in ("true", "false"):
        raise ChampionArgumentError(f"--champion-found must be 'true' or 'false', got {text!r}")
    return text == "true"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--challenger-predictions-dir", default=PREDICTIONS_INPUT)
    parser.add_argument("--champion-predictions-dir", default=CHAMPION_PREDICTIONS_INPUT)
    parser.add_argument("--lst", default=TEST_LST)
    parser.add_argument("--output-dir", default=COMPARISON_OUTPUT)
    parser.add_argument("--confidence-threshold", type=float, required=True)
    parser.add_argument("--tolerance", type=float, required=True, help="evaluation.champion_tolerance")
    parser.add_argument("--champion-found", required=True, help="true or false (FindChampion's 'found')")
    parser.add_argument("--champion-package-arn", default="")
    parser.add_argument("--champion-version", default="")
    parser.add_argument("--champion-source", default="")
    parser.add_argument("--champion-model-name", default="")
    return parser.parse_args(argv)


@cli_entry
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not 0 <= args.confidence_threshold <= 1:
        raise ChampionArgumentError(f"confidence threshold {args.confidence_threshold} is outside [0, 1]")
    champion = {"found": _flag(args.champion_found), "model_package_arn": args.champion_package_arn,
                "version": args.champion_version, "source": args.champion_source,
                "model_name": args.champion_model_name}
    record = compare(Path(args.challenger_predictions_dir), Path(args.champion_predictions_dir), Path(args.lst),
                     args.confidence_threshold, args.tolerance, champion)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / COMPARISON_REPORT).write_text(json.dumps(record, indent=2))
    log.info("champion gate: %s: %s", record["gate"]["verdict"], record["gate"]["message"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
