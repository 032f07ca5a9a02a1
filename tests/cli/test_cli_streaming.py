"""`bptrain predict` streams: 2 GiB through a pipe with flat memory, and the same output as a small file."""

import subprocess
import sys
import textwrap

import pytest

from bptrain.inference import INFERENCE_ROWS
from conftest import ROOT, call_cli, fit_iris, run_cli

GIB = 1 << 30
PEAK_RSS_BOUND_MB = 400  # measured 189-193 MB (README: "Streaming predict")

GENERATE = textwrap.dedent(
    """
    import sys
    rows = open(sys.argv[1]).read().splitlines()
    note = "x" * 900  # an extra text column, ignored by the model
    block = "".join(f"{r},{note}\\n" for r in rows[1:]).encode() * 200
    out = sys.stdout.buffer
    out.write((rows[0] + ",note\\n").encode())
    written = 0
    while written < int(sys.argv[2]):
        out.write(block)
        written += len(block)
    """
)

MEASURE = textwrap.dedent(
    """
    import resource, subprocess, sys
    generate = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2], sys.argv[3]], stdout=subprocess.PIPE)
    predict = subprocess.Popen([sys.executable, "-m", "bptrain", "predict", sys.argv[4], "-"],
                               stdin=generate.stdout, stdout=subprocess.PIPE)
    generate.stdout.close()
    lines = 0
    for block in iter(lambda: predict.stdout.read(1 << 20), b""):
        lines += block.count(b"\\n")
    print(predict.wait(), generate.wait(), lines, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
    """
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return fit_iris(tmp_path_factory.mktemp("runs"), 3)


def test_two_gib_through_a_pipe_with_flat_memory(run):
    iris = ROOT / "datasets" / "iris.csv"
    env_root = {"PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, GENERATE, str(iris), str(2 * GIB), str(run)],
        capture_output=True, text=True, timeout=900, env={**__import__("os").environ, **env_root},
    )
    assert done.returncode == 0, done.stderr
    predict_code, generate_code, lines, peak_mb = map(int, done.stdout.split())
    assert (predict_code, generate_code) == (0, 0), done.stderr
    row_bytes = sum(len(r) + 1 + 901 for r in iris.read_text().splitlines()[1:]) * 200
    blocks = -(-2 * GIB // row_bytes)
    assert lines == 1 + blocks * 150 * 200  # the header and one prediction per input row
    assert peak_mb < PEAK_RSS_BOUND_MB, f"peak RSS {peak_mb} MB"


def test_streamed_output_equals_the_output_for_each_part(run, tmp_path):
    """A row's prediction depends on its values and its row number only, not on where the 4 MB blocks
    fall nor on the other rows (README: "Reproducibility"): a big file's output equals, bit for bit,
    the outputs of its parts, each starting at a multiple of INFERENCE_ROWS rows, concatenated."""
    header, *rows = (ROOT / "datasets" / "iris.csv").read_text().splitlines()
    body = rows * 2000  # 300,000 rows, about 8 MB: blocks end near rows 155,000 and 310,000
    big = tmp_path / "big.csv"
    big.write_text(header + "\n" + "\n".join(body) + "\n")
    cuts = [0, INFERENCE_ROWS, 7 * INFERENCE_ROWS, 650 * INFERENCE_ROWS, len(body)]  # the third part holds a block end too
    parts = []
    for start, stop in zip(cuts, cuts[1:]):
        part = tmp_path / f"part-{start}.csv"
        part.write_text(header + "\n" + "\n".join(body[start:stop]) + "\n")
        result = call_cli("predict", run, part, "--proba", "--keep", "species")
        assert result.returncode == 0, result.stderr
        parts += result.stdout.splitlines()[1:]
    whole = call_cli("predict", run, big, "--proba", "--keep", "species")
    assert whole.returncode == 0, whole.stderr
    assert whole.stdout.splitlines()[0] == "species,prediction,proba_setosa,proba_versicolor,proba_virginica"
    assert whole.stdout.splitlines()[1:] == parts and len(parts) == len(body)


def test_predictions_do_not_depend_on_the_blas_thread_count(run):
    threads = {n: run_cli("predict", run, ROOT / "datasets" / "iris.csv", "--proba", env={"OPENBLAS_NUM_THREADS": n, "OMP_NUM_THREADS": n}) for n in ("1", "2")}
    assert threads["1"].returncode == threads["2"].returncode == 0
    assert threads["1"].stdout == threads["2"].stdout and threads["1"].stdout.count("\n") == 151
