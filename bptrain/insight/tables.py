"""The text forms of runs, compare and explain: aligned plain-text tables (a rich table for `runs` on a terminal)."""

from __future__ import annotations

import json
from typing import Any

from bptrain.insight.compare import letters as run_letters
from bptrain.runs import report
from bptrain.runs.report import finite_or_none, number

RUNS_HEADER = ("name", "kind", "date", "task", "stopped", "epochs", "metric", "val", "test")


def cell(value: Any) -> str:
    return report.cell(value, "-")  # plain ASCII: the tables go to terminals and pipes


def aligned(header: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> list[str]:
    """Rows of cells padded into columns two spaces apart; columns in `right` aligned right."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return lines


def runs_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    keys = ("name", "kind", "date", "task", "stop_reason", "epochs", "metric", "val", "test")
    return [[cell(r[k]) for k in keys] for r in rows]


def runs_text(rows: list[dict[str, Any]]) -> str:
    return "\n".join(aligned(list(RUNS_HEADER), runs_rows(rows), right={5, 7, 8}))


def runs_rich(rows: list[dict[str, Any]], title: str) -> None:
    """The table through rich, sized to the terminal."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for i, name in enumerate(RUNS_HEADER):
        table.add_column(name, justify="right" if i in (5, 7, 8) else "left", no_wrap=i == 0)
    for row in runs_rows(rows):
        table.add_row(*row)
    Console().print(table)


def runs_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(finite_or_none(rows), indent=2, allow_nan=False)


def compare_text(result: dict[str, Any]) -> str:
    names = result["runs"]
    letters = run_letters(len(names))
    lines = ["runs"] + [f"  {letter}  {path}" for letter, path in zip(letters, result["runs"])]
    config = result["config"]
    lines += ["", f"config: {len(config)} key{'s' if len(config) != 1 else ''} differ" if config else "config: the same in every key"]
    if config:
        absent = result.get("absent", {})
        rows = [[k, *(ABSENT if k in absent and absent[k][i] else _value(v) for i, v in enumerate(vs))] for k, vs in config.items()]
        lines += ["  " + line for line in aligned(["key", *letters], rows)]
    outcome = [[k, *(cell(v) for v in vs)] for k, vs in result["outcome"].items()]
    lines += ["", "outcome"] + ["  " + line for line in aligned(["", *letters], outcome, right=set(range(1, len(names) + 1)))]
    for split, values in result["metrics"].items():
        table = [[k, *(cell(v) for v in vs)] for k, vs in values.items()]
        lines += ["", f"{split} metrics"] + ["  " + line for line in aligned(["", *letters], table, right=set(range(1, len(names) + 1)))]
    lines += ["", f"figure   {result['figure']}"]
    return "\n".join(lines)


ABSENT = "(absent)"  # compare: a key the run's config does not have


def _value(value: Any) -> str:
    """A config value as YAML shows it: null, true, numbers and text; mappings and lists in YAML's flow style."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return str(value)


def importance_text(result: dict[str, Any]) -> str:
    metric = result["metric"]
    header = ["column", "loss increase", "± std", f"{metric} drop", "± std"]
    rows = [
        [c["column"], *(number(c[k]) for k in ("loss_increase", "loss_increase_std", metric + "_drop", metric + "_drop_std"))]
        for c in result["columns"]
    ]
    base = result["baseline"]
    lines = [
        f"permutation importance on the {result['rows']} rows ({result['row_count']}) of {result['run']}, "
        f"{result['repeats']} repeats, seed {result['seed']}",
        f"baseline: loss {cell(base['loss'])}, {metric} {cell(base[metric])}; each column shuffled in turn, most important first",
        "",
    ]
    return "\n".join(lines + aligned(header, rows, right={1, 2, 3, 4}))
