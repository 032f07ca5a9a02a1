"""Latency and throughput of `bptrain serve` on localhost: one row per request, and batches of 1,000 rows.

Usage (from the repository root):

    python benchmarks/serve_latency.py                     # trains a short iris run first
    python benchmarks/serve_latency.py runs/iris-...       # a run of your own
    python benchmarks/serve_latency.py --requests 5000 --batches 200 --workers 2

The server runs as its own process (`python -m bptrain serve RUN --port 0`), the client is httpx
with one kept-alive connection, sending one request after another, so the figures are round trips
as a client sees them: HTTP, JSON, the schema checks and the network. Single rows: p50 and p99 of
`--requests` timed requests after 200 untimed ones, each row a different iris row. Batches: rows
per second over `--batches` requests of 1,000 iris rows each (after 5 untimed), as JSON rows and as
a CSV body, with probabilities. The machine line says how busy the cores were.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pandas as pd

from machine import describe

ROOT = Path(__file__).resolve().parent.parent
IRIS = ROOT / "datasets" / "iris.csv"


def short_iris_run(folder: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "bptrain", "fit", "configs/iris.yaml", "-q", "--runs-dir", str(folder), "--set", "stopping.max_epochs=20"],
        cwd=ROOT, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    (run,) = folder.iterdir()
    return run


def start(run: Path, workers: int, log: Path) -> tuple[subprocess.Popen, str]:
    err = open(log, "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "bptrain", "serve", str(run), "--port", "0", "--workers", str(workers)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    while not (found := re.search(r"on (http://\S+:\d+) ", log.read_text())):
        if process.poll() is not None:
            sys.exit(f"the server did not start:\n{log.read_text()}")
        time.sleep(0.05)
    return process, found[1]


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 10) - 1]


def single_rows(client: httpx.Client, rows: list[dict], requests: int) -> list[float]:
    for i in range(200):
        client.post("/predict", json={"rows": [rows[i % len(rows)]]}).raise_for_status()
    seconds = []
    for i in range(requests):
        body = {"rows": [rows[i % len(rows)]]}
        t = time.perf_counter()
        client.post("/predict", json=body).raise_for_status()
        seconds.append(time.perf_counter() - t)
    return seconds


def batches(client: httpx.Client, send, count: int) -> float:
    """Rows per second over `count` requests of 1,000 rows (`send()` makes one)."""
    for _ in range(5):
        send().raise_for_status()
    t = time.perf_counter()
    for _ in range(count):
        response = send()
        response.raise_for_status()
    elapsed = time.perf_counter() - t
    assert len(response.json()["predictions"]) == 1000
    return 1000 * count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", type=Path, help="run folder (default: a short iris run, trained first)")
    parser.add_argument("--requests", type=int, default=2000, help="timed single-row requests")
    parser.add_argument("--batches", type=int, default=100, help="timed requests of 1,000 rows, per body kind")
    parser.add_argument("--workers", type=int, default=1, help="bptrain serve --workers")
    args = parser.parse_args()

    frame = pd.read_csv(IRIS).drop(columns="species")
    rows = frame.to_dict(orient="records")
    thousand = pd.concat([frame] * 7, ignore_index=True).iloc[:1000]
    json_body = {"rows": thousand.to_dict(orient="records")}
    csv_body = thousand.to_csv(index=False).encode()

    with tempfile.TemporaryDirectory() as tmp:
        run = args.run or short_iris_run(Path(tmp) / "runs")
        process, url = start(run, args.workers, Path(tmp) / "serve.log")
        try:
            print(f"machine: {describe()}")
            with httpx.Client(base_url=url, timeout=60) as client:
                seconds = single_rows(client, rows, args.requests)
                p50, p99 = statistics.median(seconds) * 1000, percentile(seconds, 99) * 1000
                print(f"one row per request: p50 {p50:.2f} ms, p99 {p99:.2f} ms, mean {statistics.fmean(seconds) * 1000:.2f} ms ({args.requests} requests)")
                by_json = batches(client, lambda: client.post("/predict?proba=true", json=json_body), args.batches)
                print(f"1,000 rows per request, JSON rows: {by_json:,.0f} rows/s ({args.batches} requests)")
                by_csv = batches(
                    client, lambda: client.post("/predict?proba=true", content=csv_body, headers={"Content-Type": "text/csv"}), args.batches
                )
                print(f"1,000 rows per request, CSV body:  {by_csv:,.0f} rows/s ({args.batches} requests)")
            print(f"after: load average {os.getloadavg()[0]:.1f}")
        finally:
            process.terminate()
            process.wait(timeout=60)


if __name__ == "__main__":
    main()
