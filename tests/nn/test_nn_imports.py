import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NN = ROOT / "bptrain" / "nn"
HEAVY = ["pandas", "yaml", "pydantic", "typer", "rich", "matplotlib", "numba"]


def test_importing_bptrain_nn_loads_no_heavy_module():
    code = f"import sys, bptrain.nn; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def imported_modules(source: str) -> list[str]:
    modules = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules.append("." * node.level + (node.module or ""))
    return modules


def allowed(module: str) -> bool:
    top = module.split(".")[0]
    return (
        top == "numpy"
        or top in sys.stdlib_module_names
        or module == "bptrain.nn"
        or module.startswith("bptrain.nn.")
    )


def test_the_import_rule_tells_good_from_bad():
    source = (
        "import numpy as np\nimport math\nfrom bptrain.nn.params import Param\n"
        "import pandas\nfrom bptrain import config\nfrom . import x\n"
    )
    assert [m for m in imported_modules(source) if not allowed(m)] == ["pandas", "bptrain", "."]


def test_bptrain_nn_imports_only_numpy_the_stdlib_and_its_allowed_neighbours():
    files = sorted(NN.glob("*.py"))
    assert {"layers.py", "losses.py", "optimizers.py", "__init__.py"} <= {f.name for f in files}
    offending = {
        f"{f.name}: {m}" for f in files for m in imported_modules(f.read_text()) if not allowed(m)
    }
    assert offending == {"fused.py: numba"}  # the update rules compiled, for training.engine numba alone
