"""README.md's component tables are the ones the declarations in bptrain.nn generate."""

import subprocess
import sys

import pytest

from bptrain.config import reference
from conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("kind", sorted(reference.REGISTRIES))
def test_the_readme_table_is_generated_from_the_declarations(kind):
    marked = f"<!-- generated: {kind} -->\n"
    assert marked in README, f"README.md has no {kind} table between its markers"
    assert kind not in reference.stale(README), f"README.md: the {kind} table is stale; run `{reference.COMMAND}`"


def test_a_changed_table_is_found_and_named():
    edited = README.replace("| `sgd` | | | |", "| `sgd` | | | | (edited)", 1)
    assert reference.stale(edited) == ["optimizers"]
    assert reference.stale(reference.rewritten(edited)) == []


def test_every_option_of_every_component_has_a_row():
    table = reference.table(reference.REGISTRIES["optimizers"])
    for member in reference.REGISTRIES["optimizers"].values():
        for option in member.declaration.options:
            assert f"| | `{option.key}` |" in table


def test_check_names_the_stale_table_and_the_command(tmp_path, monkeypatch):
    stale = tmp_path / "README.md"
    stale.write_text(README.replace("| `relu` | | | |", "| `relu` | | | | x", 1), encoding="utf-8")
    code = f"import sys; from bptrain.config import reference; reference.README = reference.Path({str(stale)!r}); sys.exit(reference.main(['--check']))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr == "README.md: the activations table is stale; run `python -m bptrain.config.reference --write`\n"


def test_the_resume_paragraph_names_every_key_that_may_change():
    from bptrain.runs.resuming import BUDGET_KEYS

    start = README.index("- **Resume.**")
    paragraph = README[start : README.index("\n\n", start)]
    for key in BUDGET_KEYS:
        shown = f"`{key}.*`" if key in ("training.checkpoint", "report", "tracking") else f"`{key}`"
        assert shown in paragraph or f"`--set {key}=" in paragraph, f"README's Resume paragraph does not name {key}"
