"""The code the Processing jobs run, addressed by content hash.

The pipeline definition names ``s3://<bucket>/<prefix>/code/<hash>/…``; uploading is a separate,
explicit step (:func:`upload_code`). A code change gives a new hash, hence new step arguments,
so step caching never reuses results of old code.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from scones_common.s3uri import parse_s3_uri

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("processing", "scones_common", "inference_workflow/drift_monitor")   # the baseline uses the monitor's profile code


@dataclass(frozen=True)
class CodeBundle:
    version: str
    files: tuple[Path, ...]

    def uri(self, s3_root: str, relative: str = "") -> str:
        return f"{s3_root}/code/{self.version}/{relative}".rstrip("/")


def code_bundle(root: Path = REPO_ROOT) -> CodeBundle:
    files = tuple(sorted(p for package in PACKAGES for p in (root / package).rglob("*.py")))
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return CodeBundle(digest.hexdigest()[:12], files)


def upload_code(s3_client, s3_root: str, bundle: CodeBundle | None = None, root: Path = REPO_ROOT) -> str:
    """Uploads the bundle under its versioned prefix and returns that prefix."""
    bundle = bundle or code_bundle(root)
    prefix = parse_s3_uri(bundle.uri(s3_root))
    for path in bundle.files:
        target = prefix.join(path.relative_to(root).as_posix())
        s3_client.upload_file(str(path), target.bucket, target.key)
    return str(prefix)
