"""Shared test helpers: run the CLI as a real subprocess, and write small files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
