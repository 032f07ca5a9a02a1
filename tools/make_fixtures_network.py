"""Write tests/fixtures/network/: PyTorch's logits, losses and gradients for small networks, in float64.

Each case is a 3-layer MLP (5 -> 7 -> 6 -> k) described by bptrain's build_model layer dicts,
built here in torch from fixed weights (bptrain's layout: W is (in, out), torch's Linear weight is
its transpose) and run on a fixed batch of 8 rows. There is a case for every activation and
activation option variant (loss mse), every loss and loss option variant (activation tanh), and
networks with batch_norm and layer_norm, whose running statistics after the training forward and
evaluation-mode logits are saved too. tests/nn/test_nn_torch_network.py rebuilds every case with
bptrain.nn and compares.

Output: one plain .npz per case (np.savez, no object arrays) and index.json naming the cases.

    pip install torch --index-url https://download.pytorch.org/whl/cpu   # only for this tool
    python tools/make_fixtures_network.py            # write tests/fixtures/network/
    python tools/make_fixtures_network.py --check    # rebuild in memory; exit 1 if a file differs
    python tools/make_fixtures_network.py --out DIR  # write somewhere else
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "network"
N_IN, HIDDEN, BATCH, N_OUT = 5, (7, 6), 8, 3
FORMAT_VERSION = 1

TORCH_ACTIVATIONS = {  # bptrain's option names are torch's keyword names
    "identity": nn.Identity,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "softplus": nn.Softplus,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
}
ACTIVATION_VARIANTS = [(name, {}) for name in TORCH_ACTIVATIONS] + [
    ("leaky_relu", {"negative_slope": 0.2}),
    ("elu", {"alpha": 0.5}),
    ("gelu", {"approximate": "tanh"}),
    ("softplus", {"beta": 2.0}),
    ("softplus", {"beta": 2.0, "threshold": 1.0}),
]
CLASS_WEIGHTS = [0.5, 1.0, 2.5]
LOSS_VARIANTS = [
    ("mse", {}),
    ("mae", {}),
    ("huber", {}),
    ("huber", {"delta": 0.5}),
    ("cross_entropy", {}),
    ("cross_entropy", {"label_smoothing": 0.1}),
    ("cross_entropy", {"weight": CLASS_WEIGHTS}),
    ("cross_entropy", {"label_smoothing": 0.2, "weight": CLASS_WEIGHTS}),
    ("binary_cross_entropy", {}),
    ("binary_cross_entropy", {"pos_weight": 3.0}),
    ("binary_cross_entropy", {"pos_weight": CLASS_WEIGHTS}),
]
NORM_VARIANTS = [
    ("batch_norm", {}),
    ("batch_norm", {"momentum": 0.3, "eps": 1e-3}),
    ("layer_norm", {}),
    ("layer_norm", {"eps": 1e-3}),
]


def torch_loss(name: str, options: dict) -> nn.Module:
    if name == "mse":
        return nn.MSELoss()
    if name == "mae":
        return nn.L1Loss()
    if name == "huber":
        return nn.HuberLoss(**options)
    if name == "cross_entropy":
        weight = options.get("weight")
        return nn.CrossEntropyLoss(
            weight=None if weight is None else torch.tensor(weight, dtype=torch.float64),
            label_smoothing=options.get("label_smoothing", 0.0),
        )
    if name == "binary_cross_entropy":
        pos_weight = options.get("pos_weight")
        return nn.BCEWithLogitsLoss(
            pos_weight=None if pos_weight is None else torch.tensor(pos_weight, dtype=torch.float64)
        )
    raise SystemExit(f"no torch loss for {name!r}; add it to torch_loss()")


def mlp_layers(activation: str, options: dict) -> list[dict]:
    return [
        {"type": "dense", "units": units, "activation": activation, "activation_options": options}
        for units in HIDDEN
    ]


def norm_layers(kind: str, options: dict) -> list[dict]:
    """Dense -> norm -> tanh -> Dense -> tanh: the norm sits between a dense layer and its activation."""
    return [
        {"type": "dense", "units": HIDDEN[0], "activation": "identity"},
        {"type": kind, **options},
        {"type": "activation", "activation": "tanh"},
        {"type": "dense", "units": HIDDEN[1], "activation": "tanh"},
    ]


def build_torch(layers: list[dict], rng: np.random.Generator):
    """(torch modules, bptrain param name -> (torch parameter, transpose?)), following build_model's
    expansion: a dense dict is Dense + Activation, so Sequential index i names params "layers.{i}.*"."""
    modules, params, width = [], {}, N_IN

    def linear(units: int):
        nonlocal width
        lin = nn.Linear(width, units, dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(rng.uniform(-1.2, 1.2, (width, units)).T))
            lin.bias.copy_(torch.from_numpy(rng.uniform(-0.5, 0.5, units)))
        i = len(modules)
        params[f"layers.{i}.W"], params[f"layers.{i}.b"] = (lin.weight, True), (lin.bias, False)
        modules.append(lin)
        width = units

    for spec in layers:
        kind = spec["type"]
        if kind == "dense":
            linear(spec["units"])
        if kind in ("dense", "activation"):
            modules.append(TORCH_ACTIVATIONS[spec["activation"]](**spec.get("activation_options", {})))
            continue
        eps = spec.get("eps", 1e-5)
        if kind == "batch_norm":
            norm = nn.BatchNorm1d(width, eps=eps, momentum=spec.get("momentum", 0.1), dtype=torch.float64)
        elif kind == "layer_norm":
            norm = nn.LayerNorm(width, eps=eps, dtype=torch.float64)
        else:
            raise SystemExit(f"no torch module for layer type {kind!r}; add it to build_torch()")
        with torch.no_grad():
            norm.weight.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, width)))
            norm.bias.copy_(torch.from_numpy(rng.uniform(-0.5, 0.5, width)))
        i = len(modules)
        params[f"layers.{i}.gamma"], params[f"layers.{i}.beta"] = (norm.weight, False), (norm.bias, False)
        modules.append(norm)
    linear(N_OUT)
    return nn.Sequential(*modules), params


def targets(loss: str, rng: np.random.Generator) -> np.ndarray:
    if loss == "cross_entropy":
        return np.resize(np.arange(N_OUT), BATCH)[rng.permutation(BATCH)].astype(np.int64)  # every class
    if loss == "binary_cross_entropy":
        return rng.integers(0, 2, (BATCH, N_OUT)).astype(np.float64)
    return rng.standard_normal((BATCH, N_OUT))


def run_case(seed: int, layers: list[dict], loss: str, loss_options: dict) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    model, params = build_torch(layers, rng)
    x, y = 1.5 * rng.standard_normal((BATCH, N_IN)), targets(loss, rng)
    model.train()
    logits = model(torch.from_numpy(x))
    value = torch_loss(loss, loss_options)(logits, torch.from_numpy(y))
    value.backward()
    arrays = {"x": x, "y": y, "logits": logits.detach().numpy(), "loss": np.array(value.item())}
    for name, (p, transpose) in params.items():
        arrays[f"param/{name}"] = (p.detach().T if transpose else p.detach()).numpy().copy()
        arrays[f"grad/{name}"] = (p.grad.T if transpose else p.grad).numpy().copy()
    if any(isinstance(m, (nn.BatchNorm1d, nn.LayerNorm)) for m in model):
        for i, m in enumerate(model):
            if isinstance(m, nn.BatchNorm1d):  # moved by the training forward above
                arrays[f"buffer/layers.{i}.running_mean"] = m.running_mean.numpy().copy()
                arrays[f"buffer/layers.{i}.running_var"] = m.running_var.numpy().copy()
        model.eval()
        with torch.no_grad():
            arrays["eval_logits"] = model(torch.from_numpy(x)).numpy()
    return arrays


def cases() -> list[dict]:
    out = []
    for kind, variants in [("activation", ACTIVATION_VARIANTS), ("loss", LOSS_VARIANTS), ("norm", NORM_VARIANTS)]:
        counts: dict[str, int] = {}
        for name, options in variants:
            n = counts[name] = counts.get(name, -1) + 1
            if kind == "activation":
                layers, loss, loss_options = mlp_layers(name, options), "mse", {}
            elif kind == "loss":
                layers, loss, loss_options = mlp_layers("tanh", {}), name, options
            else:
                layers, loss, loss_options = norm_layers(name, options), "cross_entropy", {}
            out.append({
                "name": f"{kind}-{name}-{n}",
                "file": f"{kind}-{name}-{n}.npz",
                "n_in": N_IN,
                "n_out": N_OUT,
                "layers": layers,
                "loss": loss,
                "loss_options": loss_options,
            })
    return out


def build() -> dict[str, dict[str, np.ndarray]]:
    torch.set_num_threads(1)
    index = {
        "format_version": FORMAT_VERSION,
        "generator": "tools/make_fixtures_network.py",
        "torch": torch.__version__,
        "dtype": "float64",
        "cases": cases(),
    }
    files = {case["file"]: run_case(seed, case["layers"], case["loss"], case["loss_options"])
             for seed, case in enumerate(index["cases"])}
    return {"index.json": index, **files}


def write(out: Path, built: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, content in built.items():
        if name == "index.json":
            (out / name).write_text(json.dumps(content, indent=1) + "\n", encoding="utf-8")
        else:
            np.savez(out / name, **content)


def differences(out: Path, built: dict) -> list[str]:
    problems = []
    for name, content in built.items():
        path = out / name
        if not path.exists():
            problems.append(f"{path}: missing")
        elif name == "index.json":
            saved = json.loads(path.read_text(encoding="utf-8"))
            if {**saved, "torch": None} != {**content, "torch": None}:
                problems.append(f"{path}: cases differ")
        else:
            with np.load(path, allow_pickle=False) as saved:
                if set(saved.files) != set(content) or any(
                    not np.allclose(saved[k], v, rtol=1e-12, atol=1e-15) for k, v in content.items()
                ):
                    problems.append(f"{path}: arrays differ")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder to write (default {OUT.relative_to(ROOT)})")
    parser.add_argument("--check", action="store_true", help="compare with the files in --out instead of writing")
    args = parser.parse_args(argv)
    built = build()
    if args.check:
        problems = differences(args.out, built)
        print("\n".join(problems) or f"{len(built) - 1} cases match {args.out}")
        return 1 if problems else 0
    write(args.out, built)
    size = sum(p.stat().st_size for p in args.out.iterdir())
    print(f"wrote {len(built) - 1} cases and index.json to {args.out} ({size / 1024:.0f} KiB), torch {torch.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
