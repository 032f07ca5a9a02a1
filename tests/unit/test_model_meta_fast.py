"""bptrain.runs.meta_fast never passes what the model file's schema (bptrain.runs.meta_schema) refuses.

The metadata of real model files (numeric, categorical with missing values, regression, every
layer type and activation options, and a file of bptrain 0.1) is altered one and two places at a
time: each value replaced by values of other types and ranges, keys removed, unknown keys added.
Whenever meta_fast passes a part, pydantic must accept it; the unaltered files pass meta_fast, so
that predict takes the path without pydantic.
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, call_cli
from pydantic import ValidationError

from bptrain.runs import meta_fast, meta_schema

EVERY_LAYER = (
    "model.layers=[{units: 8, activation: {name: leaky_relu, negative_slope: 0.1}, init: he_normal, bias_init: 0.1, dropout: 0.2},"
    " {type: batch_norm, momentum: 0.2}, {type: activation, activation: {name: gelu, approximate: tanh}},"
    " {type: dropout, p: 0.1}, {units: 4, activation: {name: softplus, beta: 2.0}}, {type: layer_norm, eps: 0.001},"
    " {type: activation, activation: elu}, {units: 3, activation: identity, init: auto}]"
)
RUNS = {
    "iris-every-layer": ("iris", ["--set", EVERY_LAYER]),
    "penguins": ("penguins", []),  # categorical columns, missing values filled
    "diabetes": ("diabetes", []),  # regression
}
OTHERS = [
    None, True, False, 0, 1, 2, -1, 10**30, 0.0, 0.5, 1.0, -0.5, 1e-9, float("inf"), float("nan"), "", "x", "auto", "tab",
    "Relu", "relu", "dense", "model", "float64", "numeric", "categorical", "mean", "constant", "number", "latin-1", "no-codec",
    "a" * 10_001, "0" * 64, [], [1.0], ["a", "b"], {}, {"name": "relu"}, {"type": "dense", "units": 3},
]


@pytest.fixture(scope="module")
def metas(tmp_path_factory) -> dict[str, dict]:
    found = {"bptrain-0.1": _meta(ROOT / "tests" / "fixtures" / "model-0.1" / "model.npz")}
    for name, (config, extra) in RUNS.items():
        runs = tmp_path_factory.mktemp(name)
        result = call_cli(
            "fit", ROOT / "configs" / f"{config}.yaml", "--runs-dir", runs, "--set", "stopping.max_steps=2", "--set", "report.figures=false", *extra
        )
        assert result.returncode == 0, result.stderr
        (run,) = runs.iterdir()
        found[name] = _meta(run / "model.npz")
    return found


def _meta(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as archive:
        return json.loads(str(archive["__meta__"]))


def parts(meta: dict) -> dict[str, object]:
    """What modelfile hands each schema: the whole, the preprocessing, and the layers as the config spells them."""
    found = {"ModelMeta": meta}
    prep = meta.get("preprocessing")
    if isinstance(prep, dict):
        found["Preprocessing" if "version" in prep else "PreprocessingV1"] = prep
    layers = meta.get("model", {}).get("layers") if isinstance(meta.get("model"), dict) else None
    if isinstance(layers, list) and all(isinstance(layer, dict) for layer in layers):
        as_config = []
        for layer in layers:
            layer = dict(layer)
            options = layer.pop("activation_options", {})
            if not isinstance(options, dict):
                return found
            if "activation" in layer:
                layer["activation"] = {"name": layer["activation"], **options}
            as_config.append(layer)
        found["LAYERS"] = as_config
    return found


def accepted(schema: str, value: object) -> bool:
    validator = getattr(meta_schema, schema)
    validate = validator.validate_python if schema == "LAYERS" else validator.model_validate
    try:
        validate(value, strict=True)
    except ValidationError:
        return False
    return True


def places(value: object, path: tuple = ()) -> list[tuple]:
    """The path of every key and list item in `value`."""
    found = [path] if path else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += places(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += places(item, (*path, i))
    return found


def altered(meta: dict, path: tuple, change: str, other: object = None) -> dict:
    """`meta` with the item at `path` replaced by `other`, deleted, or given an unknown sibling key;
    the containers on the path are copies, the rest is shared (nothing here changes it)."""
    meta = copy.copy(meta)
    *parents, last = path
    holder = meta
    for part in parents:
        holder[part] = copy.copy(holder[part])
        holder = holder[part]
    if change == "replace":
        holder[last] = other
    elif change == "delete" and isinstance(holder, dict):
        del holder[last]
    elif change == "extra" and isinstance(holder, dict):
        holder["unknown_key"] = 1
    return meta


def single_changes(meta: dict):
    for path in places(meta):
        yield altered(meta, path, "delete")
        yield altered(meta, path, "extra")
        for other in OTHERS:
            yield altered(meta, path, "replace", other)


def refused_but_passed(metas_to_try) -> tuple[list[str], int]:
    """(the schema parts meta_fast passed and pydantic refused, how many parts meta_fast passed)."""
    wrong, passed = [], 0
    for meta in metas_to_try:
        for schema, value in parts(meta).items():
            if meta_fast.passes(schema, value):
                passed += 1
                if not accepted(schema, value):
                    wrong.append(f"{schema}: {json.dumps(value)[:300]}")
    return wrong, passed


@pytest.mark.parametrize("name", ["bptrain-0.1", *RUNS])
def test_a_real_model_files_metadata_passes_without_pydantic(metas, name):
    found = parts(metas[name])
    assert set(found) == {"ModelMeta", "PreprocessingV1" if name == "bptrain-0.1" else "Preprocessing", "LAYERS"}
    for schema, value in found.items():
        assert meta_fast.passes(schema, value), schema
        assert accepted(schema, value), schema


@pytest.mark.parametrize("name", ["bptrain-0.1", *RUNS])
def test_no_single_change_passes_that_the_schema_refuses(metas, name):
    wrong, passed = refused_but_passed(single_changes(metas[name]))
    assert wrong == []
    assert passed > 1000  # many changes leave a valid file (a number for a number): the fast path is taken for them


@pytest.mark.parametrize("name", ["bptrain-0.1", *RUNS])
def test_no_pair_of_changes_passes_that_the_schema_refuses(metas, name):
    rng = random.Random(name)
    meta = metas[name]

    def pairs():
        for _ in range(1500):
            first = altered(meta, rng.choice(places(meta)), "replace", rng.choice(OTHERS))
            yield altered(first, rng.choice(places(first)), rng.choice(["replace", "delete", "extra"]), rng.choice(OTHERS))

    wrong, passed = refused_but_passed(pairs())
    assert wrong == []
    assert passed > 100


def test_other_schemas_are_always_left_to_pydantic(metas):
    assert not meta_fast.passes("CheckpointMeta", metas["iris-every-layer"])
    assert not meta_fast.passes("Unknown", {})
