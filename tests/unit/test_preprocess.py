"""Preprocessing (bptrain.data.columns, bptrain.data.preprocess): kinds, fill values, scaling, one-hot encoding,
the schema contract of features_of."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bptrain.config.data_schema import DataConfig
from bptrain.data.columns import Unseen, infer_kind, numeric_column, resolve_columns
from bptrain.data import preprocess
from bptrain.data.preprocess import Preprocessor, infer_task
from bptrain.errors import ConfigError, DataError


@pytest.mark.parametrize(
    "values, kind",
    [
        ([1, 2, 3], "numeric"),
        ([1.5, None, 2.0], "numeric"),
        ([2007, 2008, 2007], "numeric"),  # integers stay numeric unless declared categorical
        (["a", "b", None], "categorical"),
        ([True, False, True], "categorical"),
        ([None, None], "numeric"),  # an empty column
        (pd.Categorical(["x", "y"]), "categorical"),
        (["1"] * 19 + ["?"], "numeric"),  # 95% numbers: numeric, and the "?" is reported
        (["1"] * 18 + ["?", "x"], "categorical"),  # 90% numbers: text
    ],
)
def test_kind_inference_rule(values, kind):
    assert infer_kind(pd.Series(values, dtype="str" if isinstance(values[0], str) else None)) == kind


def test_true_and_false_among_numbers_make_a_column_categorical_unless_they_are_text():
    assert infer_kind(pd.Series([1, True, 2.5, None], dtype=object)) == "categorical"
    assert infer_kind(pd.Series(["1", "2"] * 10 + ["True"], dtype="str")) == "numeric"  # 95 % numbers; the text is reported


def test_several_targets_are_multilabel_or_regression():
    assert infer_task(pd.DataFrame({"a": [0, 1, 1], "b": [True, False, True]})) == "multilabel"
    assert infer_task(pd.DataFrame({"a": [0, 1, 1], "b": [0.5, 2.0, 3.0]})) == "regression"
    with pytest.raises(DataError) as info:
        infer_task(pd.DataFrame({"a": [0, 1, 1], "b": ["x", "y", "x"]}))
    assert str(info.value) == (
        "several targets must all hold 0/1 (multilabel) or all hold numbers (multi-output regression); got a (0/1), b (text)"
    )


def data_config(**data) -> DataConfig:
    return DataConfig.model_validate({"train": "t.csv", "target": "y", **data})


FRAME = pd.DataFrame(
    {
        "n": [1.0, 2.0, np.nan, 4.0, 10.0],
        "c": pd.Series(["b", "a", "b", None, "c"], dtype="str"),
        "y": ["p", "q", "p", "q", "p"],
    }
)


def fit(frame: pd.DataFrame = FRAME, **data) -> Preprocessor:
    config = data_config(**data)
    columns = resolve_columns(frame, [c for c in frame.columns if c != "y"], config)
    return Preprocessor.fit(frame, targets=["y"], task="classification", columns=columns, source="t.csv")


@pytest.mark.parametrize(
    "missing, fill",
    [("mean", 17.0 / 4), ("median", 3.0), ("most_frequent", 1.0), ("constant", -1.0)],
)
def test_numeric_fill_values_come_from_the_training_rows(missing, fill):
    prep = fit(numeric={"missing": missing, "fill_value": -1.0, "scale": "none"}, categorical={"missing": "most_frequent"})
    assert prep.columns[0].fill == fill
    assert prep.features_of(FRAME, "t.csv", "float64")[:, 0].tolist() == [1.0, 2.0, fill, 4.0, 10.0]


@pytest.mark.parametrize(
    "scale, center, spread",
    [
        ("standard", 3.8, float(np.sqrt(np.mean((np.array([1.0, 2.0, 2.0, 4.0, 10.0]) - 3.8) ** 2)))),
        ("minmax", 1.0, 9.0),
        ("robust", 2.0, 2.0),
        ("none", 0.0, 1.0),
    ],
)
def test_scaling_statistics(scale, center, spread):
    frame = FRAME.assign(n=[1.0, 2.0, 2.0, 4.0, 10.0])
    prep = fit(frame, numeric={"scale": scale}, categorical={"missing": "most_frequent"})
    assert (prep.center[0], prep.scale[0]) == pytest.approx((center, spread), abs=1e-12)
    x = prep.features_of(frame, "t.csv", "float64")[:, 0]
    assert x.tolist() == pytest.approx(((frame["n"] - center) / spread).tolist(), abs=1e-12)


def test_a_constant_column_is_scaled_by_one():
    frame = FRAME.assign(n=[5.0] * 5)
    prep = fit(frame, categorical={"missing": "most_frequent"})
    assert (prep.center[0], prep.scale[0]) == (5.0, 1.0)
    assert prep.features_of(frame, "t.csv", "float64")[:, 0].tolist() == [0.0] * 5


def test_one_hot_columns_and_their_names():
    prep = fit(numeric={"missing": "median"}, categorical={"missing": "constant", "fill_value": "none"})
    assert prep.inputs == ["n", "c=a", "c=b", "c=c", "c=none"]
    x = prep.features_of(FRAME, "t.csv", "float64")
    assert x[:, 1:].tolist() == [[0, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]


def test_the_rarest_categories_share_other_and_unseen_ones_are_all_zeros():
    frame = pd.DataFrame({"c": list("aaabbbccdde"), "y": ["p", "q"] * 5 + ["p"]})
    prep = fit(frame, categorical={"max_categories": 3})
    column = prep.columns[0]
    # counts a 3, b 3, c 2, d 2, e 1: two keep their input, the rest share (other); ties by value
    assert (column.categories, column.other) == (["a", "b"], ["c", "d", "e"])
    assert prep.inputs == ["c=a", "c=b", "c=(other)"]
    unseen = Unseen()
    x = prep.features_of(pd.DataFrame({"c": ["a", "e", "zz", "zz", "b"]}), "new.csv", "float64", unseen=unseen)
    assert x.tolist() == [[1, 0, 0], [0, 0, 1], [0, 0, 0], [0, 0, 0], [0, 1, 0]]
    assert unseen.message("new.csv") == (
        "new.csv: 2 values in categorical columns the model never saw, encoded as unknown (no category): "
        "c 'zz' (2 rows). Use --strict to make this an error"
    )


@pytest.mark.parametrize("strict", [False, True])
def test_missing_values_filled_with_a_value_training_never_held_are_warned_about_as_missing(strict):
    frame = FRAME.assign(c=pd.Series(["b", "a", "b", "a", "c"], dtype="str"))  # no missing category in training
    prep = fit(frame, numeric={"missing": "median"}, categorical={"missing": "constant", "fill_value": "unk"})
    assert prep.inputs == ["n", "c=a", "c=b", "c=c"]
    unseen = Unseen()
    x = prep.features_of(pd.DataFrame({"n": [1.0] * 4, "c": ["a", None, "zz", None]}), "new.csv", "float64", unseen=unseen)
    assert x[:, 1:].tolist() == [[1, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]]
    assert unseen.message("new.csv") == (
        "new.csv: 2 missing values in categorical columns whose training rows had none, filled with a value the model never "
        "saw and encoded as unknown (no category): c (2 rows, filled with 'unk'); 1 value in categorical columns the model "
        "never saw, encoded as unknown (no category): c 'zz' (1 row). Use --strict to make this an error"
    )
    if strict:  # a missing cell is no category the rows hold: strict is about those
        unseen = Unseen()
        prep.features_of(pd.DataFrame({"n": [1.0], "c": [None]}), "new.csv", "float64", strict=True, unseen=unseen)
        assert unseen.message("new.csv").startswith("new.csv: 1 missing value in categorical columns whose training rows had none")


def test_strict_makes_an_unseen_category_an_error_with_file_row_numbers():
    prep = fit(numeric={"missing": "median"}, categorical={"missing": "most_frequent"})
    chunk = pd.DataFrame({"n": [1.0, 2.0, 3.0], "c": ["a", "x", "y"]})
    with pytest.raises(DataError) as info:
        prep.features_of(chunk, "big.csv", strict=True, first_row=4096)
    assert str(info.value) == (
        "big.csv: column 'c' holds categories the model never saw in rows 4098, 4099: 'x', 'y'; it knows a, b, c (--strict)"
    )


def test_indicator_columns_say_which_values_were_missing():
    prep = fit(numeric={"missing": "mean", "indicator": True}, categorical={"missing": "most_frequent", "indicator": True})
    assert prep.inputs == ["n", "n_was_missing", "c=a", "c=b", "c=c", "c_was_missing"]
    x = prep.features_of(FRAME, "t.csv", "float64")
    assert x[:, 1].tolist() == [0, 0, 1, 0, 0] and x[:, 5].tolist() == [0, 0, 0, 1, 0]
    assert prep.scale[[1, 5]].tolist() == [1.0, 1.0] and prep.center[[1, 5]].tolist() == [0.0, 0.0]


def test_per_column_overrides_win_over_the_kind_settings():
    prep = fit(
        numeric={"missing": "mean"}, categorical={"missing": "most_frequent"},
        columns={"n": {"missing": "constant", "fill_value": 0, "scale": "none"}},
    )
    assert (prep.columns[0].missing, prep.columns[0].fill, prep.columns[0].scale) == ("constant", 0.0, "none")
    assert (prep.columns[1].missing, prep.columns[1].fill) == ("most_frequent", "b")


def test_an_integer_column_declared_categorical_is_one_hot_encoded():
    frame = pd.DataFrame({"year": [2007, 2008, 2009, 2007], "y": ["p", "q", "p", "q"]})
    prep = fit(frame, columns={"year": {"kind": "categorical"}})
    assert prep.inputs == ["year=2007", "year=2008", "year=2009"]
    # a chunk where the column happens to be read as floats (it has a gap) still matches
    x = prep.features_of(pd.DataFrame({"year": [2009.0, 2008.0]}), "new.csv", "float64")
    assert x.tolist() == [[0, 0, 1], [0, 1, 0]]


@pytest.mark.parametrize(
    "override, message",
    [
        ({"c": {"missing": "mean"}}, "data.columns.c.missing: mean applies to numeric columns, and 'c' is categorical (set kind: numeric to change that); use most_frequent, constant, drop or error"),
        ({"n": {"max_categories": 5}}, "data.columns.n.max_categories: applies to categorical columns, and 'n' is numeric (set kind: categorical to change that)"),
        ({"n": {"fill_value": "zero"}}, "data.columns.n.fill_value: must be a number for the numeric column 'n' (got 'zero')"),
        ({"n": {"fill_value": "inf"}}, "data.columns.n.fill_value: must be a finite number for the numeric column 'n' (got 'inf')"),
        ({"n": {"fill_value": "NaN"}}, "data.columns.n.fill_value: must be a finite number for the numeric column 'n' (got 'NaN')"),
    ],
)
def test_an_override_that_does_not_fit_the_inferred_kind(override, message):
    with pytest.raises(ConfigError) as info:
        fit(columns=override)
    assert str(info.value) == message


def test_features_of_on_any_slice_equals_the_slice_of_the_whole():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"n": rng.normal(size=50), "c": rng.choice(["a", "b", "c"], 50), "y": rng.choice(["p", "q"], 50)})
    frame.loc[[3, 17, 40], "n"] = np.nan
    prep = fit(frame, numeric={"missing": "median"})
    whole = prep.features_of(frame, "t.csv")
    for start, stop in [(0, 7), (7, 8), (8, 33), (33, 50)]:
        part = frame.iloc[start:stop].reset_index(drop=True)
        assert np.array_equal(prep.features_of(part, "t.csv", first_row=start), whole[start:stop])


def test_a_small_frame_of_numbers_taken_out_in_one_copy_encodes_as_column_by_column():
    # 130 float64 and int64 columns (two groups of GROUP_COLUMNS and a part; one with an indicator,
    # one with a missing value to fill): a text column beside them makes features_of take the
    # columns out one by one, as it did before _numbers_at_once
    rng = np.random.default_rng(1)
    numbers = {f"f{i}": rng.integers(-(2**60), 2**60, 40) if i % 3 == 0 else rng.normal(size=40) * 10.0 ** (i % 7) for i in range(130)}
    frame = pd.DataFrame({**numbers, "y": rng.choice(["p", "q"], 40)})
    frame.loc[5, "f70"] = np.nan
    prep = fit(frame, numeric={"missing": "median"}, columns={"f1": {"indicator": True}})
    assert preprocess._numbers_at_once(frame.drop(columns="y")) is not None and preprocess._numbers_at_once(frame) is None
    for dtype in ("float32", "float64"):
        assert prep.features_of(frame.drop(columns="y"), "t.csv", dtype).tobytes() == prep.features_of(frame, "t.csv", dtype).tobytes()
    frame.loc[9, "f71"] = np.inf
    messages = []
    for each in (frame.drop(columns="y"), frame):
        with pytest.raises(DataError) as info:
            prep.features_of(each, "t.csv")
        messages.append(str(info.value))
    assert messages[0] == messages[1] and "'f71'" in messages[0]


def test_columns_in_any_order_and_extra_columns_are_fine():
    prep = fit(numeric={"missing": "median"}, categorical={"missing": "most_frequent"})
    shuffled = FRAME[["y", "c", "n"]].assign(extra=["e"] * 5)
    assert np.array_equal(prep.features_of(shuffled, "t.csv"), prep.features_of(FRAME, "t.csv"))


@pytest.mark.parametrize(
    "numeric, chunk, first_row, message",
    [
        (
            {"missing": "error"}, {"n": [1.0, None, None], "c": ["a"] * 3}, 10,
            "new.csv: column 'n' has missing values in rows 12, 13; the model was trained without missing values there "
            "(missing: error); fill them in or remove those rows",
        ),
        (
            {"missing": "drop"}, {"n": [None, 1.0, 1.0], "c": ["a"] * 3}, 0,
            "new.csv: column 'n' has missing values in row 1; the model drops such rows in training, which predict cannot do; "
            "fill them in or remove those rows",
        ),
        (
            {"missing": "median"}, {"n": ["1", "x", "2.5", "y"], "c": ["a"] * 4}, 100,
            "new.csv: column 'n' must be numeric, but rows 102, 104 hold text: 'x', 'y'. The model reads this column as numbers.",
        ),
        (
            {"missing": "median", "scale": "none"}, {"n": [1.0, 1e39], "c": ["a"] * 2}, 0,
            "new.csv: column 'n', row 2: the value is too large to use (it becomes infinite in float32 after scaling); "
            "rescale the column, e.g. divide it by a power of ten",
        ),
    ],
    ids=["missing-error", "missing-drop", "text", "too-large"],
)
def test_errors_at_predict_time_name_column_and_file_rows(numeric, chunk, first_row, message):
    frame = FRAME.assign(n=[1.0, 2.0, 3.0, 4.0, 10.0])
    prep = fit(frame, numeric=numeric, categorical={"missing": "most_frequent"})
    with pytest.raises(DataError) as info:
        prep.features_of(pd.DataFrame(chunk), "new.csv", first_row=first_row)
    assert str(info.value) == message


def test_the_model_file_form_is_plain_arrays_and_json_and_transforms_identically():
    prep = fit(numeric={"missing": "median", "indicator": True}, categorical={"missing": "most_frequent", "max_categories": 2})
    arrays, meta = prep.to_arrays()
    assert all(isinstance(a, np.ndarray) and a.dtype == np.float64 for a in arrays.values())
    again = Preprocessor.from_arrays(arrays, json.loads(json.dumps(meta)))
    assert again.inputs == prep.inputs and again.columns == prep.columns
    assert np.array_equal(again.features_of(FRAME, "t.csv"), prep.features_of(FRAME, "t.csv"))
    assert meta["columns"][1] == {
        "name": "c", "kind": "categorical", "dtype": str(FRAME["c"].dtype), "missing": "most_frequent", "fill_value": "missing",
        "scale": "none", "indicator": False, "max_categories": 2, "fill": "b", "categories": ["b"], "other": ["a", "c"], "form": "text",
    }


def test_model_files_of_version_one_still_load():
    arrays = {"prep.mean": np.array([1.0, 2.0]), "prep.scale": np.array([2.0, 4.0])}
    meta = {"target": "y", "task": "regression", "features": ["a", "b"], "classes": [], "target_mean": 3.0, "target_scale": 2.0}
    prep = Preprocessor.from_arrays(arrays, meta)
    assert prep.features_of(pd.DataFrame({"b": [6.0], "a": [5.0]}), "x.csv", "float64").tolist() == [[2.0, 1.0]]
    assert (prep.target_center.tolist(), prep.target_scale.tolist()) == ([3.0], [2.0])


def test_several_regression_targets_are_standardized_one_by_one():
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "u": [10.0, 20.0, 30.0, 40.0], "v": [-1.0, -1.0, 1.0, 1.0]})
    prep = Preprocessor.fit(frame, targets=["u", "v"], task="regression", columns=[numeric_column("a")])
    y = prep.target_of(frame, "t.csv", "float64")
    assert y.shape == (4, 2)
    assert y.mean(axis=0).tolist() == pytest.approx([0, 0], abs=1e-12) and y.std(axis=0).tolist() == pytest.approx([1, 1])
    assert np.allclose(y * prep.target_scale + prep.target_center, frame[["u", "v"]].to_numpy(), rtol=0, atol=1e-12)


def test_multilabel_targets_must_be_zero_or_one():
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "l1": [0, 1, 1], "l2": [0, 2, 1]})
    prep = Preprocessor(["l1", "l2"], "multilabel", [numeric_column("a")], np.zeros(1), np.ones(1), ["l1", "l2"])
    assert prep.target_of(frame.assign(l2=[1, 0, 0]), "t.csv").tolist() == [[0, 1], [1, 0], [1, 0]]
    with pytest.raises(DataError) as info:
        prep.target_of(frame, "t.csv")
    assert str(info.value) == "t.csv: multilabel target column 'l2' must hold only 0 and 1 (or true/false); found 2"


def test_targets_given_as_text_or_objects_read_as_numbers_as_features_do():
    # a DataFrame given to Model.evaluate may hold its numbers as text (read with dtype=str) or objects
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "l1": [0, 1, 1], "l2": [1, 0, 1], "u": [0.5, 2.0, -1.25]})
    multilabel = Preprocessor(["l1", "l2"], "multilabel", [numeric_column("a")], np.zeros(1), np.ones(1), ["l1", "l2"])
    regression = Preprocessor(["u"], "regression", [numeric_column("a")], np.zeros(1), np.ones(1), target_center=np.array([0.5]), target_scale=np.array([2.0]))
    for given in (frame.astype(str), frame.astype(object), frame.assign(l1=[False, True, True]).astype(object)):
        assert multilabel.target_of(given, "t").tolist() == [[0, 1], [1, 0], [1, 1]]
        assert regression.target_of(given, "t", "float64").tolist() == [[0.0], [0.75], [-0.875]]
        assert regression.target_values(given).tolist() == [[0.5], [2.0], [-1.25]]
    with pytest.raises(DataError) as info:
        multilabel.target_of(frame.astype(str).assign(l2=["1", "yes", "0"]), "t")
    assert str(info.value) == "t: multilabel target column 'l2' must hold only 0 and 1 (or true/false); found 'yes'"
    with pytest.raises(DataError) as info:
        regression.target_of(frame.astype(object).assign(u=[0.5, True, "x"]), "t")
    assert str(info.value) == "t: regression target 'u' is not numeric (e.g. True)"


def test_robust_scaling_falls_back_when_most_values_are_equal():
    frame = pd.DataFrame({"n": [0.0] * 7 + [-3.0, 4.0], "y": ["p", "q", "p", "q", "p", "q", "p", "q", "p"]})
    prep = fit(frame, numeric={"scale": "robust"})
    assert (prep.center[0], prep.scale[0]) == (0.0, pytest.approx(np.sqrt(25.0 / 9)))
