"""The config schema and the core's registries name the same things, with the same defaults."""

import inspect

import pytest

from bptrain.config import schema
from bptrain.nn import ACTIVATIONS, INITIALIZERS, LOSSES, OPTIMIZERS, SCHEDULES, BatchNorm, LayerNorm
from bptrain.nn.model import LAYER_KEYS


def model_tag(model) -> str:
    for key in ("name", "type"):
        field = model.model_fields.get(key)
        if field is not None:
            return field.annotation.__args__[0]
    raise AssertionError(model)


def options(model) -> dict:
    """A schema model's options and their defaults (its tag, lr and interval/monitor excluded)."""
    return {k: f.get_default() for k, f in model.model_fields.items() if k not in ("name", "type")}


def by_tag(models):
    return {model_tag(m): m for m in models}


def test_activations():
    models = by_tag(schema.ACTIVATION_MODELS)
    assert set(models) == set(ACTIVATIONS)
    for name, model in models.items():
        assert options(model) == dict(getattr(ACTIVATIONS[name], "options", None) or {}), name


def test_losses():
    models = by_tag(schema.LOSS_MODELS)
    assert set(models) == set(LOSSES) | {"auto"}
    renamed = {"class_weights": "weight"}  # the config's name for PyTorch's `weight`
    for name, model in models.items():
        if name != "auto":
            assert {renamed.get(k, k): v for k, v in options(model).items()} == dict(LOSSES[name].options), name


def test_layers():
    models = by_tag(schema.LAYER_MODELS)
    assert set(models) == set(LAYER_KEYS)
    for name, layer in (("batch_norm", BatchNorm), ("layer_norm", LayerNorm)):
        defaults = {k: p.default for k, p in inspect.signature(layer).parameters.items()}
        assert options(models[name]) == defaults, name


def test_optimizers_take_pytorchs_options_and_defaults():
    models = by_tag(schema.OPTIMIZER_MODELS)
    assert set(models) == set(OPTIMIZERS)
    for name, model in models.items():
        found = options(model)
        assert found.pop("lr") == OPTIMIZERS[name].default_lr, name
        assert found == dict(OPTIMIZERS[name].defaults), name


def test_schedules():
    models = by_tag(schema.SCHEDULE_MODELS)
    assert set(models) == set(SCHEDULES)
    for name, model in models.items():
        parameters = inspect.signature(SCHEDULES[name]).parameters
        wanted = {k: p.default for k, p in parameters.items() if k not in ("t", "lr")}
        found = {k: v for k, v in options(model).items() if k not in ("interval", "monitor")}
        if "total" in found:
            assert found.pop("total") is None  # filled in from stopping.max_epochs
            wanted.pop("total")
        if name == "reduce_on_plateau":
            assert found.pop("mode") == "auto"  # resolved from the monitored metric
            wanted.pop("mode")
        required = {k for k, v in wanted.items() if v is inspect.Parameter.empty}
        assert {k for k, f in model.model_fields.items() if f.is_required() and k != "name"} == required, name
        assert {k: v for k, v in found.items() if k not in required} == {k: v for k, v in wanted.items() if k not in required}, name


@pytest.mark.parametrize("name", sorted(INITIALIZERS) + ["auto"])
def test_every_initializer_is_accepted(name):
    schema.DenseLayer(type="dense", units=2, init=name)
