"""Reading a big file for fit without redundant copies: the fast Parquet path, the split a column at a time, the inputs encoded a column at a time, and the feature columns let go once encoded, all giving exactly the values of the plain computation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bptrain.config.loading import load_config
from bptrain.data import fast_parquet
from bptrain.data.columns import scaling
from bptrain.data.reading import read_table
from bptrain.data.splits import fit_preprocessor, read_splits, transform
from bptrain.errors import BptrainError

pytest.importorskip("pyarrow")


def _mixed_frame(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"x{j}": rng.standard_normal(n) * 10.0**j for j in range(4)})
    frame["count"] = rng.integers(0, 5, n)
    frame["colour"] = rng.choice(["red", "green", "blue"], n)
    frame.loc[3, "x1"] = np.nan
    frame["y"] = rng.choice(["p", "q"], n)
    return frame


def _config(tmp_path: Path, frame: pd.DataFrame, dtype: str, extra: str = ""):
    frame.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "c.yaml").write_text(
        "data:\n  train: d.csv\n  target: y\n  split: {val: 0.2, test: 0.2}\n  numeric: {missing: mean, indicator: true}\n"
        f"model:\n  dtype: {dtype}\n" + extra
    )
    return load_config(tmp_path / "c.yaml")


def _plain_arrays(frame: pd.DataFrame, parts: dict[str, pd.DataFrame], prep) -> dict[str, np.ndarray]:
    """The inputs as they were computed before: the whole training matrix encoded in float64, its
    statistics, then each split scaled in float64 and cast at the end."""
    blocks = lambda f: np.hstack([np.asarray(_encode(prep, c, f), dtype=np.float64) for c in prep.columns])  # noqa: E731
    center, scale = scaling(blocks(parts["train"]), [s for c in prep.columns for s in c.input_scales()], prep.inputs, "t")
    assert np.array_equal(center, prep.center) and np.array_equal(scale, prep.scale)
    return {name: ((blocks(part) - center) / scale) for name, part in parts.items()}


def _encode(prep, column, frame):
    from bptrain.data.columns import encode_column

    return encode_column(column, frame[column.name], "t", 0, strict=False, unseen=None, allow_dropped=True)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("release", [False, True])
def test_inputs_are_those_of_the_whole_matrix_scaled_in_float64_then_cast(tmp_path, dtype, release):
    config = _config(tmp_path, _mixed_frame(), dtype)
    raw = read_splits(config.data, seed=3)
    prep = fit_preprocessor(raw)
    parts = {name: part.copy() for name, part in raw.frames.items() if part is not None}
    expected = _plain_arrays(raw.frames["train"], parts, prep)
    dataset = transform(raw, prep, "cross_entropy", dtype, release=release)
    for split in dataset.splits():
        assert split.x.dtype == np.dtype(dtype) and split.x.flags.c_contiguous
        assert split.x.tobytes() == expected[split.name].astype(dtype).tobytes(), split.name


def test_release_leaves_only_the_columns_that_are_not_features(tmp_path):
    config = _config(tmp_path, _mixed_frame(), "float32")
    raw = read_splits(config.data, seed=3)
    prep = fit_preprocessor(raw)
    kept = transform(raw, prep, "cross_entropy", "float32")
    assert list(raw.frames["train"].columns) == ["x0", "x1", "x2", "x3", "count", "colour", "y"]
    released = transform(raw, prep, "cross_entropy", "float32", release=True)
    for name in ("train", "val", "test"):
        assert list(raw.frames[name].columns) == ["y"]
        assert np.array_equal(getattr(released, name).x, getattr(kept, name).x)
        assert np.array_equal(getattr(released, name).y, getattr(kept, name).y)


def test_the_split_frames_are_those_iloc_gives(tmp_path):
    frame = _mixed_frame(80)
    config = _config(tmp_path, frame, "float32")
    raw = read_splits(config.data, seed=5)
    whole = read_table(tmp_path / "d.csv")
    rows = {name: whole.index[whole["x0"].isin(part["x0"])] for name, part in raw.frames.items()}
    for name, part in raw.frames.items():
        expected = whole.set_index("x0").loc[part["x0"]].reset_index()[list(whole.columns)]
        pd.testing.assert_frame_equal(part, expected, check_exact=True)
        assert isinstance(part.index, pd.RangeIndex) and len(rows[name]) == len(part)


PARQUET_FRAMES = {
    "numbers": lambda: pd.DataFrame({"a": [1.5, -2.0, 0.25], "b": [1, 2, 3]}),
    "gaps": lambda: pd.DataFrame({"a": [1.5, None, 0.25], "b": pd.array([1, None, 3], dtype="float64")}),
    "nan_and_inf": lambda: pd.DataFrame({"a": [1.5, np.inf, 0.25], "b": [1, 2, 3]}),
    "nullable_ints": lambda: pd.DataFrame({"a": pd.array([1, None, 3], dtype="Int64"), "b": [1.0, 2.0, 3.0]}),
    "text": lambda: pd.DataFrame({"a": [1.0, 2.0, 3.0], "s": ["x", "y", "z"]}),
    "category": lambda: pd.DataFrame({"a": [1.0, 2.0, 3.0], "c": pd.Categorical(["x", "y", "x"])}),
    "named_index": lambda: pd.DataFrame({"a": [1.0, 2.0, 3.0]}, index=pd.Index([7, 8, 9], name="id")),
    "sliced_range_index": lambda: pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0]}).iloc[1:],
    "empty": lambda: pd.DataFrame({"a": pd.Series([], dtype="float64")}),
}


def _read_parquet(path: Path, fast: bool, monkeypatch):
    with monkeypatch.context() as m:
        if not fast:
            m.setattr(fast_parquet, "available", lambda: False)
        try:
            return read_table(path)
        except BptrainError as e:
            return (type(e).__name__, str(e))


@pytest.mark.parametrize("name", sorted(PARQUET_FRAMES))
def test_fast_parquet_reads_as_pandas_does(name, tmp_path, monkeypatch):
    path = tmp_path / f"{name}.parquet"
    PARQUET_FRAMES[name]().to_parquet(path)
    fast, ordinary = _read_parquet(path, True, monkeypatch), _read_parquet(path, False, monkeypatch)
    if isinstance(ordinary, tuple):
        assert fast == ordinary
        return
    pd.testing.assert_frame_equal(fast, ordinary, check_exact=True)


def test_fast_parquet_is_taken_for_numbers_and_declined_for_the_rest(tmp_path):
    for name, make in PARQUET_FRAMES.items():
        make().to_parquet(tmp_path / f"{name}.parquet")
    taken = {name for name in PARQUET_FRAMES if fast_parquet.read_numeric(tmp_path / f"{name}.parquet") is not None}
    assert taken == {"numbers", "gaps", "empty"}


def test_a_damaged_parquet_file_keeps_its_message(tmp_path, monkeypatch):
    path = tmp_path / "bad.parquet"
    PARQUET_FRAMES["numbers"]().to_parquet(path)
    path.write_bytes(path.read_bytes()[:40])
    assert fast_parquet.read_numeric(path) is None
    assert _read_parquet(path, True, monkeypatch) == _read_parquet(path, False, monkeypatch)


def test_dropping_removes_columns_where_pandas_has_no_inplace_drop(monkeypatch):
    from bptrain.data.columns import Dropping

    frame = pd.DataFrame({"a": [1.0], "b": [2.0], "c": [3.0]})

    def no_inplace(*args, **kwargs):
        raise TypeError("drop() got an unexpected keyword argument 'inplace'")

    monkeypatch.setattr(frame, "drop", no_inplace)
    dropping = Dropping(frame)
    dropping.add("a")
    dropping.add("c")
    dropping.flush()
    assert list(frame.columns) == ["b"]


def test_columns_whose_removal_frees_nothing_wait_for_one_that_does(monkeypatch):
    from bptrain.data import columns

    monkeypatch.setattr(columns, "RELEASE_BATCH", 2)
    frame = pd.DataFrame({name: [1.0] for name in "abcdef"})
    calls = []
    drop = frame.drop
    monkeypatch.setattr(frame, "drop", lambda **kwargs: calls.append(list(kwargs["columns"])) or drop(**kwargs))
    dropping = columns.Dropping(frame)
    for name in "abc":
        dropping.add(name, frees=False)
    dropping.add("d")
    assert (calls, list(frame.columns)) == ([], list("abcdef"))
    dropping.add("e")  # the second that frees memory: one removal, the waiting ones with it
    assert (calls, list(frame.columns)) == ([["d", "e", "a", "b", "c"]], ["f"])
    dropping.add("f", frees=False)
    dropping.flush()
    assert (calls[1:], list(frame.columns)) == ([["f"]], [])


@pytest.mark.parametrize(
    "values",
    [
        [1.0, 1.0, np.nan], [0.0, -0.0], [np.nan, np.nan], [], [np.inf, np.inf], [np.inf, -np.inf], [1.0, 2.0],
        [3, 3, 3], [3, 4], [True, True], [True, False], np.array([7], np.uint8),
        ["a", "a", None], ["a", "b"], pd.array([1, None, 1], dtype="Int64"), pd.array([1, 2], dtype="Int64"),
    ],
)
def test_a_single_valued_column_is_told_as_nunique_tells_it(values):
    from bptrain.data.splits import _single_valued

    column = pd.Series(values)
    assert _single_valued(column) == (column.nunique(dropna=True) <= 1)


def _wide_frame(n: int = 90, seed: int = 1) -> pd.DataFrame:
    """150 numeric columns (several blocks of them) of every scale, with a missing value, a
    single-valued column, integers and a categorical and an indicator column in the middle."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"x{j}": rng.standard_normal(n) * 10.0 ** (j % 7 - 3) for j in range(150)})
    frame["x5"] = rng.integers(-3, 9, n)
    frame["x20"] = 4.25
    frame.loc[7, "x70"] = np.nan
    frame["x100"] = rng.choice(["a", "b"], n)
    frame["y"] = rng.choice(["p", "q", "r"], n)
    return frame


def _wide_config(tmp_path: Path, dtype: str, scale: str = "standard"):
    _wide_frame().to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "c.yaml").write_text(
        "data:\n  train: d.csv\n  target: y\n  split: {val: 0.2, test: 0.2}\n"
        f"  numeric: {{missing: median, scale: {scale}}}\n  columns: {{x130: {{indicator: true, missing: mean}}}}\n"
        f"model:\n  dtype: {dtype}\n"
    )
    return load_config(tmp_path / "c.yaml")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("scale", ["standard", "minmax", "robust", "none"])
def test_numeric_columns_encoded_in_blocks_give_the_values_of_one_column_at_a_time(tmp_path, monkeypatch, dtype, scale):
    from bptrain.data import preprocess

    config = _wide_config(tmp_path, dtype, scale)
    by_block = transform(raw := read_splits(config.data, seed=3), prep := fit_preprocessor(raw), "cross_entropy", dtype)
    monkeypatch.setattr(preprocess, "numpy_floats_or_ints", lambda column: False)  # every column through encode_column
    alone = transform(raw_alone := read_splits(config.data, seed=3), prep_alone := fit_preprocessor(raw_alone), "cross_entropy", dtype)
    assert prep.center.tobytes() == prep_alone.center.tobytes() and prep.scale.tobytes() == prep_alone.scale.tobytes()
    assert prep.inputs == prep_alone.inputs and "x130_was_missing" in prep.inputs
    for split, other in zip(by_block.splits(), alone.splits()):
        assert split.x.flags.c_contiguous and split.x.dtype == np.dtype(dtype)
        assert split.x.tobytes() == other.x.tobytes(), split.name


@pytest.mark.parametrize("value, message", [("inf", "holds infinite values in row 4"), ("1e308", "the value is too large")])
def test_a_bad_value_in_a_block_of_columns_keeps_its_message(tmp_path, monkeypatch, value, message):
    from bptrain.data import preprocess

    config = _wide_config(tmp_path, "float32")
    raw = read_splits(config.data, seed=3)
    prep = fit_preprocessor(raw)
    rows = _wide_frame().drop(columns=["y"])
    rows["x90"] = rows["x90"].astype(object)
    rows.loc[3, "x90"] = value
    path = tmp_path / "new.csv"
    rows.to_csv(path, index=False)
    frame = read_table(path)
    errors = []
    for grouped in (True, False):
        if not grouped:
            monkeypatch.setattr(preprocess, "numpy_floats_or_ints", lambda column: False)
        with pytest.raises(BptrainError) as caught:
            prep.features_of(frame.copy(), "new.csv", "float32")
        errors.append(str(caught.value))
    assert errors[0] == errors[1]
    assert "'x90'" in errors[0] and message in errors[0]


def test_the_split_takes_numbers_true_false_and_text_alike(tmp_path):
    from bptrain.data.splits import _rows_of

    frame = pd.DataFrame({
        "f": [0.5, -0.0, np.nan, 2.0], "i": [1, 2, 3, 4], "u": np.array([1, 2, 3, 4], np.uint8), "b": [True, False, True, True],
        "s": ["a", None, "c", "d"], "n": pd.array([1, None, 3, 4], dtype="Int64"), "c": pd.Categorical(["x", "y", "x", "y"]),
    })
    parts = {"train": np.array([0, 2, 3]), "val": np.array([1])}
    expected = {name: frame.iloc[rows].reset_index(drop=True) for name, rows in parts.items()}
    taken = _rows_of(frame.copy(), parts)
    for name in parts:
        pd.testing.assert_frame_equal(taken[name], expected[name], check_exact=True)
        assert taken[name]["f"].to_numpy().tobytes() == expected[name]["f"].to_numpy().tobytes()


def test_fast_parquet_reads_many_row_groups_and_blocks_of_columns_as_pandas_does(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({f"x{j}": rng.standard_normal(50) for j in range(150)})
    frame.loc[[3, 41], "x7"] = np.nan
    frame["x99"] = -0.0
    frame["n"] = rng.integers(0, 9, 50)
    frame["g"] = pd.array(rng.integers(0, 9, 50), dtype="float64")
    frame.loc[45, "g"] = np.nan
    path = tmp_path / "groups.parquet"
    frame.to_parquet(path, row_group_size=7)
    fast = fast_parquet.read_numeric(path)
    assert fast is not None
    ordinary = _read_parquet(path, False, monkeypatch)
    pd.testing.assert_frame_equal(fast, ordinary, check_exact=True)
    for name in frame.columns:
        assert fast[name].to_numpy().tobytes() == ordinary[name].to_numpy().tobytes(), name


@pytest.mark.parametrize(
    "values, dtype",
    [
        ([3, 1, 2, 3], None), (np.array([7, 7], np.uint8), None), ([-5, 10**12, 0], None), (np.array([], np.int64), None),
        ([2.0, np.nan, 2.5], None), (["b", None, "a"], None), ([True, False], None),
        (["2007", "2.0", None, " x "], "str"), (["2007", "2.0", None, "1e3"], "string"), (["b", 2007, 2.0, None], object),
    ],
)
def test_labels_of_integers_and_text_taken_whole_are_those_of_each_row(values, dtype):
    from bptrain.data.columns import label, labels_of

    column = pd.Series(values, name="y", index=pd.RangeIndex(5, 5 + len(values)), dtype=dtype)
    pd.testing.assert_series_equal(labels_of(column), column.map(label, na_action="ignore"))


def test_statistics_from_a_list_of_columns_are_those_of_the_matrix():
    rng = np.random.default_rng(5)
    matrix = np.asfortranarray(rng.standard_normal((1000, 4)) * [1.0, 1e3, 1e-3, 7.0] + [0.0, 5.0, -2.0, 1e6])
    scales = ["standard", "minmax", "robust", "standard"]
    names = ["a", "b", "c", "d"]
    from_matrix = scaling(matrix, scales, names, "t")
    from_columns = scaling([np.ascontiguousarray(matrix[:, j]) for j in range(4)], scales, names, "t")
    for a, b in zip(from_matrix, from_columns):
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_scaling_and_copying_on_two_threads_give_the_same_bits(tmp_path, dtype, monkeypatch):
    from bptrain.data import preprocess

    rng = np.random.default_rng(9)
    frame = pd.DataFrame({f"x{j}": rng.standard_normal(700) * 10.0**(j % 5) for j in range(70)})  # two groups of columns
    frame["y"] = rng.choice(["p", "q"], 700)
    config = _config(tmp_path, frame, dtype)
    inputs = {}
    for threshold in (1 << 60, 0):
        monkeypatch.setattr(preprocess, "PARALLEL_VALUES", threshold)
        raw = read_splits(config.data, seed=3)
        inputs[threshold] = [split.x for split in transform(raw, fit_preprocessor(raw), "cross_entropy", dtype).splits()]
    for alone, shared in zip(inputs[1 << 60], inputs[0]):
        assert shared.flags.c_contiguous and alone.tobytes() == shared.tobytes()


def test_a_value_too_large_for_float32_is_named_when_copied_on_two_threads(monkeypatch):
    from bptrain.data import preprocess
    from bptrain.data.columns import numeric_column

    monkeypatch.setattr(preprocess, "PARALLEL_VALUES", 0)
    train = pd.DataFrame({"a": np.arange(600.0), "b": np.ones(600), "y": ["p", "q"] * 300})
    prep = preprocess.Preprocessor.fit(train, targets=["y"], task="classification", columns=[numeric_column("a", scale="none"), numeric_column("b")])
    new = train.assign(a=np.where(np.arange(600) == 450, 1e39, train["a"]))
    with pytest.raises(BptrainError) as info:
        prep.features_of(new, "new.csv")
    assert str(info.value) == (
        "new.csv: column 'a', row 451: the value is too large to use (it becomes infinite in float32 after scaling); "
        "rescale the column, e.g. divide it by a power of ten"
    )


@pytest.mark.parametrize("dtype", ["str", "string", pd.StringDtype("python"), object, "chunked"])
def test_positions_of_labels_are_those_of_a_dict_look_up_row_by_row(dtype):
    from bptrain.data.columns import positions_in

    values = ["b", None, "a", "zz", "a", "", "B", "c"]
    if dtype == "chunked":  # text in Arrow, in more than one chunk
        labels = pd.concat([pd.Series(values[:3], dtype="str"), pd.Series(values[3:], dtype="str")], ignore_index=True)
    else:
        labels = pd.Series(values, dtype=dtype)
    keys = ["a", "b", "c", ""]
    index = {k: i for i, k in enumerate(keys)}
    expected = [index.get(v, -1) if isinstance(v, str) else -1 for v in labels.tolist()]
    found = positions_in(keys, labels)
    assert found.dtype == np.int64 and found.tolist() == expected
