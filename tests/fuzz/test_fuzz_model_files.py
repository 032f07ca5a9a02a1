"""Fuzzing model and checkpoint files: `predict`, `evaluate` and `fit --resume` never end in an internal error.

The files of a small fitted run are mutated as an attacker could: a value anywhere in the JSON
metadata replaced by another of any type, keys deleted or added, deep nesting, huge numbers; arrays
replaced by other shapes, dtypes, empty ones or Python objects; zip members added, removed,
renamed or duplicated, .npy headers claiming huge shapes; bytes cut or flipped. The metadata's
sha256 is recomputed with bptrain's own content_hash, so most files pass the integrity check and
reach the code behind it. Every outcome must be a documented exit code other than 1 (fuzzing.py).
"""

from __future__ import annotations

import io
import json
import shutil
import uuid
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from fuzzing import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from bptrain.runs.checkpoint import content_hash

DEEP = "zzdeepzz"  # stands for a deeply nested value, written into the JSON text as it is
WORDS = [
    "", "dense", "batch_norm", "layer_norm", "dropout", "activation", "relu", "softplus", "gelu", "float16", "float64",
    "int8", "object", "<U3", "complex128", "cross_entropy", "binary_cross_entropy", "mse", "huber", "auto",
    "classification", "regression", "multilabel", "numeric", "categorical", "standard", "minmax", "robust", "none",
    "error", "drop", "mean", "constant", "most_frequent", "species", "sepal_length", "island", "year", "tab", ";",
    "latin-1", "rot13", "no-such-codec", "checkpoint", "model", "PCG64", "MT19937", "Philox", "../x", "ä", "🙂", "a" * 200,
]
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 20),
    st.sampled_from([-1, 0, 1, 2**31, 2**63, -(2**63), 10**12, 10**30, 10**4000, 1e308, -1e308, 5e-324, 0.5]),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(WORDS),
    st.text(max_size=10),
)
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.sampled_from(WORDS), st.text(max_size=6)), inner, max_size=4)), max_leaves=8)
NAMES = st.one_of(
    st.sampled_from([
        "layers.0.W", "layers.0.b", "layers.1.W", "layers.99.W", "prep.center", "prep.scale", "prep.target_center",
        "prep.target_scale", "model/layers.0.W", "optim/t", "optim/m.layers.0.W", "best/layers.0.W", "order", "x", "",
        "../evil", "a/b", "ä", "__meta__", " layers.0.W", "layers.0.W.npy",
    ]),
    st.text(max_size=12),
)
MEMBER_NAMES = st.one_of(NAMES, st.sampled_from(["a/", "..", "__meta__", "__meta__.npy", "x.npz"])).filter(lambda name: name.split("\x00")[0])  # zipfile cannot write a name that is empty up to a NUL
ARRAY_NAMES = NAMES.filter(lambda name: not name.startswith("\x00"))  # the member is NAME.npy: the same limit
DTYPES = ["float16", "float32", "float64", ">f4", "int8", "int64", "uint8", "bool", "complex64", "<U4", "S4", "datetime64[s]", "object", "V0", "<U0"]


@st.composite
def arrays(draw, like: bool = True) -> tuple[str, Any]:
    """(how, argument): a recipe for an array, applied to the array it replaces (see `_array`)."""
    how = draw(st.sampled_from(["dtype", "shape", "fill", "empty", "scalar", "zeros", "structured", "big"]))
    if how == "dtype":
        return how, draw(st.sampled_from(DTYPES))
    if how == "shape":
        return how, draw(st.sampled_from(["transpose", "flatten", "add_axis", "drop_row", "add_row", "drop_axis"]))
    if how == "fill":
        return how, draw(st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e38, -1e38, 0.0, 1e-45, -1.0, 2**40]))
    if how == "zeros":
        return how, (tuple(draw(st.lists(st.integers(0, 7), max_size=3))), draw(st.sampled_from(DTYPES)))
    if how == "big":
        return how, draw(st.sampled_from([(1000, 1000), (10**6,), (1, 10**6)]))
    return how, None


def _array(original: np.ndarray, recipe: tuple[str, Any]) -> np.ndarray:
    how, argument = recipe
    if how == "dtype":
        try:
            return original.astype(argument)
        except (TypeError, ValueError):
            return np.zeros(original.shape, argument)
    if how == "shape":
        reshaped = {
            "transpose": lambda a: a.T.copy(),
            "flatten": lambda a: a.reshape(-1),
            "add_axis": lambda a: a[None],
            "drop_row": lambda a: a[:-1] if a.ndim else a,
            "add_row": lambda a: np.concatenate([a, a[:1]]) if a.ndim else a[None],
            "drop_axis": lambda a: a[0] if a.ndim and len(a) else a,
        }
        return reshaped[argument](original)
    if how == "fill":
        try:
            with np.errstate(invalid="ignore", over="ignore"):  # nan or inf into an integer array: the mutation wanted
                return np.full(original.shape, argument, original.dtype)
        except (OverflowError, ValueError):
            return np.full(original.shape, argument)
    if how == "zeros":
        return np.zeros(*argument)
    if how == "empty":
        return original[:0] if original.ndim else np.zeros((0,), original.dtype)
    if how == "scalar":
        return np.array(1.5, original.dtype if original.dtype.kind in "fiub" else "float64")
    if how == "structured":
        return np.zeros(original.shape, [("a", "<f4"), ("b", "<i8")])
    return np.zeros(argument, "float32")


@st.composite
def mutations(draw) -> list[tuple]:
    """One to three changes, each a tuple (kind, ...) applied by `mutate`; indexes pick a path or an array."""
    index = st.integers(0, 10**6)
    kinds = {
        "meta_replace": lambda: (index, st.one_of(JSON_VALUES, st.just("mirror"))),
        "meta_delete": lambda: (index,),
        "meta_add": lambda: (index, st.one_of(st.sampled_from(WORDS), st.text(max_size=8)), JSON_VALUES),
        "meta_deep": lambda: (index, st.integers(1, 5000), st.sampled_from("[{")),
        "meta_text": lambda: (st.one_of(st.text(max_size=40), st.sampled_from(["[]", "1", '"x"', "null", "{}", "NaN", "{\"format_version\": 1}", "{" * 100, '{"format_version": ' + "9" * 5000 + "}"])), st.sampled_from(["str", "bytes", "2d", "int"])),
        "hash": lambda: (st.sampled_from(["stale", "delete", 5, None, ["x"], ""]),),
        "array_replace": lambda: (index, arrays()),
        "array_delete": lambda: (index,),
        "array_add": lambda: (ARRAY_NAMES, arrays()),
        "array_rename": lambda: (index, ARRAY_NAMES),
        "member_add": lambda: (MEMBER_NAMES, st.one_of(st.binary(max_size=64), st.just(b""))),
        "member_remove": lambda: (index,),
        "member_rename": lambda: (index, MEMBER_NAMES),
        "member_duplicate": lambda: (index, arrays()),
        "member_header": lambda: (index, st.sampled_from(["<f4", "<f8", "|u1", "<U0", "V0", "|b1", "O"]), st.sampled_from([(2**40,), (2**31, 2**31), (10**13,), (-1,), (0,), (3, -5), (10**6,), (1, 2**62)])),
        "bytes_cut": lambda: (st.floats(0.0, 1.0),),
        "bytes_flip": lambda: (st.floats(0.0, 1.0), st.integers(1, 255)),
    }
    chosen = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(sorted(kinds)))
        chosen.append((kind, *(draw(s) for s in kinds[kind]())))
    chosen.append(("compression", draw(st.booleans())))
    return chosen


# --- applying a mutation ----------------------------------------------------------------------


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(node, dict):
        for key, item in node.items():
            found += _paths(item, prefix + (key,))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found += _paths(item, prefix + (i,))
    return found


def _set(meta: Any, path: tuple, value: Any) -> Any:
    """`meta` with the value at `path` replaced (the root too)."""
    if not path:
        return value
    node = meta
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return meta


def _mutate_meta(meta: Any, change: tuple) -> Any:
    kind, *args = change
    paths = _paths(meta)
    if kind == "meta_replace":
        value = args[1] if args[1] != "mirror" else _get(meta, paths[(args[0] * 7) % len(paths)])
        return _set(meta, paths[args[0] % len(paths)], json.loads(json.dumps(value)))
    if kind == "meta_delete":
        path = paths[args[0] % len(paths)]
        if path:
            parent = _get(meta, path[:-1])
            del parent[path[-1]]
        return meta
    if kind == "meta_add":
        target = _get(meta, paths[args[0] % len(paths)])
        if isinstance(target, dict):
            target[args[1]] = args[2]
        elif isinstance(target, list):
            target.append(args[2])
        return meta
    return _set(meta, paths[args[0] % len(paths)], DEEP)  # meta_deep


def _get(meta: Any, path: tuple) -> Any:
    for part in path:
        meta = meta[part]
    return meta


def _deep(depth: int, bracket: str) -> str:
    return "[" * depth + "]" * depth if bracket == "[" else '{"a": ' * depth + "1" + "}" * depth


def _meta_text(meta: Any, deep: tuple | None) -> str:
    text = json.dumps(meta, sort_keys=True)
    return text if deep is None else text.replace(json.dumps(DEEP), _deep(*deep))


def _rehash(meta: Any, arrays: dict[str, np.ndarray], text: str) -> str:
    """The metadata text with the sha256 an attacker would compute, when it can be computed."""
    try:
        loaded = json.loads(text)
        if isinstance(loaded, dict):
            loaded["sha256"] = content_hash(arrays, loaded)
            return json.dumps(loaded, sort_keys=True)
    except (RecursionError, ValueError, TypeError):
        pass
    return text


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _claiming(dtype: str, shape: tuple) -> bytes:
    """A .npy header that claims `shape`, followed by a few bytes instead of the data."""
    header = "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (dtype, shape)
    header += " " * (63 - (len(header) + 10) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode("latin-1") + b"\0" * 16


def _meta_member(text: str, form: str) -> bytes:
    array = {"str": np.array(text), "bytes": np.array(text.encode("utf-8", "replace")), "2d": np.array([[text, text]]), "int": np.arange(3)}[form]
    return _npy(array)


def mutate(path: Path, changes: list[tuple]) -> list[str]:
    """Rewrite the .npz at `path` with `changes` applied, re-hashed where the changes leave that possible.

    Returns what changed, as lines for a person to read.
    """
    with np.load(path, allow_pickle=False) as archive:
        meta = json.loads(str(archive["__meta__"]))
        arrays = {name: archive[name] for name in archive.files if name != "__meta__"}
    before = json.loads(json.dumps(meta)), dict(arrays)
    deep = next(((c[2], c[3]) for c in changes if c[0] == "meta_deep"), None)
    for change in changes:
        if change[0].startswith("meta_") and change[0] != "meta_text":
            meta = _mutate_meta(meta, change)
        elif change[0].startswith("array_"):
            _mutate_arrays(arrays, change)
    text = _meta_text(meta, deep)
    hashing = next((c[1] for c in changes if c[0] == "hash"), "rehash")
    if hashing == "rehash":
        text = _rehash(meta, arrays, text)
    elif hashing != "stale" and isinstance(meta, dict):
        meta.pop("sha256", None)
        if hashing != "delete":
            meta["sha256"] = hashing
        text = _meta_text(meta, deep)
    members = [("__meta__.npy", _meta_member(text, "str"))] + [(f"{name}.npy", _npy(a)) for name, a in arrays.items()]
    for change in changes:
        if change[0] == "meta_text":
            members[0] = ("__meta__.npy", _meta_member(change[1], change[2]))
        elif change[0].startswith("member_"):
            _mutate_members(members, change)
    compressed = next(c[1] for c in changes if c[0] == "compression")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED) as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a duplicate member name is one of the mutations
        for name, content in members:
            archive.writestr(name, content)
    for change in changes:
        if change[0].startswith("bytes_"):
            _mutate_bytes(path, change)
    return _difference(*before, text, arrays, members)


def _flat(value: Any, prefix: str = "") -> dict[str, str]:
    """Dotted path -> short JSON text of each leaf."""
    if isinstance(value, dict) and value:
        return {k: v for key, item in value.items() for k, v in _flat(item, f"{prefix}.{key}" if prefix else str(key)).items()}
    if isinstance(value, list) and value:
        return {k: v for i, item in enumerate(value) for k, v in _flat(item, f"{prefix}[{i}]").items()}
    text = json.dumps(value)
    return {prefix or "(root)": text if len(text) <= 80 else text[:77] + "..."}


def _difference(meta: Any, arrays: dict, text: str, new_arrays: dict, members: list) -> list[str]:
    """The metadata values, arrays and zip members that differ from the original file's."""
    try:
        old, new = _flat(meta), _flat(json.loads(text))
        lines = [f"meta {k}: {old.get(k, '(absent)')} -> {new.get(k, '(absent)')}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k) and k != "sha256"]
    except (RecursionError, ValueError):
        lines = [f"meta: {len(text)} characters: {text[:100]!r}..."]
    kind = {name: f"{a.dtype.str} {a.shape}" for name, a in arrays.items()}
    for name in sorted(set(arrays) | set(new_arrays)):
        a, b = arrays.get(name), new_arrays.get(name)
        if a is None or b is None or a.dtype != b.dtype or a.shape != b.shape or a.tobytes() != b.tobytes():
            lines.append(f"array {name!r}: {kind.get(name, '(absent)')} -> {f'{b.dtype.str} {b.shape}' if b is not None else '(absent)'}")
    return lines + ["zip members: " + ", ".join(repr(name) for name, _ in members)]


def _mutate_arrays(arrays: dict[str, np.ndarray], change: tuple) -> None:
    kind, *args = change
    names = sorted(arrays)
    if kind == "array_add":
        arrays[args[0]] = _array(np.zeros((2, 3), "float32"), args[1])
        return
    if not names:
        return
    name = names[args[0] % len(names)]
    if kind == "array_replace":
        arrays[name] = _array(arrays[name], args[1])
    elif kind == "array_delete":
        del arrays[name]
    else:  # array_rename
        arrays[args[1]] = arrays.pop(name)


def _mutate_members(members: list[tuple[str, bytes]], change: tuple) -> None:
    kind, *args = change
    if kind == "member_add":
        members.append((args[0], args[1]))
        return
    if not members:
        return
    i = args[0] % len(members)
    name, content = members[i]
    if kind == "member_remove":
        del members[i]
    elif kind == "member_rename":
        members[i] = (args[1], content)
    elif kind == "member_duplicate":
        members.append((name, _npy(_array(np.zeros((2, 3), "float32"), args[1]))))
    else:  # member_header
        members[i] = (name, _claiming(args[1], args[2]))


def _mutate_bytes(path: Path, change: tuple) -> None:
    data = bytearray(path.read_bytes())
    if not data:
        return
    at = int(change[1] * (len(data) - 1))
    if change[0] == "bytes_cut":
        del data[at:]
    else:
        data[at] ^= change[2]
    path.write_bytes(bytes(data))


# --- the tests --------------------------------------------------------------------------------


def _copy(run: Path) -> Path:
    """A copy of `run` beside it (so its config's relative data path still holds)."""
    copy = run.parent / f"copy-{uuid.uuid4().hex[:8]}"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("*.png", "*.md"))
    return copy


def _shown(name: str, changes: list[tuple], difference: list[str]) -> str:
    return f"{name} mutated by {repr(changes)[:600]}:\n" + "\n".join(f"  {line}" for line in difference)


@given(st.sampled_from(["iris", "penguins"]), mutations())
def test_predict_and_evaluate_on_a_mutated_model_file(fitted, dataset, changes):
    run = _copy(fitted[dataset])
    try:
        difference = mutate(run / "model.npz", changes)
        data = run.parent.parent / f"{dataset}.csv"
        shown, files = _shown(f"{run.name}/model.npz", changes, difference), {"model.npz": run / "model.npz"}
        run_cli(["predict", run, data, "--proba"], shown, files)
        run_cli(["evaluate", run / "model.npz", "--data", data], shown, files)
        run_cli(["evaluate", run], shown, files)
    finally:
        shutil.rmtree(run)


@settings(max_examples=max(3, settings.default.max_examples // 4))
@given(st.sampled_from(["iris", "penguins"]), mutations(), st.booleans())
def test_resume_from_a_mutated_checkpoint(fitted, dataset, changes, both):
    run = _copy(fitted[dataset])
    try:
        difference = mutate(run / "checkpoints" / "last.npz", changes)
        if both:
            mutate(run / "checkpoints" / "previous.npz", changes)
        shown = _shown(f"{run.name}/checkpoints/last.npz" + (" and previous.npz" if both else ""), changes, difference)
        run_cli(["fit", "--resume", run, "-q", "--set", "stopping.max_epochs=3"], shown, {"checkpoints": run / "checkpoints"})
    finally:
        shutil.rmtree(run)
