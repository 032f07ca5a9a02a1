"""The backprop core: layers, activations, losses, optimizers and schedules in NumPy alone."""

from bptrain.nn.activations import ACTIVATIONS
from bptrain.nn.clipping import clip_global_norm, clip_norm_per_param, clip_value
from bptrain.nn.gradcheck import gradcheck
from bptrain.nn.initializers import INITIALIZERS, auto_initializer
from bptrain.nn.layers import LAYERS, Activation, BatchNorm, Dense, Dropout, LayerNorm
from bptrain.nn.losses import LOSSES, loss_for_task
from bptrain.nn.model import Sequential, build_model
from bptrain.nn.optimizers import OPTIMIZERS, Optimizer
from bptrain.nn.params import Param
from bptrain.nn.regularizers import Regularizer
from bptrain.nn.schedules import SCHEDULES

__all__ = [
    "ACTIVATIONS",
    "INITIALIZERS",
    "LAYERS",
    "LOSSES",
    "OPTIMIZERS",
    "SCHEDULES",
    "Activation",
    "BatchNorm",
    "Dense",
    "Dropout",
    "LayerNorm",
    "Optimizer",
    "Param",
    "Regularizer",
    "Sequential",
    "auto_initializer",
    "build_model",
    "clip_global_norm",
    "clip_norm_per_param",
    "clip_value",
    "gradcheck",
    "loss_for_task",
]
