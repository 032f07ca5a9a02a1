"""Each command imports only what it uses: read from the real process's own import log (-X importtime).

The log (PYTHONPROFILEIMPORTTIME) names every module the process imports, on stderr, one line each;
the lines are told apart from the command's own output by their prefix.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import ROOT, fit_iris, run_cli

IMPORT_LOG = {"PYTHONPROFILEIMPORTTIME": "1"}
PREFIX = "import time:"
IRIS = ROOT / "datasets" / "iris.csv"


def logged_modules(stderr: str) -> list[str]:
    """The module names of the import log's lines, in order, its header first."""
    return [line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith(PREFIX)]


def run_logged(*args, env=IMPORT_LOG, **kwargs):
    """run_cli with the import log on; returns (result, imported module names, stderr without the log)."""
    result = run_cli(*args, env=env, **kwargs)
    log = logged_modules(result.stderr)
    assert log[0] == "imported package", "the import log's header"  # the log is on: its absence would pass every test
    rest = "".join(line + "\n" for line in result.stderr.splitlines() if not line.startswith(PREFIX))
    return result, set(log[1:]), rest


def packages(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def own(modules: set[str]) -> set[str]:
    return {name for name in modules if name == "bptrain" or name.startswith("bptrain.")}


def test_the_log_parser_reads_module_names_and_nothing_else():
    # the oracle itself, on made-up lines: the log's, and a command's own output between them
    stderr = (
        "import time: self [us] | cumulative | imported package\n"
        "import time:       187 |        187 | bptrain\n"
        "warning: a | b | c\n"
        "import time:       608 |        608 |   bptrain.errors\n"
    )
    assert logged_modules(stderr) == ["imported package", "bptrain", "bptrain.errors"]


# --- help ---------------------------------------------------------------------------------------

HEAVY = {"numpy", "pandas", "pyarrow", "pydantic", "yaml", "matplotlib", "threadpoolctl", "rich", "markdown_it", "pygments"}


@pytest.mark.parametrize("args", [["--help"], ["-h"], []], ids=["help", "h", "no-arguments"])
def test_help_imports_typer_and_the_cli_alone(args):
    result, modules, stderr = run_logged(*args)
    assert (result.returncode, stderr) == (0 if args else 2, "")
    assert result.stdout.startswith("Usage: bptrain [OPTIONS] COMMAND")
    assert "typer" in packages(modules)
    assert packages(modules) & HEAVY == set()
    assert own(modules) == {"bptrain", "bptrain.interrupts", "bptrain.errors", "bptrain.cli"}


@pytest.mark.parametrize("command", ["fit", "evaluate", "predict", "check", "gradcheck", "export", "plot", "runs", "compare", "explain", "tune", "serve"])
def test_a_commands_help_imports_no_heavy_module(command):
    # typer checks options with pydantic, but bptrain.cli takes the values of plain types (str,
    # Path, flags, lists of str; every parameter of every command's help) without it
    result, modules, stderr = run_logged(command, "--help")
    assert (result.returncode, stderr) == (0, "")
    assert result.stdout.startswith(f"Usage: bptrain {command} [OPTIONS]")
    assert packages(modules) & HEAVY == set()
    assert own(modules) == {"bptrain", "bptrain.interrupts", "bptrain.errors", "bptrain.cli"}


def test_version_imports_no_heavy_module():
    result, modules, stderr = run_logged("--version")
    assert (result.returncode, stderr) == (0, "")
    assert packages(modules) & HEAVY == set()


HELP = """\
Usage: bptrain [OPTIONS] COMMAND [ARGS]...

  Train neural networks on tabular data by backpropagation, from a YAML
  config.

Options:
  --traceback  Show the Python traceback of internal errors (or set
               BPTRAIN_TRACEBACK=1).
  --version    Print the version and exit.
  -h, --help   Show this message and exit.

Commands:
  fit        Train the network that CONFIG describes; write a run folder and
             print a summary.
  evaluate   Metrics of a saved model, recomputed from the model file.
  predict    Predict for the rows of INPUT, streaming; write kept columns,
             prediction, probabilities.
  check      Validate CONFIG and read its data's header and target, without
             training.
  gradcheck  Check backprop against finite differences on CONFIG's network and
             data, in float64.
  export     Export RUN's model with its preprocessing as one file (ONNX) for
             other runtimes.
  plot       Draw a run's figures as PNG files: learning curves, gradients,
             confusion matrix, ROC, residuals.
  runs       List the run folders: name, date, task, stop reason, epochs,
             validation and test metric.
  compare    Compare runs: the config keys that differ, their metrics side by
             side, their curves in one figure.
  explain    Permutation feature importance per input column: how much worse
             the model does with it shuffled.
  tune       Search CONFIG's hyperparameters with Optuna; write a tune folder
             with every trial and best.yaml.
  serve      Serve RUN's predictions over HTTP: POST /predict, GET /schema,
             GET /health, docs at /docs.
"""


def test_help_is_plain_text_with_each_commands_whole_line():
    # plain help (rich's would import rich, markdown-it and pygments); click alone would cut the
    # command lines to fit 80 columns ("Train the network that CONFIG describes; write a run folder...")
    result = run_cli("--help")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == HELP


# --- commands -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory) -> Path:
    return fit_iris(tmp_path_factory.mktemp("runs"), epochs=2)


QUOTED_IRIS = "\n".join(",".join(f'"{cell}"' for cell in line.split(",")) for line in IRIS.read_text().splitlines()) + "\n"


@pytest.mark.parametrize(
    "command, stdin, lines, pandas",
    [
        (["predict", "{run}", str(IRIS)], None, 151, False),
        (["predict", "{run}", str(IRIS), "--proba", "--format", "jsonl"], None, 150, False),
        (["predict", "{run}", "-", "--keep", "species"], IRIS.read_text(), 151, False),
        (["predict", "{run}", "-"], QUOTED_IRIS, 151, True),
        (["evaluate", "{run}", "--data", "-"], IRIS.read_text(), 1, True),
    ],
    ids=["predict", "predict-proba-jsonl", "predict-stdin", "predict-quoted", "evaluate-data"],
)
def test_commands_on_a_model_file_import_no_yaml_figures_or_progress_bar(iris_run, command, stdin, lines, pandas):
    result, modules, stderr = run_logged(*[arg.format(run=iris_run) for arg in command], input=stdin)
    assert (result.returncode, stderr) == (0, "")
    assert len(result.stdout.splitlines()) == lines
    assert "numpy" in packages(modules)
    # a model file that bptrain.runs.meta_fast finds plainly valid is used without pydantic and its schema
    assert "pydantic" not in packages(modules) and "bptrain.runs.meta_schema" not in modules
    # a small plain CSV input is read without pandas (bptrain.data.plaincsv); a quoted one, and evaluate's, with it
    assert ("pandas" in packages(modules)) == pandas
    assert packages(modules) & {"yaml", "matplotlib", "rich"} == set()
    assert "bptrain.config.loading" not in modules


def test_predict_on_a_plain_csv_file_imports_neither_pandas_nor_pydantic(iris_run):
    result, modules, stderr = run_logged("predict", iris_run, IRIS, "--proba")
    assert (result.returncode, stderr) == (0, "")
    assert packages(modules) & (HEAVY | {"pyarrow"}) == {"numpy", "threadpoolctl"}
    assert "bptrain.data.plaincsv" in modules
    assert {"bptrain.config.components", "bptrain.config.schema", "bptrain.config.loading"} & modules == set()


def test_export_imports_onnx_but_not_onnxruntime_yaml_or_figures(iris_run, tmp_path):
    result, modules, stderr = run_logged("export", iris_run, "-o", tmp_path / "iris.onnx")
    assert (result.returncode, stderr) == (0, "")
    assert {"numpy", "onnx"} <= packages(modules)
    assert packages(modules) & {"onnxruntime", "yaml", "matplotlib", "rich", "optuna"} == set()
    assert "bptrain.config.loading" not in modules


def test_check_imports_no_figures_progress_bar_or_thread_control():
    result, modules, stderr = run_logged("check", ROOT / "configs" / "iris.yaml")
    assert (result.returncode, stderr) == (0, "")
    assert result.stdout.startswith("ok: ")
    assert {"numpy", "pandas", "pydantic", "yaml"} <= packages(modules)
    assert packages(modules) & {"matplotlib", "rich", "threadpoolctl"} == set()


@pytest.mark.parametrize("figures, quiet", [(True, True), (False, True), (False, False)], ids=["figures", "no-figures", "progress-lines"])
def test_fit_never_imports_matplotlib_and_imports_rich_only_for_a_bar(tmp_path, figures, quiet):
    result, modules, stderr = run_logged(
        "fit", ROOT / "configs" / "iris.yaml", *(["-q"] if quiet else []), "--runs-dir", tmp_path,
        "--set", "stopping.max_epochs=2", "--set", f"report.figures={str(figures).lower()}",
    )
    assert result.returncode == 0, stderr
    assert [line.split()[:2] for line in stderr.splitlines()[1:]] == ([] if quiet else [["epoch", "1/2"], ["epoch", "2/2"]])
    (run,) = tmp_path.iterdir()
    assert (run / "curves.svg").is_file() == figures
    assert "matplotlib" not in packages(modules)  # curves.svg is written as text
    assert "threadpoolctl" in packages(modules)  # the BLAS threads are set for training
    assert "rich" not in packages(modules)  # the progress bar's: on a pipe, progress is one line per epoch
    assert "mlflow" not in packages(modules)  # tracking is off unless asked for
    assert (run / "diagnostics.csv").is_file()  # the diagnostics are on by default, and cost no import


def test_fit_with_mlflow_imports_it(tmp_path):
    result, modules, stderr = run_logged(
        "fit", ROOT / "configs" / "iris.yaml", "-q", "--runs-dir", tmp_path / "runs", "--mlflow", "--set", "stopping.max_epochs=1",
        env={**IMPORT_LOG, "MLFLOW_ALLOW_FILE_STORE": "true", "MLFLOW_TRACKING_URI": f"file:{tmp_path / 'store'}"},
    )
    assert (result.returncode, stderr) == (0, "")
    assert "mlflow" in packages(modules)


def test_the_config_package_still_gives_its_names_on_first_use():
    import bptrain.config as package
    from bptrain.config import loading, schema

    assert (package.load_config, package.dump_yaml, package.Config) == (loading.load_config, loading.dump_yaml, schema.Config)
    with pytest.raises(AttributeError, match="module 'bptrain.config' has no attribute 'nothing'"):
        package.nothing


def test_runs_imports_no_data_reader_figures_yaml_or_rich_on_a_pipe(iris_run):
    result, modules, stderr = run_logged("runs", iris_run.parent)
    assert (result.returncode, stderr) == (0, "")
    assert result.stdout.splitlines()[1].startswith(iris_run.name)
    assert packages(modules) & {"pandas", "pyarrow", "matplotlib", "yaml", "rich"} == set()


def test_plot_draws_on_matplotlibs_canvas_without_pyplot(iris_run, tmp_path):
    result, modules, stderr = run_logged("plot", iris_run, "--what", "curves,confusion", "-o", tmp_path)
    assert (result.returncode, stderr) == (0, "")
    assert "matplotlib.backends.backend_agg" in modules
    assert {"matplotlib.pyplot", "rich"} & modules == set()


def test_tune_imports_optuna_but_no_dask_figures_library_or_scikit_learn(tmp_path):
    """Without --scheduler, tune needs neither Dask nor a figures library. optuna.importance's fANOVA
    evaluator imports scikit-learn as the package loads (2.4-2.8 s); the PED-ANOVA importances
    bptrain computes need none of it. A stand-in sklearn on the path leaves a mark when it is
    imported, so the test holds where scikit-learn is not installed too."""
    site, mark = tmp_path / "site", tmp_path / "sklearn-was-imported"
    (site / "sklearn").mkdir(parents=True)
    (site / "sklearn" / "__init__.py").write_text(f"open({str(mark)!r}, 'w').close()\n")
    env = {**IMPORT_LOG, "PYTHONPATH": f"{ROOT}{os.pathsep}{site}"}
    args = ("tune", ROOT / "configs" / "iris.yaml", "--trials", "3", "-q", "--runs-dir", tmp_path / "runs", "--set", "stopping.max_epochs=2")
    result, modules, stderr = run_logged(*args, env=env)
    assert result.returncode == 0, stderr
    assert "optuna" in packages(modules)
    assert packages(modules) & {"dask", "distributed", "matplotlib"} == set()
    assert not mark.exists()  # not the log: it also names the imports that bptrain makes fail on purpose
    (tune_dir,) = (tmp_path / "runs").iterdir()
    importances = json.loads((tune_dir / "report.json").read_text())["importances"]
    assert set(importances) == {"optimizer.lr", "training.batch_size", "model.layers.count", "model.layers.units", "model.layers.dropout", "regularization.l2"}


# --- the Python API -----------------------------------------------------------------------------


def python_logged(code: str) -> set[str]:
    """The modules `python -c CODE` imports, from its import log."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(ROOT), **IMPORT_LOG}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    log = logged_modules(result.stderr)
    assert log[0] == "imported package"
    return set(log[1:])


def test_importing_bptrain_and_its_errors_loads_neither_the_api_nor_numpy():
    modules = python_logged("import bptrain; bptrain.ConfigError, bptrain.BptrainError")
    assert packages(modules) & (HEAVY | {"fastapi", "uvicorn", "onnx", "optuna"}) == set()
    assert own(modules) == {"bptrain", "bptrain.errors"}


def test_the_api_loads_on_first_use_of_its_names():
    modules = python_logged("import bptrain; bptrain.load")
    assert "bptrain.api" in modules
    assert packages(modules) & {"numpy", "pandas", "yaml", "fastapi", "uvicorn", "matplotlib"} == set()


def test_serve_imports_fastapi_and_uvicorn_only_to_serve():
    result, modules, stderr = run_logged("serve", "--help")
    assert (result.returncode, stderr) == (0, "")
    assert packages(modules) & {"fastapi", "uvicorn", "starlette", "httpx", "numpy", "pandas"} == set()

