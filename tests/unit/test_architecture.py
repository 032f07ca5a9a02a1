"""The package's shape: imports point down the layers, and functions stay short.

The layers, lowest first (README "How the code is laid out"): a module may import modules of its
own layer and of the layers below it, never of one above. The numeric core imports nothing of
bptrain outside itself.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "bptrain"
LAYERS = [
    ("base", ["bptrain", "bptrain.errors", "bptrain.interrupts", "bptrain.seeds", "bptrain.threads", "bptrain.fileio", "bptrain.events", "bptrain.lazy"]),
    ("nn", ["bptrain.nn"]),
    ("config", ["bptrain.config"]),
    ("data", ["bptrain.data"]),
    ("inference", ["bptrain.metrics", "bptrain.inference", "bptrain.predictions"]),
    ("training", ["bptrain.training"]),
    ("runs", ["bptrain.runs"]),
    ("services", ["bptrain.app", "bptrain.crossval", "bptrain.export", "bptrain.insight"]),
    ("tune", ["bptrain.tune"]),
    ("api", ["bptrain.api"]),
    ("front ends", ["bptrain.serve"]),
    ("cli", ["bptrain.cli", "bptrain.progress", "bptrain.__main__"]),
]
# The package root sits in the base layer (every layer reads its __version__), and hands out the
# API's names on first use (its module __getattr__): that one import points up, on purpose.
REEXPORTS = {"bptrain": {"bptrain.api"}}
MAX_FUNCTION_LINES = 60


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    """The index of the layer that holds `module` (the longest matching prefix wins)."""
    best, found = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            inside = module == prefix or (prefix != "bptrain" and module.startswith(prefix + "."))
            if inside and len(prefix) > best:
                best, found = len(prefix), i
    if found is None:
        raise AssertionError(f"{module} is in no layer; add it to LAYERS and to the README's code map")
    return found


def imported(module: str, path: Path) -> set[str]:
    """Every bptrain module `module` imports, at any depth in its code."""
    names = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            for a in node.names:
                # `from bptrain.x import y` imports bptrain.x.y when that is a module, else bptrain.x
                names.add(f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base)
    return {n for n in names if n == "bptrain" or n.startswith("bptrain.")}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_the_layers(module):
    own = layer_of(module)
    allowed = REEXPORTS.get(module, set())
    upward = sorted(
        f"{other} ({LAYERS[layer_of(other)][0]})" for other in imported(module, MODULES[module]) - allowed if layer_of(other) > own
    )
    assert not upward, f"{module} ({LAYERS[own][0]}) imports a higher layer: {', '.join(upward)}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("bptrain.nn")))
def test_the_numeric_core_imports_nothing_of_bptrain_outside_itself(module):
    outside = sorted(m for m in imported(module, MODULES[module]) if not m.startswith("bptrain.nn"))
    assert not outside, f"{module} imports {', '.join(outside)}"


def test_every_layer_names_only_modules_that_exist():
    for name, prefixes in LAYERS:
        for prefix in prefixes:
            assert any(m == prefix or m.startswith(prefix + ".") for m in MODULES), f"layer {name}: no module {prefix}"


def test_no_function_is_longer_than_the_limit():
    long = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{module}.{node.name} ({lines} lines)")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {', '.join(long)}"


def test_the_checker_sees_an_upward_import(tmp_path):
    # the oracle itself: a made-up nn module importing the CLI is caught
    fake = tmp_path / "fake.py"
    fake.write_text("from bptrain import cli\nimport bptrain.app\n")
    assert imported("bptrain.nn.fake", fake) == {"bptrain.cli", "bptrain.app"}
    assert layer_of("bptrain.cli") > layer_of("bptrain.nn.fake")
