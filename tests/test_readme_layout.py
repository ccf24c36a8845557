"""The README's Layout table matches the tree: every folder has a row, every module or folder a
row names exists there."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IGNORED = {".git", ".venv", ".venv-sam", "runs", "build", "dist", "__pycache__", ".aws-sam", ".pytest_cache",
           ".ruff_cache"}
ROW = re.compile(r"^\| `([^`]+)/` \| (.+) \|$")


def _rows() -> dict[str, str]:
    section = ROOT.joinpath("README.md").read_text().split("## Layout", 1)[1].split("\n## ", 1)[0]
    return {m.group(1): m.group(2) for m in map(ROW.match, section.splitlines()) if m}


def _folders() -> set[str]:
    """Top-level folders holding code or configuration (not caches, virtualenvs or run output)."""
    return {p.name for p in ROOT.iterdir()
            if p.is_dir() and p.name not in IGNORED and not p.name.endswith(".egg-info")
            and any(f.suffix in (".py", ".yaml", ".yml") for f in p.rglob("*"))}


def test_every_folder_has_a_row():
    rows = _rows()
    covered = {row.split("/")[0] for row in rows}
    assert _folders() - covered == set()
    for parent in {row.split("/")[0] for row in rows if "/" in row}:   # split into rows per package
        packages = {f"{parent}/{p.name}" for p in (ROOT / parent).iterdir() if (p / "__init__.py").exists()}
        assert packages - set(rows) == set()


def test_named_modules_and_folders_exist():
    missing = []
    for folder, text in _rows().items():
        assert (ROOT / folder).is_dir(), folder
        for name in re.findall(r"`([\w./-]+)`", text):
            if name.endswith(".py") or (name.endswith("/") and not name.startswith(".")):
                if not any((ROOT / folder).rglob(name.rstrip("/"))):
                    missing.append(f"{folder}/: {name}")
    assert missing == []
