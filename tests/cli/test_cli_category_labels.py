"""A categorical cell's label depends on the cell and on the form of the column's training values
(numbers, true/false or text, recorded in the model), not on the other cells of the block, file
or frame it is read with: `bptrain predict` (whole, in small blocks, without pandas), evaluate,
the Python API and serve give a row the same numbers whatever rows come with it."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import shutil
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import bptrain
from bptrain.data import plaincsv, reading
from bptrain.runs import checkpoint
from conftest import call_cli, write

HEADER = "x,year,code,member,y"
CONFIG = """
name: labels
seed: 5
data:
  train: train.csv
  target: y
  split: {val: 0.2}
  columns: {year: {kind: categorical}}
model: {layers: [{units: 6, activation: tanh}]}
optimizer: {name: adam, lr: 0.05}
stopping: {max_epochs: 4}
"""
# the rows predicted: each category in several spellings of the form it was trained in
ROWS = [
    "0.5,2007.0,02134,true", "-0.3,+2008,02139,TRUE", "1.2,02008,02134,False", "0.1,2007,02139,FALSE",
    "-1.0,2008,02134,true", "0.7,2007.00,02139,false",
]
CANONICAL = [  # the same rows as the training file spells them
    "0.5,2007,02134,True", "-0.3,2008,02139,True", "1.2,2008,02134,False", "0.1,2007,02139,False",
    "-1.0,2008,02134,True", "0.7,2007,02139,False",
]
TEXT_ROWS = {"year": "0.0,recent,02134,true", "code": "0.0,2007,unknown,true", "member": "0.0,2007,02134,maybe"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> SimpleNamespace:
    """year trained from numbers (declared categorical), code from text (codes beside `unknown`), member from true/false."""
    folder = tmp_path_factory.mktemp("labels")
    rng = np.random.default_rng(0)
    lines = [HEADER]
    for i in range(200):
        year, code, member = 2007 + i % 2, ["02134", "02139", "unknown"][i % 3], ["true", "false"][(i // 2) % 2]
        x = rng.normal()
        hot = x + (year == 2008) - (code == "02134") + (member == "true") > 0.3
        lines.append(f"{x:.3f},{year},{code},{member},{'hi' if hot else 'lo'}")
    (folder / "train.csv").write_text("\n".join(lines) + "\n")
    config = write(folder, CONFIG)
    result = call_cli("fit", config, "-q", "--runs-dir", folder / "runs")
    assert result.returncode == 0, result.stderr
    (run,) = (folder / "runs").iterdir()
    return SimpleNamespace(folder=folder, run=run)


def predicted(trained, rows: list[str], *options: str) -> tuple[list[list[str]], str]:
    """(predict's rows (header first), its stderr) for `rows`, through pandas (the plain reading declined)."""
    path = trained.folder / "in.csv"
    path.write_text(HEADER.removesuffix(",y") + "\n" + "\n".join(rows) + "\n")
    result = call_cli("predict", trained.run, path, "--proba", *options)
    assert result.returncode == 0, result.stderr
    return list(csv.reader(io.StringIO(result.stdout))), result.stderr


@pytest.fixture
def pandas_only(monkeypatch):
    monkeypatch.setattr(plaincsv, "read", lambda source, *args, stdin=None, **kwargs: (None, stdin))


def test_the_model_records_the_form_of_each_categorical_column(trained):
    columns = {c.name: c for c in bptrain.load(trained.run)._trained.prep.columns}
    assert {name: (c.form, c.categories) for name, c in columns.items() if c.kind == "categorical"} == {
        "year": ("number", ["2007", "2008"]),
        "code": ("text", ["02134", "02139", "unknown"]),
        "member": ("bool", ["False", "True"]),
    }


@pytest.mark.parametrize("column", list(TEXT_ROWS))
@pytest.mark.parametrize("path", ["pandas", "plain"])
def test_a_text_cell_elsewhere_in_the_file_changes_no_rows_predictions(trained, monkeypatch, column, path):
    if path == "pandas":
        monkeypatch.setattr(plaincsv, "read", lambda source, *args, stdin=None, **kwargs: (None, stdin))
    alone, quiet = predicted(trained, ROWS)
    together, warned = predicted(trained, ROWS + [TEXT_ROWS[column]])
    canonical, _ = predicted(trained, CANONICAL)
    assert together[:-1] == alone
    assert alone == canonical and quiet == ""  # every spelling is a category the model knows
    shown = {"year": "'recent'", "code": "'unknown'", "member": "'maybe'"}[column]
    assert (column == "code") == (warned == "") and (column == "code" or f"{column} {shown} (1 row)" in warned)


def test_codes_alone_keep_their_leading_zeros(trained, pandas_only):
    alone, quiet = predicted(trained, ["0.5,2007,02134,true", "0.5,2007,02139,true"])
    with_text, _ = predicted(trained, ["0.5,2007,02134,true", "0.5,2007,02139,true", "0.5,2007,unknown,true"])
    assert quiet == "" and alone == with_text[:-1]


def test_small_blocks_give_what_the_whole_file_gives(trained, monkeypatch, pandas_only):
    rows = ROWS * 40 + [TEXT_ROWS["year"], TEXT_ROWS["member"]] + CANONICAL * 40  # the text rows in a block of their own
    whole, warned = predicted(trained, rows)
    chunks = reading.frame_chunks
    monkeypatch.setattr(reading, "frame_chunks", lambda *args, **kwargs: chunks(*args, **{**kwargs, "block_bytes": 64}))
    blocks, warned_in_blocks = predicted(trained, rows)
    assert blocks == whole and warned_in_blocks == warned
    assert "year 'recent' (1 row); member 'maybe' (1 row)" in warned
    assert whole[1 : 1 + len(ROWS) * 40] == whole[-len(CANONICAL) * 40 :]


def test_evaluate_reads_the_cells_as_predict_does(trained, pandas_only):
    metrics = []
    for rows in (ROWS, CANONICAL):
        path = trained.folder / "labelled.csv"
        path.write_text(HEADER + "\n" + "\n".join(f"{r},{'hi' if i % 3 else 'lo'}" for i, r in enumerate(rows)) + "\n0.0,recent,unknown,maybe,lo\n")
        result = call_cli("evaluate", trained.run, "--data", path, "--json")
        assert result.returncode == 0, result.stderr
        model = bptrain.load(trained.run)
        with pytest.warns(bptrain.BptrainWarning, match="year 'recent'"):
            on_frame = model.evaluate(pd.read_csv(path, dtype=str))  # a DataFrame of text, read as text
        metrics.append((json.loads(result.stdout), on_frame))
    assert metrics[0] == metrics[1]
    assert metrics[0][0]["data"] == metrics[0][1]


def test_the_api_labels_each_value_of_a_dataframe_by_the_columns_form(trained):
    model = bptrain.load(trained.run)
    canonical = pd.read_csv(io.StringIO(HEADER + "\n" + "\n".join(f"{r},hi" for r in CANONICAL)), dtype={"code": str}).drop(columns="y")
    values = pd.DataFrame({
        "x": canonical["x"],
        "year": pd.Series([2007.0, "+2008", "02008", 2007, np.int64(2008), "2007.00"], dtype=object),
        "code": canonical["code"],
        "member": pd.Series([True, "TRUE", False, "false", np.True_, "FALSE"], dtype=object),
    })
    expected = model.predict_proba(canonical)
    assert model.predict_proba(values).equals(expected)
    with pytest.warns(bptrain.BptrainWarning, match="year 'recent'"):
        with_text = model.predict_proba(pd.concat([values, pd.DataFrame([{"x": 0.0, "year": "recent", "code": "02134", "member": True}])]))
    assert with_text.iloc[:-1].equals(expected)


def test_serve_answers_a_row_the_same_whatever_rows_come_with_it(trained):
    import httpx

    from bptrain import serve

    keys = HEADER.split(",")[:-1]
    rows = [dict(zip(keys, r.split(","))) for r in ROWS]
    text_row = dict(zip(keys, TEXT_ROWS["year"].split(",")))
    canonical = HEADER.removesuffix(",y") + "\n" + "\n".join(CANONICAL) + "\n"

    async def answers() -> list:
        transport = httpx.ASGITransport(app=serve.create_app(bptrain.load(trained.run), 1 << 20))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            alone = [(await client.post("/predict?proba=true", json={"rows": [r]})).json()["predictions"][0] for r in rows]
            together = (await client.post("/predict?proba=true", json={"rows": rows + [text_row]})).json()["predictions"][:-1]
            as_csv = (await client.post("/predict?proba=true", content=canonical, headers={"Content-Type": "text/csv"})).json()
            return [alone, together, as_csv["predictions"]]

    alone, together, as_csv = asyncio.run(answers())
    assert alone == together == as_csv


def test_a_model_file_without_the_form_takes_it_from_its_categories(trained, tmp_path, pandas_only):
    old = tmp_path / "old"
    shutil.copytree(trained.run, old)
    with np.load(old / "model.npz", allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files if k != "__meta__"}
        meta = json.loads(str(archive["__meta__"]))
    for column in meta["preprocessing"]["columns"]:
        del column["form"]
    meta["sha256"] = checkpoint.content_hash(arrays, meta)
    np.savez(old / "model.npz", __meta__=np.array(json.dumps(meta)), **arrays)
    forms = {c.name: c.form for c in bptrain.load(old)._trained.prep.columns}
    assert forms == {c.name: c.form for c in bptrain.load(trained.run)._trained.prep.columns}
    assert forms == {"x": "number", "year": "number", "code": "text", "member": "bool"}
    path = trained.folder / "in.csv"
    path.write_text(HEADER.removesuffix(",y") + "\n" + "\n".join(ROWS + [TEXT_ROWS["year"]]) + "\n")
    results = [call_cli("predict", run, path, "--proba") for run in (trained.run, old)]
    assert results[0].returncode == 0 and (results[0].stdout, results[0].stderr) == (results[1].stdout, results[1].stderr)
