"""Fuzzing data cells: `fit`, then `predict`, `serve` and `evaluate --data` on new rows: no internal error, and every reader agrees.

Each file has a few feature columns, each mostly of one sort (numbers, integers, text labels,
true/false, decimal commas, dates, long IDs, empty) with the odd stray cell (missing-value
spellings, `?`, infinities, huge numbers, whitespace, unicode, quotes), and a target column of
labels, numbers or true/false, also with strays. The config draws the missing-value rules,
scaling, indicators, category limits, a kind declared per column, the delimiter (or its
detection), the decimal mark and the split. The rows predicted and evaluated are drawn alike, so
they may hold categories, values and columns the training rows did not.

Every outcome must be a documented exit code other than 1 (fuzzing.py). predict on the file and
on stdin, each with and without its pandas-free reader, and `serve` given the file as a CSV body
must give the same predictions or the same error. When every row trains (no validation rows),
`evaluate --data` on the training file must succeed and give the training metrics of the run's
report: the rows read, filled and encoded as in training.
"""

from __future__ import annotations

import csv
import io
import json
import math
import tempfile
from pathlib import Path
from unittest import mock

from hypothesis import given, settings, strategies as st

from bptrain.data import plaincsv
from conftest import served
from fuzzing import invoke, report, run_cli

SORTS = {
    "float": st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: f"{x:.6g}"),
    "int": st.one_of(st.integers(-1000, 1000), st.integers(-5, 2**63)).map(str),
    "label": st.sampled_from(["a", "b", "c", "Adélie", "x y", "2007", "02134", "True"]),
    "bool": st.sampled_from(["true", "false", "True", "FALSE"]),
    "comma": st.floats(-1e4, 1e4, allow_nan=False).map(lambda x: f"{x:.3f}".replace(".", ",")),
    "date": st.dates().map(str),
    "id": st.integers(2**53, 2**53 + 3).map(str),
    "empty": st.just(""),
}
STRAYS = st.sampled_from(
    ["", "NA", "nan", "NaN", "null", "None", "n/a", "?", "inf", "-inf", "1e999", "-1e999", "1e-320", " 1", "1 ", "+7", "0x10",
     "1_000", "١٢", "🙂", '"', "a,b", "\t", "-0", "9" * 30, "Infinity", "TRUE", "2007.0"]
)
MISSING = ["error", "drop", "mean", "median", "most_frequent", "constant"]


def cells(sort: str, strays: int) -> st.SearchStrategy[str]:
    """A cell of a column of `sort`: a stray about one time in `strays`, else of that sort (on a
    middle value of the range: hypothesis favours its ends)."""
    return st.integers(1, strays).flatmap(lambda k: STRAYS if k == strays // 2 else SORTS[sort])


@st.composite
def tables(draw, columns: dict[str, str], rows: int, strays: list[int], delimiter: str) -> bytes:
    """CSV bytes with the columns `columns` (name: sort) and up to `rows` rows. Feature columns get
    strays at a rate drawn from `strays`; the target column y at most one, in one file of eight or
    so (hypothesis favours the ends of a range, so the choice falls on a middle value)."""
    kinds = [SORTS[sort] if name == "y" else cells(sort, draw(st.sampled_from(strays))) for name, sort in columns.items()]
    lines = [[draw(kind) for kind in kinds] for _ in range(draw(st.integers(rows // 4, rows)))]
    if lines and "y" in columns and draw(st.integers(0, 7)) == 3:
        lines[draw(st.integers(0, len(lines) - 1))][list(columns).index("y")] = draw(STRAYS)
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator=draw(st.sampled_from(["\n", "\n", "\r\n"]))).writerows([list(columns)] + lines)
    return buffer.getvalue().encode("utf-8")


@st.composite
def problems(draw) -> dict:
    """The training file, the rows to predict, and the config's data section."""
    sorts = draw(st.lists(st.sampled_from(sorted(SORTS)), min_size=1, max_size=4))
    columns = {f"f{i}": sort for i, sort in enumerate(sorts)} | {"y": draw(st.sampled_from(["label", "int", "float", "bool"]))}
    delimiter = draw(st.sampled_from([",", ",", ";", "\t", "|"]))
    train = draw(tables(columns, 24, [4, 30, 1000], delimiter))
    order = draw(st.permutations(list(columns)))
    kept = order[: len(order) - draw(st.sampled_from([0, 0, 0, 1]))]  # now and then a column fewer
    new = draw(tables({name: columns[name] for name in kept}, 8, [4, 30, 1000, 1000], delimiter))  # plain more often: plaincsv reads it
    data = {
        "train": "train.csv",
        "target": "y",
        "split": {"val": draw(st.sampled_from([0.0, 0.25, 0.25])), "test": 0.0, "stratify": draw(st.booleans())},
        "numeric": {"missing": draw(st.sampled_from(MISSING)), "scale": draw(st.sampled_from(["standard", "minmax", "robust", "none"])),
                    "indicator": draw(st.booleans())},
        "categorical": {"missing": draw(st.sampled_from(["error", "drop", "most_frequent", "constant"])), "max_categories": draw(st.integers(2, 20)),
                        "indicator": draw(st.booleans())},
    }
    if draw(st.booleans()):
        data["columns"] = {draw(st.sampled_from(sorted(columns.keys() - {"y"}))): {"kind": draw(st.sampled_from(["numeric", "categorical", "auto"]))}}
    data["read"] = {"delimiter": draw(st.sampled_from(["auto", {"\t": "tab"}.get(delimiter, delimiter)]))}
    if draw(st.integers(0, 3)) == 0:
        data["read"]["decimal"] = ","
    return {"train.csv": train, "new.csv": new, "data": data}


def _config(folder: Path, data: dict) -> Path:
    """A small, quick config (JSON, which YAML reads) around the drawn data section."""
    config = {
        "seed": 3,
        "data": data,
        "model": {"layers": [{"units": 4, "activation": "relu"}]},
        "training": {"batch_size": 4},
        "stopping": {"max_epochs": 2, "early_stopping": data["split"]["val"] > 0},
        "report": {"figures": False},
    }
    path = folder / "config.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


@settings(max_examples=max(3, settings.default.max_examples // 3))
@given(problems())
def test_fit_predict_and_evaluate_on_odd_cells(problem):
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        for file in ("train.csv", "new.csv"):
            (folder / file).write_bytes(problem[file])
        config = _config(folder, problem["data"])
        shown = "\n".join(f"{file}:\n{problem[file].decode()}" for file in ("train.csv", "new.csv")) + f"\ndata: {json.dumps(problem['data'])}"
        files = {"train.csv": folder / "train.csv", "new.csv": folder / "new.csv", "config.yaml": config}
        if run_cli(["fit", config, "-q", "--runs-dir", folder / "runs"], shown, files) != 0:
            return
        (run,) = (folder / "runs").iterdir()
        _same_predictions_on_every_path(run, folder / "new.csv", shown, files)
        run_cli(["evaluate", run, "--data", folder / "new.csv"], shown, files)
        if problem["data"]["split"]["val"] == 0:
            _same_metrics_on_the_training_file(run, folder / "train.csv", shown, files)


def _same_predictions_on_every_path(run: Path, new: Path, shown: str, files: dict[str, Path]) -> None:
    """predict on the file, on the same bytes from stdin, both without the pandas-free reader of
    small plain files (plaincsv), and `serve` given the file as a CSV body: the same predictions,
    or the same error (exit code 3, and status 422 for serve)."""
    outcomes = {}
    proba = [] if json.loads((run / "report.json").read_text(encoding="utf-8"))["task"] == "regression" else ["--proba"]
    for reader in ("plain", "pandas"):
        with mock.patch.object(plaincsv, "SMALL_BYTES", plaincsv.SMALL_BYTES if reader == "plain" else -1):
            for source in (new, "-"):
                args = ["predict", run, source, *proba]
                code, stdout, output = invoke(args, shown, files, stdin=new.read_bytes() if source == "-" else None)
                outcomes[(reader, str(source))] = _outcome(code, stdout, output, str(source), new)
    outcomes[("serve", "request")] = _served(run, new, proba)
    if len(set(outcomes.values())) > 1:
        shown_outcomes = "\n".join(f"{reader} {source}: exit {code}\n{output}" for (reader, source), (code, output) in outcomes.items())
        report("predict differs between its readers", ["predict", str(run), str(new), *proba], shown, shown_outcomes, files)


def _same_metrics_on_the_training_file(run: Path, train: Path, shown: str, files: dict[str, Path]) -> None:
    args = ["evaluate", run, "--data", train, "--json"]
    code, stdout, output = invoke(args, shown, files)
    if code != 0:
        report(f"evaluate on the training file of a finished fit exits {code}", [str(a) for a in args], shown, output, files)
        return
    again = json.loads(stdout)["data"]
    trained = json.loads((run / "report.json").read_text(encoding="utf-8"))["metrics"]["train"]
    if again.keys() != trained.keys() or not all(_agree(again[k], trained[k]) for k in again):
        report("evaluate on the training file disagrees with the report", [str(a) for a in args], shown, f"evaluate: {again}\nreport: {trained}", files)


def _agree(a, b) -> bool:
    """Two metric values alike: equal up to the order of a float32 sum, or both missing (null or NaN)."""
    if a is None or b is None or a != a or b != b:
        return (a is None or a != a) and (b is None or b != b)
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def _outcome(code: int, stdout: str, output: str, source: str, new: Path) -> tuple[int, str]:
    """predict's outcome as serve's is compared: its exit code, and its rows (each number written
    as Python writes its value) or its error line (with the input called `request`, as serve calls it)."""
    if code == 0:
        return 0, _table(list(csv.reader(io.StringIO(stdout))))
    errors = [line.removeprefix("error: ") for line in output.splitlines() if line.startswith("error: ")]
    for name in (str(new), "<stdin>"):
        errors = [e.replace(f"{name}:", "request:", 1) for e in errors]
    return code, "\n".join(errors)


def _served(run: Path, new: Path, proba: list[str]) -> tuple[int, str]:
    """serve's answer to the file as a CSV body, in predict's terms: exit code 0 and the CSV rows
    predict writes, or 3 (for status 422) and the detail."""
    import bptrain

    query = "?proba=true" if proba else ""
    (response,) = served(bptrain.load(run), (f"/predict{query}", {"content": new.read_bytes(), "headers": {"Content-Type": "text/csv"}}))
    if response.status_code != 200:
        return {422: 3}.get(response.status_code, response.status_code), response.json()["detail"]
    rows = response.json()["predictions"]
    return 0, _table([list(rows[0])] + [list(row.values()) for row in rows] if rows else [])


def _table(rows: list[list]) -> str:
    """Rows of cells as text, a number (or text that reads as one) written as Python writes its value."""
    def cell(value) -> str:
        try:
            return repr(float(value))
        except (TypeError, ValueError):
            return str(value)

    return "\n".join(",".join(cell(v) for v in row) for row in rows)
