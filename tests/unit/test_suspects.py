"""The rule for ID-like, free-text and decimal-comma columns, one case at a time."""

import numpy as np
import pandas as pd
import pytest

from bptrain.data import suspects
from bptrain.data.columns import Column, infer_kind, numeric_column


def warned(name: str, values, decimal: str = ".") -> list[str]:
    series = pd.Series(values, dtype="str" if isinstance(values[0], str) else None)
    kind = infer_kind(series)
    column = numeric_column(name) if kind == "numeric" else Column(name, kind, "str", "error", "missing", "none", False, 20)
    return suspects.warnings(pd.DataFrame({name: series}), [column], decimal)


ROW_NUMBER = "column 'n' looks like a row number (the values {} to {}, each once); a model can learn the order of the rows from it instead of the data: leave it out with data.exclude: [n]"


@pytest.mark.parametrize(
    "values, expected",
    [
        (list(range(1, 22)), [ROW_NUMBER.format(1, 21)]),
        (list(np.random.default_rng(0).permutation(30)), [ROW_NUMBER.format(0, 29)]),  # in any order
        (list(range(0, 42, 2)), []),  # distinct, but with gaps
        (list(range(20)), []),  # too few rows to tell
        ([*range(20), 5], []),  # a value twice
        ([float(i) for i in range(25)], []),  # floats are measurements
    ],
)
def test_row_numbers(values, expected):
    assert warned("n", values) == expected


@pytest.mark.parametrize("name, is_id", [("id", True), ("ID", True), ("customer_id", True), ("order-id", True), ("customerId", True),
                                         ("userID", True), ("uuid", True), ("paid", False), ("PAID", False), ("valid", False), ("idle", False)])
def test_names_like_an_identifier(name, is_id):
    expected = [f"column {name!r} is named like an identifier; if it is one, leave it out with data.exclude: [{name}], since a model only learns noise from it"]
    assert warned(name, [1, 2, 1, 3]) == (expected if is_id else [])


@pytest.mark.parametrize(
    "distinct, rows, warns",
    [(21, 40, True), (20, 20, False), (21, 42, False), (100, 100, True)],
)
def test_free_text(distinct, rows, warns):
    values = [f"v{i % distinct}" for i in range(rows)]
    expected = [
        f"column 'note' looks like free text or an identifier ({distinct} different values in {rows} rows), "
        "so its one-hot inputs stand for arbitrary values: leave it out with data.exclude: [note]"
    ]
    assert warned("note", values) == (expected if warns else [])


def test_true_false_columns_are_not_free_text():
    assert warned("flag", [True, False] * 30) == []


@pytest.mark.parametrize(
    "values, decimal, warns",
    [(["3,14", "2,5", "-1,0", "1.234,5"], ".", True), (["3,14", "2,5", "x", "y"], ".", False), (["3,14", "2,5"], ",", False), (["a,b", "c,d"], ".", False)],
)
def test_numbers_with_a_decimal_comma(values, decimal, warns):
    expected = ["column 'price' holds numbers with a decimal comma (e.g. '3,14'), read as categories; set data.read.decimal: \",\" to read them as numbers"]
    assert warned("price", values, decimal) == (expected if warns else [])


TEXT = ["1", "2.5", " 7 ", "1e3", "nan", "inf", "x", "3,14", "1.234,5", "-0,5", "", "True", "a,b"]


@pytest.mark.parametrize("seed", range(24))  # 4 of them numeric, 5 with a decimal comma
def test_text_rules_taken_once_per_distinct_value_are_those_taken_row_by_row(seed):
    rng = np.random.default_rng(seed)
    words = list(rng.choice(TEXT, size=rng.integers(2, 6), replace=False))
    shares = rng.dirichlet(np.full(len(words), 0.15))  # often one word nearly everywhere
    values = pd.Series(rng.choice(words, size=200, p=shares), dtype="str")
    numbers = pd.to_numeric(values, errors="coerce").notna().mean()  # each row's test
    assert infer_kind(values) == ("numeric" if numbers >= 0.95 else "categorical")
    matches = values.str.match(suspects.DECIMAL_COMMA)
    column = Column("v", "categorical", "str", "error", "missing", "none", False, 20)
    note = suspects._decimal_comma(values, column, ".")
    assert (note is not None) == (matches.mean() >= 0.95)
    if note is not None:
        assert f"(e.g. {values[matches].iloc[0]!r})" in note  # the first row's that matches


def test_distinct_values_in_the_order_they_first_appear_with_their_counts():
    from bptrain.data.columns import distinct_counts

    distinct, counts = distinct_counts(pd.Series(["b", "a", "b", "c", "b"], dtype="str"))
    assert distinct.tolist() == ["b", "a", "c"] and counts.tolist() == [3, 1, 1]
