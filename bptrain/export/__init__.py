"""Exporting a trained model, its preprocessing included, to a file other runtimes read.

`export(run, fmt, output)` loads RUN's model as predict does (the same errors for a RUN that is
not a model), builds the file in the format `fmt` (only `onnx` so far: bptrain.export.onnx, which
imports the `onnx` extra when called), writes it atomically and says what the file holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bptrain.app import load_trained
from bptrain.errors import ConfigError
from bptrain.export import onnx as to_onnx
from bptrain.fileio import atomic_write, no_place_for
from bptrain.nn.options import did_you_mean

FORMATS = ("onnx",)


@dataclass
class Exported:
    """What an exported file holds: its graph inputs and outputs, each as (name, type)."""

    model_path: Path
    format: str
    inputs: list[tuple[str, str]]
    outputs: list[tuple[str, str]]
    size: int


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt}: unknown export format; choose from {', '.join(FORMATS)}.{did_you_mean(fmt, FORMATS)}")
    return fmt


def export(run: Path, fmt: str, output: str, stdout: IO[bytes] | None = None) -> Exported:
    """Write RUN's model (a run folder or its model file) as a `fmt` file to `output`, atomically
    (`-`: to `stdout`)."""
    check_format(fmt)
    trained = load_trained(run)
    graph = to_onnx.convert(trained.model, trained.loss, trained.prep, trained.meta["model"]["dtype"], run_name=trained.run_dir.name)
    data = to_onnx.serialize(graph)
    _write(output, data, stdout)
    inputs, outputs = to_onnx.signature(graph)
    return Exported(trained.model_path, fmt, inputs, outputs, len(data))


def _write(output: str, data: bytes, stdout: IO[bytes] | None) -> None:
    if output == "-":
        stdout.write(data)
        stdout.flush()
        return
    target = Path(output)
    if target.is_dir():
        raise ConfigError(f"--output {output}: is a folder; give a file name, e.g. {target / 'model.onnx'}")
    try:
        atomic_write(target, lambda f: f.write(data))
    except (FileNotFoundError, NotADirectoryError):
        raise no_place_for(f"--output {output}", target) from None
