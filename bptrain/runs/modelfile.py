"""The metadata of model and checkpoint files, validated as strictly as a config before it is used.

Every field is checked (type, range, allowed names), then the fields against each other (the loss
against the task, the output units against the classes, the inputs against the columns) and the
arrays' headers against the shapes the metadata implies, all before any array is read. A problem
is a ModelFileError naming the file and the field path; a file's sha256 is no help here, since
whoever crafts a file can hash it.

The fields are checked against bptrain.runs.meta_schema (pydantic), which words every problem; a
model file that bptrain.runs.meta_fast finds plainly valid, as every file bptrain writes is, is used
without importing it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from bptrain.data.columns import Column
from bptrain.data.preprocess import Preprocessor
from bptrain.errors import ConfigError, ModelFileError
from bptrain.nn.losses import LOSSES
from bptrain.runs import checkpoint, meta_fast
from bptrain.runs.checkpoint import BptrainFile, Expected
from bptrain.training import assembly

MAX_PARAMETERS = 2**28  # weights and statistics of one network: 1 GiB in float32, 2 GiB in float64


CHECKPOINT_GROUPS = ("model/", "optim/", "best/")


def check_checkpoint(file: BptrainFile) -> dict[str, Expected]:
    """Validate a checkpoint's metadata and array names; the shapes follow from the model the run's
    config builds, so Trainer.restore compares them. Returns what `file.read` checks before reading."""
    _validate(file, "CheckpointMeta", file.meta)
    names = list(file.headers)
    if "order" not in names:
        raise file.invalid("array 'order' is missing")
    stray = [n for n in names if n != "order" and not n.startswith(CHECKPOINT_GROUPS)]
    if stray:
        raise file.invalid(f"unexpected array {stray[0]!r}, which no part of the training state holds")
    if len(file.headers["order"].shape) != 1:
        raise file.invalid(f"array 'order' has shape {file.headers['order'].shape}; it must hold one index per training row")
    expected = {n: Expected(file.headers[n].shape) for n in names}
    expected["order"] = Expected(file.headers["order"].shape, "int64")
    return expected


def load(path: Path):
    """(model, loss, preprocessor, metadata) of the model file `path`, every part checked before use."""
    with checkpoint.open_file(path) as file:
        meta = file.meta
        prep_meta = _check_model_meta(file)
        spec = meta["model"]
        loss = _loss(file, meta["loss"], spec, prep_meta)
        model = assembly.model_for(spec, None, batch_size=1)
        expected = {name: Expected(a.shape, spec["dtype"]) for name, a in _model_arrays(model).items()}
        arrays = file.read({**expected, **_prep_arrays(prep_meta)})
        _check_finite(file, arrays)
        scales = [n for n in ("prep.scale", "prep.target_scale") if n in arrays and not (arrays[n] > 0).all()]
        if scales:
            raise file.invalid(f"array {scales[0]!r} holds scales that are not positive")
    prep = Preprocessor.from_arrays(arrays, prep_meta)
    model.load_state_dict({name: arrays[name] for name in expected})
    return model, loss, prep, meta


def _check_model_meta(file: BptrainFile) -> dict[str, Any]:
    """Every field of a model file's metadata, and the network against the preprocessing; returns the preprocessing."""
    if file.meta.get("kind") == "checkpoint":
        raise ModelFileError(f"{file.path}: a checkpoint, not a model file; give the run folder or its model.npz")
    _validate(file, "ModelMeta", file.meta)
    prep = _preprocessing(file)
    spec = file.meta["model"]
    _check_layers(file, spec)
    inputs = len(prep["inputs"] if "inputs" in prep else prep["features"])
    if spec["n_in"] != inputs:
        raise file.invalid(f"model.n_in: {spec['n_in']} inputs, but the preprocessing makes {inputs}")
    return prep


def _model_arrays(model) -> dict[str, np.ndarray]:
    """The live arrays a model's state holds (its params and buffers), without copying them."""
    return {**{p.name: p.value for p in model.params}, **model.buffers}


def _check_finite(file: BptrainFile, arrays: dict[str, np.ndarray]) -> None:
    for name in arrays:
        if not np.isfinite(arrays[name]).all():
            raise file.invalid(f"array {name!r} holds non-finite values (NaN or infinity)")


def _preprocessing(file: BptrainFile) -> dict[str, Any]:
    """The preprocessing metadata, validated, with its inputs checked against its columns."""
    prep = file.meta["preprocessing"]
    if "version" not in prep:
        _validate(file, "PreprocessingV1", prep, "preprocessing")
        return prep
    _validate(file, "Preprocessing", prep, "preprocessing")
    inputs = [name for c in prep["columns"] for name in Column(**c).inputs()]
    if prep["inputs"] != inputs:
        raise file.invalid(f"preprocessing.inputs: {len(prep['inputs'])} inputs, but the columns make {len(inputs)}: {', '.join(inputs[:10])}")
    if prep["task"] == "multilabel" and prep["classes"] != prep["targets"]:
        raise file.invalid("preprocessing.classes: a multilabel model's classes must be its targets")
    if prep["task"] == "classification" and (len(set(prep["classes"])) != len(prep["classes"]) or len(prep["classes"]) < 2):
        raise file.invalid(f"preprocessing.classes: must be two or more distinct labels (got {prep['classes']})")
    return prep


def _prep_arrays(prep: dict[str, Any]) -> dict[str, Expected]:
    """The statistics arrays the preprocessing metadata implies."""
    if "version" not in prep:
        n = (len(prep["features"]),)
        return {"prep.mean": Expected(n, "float64"), "prep.scale": Expected(n, "float64")}
    n, targets = (len(prep["inputs"]),), (len(prep["targets"]),)
    arrays = {"prep.center": Expected(n, "float64"), "prep.scale": Expected(n, "float64")}
    if prep["task"] == "regression":
        arrays.update({"prep.target_center": Expected(targets, "float64"), "prep.target_scale": Expected(targets, "float64")})
    return arrays


def _check_layers(file: BptrainFile, spec: dict[str, Any]) -> None:
    """Each layer as the config schema would accept it, and the network under MAX_PARAMETERS."""
    as_config = []
    for i, layer in enumerate(spec["layers"]):
        layer = dict(layer)
        options = layer.pop("activation_options", {})
        if not isinstance(options, dict):
            raise file.invalid(f"model.layers[{i}].activation_options: must be an object (got {shown(options)})")
        if "activation" in layer:
            layer["activation"] = {"name": layer["activation"], **options}
        as_config.append(layer)
    _validate(file, "LAYERS", as_config, "model.layers")
    _reject_non_finite(file, spec["layers"], "model.layers")
    count, width = 0, spec["n_in"]
    for layer in spec["layers"]:
        kind = layer.get("type", "dense")
        if kind == "dense":
            count, width = count + (width + 1) * layer["units"], layer["units"]
        elif kind in ("batch_norm", "layer_norm"):
            count += 4 * width
    count += (width + 1) * spec["n_out"]
    if count > MAX_PARAMETERS:
        raise file.invalid(f"model.layers: {count} parameters, over bptrain's limit of {MAX_PARAMETERS}")


def _loss(file: BptrainFile, loss: dict[str, Any], spec: dict[str, Any], prep: dict[str, Any]):
    """The loss, built from its options, after checking that it fits the task and the output units."""
    _reject_non_finite(file, loss["options"], "loss.options")
    task = prep["task"]
    name, classes = loss["name"], prep["classes"]
    fits = {"multilabel": name == "binary_cross_entropy", "classification": LOSSES.get(name).task == "classification"}
    if name == "binary_cross_entropy" and task == "classification" and len(classes) != 2:
        fits["classification"] = False
    if not fits.get(task, LOSSES.get(name).task == "regression"):
        raise file.invalid(f"loss.name: {name} does not fit the {task} task of preprocessing.task")
    targets = len(prep["targets"]) if "targets" in prep else 1
    units = assembly.output_units(name, task, len(classes), targets)
    if spec["n_out"] != units:
        raise file.invalid(f"model.n_out: {spec['n_out']} output units, but a {task} model with this loss and these classes has {units}")
    try:
        made = assembly.make_loss(name, loss["options"], spec["dtype"])
    except (ConfigError, TypeError, ValueError) as e:
        raise file.invalid(f"loss.options: {e}") from None
    for key in ("weight", "pos_weight"):
        value = getattr(made, key, None)
        if isinstance(value, (tuple, np.ndarray)) and len(value) != units:
            raise file.invalid(f"loss.options.{key}: {len(value)} entries for {units} outputs")
    return made


def _validate(file: BptrainFile, schema: str, value: Any, where: str = "") -> None:
    """`value` against bptrain.runs.meta_schema's `schema` (a name there): passed at once when
    meta_fast finds it plainly valid, else validated by that schema, whose words name the problem."""
    if meta_fast.passes(schema, value):
        return
    from bptrain.runs import meta_schema  # where needed: pydantic and the schema take a third of predict's start

    meta_schema.validate(file, getattr(meta_schema, schema), value, where)


def _reject_non_finite(file: BptrainFile, value: Any, where: str) -> None:
    """Metadata that describes a model holds finite numbers only."""
    stack = [(where, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise file.invalid(f"{path}: must be a finite number (got {item})")
        if isinstance(item, dict):
            stack += [(f"{path}.{k}", v) for k, v in item.items()]
        elif isinstance(item, list):
            stack += [(f"{path}[{i}]", v) for i, v in enumerate(item)]


def shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, (dict, list)) else f"a JSON {'object' if isinstance(value, dict) else 'list'}"
    return text if len(text) <= 60 else text[:57] + "..."
