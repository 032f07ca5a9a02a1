"""The backprop core: layers, activations, losses, optimizers and schedules in NumPy alone."""

from bptrain.nn.activations import ACTIVATIONS
from bptrain.nn.gradcheck import gradcheck
from bptrain.nn.initializers import INITIALIZERS, auto_initializer
from bptrain.nn.layers import LAYERS, Activation, Dense
from bptrain.nn.losses import LOSSES, loss_for_task
from bptrain.nn.model import Sequential, build_mlp
from bptrain.nn.optimizers import OPTIMIZERS, Optimizer
from bptrain.nn.params import Param
from bptrain.nn.schedules import SCHEDULES

__all__ = [
    "ACTIVATIONS",
    "INITIALIZERS",
    "LAYERS",
    "LOSSES",
    "OPTIMIZERS",
    "SCHEDULES",
    "Activation",
    "Dense",
    "Optimizer",
    "Param",
    "Sequential",
    "auto_initializer",
    "build_mlp",
    "gradcheck",
    "loss_for_task",
]
