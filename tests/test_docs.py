"""The README stays a landing page, the docs it points into exist, and no relative link is broken."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
REQUIRED = ["architecture.md", "operations.md", "local-runtime.md", "aws-differences.md", "benchmarks.md",
            "research/README.md"]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")   # [text](target) or [text](target "title")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")


def _markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def _relative_links(path: Path) -> list[str]:
    """Link targets outside code, without anchors; absolute URLs, mail links and pure anchors skipped."""
    text = INLINE_CODE.sub("", FENCE.sub("", path.read_text()))
    targets = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
            continue
        targets.append(target.split("#", 1)[0])
    return targets


def test_readme_is_a_landing_page():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; move depth into docs/"


@pytest.mark.parametrize("name", REQUIRED)
def test_named_docs_exist(name):
    assert (DOCS / name).is_file()


@pytest.mark.parametrize("path", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    broken = [target for target in _relative_links(path) if not (path.parent / target).exists()]
    assert broken == []


def test_readme_links_into_every_named_doc():
    linked = {(ROOT / target).resolve() for target in _relative_links(ROOT / "README.md")}
    assert {(DOCS / name).resolve() for name in REQUIRED} - linked == set()


def test_link_checker_sees_links_and_skips_code(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("[a](docs/a.md#x) [b](https://example.com) [c](#here)\n`[d](no.md)`\n```\n[e](no.md)\n```\n")
    assert _relative_links(page) == ["docs/a.md"]
