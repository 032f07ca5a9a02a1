"""Memory: what a network and its encoded data will need, refused with a ConfigError naming the key
that drives it when that is more than the machine has, before anything big is allocated.

The estimate counts each parameter PARAMETER_COPIES times (weights, gradients, two optimizer state
slots, a scratch array, the best weights), each layer's activations for a batch (or an evaluation
chunk), the encoded inputs of every split in the model's dtype, and the float64 work copies of
the training rows while the preprocessing is fitted. It is a rough upper bound, not an account.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bptrain.errors import ConfigError

PARAMETER_COPIES = 6
ACTIVATION_COPIES = 3  # a layer's output, its input gradient and a dropout mask
ENCODING_COPIES = 2  # float64 blocks of one-hot columns and the matrix they are stacked into
EVAL_ROWS = 4096  # rows of one evaluation pass the estimate allows for: more than inference.INFERENCE_ROWS, so it errs high
CGROUP_LIMIT = Path("/sys/fs/cgroup/memory.max")
GIB = 2**30


@dataclass
class Cost:
    """Bytes one key of the config is responsible for, and how to say so."""

    key: str
    what: str
    fix: str
    nbytes: int


def available(cgroup_limit: Path = CGROUP_LIMIT) -> tuple[int, str] | None:
    """(bytes, who says so): the lowest of the physical memory, the cgroup limit and the address-space
    limit (ulimit -v); None when none is known."""
    limits = []
    try:
        limits.append((os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "this machine has"))
    except (ValueError, OSError, AttributeError):  # not every platform names these
        pass
    try:
        text = cgroup_limit.read_text().strip()
        if text.isdigit():
            limits.append((int(text), "the memory limit (cgroup) is"))
    except OSError:
        pass
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            limits.append((soft, "the address-space limit (ulimit -v) is"))
    except (ImportError, OSError, ValueError):
        pass
    return min(limits, key=lambda limit: limit[0]) if limits else None


def network_costs(layers: list[dict], n_in: int, n_out: int, rows: int, itemsize: int) -> list[Cost]:
    """The bytes of each dense layer (its parameters and activations), each charged to the wider of its
    two sides: its own units, or the hidden layer before it whose units are its inputs (a wide layer
    makes the next one's weight matrix big too). The output layer is charged to data.target when
    that is wider than the last hidden layer."""
    costs, width, last = [], n_in, None  # last: the cost of the dense layer whose units are `width`
    for i, layer in enumerate(layers):
        kind = layer.get("type", "dense")
        if kind == "dense":
            units = int(layer["units"])
            own = Cost(f"model.layers[{i}].units", f"{units} units need", "use fewer units", 0)
            costs.append(own)
            (last if last is not None and width > units else own).nbytes += _dense(width, units, rows, itemsize)
            last, width = own, units
        elif kind in ("batch_norm", "layer_norm"):
            costs.append(Cost(f"model.layers[{i}]", f"a {kind} layer needs", "remove it", (2 * width * PARAMETER_COPIES + 3 * rows * width) * itemsize))
    output = _dense(width, n_out, rows, itemsize)
    if last is not None and width >= n_out:  # the output layer is as large as the last hidden layer is wide
        last.nbytes += output
    else:
        costs.append(Cost("data.target", f"{n_out} classes (one output each) need", "use a target with fewer classes", output))
    return [c for c in costs if c.nbytes]


def _dense(n_in: int, units: int, rows: int, itemsize: int) -> int:
    return ((n_in + 1) * units * PARAMETER_COPIES + rows * (n_in + units) * ACTIVATION_COPIES) * itemsize


def input_costs(columns, rows: dict[str, int], itemsize: int, own_max: set[str]) -> list[Cost]:
    """The bytes of the encoded inputs of each categorical column, and of all numeric columns together;
    `own_max` names the columns whose max_categories the config sets under data.columns."""
    total, train = sum(rows.values()), rows["train"]
    per_input = total * itemsize + train * 8 * ENCODING_COPIES
    costs, numeric = [], 0
    for column in columns:
        if column.kind == "numeric":
            numeric += len(column.inputs())
            continue
        key = f"data.columns.{column.name}.max_categories" if column.name in own_max else "data.categorical.max_categories"
        costs.append(Cost(
            key,
            f"column {column.name!r}, as {len(column.inputs())} one-hot inputs for {total} rows, needs",
            f"lower it, or leave the column out with data.exclude: [{column.name}]",
            len(column.inputs()) * per_input,
        ))
    costs.append(Cost("data.train", f"{total} rows of {numeric} numeric inputs need", "train on fewer rows or columns", numeric * per_input))
    return costs


def check_fits(costs: list[Cost], cgroup_limit: Path = CGROUP_LIMIT) -> None:
    """ConfigError naming the largest cost's key when all of them together exceed the memory available."""
    limit = available(cgroup_limit)
    need = sum(c.nbytes for c in costs)
    if limit is None or need <= limit[0]:
        return
    top = max(costs, key=lambda c: c.nbytes)
    raise ConfigError(
        f"{top.key}: {top.what} ~{top.nbytes / GIB:.1f} GiB of memory to train, and the whole training ~{need / GIB:.1f} GiB, "
        f"but {limit[1]} {limit[0] / GIB:.1f} GiB; {top.fix}"
    )


def check_training(config, frames: dict, task: str, columns) -> None:
    """ConfigError when training `config` on `frames` (train/val/test, None when absent), with the
    fitted `columns`, would need more memory than there is."""
    from bptrain.config.schema import layer_specs

    rows = {name: len(frame) for name, frame in frames.items() if frame is not None}
    targets = config.data.targets
    n_out = frames["train"][targets[0]].nunique() if task == "classification" else len(targets)
    n_in = sum(len(c.inputs()) for c in columns)
    batch = max(min(config.training.batch_size, rows["train"]), min(EVAL_ROWS, max(rows.values())))
    size = np.dtype(config.model.dtype).itemsize
    own_max = {name for name, own in config.data.columns.items() if own.max_categories is not None}
    check_fits(network_costs(layer_specs(config.model), n_in, n_out, batch, size) + input_costs(columns, rows, size, own_max))
