"""`-n auto` (pyproject.toml): pytest-xdist's count of workers for the whole suite, none for one test file."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from conftest import ROOT, pytest_xdist_auto_num_workers


def config(*args: str, cwd=ROOT):
    return SimpleNamespace(args=list(args), invocation_params=SimpleNamespace(dir=cwd))


@pytest.mark.parametrize(
    "args",
    [["tests/unit/test_metrics.py"], ["tests/unit/test_metrics.py::test_x", "tests/unit/test_metrics.py::test_y"]],
    ids=["file", "two-tests-of-one-file"],
)
def test_one_test_file_runs_without_workers(args):
    assert pytest_xdist_auto_num_workers(config(*args)) == 0


def test_a_file_named_from_another_folder_is_found_from_there():
    assert pytest_xdist_auto_num_workers(config("unit/test_metrics.py", cwd=ROOT / "tests")) == 0


@pytest.mark.parametrize(
    "args",
    [[], ["tests"], ["tests/cli"], ["tests/unit/test_metrics.py", "tests/unit/test_seeds.py"], ["tests/unit/no_such_file.py"]],
    ids=["no-arguments", "tests", "a-folder", "two-files", "a-missing-file"],
)
def test_anything_more_is_left_to_pytest_xdist(args):
    assert pytest_xdist_auto_num_workers(config(*args)) is None
