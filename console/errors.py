"""The console's error root: a request the console refuses as given (shown as a 400 page, never a traceback)."""
from __future__ import annotations

from scones_common.errors import SconesError


class ConsoleError(SconesError):
    """Something the operator can fix in the form or URL they sent."""
