"""Seconds per training epoch: bptrain's loop against PyTorch, scikit-learn and the bare matrix products.

Usage (from the repository root; the bptrain measured is the one in this checkout):

    python benchmarks/train_speed.py                       # sizes S, M and L, one BLAS thread
    python benchmarks/train_speed.py --sizes S M --repeats 9 --threads 2

Every contender trains the same MLP (relu hidden layers, adam at lr 0.001, float32) on the same
rows with the same batch size:

    S  1,797 x 64 -> 64 -> 10, batch 32            datasets/digits.csv, standardized
    M  20,000 x 100 -> 256 -> 256 -> 2, batch 64   synthetic, seeded; two classes: one sigmoid output
    L  60,000 x 784 -> 256 -> 128 -> 10, batch 128 synthetic, seeded

- bptrain: the Trainer, model, loss and optimizer built as `bptrain fit` builds them (bptrain.training.assembly).
- PyTorch: nn.Sequential and torch.optim.Adam over the same shuffled mini-batches (same permutations).
- scikit-learn: MLPClassifier(solver="adam", alpha=0), one partial_fit per epoch (its own shuffling).
- bare GEMMs: only the matrix products of one epoch, forward and backward: the floor.

On each size, after --warmup epochs each, the contenders run one epoch in turn (A B C D, A B C D,
...) --repeats times, so that noise from other work on the machine hits all of them alike.
The figure is the median; the table gives bptrain's time divided by the faster of PyTorch and
scikit-learn, and each time divided by the bare GEMMs'. --threads limits the BLAS and OpenMP
pools of every library (threadpoolctl) and torch's intra-op threads; `--threads default` leaves
each at its own default, bptrain's being training.threads auto (chosen once per size, as fit
chooses at its start). `--busy` keeps one CPU-bound process running beside the benchmark, and the
contender "bptrain 1 thread" (bptrain at training.threads 1) gives the ratio that auto must keep
close to 1 there:

    python benchmarks/train_speed.py --threads default --busy --contenders bptrain "bptrain 1 thread"

The contender "bptrain diagnostics" is bptrain with its diagnostics callback (on by default in
`bptrain fit`: report.diagnostics), writing diagnostics.csv and .jsonl; its ratio to "bptrain" is
the cost of the diagnostics:

    python benchmarks/train_speed.py --sizes S M --contenders bptrain "bptrain diagnostics" --repeats 21

bptrain's training.engine is auto: numba's compiled update where numba is installed and the run
may update enough values (M and L, over fit's default 200 epochs); "bptrain numpy" is bptrain at training.engine
numpy, NumPy's passes, so the ratio of the two is what the compiled update saves:

    python benchmarks/train_speed.py --sizes M L --contenders bptrain "bptrain numpy" "bare GEMMs"

PyTorch and scikit-learn are optional and never dependencies of bptrain; a contender whose package
is missing is left out. To install them (the CPU build of torch):

    pip install torch==2.13.0 scikit-learn
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from machine import describe, load

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # measure this checkout's bptrain, not an installed one

LR = 1e-3
Epoch = Callable[[], None]


@dataclass(frozen=True)
class Size:
    name: str
    rows: int
    inputs: int
    hidden: tuple[int, ...]
    classes: int
    batch: int


SIZES = {
    "S": Size("S", 1797, 64, (64,), 10, 32),
    "M": Size("M", 20_000, 100, (256, 256), 2, 64),
    "L": Size("L", 60_000, 784, (256, 128), 10, 128),
}
CONTENDERS = ("bptrain", "bptrain 1 thread", "bptrain diagnostics", "bptrain numpy", "PyTorch", "scikit-learn", "bare GEMMs")
PEERS = ("PyTorch", "scikit-learn")


# --- data --------------------------------------------------------------------------------------


def make_data(size: Size, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(x float32 standardized, class indices int64): the digits for S, seeded synthetic rows otherwise."""
    if size.name == "S":
        table = np.loadtxt(ROOT / "datasets" / "digits.csv", delimiter=",", skiprows=1, dtype=np.float64)
        x, labels = table[:, :-1], table[:, -1].astype(np.int64)
    else:
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((size.rows, size.inputs))
        teacher = rng.standard_normal((size.inputs, size.classes))
        labels = np.argmax(x @ teacher + rng.standard_normal((size.rows, size.classes)), axis=1)
    std = x.std(axis=0)
    x = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
    assert x.shape == (size.rows, size.inputs), f"{size.name}: data of shape {x.shape}"
    return np.ascontiguousarray(x, dtype=np.float32), labels


def shuffle_rng(seed: int) -> np.random.Generator:
    """The generator bptrain shuffles with for this seed, so that every loop sees the same batches."""
    from bptrain import seeds

    return seeds.stream(seed, seeds.SHUFFLE)


# --- the contenders: each returns a function that trains one epoch -------------------------------


def bptrain_config(size: Size, seed: int, engine: str = "auto"):
    from bptrain.config.loading import validate_config

    raw = {
        "name": f"speed-{size.name}",
        "seed": seed,
        "data": {"train": "../datasets/digits.csv", "target": "digit"},  # validated, never read
        "model": {"layers": [{"units": u, "activation": "relu"} for u in size.hidden], "dtype": "float32"},
        "loss": "auto",
        "optimizer": {"name": "adam", "lr": LR},
        "training": {"batch_size": size.batch, "shuffle": True, "engine": engine},
        # no validation split to watch; max_epochs as fit's default (training.engine auto weighs it),
        # while each epoch() below lets the trainer run one more
        "stopping": {"max_epochs": 200, "early_stopping": False},
    }
    return validate_config(raw, ROOT / "configs" / "speed.yaml")


def bptrain_epoch(
    size: Size,
    x: np.ndarray,
    labels: np.ndarray,
    seed: int,
    threads: int | str | None = None,
    diagnostics: bool = False,
    engine: str = "auto",
) -> Epoch:
    """bptrain's Trainer, put together as bptrain.app.fit does; each call runs it one epoch further.

    `threads` as training.threads (its BLAS threads chosen once, here, as fit chooses them at the
    start); None leaves the BLAS pools as the benchmark set them (--threads N). `diagnostics`: with
    the diagnostics callback writing diagnostics.csv and .jsonl (into a temporary folder), as fit
    runs by default (report.diagnostics). `engine` as training.engine.
    """
    from contextlib import nullcontext
    from types import SimpleNamespace

    from bptrain import threads as blas
    from bptrain.data.splits import Split, loss_target
    from bptrain.training import assembly
    from bptrain.training.loop import Trainer
    from bptrain.training.stopping import Budget

    config = bptrain_config(size, seed, engine)
    classes = [str(c) for c in range(size.classes)]
    loss = assembly.loss_spec(config, "classification", classes, labels)
    prep = SimpleNamespace(task="classification", classes=classes, targets=["digit"])  # what the assembly asks of the preprocessor
    built = assembly.assemble(config, prep, size.inputs, loss, size.rows, has_val=False)
    split = Split("train", x, loss_target(labels, loss[0], "float32"), frame=None, labels=labels)
    callbacks = []
    if diagnostics:
        import tempfile

        from bptrain.runs.report import RowLog
        from bptrain.training.diagnostics import COLUMNS, Diagnostics

        watch = Diagnostics(built.setup.model)
        watch.write = RowLog(Path(tempfile.mkdtemp(prefix="bptrain-speed-")), COLUMNS, "diagnostics", flush_seconds=1.0).write  # as fit's
        callbacks.append(watch)
    trainer = Trainer(built.setup, split, None, callbacks)
    chosen = None if threads is None else blas.choose(threads, blas.largest_product(built.setup.model, size.batch))
    if chosen is not None and threads == "auto":
        print(f"{size.name}: bptrain's training.threads auto -> {chosen.count} ({chosen.why})", file=sys.stderr)
    if engine == "auto":
        print(f"{size.name}: bptrain's training.engine auto -> {built.setup.engine.name} ({built.setup.engine.why})", file=sys.stderr)

    def epoch() -> None:
        trainer.setup.budget = Budget(max_epochs=trainer.position.epoch)  # run() resumes where it stopped
        with blas.limited(chosen.count) if chosen is not None else nullcontext():
            outcome = trainer.run()
        assert outcome.stop_reason == "max_epochs", f"bptrain stopped: {outcome.stop_reason} {outcome.message}"

    epoch.trainer = trainer  # epoch_phases.py times its phases
    return epoch


def torch_epoch(size: Size, x: np.ndarray, labels: np.ndarray, seed: int) -> Epoch:
    """A plain PyTorch loop: nn.Sequential, Adam, the same permutations as bptrain's."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    widths = (size.inputs, *size.hidden)
    layers: list[nn.Module] = []
    for n_in, n_out in zip(widths, widths[1:]):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    binary = size.classes == 2  # one sigmoid output, as bptrain and scikit-learn build it
    model = nn.Sequential(*layers, nn.Linear(widths[-1], 1 if binary else size.classes))
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.BCEWithLogitsLoss() if binary else nn.CrossEntropyLoss()
    xt = torch.from_numpy(x)
    yt = torch.from_numpy(labels.astype(np.float32).reshape(-1, 1)) if binary else torch.from_numpy(labels)
    rng, order = shuffle_rng(seed), np.arange(size.rows)

    def epoch() -> None:
        rng.shuffle(order)
        index = torch.from_numpy(order)
        total = 0.0
        for start in range(0, size.rows, size.batch):
            rows = index[start : start + size.batch]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(xt[rows]), yt[rows])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(rows)  # the epoch's training loss, as the other loops report it

    return epoch


def sklearn_epoch(size: Size, x: np.ndarray, labels: np.ndarray, seed: int) -> Epoch:
    """scikit-learn's MLPClassifier: one partial_fit is one shuffled epoch of mini-batches."""
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(
        hidden_layer_sizes=size.hidden,
        activation="relu",
        solver="adam",
        alpha=0.0,  # no L2 penalty, like bptrain's and PyTorch's defaults
        batch_size=size.batch,
        learning_rate_init=LR,
        shuffle=True,
        random_state=seed,
    )
    classes = np.arange(size.classes)
    return lambda: model.partial_fit(x, labels, classes=classes)


def gemm_epoch(size: Size, x: np.ndarray, labels: np.ndarray, seed: int) -> Epoch:
    """Only the matrix products of one epoch: X W forward, then H^T G and G W^T backward, into buffers."""
    rng = np.random.default_rng(seed)
    widths = (size.inputs, *size.hidden, 1 if size.classes == 2 else size.classes)
    weights = [(rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32) for a, b in zip(widths, widths[1:])]
    grads = [np.empty_like(w) for w in weights]
    outs = [np.empty((size.batch, w.shape[1]), np.float32) for w in weights]
    downs = [np.empty((size.batch, w.shape[0]), np.float32) for w in weights]

    def epoch() -> None:
        for start in range(0, size.rows, size.batch):
            h = x[start : start + size.batch]
            m = len(h)
            inputs = []
            for w, out in zip(weights, outs):
                inputs.append(h)
                h = np.matmul(h, w, out=out[:m])
            g = h  # any array of the output's shape will do as dL/dout
            for i in reversed(range(len(weights))):
                np.matmul(inputs[i].T, g, out=grads[i])
                if i > 0:  # the gradient for the input rows is never needed
                    g = np.matmul(g, weights[i].T, out=downs[i][:m])

    return epoch


MAKERS = {
    "bptrain": bptrain_epoch,
    "bptrain 1 thread": lambda size, x, labels, seed: bptrain_epoch(size, x, labels, seed, threads=1),
    "bptrain diagnostics": lambda size, x, labels, seed: bptrain_epoch(size, x, labels, seed, diagnostics=True),
    "bptrain numpy": lambda size, x, labels, seed: bptrain_epoch(size, x, labels, seed, engine="numpy"),
    "PyTorch": torch_epoch,
    "scikit-learn": sklearn_epoch,
    "bare GEMMs": gemm_epoch,
}
PACKAGES = {"PyTorch": ("torch", "torch==2.13.0"), "scikit-learn": ("sklearn", "scikit-learn")}  # (module, to install)


# --- measuring ---------------------------------------------------------------------------------


def available(names: tuple[str, ...]) -> list[str]:
    """The contenders whose packages import; the optional ones are imported here, before threads are limited."""
    found = []
    for name in names:
        if name in PACKAGES:
            module, package = PACKAGES[name]
            try:
                __import__(module)
            except ImportError:
                print(f"note: {name} left out: cannot import {module} (pip install {package})", file=sys.stderr)
                continue
        found.append(name)
    return found


def timed(epoch: Epoch) -> float:
    start = time.perf_counter()
    epoch()
    return time.perf_counter() - start


def measure(size: Size, contenders: list[str], args: argparse.Namespace) -> dict[str, list[float]]:
    """Seconds of each contender's epochs on `size`, the contenders in turn within each repeat."""
    warmup, repeats, seed = args.warmup, args.repeats, args.seed
    x, labels = make_data(size, seed)
    makers = {**MAKERS, "bptrain": lambda *a: bptrain_epoch(*a, threads="auto" if args.threads == "default" else None)}
    epochs = {name: makers[name](size, x, labels, seed) for name in contenders}
    for _ in range(warmup):
        for epoch in epochs.values():
            epoch()
    seconds: dict[str, list[float]] = {name: [] for name in epochs}
    for r in range(repeats):
        for name, epoch in epochs.items():
            seconds[name].append(timed(epoch))
        figures = ", ".join(f"{name} {seconds[name][-1]:.4f}" for name in epochs)
        print(f"{size.name} repeat {r + 1}/{repeats}: {figures}", file=sys.stderr, flush=True)
    return seconds


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "–"


def table(contenders: list[str], seconds: dict[str, dict[str, list[float]]]) -> str:
    """A markdown table: median seconds per epoch, bptrain / the faster peer, each / the bare GEMMs."""
    alone = "bptrain 1 thread" in contenders and "bptrain" in contenders
    head = ["size", *contenders, "bptrain ÷ faster peer", *(f"{c} ÷ GEMMs" for c in contenders if c != "bare GEMMs")]
    head += ["bptrain ÷ bptrain 1 thread"] if alone else []
    watched = "bptrain diagnostics" in contenders and "bptrain" in contenders
    head += ["bptrain diagnostics ÷ bptrain"] if watched else []
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for size, times in seconds.items():
        median = {c: statistics.median(times[c]) for c in contenders}
        peers = [(median[p], p) for p in PEERS if p in median]
        faster = min(peers) if peers else (None, None)
        cells = [size, *(f"{median[c]:.4g}" for c in contenders)]
        cells.append(f"{ratio(median['bptrain'], faster[0])} ({faster[1]})" if faster[1] and "bptrain" in median else "–")
        cells += [ratio(median[c], median.get("bare GEMMs")) for c in contenders if c != "bare GEMMs"]
        cells += [ratio(median["bptrain"], median["bptrain 1 thread"])] if alone else []
        cells += [f"{median['bptrain diagnostics'] / median['bptrain']:.3f}x"] if watched else []
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def limit_threads(threads: str):
    """Limit every BLAS and OpenMP pool loaded so far, and torch's own threads, to `threads`; with
    "default", leave every library at its own default (bptrain: training.threads auto)."""
    from contextlib import nullcontext

    from threadpoolctl import threadpool_limits

    if threads == "default":
        return nullcontext()
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(int(threads))
    return threadpool_limits(limits=int(threads))


@contextmanager
def busy(on: bool):
    """One CPU-bound process beside the benchmark while the block runs (--busy)."""
    if not on:
        yield
        return
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # running before any contender chooses its threads
        yield
    finally:
        spinner.kill()
        spinner.wait()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES), help="problem sizes (default: S M L)")
    usual = [c for c in CONTENDERS if c not in ("bptrain 1 thread", "bptrain diagnostics")]
    parser.add_argument("--contenders", nargs="+", choices=CONTENDERS, default=usual, metavar="NAME",
                        help=f"which loops to time, of {', '.join(CONTENDERS)} (default: {', '.join(usual)})")
    parser.add_argument("--threads", default="1", help="BLAS/OpenMP threads for every contender, or 'default': each library's own "
                        "default (bptrain: training.threads auto) (default: 1)")
    parser.add_argument("--busy", action="store_true", help="run one CPU-bound process beside the benchmark")
    parser.add_argument("--warmup", type=int, default=2, help="untimed epochs first (default: 2)")
    parser.add_argument("--repeats", type=int, default=7, help="timed epochs; the median is reported (default: 7)")
    parser.add_argument("--seed", type=int, default=0, help="data, initial weights and shuffling (default: 0)")
    args = parser.parse_args(argv)
    if not (args.threads == "default" or (args.threads.isdigit() and int(args.threads) >= 1)):
        parser.error("--threads must be a whole number from 1, or default")
    if args.repeats < 1 or args.warmup < 0:
        parser.error("--repeats must be at least 1, --warmup at least 0")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    contenders = available(tuple(c for c in CONTENDERS if c in args.contenders))
    sizes = [SIZES[s] for s in args.sizes]
    with limit_threads(args.threads), busy(args.busy):
        print(f"machine: {describe()}")
        beside = "; one CPU-bound process beside" if args.busy else ""
        print(f"threads: {args.threads}{beside}; {args.warmup} warm-up epochs, median of {args.repeats}; seed {args.seed}")
        versions = [f"{c} {sys.modules[PACKAGES[c][0]].__version__}" for c in contenders if c in PACKAGES]
        print(f"versions: {', '.join(versions) or 'neither PyTorch nor scikit-learn installed'}")
        seconds = {size.name: measure(size, contenders, args) for size in sizes}
    print(f"\nmedian seconds per epoch:\n{table(contenders, seconds)}")
    print(f"load average at the end: {load()}")


if __name__ == "__main__":
    main()
