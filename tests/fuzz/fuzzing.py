"""The fuzz tests' judge: run the CLI in-process under a time and memory cap; bad input must never look like a bug.

An outcome is clean when the exit code is a documented one other than 1 (internal error), a
failure prints an `error:` line, nothing shows a traceback, and no Python warning is raised that a
real process would print on stderr (the in-process run would hide it). A failing example is reported
with its command, its input and the output. With FUZZ_FINDINGS=DIR every failing example is
saved under DIR instead of stopping the test, so a long run surveys all the failures at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shlex
import shutil
import warnings
from pathlib import Path
from typing import Iterator

from typer.testing import CliRunner

from bptrain.cli import app
from conftest import Hung, cpu_capped

CLEAN_EXIT_CODES = {0, 2, 3, 4, 5, 6}  # success, config, data, diverged, model file, environment
SECONDS = 30  # of CPU time, far beyond any example's work: more is a hang (CPU time, as the machine may be busy)
MEMORY = 3 << 30  # bytes of address space an example may add: more is a runaway allocation


def _address_space() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


@contextlib.contextmanager
def capped(seconds: float = SECONDS, memory: int = MEMORY) -> Iterator[None]:
    """Raise Hung after `seconds` of CPU time; make allocations beyond `memory` more bytes fail with MemoryError."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _address_space() + memory
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        with cpu_capped(seconds):
            yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@contextlib.contextmanager
def _as_a_process_warns() -> Iterator[list[warnings.WarningMessage]]:
    """The warnings a real process would show (Python's default filters, not pytest's), recorded."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("default")
        for hidden in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", hidden)
        yield caught


def problem_with(exit_code: int | None, output: str) -> str | None:
    """What is wrong with an outcome, or None when it is a clean one."""
    if exit_code == 1:
        return "exit code 1 (internal error)"
    if exit_code not in CLEAN_EXIT_CODES:
        return f"exit code {exit_code}, not a documented one"
    if "Traceback" in output or "internal error" in output:
        return "a traceback or internal error in the output"
    if exit_code != 0 and not any(line.startswith("error: ") for line in output.splitlines()):
        return f"exit code {exit_code} without an `error:` line"
    return None


def run_cli(args: list, shown_input: str, files: dict[str, Path] | None = None) -> int:
    """Run `bptrain ARGS` in-process; fail (or record) unless the outcome is clean. Returns the exit code."""
    return invoke(args, shown_input, files)[0]


def invoke(args: list, shown_input: str, files: dict[str, Path] | None = None, stdin: bytes | None = None) -> tuple[int, str, str]:
    """run_cli's exit code, what the command printed on stdout, and all it printed; `stdin` is its input."""
    args = [str(a) for a in args]
    stdout, warned = "", []
    try:
        with capped(), _as_a_process_warns() as warned:
            result = CliRunner().invoke(app, args, input=stdin)
        output, stdout = result.output, result.stdout
        if warned:
            output += "".join(f"\n(a process would print on stderr: {w.filename}:{w.lineno}: {w.category.__name__}: {w.message})" for w in warned)
        exit_code = result.exit_code
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            output += f"\n(escaped the CLI: {type(result.exception).__name__}: {result.exception})"
            exit_code = 1
    except Hung as e:
        output, exit_code = str(e), None
    problem = problem_with(exit_code, output) if exit_code is not None else output
    if problem is None and warned:
        problem = "a Python warning, which a real process prints on stderr"
    if problem is not None:
        report(problem, args, shown_input, output, files or {})
    return (-1 if exit_code is None else exit_code), stdout, output


def report(problem: str, args: list[str], shown_input: str, output: str, files: dict[str, Path]) -> None:
    """Fail with the problem, or with FUZZ_FINDINGS save it and go on."""
    command = "bptrain " + " ".join(shlex.quote(a) for a in args)
    message = f"{problem}\ncommand: {command}\ninput:\n{shown_input}\noutput:\n{output}"
    survey = os.environ.get("FUZZ_FINDINGS")
    if not survey:
        raise AssertionError(message)
    folder = Path(survey) / f"{os.getpid()}-{len(list(Path(survey).glob(f'{os.getpid()}-*')))}"
    folder.mkdir(parents=True)
    (folder / "finding.json").write_text(json.dumps({"problem": problem, "command": command, "input": shown_input, "output": output}))
    for name, path in files.items():
        if path.is_dir():
            shutil.copytree(path, folder / name, ignore=shutil.ignore_patterns("*.png"))
        elif path.exists():
            shutil.copy(path, folder / name)
