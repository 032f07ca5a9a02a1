"""Command-line polish through real runs: usage mistakes as one `error:` line, --version, config caps and shorthands."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from bptrain import cli as cli_module
from conftest import ROOT, call_cli, run_cli, write

IRIS = ROOT / "datasets" / "iris.csv"
USAGE = 2


def expect(result, code: int, *lines: str) -> None:
    """Exit `code`, nothing on stdout, no traceback, no box, and stderr exactly `lines`."""
    assert result.returncode == code, (result.returncode, result.stderr)
    assert result.stdout == ""
    assert result.stderr == "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "args, line",
    [
        (["fit", "configs/iris.yaml", "--bogus"], "error: bptrain fit: no such option: --bogus; see 'bptrain fit --help'"),
        (["evaluate"], "error: bptrain evaluate: missing argument 'run'; see 'bptrain evaluate --help'"),
        (["fit", "configs/iris.yaml", "--folds", "x"], "error: bptrain fit: --folds: must be a valid integer, unable to parse string as an integer; see 'bptrain fit --help'"),
        (["gradcheck", "configs/iris.yaml", "--rows", "0"], "error: bptrain gradcheck: --rows: must be greater than or equal to 1; see 'bptrain gradcheck --help'"),
        (["predict", "runs/x", "in.csv", "extra"], "error: bptrain predict: got unexpected extra argument(s) (extra); see 'bptrain predict --help'"),
        (["frobnicate"], "error: bptrain: no such command 'frobnicate'; see 'bptrain --help'"),
        (["check", "x.yaml", "--traceback"], "error: bptrain check: no such option: --traceback; it goes before the command: bptrain --traceback check ..."),
        (["evaluate", "runs/x", "new.csv"],
         "error: bptrain evaluate: got unexpected extra argument(s) (new.csv); the data goes after --data: bptrain evaluate runs/x --data new.csv"),
        (["explain", "latest", "new.csv", "--json"],
         "error: bptrain explain: got unexpected extra argument(s) (new.csv); the data goes after --data: bptrain explain latest --data new.csv"),
        (["evaluate", "runs/x", "a.csv", "b.csv"], "error: bptrain evaluate: got unexpected extra argument(s) (a.csv b.csv); see 'bptrain evaluate --help'"),
    ],
    ids=["unknown-option", "missing-argument", "not-an-integer", "below-minimum", "extra-argument", "unknown-command", "traceback-after-the-command",
         "evaluate-data-as-argument", "explain-data-as-argument", "two-extra-arguments"],
)
def test_usage_mistakes_are_one_error_line_and_exit_2(args, line):
    expect(call_cli(*args), USAGE, line)


def test_an_internal_error_names_the_form_of_traceback_that_works(monkeypatch):
    from bptrain import app as services

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(services, "check", broken)
    monkeypatch.setitem(cli_module._state, "traceback", False)
    expect(
        call_cli("check", "configs/iris.yaml"),
        1,
        "internal error: RuntimeError: a bug",
        "This is a bug in bptrain. To see where, run again as bptrain --traceback COMMAND ... (or with BPTRAIN_TRACEBACK=1).",
    )
    monkeypatch.setitem(cli_module._state, "traceback", True)
    shown = call_cli("check", "configs/iris.yaml")
    assert shown.returncode == 1 and "Traceback (most recent call last)" in shown.stderr and shown.stderr.endswith("RuntimeError: a bug\n")


def test_help_still_works_and_exits_0():
    result = run_cli("fit", "--help")
    assert result.returncode == 0 and result.stderr == ""
    assert "Usage: bptrain fit [OPTIONS]" in result.stdout


def test_version_prints_the_version_without_importing_numpy():
    from bptrain import __version__

    result = run_cli("--version")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"bptrain {__version__}\n", "")
    code = "import sys; sys.argv = ['bptrain', '--version']\nfrom bptrain.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass\nprint(sorted(m for m in ('numpy', 'pandas', 'pydantic', 'yaml') if m in sys.modules))"
    probe = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT)})
    assert probe.stdout.splitlines()[-1] == "[]", probe.stderr


# --- config reading through the CLI -----------------------------------------------------------


def test_dev_zero_as_the_config_ends_at_once():
    started = time.monotonic()
    result = run_cli("check", "/dev/zero")
    expect(result, USAGE, "error: /dev/zero: larger than 1 MB, too large for a config file (a config is a few KB of YAML); check that this is the config and not a data file")
    assert time.monotonic() - started < 30


@pytest.mark.parametrize(
    "text, lines",
    [
        (f"data: {{train: {IRIS}, target: species}}\nseed: 1\nseed: 2\n", ["error: config.yaml: line 3: duplicate key 'seed' (first on line 2); give each key once"]),
        ("data: " + "[" * 600 + "]" * 600 + "\n", ["error: config.yaml: line 1: nested more than 50 levels deep; a config needs a handful of levels"]),
        (f"data: {{train: {IRIS}, target: species}}\noptimizer: {{lr: true}}\n", ["error: config.yaml: 1 problem", "  optimizer.lr: must be a number, not true or false (got true)"]),
        (f"data: {{train: {IRIS}, target: species}}\noptimizer: {{lr: .inf}}\n", ["error: config.yaml: 1 problem", "  optimizer.lr: must be a finite number (got .inf)"]),
        (f"name: ..\ndata: {{train: {IRIS}, target: species}}\n", ["error: config.yaml: 1 problem", "  name: must hold a letter or digit, not only dots (got '..'); e.g. name: iris"]),
        (f"data: {{train: {IRIS}, target: species, split: 0.15}}\n", ["error: config.yaml: 1 problem", "  data.split: must be a mapping with keys among val, test, stratify, column, folds, fold (got 0.15)"]),
    ],
    ids=["duplicate-key", "deep", "bool-number", "infinite", "dots-name", "split-scalar"],
)
def test_check_refuses_what_fit_would(tmp_path, text, lines):
    write(tmp_path, text)
    expect(call_cli("check", "config.yaml", cwd=tmp_path), USAGE, *lines)


def test_set_is_held_to_the_same_rules(tmp_path):
    result = call_cli("check", ROOT / "configs" / "iris.yaml", "--set", "optimizer.lr=true", cwd=tmp_path)
    expect(result, USAGE, f"error: {ROOT / 'configs' / 'iris.yaml'}: 1 problem", "  optimizer.lr: must be a number, not true or false (got true) (from --set)")


def test_shorthands_train_and_are_written_back_in_full(tmp_path):
    write(
        tmp_path,
        f"name: short\nseed: 1\ndata: {{train: {IRIS}, target: species}}\nmodel: {{layers: [8, 8]}}\n"
        "optimizer: {name: ADAM, lr: 0.01}\nstopping: {max_epochs: 2, early_stopping: true}\n",
    )
    result = call_cli("fit", "config.yaml", "-q", "--runs-dir", tmp_path / "runs", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (run,) = (tmp_path / "runs").iterdir()
    import yaml

    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["model"]["layers"] == [
        {"type": "dense", "units": 8, "activation": "relu", "init": "auto", "bias_init": 0.0, "dropout": 0.0}
    ] * 2
    assert resolved["optimizer"]["name"] == "adam"
    assert resolved["stopping"]["early_stopping"]["patience"] == 20


# --- the README's examples stay true ------------------------------------------------------------


def readme_block(first_line: str) -> list[str]:
    """The lines of the fenced block in README.md whose first line is `first_line`."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("```\n" + first_line + "\n") + 4
    return text[start : text.index("```", start)].splitlines()


def test_the_readme_config_error_example_is_the_real_message(tmp_path):
    (tmp_path / "configs").mkdir()
    write(
        tmp_path / "configs",
        f"data: {{train: {IRIS}, target: species}}\nmodel:\n  layers: [{{units: 0}}, 16]\noptimizer: adamm\ntrainig: {{batch_size: 16}}\n",
        "bad.yaml",
    )
    result = call_cli("check", "configs/bad.yaml", cwd=tmp_path)
    assert result.returncode == USAGE
    assert result.stderr.splitlines() == readme_block("error: configs/bad.yaml: 3 problems")


def test_the_readme_unseen_category_example_is_the_real_output(tmp_path):
    runs = tmp_path / "runs"
    fitted = call_cli("fit", "configs/penguins.yaml", "-q", "--set", "stopping.max_epochs=2", "--runs-dir", runs)
    assert fitted.returncode == 0, fitted.stderr
    (run,) = runs.iterdir()
    rows = (ROOT / "datasets" / "penguins.csv").read_text(encoding="utf-8").splitlines()[:4]
    moved = "\n".join(row.replace("Torgersen", "Atlantis") for row in rows) + "\n"
    result = run_cli("predict", run, "-", "--keep", "island", input=moved)
    assert result.returncode == 0, result.stderr
    shown = readme_block("island,prediction")
    lines = result.stdout.splitlines()  # the predicted species may differ after 2 epochs; the shape may not
    assert lines[0] == shown[0] and len(lines) == len(shown) - 1 == 4
    assert all(line.startswith("Atlantis,") for line in lines[1:])
    assert result.stderr.splitlines() == [shown[-1]]


# --- plain parameters: typer's values without its pydantic adapters (bptrain.cli._plain_coercion) ---

PLAIN_VALUES = {str: ["", "-", "a b", "auto", "é", "--x"], bool: [True, False], list[str]: [[], ["a"], ("a", "b")]}
PATHS = ["", ".", "-", "runs/", "~/x", "//x", "é", "latest", str(IRIS)]  # argv holds no NUL byte


def test_plain_parameters_take_the_values_typers_coercion_gives():
    from typer._click import Context
    from typer._coercion import build_runtime_param
    from typer.main import get_command

    from bptrain import cli

    group = get_command(cli.app)
    cli._plain_coercion(group)
    checked = 0
    for command in [group, *group.commands.values()]:
        ctx = Context(command, info_name=command.name)
        for param in command.params + [command.get_help_option(ctx)]:
            kind = param.type_descriptor.annotation
            plain = param._runtime_param
            if kind in (str, bool, list[str]) or kind.__name__ == "Path":
                assert type(plain).__name__ == "Plain", (command.name, param.name)
            else:
                assert plain is None, (command.name, param.name)  # typer's own coercion, e.g. int with a minimum
                continue
            typers = build_runtime_param(param.type_descriptor)
            for value in PATHS if kind.__name__ == "Path" else PLAIN_VALUES[kind]:
                ours, theirs = plain.coerce(value, param, ctx), typers.coerce(value, param, ctx)
                assert (type(ours), ours) == (type(theirs), theirs), (command.name, param.name, value)
                checked += 1
    assert checked > 300
