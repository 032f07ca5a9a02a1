"""A module imported on first use: `pd = lazy.module("pandas")` costs nothing until `pd.DataFrame`.

The data modules name pandas everywhere, yet `bptrain predict` on a small plain CSV file needs
none of it (bptrain.data.plaincsv): importing it there would cost more than the rest of the
command. Attribute access imports the module once, then reads from it.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for the module `name`, importing it at the first attribute read."""

    __slots__ = ("_name", "_module")

    def __init__(self, name: str):
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)

    def __repr__(self) -> str:
        return f"<module {self._name!r}, {'imported' if self._module is not None else 'not imported yet'}>"


def module(name: str) -> LazyModule:
    return LazyModule(name)
