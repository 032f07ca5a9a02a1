"""SIGINT and SIGTERM as one exception, `Signalled`, from the first moment the entry point runs.

Only the standard library is imported here: the handlers must be in place before typer, numpy or
pandas start importing, so a signal at any moment ends with its exit code and one line, never a
traceback or a death by signal. Each command then decides what its message says.
"""

from __future__ import annotations

import signal

_REASONS = {signal.SIGINT: ("interrupted", "SIGINT", 130), signal.SIGTERM: ("terminated", "SIGTERM", 143)}


class Signalled(BaseException):
    """SIGINT or SIGTERM arrived. A BaseException, so `except Exception` blocks let it through and
    `finally` and cleanup blocks (an atomic write's temp file) still run."""

    def __init__(self, signum: int):
        self.signum = signum
        self.reason, self.name, self.exit_code = _REASONS[signum]
        super().__init__(f"{self.reason} by {self.name}")


def _raise(signum, frame) -> None:
    raise Signalled(signum)


def install() -> None:
    """Make SIGINT and SIGTERM raise Signalled in the main thread."""
    for signum in _REASONS:
        signal.signal(signum, _raise)
