import tracemalloc

import numpy as np
import pytest

from bptrain.nn.activations import ACTIVATIONS
from bptrain.nn.clipping import clip_global_norm, clip_norm_per_param, clip_value
from bptrain.nn.losses import LOSSES
from bptrain.nn.model import build_model
from bptrain.nn.optimizers import OPTIMIZERS
from bptrain.nn.regularizers import Regularizer

BATCH, N_IN, UNITS, N_OUT = 512, 64, 128, 32
SMALLEST = BATCH * N_OUT * 8  # bytes of the smallest per-batch float64 array (the logits), 128 KiB
LIMIT = 100_000  # numpy's fixed 64 KiB ufunc buffer, (n,)-sized index gathers and bookkeeping

LAYERS = [  # every layer type and every activation, some with options; few dense layers, so few matmuls
    {"units": UNITS, "activation": "relu", "dropout": 0.2},
    *[{"type": "activation", "activation": name} for name in sorted(ACTIVATIONS)],
    {"type": "activation", "activation": "gelu", "activation_options": {"approximate": "tanh"}},
    {"type": "activation", "activation": "softplus", "activation_options": {"beta": 2.0, "threshold": 1.0}},
    {"type": "batch_norm"},
    {"type": "layer_norm"},
    {"type": "dropout", "p": 0.5},
    {"units": UNITS, "activation": "tanh"},
]


def targets(loss_name, n, rng):
    if loss_name == "cross_entropy":
        return rng.integers(0, N_OUT, n)
    return rng.integers(0, 2, (n, N_OUT)).astype(np.float64)


def assert_training_allocates_nothing_batch_sized(loss, optimizer, hyper):
    rng = np.random.default_rng(0)
    model = build_model(LAYERS, N_IN, N_OUT, dtype="float64", rng=np.random.default_rng(0),
                        noise_rng=np.random.default_rng(1), batch_size=BATCH)
    opt = OPTIMIZERS.get(optimizer)(model.params, **hyper)
    regularizer = Regularizer(model.params, l1=1e-4, l2=1e-4, include_bias=True)
    name = next(n for n, cls in LOSSES.items() if isinstance(loss, cls))
    batches = [(rng.standard_normal((n, N_IN)), targets(name, n, rng)) for n in (BATCH, BATCH, 300)]

    def train_step(x, y):
        _, grad = loss(model.forward(x), y)
        model.backward(grad)
        regularizer.add_grad()
        clip_norm_per_param(model.params, 10.0)
        clip_global_norm(model.params, 1.0)
        clip_value(model.params, 0.1)
        opt.step(1e-3)

    train_step(*batches[0])  # the first step reserves scratch and may fill the momentum buffers
    tracemalloc.start()
    try:
        for x, y in batches:  # full batches, then a smaller last batch
            train_step(x, y)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert LIMIT < SMALLEST
    assert peak < LIMIT


@pytest.mark.parametrize("optimizer, hyper", [
    ("sgd", {"momentum": 0.9, "nesterov": True, "weight_decay": 1e-4}),
    ("sgd", {"momentum": 0.9, "dampening": 0.1}),
    ("adam", {"weight_decay": 1e-4, "amsgrad": True}),
])
def test_a_training_step_allocates_no_batch_or_param_sized_array(optimizer, hyper):
    assert_training_allocates_nothing_batch_sized(LOSSES.get("mse")(), optimizer, hyper)


LOSS_CASES = [(name, {}) for name in sorted(LOSSES)] + [
    ("cross_entropy", {"label_smoothing": 0.1, "weight": np.linspace(0.5, 2.0, N_OUT).tolist()}),
    ("binary_cross_entropy", {"pos_weight": np.linspace(0.5, 2.0, N_OUT).tolist()}),
    ("huber", {"delta": 0.5}),
]


@pytest.mark.parametrize("loss_name, options", LOSS_CASES, ids=[f"{n}-{sorted(o)}" for n, o in LOSS_CASES])
def test_no_loss_allocates_anything_batch_sized_either(loss_name, options):
    assert_training_allocates_nothing_batch_sized(LOSSES.get(loss_name)(**options), "adam", {})
