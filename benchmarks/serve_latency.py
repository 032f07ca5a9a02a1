"""Latency and throughput of `bptrain serve` on localhost: one row per request, and batches of 1,000 rows.

Usage (from the repository root):

    python benchmarks/serve_latency.py                     # trains a short iris run first
    python benchmarks/serve_latency.py runs/iris-...       # a run of your own
    python benchmarks/serve_latency.py --requests 5000 --batches 200 --workers 2

The server runs as its own process (`python -m bptrain serve RUN --port 0`), the client is httpx
with one kept-alive connection (TCP_NODELAY set, as curl and urllib3 set it), sending one request
after another, so the figures are round trips
as a client sees them: HTTP, JSON, the schema checks and the network. Single rows: p50 and p99 of
`--requests` timed requests after 200 untimed ones, each row a different iris row. Batches: rows
per second over `--batches` requests of 1,000 iris rows each (after 5 untimed), as JSON rows and as
a CSV body, with probabilities. The machine line says how busy the cores were; on a busy machine
the server's own CPU time per request (from /proc, Linux) says what it costs, whatever the wait.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
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
        cwd=ROOT, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
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


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds so far of process `pid` and its children, the workers (Linux /proc):
    what the server itself spent, however busy the machine was."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") + sum(cpu_seconds(int(c)) for c in children)


def server_ms(log: Path) -> list[float]:
    """The milliseconds of each one-row request, from the server's log lines (`POST /predict 200 1 row 1.2 ms`)."""
    return [float(m[1]) for m in re.finditer(r"POST /predict 200 1 row (\d+\.\d) ms", log.read_text())]


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
            # TCP_NODELAY, as curl and urllib3 set it: httpx writes a request's head and body apart, and
            # without it the body waits for the server's delayed acknowledgement of the head (40 ms on Linux)
            transport = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
            with httpx.Client(base_url=url, timeout=60, transport=transport) as client:
                cpu = cpu_seconds(process.pid)
                seconds = single_rows(client, rows, args.requests)
                cpu = (cpu_seconds(process.pid) - cpu) / (args.requests + 200) * 1000
                p50, p99 = statistics.median(seconds) * 1000, percentile(seconds, 99) * 1000
                print(f"one row per request: p50 {p50:.2f} ms, p99 {p99:.2f} ms, mean {statistics.fmean(seconds) * 1000:.2f} ms ({args.requests} requests)")
                inside = server_ms(Path(tmp) / "serve.log")[-args.requests :]
                print(f"  in the server (its log): p50 {statistics.median(inside):.2f} ms, p99 {percentile(inside, 99):.2f} ms; its CPU: {cpu:.2f} ms a request")
                for kind, send in (
                    ("JSON rows", lambda: client.post("/predict?proba=true", json=json_body)),
                    ("CSV body ", lambda: client.post("/predict?proba=true", content=csv_body, headers={"Content-Type": "text/csv"})),
                ):
                    cpu = cpu_seconds(process.pid)
                    rate = batches(client, send, args.batches)
                    per_cpu = 1000 * (args.batches + 5) / (cpu_seconds(process.pid) - cpu)
                    print(f"1,000 rows per request, {kind}: {rate:,.0f} rows/s ({args.batches} requests); {per_cpu:,.0f} rows per second of the server's CPU")
            print(f"after: load average {os.getloadavg()[0]:.1f}")
        finally:
            process.terminate()
            process.wait(timeout=60)


if __name__ == "__main__":
    main()
