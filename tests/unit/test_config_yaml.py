"""Reading config YAML: the C loader, duplicate keys, the size and nesting caps, the same rules for --set."""

import os
import threading
import time
from pathlib import Path

import pytest
import yaml

from bptrain.config.loading import load_config, parse_overrides, validate_config
from bptrain.config.yamlfile import MAX_BYTES, MAX_DEPTH, StrictLoader, parse_yaml
from bptrain.errors import ConfigError
from conftest import ALIAS_BOMB, cpu_capped

MINIMAL = "data: {train: x.csv, target: y}\n"


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_c_loader_is_used_when_libyaml_is_installed():
    assert yaml.__with_libyaml__, "the test environment installs PyYAML with libyaml"
    assert issubclass(StrictLoader, yaml.CSafeLoader)


@pytest.mark.parametrize(
    "text, message",
    [
        (MINIMAL + "optimizer:\n  lr: 0.1\n  lr: 0.2\n", "c.yaml: line 4: duplicate key 'lr' (first on line 3); give each key once"),
        (MINIMAL + "seed: 1\nseed: 2\n", "c.yaml: line 3: duplicate key 'seed' (first on line 2); give each key once"),
        ("data: {train: x.csv, target: y, target: z}\n", "c.yaml: line 1: duplicate key 'target' (first on line 1); give each key once"),
    ],
    ids=["block", "top-level", "flow"],
)
def test_duplicate_keys_are_refused_with_both_lines(tmp_path, text, message):
    assert error_of(write(tmp_path, text)) == str(tmp_path / message)


def test_merge_keys_may_be_overridden(tmp_path):
    text = "base: &b {lr: 0.1, name: sgd}\n"
    assert parse_yaml(text + "opt: {<<: *b, lr: 0.5}\n", "x") == {"base": {"lr": 0.1, "name": "sgd"}, "opt": {"lr": 0.5, "name": "sgd"}}


@pytest.mark.parametrize(
    "style, depth",
    # flow 5000 passes libyaml's own limit (1000) first; block 900 is near the largest that fits in 1 MB
    [("flow", MAX_DEPTH + 1), ("flow", 500), ("flow", 5000), ("block", MAX_DEPTH + 1), ("block", 900)],
)
def test_deep_nesting_is_refused_without_recursion(tmp_path, depth, style):
    if style == "flow":
        text, line = "data: " + "[" * depth + "]" * depth + "\n", 1
    else:
        text = "".join("  " * i + f"k{i}:\n" for i in range(depth)) + "  " * depth + "1\n"
        line = MAX_DEPTH + 1
    assert error_of(write(tmp_path, text)) == f"{tmp_path / 'c.yaml'}: line {line}: nested more than 50 levels deep; a config needs a handful of levels"


def test_nesting_up_to_the_cap_is_read(tmp_path):
    text = "x: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n"
    assert parse_yaml(text, "x")["x"] is not None


def test_a_file_over_the_size_cap_is_refused_before_parsing(tmp_path):
    path = write(tmp_path, MINIMAL + "# " + "x" * MAX_BYTES + "\n")
    assert error_of(path) == f"{path}: larger than 1 MB, too large for a config file (a config is a few KB of YAML); check that this is the config and not a data file"


def test_an_endless_stream_ends_at_the_cap():
    started = time.monotonic()
    assert error_of(Path("/dev/zero")).startswith("/dev/zero: larger than 1 MB, too large for a config file")
    assert time.monotonic() - started < 10


def test_a_fifo_fed_forever_ends_at_the_cap(tmp_path):
    fifo = tmp_path / "config.fifo"
    os.mkfifo(fifo)
    stop = threading.Event()

    def feed() -> None:
        try:
            with open(fifo, "w") as f:
                while not stop.is_set():
                    f.write("# padding\n" * 1000)
        except BrokenPipeError:
            pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        assert error_of(fifo).startswith(f"{fifo}: larger than 1 MB")
    finally:
        stop.set()


def test_a_control_character_is_reported_at_its_line_and_column(tmp_path):
    # libyaml reports it without a mark, which used to print `c.yaml:: YAML syntax error`
    path = write(tmp_path, MINIMAL + "name: a\x01b\n")
    assert error_of(path) == f"{path}: line 2, column 8: YAML syntax error: character U+0001 is not allowed (control characters are not allowed)"


def test_an_undefined_alias_is_a_syntax_error_at_its_position():
    with pytest.raises(ConfigError) as info:
        parse_yaml("a: *nowhere\n", "c.yaml")
    assert str(info.value) == "c.yaml: line 1, column 4: YAML syntax error: found undefined alias"


@pytest.mark.parametrize(
    "section, message",
    [
        (f"data: {{train: x.csv, target: {ALIAS_BOMB}}}", "data.target: must be a column name, or a list of column names for several targets (got [['x', 'x', 'x', 'x', ...], [[...], [...], [...], [...], ...],"),
        (f"data: {{train: x.csv, target: y, columns: {{a: {{fill_value: {ALIAS_BOMB}}}}}}}", "data.columns.a.fill_value: must be a number or a text value (got [['x', 'x', 'x', 'x', ...],"),
        (f"optimizer: {{name: {ALIAS_BOMB}}}", "optimizer: must be an optimizer name or a mapping with its name; choose from"),
        (f"loss: {{name: {ALIAS_BOMB}}}", "loss: must be a loss name or a mapping with its name; choose from"),
        (f"schedule: {{name: {ALIAS_BOMB}}}", "schedule: must be a schedule name or a mapping with its name; choose from"),
        (f"model: {{layers: [{{type: {ALIAS_BOMB}}}]}}", "model.layers[0]: must be a number of units, a layer type name or a mapping with its type; choose from"),
        (f"model: {{layers: [{{units: 4, activation: {{name: {ALIAS_BOMB}}}}}]}}", "model.layers[0].activation: must be an activation name or a mapping with its name; choose from"),
    ],
    ids=["target", "fill-value", "optimizer", "loss", "schedule", "layer", "activation"],
)
def test_an_alias_bomb_past_the_loader_is_refused_without_being_written_out(section, message):
    # the bomb stands for 10**9 values: repr() or str() of it, in a message or to look up a name, wrote
    # them all out; the loader refuses it first (below), and these guard whatever reaches validation
    text = section if section.startswith("data:") else MINIMAL + section
    with cpu_capped(), pytest.raises(ConfigError) as info:
        validate_config(yaml.load(text, Loader=StrictLoader), Path("c.yaml"))  # noqa: S506 (a safe loader)
    assert message in str(info.value)


BOMB_MESSAGE = "its aliases (*name) expand to more than 1,000,000 values; a config holds a few hundred. Repeat what an anchor (&name) holds fewer times"
ENDLESS_MESSAGE = "an alias (*name) inside what its anchor (&name) holds makes a value that holds itself, without end; move the alias out of it"


@pytest.mark.parametrize(
    "text, message",
    [
        (f"data: {{train: x.csv, target: {ALIAS_BOMB}}}", BOMB_MESSAGE),
        (f"{MINIMAL}tune: {{space: {{optimizer.lr: {ALIAS_BOMB}}}}}", BOMB_MESSAGE),
        ("data: {train: x.csv, target: &a [y, *a]}", ENDLESS_MESSAGE),
        (f"{MINIMAL}optimizer: &o {{name: adam, lr: {{x: *o}}}}", ENDLESS_MESSAGE),
    ],
    ids=["bomb", "bomb-in-tune", "endless-list", "endless-mapping"],
)
def test_the_loader_refuses_aliases_that_expand_past_what_a_file_could_hold(tmp_path, text, message):
    path = write(tmp_path, text + "\n")
    with cpu_capped():
        assert error_of(path) == f"{path}: {message}"


@pytest.mark.parametrize("value, message", [(ALIAS_BOMB, BOMB_MESSAGE), ("&a [y, *a]", ENDLESS_MESSAGE)], ids=["bomb", "endless"])
def test_set_values_get_the_same_cap_on_aliases(value, message):
    with cpu_capped(), pytest.raises(ConfigError) as info:
        parse_overrides([f"data.target={value}"])
    assert str(info.value) == f"--set data.target: {message}"


def test_aliases_within_the_cap_are_read_with_every_value():
    five_levels = "[" + ", ".join(["&a0 [x, x, x, x, x, x, x, x, x, x]"] + [f"&a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 5)]) + "]"
    data = parse_yaml(f"a: {five_levels}\nb: *a4\n", "c.yaml")  # 111,111 values in "a" and 111,110 in b: below 1,000,000
    assert data["b"] is data["a"][4] and len(data["a"][4]) == 10 and data["a"][4][9][9][9][9] == ["x"] * 10


@pytest.mark.parametrize(
    "text, message",
    [
        ("a: !!set abc\n", "line 1, column 4: YAML syntax error: expected a mapping node, but found scalar"),
        ("!!set  train:!!set  }!!omapdata:!!set", "line 1, column 1: YAML syntax error: expected a mapping node, but found scalar"),
        ("a: {!!omap x: 1}\n", "line 1, column 5: YAML syntax error: found unhashable key"),
        ("!!omap  train:]  train:", "line 1, column 1: YAML syntax error: found unhashable key"),
    ],
    ids=["set-of-a-scalar", "set-fuzzed", "omap-key", "omap-key-fuzzed"],
)
def test_a_collection_tag_on_a_scalar_is_a_syntax_error_at_its_position(text, message):
    # the duplicate-key check took such a node for a mapping, or such a key for a hashable value
    with pytest.raises(ConfigError) as info:
        parse_yaml(text, "c.yaml")
    assert str(info.value) == f"c.yaml: {message}"


@pytest.mark.parametrize(
    "item, message",
    [
        ("optimizer={name: sgd, name: adam}", "--set optimizer: line 1: duplicate key 'name' (first on line 1); give each key once"),
        ("model.layers=" + "[" * 600 + "]" * 600, "--set model.layers: line 1: nested more than 50 levels deep; a config needs a handful of levels"),
    ],
    ids=["duplicate", "deep"],
)
def test_set_values_follow_the_same_rules(item, message):
    with pytest.raises(ConfigError) as info:
        parse_overrides([item])
    assert str(info.value) == message


def test_set_values_that_are_not_yaml_stay_text():
    assert parse_overrides(["name=a: b: c", "data.target=[x"]) == {"name": "a: b: c", "data.target": "[x"}
