"""The config schema's component models are made from the core's declarations: same names, keys, defaults."""

import pytest

from bptrain.config import schema
from bptrain.nn.activations import ACTIVATIONS
from bptrain.nn.initializers import INITIALIZERS
from bptrain.nn.layers import LAYERS
from bptrain.nn.losses import LOSSES
from bptrain.nn.optimizers import OPTIMIZERS
from bptrain.nn.options import REQUIRED, SAME
from bptrain.nn.schedules import SCHEDULES

KINDS = [
    (schema.ACTIVATION_MODELS, ACTIVATIONS, "name"),
    (schema.LOSS_MODELS[1:], LOSSES, "name"),  # the first is `auto`, the config's own choice
    (schema.LAYER_MODELS, LAYERS, "type"),
    (schema.OPTIMIZER_MODELS, OPTIMIZERS, "name"),
    (schema.SCHEDULE_MODELS, SCHEDULES, "name"),
]
CASES = [(models, registry, key, name) for models, registry, key in KINDS for name in registry]


def model_of(models, key, name):
    (model,) = [m for m in models if m.model_fields[key].annotation.__args__ == (name,)]
    return model


@pytest.mark.parametrize("models, registry, key", KINDS, ids=[r.kind for _, r, _ in KINDS])
def test_every_registered_name_has_one_model_in_registry_order(models, registry, key):
    assert [m.model_fields[key].annotation.__args__[0] for m in models] == list(registry)


@pytest.mark.parametrize("models, registry, key, name", CASES, ids=[f"{r.kind}-{n}" for _, r, _, n in CASES])
def test_each_model_has_the_declared_keys_defaults_and_required_ones(models, registry, key, name):
    model, declared = model_of(models, key, name), registry[name].declaration
    options = [o for o in declared.options if o.in_config]
    assert list(model.model_fields) == [key] + [o.key for o in options]
    for option in options:
        field = model.model_fields[option.key]
        default = option.default if option.config_default is SAME else option.config_default
        assert field.is_required() == (default is REQUIRED), option.key
        if default is not REQUIRED and option.config is None:
            assert field.get_default() == default, option.key


def test_config_only_and_core_only_options():
    assert "lr" in schema.OPTIMIZER_MODELS[0].model_fields and "lr" not in OPTIMIZERS["sgd"].defaults
    assert "activation_options" not in model_of(schema.LAYER_MODELS, "type", "dense").model_fields
    assert "class_weights" in model_of(schema.LOSS_MODELS, "name", "cross_entropy").model_fields
    assert "weight" in LOSSES["cross_entropy"].declaration.defaults


@pytest.mark.parametrize("name", sorted(INITIALIZERS) + ["auto"])
def test_every_initializer_is_accepted(name):
    schema.DenseLayer(type="dense", units=2, init=name)
