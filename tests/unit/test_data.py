"""Reading, checking, splitting and preprocessing data."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bptrain.config.loading import load_config
from bptrain.data.columns import numeric_column
from bptrain.data.preprocess import Preprocessor, class_labels, infer_task
from bptrain.data.reading import read_table
from bptrain.data import splits
from bptrain.data.splits import fit_preprocessor, read_splits, split_indices, transform
from bptrain.errors import ConfigError, DataError


@pytest.mark.parametrize(
    "values, task",
    [
        (["a", "b", "a"], "classification"),
        ([True, False, True], "classification"),
        ([0, 1, 2, 1], "classification"),
        (list(range(21)), "regression"),  # more than 20 distinct integers
        ([1.5, 2.0, 3.25], "regression"),
        ([1.0, 2.0, 1.0], "regression"),  # floats are measurements, even when whole
    ],
)
def test_task_inference_rule(values, task):
    assert infer_task(pd.Series(values)) == task


def test_class_labels_sort_numbers_numerically():
    assert class_labels(pd.Series([10, 2, 1, 2])) == ["1", "2", "10"]
    assert class_labels(pd.Series(["b", "a", "c"])) == ["a", "b", "c"]


def test_stratified_split_is_seeded_disjoint_complete_and_keeps_class_shares():
    strata = np.array([0] * 60 + [1] * 30 + [2] * 10)
    parts = split_indices(100, (0.2, 0.1), np.random.default_rng(3), strata)
    again = split_indices(100, (0.2, 0.1), np.random.default_rng(3), strata)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    train, val, test = parts
    assert sorted(np.concatenate(parts).tolist()) == list(range(100))
    assert [np.bincount(strata[val], minlength=3).tolist(), np.bincount(strata[test], minlength=3).tolist()] == [[12, 6, 2], [6, 3, 1]]
    other = split_indices(100, (0.2, 0.1), np.random.default_rng(4), strata)
    assert not np.array_equal(other[1], val)


@pytest.mark.parametrize("seed", range(5))
def test_strata_numbered_once_split_and_fold_the_rows_as_sorting_the_labels_does(seed):
    from bptrain.data.splits import fold_ids

    rng = np.random.default_rng(seed)
    words = np.array(["b", "a", "ab", "B", "10", "9", "é", "a b", ""], dtype=object)
    strata = words[rng.integers(0, len(words), 500)]

    def by_sorted_labels(n, rng, strata):  # the rule, as np.unique and a comparison per stratum give it
        for group in [np.flatnonzero(strata == s) for s in np.unique(strata)]:
            yield group[rng.permutation(len(group))]

    ours = split_indices(500, (0.2, 0.1), np.random.default_rng(seed), strata)
    folds = fold_ids(500, 4, np.random.default_rng(seed), strata)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(splits, "_shuffled_groups", by_sorted_labels)
        expected = split_indices(500, (0.2, 0.1), np.random.default_rng(seed), strata)
        expected_folds = fold_ids(500, 4, np.random.default_rng(seed), strata)
    assert all(np.array_equal(a, b) for a, b in zip(ours, expected)) and np.array_equal(folds, expected_folds)


def write_csv(tmp_path: Path, text: str, name="d.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def config_for(tmp_path: Path, csv: str, extra: str = ""):
    write_csv(tmp_path, csv)
    config = tmp_path / "c.yaml"
    config.write_text(f"data: {{train: d.csv, target: y{extra}}}\n")
    return load_config(config)


def frame_csv(n=40, seed=0) -> str:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.normal(5, 2, n), "b": rng.normal(-1, 3, n), "y": ["p", "q"] * (n // 2)})
    return frame.to_csv(index=False)


def test_standardization_uses_training_rows_only(tmp_path):
    config = config_for(tmp_path, frame_csv())
    raw = read_splits(config.data, seed=1)
    prep = fit_preprocessor(raw)
    train = raw.frames["train"][["a", "b"]].to_numpy()
    assert np.allclose(prep.center, train.mean(axis=0)) and np.allclose(prep.scale, train.std(axis=0))
    everything = pd.read_csv(tmp_path / "d.csv")[["a", "b"]].to_numpy()
    assert not np.allclose(prep.center, everything.mean(axis=0))
    dataset = transform(raw, prep, "cross_entropy", "float32")
    assert dataset.train.x.dtype == np.float32
    assert np.allclose(dataset.train.x.mean(axis=0), 0, atol=1e-6)
    assert len(dataset.train.x) + len(dataset.val.x) + len(dataset.test.x) == 40


def test_regression_target_is_standardized_and_restored():
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "y": [10.0, 20.0, 30.0, 40.0]})
    prep = Preprocessor.fit(frame, targets=["y"], task="regression", columns=[numeric_column("a")])
    y = prep.target_of(frame, "d.csv", "float64")
    assert y.shape == (4, 1) and abs(y.mean()) < 1e-12 and abs(y.std() - 1) < 1e-12
    assert np.allclose(y[:, 0] * prep.target_scale + prep.target_center, frame["y"])


def test_preprocessor_survives_the_model_file_format():
    frame = pd.DataFrame({"a": [1.0, 2.0, 4.0], "y": ["x", "z", "x"]})
    prep = Preprocessor.fit(frame, targets=["y"], task="classification", columns=[numeric_column("a")])
    arrays, meta = prep.to_arrays()
    again = Preprocessor.from_arrays(arrays, meta)
    assert again.classes == ["x", "z"] and np.array_equal(again.center, prep.center) and np.array_equal(again.scale, prep.scale)


@pytest.mark.parametrize(
    "csv, extra, message",
    [
        ("a,b,yy\n1,2,p\n", "", "d.csv: target column 'y' not found. Did you mean 'yy'? Columns: a, b, yy"),
        (
            "a,b,y\n1,x,p\n2,z,q\n", ", columns: {b: {kind: numeric}}",
            "d.csv: column 'b' must be numeric, but rows 1, 2 hold text: 'x', 'z'. Leave missing values as empty cells, or set data.columns.b.kind: categorical",
        ),
        (
            "a,b,y\n1,,p\n2,3,q\n,4,p\n", "",
            "d.csv: missing values in feature columns: a (1 row), b (1 row). Choose how to handle them with data.numeric.missing, "
            "data.categorical.missing or data.columns.<name>.missing (drop, mean, median, most_frequent, constant), or leave the columns out with data.exclude",
        ),
        ("a,y\n1,p\n2,\n", "", "d.csv: target column 'y' has 1 missing value; remove those rows"),
        ("a,y\n1,p\n2,p\n3,p\n4,p\n", "", "d.csv: target column 'y' has only one class ('p') in the training rows; classification needs at least two"),
        ("a,y\n", "", "d.csv: has a header but no rows"),
        ("", "", "d.csv: the file is empty; a CSV file needs a header line and rows"),
        ("a,a,y\n1,2,p\n", "", "d.csv: duplicate column names: a. Rename them so each is unique"),
        ("a,b,y\n1,2,p\n", ", exclude: [c]", "d.csv: data.exclude names column 'c', which is not in the file. Columns: a, b, y"),
        ("a,b,y\n1,2,p\n", ", columns: {bb: {kind: categorical}}", "d.csv: data.columns names column 'bb', which is not in the file. Did you mean 'b'? Columns: a, b, y"),
        ("a,b,y\n1,2,p\n", ", split: {column: part}", "d.csv: data.split.column names column 'part', which is not in the file. Columns: a, b, y"),
        ("a,b,y\n1,2,p\n", ", features: [a, bb]", "d.csv: data.features names column 'bb', which is not in the file. Did you mean 'b'? Columns: a, b, y"),
        (
            "a,b,y\n1,True,p\n2,false,q\n", ", columns: {b: {kind: numeric}}",
            "d.csv: column 'b' must be numeric, but rows 1, 2 hold text: 'True', 'False'. Leave missing values as empty cells, or set data.columns.b.kind: categorical",
        ),
        (
            "a,b,y\n1,True,p\n2,2.5,q\n", ", columns: {b: {kind: numeric}}",
            "d.csv: column 'b' must be numeric, but row 1 holds text: 'True'. Leave missing values as empty cells, or set data.columns.b.kind: categorical",
        ),
        ("a,y\n1,p\n2,q\n", ", task: regression", "d.csv: data.task is regression but target 'y' is not numeric (e.g. 'p'); use task: classification"),
        (
            "a,y\ninf,1.5\n2,2.5\n", "",
            "d.csv: column 'a' holds infinite values in row 1; replace them with numbers, or leave the cells empty to treat them as missing",
        ),
    ],
)
def test_data_errors_name_file_column_and_remedy(tmp_path, csv, extra, message):
    config = config_for(tmp_path, csv, extra)
    with pytest.raises(DataError) as info:
        raw = read_splits(config.data, seed=0)
        fit_preprocessor(raw)
    assert str(info.value) == str(tmp_path / message)


def test_missing_data_file(tmp_path):
    with pytest.raises(DataError) as info:
        read_table(tmp_path / "none.csv")
    assert str(info.value) == f"{tmp_path / 'none.csv'}: data file not found. Check the path (data paths are relative to the config file)"


def test_predict_time_missing_columns_are_named():
    prep = Preprocessor(["y"], "classification", [numeric_column("a"), numeric_column("b")], np.zeros(2), np.ones(2), ["p", "q"])
    with pytest.raises(DataError) as info:
        prep.features_of(pd.DataFrame({"a": [1.0], "bb": [2.0]}), "new.csv")
    assert str(info.value) == "new.csv: missing 1 feature column the model was trained with: b. Did you mean 'bb'? Columns: a, bb"


def test_labelled_rows_missing_a_column_whose_rule_is_drop_get_the_missing_column_message():
    prep = Preprocessor(["y"], "classification", [numeric_column("a"), numeric_column("b", missing="drop")], np.zeros(2), np.ones(2), ["p", "q"])
    with pytest.raises(DataError) as info:
        splits.split_of("test", pd.DataFrame({"a": [1.0, None], "y": ["p", "q"]}), "new.csv", prep, "cross_entropy", "float32")
    assert str(info.value) == "new.csv: missing 1 feature column the model was trained with: b. Columns: a, y"


def test_unseen_target_class_at_evaluation():
    prep = Preprocessor(["y"], "classification", [numeric_column("a")], np.zeros(1), np.ones(1), ["p", "q"])
    with pytest.raises(DataError) as info:
        prep.target_of(pd.DataFrame({"a": [1.0, 2.0], "y": ["p", "r"]}), "new.csv")
    assert str(info.value) == "new.csv: target column 'y' has values the model never saw: 'r'; the model knows p, q"


def test_folds_partition_the_rows_that_are_not_held_out_for_testing(tmp_path):
    write_csv(tmp_path, frame_csv(n=60))
    (tmp_path / "c.yaml").write_text("data: {train: d.csv, target: y, split: {test: 0.2, folds: 4}}\n")
    base = load_config(tmp_path / "c.yaml")
    parts = []
    for fold in (1, 2, 3, 4):
        data = base.data.model_copy(update={"split": base.data.split.model_copy(update={"fold": fold})})
        raw = read_splits(data, seed=5)
        parts.append({name: set(frame["a"]) for name, frame in raw.frames.items()})
        assert raw.frames["val"]["y"].value_counts().to_dict() == {"p": 6, "q": 6}  # stratified: 24 of each class, 6 per fold
    tests = [p["test"] for p in parts]
    assert all(t == tests[0] for t in tests) and len(tests[0]) == 12
    vals = [p["val"] for p in parts]
    assert sum(len(v) for v in vals) == 48 and set().union(*vals) | tests[0] == set(pd.read_csv(tmp_path / "d.csv")["a"])
    for p in parts:
        assert p["train"] | p["val"] | p["test"] == set(pd.read_csv(tmp_path / "d.csv")["a"]) and not p["train"] & p["val"]


def test_a_split_column_says_which_rows_go_where_and_is_not_a_feature(tmp_path):
    text = "a,part,y\n" + "".join(f"{i},{['train', 'train', 'val', 'test'][i % 4]},{'pq'[i % 2]}\n" for i in range(16))
    config = config_for(tmp_path, text, ", split: {column: part}")
    raw = read_splits(config.data, seed=0)
    assert raw.features == ["a"]
    assert {name: frame["a"].tolist() for name, frame in raw.frames.items()} == {
        "train": [0, 1, 4, 5, 8, 9, 12, 13], "val": [2, 6, 10, 14], "test": [3, 7, 11, 15]
    }


def test_rows_missing_a_value_where_the_rule_is_drop_leave_every_split(tmp_path):
    text = "a,b,y\n" + "".join(f"{2 * i},{'' if i % 5 == 0 else i},{'pq'[i % 2]}\n" for i in range(40))  # 2i: not a row number
    config = config_for(tmp_path, text, ", numeric: {missing: drop}")
    raw = read_splits(config.data, seed=0)
    assert sum(len(f) for f in raw.frames.values()) == 32 and all(f["b"].notna().all() for f in raw.frames.values())
    assert len(raw.notes) == 1 and raw.notes[0].startswith("dropped rows with missing values in a, b (missing: drop): ")


@pytest.mark.parametrize(
    "split, message",
    [
        (
            "{test: 0.2, folds: 49}",
            "data.split.folds: 49 folds need at least 49 rows, but {path} has only 48 rows besides the test rows; use at most 12 folds "
            "(stratified folds need a row of every class, and class 'q' has only 12 rows besides the test rows)",
        ),
        (
            "{test: 0.2, folds: 49, stratify: false}",
            "data.split.folds: 49 folds need at least 49 rows, but {path} has only 48 rows besides the test rows; use at most 48 folds",
        ),
        (
            "{test: 0, folds: 61}",
            "data.split.folds: 61 folds need at least 61 rows, but {path} has only 60 rows; use at most 15 folds "
            "(stratified folds need a row of every class, and class 'q' has only 15 rows)",
        ),
        (
            "{test: 0.2, folds: 13, stratify: true}",
            "data.split.folds: 13 stratified folds need at least 13 rows of every class, but class 'q' has only 12 rows "
            "besides the test rows; use at most 12 folds, or set data.split.stratify: false",
        ),
    ],
)
def test_too_many_folds_is_a_config_error_before_any_training(tmp_path, split, message):
    rows = ["p"] * 45 + ["q"] * 15  # 12 of the 15 q rows stay out of a stratified 20% test split
    config = config_for(tmp_path, "a,y\n" + "".join(f"{i % 7},{y}\n" for i, y in enumerate(rows)), f", split: {split}")
    with pytest.raises(ConfigError) as info:
        read_splits(config.data, seed=0)
    assert str(info.value) == message.format(path=tmp_path / "d.csv")


def test_as_many_folds_as_the_smallest_class_has_rows_is_fine(tmp_path):
    rows = ["p"] * 45 + ["q"] * 15
    config = config_for(tmp_path, "a,y\n" + "".join(f"{i % 7},{y}\n" for i, y in enumerate(rows)), ", split: {test: 0.2, folds: 12, fold: 3}")
    raw = read_splits(config.data, seed=0)
    assert sorted(raw.frames["val"]["y"]) == ["p"] * 3 + ["q"]


def test_an_infinite_regression_target_is_reported_with_its_file_row(tmp_path):
    text = "a,y\n" + "".join(f"{i % 5},{'inf' if i == 30 else i * 0.5}\n" for i in range(40))
    config = config_for(tmp_path, text)
    with pytest.raises(DataError) as info:
        read_splits(config.data, seed=0)  # the whole file is checked before the split: the row is the file's
    assert str(info.value) == f"{tmp_path / 'd.csv'}: target column 'y' holds infinite values in row 31; remove those rows"


def test_a_class_only_in_the_validation_file_is_an_error_naming_class_and_files(tmp_path):
    write_csv(tmp_path, "a,y\n" + "".join(f"{i % 5},{'pq'[i % 2]}\n" for i in range(20)), "train.csv")
    write_csv(tmp_path, "a,y\n1,p\n2,r\n3,r\n4,s\n", "val.csv")
    (tmp_path / "c.yaml").write_text("data: {train: train.csv, val: val.csv, target: y, split: {test: 0}}\n")
    raw = read_splits(load_config(tmp_path / "c.yaml").data, seed=0)
    with pytest.raises(DataError) as info:
        fit_preprocessor(raw)
    val, train = tmp_path / "val.csv", tmp_path / "train.csv"
    assert str(info.value) == (
        f"{val}: classes 'r' (2 rows), 's' (1 row) of target column 'y' are in none of the training rows ({train}), "
        f"so the model can never predict them; add rows of those classes to {train}, or remove those rows from {val}"
    )


def test_a_class_only_in_the_test_rows_of_a_split_column_is_an_error(tmp_path):
    text = "a,part,y\n" + "".join(f"{i % 5},train,{'pq'[i % 2]}\n" for i in range(20)) + "1,test,r\n"
    config = config_for(tmp_path, text, ", split: {column: part}")
    raw = read_splits(config.data, seed=0)
    with pytest.raises(DataError) as info:
        fit_preprocessor(raw)
    path = tmp_path / "d.csv"
    assert str(info.value) == (
        f"{path}: class 'r' (1 row) of target column 'y' is in the test rows but in none of the training rows, "
        f"so the model can never predict it; add rows of that class to {path}, or remove those rows from {path}"
    )


def test_single_value_columns_share_one_warning(tmp_path):
    names = [f"c{i}" for i in range(12)]
    text = ",".join(names + ["a", "y"]) + "\n" + "".join(",".join(["7"] * 12 + [str(i % 5), "pq"[i % 2]]) + "\n" for i in range(20))
    config = config_for(tmp_path, text)
    raw = read_splits(config.data, seed=0)
    fit_preprocessor(raw)
    assert raw.notes == [
        "columns 'c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7', 'c8', 'c9' (and 2 more) have a single value each in the "
        "training rows; they give the network nothing to learn from"
    ]


@pytest.mark.parametrize("values, single", [
    ([2.0, 2.0, 2.0], True),
    ([2.0, np.nan, 2.0], True),  # the missing value is not a second value
    ([np.nan, np.nan], True),
    ([2.0, np.nan, 3.0], False),
    ([np.nan, 1.0, -1.0], False),
    ([5, 5, 5], True),
    ([5, 6, 5], False),
    ([], True),
])
def test_a_column_is_single_valued_as_nunique_says(values, single):
    from bptrain.data.splits import _single_valued

    column = pd.Series(values, dtype=np.float64 if any(isinstance(v, float) for v in values) or not values else np.int64)
    assert _single_valued(column) is single
    assert (column.nunique(dropna=True) <= 1) is single
