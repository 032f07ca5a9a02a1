import tracemalloc

import numpy as np
import pytest

from bptrain.nn.losses import LOSSES
from bptrain.nn.model import build_mlp
from bptrain.nn.optimizers import OPTIMIZERS

BATCH, N_IN, UNITS, N_OUT = 512, 64, 256, 32
SMALLEST = BATCH * N_OUT * 8  # bytes of the smallest per-batch float64 array (the logits), 128 KiB
LIMIT = 100_000  # numpy's fixed 64 KiB ufunc buffer, (n,)-sized index gathers and bookkeeping


def targets(loss_name, n, rng):
    if loss_name == "cross_entropy":
        return rng.integers(0, N_OUT, n)
    return rng.integers(0, 2, (n, N_OUT)).astype(np.float64)


@pytest.mark.parametrize("optimizer, hyper", [
    ("sgd", {"momentum": 0.9, "nesterov": True, "weight_decay": 1e-4}),
    ("sgd", {"momentum": 0.9, "dampening": 0.1}),
    ("adam", {"weight_decay": 1e-4, "amsgrad": True}),
])
@pytest.mark.parametrize("loss_name", sorted(LOSSES))
def test_a_training_step_allocates_no_batch_or_param_sized_array(loss_name, optimizer, hyper):
    rng = np.random.default_rng(0)
    activations = ("relu", "tanh", "sigmoid", "identity")
    hidden = [{"units": UNITS, "activation": a, "init": "auto"} for a in activations]
    model = build_mlp(hidden, N_IN, N_OUT, dtype="float64", seed_or_rng=0, batch_size=BATCH)
    loss, opt = LOSSES.get(loss_name)(), OPTIMIZERS.get(optimizer)(model.params, **hyper)
    batches = [(rng.standard_normal((n, N_IN)), targets(loss_name, n, rng)) for n in (BATCH, BATCH, 300)]

    def train_step(x, y):
        _, grad = loss(model.forward(x), y)
        model.backward(grad)
        opt.step(1e-3)

    train_step(*batches[0])  # the first step may create the momentum buffer's contents
    tracemalloc.start()
    try:
        for x, y in batches:  # full batches, then a smaller last batch
            train_step(x, y)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert LIMIT < SMALLEST
    assert peak < LIMIT
