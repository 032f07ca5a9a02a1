"""Exception types, each carrying the exit code the CLI turns it into.

Everything below the CLI raises these; `cli.py` alone prints them and exits.
Only the standard library is imported here, so the core may use it too.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    INTERNAL = 1
    USAGE = 2
    DATA = 3
    DIVERGED = 4
    MODEL_FILE = 5
    ENVIRONMENT = 6
    SIGINT = 130
    SIGTERM = 143


class BptrainError(Exception):
    """A problem the user can fix; its message is shown as `error: <message>`."""

    exit_code: ExitCode = ExitCode.INTERNAL


class ConfigError(BptrainError):
    """The config file, an override or a command-line option is wrong."""

    exit_code = ExitCode.USAGE


def extra_needed(needs: str, extra: str) -> ConfigError:
    """The error for a feature whose optional extra is not installed: `needs` says what it needs."""
    return ConfigError(f"{needs}, the optional extra '{extra}': pip install 'bptrain[{extra}]'")


class DataError(BptrainError):
    """A data file is missing or holds values that cannot be used."""

    exit_code = ExitCode.DATA


class DivergedError(BptrainError):
    """Training produced a non-finite loss or weight."""

    exit_code = ExitCode.DIVERGED


class ModelFileError(BptrainError):
    """A model or checkpoint file is corrupt, incompatible or not bptrain's."""

    exit_code = ExitCode.MODEL_FILE


class StorageError(BptrainError):
    """A file or folder cannot be written or locked: disk full, no permission, a file-size limit,
    a run folder in use. Nothing already saved is lost."""

    exit_code = ExitCode.ENVIRONMENT


class RunInterrupted(BptrainError):
    """Training stopped on SIGINT or SIGTERM after saving its state; exits 130 or 143."""

    def __init__(self, reason: str, run_dir, saved: bool = True):
        self.exit_code = ExitCode.SIGINT if reason == "interrupted" else ExitCode.SIGTERM
        signal = "SIGINT" if reason == "interrupted" else "SIGTERM"
        state = "the training state is saved" if saved else "stopped at once; the last checkpoint is kept"
        super().__init__(f"{reason} by {signal}: {state}; continue with: bptrain fit --resume {run_dir}")
