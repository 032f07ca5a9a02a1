"""The memory estimate: where the limit comes from, which key a cost is charged to, and the refusal."""

import pytest

from bptrain.data.columns import Column
from bptrain.errors import ConfigError
from bptrain.training import memory

GIB = 2**30


def test_a_cgroup_limit_below_the_physical_memory_is_the_limit(tmp_path):
    (tmp_path / "memory.max").write_text("1073741824\n")
    assert memory.available(tmp_path / "memory.max") == (GIB, "the memory limit (cgroup) is")


@pytest.mark.parametrize("text", ["max\n", None])
def test_no_cgroup_limit_leaves_the_physical_memory(tmp_path, text):
    if text is not None:
        (tmp_path / "memory.max").write_text(text)
    nbytes, who = memory.available(tmp_path / "memory.max")
    assert who in ("this machine has", "the address-space limit (ulimit -v) is") and nbytes > GIB


def test_each_dense_layer_is_charged_for_its_parameters_and_activations():
    costs = memory.network_costs([{"type": "dense", "units": 10}, {"type": "dropout", "p": 0.5}, {"type": "dense", "units": 3}], 4, 2, 8, 4)
    per_param, per_activation = memory.PARAMETER_COPIES * 4, memory.ACTIVATION_COPIES * 4
    first = (5 * 10) * per_param + 8 * (4 + 10) * per_activation
    second = (11 * 3) * per_param + 8 * (10 + 3) * per_activation  # 10 inputs, 3 units: the 10 of layers[0] make it big
    output = (4 * 2) * per_param + 8 * (3 + 2) * per_activation
    assert [(c.key, c.nbytes) for c in costs] == [("model.layers[0].units", first + second), ("model.layers[2].units", output)]


def test_a_wide_layer_is_charged_for_the_next_layers_weights_too():
    """The weight matrix after a wide layer is as big as the wide layer, so its key is the one to
    lower; a layer wider than the one before is charged to itself."""
    costs = memory.network_costs([{"units": 16}, {"units": 100_000}, {"units": 16}, {"units": 32}], 4, 3, 1, 4)
    assert [c.key for c in costs] == ["model.layers[0].units", "model.layers[1].units", "model.layers[3].units"]
    assert costs[1].nbytes == memory._dense(16, 100_000, 1, 4) + memory._dense(100_000, 16, 1, 4)
    assert costs[2].nbytes == memory._dense(16, 32, 1, 4) + memory._dense(32, 3, 1, 4)


def test_an_output_wider_than_the_last_layer_is_charged_to_the_target():
    costs = memory.network_costs([{"type": "dense", "units": 4}], 3, 1000, 1, 8)
    assert [c.key for c in costs] == ["model.layers[0].units", "data.target"]


def categorical(name: str, n: int) -> Column:
    return Column(name, "categorical", "str", "error", "missing", "none", False, n, categories=[str(i) for i in range(n)])


def test_a_categorical_column_is_charged_to_the_key_that_sets_its_max_categories():
    columns = [categorical("a", 5), categorical("b", 7), Column("n", "numeric", "float64", "error", 0.0, "standard", False)]
    costs = memory.input_costs(columns, {"train": 10, "val": 2}, 4, own_max={"b"})
    per_input = 12 * 4 + 10 * 8 * memory.ENCODING_COPIES
    assert [(c.key, c.nbytes) for c in costs] == [
        ("data.categorical.max_categories", 5 * per_input),
        ("data.columns.b.max_categories", 7 * per_input),
        ("data.train", 1 * per_input),
    ]


def test_the_largest_cost_is_named_when_the_total_does_not_fit(tmp_path):
    (tmp_path / "memory.max").write_text(str(GIB))
    costs = [memory.Cost("model.layers[0].units", "64 units need", "use fewer units", GIB // 2), memory.Cost("data.train", "x need", "y", GIB)]
    with pytest.raises(ConfigError) as info:
        memory.check_fits(costs, tmp_path / "memory.max")
    assert str(info.value) == "data.train: x need ~1.0 GiB of memory to train, and the whole training ~1.5 GiB, but the memory limit (cgroup) is 1.0 GiB; y"
    memory.check_fits(costs[:1], tmp_path / "memory.max")  # half the limit fits
