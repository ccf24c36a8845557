"""The processing package's error root: staging and evaluation inputs the user can fix."""
from __future__ import annotations

from scones_common.errors import SconesError


class ProcessingError(SconesError):
    """A data source, archive, output directory or prediction set that a processing job cannot use."""


class DataSourceError(ProcessingError):
    """The data source cannot be read: missing file, unreachable URL, missing S3 object."""


class ChecksumMismatchError(DataSourceError):
    """The archive's checksum differs from the expected one: a corrupt or different file."""
