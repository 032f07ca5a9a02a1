"""Declared options: each component states its options once (type, range or choices, default, doc).

A registry attaches a Declaration to every component it registers. From it come the component's
own checks (Declaration.check, at construction only, raising OptionError), the config schema's
models (bptrain.config.schema) and the README's reference tables (bptrain.config.reference).
Config-only notions are declared here too: `config` is a type expression that the schema
evaluates in its own namespace (nn imports no pydantic), `config_default` a different default
there, `nn=False` marks an option that only the config has (a schedule's `interval`) and
`in_config=False` one that only the core has (a layer's `activation_options`).
"""

from __future__ import annotations

import difflib
import math
import reprlib
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Callable, Mapping

import numpy as np

from bptrain.nn.errors import OptionError

REQUIRED: Any = type("Required", (), {"__repr__": lambda self: "REQUIRED"})()
SAME: Any = type("Same", (), {"__repr__": lambda self: "SAME"})()
_SEQUENCES = (list, tuple, set, frozenset)  # the collections besides mappings that a config's values may be


def did_you_mean(name: Any, choices) -> str:
    """' Did you mean 'x'?' for the closest choice, or '' when none is close; letter case aside (`Relu` is relu, not elu).
    A list or mapping is close to nothing (and is not written out: see `shown`)."""
    if isinstance(name, (*_SEQUENCES, Mapping)):
        return ""
    folded = {str(c).lower(): str(c) for c in choices}
    close = difflib.get_close_matches(str(name).lower(), folded, n=1)
    return f" Did you mean {folded[close[0]]!r}?" if close else ""


SHOWN_VALUES = 1000  # values a message writes out in full; past that, reprlib's short form


def shown(value: Any) -> str:
    """repr(value) for a message, short where it holds more than SHOWN_VALUES values in all: YAML
    anchors and aliases make a list of 10**9 values from a few hundred bytes, which repr would write out."""
    return repr(value) if _values_in(value, SHOWN_VALUES) <= SHOWN_VALUES else _SHORT.repr(value)


def _values_in(value: Any, limit: int) -> int:
    """The values in `value` and the lists, tuples, sets and mappings in it, counted up to limit + 1."""
    count, left = 0, [value]
    while left and count <= limit:
        item = left.pop()
        count += 1
        if isinstance(item, Mapping):
            left.extend(item.keys())
            left.extend(item.values())
        elif isinstance(item, _SEQUENCES):
            left.extend(item)
    return count


_SHORT = reprlib.Repr()  # Repr(maxlevel=...) needs Python 3.12
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxtuple, _SHORT.maxdict, _SHORT.maxset = 2, 4, 4, 4, 4
_SHORT.maxstring, _SHORT.maxlong, _SHORT.maxother = 200, 200, 200


@dataclass(frozen=True)
class Range:
    """An interval of numbers; an end that is None is unbounded, an open end is excluded."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (self.high is not None and (value >= self.high if self.high_open else value > self.high))

    def text(self) -> str:
        """'>= 0', '> 0', 'in [0, 1)', ...; '' when unbounded."""
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        return ""

    def constraints(self) -> dict[str, float]:
        """The range as pydantic Field keywords (gt, ge, lt, le)."""
        found: dict[str, float] = {}
        if self.low is not None:
            found["gt" if self.low_open else "ge"] = self.low
        if self.high is not None:
            found["lt" if self.high_open else "le"] = self.high
        return found


ANY = Range()
AT_LEAST_0 = Range(0.0)
ABOVE_0 = Range(0.0, low_open=True)
AT_LEAST_1 = Range(1)
UNIT = Range(0.0, 1.0)  # [0, 1]
FRACTION = Range(0.0, 1.0, high_open=True)  # [0, 1)
OPEN_UNIT = Range(0.0, 1.0, low_open=True, high_open=True)  # (0, 1)


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, (bool, np.bool_))


@dataclass(frozen=True)
class Option:
    """One keyword option. `kind`: number, integer, flag, choice, pair (two numbers), or custom (`check`).

    `check(value) -> value` replaces the kind's check for custom options; it raises ValueError to
    refuse a value, and `must` says what is wanted.
    """

    name: str
    kind: str
    doc: str
    default: Any = REQUIRED
    range: Range = ANY
    choices: tuple = ()
    must: str = ""
    check: Callable[[Any], Any] | None = None
    config: str | None = None
    config_name: str | None = None
    config_default: Any = SAME
    nn: bool = True
    in_config: bool = True
    config_check: bool = False  # the schema checks a config value with `check` too
    shown: str = ""  # what the config takes, in words, when `config` changes it

    @property
    def key(self) -> str:
        """The option's key in a config file."""
        return self.config_name or self.name

    @property
    def allowed(self) -> str:
        """What the option takes, in words: 'a number >= 0', "'none' or 'tanh'", ..."""
        if self.must:
            return self.must
        if self.kind == "flag":
            return "true or false"
        if self.kind == "choice":
            quoted = [repr(c) for c in self.choices]
            return ", ".join(quoted[:-1]) + f" or {quoted[-1]}"
        noun = {"number": "a number", "integer": "an integer", "pair": "two numbers"}[self.kind]
        return f"{noun} {self.range.text()}".strip()

    def parse(self, value: Any, number: str = "a number") -> Any:
        """`value` as the component keeps it (Python float, int, bool, ...), or OptionError's text."""
        if self.check is not None:
            try:
                return self.check(value)
            except OptionError:
                raise  # e.g. an unknown name, which says what exists
            except ValueError:
                raise OptionError(f"{self.name} must be {self.allowed} (got {value!r})") from None
        parse = {"number": _number, "integer": _integer, "flag": _flag, "choice": _choice, "pair": _pair}[self.kind]
        found = parse(self, value)
        if found is None:
            allowed = self.allowed.replace("a number", number, 1) if self.kind == "number" else self.allowed
            raise OptionError(f"{self.name} must be {allowed} (got {value!r})")
        return found


def _number(option: Option, value: Any) -> float | None:
    if not _is_number(value) or not math.isfinite(value) or value not in option.range:
        return None
    return float(value)


def _integer(option: Option, value: Any) -> int | None:
    ok = isinstance(value, Integral) and not isinstance(value, (bool, np.bool_))
    return int(value) if ok and value in option.range else None


def _flag(option: Option, value: Any) -> bool | None:
    return bool(value) if isinstance(value, (bool, np.bool_)) else None


def _choice(option: Option, value: Any) -> Any:
    return value if isinstance(value, str) and value in option.choices else None


def _pair(option: Option, value: Any) -> tuple[float, float] | None:
    if not (isinstance(value, (tuple, list)) and len(value) == 2):
        return None
    numbers = [_number(option, v) for v in value]
    return None if None in numbers else (numbers[0], numbers[1])


@dataclass(frozen=True)
class Rule:
    """A condition on several options: `broken(options)` says it fails; `text` says what is needed.

    `got(options)` shows the values involved. `in_config`: the config schema checks it as well
    (a rule on a schedule's `total` cannot: the config leaves it for the run to fill in).
    """

    text: str
    broken: Callable[[Mapping[str, Any]], bool]
    got: Callable[[Mapping[str, Any]], str]
    in_config: bool = False


@dataclass(frozen=True)
class Declaration:
    """A registered component's options and rules; `label` names it in messages ("sgd", "activation 'elu'")."""

    name: str
    kind: str
    doc: str
    label: str
    options: tuple[Option, ...] = ()
    rules: tuple[Rule, ...] = ()
    number: str = "a number"  # how a number is called in messages ("a finite number")

    @property
    def nn_options(self) -> tuple[Option, ...]:
        return tuple(o for o in self.options if o.nn)

    @property
    def defaults(self) -> dict[str, Any]:
        """Each constructor option's default (REQUIRED when it has none)."""
        return {o.name: o.default for o in self.nn_options}

    def option(self, name: str) -> Option:
        return next(o for o in self.options if o.name == name)

    def error(self, message: str) -> OptionError:
        return OptionError(f"{self.label}: {message}")

    def check(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """The given options checked and completed with defaults; OptionError naming the first problem."""
        options = self.nn_options
        names = [o.name for o in options]
        for key in given:
            if key not in names:
                allowed = f"allowed: {', '.join(names)}" if names else "it takes no options"
                raise self.error(f"unknown option {key!r}; {allowed}.{did_you_mean(key, names)}")
        checked = {}
        for option in options:
            value = given.get(option.name, option.default)
            if value is REQUIRED:
                raise self.error(f"{option.name} is required")
            try:
                checked[option.name] = option.parse(value, self.number)
            except OptionError as e:
                raise self.error(str(e)) from None
        for rule in self.rules:
            if rule.broken(checked):
                raise self.error(f"{rule.text} (got {rule.got(checked)})")
        return checked
