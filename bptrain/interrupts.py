"""SIGINT and SIGTERM as one exception, `Signalled`, from the first moment the entry point runs.

Only the standard library is imported here: the handlers must be in place before typer, numpy or
pandas start importing, so a signal at any moment ends with its exit code and one line, never a
traceback or a death by signal. Each command then decides what its message says.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_REASONS = {signal.SIGINT: ("interrupted", "SIGINT", 130), signal.SIGTERM: ("terminated", "SIGTERM", 143)}
SIGNALS = tuple(_REASONS)  # the signals bptrain turns into Signalled


class Signalled(BaseException):
    """SIGINT or SIGTERM arrived. A BaseException, so `except Exception` blocks let it through and
    `finally` and cleanup blocks (an atomic write's temp file) still run."""

    def __init__(self, signum: int):
        self.signum = signum
        self.reason, self.name, self.exit_code = _REASONS[signum]
        super().__init__(f"{self.reason} by {self.name}")


_raised: list[int] = []  # every signal whose Signalled the handler raised
_waiting: list[int] = []  # signals that arrived inside held(), raised when it ends
_holding = False


def _raise(signum, frame) -> None:
    if _holding:
        _waiting.append(signum)
        return
    _raised.append(signum)
    raise Signalled(signum)


@contextmanager
def held() -> Iterator[None]:
    """A block that a signal must not stop half way: Signalled waits until the block ends.

    For a few lines whose half-done state would be printed later; zipfile.ZipFile stopped between
    opening its file and setting its attributes, say, prints an AttributeError when collected."""
    global _holding
    outer, _holding = _holding, True
    try:
        yield
    finally:
        _holding = outer
        if not outer and _waiting:
            signum = _waiting[-1]
            _waiting.clear()
            _raised.append(signum)
            raise Signalled(signum)


def _unraisable(hook_args) -> None:
    """Python drops an exception raised where it cannot propagate (a weakref callback, such as
    the import system's, or a __del__) and prints it: a Signalled dropped there stays silent,
    and raise_pending() raises it again at the next point that must not pass it by."""
    if hook_args.exc_type is not None and issubclass(hook_args.exc_type, Signalled):
        return
    sys.__unraisablehook__(hook_args)


def raise_pending() -> None:
    """Raise Signalled for a signal that arrived but whose exception was dropped (see _unraisable)."""
    if _raised:
        raise Signalled(_raised[-1])


def handled() -> None:
    """The Signalled raised so far has reached the command's error handling."""
    _raised.clear()


def install() -> None:
    """Make SIGINT and SIGTERM raise Signalled in the main thread."""
    sys.unraisablehook = _unraisable
    for signum in SIGNALS:
        signal.signal(signum, _raise)
