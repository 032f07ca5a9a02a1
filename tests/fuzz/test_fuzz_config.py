"""Fuzzing configs: `check`, `fit`, `tune` and `--set` on broken YAML never end in an internal error.

Configs are the shipped ones (and one that sets every section, and iris with a tune section) with keys dropped, renamed or
retyped, values replaced by odd ones (strings, booleans, negative, huge, NaN, infinite numbers,
lists where mappings are meant, deep nesting, alias bombs), duplicate keys and raw text edits,
plus raw YAML-ish text. Every outcome must be a documented exit code other than 1 (fuzzing.py).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings, strategies as st

from fuzzing import run_cli

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = {path.stem: yaml.safe_load(path.read_text(encoding="utf-8")) for path in sorted((ROOT / "configs").glob("*.yaml"))}
EVERY_SECTION: dict[str, Any] = {
    "name": "every-section",
    "seed": 1,
    "data": {
        "train": "../datasets/iris.csv",
        "val": None,
        "test": None,
        "target": "species",
        "features": None,
        "exclude": ["sepal_width"],
        "task": "auto",
        "read": {"delimiter": "auto", "encoding": "utf-8", "decimal": "."},
        "split": {"val": 0.2, "test": 0.2, "stratify": True, "column": None, "folds": None, "fold": None},
        "numeric": {"missing": "median", "fill_value": 0.0, "scale": "standard", "indicator": False},
        "categorical": {"missing": "most_frequent", "fill_value": "missing", "max_categories": 20, "scale": "none", "indicator": False},
        "columns": {"sepal_length": {"kind": "numeric", "missing": "mean", "scale": "robust"}},
    },
    "model": {
        "layers": [
            {"units": 8, "activation": {"name": "leaky_relu", "negative_slope": 0.1}, "init": "he_normal", "dropout": 0.1},
            {"type": "batch_norm", "momentum": 0.1, "eps": 1e-5},
            {"type": "layer_norm"},
            {"type": "dropout", "p": 0.1},
            {"type": "activation", "activation": "tanh"},
        ],
        "output_init": "glorot_uniform",
        "dtype": "float64",
    },
    "loss": {"name": "cross_entropy", "label_smoothing": 0.1, "class_weights": "balanced"},
    "regularization": {"l1": 0.0, "l2": 0.001, "include_bias": False},
    "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9, "nesterov": True},
    "schedule": {"name": "cosine", "warmup": 2, "min_lr": 0.0},
    "training": {
        "batch_size": 16,
        "shuffle": True,
        "clip": {"global_norm": 1.0},
        "detect_anomaly": False,
        "checkpoint": {"every_epochs": 1, "every_steps": None, "every_seconds": None},
    },
    "stopping": {
        "max_epochs": 3,
        "max_steps": None,
        "max_time": "10m",
        "target": {"val_accuracy": ">= 0.99"},
        "divergence": {"train_loss": "> 100"},
        "early_stopping": {"monitor": "val_loss", "mode": "auto", "patience": 5, "min_delta": 0.0, "start_from_epoch": 0, "restore_best": True},
    },
}
WITH_TUNE = {
    **SHIPPED["iris"],
    "tune": {
        "space": {
            "optimizer.lr": {"low": 0.001, "high": 0.1, "log": True},
            "training.batch_size": [8, 16],
            "model.layers.units": {"low": 4, "high": 16, "step": 4},
            "model.layers.count": {"low": 1, "high": 2, "type": "int"},
        },
        "metric": "val_loss",
        "direction": "minimize",
        "sampler": "tpe",
        "pruner": "median",
        "seed": 1,
    },
}
SKELETONS = {**SHIPPED, "every_section": EVERY_SECTION, "with_tune": WITH_TUNE}
FIT_SKELETONS = ["iris", "every_section", "diabetes", "penguins"]  # small data: a one-epoch fit takes a second
DEEP = "zzdeepzz"  # a plain scalar that stands for a deeply nested or aliased value, written into the YAML text as it is

WORDS = [
    "", " ", "auto", "none", "null", "~", "yes", "off", "1e9", "-1", "0", "nan", ".inf", "-.inf", "10m", "-5s", "1h30m",
    "99999999999h", ">= 0.5", "> nan", "<= -inf", "val_loss", "train_accuracy", "val_nothing", "relu", "adam", "cosine",
    "batch_norm", "dense", "species", "sepal_length", "..", ".", "/", "../datasets/iris.csv", "no/such.csv",
    "../configs/iris.yaml", "../datasets", "latin-1", "utf-16", "rot13", "tab", ";", ",", "\\t", "ä", "🙂", "a" * 300,
    "=cmd", "!!binary", "\x00", "\u202e", "float16", "float64", "balanced", "classification", "multilabel",
]
NUMBERS = st.one_of(
    st.integers(-3, 40),
    st.sampled_from([0, -1, 1, 2**31, 2**63, -(2**63), 10**30, 1e308, -1e308, 5e-324, 0.5, 1.0, 0.999999, 1e-12]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
)
MODEST = st.one_of(st.integers(-2, 16), st.sampled_from([0.5, 1.0, 0.0, -0.5, 1e-3, 2.5, float("nan"), float("inf")]))
TEXT = st.one_of(st.sampled_from(WORDS), st.text(max_size=20))
KEYS = st.one_of(st.sampled_from(["name", "data", "type", "units", "lr", "Name", "DATA", "trainig", "lyaers", "", "0", "__class__", "<<"]), st.text(min_size=1, max_size=12))


def scalars(numbers=NUMBERS):
    return st.one_of(st.none(), st.booleans(), numbers, TEXT)


def values(numbers=NUMBERS):
    """Any YAML value: scalars, lists and mappings of them, a few levels deep."""
    return st.recursive(scalars(numbers), lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=4)), max_leaves=8)


def paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into the nested dicts and lists, the root () included."""
    found = [prefix]
    if isinstance(node, dict):
        for key, item in node.items():
            found += paths(item, prefix + (key,))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found += paths(item, prefix + (i,))
    return found


def _parent(root: Any, path: tuple) -> Any:
    for part in path[:-1]:
        root = root[part]
    return root


@st.composite
def mutated(draw, skeleton: dict, numbers=NUMBERS) -> Any:
    """`skeleton` with one to four keys dropped, renamed, retyped or given odd values."""
    root: Any = yaml.safe_load(yaml.safe_dump(skeleton))  # a deep copy
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(paths(root)))
        how = draw(st.sampled_from(["drop", "rename", "replace", "replace", "wrap", "deep"]))
        if not path:
            root = draw(values(numbers)) if how in ("replace", "wrap") else root
            continue
        parent, key = _parent(root, path), path[-1]
        if how == "drop":
            del parent[key]
        elif how == "rename" and isinstance(parent, dict):
            parent[draw(KEYS)] = parent.pop(key)
        elif how == "wrap":
            parent[key] = draw(st.sampled_from([[parent[key]], {"name": parent[key]}, [parent[key], parent[key]]]))
        elif how == "deep":
            parent[key] = DEEP
        else:
            parent[key] = draw(values(numbers))
        if not isinstance(root, (dict, list)):
            break
    return root


@st.composite
def deep_text(draw) -> str:
    """A deeply nested flow value, or a list of anchors each repeating the one before (an alias bomb)."""
    kind = draw(st.sampled_from(["lists", "mappings", "aliases", "cycle"]))
    if kind == "lists":
        depth = draw(st.integers(1, 3000))
        return "[" * depth + "]" * depth
    if kind == "mappings":
        depth = draw(st.integers(1, 3000))
        return "{a: " * depth + "1" + "}" * depth
    if kind == "cycle":
        return draw(st.sampled_from(["&c [*c]", "&c {a: *c}", "&c {name: *c, lr: *c}"]))
    width, depth = draw(st.integers(2, 10)), draw(st.integers(1, 9))
    levels = [f"&a0 [{', '.join(['x'] * width)}]"] + [f"&a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, depth)]
    return "[" + ", ".join(levels) + "]"


@st.composite
def edited(draw, text: str) -> str:
    """`text` with a few raw edits: lines duplicated (duplicate keys), dropped or re-indented, characters inserted."""
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 3))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        how = draw(st.sampled_from(["duplicate", "drop", "indent", "insert", "tab"]))
        if how == "duplicate":
            lines.insert(draw(st.integers(0, len(lines))), lines[i])
        elif how == "drop":
            del lines[i]
        elif how == "indent":
            lines[i] = " " * draw(st.integers(1, 5)) + lines[i]
        elif how == "tab":
            lines[i] = "\t" + lines[i]
        else:
            at = draw(st.integers(0, len(lines[i])))
            token = draw(st.one_of(st.sampled_from([":", "- ", "[", "]", "{", "}", "&a ", "*a", "!!str ", "!!python/object:os.system ", "<<: ", "? ", "|", ">", "#", "'", '"', "%", "@", "`"]), st.text(max_size=5)))
            lines[i] = lines[i][:at] + token + lines[i][at:]
    return "\n".join(lines) + "\n"


@st.composite
def config_texts(draw, skeletons=tuple(SKELETONS), numbers=NUMBERS, noise: bool = True) -> str:
    """The YAML text of a mutated config, sometimes edited as raw text or (with `noise`) replaced by YAML-ish noise."""
    how = draw(st.sampled_from(["mutated", "mutated", "mutated", "edited", "noise"] if noise else ["mutated", "mutated", "edited"]))
    if how == "noise":
        return draw(st.one_of(st.text(max_size=200), st.lists(st.sampled_from(["data:", "  train:", " - ", "{", "}", "[", "]", ": ", "&a", "*a", "---", "...", "%YAML 1.1", "!!set", "!!omap", "? x", "\n", "  ", "<<: *a", "iris.csv", "1e999", "\t"]), max_size=30).map("".join)))
    skeleton = SKELETONS[draw(st.sampled_from(list(skeletons)))]
    text = yaml.safe_dump(draw(mutated(skeleton, numbers)), allow_unicode=draw(st.booleans()), sort_keys=False)
    if DEEP in text:
        text = text.replace(DEEP, draw(deep_text()))
    return draw(edited(text)) if how == "edited" else text


@st.composite
def overrides(draw) -> list[str]:
    """`--set KEY=VALUE` items: keys along the config's paths or random, values as raw YAML text."""
    known = [".".join(map(str, p)) for p in paths(EVERY_SECTION) if p]
    items = []
    for _ in range(draw(st.integers(1, 4))):
        key = draw(st.one_of(st.sampled_from(known), st.sampled_from(["model.layers.9.units", "model.layers.-1.units", "model.layers.x", "data..train", ".", "seed.x", "loss.name.x", "stopping.target.val_accuracy", "data.columns.ä.kind"]), st.text(max_size=20)))
        value = draw(st.one_of(TEXT, st.sampled_from(["{", "[1, 2", "{name: sgd, momentum: 0.9}", "&c [*c]", "!!python/object:os.system", "1e999", "- a\n- b", "'"]), values().map(lambda v: yaml.safe_dump(v, default_flow_style=True).strip())))
        items.append(draw(st.sampled_from([f"{key}={value}", key, f"={value}", f"{key}=={value}"])))
    return items


def _config_in(folder: Path, text: str) -> Path:
    """Write the config into `folder`/configs, where `../datasets/` is the shipped data."""
    (folder / "datasets").symlink_to(ROOT / "datasets")
    (folder / "configs").mkdir()
    path = folder / "configs" / "fuzzed.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@given(config_texts())
def test_check_never_fails_with_an_internal_error(text):
    with tempfile.TemporaryDirectory() as name:
        path = _config_in(Path(name), text)
        run_cli(["check", path], text, {"fuzzed.yaml": path})


@given(config_texts(), overrides())
def test_set_overrides_never_fail_with_an_internal_error(text, items):
    with tempfile.TemporaryDirectory() as name:
        path = _config_in(Path(name), text)
        args = ["check", path] + [a for item in items for a in ("--set", item)]
        run_cli(args, text, {"fuzzed.yaml": path})


@settings(max_examples=max(3, settings.default.max_examples // 4))
@given(config_texts(FIT_SKELETONS, MODEST))
def test_fit_for_one_epoch_never_fails_with_an_internal_error(text):
    with tempfile.TemporaryDirectory() as name:
        path = _config_in(Path(name), text)
        args = ["fit", path, "-q", "--runs-dir", Path(name) / "runs", "--set", "stopping.max_epochs=1"]
        run_cli(args, text, {"fuzzed.yaml": path})


@settings(max_examples=max(3, settings.default.max_examples // 4))
@given(config_texts(["with_tune"], MODEST, noise=False))
def test_tune_for_one_trial_never_fails_with_an_internal_error(text):
    with tempfile.TemporaryDirectory() as name:
        path = _config_in(Path(name), text)
        args = ["tune", path, "--trials", "1", "-q", "--runs-dir", Path(name) / "runs", "--set", "stopping.max_epochs=1"]
        run_cli(args, text, {"fuzzed.yaml": path})
