"""training.engine: how the optimizer's update runs; either way every value it writes is the same.

numpy: the update rule as NumPy passes over all parameters (nn.optimizers), a dozen of them a step
for Adam. numba: the same rule as one compiled loop (nn.fused), which reads each array once; it
needs the optional extra 'numba' and compiles its loop at the start of each run (about a second).
`auto` takes numba where it is installed and the run may update enough values for that second to
pay off (benchmarks/README.md, "Training speed").
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from bptrain.errors import ConfigError, extra_needed

ENGINES = ("auto", "numpy", "numba")
# Parameter values a run may update (parameters x its most steps) from which auto takes numba: the
# compiled Adam step saves about 1.3 ns a value on the 2-core machine of benchmarks/README.md, so
# about 2 s from here, against about a second to import numba and compile the loop at the start.
MIN_UPDATES = 1_500_000_000


@dataclass(frozen=True)
class Engine:
    name: str  # "numpy" or "numba"
    why: str  # how it was chosen
    version: str | None = None  # numba's, when it runs the update

    def report(self) -> dict:
        """As report.json records it."""
        return {"name": self.name, "chosen": self.why, **({"version": self.version} if self.version else {})}


def installed() -> bool:
    """Whether numba can be imported (without importing it: that takes a quarter of a second)."""
    try:
        return importlib.util.find_spec("numba") is not None
    except ValueError:  # sys.modules holds None for it: importing it raises ImportError
        return False


def choose(setting: str, params: int, steps: int) -> Engine:
    """The engine for training.engine `setting`, for a run of `params` parameters and at most
    `steps` optimizer steps; ConfigError when numba is asked for and cannot be imported."""
    if setting == "numpy":
        return Engine("numpy", "set")
    updates = f"{params * steps:,} parameter values updated at most ({params:,} parameters x {steps:,} steps)"
    if setting == "auto":
        if not installed():
            return Engine("numpy", "auto: numba is not installed")
        if params * steps < MIN_UPDATES:
            return Engine("numpy", f"auto: {updates}, under {MIN_UPDATES:,}")
    elif not installed():
        raise extra_needed("training.engine numba needs numba", "numba")
    try:
        from bptrain.nn.fused import numba
    except Exception as e:  # a numba that does not fit this numpy, say
        problem = f"numba is installed but does not import: {type(e).__name__}: {e}"
        if setting == "auto":
            return Engine("numpy", f"auto: {problem}")
        raise ConfigError(f"training.engine numba: {problem}. Reinstall it (pip install 'bptrain[numba]') or set training.engine: numpy") from None
    return Engine("numba", "set" if setting == "numba" else f"auto: {updates}", numba.__version__)
