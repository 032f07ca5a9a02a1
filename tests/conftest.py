"""Shared test helpers: run the CLI as a real subprocess, and write small files."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Property and fuzz tests: few derandomized examples in the suite ("ci"); HYPOTHESIS_PROFILE=thorough
# searches harder, and HYPOTHESIS_PROFILE=fuzz is the long run of tests/fuzz (1000 examples a test, 250 for the slow ones).
settings.register_profile("ci", max_examples=12, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
settings.register_profile("thorough", max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))
settings.register_profile("fuzz", max_examples=1000, deadline=None, database=None, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, input: bytes | str | None = None, cwd: Path | None = None, timeout: float = 120, env=None):
    """Run `python -m bptrain ARGS` and return the CompletedProcess (text mode)."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **(env or {})}
    environment.pop("BPTRAIN_TRACEBACK", None)
    return subprocess.run(
        [sys.executable, "-m", "bptrain", *map(str, args)],
        input=input.decode() if isinstance(input, bytes) else input,
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        timeout=timeout,
        env=environment,
    )


def write(folder: Path, text: str, name: str = "config.yaml") -> Path:
    path = Path(folder) / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def cli():
    return run_cli


def model_digests(run: Path) -> dict[str, str]:
    """SHA-256 of every array in model.npz (name, dtype, shape and bytes), plus its metadata minus the run name."""
    with np.load(run / "model.npz", allow_pickle=False) as archive:
        digests = {
            name: hashlib.sha256(f"{archive[name].dtype.str}|{archive[name].shape}|".encode() + archive[name].tobytes()).hexdigest()
            for name in archive.files
            if name != "__meta__"
        }
        meta = json.loads(str(archive["__meta__"]))
    assert len(digests) > 6
    for key in ("run", "sha256"):
        meta.pop(key)
    digests["__meta__"] = json.dumps(meta, sort_keys=True)
    return digests


def metrics_rows(run: Path) -> list[list[str]]:
    """metrics.csv without its `seconds` column, the header first."""
    rows = list(csv.reader(io.StringIO((run / "metrics.csv").read_text(encoding="utf-8"))))
    assert rows[0][-1] == "seconds"
    return [row[:-1] for row in rows]
