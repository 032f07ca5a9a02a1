"""training.engine: how the optimizer's update runs; either way every value it writes is the same.

numpy: the update rule as NumPy passes over all parameters (nn.optimizers), a dozen of them a step
for Adam. numba: the same rule as one compiled loop (nn.fused), which reads each array once; it
needs the optional extra 'numba' and compiles its loop at the start of each run (about a second).
`auto` takes numba where it is installed and the run may save enough time for that second to pay
off (benchmarks/README.md, "The update's engine").
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from bptrain.errors import ConfigError, extra_needed

# What the compiled Adam step saves per parameter value updated, on the 2-core machine of
# benchmarks/README.md ("The update's engine": 0.34-0.42 ms -> 0.084 ms for 235,146 values).
SAVED_PER_VALUE = 1.3e-9  # seconds
# auto takes numba from this saving on: about twice what importing numba and compiling cost.
MIN_SAVED = 2.0  # seconds


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


def choose(setting: str, params: int, steps: int, max_time: float | None = None) -> Engine:
    """The engine for training.engine `setting`, for a run of `params` parameters, at most `steps`
    optimizer steps and at most `max_time` seconds of training (None: no limit); ConfigError when
    numba is asked for and cannot be imported."""
    if setting == "numpy":
        return Engine("numpy", "set")
    saved = params * steps * SAVED_PER_VALUE
    bound = f"{params:,} parameters x {steps:,} steps"
    if max_time is not None and max_time / 2 < saved:  # the update is less than half of each step
        saved, bound = max_time / 2, f"half of stopping.max_time {max_time:g} s"
    estimate = f"about {saved:.3g} s saved at most ({bound})"
    if setting == "auto":
        if not installed():
            return Engine("numpy", "auto: numba is not installed")
        if saved < MIN_SAVED:
            return Engine("numpy", f"auto: {estimate}, under {MIN_SAVED:g} s")
    elif not installed():
        raise extra_needed("training.engine numba needs numba", "numba")
    try:
        from bptrain.nn.fused import numba
    except Exception as e:  # a numba that does not fit this numpy, say
        problem = f"numba is installed but does not import: {type(e).__name__}: {e}"
        if setting == "auto":
            return Engine("numpy", f"auto: {problem}")
        raise ConfigError(f"training.engine numba: {problem}. Reinstall it (pip install 'bptrain[numba]') or set training.engine: numpy") from None
    return Engine("numba", "set" if setting == "numba" else f"auto: {estimate}", numba.__version__)
