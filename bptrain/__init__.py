"""bptrain: train fully connected networks by backpropagation on tabular data.

The public names are imported on first use, so that `import bptrain` stays light: load, fit,
Model, Run and BptrainWarning from bptrain.api, and the typed errors from bptrain.errors.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "BptrainError",
    "BptrainWarning",
    "ConfigError",
    "DataError",
    "DivergedError",
    "Model",
    "ModelFileError",
    "Run",
    "RunInterrupted",
    "StorageError",
    "fit",
    "load",
]


_ERRORS = {"BptrainError", "ConfigError", "DataError", "DivergedError", "ModelFileError", "RunInterrupted", "StorageError"}


def __getattr__(name: str) -> Any:
    if name in _ERRORS:
        from bptrain import errors

        return getattr(errors, name)
    if name in __all__:
        from bptrain import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
