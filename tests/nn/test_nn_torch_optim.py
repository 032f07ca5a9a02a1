"""Parity with PyTorch 2.13: optimizer trajectories and schedule values recorded by
tools/make_fixtures_optim.py in tests/fixtures/optim/ (torch itself is never imported here)."""

import json
from pathlib import Path

import numpy as np
import pytest

from bptrain.nn.losses import LOSSES
from bptrain.nn.model import build_model
from bptrain.nn.optimizers import OPTIMIZERS
from bptrain.nn.options import REQUIRED
from bptrain.nn.schedules import SCHEDULES

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "optim"
OPT_INDEX = json.loads((FIXTURES / "optimizers.json").read_text(encoding="utf-8"))
SCHED_INDEX = json.loads((FIXTURES / "schedules.json").read_text(encoding="utf-8"))
OPT_CASES = {case["id"]: case for case in OPT_INDEX["cases"]}
SCHED_CASES = {case["id"]: case for case in SCHED_INDEX["cases"]}
TORCH_TO_OURS = {"0.weight": "layers.0.W", "0.bias": "layers.0.b", "2.weight": "layers.2.W", "2.bias": "layers.2.b"}


@pytest.fixture(scope="module")
def recorded():
    with np.load(FIXTURES / "optimizers.npz", allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def ours(torch_value: np.ndarray) -> np.ndarray:
    """One weight or bias in our layout: torch's Linear weight is (out, in), our Dense W (in, out)."""
    return torch_value.T if torch_value.ndim == 2 else torch_value


def our_options(options: dict) -> dict:
    return {k: tuple(v) if k == "betas" else v for k, v in options.items()}


# --- the fixtures cover every registered optimizer, schedule and option -------------------------


def test_every_registered_optimizer_has_a_fixture_and_no_fixture_is_stale():
    assert {case["optimizer"] for case in OPT_CASES.values()} == set(OPTIMIZERS)


def test_every_registered_schedule_has_a_fixture_and_no_fixture_is_stale():
    assert {case["schedule"] for case in SCHED_CASES.values()} == set(SCHEDULES)


def schedule_defaults(name: str) -> dict:
    declared = SCHEDULES[name].declaration.defaults
    return {key: value for key, value in declared.items() if value is not REQUIRED}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_option_is_moved_off_its_default_in_some_fixture(name):
    moved = {
        key
        for case in OPT_CASES.values()
        if case["optimizer"] == name
        for key, value in our_options(case["options"]).items()
        if value != OPTIMIZERS[name].defaults[key]
    }
    assert moved == set(OPTIMIZERS[name].defaults)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_every_schedule_option_is_moved_off_its_default_in_some_fixture(name):
    moved = {
        key
        for case in SCHED_CASES.values()
        if case["schedule"] == name
        for key, value in case["options"].items()
        if value != schedule_defaults(name).get(key, object())
    }
    assert set(schedule_defaults(name)) <= moved


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_default_lr_and_option_defaults_are_torchs(name):
    torch_defaults = OPT_INDEX["torch_defaults"][name]
    cls = OPTIMIZERS[name]
    assert cls.default_lr == torch_defaults["lr"] and type(cls.default_lr) is float
    for key, value in cls.defaults.items():  # torch's extras (maximize, foreach, ...) are not ours
        assert (list(value) if isinstance(value, tuple) else value) == torch_defaults[key], key


def test_reduce_on_plateau_defaults_are_torchs():
    assert schedule_defaults("reduce_on_plateau") == SCHED_INDEX["torch_defaults"]["reduce_on_plateau"]


# --- optimizers: 50 steps of a 4 -> 8 tanh -> 3 network, every weight after every step ----------


@pytest.mark.parametrize("case_id", sorted(OPT_CASES))
def test_optimizer_trajectory_matches_torch(case_id, recorded):
    case = OPT_CASES[case_id]
    x, y = recorded["data.x"], recorded["data.y"]
    model = build_model(
        [{"units": 8, "activation": "tanh", "init": "auto"}], 4, 3,
        dtype="float64", rng=np.random.default_rng(0), batch_size=OPT_INDEX["batch_size"],
    )
    model.load_state_dict({ours_name: ours(recorded[f"init.{key}"]) for key, ours_name in TORCH_TO_OURS.items()})
    loss = LOSSES["cross_entropy"]()
    opt = OPTIMIZERS[case["optimizer"]](model.params, **our_options(case["options"]))
    lrs, losses = recorded[f"{case_id}:lr"], recorded[f"{case_id}:loss"]
    assert len(lrs) == OPT_INDEX["steps"] == 50
    for k, lr in enumerate(lrs):
        value, grad = loss(model.forward(x[k % 2]), y[k % 2])
        model.backward(grad)
        opt.step(float(lr))
        np.testing.assert_allclose(value, losses[k], rtol=1e-6, err_msg=f"{case_id}: loss at step {k + 1}")
        state = model.state_dict()
        for key, ours_name in TORCH_TO_OURS.items():
            # rtol 1e-6 as asked; the atol only matters for a weight passing through 0, where
            # float64 rounding differences (~1e-16 per op, 50 steps) are not small relative to it.
            np.testing.assert_allclose(
                state[ours_name], ours(recorded[f"{case_id}:{key}"][k + 1]), rtol=1e-6, atol=1e-12,
                err_msg=f"{case_id}: {ours_name} after step {k + 1}",
            )


# --- schedules: 50 learning rates -----------------------------------------------------------------


@pytest.mark.parametrize("case_id", sorted(SCHED_CASES))
def test_schedule_matches_torch(case_id):
    case = SCHED_CASES[case_id]
    expected = case["values"]
    assert len(expected) == SCHED_INDEX["steps"] == 50
    rule = SCHEDULES[case["schedule"]]
    if getattr(rule, "stateful", False):
        plateau = rule(case["lr"], **case["options"])
        got = []
        for value in case["metric"]:
            got.append(plateau.lr)
            assert plateau.step(value) == plateau.lr
    else:
        got = [rule(t, lr=case["lr"], **case["options"]) for t in range(len(expected))]
    assert all(type(v) is float for v in got)
    # torch updates most schedules recursively (lr_t from lr_{t-1}); ours are closed forms, so the
    # two differ by float64 rounding only. atol covers values that torch reaches as ~1e-18 for 0.
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
