"""The corpus of bad input in tests/data/bad/: each file's pinned outcome under `bptrain check`.

Every case is one line on stderr and its documented exit code, never a traceback; the files that
are read successfully (auto-detected delimiter, byte-order mark, Windows line ends, another
encoding when it is set) give exactly the summary of the clean file.

The corpus runs through the CLI's entry point in this process (call_cli); `bptrain fit` on a file of
it, which must agree with `check`, runs as a real process.
"""

from __future__ import annotations

import pytest

from conftest import ROOT, call_cli, run_cli, write

BAD = ROOT / "tests" / "data" / "bad"
OK, DATA = 0, 3
MISSING_HINT = (
    "Choose how to handle them with data.numeric.missing, data.categorical.missing or data.columns.<name>.missing "
    "(drop, mean, median, most_frequent, constant), or leave the columns out with data.exclude"
)
CLEAN_SUMMARY = [
    "task       classification (target 'y', loss binary_cross_entropy)",
    "features   2: a, b",
    "rows       train 6, val 2, test 2",
    "classes    2: p, q",
]

# (file, extra keys of `data`, exit code, stderr lines with {path} for the file)
CASES = [
    ("empty.csv", "", DATA, ["error: {path}: the file is empty; a CSV file needs a header line and rows"]),
    ("header_only.csv", "", DATA, ["error: {path}: has a header but no rows"]),
    ("semicolons.csv", "", OK, []),
    (
        "semicolons.csv", ", read: {delimiter: ','}", DATA,
        ["error: {path}: target column 'y' not found. Columns: a;b;y. That is a single column: is the delimiter ';'? "
         "Set data.read.delimiter to it, or to auto"],
    ),
    ("ragged_long.csv", "", DATA, ["error: {path}: line 3 has 4 fields, but the header has 3; check the delimiter and the quoting on that line"]),
    (
        "ragged_short.csv", "", DATA,
        ["error: {path}: line 3 has 2 fields, but the header has 3; check the delimiter and the quoting on that line"],
    ),
    (
        "latin1.csv", "", DATA,
        ["error: {path}: not utf-8 text: byte 0xe9 on line 2 (invalid continuation byte); "
         "set data.read.encoding to the file's encoding, e.g. latin-1"],
    ),
    ("empty_column.csv", "", DATA, [f"error: {{path}}: missing values in feature columns: b (10 rows). {MISSING_HINT}"]),
    (
        "empty_column.csv", ", numeric: {missing: median}", DATA,
        ["error: {path}: column 'b' is empty in every training row; leave it out with data.exclude"],
    ),
    (
        "constant_column.csv", "", OK,
        ["warning: {path}: column 'b' has a single value in the training rows; it gives the network nothing to learn from"],
    ),
    (
        "single_class.csv", "", DATA,
        ["error: {path}: target column 'y' has only one class ('p') in the training rows; classification needs at least two"],
    ),
    ("target_missing.csv", "", DATA, ["error: {path}: target column 'y' has 2 missing values; remove those rows"]),
    ("one_row.csv", "", DATA, ["error: {path}: only 1 training row(s) left after the split; need more data"]),
    (
        "infinite.csv", "", DATA,
        ["error: {path}: column 'a' holds infinite values in row 2; replace them with numbers, or leave the cells empty to treat them as missing"],
    ),
    (
        "huge.csv", "", DATA,
        ["error: {path}: column 'a': values too large to scale (up to 1e+308); rescale the column, e.g. divide it by a power of ten"],
    ),
    ("duplicate_columns.csv", "", DATA, ["error: {path}: duplicate column names: a. Rename them so each is unique"]),
    ("bom.csv", "", OK, []),
    ("crlf.csv", "", OK, []),
    (
        "text_in_numbers.csv", "", DATA,
        ["error: {path}: column 'b' must be numeric, but row 5 holds text: '?'. Leave missing values as empty cells, "
         "or set data.columns.b.kind: categorical"],
    ),
    (
        "bad_split_column.csv", ", split: {column: part}", DATA,
        ["error: {path}: split column 'part' must hold train, val or test; found 'validation' in rows 3, 8"],
    ),
]


IDS = [f"{c[0]}{'+' if c[1] else ''}" for c in CASES]


def check(folder, name: str, extra: str, command: str = "check", cli=call_cli):
    folder.mkdir(parents=True, exist_ok=True)
    write(folder, f"seed: 0\ndata: {{train: {BAD / name}, target: y{extra}}}\n")
    args = ("--runs-dir", folder / "runs", "-q", "--set", "stopping.max_epochs=2") if command == "fit" else ()
    return cli(command, "config.yaml", *args, cwd=folder)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """`bptrain check` on every case."""
    root = tmp_path_factory.mktemp("bad")
    return {key: check(root / str(i), name, extra) for i, (key, (name, extra, _, _)) in enumerate(zip(IDS, CASES))}


@pytest.mark.parametrize("name, extra, code, stderr", CASES, ids=IDS)
def test_bad_input_has_its_pinned_outcome(outcomes, request, name, extra, code, stderr):
    result = outcomes[request.node.callspec.id]
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr == "".join(line.format(path=BAD / name) + "\n" for line in stderr)
    if code == OK:
        assert result.stdout.splitlines()[1:5] == CLEAN_SUMMARY
    else:
        assert result.stdout == ""


def test_every_file_of_the_corpus_has_a_case():
    assert {p.name for p in BAD.glob("*.csv")} == {c[0] for c in CASES}


def test_another_encoding_reads_when_it_is_set(tmp_path):
    result = check(tmp_path, "latin1.csv", ", read: {encoding: latin-1}")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines()[4] == "classes    2: café, thé"


@pytest.mark.parametrize("name", ["empty.csv", "constant_column.csv"])
def test_fit_gives_the_same_outcome_as_check(tmp_path, name):
    (_, extra, code, stderr), = [c for c in CASES if c[0] == name]
    result = check(tmp_path, name, extra, command="fit", cli=run_cli)
    assert result.returncode == code
    assert result.stderr == "".join(line.format(path=BAD / name) + "\n" for line in stderr)
    assert len(list((tmp_path / "runs").glob("*"))) == (1 if code == OK else 0)
