"""The repository root holds what a Python project keeps there and nothing else (scratch output goes to
/tmp or an ignored folder)."""
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = {"README.md", "setup.py", "pyproject.toml", "constraints.txt", "buildspec.yml", ".ci", ".gitignore",
            "scones_common", "processing", "pipelines", "inference_workflow", "local_runtime", "console", "configs", "docs",
            "tests", "benchmarks"}


def test_the_root_tracks_only_the_project_entries():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    entries = {line.split("/", 1)[0] for line in tracked.splitlines() if line}
    assert entries - EXPECTED == set()


def test_scratch_output_is_ignored():
    ignored = subprocess.run(["git", "check-ignore", "runs/x", ".venv/x", "scratch/x", "x.pkl", "dist/x", "build/x"],
                             cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert ignored == ["runs/x", ".venv/x", "scratch/x", "x.pkl", "dist/x", "build/x"]
