"""The README's component reference tables, generated from the declarations in bptrain.nn.

`python -m bptrain.config.reference --write` rewrites each table of README.md between its
`<!-- generated: KIND -->` and `<!-- end -->` markers; `--check` exits 1 naming a stale table.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from bptrain.nn.activations import ACTIVATIONS
from bptrain.nn.initializers import INITIALIZERS
from bptrain.nn.layers import LAYERS
from bptrain.nn.losses import LOSSES
from bptrain.nn.names import Registry
from bptrain.nn.optimizers import OPTIMIZERS
from bptrain.nn.options import REQUIRED, SAME, Option
from bptrain.nn.schedules import SCHEDULES

README = Path(__file__).resolve().parents[2] / "README.md"
COMMAND = "python -m bptrain.config.reference --write"
REGISTRIES: dict[str, Registry] = {
    "layers": LAYERS,
    "activations": ACTIVATIONS,
    "initializers": INITIALIZERS,
    "losses": LOSSES,
    "optimizers": OPTIMIZERS,
    "schedules": SCHEDULES,
}
_MARKED = re.compile(r"(<!-- generated: (\w+) -->\n)(.*?)(<!-- end -->)", re.S)


def _value(value: Any) -> str:
    """A default as the config file writes it."""
    if value is REQUIRED:
        return "required"
    if value is None or isinstance(value, bool):
        return "`" + {None: "null", True: "true", False: "false"}[value] + "`"
    if isinstance(value, (tuple, list)):
        return "`[" + ", ".join(_value(v).strip("`") for v in value) + "]`"
    return f"`{value!r}`" if isinstance(value, float) else f"`{value}`"


def _allowed(option: Option) -> str:
    if option.shown:
        return option.shown
    if option.kind == "choice":
        return ", ".join(f"`{c}`" for c in option.choices)
    if option.kind == "flag":
        return "`true`, `false`"
    if option.kind == "number" and not option.range.text():
        return "any number"
    return option.allowed


def table(registry: Registry) -> str:
    """One row per component (its doc), then one per option it takes in a config file."""
    lines = ["| name | option | default | allowed | meaning |", "|---|---|---|---|---|"]
    for name, member in registry.items():
        declaration = member.declaration
        lines.append(f"| `{name}` | | | | {declaration.doc} |")
        for option in declaration.options:
            if option.in_config:
                default = option.default if option.config_default is SAME else option.config_default
                lines.append(f"| | `{option.key}` | {_value(default)} | {_allowed(option)} | {option.doc} |")
    return "\n".join(lines) + "\n"


def rewritten(text: str) -> str:
    """`text` with each marked table regenerated."""
    return _MARKED.sub(lambda m: m.group(1) + table(REGISTRIES[m.group(2)]) + m.group(4), text)


def stale(text: str) -> list[str]:
    """The kinds whose marked table differs from what the declarations generate."""
    return [m.group(2) for m in _MARKED.finditer(text) if m.group(3) != table(REGISTRIES[m.group(2)])]


def main(argv: list[str]) -> int:
    text = README.read_text(encoding="utf-8")
    if argv == ["--write"]:
        new = rewritten(text)
        if new != text:
            temporary = README.with_name(README.name + ".tmp")
            temporary.write_text(new, encoding="utf-8")
            temporary.replace(README)  # atomic: a reader sees the old file or the new one
        return 0
    if argv == ["--check"]:
        kinds = stale(text)
        for kind in kinds:
            print(f"README.md: the {kind} table is stale; run `{COMMAND}`", file=sys.stderr)
        return 1 if kinds else 0
    print("usage: python -m bptrain.config.reference --write | --check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
