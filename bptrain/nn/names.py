"""Registries: name -> implementation, each with its declared options; a miss says what exists and the closest name."""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

from bptrain.nn.errors import UnknownName
from bptrain.nn.options import Declaration, did_you_mean

T = TypeVar("T")


class Registry(dict, Generic[T]):
    """A dict of named implementations of one kind (activation, loss, ...), each with a `declaration`.

    `label` formats a member's name in messages ("{name}" gives "sgd", "{kind} {name!r}" gives
    "activation 'elu'"); `number` is how its messages call a number.
    """

    def __init__(self, kind: str, label: str = "{kind} {name!r}", number: str = "a number"):
        super().__init__()
        self.kind = kind
        self.label = label
        self.number = number

    def register(self, name: str, *options, doc: str = "", rules=()) -> Callable[[T], T]:
        """Add the decorated class or function under `name`, declaring its options (see nn.options)."""
        def add(obj: T) -> T:
            if name in self:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            label = self.label.format(kind=self.kind, name=name)
            text = doc or (obj.__doc__ or "").strip().split("\n")[0]
            obj.declaration = Declaration(name, self.kind, text, label, tuple(options), tuple(rules), self.number)
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
            raise UnknownName(self.unknown(name)) from None
