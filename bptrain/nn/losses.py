"""Losses fused with the output link: loss(logits, y) -> (mean loss as a float, dL/dlogits).

dL/dlogits lives in a buffer the loss owns, reused by the next call (grown for a bigger batch).
Every formula is stable for any finite logits. link(logits) returns new predictions in output space.
Targets: class indices of shape (n,) for cross_entropy, floats of the logits' shape otherwise.
Each class has `task` ("classification" or "regression") and declares its keyword options with
PyTorch's defaults when registered: LOSSES.get(name)(**options); an unknown option or bad value
raises OptionError.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from bptrain.nn.activations import Options, sigmoid
from bptrain.nn.buffers import reserve, rows_like
from bptrain.nn.errors import OptionError
from bptrain.nn.names import Registry
from bptrain.nn.options import ABOVE_0, FRACTION, Option

LOSSES = Registry("loss", number="a finite number")


def _weights(value: Any, scalar_ok: bool) -> float | tuple[float, ...] | None:
    """None, a float > 0 (if scalar_ok) or a non-empty tuple of them; ValueError for anything else."""
    if value is None:
        return None
    if scalar_ok and np.ndim(value) == 0 and isinstance(value, (int, float, np.number)):
        numbers: tuple = (value,)
    else:
        numbers = tuple(float(v) for v in value if not isinstance(v, (bool, str, np.bool_)))  # TypeError: not a list
        if np.ndim(value) != 1 or not 0 < len(numbers) == len(value):
            raise ValueError(value)
    if not all(not isinstance(v, (bool, np.bool_)) and math.isfinite(v) and v > 0.0 for v in numbers):
        raise ValueError(value)
    return float(numbers[0]) if len(numbers) == 1 and np.ndim(value) == 0 else tuple(map(float, numbers))


def weights_option(name: str, doc: str, scalar_ok: bool, config: str, shown: str, config_name: str | None = None) -> Option:
    """A per-class or per-output weights option: None, a list of numbers > 0 (or, if scalar_ok, one number)."""
    must = f"{'a number > 0 or ' if scalar_ok else ''}a list of finite numbers > 0"
    def check(value: Any) -> Any:
        try:
            return _weights(value, scalar_ok)
        except TypeError:
            raise ValueError(value) from None

    return Option(name, "custom", doc, None, must=must, check=check, config=config, config_name=config_name, shown=shown)


def _check_shape(y: np.ndarray, shape: tuple[int, ...], loss: str) -> None:
    if y.shape != shape:
        raise ValueError(f"{loss}: targets of shape {y.shape} for predictions needing {shape}")


class Loss(Options):
    task: ClassVar[str]

    def _per_output(self, key: str, k: int, dtype) -> np.ndarray | None:
        """Option `key` (a tuple) as a (k,) array of dtype, made once and remade only if k or dtype change."""
        values, cached = getattr(self, key), getattr(self, f"_{key}")
        if not isinstance(values, tuple):
            return None
        if cached is None or cached.dtype != dtype or cached.shape != (k,):
            if len(values) != k:
                raise self.error(f"{key} has {len(values)} entries, but the model has {k} outputs")
            cached = np.array(values, dtype)
            setattr(self, f"_{key}", cached)
        return cached


@LOSSES.register(
    "cross_entropy",
    Option("label_smoothing", "number", "share of each target spread evenly over the classes", 0.0, FRACTION),
    weights_option(
        "weight",
        "a weight per class: a list in the order of report.json's classes, a mapping {class: weight} "
        "(others weigh 1), or `balanced`: n / (k · count of the class)",
        scalar_ok=False,
        config="Literal['balanced'] | list[Positive] | dict[str | Int, Positive] | None",
        shown="`null`, a list or a mapping of numbers > 0, or `balanced`",
        config_name="class_weights",
    ),
    doc="softmax cross-entropy, for classification",
)
class CrossEntropy(Loss):
    """Softmax cross-entropy as torch.nn.CrossEntropyLoss, y holding class indices of shape (n,).

    With class weights w and label smoothing ε over k classes, and W = Σ_i w[y_i]:
    loss = [(1 - ε) Σ_i w[y_i]·(-log p_i[y_i]) + (ε/k) Σ_i Σ_c w_c·(-log p_i[c])] / W
    (without weights w = 1 and W = n), so dL/dz_i = [((1 - ε) w[y_i] + ε Σw/k) p_i - (1 - ε) w[y_i] e_{y_i} - (ε/k) w] / W.
    """

    task = "classification"

    def __init__(self, **given):
        super().__init__(**given)
        self._weight = self._ones = None  # the weights (or ones) as an array of the logits' dtype
        self._grad = self._max = self._lse = self._wy = self._dot = self._wk = self._rows = self._unit = None

    def _class_weights(self, k: int, dtype) -> np.ndarray:
        w = self._per_output("weight", k, dtype)
        if w is None:
            if self._ones is None or self._ones.dtype != dtype or self._ones.shape != (k,):
                self._ones = np.ones(k, dtype)
            w = self._ones
        return w

    def __call__(self, logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        n, k = logits.shape
        _check_shape(y, (n,), "cross_entropy")
        w, eps = self._class_weights(k, logits.dtype), self.label_smoothing
        self._grad, p = rows_like(self._grad, logits)
        self._max = reserve(self._max, (n, 1), logits.dtype)
        self._lse = reserve(self._lse, (n, 1), logits.dtype)
        self._wy = reserve(self._wy, (n,), logits.dtype)
        self._dot = reserve(self._dot, (n,), logits.dtype)
        self._wk = reserve(self._wk, (k,), logits.dtype)
        if self._rows is None or len(self._rows) < n:
            self._rows = np.arange(n)
        rows, top, lse, wy, dot = self._rows[:n], self._max[:n], self._lse[:n], self._wy[:n], self._dot[:n]

        # the ufuncs' reduce directly: np.max's and np.sum's wrappers cost more than these small reductions
        np.maximum.reduce(logits, axis=1, keepdims=True, out=top)
        np.subtract(logits, top, out=p)  # shifted logits, each <= 0
        if eps:
            np.matmul(p, w, out=dot)  # Σ_c w_c (z_ic - max_i) <= 0
        np.exp(p, out=p)  # each row's largest entry is exp(0) = 1, so nothing overflows
        np.add.reduce(p, axis=1, keepdims=True, out=lse)
        p /= lse  # softmax
        np.log(lse, out=lse)  # logsumexp - max >= 0
        plain = self.weight is None and not eps  # then w[y_i] = 1 and the products with it below are skipped
        if plain:
            wy = self._ones_for(n, logits.dtype)
        else:
            np.take(w, y, out=wy)
        total = float(np.add.reduce(wy))  # the weighted mean's denominator, as in PyTorch; weights are > 0
        if eps:
            smoothed = float(np.sum(w)) * float(np.sum(lse)) - float(np.sum(dot))  # a sum of terms >= 0
        lse += top
        lse[:, 0] -= logits[rows, y]  # -log p_i[y_i] = logsumexp(z_i) - z_i[y_i]
        loss = (1.0 - eps) * float(np.vdot(wy, lse[:, 0]))
        if eps:
            loss += eps / k * smoothed
        loss /= total

        if not plain:  # each factor below is 1 in the plain case
            wy *= 1.0 - eps
            np.add(wy, eps * float(np.sum(w)) / k, out=dot)
            p *= dot[:, None]
        p[rows, y] -= wy
        if eps:
            p -= np.multiply(w, eps / k, out=self._wk)
        p *= 1.0 / total
        return loss, p

    def _ones_for(self, n: int, dtype) -> np.ndarray:
        """n ones of `dtype` (w[y_i] without class weights), filled once per allocation."""
        buf = reserve(self._unit, (n,), dtype)
        if buf is not self._unit:
            buf.fill(1.0)
            self._unit = buf
        return buf[:n]

    def link(self, logits: np.ndarray) -> np.ndarray:
        """Softmax probabilities."""
        p = logits - logits.max(axis=1, keepdims=True)
        np.exp(p, out=p)
        p /= p.sum(axis=1, keepdims=True)
        return p


@LOSSES.register(
    "binary_cross_entropy",
    weights_option(
        "pos_weight",
        "weight of the positive term: a number, one per label, or `balanced`: negatives / positives, per label",
        scalar_ok=True,
        config="Positive | Literal['balanced'] | list[Positive] | None",
        shown="`null`, a number > 0, a list of them, or `balanced`",
    ),
    doc="sigmoid cross-entropy, for two classes or multilabel",
)
class BinaryCrossEntropy(Loss):
    """Sigmoid cross-entropy on logits as torch.nn.BCEWithLogitsLoss, mean over all entries.

    y holds 0/1 (or soft labels) of the logits' shape; pos_weight (a number, or one per output)
    weighs the positive term: loss = -[pw·y·log σ(z) + (1 - y)·log(1 - σ(z))]. With
    m = 1 + (pw - 1)·y that is m·softplus(z) - pw·y·z, and its gradient m·σ(z) - pw·y.
    """

    task = "classification"

    def __init__(self, **given):
        super().__init__(**given)
        self._pos_weight = None
        self._grad = self._softplus = self._py = self._m = None

    def __call__(self, logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        _check_shape(y, logits.shape, "binary_cross_entropy")
        pw = self._per_output("pos_weight", logits.shape[-1], logits.dtype)
        if pw is None:
            pw = 1.0 if self.pos_weight is None else self.pos_weight
        self._grad, g = rows_like(self._grad, logits)
        self._softplus, softplus = rows_like(self._softplus, logits)
        self._py, py = rows_like(self._py, logits)
        self._m, m = rows_like(self._m, logits)

        np.logaddexp(0.0, logits, out=softplus)  # max(z, 0) + log1p(exp(-|z|))
        np.multiply(y, pw, out=py)
        np.subtract(py, y, out=m)
        m += 1.0
        np.subtract(logits, softplus, out=g)  # log σ(z)
        np.exp(g, out=g)
        g *= m
        g -= py
        g *= 1.0 / g.size

        softplus *= m
        softplus -= np.multiply(py, logits, out=m)  # each entry's loss, computed apart so none cancels
        return float(np.sum(softplus)) / g.size, g

    def link(self, logits: np.ndarray) -> np.ndarray:
        """Sigmoid probabilities."""
        return sigmoid(logits, np.empty_like(logits))


class Regression(Loss):
    task = "regression"

    def link(self, logits: np.ndarray) -> np.ndarray:
        """The predictions themselves, copied."""
        return logits.copy()


@LOSSES.register("mse", doc="mean squared error, for regression")
class MeanSquaredError(Regression):
    """Mean squared error over all entries; y has the predictions' shape."""

    def __init__(self, **given):
        super().__init__(**given)
        self._grad = None

    def __call__(self, logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        _check_shape(y, logits.shape, "mse")
        self._grad, g = rows_like(self._grad, logits)
        np.subtract(logits, y, out=g)
        loss = float(np.vdot(g, g)) / g.size
        g *= 2.0 / g.size
        return loss, g


@LOSSES.register("mae", doc="mean absolute error (L1), for regression")
class MeanAbsoluteError(Regression):
    """Mean absolute error (torch.nn.L1Loss); the gradient is sign(z - y)/N, 0 where z = y."""

    def __init__(self, **given):
        super().__init__(**given)
        self._grad = self._diff = None

    def __call__(self, logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        _check_shape(y, logits.shape, "mae")
        self._grad, g = rows_like(self._grad, logits)
        self._diff, d = rows_like(self._diff, logits)
        np.subtract(logits, y, out=d)
        np.sign(d, out=g)
        loss = float(np.vdot(g, d)) / g.size  # Σ sign(d)·d = Σ|d|
        g *= 1.0 / g.size
        return loss, g


@LOSSES.register(
    "huber",
    Option("delta", "number", "where the loss turns from quadratic to linear", 1.0, ABOVE_0),
    doc="Huber loss, for regression: quadratic within delta, linear beyond",
)
class Huber(Regression):
    """torch.nn.HuberLoss: d²/2 where |d| < delta, else delta·(|d| - delta/2), mean over entries.

    With c = clip(d, -delta, delta) each entry's loss is c·d - c²/2 and its gradient c.
    """

    def __init__(self, **given):
        super().__init__(**given)
        self._grad = self._diff = None

    def __call__(self, logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        _check_shape(y, logits.shape, "huber")
        self._grad, c = rows_like(self._grad, logits)
        self._diff, d = rows_like(self._diff, logits)
        np.subtract(logits, y, out=d)
        np.clip(d, -self.delta, self.delta, out=c)
        loss = (float(np.vdot(c, d)) - 0.5 * float(np.vdot(c, c))) / c.size
        c *= 1.0 / c.size
        return loss, c


def loss_for_task(task: str, n_classes: int) -> str:
    """The loss name for a task: cross_entropy (> 2 classes), binary_cross_entropy (2), mse (regression)."""
    if task == "regression":
        return "mse"
    if task != "classification":
        raise OptionError(f"unknown task {task!r}; choose from classification, regression")
    if n_classes < 2:
        raise OptionError(f"classification needs at least 2 classes in the target (got {n_classes})")
    return "cross_entropy" if n_classes > 2 else "binary_cross_entropy"
