#!/usr/bin/env python
"""Record PyTorch's optimizers and learning-rate schedulers as plain fixtures for bptrain's parity tests.

Lion, which torch lacks, is recorded from a torch.optim.Optimizer written here from its paper's rule.

Writes, under tests/fixtures/optim/ (or --out DIR):

* optimizers.json -- the cases (id, optimizer, options, file keys), the step count, torch's version
  and torch's default lr and options for every optimizer bptrain registers.
* optimizers.npz  -- the data batches, the initial weights, and per case the lr of every step, the
  loss at every step and the weights before the first and after every step, in torch's layout
  (Linear weight is (out, in)) and names ("0.weight", "0.bias", "2.weight", "2.bias").
* schedules.json  -- per case the schedule, its options, the base lr, 50 learning rates from the
  torch scheduler, and for reduce_on_plateau the scripted metric fed after each epoch; plus torch
  ReduceLROnPlateau's defaults.

The network is Linear(4, 8) -> Tanh -> Linear(8, 3) with mean softmax cross-entropy, in float64,
trained for 50 steps on two fixed batches of 12 rows, used alternately, from the same initial
weights; the lr changes every step (base * (1 - k / 100)), so a rule that ignores step(lr) fails.

torch is needed only here, never by bptrain or its tests:

    python tools/make_fixtures_optim.py           # (re)write tests/fixtures/optim/
    python tools/make_fixtures_optim.py --check   # regenerate in a temp dir; exit 1 if anything differs
    python tools/make_fixtures_optim.py --out DIR # write somewhere else
    python tools/make_fixtures_optim.py --only lion  # rerun lion's cases; keep every other recorded array
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.optim import lr_scheduler as sched

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "optim"

STEPS = 50
BATCH = 12
N_IN, HIDDEN, N_OUT = 4, 8, 3
SEED = 20260601

class Lion(torch.optim.Optimizer):
    """Lion as Chen et al. (2023), "Symbolic Discovery of Optimization Algorithms", Algorithm 2 writes it
    (torch has none): c = b1 m + (1 - b1) g; p *= 1 - lr wd; p -= lr sign(c); m = b2 m + (1 - b2) g.
    Defaults are those of the paper's reference implementation."""

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, foreach=None):
        super().__init__(params, {"lr": lr, "betas": betas, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, (beta1, beta2), weight_decay = group["lr"], group["betas"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["exp_avg"] = torch.zeros_like(p)
                m = state["exp_avg"]
                p.mul_(1.0 - lr * weight_decay)
                c = m.mul(beta1).add_(p.grad, alpha=1.0 - beta1)
                p.add_(c.sign_(), alpha=-lr)
                m.mul_(beta2).add_(p.grad, alpha=1.0 - beta2)


TORCH_OPTIMIZERS = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "nadam": torch.optim.NAdam,
    "adamax": torch.optim.Adamax,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
    "adadelta": torch.optim.Adadelta,
    "lion": Lion,  # written here from the paper's rule: torch has no Lion
}

# (case id, optimizer, options, base lr); each option of each optimizer is set away from its
# default in at least one case (the tests check that), and no two cases of one optimizer end within
# 1e-3 of each other (checked below), so each case tests something the others do not.
OPTIMIZER_CASES = [
    ("sgd-plain", "sgd", {}, 0.2),
    ("sgd-momentum", "sgd", {"momentum": 0.9}, 0.05),
    ("sgd-dampening", "sgd", {"momentum": 0.9, "dampening": 0.5}, 0.05),
    ("sgd-nesterov", "sgd", {"momentum": 0.9, "nesterov": True}, 0.05),
    ("sgd-weight_decay", "sgd", {"weight_decay": 0.05}, 0.2),
    ("sgd-nesterov-weight_decay", "sgd", {"momentum": 0.8, "nesterov": True, "weight_decay": 0.05}, 0.05),
    ("adam-plain", "adam", {}, 0.02),
    ("adam-amsgrad", "adam", {"amsgrad": True, "betas": [0.9, 0.9]}, 0.02),  # beta2 0.9: v falls, the max acts
    ("adam-weight_decay", "adam", {"weight_decay": 0.05}, 0.02),
    ("adam-custom", "adam", {"betas": [0.8, 0.95], "eps": 1e-4, "weight_decay": 0.01, "amsgrad": True}, 0.02),
    ("adamw-default", "adamw", {}, 0.02),
    ("adamw-amsgrad", "adamw", {"amsgrad": True, "betas": [0.9, 0.9]}, 0.02),
    ("adamw-custom", "adamw", {"betas": [0.8, 0.95], "eps": 1e-4, "weight_decay": 0.1}, 0.02),
    ("nadam-plain", "nadam", {}, 0.02),
    ("nadam-weight_decay", "nadam", {"weight_decay": 0.05}, 0.02),
    ("nadam-decoupled", "nadam", {"weight_decay": 0.05, "decoupled_weight_decay": True}, 0.02),
    ("nadam-custom", "nadam", {"betas": [0.8, 0.95], "eps": 1e-4, "momentum_decay": 0.02}, 0.02),
    ("adamax-plain", "adamax", {}, 0.02),
    ("adamax-weight_decay", "adamax", {"weight_decay": 0.05}, 0.02),
    ("adamax-custom", "adamax", {"betas": [0.8, 0.95], "eps": 1e-3}, 0.02),
    ("rmsprop-plain", "rmsprop", {}, 0.01),
    ("rmsprop-momentum", "rmsprop", {"momentum": 0.9}, 0.002),
    ("rmsprop-centered", "rmsprop", {"centered": True}, 0.01),
    ("rmsprop-centered-momentum", "rmsprop", {"centered": True, "momentum": 0.9}, 0.002),
    ("rmsprop-weight_decay", "rmsprop", {"weight_decay": 0.05}, 0.01),
    ("rmsprop-custom", "rmsprop", {"alpha": 0.9, "eps": 1e-4}, 0.01),
    ("adagrad-plain", "adagrad", {}, 0.1),
    ("adagrad-lr_decay", "adagrad", {"lr_decay": 0.05}, 0.1),
    ("adagrad-initial_accumulator_value", "adagrad", {"initial_accumulator_value": 0.1}, 0.1),
    ("adagrad-weight_decay", "adagrad", {"weight_decay": 0.05}, 0.1),
    ("adagrad-custom", "adagrad", {"eps": 1e-3}, 0.1),
    ("adadelta-plain", "adadelta", {}, 1.0),
    ("adadelta-weight_decay", "adadelta", {"weight_decay": 0.05}, 1.0),
    ("adadelta-custom", "adadelta", {"rho": 0.95, "eps": 1e-4}, 1.0),
    ("lion-plain", "lion", {}, 0.002),
    ("lion-betas", "lion", {"betas": [0.8, 0.95]}, 0.002),
    ("lion-weight_decay", "lion", {"weight_decay": 1.0}, 0.002),
]


def torch_options(options: dict) -> dict:
    return {k: tuple(v) if k == "betas" else v for k, v in options.items()}


def make_data(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Two batches, the initial weights (torch layout) and nothing else."""
    arrays = {
        "data.x": rng.standard_normal((2, BATCH, N_IN)),
        "data.y": rng.integers(0, N_OUT, (2, BATCH)).astype(np.int64),
    }
    for name, (fan_out, fan_in) in {"0": (HIDDEN, N_IN), "2": (N_OUT, HIDDEN)}.items():
        a = math.sqrt(6.0 / (fan_in + fan_out))
        arrays[f"init.{name}.weight"] = rng.uniform(-a, a, (fan_out, fan_in))
        arrays[f"init.{name}.bias"] = 0.1 * rng.standard_normal(fan_out)
    return arrays


def run_optimizer(case: tuple, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    case_id, name, options, base_lr = case
    net = torch.nn.Sequential(torch.nn.Linear(N_IN, HIDDEN), torch.nn.Tanh(), torch.nn.Linear(HIDDEN, N_OUT))
    with torch.no_grad():
        for key, value in net.state_dict().items():
            value.copy_(torch.from_numpy(data[f"init.{key}"]))
    opt = TORCH_OPTIMIZERS[name](net.parameters(), lr=base_lr, foreach=False, **torch_options(options))
    keys = list(net.state_dict())
    snapshots = {key: [net.state_dict()[key].numpy().copy()] for key in keys}
    lrs, losses = [], []
    for k in range(STEPS):
        lr = base_lr * (1.0 - k / (2 * STEPS))
        for group in opt.param_groups:
            group["lr"] = lr
        x = torch.from_numpy(data["data.x"][k % 2])
        y = torch.from_numpy(data["data.y"][k % 2])
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        lrs.append(lr)
        losses.append(loss.item())
        for key in keys:
            snapshots[key].append(net.state_dict()[key].numpy().copy())
    if not all(math.isfinite(v) for v in losses) or losses[-2] >= losses[0]:
        raise SystemExit(f"{case_id}: the loss did not go down ({losses[0]:.4f} -> {losses[-2]:.4f}); pick another lr")
    record = {f"{case_id}:lr": np.array(lrs), f"{case_id}:loss": np.array(losses)}
    record.update({f"{case_id}:{key}": np.stack(v) for key, v in snapshots.items()})
    return record


def check_cases_differ(arrays: dict[str, np.ndarray]) -> None:
    def final(case_id):
        weights = sorted(k for k in arrays if k.startswith(case_id + ":") and "." in k)  # not :lr, :loss
        return np.concatenate([arrays[k][-1].ravel() for k in weights])

    for i, (a, name, _, _) in enumerate(OPTIMIZER_CASES):
        for b, other, _, _ in OPTIMIZER_CASES[:i]:
            gap = np.abs(final(a) - final(b)).max()
            if name == other and gap < 1e-3:
                raise SystemExit(f"{a} and {b} end only {gap:.2g} apart; make them differ more")


def signature_defaults(fn, skip: tuple[str, ...]) -> dict:
    params = inspect.signature(fn).parameters.values()
    return {
        p.name: list(p.default) if isinstance(p.default, tuple) else p.default
        for p in params
        if p.default is not inspect.Parameter.empty and p.name not in skip
    }


TORCH_ONLY = ("foreach", "maximize", "capturable", "differentiable", "fused")


# --- schedules ------------------------------------------------------------------------------------


def warmup_then(opt, warmup: int, after):
    """SequentialLR: lr * (t + 1) / warmup for t < warmup, then `after` (restarted at t = warmup)."""
    if warmup == 0:
        return after
    first = sched.LinearLR(opt, start_factor=1.0 / warmup, end_factor=1.0, total_iters=warmup - 1)
    return sched.SequentialLR(opt, [first, after], milestones=[warmup])


def torch_scheduler(opt, name: str, o: dict, lr: float):
    if name == "constant":
        return sched.LambdaLR(opt, lambda t: 1.0)
    if name == "step":
        return sched.StepLR(opt, step_size=o["step_size"], gamma=o.get("gamma", 0.1))
    if name == "multistep":
        return sched.MultiStepLR(opt, milestones=o["milestones"], gamma=o.get("gamma", 0.1))
    if name == "exponential":
        return sched.ExponentialLR(opt, gamma=o["gamma"])
    if name == "cosine":
        warmup = o.get("warmup", 0)
        after = sched.CosineAnnealingLR(opt, T_max=o["total"] - warmup, eta_min=o.get("min_lr", 0.0))
        return warmup_then(opt, warmup, after)
    if name == "cosine_restarts":
        return sched.CosineAnnealingWarmRestarts(
            opt, T_0=o["t_0"], T_mult=o.get("t_mult", 1), eta_min=o.get("min_lr", 0.0)
        )
    if name == "one_cycle":
        return sched.OneCycleLR(
            opt,
            max_lr=lr,
            total_steps=o["total"],
            pct_start=o.get("pct_start", 0.3),
            anneal_strategy=o.get("anneal", "cos"),
            div_factor=o.get("div_factor", 25.0),
            final_div_factor=o.get("final_div_factor", 1e4),
            three_phase=o.get("three_phase", False),
            cycle_momentum=False,
        )
    if name == "linear":
        warmup = o.get("warmup", 0)
        end = o.get("min_lr", 0.0) / lr
        after = sched.LinearLR(opt, start_factor=1.0, end_factor=end, total_iters=o["total"] - warmup)
        return warmup_then(opt, warmup, after)
    raise ValueError(name)


def plateau_metric(mode: str) -> list[float]:
    """50 values: clear gains, plateaus of 1 to 12 epochs, and gains too small for the rel threshold."""
    values, level = [], 1.0
    for plateau in (0, 1, 3, 0, 2, 12, 1, 4, 0, 6, 2, 5, 7):
        level *= 0.9
        values.append(level)
        for j in range(plateau):
            wobble = (0.99999, 1.01, 1.0, 1.002)[j % 4]  # 0.99999: a gain under threshold 1e-4
            values.append(level * wobble)
    values = values[:STEPS]
    assert len(values) == STEPS, len(values)
    return values if mode == "min" else [2.0 - v for v in values]


SCHEDULE_CASES = [
    ("constant", "constant", {}, 0.1),
    ("step", "step", {"step_size": 7}, 0.1),
    ("step-gamma", "step", {"step_size": 5, "gamma": 0.5}, 0.1),
    ("multistep", "multistep", {"milestones": [5, 12, 30]}, 0.1),
    ("multistep-gamma", "multistep", {"milestones": [1, 10, 20, 25], "gamma": 0.3}, 0.1),
    ("exponential", "exponential", {"gamma": 0.95}, 0.1),
    ("cosine", "cosine", {"total": 49}, 0.1),
    ("cosine-min_lr", "cosine", {"total": 60, "min_lr": 0.001}, 0.1),
    ("cosine-warmup", "cosine", {"total": 49, "warmup": 5, "min_lr": 0.002}, 0.1),
    ("cosine-warmup-long", "cosine", {"total": 70, "warmup": 20}, 0.1),
    ("cosine_restarts", "cosine_restarts", {"t_0": 10}, 0.1),
    ("cosine_restarts-t_mult", "cosine_restarts", {"t_0": 4, "t_mult": 2, "min_lr": 0.001}, 0.1),
    ("cosine_restarts-t_mult3", "cosine_restarts", {"t_0": 3, "t_mult": 3}, 0.1),
    ("one_cycle", "one_cycle", {"total": 50}, 0.1),
    ("one_cycle-linear", "one_cycle", {"total": 50, "pct_start": 0.25, "anneal": "linear",
                                       "div_factor": 10.0, "final_div_factor": 100.0}, 0.1),
    ("one_cycle-three_phase", "one_cycle", {"total": 50, "three_phase": True}, 0.1),
    ("one_cycle-three_phase-linear", "one_cycle", {"total": 50, "pct_start": 0.35, "anneal": "linear",
                                                   "three_phase": True}, 0.1),
    ("linear", "linear", {"total": 40}, 0.1),
    ("linear-warmup", "linear", {"total": 45, "warmup": 10, "min_lr": 0.001}, 0.1),
    ("linear-warmup-short", "linear", {"total": 30, "warmup": 3}, 0.1),
    ("reduce_on_plateau", "reduce_on_plateau", {}, 0.1),
    ("reduce_on_plateau-patience", "reduce_on_plateau", {"patience": 2}, 0.1),
    ("reduce_on_plateau-max-abs", "reduce_on_plateau", {"mode": "max", "factor": 0.5, "patience": 1,
                                                        "threshold": 0.01, "threshold_mode": "abs",
                                                        "cooldown": 2, "min_lr": 0.012, "eps": 1e-3}, 0.1),
    ("reduce_on_plateau-min-abs", "reduce_on_plateau", {"threshold_mode": "abs", "threshold": 0.005,
                                                        "factor": 0.5, "patience": 0, "min_lr": 0.005}, 0.1),
    ("reduce_on_plateau-max-rel", "reduce_on_plateau", {"mode": "max", "patience": 3, "threshold": 1e-3,
                                                        "cooldown": 1, "factor": 0.3}, 0.1),
]


def run_schedule(case: tuple) -> dict:
    case_id, name, options, lr = case
    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([param], lr=lr)
    record = {"id": case_id, "schedule": name, "options": options, "lr": lr}
    values = []
    if name == "reduce_on_plateau":
        metric = plateau_metric(options.get("mode", "min"))
        plateau = sched.ReduceLROnPlateau(opt, **options)
        for value in metric:
            values.append(float(opt.param_groups[0]["lr"]))
            param.grad = torch.zeros(1)
            opt.step()
            plateau.step(value)
        record["metric"] = metric
    else:
        scheduler = torch_scheduler(opt, name, options, lr)
        for _ in range(STEPS):
            values.append(float(opt.param_groups[0]["lr"]))
            param.grad = torch.zeros(1)
            opt.step()
            scheduler.step()
    record["values"] = values
    return record


# --- main -----------------------------------------------------------------------------------------


def optimizer_arrays(out: Path, data: dict[str, np.ndarray], only: list[str]) -> dict[str, np.ndarray]:
    """Every case's arrays; with `only`, the recorded ones of the other optimizers are kept as they are
    (another machine's torch may round differently in the last bit)."""
    arrays = dict(data)
    if only:
        with np.load(out / "optimizers.npz", allow_pickle=False) as recorded:
            arrays.update({k: recorded[k] for k in recorded.files if k.split(":")[0] not in _case_ids(only)})
    for case in OPTIMIZER_CASES:
        if not only or case[1] in only:
            arrays.update(run_optimizer(case, data))
    check_cases_differ(arrays)
    return arrays


def _case_ids(only: list[str]) -> set[str]:
    return {case_id for case_id, name, _, _ in OPTIMIZER_CASES if name in only}


def write(out: Path, only: list[str] = []) -> None:  # noqa: B006 (read only)
    torch.set_default_dtype(torch.float64)  # optimizer scalars (step, NAdam's mu_product) in float64
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")  # SequentialLR/LinearLR deprecation chatter
    out.mkdir(parents=True, exist_ok=True)

    data = make_data(np.random.default_rng(SEED))
    arrays = optimizer_arrays(out, data, only)
    np.savez_compressed(out / "optimizers.npz", **arrays)
    index = {
        "torch_version": torch.__version__,
        "steps": STEPS,
        "batch_size": BATCH,
        "layers": {"0": [N_IN, HIDDEN], "2": [HIDDEN, N_OUT]},
        "cases": [{"id": c, "optimizer": n, "options": o, "base_lr": lr} for c, n, o, lr in OPTIMIZER_CASES],
        "torch_defaults": {
            name: signature_defaults(cls.__init__, TORCH_ONLY) for name, cls in TORCH_OPTIMIZERS.items()
        },
    }
    (out / "optimizers.json").write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")

    schedules = {
        "torch_version": torch.__version__,
        "steps": STEPS,
        "cases": [run_schedule(case) for case in SCHEDULE_CASES],
        "torch_defaults": {
            "reduce_on_plateau": signature_defaults(sched.ReduceLROnPlateau.__init__, ("optimizer",)),
        },
    }
    (out / "schedules.json").write_text(json.dumps(schedules, indent=1) + "\n", encoding="utf-8")


def same(a: Path, b: Path) -> list[str]:
    """Names of the fixture files whose contents differ between folders a and b."""
    differ = []
    for name in ("optimizers.json", "schedules.json"):
        if not (b / name).exists() or json.loads((a / name).read_text()) != json.loads((b / name).read_text()):
            differ.append(name)
    if not (b / "optimizers.npz").exists():
        return differ + ["optimizers.npz"]
    with np.load(a / "optimizers.npz") as x, np.load(b / "optimizers.npz") as y:
        if set(x.files) != set(y.files) or any(not np.array_equal(x[k], y[k]) for k in x.files):
            differ.append("optimizers.npz")
    return differ


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder to write (default {OUT.relative_to(ROOT)})")
    parser.add_argument("--check", action="store_true", help="regenerate in a temp dir and compare with --out")
    parser.add_argument("--only", action="append", default=[], metavar="OPTIMIZER",
                        help="rerun only this optimizer's cases (repeatable); the other recorded arrays stay")
    args = parser.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            write(Path(tmp))
            differ = same(Path(tmp), args.out)
        for name in differ:
            print(f"differs: {args.out / name}")
        return 1 if differ else 0
    write(args.out, args.only)
    for path in sorted(args.out.iterdir()):
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}  {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
