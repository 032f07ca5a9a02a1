"""The command line: parse, call one service in bptrain.app, render; errors become exit codes here only.

Data goes to stdout; progress, warnings and errors go to stderr. Each command imports what it
needs (numpy, pandas, pydantic, yaml) inside its function, and help is plain text
rather than rich's, so `bptrain --help` loads typer alone (tests/cli/test_cli_imports.py).
"""

# No `from __future__ import annotations` here: typer reads every command's parameters from their
# annotations when it builds the command line, at every start, and evaluating them from strings
# took 40 ms of it where objects take 8.
import contextlib
import io
import math
import os
import re
import signal
import sys
import traceback
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any, Callable, Iterator, Optional

import typer
from typer.core import TyperGroup

from bptrain.errors import BptrainError, ExitCode
from bptrain import interrupts
from bptrain.interrupts import Signalled


class _Commands(TyperGroup):
    """Plain help that lists each command's whole first line, where click would cut it to fit 80 columns."""

    def format_commands(self, ctx, formatter) -> None:
        rows = [(name, command.get_short_help_str(limit=1_000)) for name, command in self.commands.items() if not command.hidden]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


app = typer.Typer(
    name="bptrain",
    cls=_Commands,
    help="Train neural networks on tabular data by backpropagation, from a YAML config.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # rich's help would import rich, markdown-it and pygments: 0.1 s of each `--help`
    context_settings={"help_option_names": ["-h", "--help"]},
)

_state = {"traceback": os.environ.get("BPTRAIN_TRACEBACK", "") not in ("", "0")}
# --traceback is an option of bptrain itself, so it goes before the command
TRACEBACK_HINT = "To see where, run again as bptrain --traceback COMMAND ... (or with BPTRAIN_TRACEBACK=1)."


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _quiet_stdout() -> None:
    """After a closed pipe: point stdout at /dev/null so the interpreter's final flush stays silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


@contextlib.contextmanager
def errors_to_exit_codes(on_signal: str | Callable[[], str] = "{stop}; nothing was written") -> Iterator[None]:
    """The one place where exceptions become messages and exit codes.

    `on_signal` is what the command says when SIGINT or SIGTERM ends it (or a function that says it
    then), with `{stop}` standing for "interrupted by SIGINT" or "terminated by SIGTERM".
    """
    stdout = sys.stdout
    try:
        if stdout is not None:
            sys.stdout = _GuardedStdout(stdout)
        yield
        interrupts.raise_pending()  # a signal whose exception Python dropped still ends the command
    except BptrainError as e:
        _err(f"error: {e}")
        raise typer.Exit(int(e.exit_code)) from None
    except BrokenPipeError:
        _quiet_stdout()
        raise typer.Exit(int(ExitCode.OK)) from None
    except (KeyboardInterrupt, Signalled) as e:
        stop = e if isinstance(e, Signalled) else Signalled(signal.SIGINT)
        interrupts.handled()
        _err("error: " + (on_signal() if callable(on_signal) else on_signal).format(stop=stop))
        raise typer.Exit(stop.exit_code) from None
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except Exception as e:  # a bug: say so, show the traceback only when asked
        if _state["traceback"]:
            traceback.print_exc()
        else:
            _err(f"internal error: {type(e).__name__}: {e}")
            _err(f"This is a bug in bptrain. {TRACEBACK_HINT}")
        raise typer.Exit(int(ExitCode.INTERNAL)) from None
    finally:
        sys.stdout = stdout


class _GuardedStdout:
    """sys.stdout while a command runs: a write the machine refuses (a full disk, a file-size
    limit, ...) becomes StorageError naming stdout, exit code 6; a closed pipe stays BrokenPipeError."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, data):
        return self._guarded(self._stream.write, data)

    def flush(self) -> None:
        return self._guarded(self._stream.flush)

    @property
    def buffer(self):  # export -o - writes bytes
        return _GuardedStdout(self._stream.buffer)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)

    @staticmethod
    def _guarded(call, *args):
        try:
            return call(*args)
        except OSError as e:
            from bptrain.fileio import storage_error

            translated = storage_error(Path("stdout"), e)
            if translated is None:
                raise
            _quiet_stdout()  # what stdout still holds would fail again at exit
            raise translated from None


def _stdout(command: str, or_use: str | None = None):
    """sys.stdout, where `command` writes its data; StorageError when the process has no stdout
    (closed: `>&-`), naming the option `or_use` that writes to a file instead, if it has one."""
    if sys.stdout is None:
        from bptrain.errors import StorageError

        instead = f" or use {or_use}" if or_use else ""
        raise StorageError(f"stdout is closed, so {command} cannot write to it; give it a file (> FILE){instead}")
    return sys.stdout


def _print_version(value: bool) -> None:
    if value:
        from bptrain import __version__  # the package root only: --version imports no numpy

        print(f"bptrain {__version__}", flush=True)
        raise typer.Exit()


@app.callback()
def main_options(
    show_traceback: Annotated[
        bool, typer.Option("--traceback", help="Show the Python traceback of internal errors (or set BPTRAIN_TRACEBACK=1).")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", is_eager=True, callback=_print_version)
    ] = False,
) -> None:
    """Train neural networks on tabular data by backpropagation, from a YAML config."""
    if show_traceback:
        _state["traceback"] = True


# --- fit --------------------------------------------------------------------------------------


@app.command()
def fit(
    config: Annotated[
        Optional[Path], typer.Argument(help="YAML config, e.g. configs/iris.yaml (optional with --resume).", show_default=False)
    ] = None,
    set_: Annotated[
        Optional[list[str]], typer.Option("--set", help="Override a config key, e.g. --set stopping.max_epochs=50 (repeatable).")
    ] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="Run-name prefix (default: the config's name).")] = None,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Folder that receives the run folder.")] = Path("runs"),
    resume: Annotated[
        Optional[Path], typer.Option("--resume", help="Continue this run folder from its last checkpoint.", show_default=False)
    ] = None,
    folds: Annotated[
        Optional[int],
        typer.Option("--folds", min=2, help="k-fold cross-validation: one run per fold in one folder, and a summary (sets data.split.folds).", show_default=False),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr.")] = False,
    mlflow: Annotated[
        bool, typer.Option("--mlflow", help="Log params, metrics and files to MLflow (tracking.mlflow, or its defaults; the mlflow extra).")
    ] = False,
) -> None:
    """Train the network that CONFIG describes; write a run folder and print a summary."""
    outcome = _SignalOutcome(resume)
    with errors_to_exit_codes(outcome):
        from bptrain import app as services
        from bptrain import crossval
        from bptrain.config.loading import load_config, parse_overrides
        from bptrain.errors import ConfigError
        from bptrain.progress import Progress
        from bptrain.training.loop import StopRequest

        if config is None and resume is None:
            raise ConfigError("fit needs a CONFIG file, or --resume RUN to continue a run")
        if resume is not None:
            resume = _run_to_resume(resume, runs_dir)
        if folds is not None and resume is not None:
            raise ConfigError("--folds cannot be combined with --resume: a cross-validation continues from its folder, e.g. --resume RUN (it records its folds)")
        overrides = parse_overrides(set_ or []) | ({"data.split.folds": folds} if folds is not None else {})
        recorded = None if resume is None else resume / (crossval.PLAN if crossval.is_cv_folder(resume) else "config.yaml")
        cfg = load_config(config if config is not None else recorded, overrides)
        cfg = services.with_mlflow(cfg) if mlflow else cfg
        stop = StopRequest()
        cross_validation = (recorded is not None and recorded.name == crossval.PLAN) or (cfg.data.split.folds is not None and cfg.data.split.fold is None and resume is None)
        try:
            with Progress(enabled=not quiet) as progress, stop_on_signals(stop):
                if cross_validation:
                    cv = crossval.cross_validate(cfg, runs_dir=runs_dir, name=name, resume=resume, stop_request=stop, on_event=progress.handle)
                else:
                    result = services.fit(cfg, runs_dir=runs_dir, name=name, resume=resume, stop_request=stop, on_event=progress.handle)
                    if resume is not None:
                        crossval.say_how_to_finish(result.run_dir, progress.handle)
        except KeyboardInterrupt:
            if stop.run_dir is None:  # a second Ctrl-C before the run had a folder
                raise
            from bptrain.errors import RunInterrupted

            raise RunInterrupted("interrupted", stop.run_dir, saved=False) from None
        summary = cv.summary if cross_validation else result.report
        outcome.finished = summary["run_dir"]
        (_print_cv_summary if cross_validation else _print_fit_summary)(summary)


class _SignalOutcome:
    """What fit says of a signal that training did not take: one before the run had a folder, or one
    after it ended (a signal that training takes ends in RunInterrupted, which names the folder)."""

    def __init__(self, resume: Path | None) -> None:
        self.resume, self.finished = resume, None

    def __call__(self) -> str:
        if self.finished is not None:
            return f"{{stop}} after the run ended; it is complete in {self.finished}"
        if self.resume is not None:
            return f"{{stop}} before training continued; continue with: bptrain fit --resume {self.resume}"
        return "{stop} before training started; nothing was written"


@contextlib.contextmanager
def stop_on_signals(stop) -> Iterator[None]:
    """First SIGINT/SIGTERM: ask training to stop after the current step. A second SIGINT stops at once."""
    def first(signum, frame) -> None:
        stop.set("interrupted" if signum == signal.SIGINT else "terminated")
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    previous = {s: signal.signal(s, first) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _print_fit_summary(report: dict[str, Any]) -> None:
    out = [
        f"run        {report['run_dir']}",
        f"stopped    {report['stop_reason']} after {report['epochs_run']} epochs, {report['seconds']:.1f} s; "
        f"best epoch {report['best_epoch']}",
    ]
    for split in ("val", "test"):
        values = report["metrics"].get(split)
        if values:
            out.append(f"{split:<10} {_metric_line(values)}")
    print("\n".join(out), flush=True)


def _print_cv_summary(summary: dict[str, Any]) -> None:
    """The folds' metrics as a table per split, then their mean and sample standard deviation."""
    from bptrain.runs.report import number

    out = [f"run        {summary['run_dir']} ({summary['folds']} folds)"]
    for split in ("val", "test"):
        table = summary.get(split)
        if not table:
            continue
        names = list(table["mean"])
        widths = [max(len(n), 7) for n in names]
        out.append(f"{split:<10} " + "  ".join(f"{n:>{w}}" for n, w in zip(names, widths)))
        rows = [(f"fold {i}", values) for i, values in enumerate(table["folds"], start=1)]
        for label, values in rows + [("mean", table["mean"]), ("std", table["std"])]:
            cells = ["-" if values[n] is None else number(values[n]) for n in names]
            out.append(f"  {label:<8} " + "  ".join(f"{c:>{w}}" for c, w in zip(cells, widths)))
    print("\n".join(out), flush=True)


def _metric_line(values: dict[str, Any]) -> str:
    """`name value` pairs; a non-finite number (null in report.json, e.g. r2 of a constant target) shows as -."""
    from bptrain.runs.report import number

    return "  ".join(
        (f"{k} {number(v)}" if math.isfinite(v) else f"{k} -") if isinstance(v, float) else f"{k} {'-' if v is None else v}"
        for k, v in values.items()
    )


# --- evaluate ---------------------------------------------------------------------------------


def _run_to_resume(resume: Path, runs_dir: Path) -> Path:
    """The run folder `--resume` names (`latest` resolved, the model file inside one taken as its
    folder), checked to be one that fit wrote (or a cross-validation folder)."""
    from bptrain.errors import ConfigError
    from bptrain.runs import folder as runs

    resume = runs.resolve_run(resume, runs_dir)
    if not resume.exists():
        raise runs.missing_run(resume, f"--resume {resume}")
    if resume.is_file() and resume.name == runs.MODEL_FILE:
        resume = resume.parent
    if not (resume / "config.yaml").is_file() and not runs.is_cv_folder(resume):
        if runs.is_tune_folder(resume):
            raise ConfigError(f"--resume {resume}: a tune folder; continue its study with: bptrain tune --resume {resume}")
        raise ConfigError(f"--resume {resume}: not a run folder written by bptrain fit (no config.yaml)")
    return resume


@app.command()
def evaluate(
    run: Annotated[Path, typer.Argument(help="Run folder (or the model.npz inside one).", show_default=False)],
    data: Annotated[
        Optional[str], typer.Option("--data", help="Labelled CSV to evaluate on ('-' for stdin) instead of the run's own val/test rows.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON on stdout.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Make a category the model never saw an error (default: a warning).")] = False,
    threads: Annotated[str, typer.Option("--threads", help="BLAS threads: a number, or auto (one for small networks, else the idle cores).")] = "auto",
) -> None:
    """Metrics of a saved model, recomputed from the model file."""
    with errors_to_exit_codes():
        _stdout("evaluate")
        from bptrain import app as services
        from bptrain.runs.report import to_json

        results = services.evaluate(run, data, strict=strict, threads=_threads(threads), on_event=_log_event)
        if as_json:
            print(to_json(results), flush=True)
        else:
            for split, values in results.items():
                print(f"{split:<6} {_metric_line(values)}", flush=True)


def _threads(text: str) -> int | str:
    """--threads: "auto" or a whole number from 1; a ConfigError otherwise."""
    if text == "auto" or (text.isdigit() and int(text) >= 1):
        return text if text == "auto" else int(text)
    from bptrain.errors import ConfigError

    raise ConfigError(f"--threads {text}: give auto or a whole number of threads from 1")


def _log_event(event) -> None:
    """Warnings of evaluate and predict (bptrain.events.Warning); they report no other event."""
    from bptrain import events

    if isinstance(event, events.Warning):
        _err(f"warning: {event.message}")


# --- predict ----------------------------------------------------------------------------------


@app.command()
def predict(
    run: Annotated[Path, typer.Argument(help="Run folder (or the model.npz inside one).", show_default=False)],
    input: Annotated[str, typer.Argument(help="CSV with the feature columns; '-' reads stdin.")] = "-",
    output: Annotated[str, typer.Option("--output", "-o", help="Write the CSV here instead of stdout ('-').")] = "-",
    proba: Annotated[bool, typer.Option("--proba", help="Add one proba_<class> column per class.")] = False,
    keep: Annotated[
        Optional[list[str]], typer.Option("--keep", help="Copy this input column into the output, first (repeatable).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="Output format: csv or jsonl.")] = "csv",
    escape_formulas: Annotated[
        bool, typer.Option("--escape-formulas", help="Prefix text cells starting with = + - @ with ' (for spreadsheets).")
    ] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Make a category the model never saw an error (default: a warning).")] = False,
    threads: Annotated[str, typer.Option("--threads", help="BLAS threads: a number, or auto (one for small networks, else the idle cores).")] = "auto",
) -> None:
    """Predict for the rows of INPUT, streaming; write kept columns, prediction, probabilities."""
    unwritten = "the predictions on stdout stop early" if output == "-" else f"{output} is left as it was, with no partial file"
    with errors_to_exit_codes(f"predict {{stop}}; {unwritten}"):
        from bptrain import app as services
        from bptrain.errors import ConfigError
        from bptrain.fileio import atomic_write, no_place_for

        if fmt not in ("csv", "jsonl"):
            raise ConfigError(f"--format {fmt}: choose csv or jsonl")
        kwargs = {"proba": proba, "keep": list(keep or []), "fmt": fmt, "escape": escape_formulas, "strict": strict}
        kwargs.update(threads=_threads(threads), on_event=_log_event)
        if output == "-":
            services.predict(run, input, _stdout("predict", "-o FILE"), **kwargs)
        else:
            def write(f) -> None:
                text = io.TextIOWrapper(f, encoding="utf-8", newline="", write_through=True)
                services.predict(run, input, text, **kwargs)
                text.detach()

            target = Path(output)
            if target.is_dir():
                raise ConfigError(f"--output {output}: is a folder; give a file name, e.g. {target / 'predictions.csv'}")
            try:
                atomic_write(target, write)
            except (FileNotFoundError, NotADirectoryError):
                raise no_place_for(f"--output {output}", target) from None


# --- check ------------------------------------------------------------------------------------


@app.command()
def check(
    config: Annotated[Path, typer.Argument(help="YAML config to validate.", show_default=False)],
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a config key, as in fit.")] = None,
) -> None:
    """Validate CONFIG and read its data's header and target, without training."""
    with errors_to_exit_codes():
        from bptrain import app as services
        from bptrain.config.loading import load_with_search, parse_overrides

        loaded, raw, section = load_with_search(config, parse_overrides(set_ or []))
        summary = services.check(loaded)
        search = None
        if section is not None:  # fit leaves it out: what would stop bptrain tune is a warning here
            from bptrain.errors import ConfigError
            from bptrain.tune import space

            try:
                search = space.checked(section, raw, config, loaded, summary["metrics"])
            except ConfigError as e:
                summary["warnings"].append(f"bptrain tune would refuse the tune: section: {e}")
        for warning in summary["warnings"]:
            _err(f"warning: {warning}")
        rows = ", ".join(f"{k} {v}" for k, v in summary["rows"].items())
        inputs = f" ({summary['inputs']} network inputs)" if summary["inputs"] != len(summary["features"]) else ""
        lines = [
            f"ok: {config}",
            f"task       {summary['task']} ({_targets(summary['target'])}, loss {summary['loss']})",
            f"features   {len(summary['features'])}{inputs}: {', '.join(summary['features'][:8])}"
            + (", ..." if len(summary["features"]) > 8 else ""),
        ]
        if summary["categorical"]:
            lines.append("categories " + "; ".join(f"{k} {len(v)}: {', '.join(v[:6])}" + (", ..." if len(v) > 6 else "") for k, v in summary["categorical"].items()))
        if summary["missing"]:
            lines.append("missing    in training rows: " + ", ".join(f"{k} {n} ({how})" for k, (n, how) in summary["missing"].items()))
        lines.append(f"rows       {rows}")
        if summary["classes"]:
            kind = "labels    " if summary["task"] == "multilabel" else "classes   "
            lines.append(f"{kind} {len(summary['classes'])}: {', '.join(summary['classes'][:10])}" + (", ..." if len(summary["classes"]) > 10 else ""))
        lines.append(f"logged     {', '.join(summary['metrics'])}")
        lines.append(f"engine     {summary['engine'].name} ({summary['engine'].why})")
        if search is not None:
            lines.append(_search_line(*search))
        print("\n".join(lines), flush=True)


def _search_line(search, metric: str, direction: str) -> str:
    keys = [p.key for p in search.params]
    shown = ", ".join(keys[:6]) + (", ..." if len(keys) > 6 else "")
    pruner = "no pruner" if search.pruner == "none" else f"{search.pruner} pruner"
    return f"tune       {len(keys)} key{'s' * (len(keys) != 1)}: {shown}; {direction} {metric} ({search.sampler} sampler, {pruner})"


def _targets(target: str | list[str]) -> str:
    if isinstance(target, str):
        return f"target {target!r}"
    return "targets " + ", ".join(repr(t) for t in target)


@app.command()
def gradcheck(
    config: Annotated[Path, typer.Argument(help="YAML config whose network to check.", show_default=False)],
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a config key, as in fit.")] = None,
    rows: Annotated[int, typer.Option("--rows", min=1, help="Training rows in the batch checked.")] = 16,
) -> None:
    """Check backprop against finite differences on CONFIG's network and data, in float64."""
    with errors_to_exit_codes():
        from bptrain import app as services
        from bptrain.config.loading import load_config, parse_overrides

        result = services.gradcheck(load_config(config, parse_overrides(set_ or [])), rows=rows)
        width = max(len(p["name"]) for p in result["params"])
        lines = [f"{'parameter':<{width}}  {'shape':<12}  relative error"]
        for p in result["params"]:
            shape = "x".join(map(str, p["shape"]))
            mark = "zero gradient, not checked" if p["zero"] else "ok" if p["ok"] else "FAIL"
            lines.append(f"{p['name']:<{width}}  {shape:<12}  {p['rel_error_norm']:.2e}  {mark}")
        worst = max(p["rel_error_norm"] for p in result["params"])
        verdict = "passed" if result["passed"] else "FAILED"
        zero = sum(p["zero"] for p in result["params"])
        unchecked = f" ({zero} with a zero gradient, not checked)" if zero else ""
        lines.append(
            f"{verdict}: {len(result['params'])} parameters{unchecked}, {result['rows']} rows, loss {result['loss']}, "
            f"largest relative error {worst:.2e} (tolerance {result['tolerance']:.0e})"
        )
        print("\n".join(lines), flush=True)
        if not result["passed"]:
            raise typer.Exit(int(ExitCode.INTERNAL))


# --- export -----------------------------------------------------------------------------------


@app.command()
def export(
    run: Annotated[Path, typer.Argument(help="Run folder (or the model.npz inside one).", show_default=False)],
    output: Annotated[str, typer.Option("--output", "-o", help="The file to write, e.g. model.onnx ('-' for stdout).", show_default=False)],
    fmt: Annotated[str, typer.Option("--format", help="File format: onnx.")] = "onnx",
) -> None:
    """Export RUN's model with its preprocessing as one file (ONNX) for other runtimes."""
    unwritten = "nothing was written to stdout" if output == "-" else f"{output} is left as it was"
    with errors_to_exit_codes(f"export {{stop}}; {unwritten}"):
        from bptrain.export import export as export_model

        done = export_model(run, fmt, output, stdout=_stdout("export -o -", "-o FILE").buffer if output == "-" else None)
        if output != "-":
            lines = [
                f"exported   {done.model_path} to {output} ({done.format}, {done.size:,} bytes)",
                "inputs     " + ", ".join(f"{name} ({kind})" for name, kind in done.inputs),
                "outputs    " + ", ".join(f"{name} ({kind})" for name, kind in done.outputs),
            ]
            print("\n".join(lines), flush=True)
# --- looking at runs: plot, runs, compare, explain -------------------------------------------------


@app.command()
def plot(
    run: Annotated[Path, typer.Argument(help="Run folder (or the model.npz inside one), or latest.", show_default=False)],
    what: Annotated[
        Optional[str], typer.Option("--what", help="Figures, comma-separated: curves, gradients, confusion, roc, pr, predicted, residuals (default: all that apply).", show_default=False)
    ] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--output", "-o", help="Folder for the PNG files (default: RUN/figures).", show_default=False)] = None,
    log: Annotated[bool, typer.Option("--log", help="Loss on a log scale.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the files written as JSON on stdout.")] = False,
) -> None:
    """Draw a run's figures as PNG files: learning curves, gradients, confusion matrix, ROC, residuals."""
    with errors_to_exit_codes():
        from bptrain.insight.figures import as_dict, plot as draw
        from bptrain.insight.plots import chosen

        drawn = draw(run, chosen(what), out_dir, log=log, on_event=_log_event)
        for name, why in drawn.skipped:
            _err(f"skipped {name}: {why}")
        if as_json:
            import json

            print(json.dumps(as_dict(drawn), indent=2), flush=True)
        else:
            print("\n".join(str(path) for path in drawn.written), flush=True)


@app.command(name="runs")
def list_runs(
    folder: Annotated[Optional[Path], typer.Argument(help="Folder holding run folders [default: runs].", show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON on stdout.")] = False,
    sort: Annotated[
        Optional[str], typer.Option("--sort", help="Sort by a column (date, name, epochs, val, test) or a metric (val_accuracy, test_loss, ...); metrics best first.", show_default=False)
    ] = None,
) -> None:
    """List the run folders: name, date, task, stop reason, epochs, validation and test metric."""
    with errors_to_exit_codes():
        _stdout("runs")
        from bptrain.insight import tables
        from bptrain.insight.runlist import list_runs as rows_of

        given, folder = folder is not None, folder or Path("runs")
        rows = rows_of(folder, sort, missing_is_empty=not given)  # no ./runs yet: nothing was trained here
        if as_json:
            print(tables.runs_json(rows), flush=True)
        elif not rows:
            _err(f"no run folders under {folder}; train one with: bptrain fit CONFIG")
        elif sys.stdout.isatty():
            tables.runs_rich(rows, f"{len(rows)} under {folder}")
        else:
            print(tables.runs_text(rows), flush=True)


@app.command()
def compare(
    runs: Annotated[list[Path], typer.Argument(help="Two run folders or more (latest: the newest).", show_default=False)],
    out_dir: Annotated[Optional[Path], typer.Option("--output", "-o", help="Folder for compare.png (default: the current folder).", show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON on stdout.")] = False,
) -> None:
    """Compare runs: the config keys that differ, their metrics side by side, their curves in one figure."""
    with errors_to_exit_codes():
        _stdout("compare")
        from bptrain.insight import tables
        from bptrain.insight.compare import compare as compared
        from bptrain.runs.report import to_json

        result = compared(runs, out_dir)
        print(to_json(result) if as_json else tables.compare_text(result), flush=True)


@app.command()
def explain(
    run: Annotated[Path, typer.Argument(help="Run folder (or the model.npz inside one), or latest.", show_default=False)],
    data: Annotated[Optional[str], typer.Option("--data", help="Labelled CSV to shuffle ('-' for stdin) instead of the run's test rows.", show_default=False)] = None,
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="Shuffles per column.")] = 5,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the shuffles.")] = 0,
    out_dir: Annotated[Optional[Path], typer.Option("--output", "-o", help="Folder for importance.png (default: RUN/figures).", show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the importances as JSON on stdout.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="With --data: make a category the model never saw an error.")] = False,
) -> None:
    """Permutation feature importance per input column: how much worse the model does with it shuffled."""
    with errors_to_exit_codes():
        from bptrain.insight import importance, tables
        from bptrain.insight.figures import figures_folder
        from bptrain.insight.plots import not_stdout
        from bptrain.runs.report import to_json

        not_stdout(out_dir)  # before the shuffles, which take a while
        _stdout("explain")
        result = importance.explain(run, data, repeats=repeats, seed=seed, strict=strict, on_event=_log_event)
        explained = Path(result["run"])  # the run folder, or a model file alone (its figures go beside it)
        folder = figures_folder(explained.parent if explained.is_file() else explained, out_dir)
        result["figure"] = str(importance.figure(result, folder / importance.FIGURE_FILE))
        print(to_json(result) if as_json else tables.importance_text(result) + f"\n\nfigure   {result['figure']}", flush=True)
# --- tune -------------------------------------------------------------------------------------


@app.command()
def tune(
    config: Annotated[
        Optional[Path], typer.Argument(help="YAML config with a tune: section (or give --space), e.g. configs/iris.yaml.", show_default=False)
    ] = None,
    trials: Annotated[Optional[int], typer.Option("--trials", min=1, help="Trials to run to the end (default 20; with --resume, the recorded number).", show_default=False)] = None,
    timeout: Annotated[Optional[float], typer.Option("--timeout", min=0, help="Start no new trial after this many seconds.", show_default=False)] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Trials at once, in worker processes; from 2 on, each trial gets one BLAS thread unless training.threads is set.")] = 1,
    scheduler: Annotated[
        Optional[str], typer.Option("--scheduler", help="Run the trials on the Dask cluster at this address, e.g. tcp://host:8786 (the dask extra).", show_default=False)
    ] = None,
    space_file: Annotated[Optional[Path], typer.Option("--space", help="YAML file with the search (the keys of a tune: section) instead of the config's.", show_default=False)] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a config key for every trial, as in fit (repeatable).")] = None,
    folds: Annotated[
        Optional[int], typer.Option("--folds", min=2, help="Score each trial by the mean of K-fold cross-validation instead of one validation split.", show_default=False)
    ] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="Tune-folder prefix (default: the config's name).")] = None,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Folder that receives the tune folder.")] = Path("runs"),
    resume: Annotated[Optional[Path], typer.Option("--resume", help="Continue the study in this tune folder.", show_default=False)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No line per trial on stderr.")] = False,
) -> None:
    """Search CONFIG's hyperparameters with Optuna; write a tune folder with every trial and best.yaml."""
    with errors_to_exit_codes("{stop} before the study could record it; continue with: bptrain tune --resume DIR"):
        from bptrain.config.loading import parse_overrides
        from bptrain.errors import ConfigError
        from bptrain.progress import Progress
        from bptrain.training.loop import StopRequest
        from bptrain.tune import study

        if (config is None) == (resume is None):
            raise ConfigError("tune needs a CONFIG file, or --resume DIR to continue a study (not both)")
        if resume is not None:
            if set_ or space_file or folds:
                raise ConfigError("--resume continues the recorded study: --set, --space and --folds cannot change it")
            the_plan = study.reopen(resume, trials)
        else:
            the_plan = study.plan(config, space_path=space_file, overrides=parse_overrides(set_ or []), trials=trials or 20, folds=folds)
        stop = StopRequest()
        try:
            with Progress(enabled=not quiet) as progress, stop_on_signals(stop):
                result = study.tune(the_plan, runs_dir=runs_dir, name=name, resume=resume, workers=workers, scheduler=scheduler,
                                    timeout=timeout, stop_request=stop, on_event=progress.handle)
        except KeyboardInterrupt:  # a second Ctrl-C: the study recorded its running trials as interrupted
            if stop.run_dir is None:
                raise
            raise study.TuneInterrupted("interrupted", stop.run_dir) from None
        _print_tune_summary(result.summary)


def _print_tune_summary(summary: dict[str, Any]) -> None:
    from bptrain.runs.report import number
    from bptrain.tune.space import describe

    best = summary["best"]
    counts = ", ".join(f"{n} {state}" for state, n in summary["trials"].items())
    out = [
        f"tune       {summary['tune_dir']}",
        f"trials     {counts}",
        f"best       trial {best['trial']}: {summary['metric']} {number(best['value'])}  ({best['run']})",
        f"params     {describe(best['params'])}",
    ]
    if best["test"]:
        out.append(f"test       {_metric_line(best['test'])}  (scored once, for the best trial)")
    out.append(f"config     {Path(summary['tune_dir']) / 'best.yaml'}")
    print("\n".join(out), flush=True)


# --- serve ------------------------------------------------------------------------------------


@app.command()
def serve(
    run: Annotated[Path, typer.Argument(help="Run folder (or the model.npz inside one).", show_default=False)],
    host: Annotated[str, typer.Option("--host", help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on (0: any free one, printed).")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Processes answering requests, each with its own copy of the model.")] = 1,
    max_body_mb: Annotated[float, typer.Option("--max-body-mb", min=0.001, help="Largest request body taken, in MB; larger ones get 413.")] = 10.0,
) -> None:
    """Serve RUN's predictions over HTTP: POST /predict, GET /schema, GET /health, docs at /docs."""
    with errors_to_exit_codes():
        from bptrain import serve as service

        service.serve(run, host=host, port=port, workers=workers, max_body=int(max_body_mb * 1_000_000))


def main() -> None:
    """Entry point of the `bptrain` console script and `python -m bptrain`.

    Click runs without its standalone mode so that a usage mistake (unknown option, missing
    argument, bad number) is one `error:` line and exit 2, like every other error, not a box.
    """
    from typer.main import get_command

    click = _click_exceptions()
    try:
        command = get_command(app)
        _plain_coercion(command)
        code = command.main(prog_name="bptrain", standalone_mode=False)
    except click.NoArgsIsHelpError as e:
        print(e.ctx.get_help(), flush=True)
        code = int(ExitCode.USAGE)
    except click.ClickException as e:
        _err(_usage_error(e))
        code = e.exit_code
    except typer.Abort:
        _err("error: aborted")
        code = int(ExitCode.INTERNAL)
    except BrokenPipeError:
        _quiet_stdout()
        code = int(ExitCode.OK)
    except OSError as e:  # help or --version on a stdout that cannot be written (a command's is guarded)
        from bptrain.fileio import storage_error

        unwritable = storage_error(Path("stdout"), e)
        if unwritable is None:
            raise
        _quiet_stdout()
        _err(f"error: {unwritable}")
        code = int(unwritable.exit_code)
    sys.exit(code if isinstance(code, int) else int(ExitCode.OK))


def _plain_coercion(group) -> None:
    """Let the parameters of plain types (str, Path, flags, lists of str) take their values as typer
    would, but without building a pydantic TypeAdapter for each: typer's own coercion imports
    pydantic and builds one per parameter (about 0.1 s of `bptrain predict`), to turn a str into a
    str or a Path. The values are the same (tests/cli/test_cli_usage.py); any other type, or value,
    keeps typer's coercion, as does everything when typer's internals are not the ones expected."""
    try:
        from dataclasses import dataclass

        from typer._coercion import RuntimeParam, build_runtime_param
        from typer._param_types import coerce_cli_path

        @dataclass(frozen=True)
        class Plain(RuntimeParam):
            def _coerce_value(self, value: Any, param, ctx) -> Any:
                kind = self.annotation
                if kind is str and isinstance(value, str) or kind is bool and isinstance(value, bool):
                    return value
                if kind is Path and isinstance(value, (str, Path)):  # typer's pydantic adapter gives Path(value)
                    return coerce_cli_path(Path(value), self.parameter_info, path_type=Path, param=param, ctx=ctx)
                if kind == list[str] and isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
                    return list(value)
                return build_runtime_param(param.type_descriptor)._coerce_value(value, param=param, ctx=ctx)
    except (ImportError, TypeError):  # typer's internals changed: its own coercion stays
        return

    names = SimpleNamespace(help_option_names=app.info.context_settings["help_option_names"])  # what a context would give
    for command in [group, *getattr(group, "commands", {}).values()]:
        try:
            help_option = [command.get_help_option(names)]  # made once, then kept by the command
        except (AttributeError, TypeError):
            help_option = []
        for param in command.params + help_option:
            try:
                _take_plain(param, Plain)
            except (AttributeError, TypeError):  # typer's internals changed: its own coercion stays
                pass


def _take_plain(param, plain_class) -> None:
    descriptor = getattr(param, "type_descriptor", None)
    info = getattr(descriptor, "parameter_info", None)
    if getattr(param, "_runtime_param", False) is not None or info is None:
        return
    plain = descriptor.annotation in (str, bool, Path, list[str]) and descriptor.file_annotation is None
    if plain and info.parser is None and getattr(info, "path_type", None) is None:
        param._runtime_param = plain_class(parameter_info=info, annotation=descriptor.annotation)


def _click_exceptions():
    try:  # recent typer versions carry their own copy of click
        from typer._click import exceptions
    except ImportError:
        from click import exceptions
    return exceptions


def _usage_error(e) -> str:
    """`error: bptrain fit: no such option: --bogus; see 'bptrain fit --help'`."""
    ctx = getattr(e, "ctx", None)
    command = ctx.command_path if ctx is not None else "bptrain"
    message = e.format_message().strip().rstrip(".")
    bad_value = re.fullmatch(r"Invalid value for '?(.+?)'?: (.*)", message, re.S)
    if bad_value:  # "Invalid value for '--rows': Input should be ..." -> "--rows: must be ..."
        message = f"{bad_value[1]}: {bad_value[2].replace('Input should be', 'must be')}"
    message = message[:1].lower() + message[1:]
    if message == "no such option: --traceback" and command != "bptrain":  # an option of bptrain itself
        return f"error: {command}: no such option: --traceback; it goes before the command: bptrain --traceback {command.split()[-1]} ..."
    extra = re.fullmatch(r"got unexpected extra argument\(s\) \(([^ ]+)\)", message)
    if extra and command.split()[-1] in DATA_BY_OPTION:  # `bptrain evaluate RUN data.csv`, as predict takes it
        run = (getattr(ctx, "params", None) or {}).get("run") or "RUN"
        return f"error: {command}: {message}; the data goes after --data: {command} {run} --data {extra[1]}"
    return f"error: {command}: {message}; see '{command} --help'"


DATA_BY_OPTION = ("evaluate", "explain")  # commands that take a data file with --data, where predict takes it as an argument
