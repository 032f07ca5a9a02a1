"""A name -> implementation registry whose miss says what exists and what was meant."""

from __future__ import annotations

import difflib
from typing import Callable, Generic, TypeVar

from bptrain.errors import ConfigError

T = TypeVar("T")


def did_you_mean(name: str, choices) -> str:
    """' Did you mean 'x'?' for the closest choice, or '' when none is close; letter case aside (`Relu` is relu, not elu)."""
    folded = {str(c).lower(): str(c) for c in choices}
    close = difflib.get_close_matches(str(name).lower(), folded, n=1)
    return f" Did you mean {folded[close[0]]!r}?" if close else ""


class Registry(dict, Generic[T]):
    """A dict of named implementations of one kind (activation, loss, ...)."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self[name] = obj
            return obj

        return add

    def unknown(self, name: object) -> str:
        """The message for a name that is not registered."""
        return f"unknown {self.kind} {name!r}; choose from {', '.join(sorted(self))}.{did_you_mean(str(name), self)}"

    def get(self, name: str) -> T:  # type: ignore[override]
        try:
            return self[name]
        except (KeyError, TypeError):
            raise ConfigError(self.unknown(name)) from None
