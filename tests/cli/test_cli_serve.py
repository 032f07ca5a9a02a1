"""bptrain serve: the real server in its own process, on a free localhost port, spoken to over HTTP (httpx; the load test, whose client would otherwise cost more CPU than the server, http.client)."""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

import bptrain
from conftest import ROOT, fit_iris, fit_shipped, run_cli, served

IRIS = ROOT / "datasets" / "iris.csv"
PENGUINS = ROOT / "datasets" / "penguins.csv"
DIABETES = ROOT / "datasets" / "diabetes.csv"
ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
TOO_LARGE = "request: the body is larger than the 20,000 bytes this server takes (bptrain serve --max-body-mb); send the rows in smaller batches"
LOG_LINE = re.compile(r"(GET|POST) (/\S*) (\d{3}) (-|\d+ rows?) \d+\.\d ms")


class Server:
    """`bptrain serve RUN --port 0 ARGS` as a process; its stderr goes to a file (a pipe would fill up)."""

    def __init__(self, run: Path, log: Path, *args: str):
        self.log = log
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("BPTRAIN_TRACEBACK", None)
        with open(log, "wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bptrain", "serve", str(run), "--port", "0", *args],
                stdout=subprocess.PIPE, stderr=err, cwd=ROOT, env=env,
            )
        deadline = time.monotonic() + 60
        while not (found := re.search(r"on (http://127\.0\.0\.1:\d+) ", self.stderr())):
            assert self.process.poll() is None, self.stderr()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        self.url = found[1]
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def stderr(self) -> str:
        return self.log.read_text(encoding="utf-8")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.client.close()
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=30)
        finally:
            self.process.stdout.close()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.client.close()
        self.process.stdout.close()


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory) -> Path:
    return fit_iris(tmp_path_factory.mktemp("runs"), epochs=5)


@pytest.fixture(scope="module")
def iris(iris_run, tmp_path_factory):
    with Server(iris_run, tmp_path_factory.mktemp("log") / "stderr.txt", "--max-body-mb", "0.02") as server:
        yield server


@pytest.fixture(scope="module")
def penguins_run(tmp_path_factory) -> Path:
    return fit_shipped(tmp_path_factory.mktemp("runs"), "penguins", 3)


@pytest.fixture(scope="module")
def penguins(penguins_run, tmp_path_factory):
    with Server(penguins_run, tmp_path_factory.mktemp("log") / "stderr.txt") as server:
        yield server


def cli_predictions(run: Path, data: Path, *extra: str) -> pd.DataFrame:
    result = run_cli("predict", run, data, *extra)
    assert result.returncode == 0, result.stderr
    return pd.read_csv(io.StringIO(result.stdout), dtype=str, keep_default_na=False)


# --- predictions -------------------------------------------------------------------------------------


def test_json_rows_get_bptrain_predicts_labels_and_probabilities_bit_for_bit(iris, iris_run):
    frame = pd.read_csv(IRIS)
    rows = frame.drop(columns="species").to_dict(orient="records")
    response = iris.client.post("/predict", params={"proba": "true"}, json={"rows": rows})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["warnings"] == []
    got = pd.DataFrame(body["predictions"])
    cli = cli_predictions(iris_run, IRIS, "--proba")
    assert list(got.columns) == list(cli.columns) == ["prediction", "proba_setosa", "proba_versicolor", "proba_virginica"]
    assert got["prediction"].tolist() == cli["prediction"].tolist()
    for column in cli.columns[1:]:
        np.testing.assert_array_equal(got[column].to_numpy().astype(np.float32), cli[column].to_numpy().astype(np.float32))


def test_a_csv_body_gets_the_same_answer_as_json_rows(iris):
    csv = IRIS.read_bytes()
    by_csv = iris.client.post("/predict?proba=true", content=csv, headers={"Content-Type": "text/csv; charset=utf-8"})
    rows = pd.read_csv(IRIS).to_dict(orient="records")
    by_json = iris.client.post("/predict?proba=true", json={"rows": rows})
    assert by_csv.status_code == by_json.status_code == 200
    assert by_csv.json() == by_json.json()
    assert len(by_csv.json()["predictions"]) == 150


def test_without_proba_each_row_gets_its_prediction_alone(iris):
    response = iris.client.post("/predict", json={"rows": [ROW, {**ROW, "petal_length": 6.0, "petal_width": 2.4}]})
    assert response.status_code == 200
    assert [list(p) for p in response.json()["predictions"]] == [["prediction"], ["prediction"]]


def test_no_rows_get_no_predictions(iris):
    response = iris.client.post("/predict", json={"rows": []})
    assert (response.status_code, response.json()) == (200, {"predictions": [], "warnings": []})


def test_schema_and_health_describe_the_model(iris, iris_run):
    schema = iris.client.get("/schema")
    assert (schema.status_code, schema.json()) == (200, bptrain.load(iris_run).schema)
    health = iris.client.get("/health")
    assert (health.status_code, health.json()) == (200, {"status": "ok", "model": str(iris_run / "model.npz"), "task": "classification"})


def test_the_docs_come_from_typed_models(iris):
    assert iris.client.get("/docs").status_code == 200
    spec = iris.client.get("/openapi.json").json()
    predict = spec["paths"]["/predict"]["post"]
    assert set(predict["requestBody"]["content"]) == {"application/json", "text/csv"}
    assert predict["requestBody"]["content"]["application/json"]["schema"]["required"] == ["rows"]
    assert predict["requestBody"]["content"]["application/json"]["example"] == {"rows": [dict.fromkeys(ROW, 0.0)]}  # the model's columns
    assert predict["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/PredictResponse"}
    assert {"400", "413", "415", "422", "500"} <= set(predict["responses"])
    assert {"PredictResponse", "Problem", "Schema", "Health"} <= set(spec["components"]["schemas"])


# --- the schema contract as statuses ---------------------------------------------------------------


@pytest.mark.parametrize(
    "body, status, detail",
    [
        (
            {"rows": [{k: v for k, v in ROW.items() if k != "petal_width"}]},
            422,
            "request: missing 1 feature column the model was trained with: petal_width. Columns: sepal_length, sepal_width, petal_length",
        ),
        (
            {"rows": [ROW, ROW, {**ROW, "sepal_width": "wide"}]},
            422,
            "request: column 'sepal_width' must be numeric, but row 3 holds text: 'wide'. The model reads this column as numbers.",
        ),
        (
            {"rows": [ROW, {**ROW, "sepal_width": None}]},
            422,
            "request: column 'sepal_width' has missing values in row 2; the model was trained without missing values there "
            "(missing: error); fill them in or remove those rows",
        ),
        ({"rows": {"a": 1}}, 422, 'request: rows: Input should be a valid array; send {"rows": [{column: value, ...}, ...]}'),
        ('{"rows": [{"sepal_length": 5.1,', 400, "request: malformed JSON: EOF while parsing a value at line 1 column 31"),
    ],
    ids=["missing-column", "unparsable-value", "missing-value", "not-a-list", "malformed-json"],
)
def test_rows_that_do_not_fit_get_predicts_message(iris, body, status, detail):
    if isinstance(body, str):
        response = iris.client.post("/predict", content=body, headers={"Content-Type": "application/json"})
    else:
        response = iris.client.post("/predict", json=body)
    assert (response.status_code, response.json()) == (status, {"detail": detail})


def test_the_same_message_as_bptrain_predict_for_a_csv_body(iris, iris_run, tmp_path):
    text = "sepal_length,sepal_width,petal_length\n5.1,3.5,1.4\n"
    response = iris.client.post("/predict", content=text, headers={"Content-Type": "text/csv"})
    cli = run_cli("predict", iris_run, "-", input=text)
    assert (response.status_code, cli.returncode) == (422, 3)
    assert cli.stderr == f"error: {response.json()['detail'].replace('request:', '<stdin>:', 1)}\n"


def test_the_docs_example_names_the_models_columns_and_a_category(penguins):
    body = penguins.client.get("/openapi.json").json()["paths"]["/predict"]["post"]["requestBody"]["content"]
    (row,) = body["application/json"]["example"]["rows"]
    assert (row["island"], row["sex"], row["bill_length_mm"]) == ("Biscoe", "female", 0.0)
    assert body["text/csv"]["example"].splitlines()[0] == ",".join(row)
    answer = penguins.client.post("/predict", json={"rows": [row]})  # the example itself is a request that works
    assert (answer.status_code, answer.json()["warnings"]) == (200, [])


@pytest.mark.parametrize(
    "change, cells",
    [
        ({"sex": ""}, {"sex": ""}),
        ({"sex": "NA"}, {"sex": ""}),
        ({"sex": None}, {"sex": ""}),
        ({"bill_length_mm": ""}, {"bill_length_mm": ""}),
        ({"year": "2008.0"}, {"year": "2008"}),
        ({"year": 2008.0}, {"year": "2008"}),
    ],
    ids=["empty-text", "NA", "null", "empty-number", "text-of-a-whole-number", "a-whole-float"],
)
def test_json_values_read_as_the_same_csv_cells_do(penguins, change, cells):
    row = pd.read_csv(PENGUINS).drop(columns="species").iloc[0].to_dict()
    sent = penguins.client.post("/predict", params={"proba": "true"}, json={"rows": [{**row, **change}]})
    text = ",".join(row) + "\n" + ",".join(str(cells.get(k, v)) for k, v in row.items()) + "\n"
    as_csv = penguins.client.post("/predict", params={"proba": "true"}, content=text, headers={"Content-Type": "text/csv"})
    assert (sent.status_code, as_csv.status_code) == (200, 200)
    assert sent.json() == as_csv.json()
    assert sent.json()["warnings"] == []


def test_a_small_body_read_without_pandas_gets_the_answer_pandas_gives(penguins_run, monkeypatch):
    """Up to serve.PLAIN_ROWS lines, a plain body is read by bptrain.data.plaincsv, as predict reads a
    small file: the same answers, bit for bit, as pandas' reading (serve.PLAIN_ROWS = 0), for JSON
    rows and CSV bodies, with missing values, an unseen category and the warning it gets."""
    from bptrain.data import plaincsv
    from bptrain import serve

    frame = pd.read_csv(PENGUINS).drop(columns="species").replace("Dream", "Atlantis")
    rows = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    model, taken = bptrain.load(penguins_run), []
    parse = plaincsv.parse
    monkeypatch.setattr(plaincsv, "parse", lambda *args, **kwargs: taken.append(parse(*args, **kwargs)) or taken[-1])

    requests = []
    for start in range(0, len(rows), 40):
        requests.append(("/predict?proba=true", {"json": {"rows": rows[start : start + 40]}}))
        text = frame.iloc[start : start + 40].to_csv(index=False)
        requests.append(("/predict?proba=true", {"content": text, "headers": {"Content-Type": "text/csv"}}))

    plain = [response.json() for response in served(model, *requests)]
    assert len(taken) == len(plain) and None not in taken  # every body was plain
    monkeypatch.setattr(serve, "PLAIN_ROWS", 0)
    assert [response.json() for response in served(model, *requests)] == plain
    assert any(answer["warnings"] for answer in plain) and all(len(a["predictions"]) > 0 for a in plain)


def test_a_carriage_return_in_a_json_value_stays_in_its_row(penguins_run):
    # a JSON row becomes a CSV record: a bare "\r" in it would end the record there, making two rows
    rows = pd.read_csv(PENGUINS).drop(columns="species").head(3).to_dict(orient="records")
    sent = [rows[0], {**rows[1], "island": "Bis\rcoe"}, {**rows[2], "sex\r": 1}]
    answer, unchanged = (r.json() for r in served(bptrain.load(penguins_run), *[("/predict?proba=true", {"json": {"rows": r}}) for r in (sent, rows)]))
    assert answer["warnings"] == [
        "request: 1 value in categorical columns the model never saw, encoded as unknown (no category): island 'Bis\\rcoe' (1 row). "
        "Send strict=true to make this an error"
    ]
    assert len(answer["predictions"]) == 3
    assert [answer["predictions"][i] for i in (0, 2)] == [unchanged["predictions"][i] for i in (0, 2)]


def test_json_numbers_in_a_categorical_column_of_a_decimal_comma_model_are_its_categories(tmp_path, monkeypatch):
    """A model trained with data.read.decimal "," on a categorical column of years: the JSON number
    2007.0 is the year 2007, as `2007,0` in its CSV files is, by both readers of a body (plain
    and pandas), and predictions equal predict's on the same rows written as the model's CSV."""
    from bptrain import serve

    rng = np.random.default_rng(0)
    years, x = rng.choice([2007, 2008, 2009], 120), rng.random(120).round(3)
    label = np.where(x + (years == 2008) > 0.8, "a", "b")
    lines = ["year;x;label", *(f"{y};{str(v).replace('.', ',')};{c}" for y, v, c in zip(years, x, label))]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    config = tmp_path / "c.yaml"
    config.write_text(
        "name: comma\nseed: 1\ndata:\n  train: d.csv\n  target: label\n  read: {delimiter: ';', decimal: ','}\n"
        "  columns: {year: {kind: categorical}}\nmodel: {layers: [8]}\nstopping: {max_epochs: 3}\n"
    )
    result = run_cli("fit", config, "-q", "--runs-dir", tmp_path / "runs")
    assert result.returncode == 0, result.stderr
    (run,) = (tmp_path / "runs").iterdir()
    rows = [{"year": float(y), "x": float(v)} for y, v in zip(years, x)]
    expected = cli_predictions(run, tmp_path / "d.csv", "--proba")

    for plain_rows in (serve.PLAIN_ROWS, 0):  # read without pandas, then with it
        monkeypatch.setattr(serve, "PLAIN_ROWS", plain_rows)
        (response,) = served(bptrain.load(run), ("/predict?proba=true", {"json": {"rows": rows[:50]}}))
        got = response.json()
        assert got["warnings"] == []  # not "year '2007.0' ... never saw"
        assert [r["prediction"] for r in got["predictions"]] == expected["prediction"].head(50).tolist()
        proba = np.array([r["proba_a"] for r in got["predictions"]], np.float32)
        np.testing.assert_array_equal(proba, expected["proba_a"].head(50).to_numpy().astype(np.float32))


def test_unseen_categories_are_a_warning_and_with_strict_a_422(penguins):
    rows = pd.read_csv(PENGUINS).head(3).replace("Torgersen", "Atlantis").astype(object)
    rows = rows.where(rows.notna(), None).to_dict(orient="records")
    response = penguins.client.post("/predict", json={"rows": rows})
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == 3
    assert response.json()["warnings"] == [
        "request: 3 values in categorical columns the model never saw, encoded as unknown (no category): "
        "island 'Atlantis' (3 rows). Send strict=true to make this an error"
    ]
    strict = penguins.client.post("/predict", params={"strict": "true"}, json={"rows": rows})
    assert (strict.status_code, strict.json()) == (
        422,
        {"detail": "request: column 'island' holds categories the model never saw in rows 1, 2, 3: 'Atlantis'; it knows Biscoe, Dream, Torgersen (strict=true)"},
    )


def test_a_body_over_the_limit_is_413(iris):
    rows = [ROW] * 400  # about 32 KB of JSON, over --max-body-mb 0.02
    response = iris.client.post("/predict", json={"rows": rows})
    assert (response.status_code, response.json()) == (413, {"detail": TOO_LARGE})
    assert iris.client.post("/predict", json={"rows": rows[:200]}).status_code == 200  # 16 KB is taken
    assert iris.client.get("/health").status_code == 200  # and the server goes on


def test_a_streamed_body_over_the_limit_is_413_too(iris):
    def chunks():  # no Content-Length: the server counts as it reads
        for _ in range(30):
            yield b"x" * 1000

    response = iris.client.post("/predict", content=chunks(), headers={"Content-Type": "text/csv"})
    assert (response.status_code, response.json()) == (413, {"detail": TOO_LARGE})


def test_another_content_type_is_415_and_a_bad_parameter_422(iris):
    form = iris.client.post("/predict", data={"a": "b"})
    assert (form.status_code, form.json()) == (
        415,
        {"detail": 'Content-Type application/x-www-form-urlencoded: send application/json ({"rows": [...]}) or text/csv (a header line, then rows)'},
    )
    bad = iris.client.post("/predict", params={"proba": "maybe"}, json={"rows": [ROW]})
    assert (bad.status_code, bad.json()) == (422, {"detail": "query proba: Input should be a valid boolean, unable to interpret input"})


def test_no_input_gets_a_500_or_a_traceback(iris):
    bodies = [b"", b"\x00\xff" * 50, b"[]", b"null", b'{"rows": [1]}', b'{"rows": [{"a": {"b": 1}}]}', b'{"rows": [{"sepal_length": 1e400}]}']
    for body in bodies:
        for kind in ("application/json", "text/csv"):
            response = iris.client.post("/predict", content=body, headers={"Content-Type": kind})
            assert response.status_code in (400, 422), (body, kind, response.text)
            assert "Traceback" not in response.text and set(response.json()) == {"detail"}
    assert "Traceback" not in iris.stderr()


def log_lines(server: Server, at_least: int) -> list[str]:
    """The server's log once it holds `at_least` lines: a request's line is written just after its answer is sent."""
    deadline = time.monotonic() + 10
    while len(lines := server.stderr().splitlines()) < at_least and time.monotonic() < deadline:
        time.sleep(0.02)
    return lines


def test_every_request_is_one_log_line(iris):
    iris.client.get("/schema")  # once its line is in, every earlier request's is
    deadline = time.monotonic() + 10
    while not (lines := iris.stderr().splitlines())[-1].startswith("GET /schema 200"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    before = len(lines)
    iris.client.post("/predict", json={"rows": [ROW, ROW, ROW]})
    iris.client.get("/health")
    iris.client.post("/predict", content="{", headers={"Content-Type": "application/json"})
    lines = log_lines(iris, before + 3)[before:]
    assert [LOG_LINE.fullmatch(line).group(1, 2, 3, 4) for line in lines] == [
        ("POST", "/predict", "200", "3 rows"),
        ("GET", "/health", "200", "-"),
        ("POST", "/predict", "400", "-"),
    ]


# --- regression ---------------------------------------------------------------------------------------


def test_a_regression_model_serves_bptrain_predicts_values_and_refuses_proba(tmp_path):
    run = fit_shipped(tmp_path / "runs", "diabetes", 3)
    with Server(run, tmp_path / "stderr.txt") as server:
        rows = pd.read_csv(DIABETES).to_dict(orient="records")
        response = server.client.post("/predict", json={"rows": rows})
        proba = server.client.post("/predict?proba=true", json={"rows": rows[:1]})
        assert server.stop() == 0
    cli = cli_predictions(run, DIABETES)
    values = [p["prediction"] for p in response.json()["predictions"]]
    np.testing.assert_array_equal(np.array(values, dtype=np.float32), cli["prediction"].to_numpy().astype(np.float32))
    assert (proba.status_code, proba.json()) == (422, {"detail": "proba=true: this model does regression; there are no class probabilities to add"})


# --- signals, load, workers -------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_lets_the_request_in_flight_finish_then_exits_0(iris_run, tmp_path, sig):
    with Server(iris_run, tmp_path / "stderr.txt") as server:
        header = ",".join(ROW) + "\n"
        sent = threading.Event()

        def body():  # the request is in flight while the signal arrives: half its body is sent
            yield header.encode()
            sent.set()
            time.sleep(1.0)
            yield (",".join(map(str, ROW.values())) + "\n").encode()

        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(server.client.post, "/predict", content=body(), headers={"Content-Type": "text/csv"})
            assert sent.wait(10)
            time.sleep(0.3)
            server.process.send_signal(sig)
            response = future.result(timeout=30)
        code = server.process.wait(timeout=30)
        assert (response.status_code, response.json()["predictions"]) == (200, [{"prediction": "setosa"}])
        assert code == 0, server.stderr()
        lines = server.stderr().splitlines()
        assert lines[-2:] == [lines[-2], "stopped"] and LOG_LINE.fullmatch(lines[-2])
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{server.url}/health")


def test_eight_clients_making_500_requests_each_get_no_error(iris):
    def client(k: int) -> list[int]:
        statuses = []
        connection = http.client.HTTPConnection(urllib.parse.urlsplit(iris.url).netloc, timeout=30)  # one kept-alive connection, as a client would hold
        try:
            for i in range(500):
                row = {**ROW, "petal_length": 1.0 + (k * 500 + i) % 60 / 10}
                connection.request("POST", "/predict", json.dumps({"rows": [row]}), {"Content-Type": "application/json"})
                response = connection.getresponse()
                body = json.loads(response.read())
                statuses.append(response.status if len(body["predictions"]) == 1 else -1)
        finally:
            connection.close()
        return statuses

    with ThreadPoolExecutor(8) as pool:
        statuses = [s for done in pool.map(client, range(8)) for s in done]
    assert len(statuses) == 4000
    assert set(statuses) == {200}


def test_workers_share_the_port_and_stop_together(iris_run, tmp_path):
    with Server(iris_run, tmp_path / "stderr.txt", "--workers", "2") as server:
        assert "(2 workers)" in server.stderr()
        responses = [server.client.post("/predict", json={"rows": [ROW]}) for _ in range(20)]
        assert {r.status_code for r in responses} == {200}
        assert server.stop() == 0
    assert server.stderr().splitlines()[-1] == "stopped"


# --- bad start-ups ---------------------------------------------------------------------------------


def test_a_port_in_use_is_a_clear_error_suggesting_a_port_that_is_free(iris_run):
    with socket.socket() as taken, socket.socket() as next_one:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        try:  # the next port taken too, when it can be: the suggestion is one found free, not port + 1
            next_one.bind(("127.0.0.1", port + 1))
            next_one.listen()
        except OSError:
            pass
        result = run_cli("serve", iris_run, "--port", port)
    assert (result.returncode, result.stdout) == (2, "")
    found = re.fullmatch(
        rf"error: --port {port}: 127\.0\.0\.1:{port} is in use by another process; stop it, or choose another port, e\.g\. --port (\d+), free now\n",
        result.stderr,
    )
    assert found, result.stderr
    assert int(found[1]) > port + 1


def test_a_folder_without_a_model_is_predicts_error(tmp_path):
    serve = run_cli("serve", tmp_path, "--port", "0")
    predict = run_cli("predict", tmp_path, IRIS)
    assert (serve.returncode, predict.returncode) == (5, 5)
    assert serve.stderr == predict.stderr == f"error: {tmp_path}: no model.npz in this folder; is it a run folder written by bptrain fit?\n"


def test_without_the_serve_extra_the_error_says_what_to_install(iris_run, tmp_path):
    fake = tmp_path / "fastapi"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError(\"No module named 'fastapi'\", name='fastapi')\n")
    result = run_cli("serve", iris_run, "--port", "0", env={"PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"})
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "error: bptrain serve needs fastapi and uvicorn (fastapi is missing), the optional extra 'serve': pip install 'bptrain[serve]'\n"


def test_an_unforeseen_failure_is_a_clean_500_and_a_log_line(iris_run, capsys):
    model = bptrain.load(iris_run)

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    model._columns = broken
    (response,) = served(model, ("/predict", {"json": {"rows": [ROW]}}), limit=10_000)
    assert (response.status_code, response.json()) == (
        500,
        {"detail": "internal error (RuntimeError); this is a bug in bptrain, and the server's log has the details"},
    )
    log = capsys.readouterr().err.splitlines()
    assert log[0] == "internal error: RuntimeError: a bug"
    assert LOG_LINE.fullmatch(log[1]).group(3, 4) == ("500", "1 row")


def test_connections_to_the_listening_socket_send_without_delay():
    # asyncio sets TCP_NODELAY only on connections of a socket made with proto IPPROTO_TCP; without
    # it, each answer's body would wait for the client's delayed acknowledgement of its head (40 ms)
    import asyncio

    from bptrain import serve

    async def accept_one() -> int:
        found = asyncio.get_running_loop().create_future()

        class Protocol(asyncio.Protocol):
            def connection_made(self, transport) -> None:
                found.set_result(transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Protocol, sock=serve.bind("127.0.0.1", 0))
        port = server.sockets[0].getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)):
            value = await asyncio.wait_for(found, 10)
        server.close()
        return value

    assert asyncio.run(accept_one()) != 0
