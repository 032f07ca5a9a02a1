"""Fuzzing CSV headers: `check`, `predict` and `evaluate --data` on odd header lines never end in an internal error.

Header lines hold unicode, empty and duplicate names, quotes, the delimiters , ; tab |, a
byte-order mark, very long names or many columns, mixed with the real column names so the reading
gets past the schema checks; a few data rows follow, some with more or fewer fields than the
header, or none at all. Every outcome must be a documented exit code other than 1 (fuzzing.py).
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

from hypothesis import given, strategies as st

from fuzzing import run_cli

IRIS = ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]
ODD = ["", " ", '"', '""', "'", "a,b", "x;y", "t\tu", "p|q", "\ufeff", "\ufeffspecies", "ä", "🙂", "\u202e", "\x00", "=1+1", "NaN", "null", "1", "0.5", "species ", " sepal_length", "SPECIES", "#", "\\", "a\nb", "a\rb", "Unnamed: 0"]
NAMES = st.one_of(st.sampled_from(IRIS), st.sampled_from(ODD), st.text(max_size=12), st.integers(200, 20_000).map(lambda n: "n" * n))
CELLS = st.one_of(
    st.sampled_from(["5.1", "3.5", "1.4", "0.2", "setosa", "virginica", "", "NA", "nan", "inf", "-inf", "1e999", "1e-999", "?", '"', "a,b", "2007", "true"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=8),
)
DELIMITERS = [",", ";", "\t", "|"]


@st.composite
def csv_files(draw) -> tuple[bytes, str, str]:
    """(the file's bytes, its delimiter, a target to name in the config)."""
    if draw(st.integers(0, 9)) == 0:
        names = [f"c{i}" for i in range(draw(st.integers(200, 5000)))] + IRIS
    else:
        names = draw(st.lists(NAMES, max_size=12))
        names = draw(st.permutations(names + draw(st.sampled_from([IRIS, IRIS[:4], IRIS[2:], []]))))
    delimiter = draw(st.sampled_from(DELIMITERS))
    rows = [names]
    for _ in range(draw(st.integers(0, 5))):
        width = max(0, len(names) + draw(st.sampled_from([0, 0, 0, -1, 1, -2, 2])))
        rows.append(draw(st.lists(CELLS, min_size=min(width, 12), max_size=min(width, 12))) + ["1.0"] * max(0, width - 12))
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    if draw(st.booleans()):
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=delimiter, lineterminator=ending).writerows(rows)
        text = buffer.getvalue()
    else:  # joined without quoting: names holding the delimiter or quotes break the line up
        text = ending.join(delimiter.join(row) for row in rows) + draw(st.sampled_from([ending, ""]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16", "latin-1"]))
    data = text.encode(encoding, errors="replace")
    target = draw(st.one_of(st.sampled_from(names or ["species"]), st.just("species")))
    return data, delimiter, target


def _config(folder: Path, target: str, delimiter: str, auto: bool) -> Path:
    """A config (JSON, which YAML reads) that trains on data.csv in `folder` with all rows."""
    data = {"train": "data.csv", "target": target, "split": {"val": 0.0, "test": 0.0}}
    if not auto:
        data["read"] = {"delimiter": delimiter}
    path = folder / "config.yaml"
    path.write_text(json.dumps({"data": data}), encoding="utf-8")
    return path


def _shown(data: bytes, target: str, delimiter: str) -> str:
    return f"data.csv (target {target!r}, delimiter {delimiter!r}): {data[:600]!r}" + (f" ... ({len(data)} bytes)" if len(data) > 600 else "")


@given(csv_files(), st.booleans())
def test_check_predict_and_evaluate_on_odd_headers(fitted, file, auto):
    data, delimiter, target = file
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (folder / "data.csv").write_bytes(data)
        config = _config(folder, target, delimiter, auto)
        shown, files = _shown(data, target, delimiter), {"data.csv": folder / "data.csv", "config.yaml": config}
        run_cli(["check", config], shown, files)
        run_cli(["predict", fitted["iris"], folder / "data.csv"], shown, files)
        run_cli(["evaluate", fitted["iris"], "--data", folder / "data.csv"], shown, files)
