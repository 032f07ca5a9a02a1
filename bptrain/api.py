"""The public Python API: load a trained model and predict on DataFrames, or train from a config.

`load(path)` gives a `Model` (predict, predict_proba, evaluate, schema); `fit(config)` trains and
gives a `Run` (path, report, model). They run the services the commands run (bptrain.app), so
predictions equal `bptrain predict`'s bit for bit, and raise the same typed errors
(bptrain.errors) with the same messages. Nothing here prints: what the command line shows as a
warning is a `BptrainWarning` through Python's `warnings` module.
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bptrain import __all__ as __all__  # the public names, listed once, in bptrain/__init__.py
from bptrain.errors import BptrainError, ConfigError, DataError, DivergedError, ModelFileError, RunInterrupted, StorageError  # noqa: F401 - re-exported (__all__)

STRICT_HINT = ". Pass strict=True to make this an error"
STRICT_SETTING = "strict=True"  # what made an unseen category an error, as the caller wrote it
DATAFRAME = "DataFrame"  # the source a DataFrame's rows are named by in messages


class BptrainWarning(UserWarning):
    """Something about the data the user should know (unseen categories, rows left out, a changed file)."""


def _warn(event) -> None:
    """The services' events, as warnings (bptrain.events.Warning); the rest is progress nobody shows."""
    from bptrain import events

    if isinstance(event, events.Warning):
        warnings.warn(event.message, BptrainWarning, stacklevel=4)


# --- a trained model ---------------------------------------------------------------------------


def load(path: str | os.PathLike, *, threads: int | str = "auto") -> "Model":
    """The model of a run folder, or of a model.npz file (ModelFileError when it is not one).

    `threads`: the BLAS threads of its predictions, a number or "auto" (as `bptrain predict --threads`).
    """
    from bptrain import app

    if threads != "auto" and not (isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1):
        raise ConfigError(f"threads={threads!r}: give 'auto' or a whole number of threads from 1")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"expected the path of a run folder or of its model.npz, not {type(path).__name__}")
    trained = app.load_trained(Path(path))
    return Model(trained, app.inference_threads(trained, threads).count)


class Model:
    """A trained model and its preprocessing: raw rows in, predictions out.

    Rows are a pandas DataFrame (columns in any order, extra ones ignored, the target optional) or
    the path of a CSV or Parquet file read as `bptrain predict` reads it. Errors name the column
    and the rows, counted from 1 in the order given (a DataFrame's source is called "DataFrame").
    """

    def __init__(self, trained, threads: int):
        self._trained, self._threads = trained, threads

    def __repr__(self) -> str:
        return f"<bptrain.Model {self.path} ({self.task}, {len(self.features)} features)>"

    @property
    def path(self) -> Path:
        """The model file."""
        return self._trained.model_path

    @property
    def task(self) -> str:
        """classification, multilabel or regression."""
        return self._trained.prep.task

    @property
    def features(self) -> list[str]:
        """The input columns, in the model's order."""
        return self._trained.prep.features

    @property
    def targets(self) -> list[str]:
        return list(self._trained.prep.targets)

    @property
    def classes(self) -> list[str]:
        """Class labels in the model's order (multilabel: the label columns; regression: none)."""
        return list(self._trained.prep.classes)

    @property
    def schema(self) -> dict[str, Any]:
        """What the model reads and writes: task, targets, classes, each input column (kind, dtype,
        missing-value rule and fill, scaling, categories), the network inputs and predict's output columns."""
        from bptrain import app, predictions

        prep = self._trained.prep
        return {
            "task": prep.task,
            "targets": list(prep.targets),
            "classes": list(prep.classes),
            "features": copy.deepcopy(app.feature_schema(prep)),
            "inputs": prep.inputs,
            "outputs": predictions.header(prep, proba=prep.task != "regression"),
            "dtype": self._trained.meta["model"]["dtype"],
        }

    def predict(self, data, *, strict: bool = False):
        """Predictions for the rows of `data`, with its index: a Series of class labels (or of values
        in the target's units); a DataFrame, one column per target, for several targets. A category
        the model never saw is encoded as unknown with a BptrainWarning (with `strict`, a DataError)."""
        import pandas as pd

        frame, columns = self._predict(data, proba=False, strict=strict)
        if len(columns) == 1:
            return pd.Series(columns[0], index=frame.index, name="prediction")
        return pd.DataFrame(dict(zip(self.targets, columns)), index=frame.index)

    def predict_proba(self, data, *, strict: bool = False):
        """A DataFrame of probabilities, one column per class (multilabel: per label), in the model's class order."""
        import pandas as pd

        if self.task == "regression":
            raise ConfigError("predict_proba: this model does regression; there are no class probabilities (use predict)")
        frame, columns = self._predict(data, proba=True, strict=strict)
        width = len(self.classes)
        return pd.DataFrame(dict(zip(self.classes, columns[-width:])), index=frame.index)

    def evaluate(self, data, *, strict: bool = False) -> dict[str, float]:
        """The loss and the task's metrics on the labelled rows of `data` (the target columns present),
        as `bptrain evaluate --data` computes them."""
        from bptrain import app
        from bptrain import threads as blas
        from bptrain.inference import score

        frame, source = self._frame(data)
        if isinstance(data, (str, os.PathLike)):
            app.warn_if_trained_on(self._trained, data, len(frame), "evaluate", _warn)
        app.check_targets(self._trained, frame, source, "evaluate", "predict")
        with blas.limited(self._threads):
            split = app.labelled_frame(self._trained, frame, source, strict=strict, on_event=_warn, hint=STRICT_HINT, setting=STRICT_SETTING)
            return score(self._trained.model, self._trained.loss, self._trained.prep, split)

    def _predict(self, data, *, proba: bool, strict: bool):
        """(the rows as a frame, predict's output columns for them), unseen categories warned about once."""
        frame, source = self._frame(data)
        columns, message = self._columns(frame, source, proba=proba, strict=strict, hint=STRICT_HINT, setting=STRICT_SETTING)
        if message:
            warnings.warn(message, BptrainWarning, stacklevel=3)
        return frame, columns

    def _columns(self, frame, source: str, *, proba: bool, strict: bool, hint: str, setting: str, decimal: str | None = None):
        """(predict's output columns for the rows of `frame`, in predictions.header's order; the warning
        about categories the model never saw, ending in `hint`, or None). For the front ends too:
        `setting` names, in the error of an unseen category, what the caller set to make it one.
        `frame` is a DataFrame, or rows that `_plain` read; `decimal` the decimal mark of the text
        a DataFrame was read from (default: the training files')."""
        from bptrain import app
        from bptrain import threads as blas
        from bptrain.data.columns import Unseen
        from bptrain.data.plaincsv import Plain

        with blas.limited(self._threads):
            if isinstance(frame, Plain):
                return app.columns_of_inputs(self._trained, frame.x, proba), frame.unseen.message(source, hint)
            unseen = Unseen(setting)
            columns = app.prediction_columns(self._trained, frame, source, proba=proba, strict=strict, unseen=unseen, decimal=decimal)
        return columns, unseen.message(source, hint)

    def _plain(self, data: bytes, options, *, strict: bool):
        """The rows of the CSV text `data` (read by `options`) when it is plain, read without pandas
        (bptrain.data.plaincsv) to the inputs pandas would give; None for any other text."""
        from bptrain.data import plaincsv

        return plaincsv.parse(data, self._trained.prep, [], self._trained.meta["model"]["dtype"], strict=strict, options=options)

    def _frame(self, data):
        """(a DataFrame of the rows, its name in messages) for a DataFrame or the path of a file."""
        import pandas as pd

        if isinstance(data, pd.DataFrame):
            from bptrain.data import reading

            if data.columns.nlevels > 1:
                raise DataError(
                    f"{DATAFRAME}: the columns have {data.columns.nlevels} levels (a MultiIndex); give one name per "
                    "column, e.g. frame.columns = [...]"
                )
            reading.check_header(DATAFRAME, [str(c) for c in data.columns])  # as a file's header is checked
            return data, DATAFRAME
        if isinstance(data, (str, os.PathLike)):
            from bptrain.data import reading

            prep = self._trained.prep
            frame = reading.read_table(data, options=prep.read, paths=reading.COMMAND_LINE_PATHS, text=prep.categorical)
            return frame, reading.source_name(data)
        raise TypeError(f"expected a pandas DataFrame or the path of a CSV or Parquet file, not {type(data).__name__}")


# --- training ------------------------------------------------------------------------------------


class Run:
    """A finished run: its folder, its report (report.json's content) and its model."""

    def __init__(self, path: Path, report: dict[str, Any]):
        self.path, self.report = Path(path), report
        self._model: Model | None = None

    def __repr__(self) -> str:
        return f"<bptrain.Run {self.path} ({self.report.get('stop_reason')})>"

    @property
    def model(self) -> Model:
        """The run's model.npz, loaded on first use."""
        if self._model is None:
            self._model = load(self.path)
        return self._model


def fit(
    config: str | os.PathLike | Mapping[str, Any],
    *,
    overrides: Mapping[str, Any] | None = None,
    runs_dir: str | os.PathLike = "runs",
    name: str | None = None,
) -> Run:
    """Train as `bptrain fit` does: a YAML config file (data paths relative to it) or a mapping of
    the same keys (data paths relative to the current folder); `overrides` maps dotted keys to
    values, as `--set` does ({"optimizer.lr": 0.01}). Writes a new run folder under `runs_dir`
    (named by `name`, else the config's name) and returns it once training ends.

    ConfigError and DataError before training; DivergedError when the loss or the weights become
    non-finite (the best model so far is kept); KeyboardInterrupt stops it where it is (the last
    checkpoint is kept: `bptrain fit --resume RUN` continues). Cross-validation
    (data.split.folds) is the command line's: `bptrain fit CONFIG --folds K`.
    """
    from bptrain import app
    from bptrain.config.loading import load_config, set_dotted, validate_config
    from bptrain.data import reading

    if overrides is not None and not isinstance(overrides, Mapping):
        raise TypeError(f"overrides: expected a mapping of dotted keys to values, not {type(overrides).__name__}")
    for key in overrides or {}:
        if not isinstance(key, str):
            raise TypeError(f"overrides: expected dotted keys as text, such as 'optimizer.lr', not {type(key).__name__} {key!r}")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name: expected text or None, not {type(name).__name__}")
    if isinstance(config, Mapping):
        raw = copy.deepcopy(dict(config))
        raw.pop("tune", None)  # bptrain tune's search, left out as a config file's is
        for key, value in (overrides or {}).items():
            set_dotted(raw, key, value)
        cfg = validate_config(raw, Path("<config>"), list(overrides or {}))
    elif isinstance(config, (str, os.PathLike)):
        cfg = load_config(Path(config), overrides)
    else:
        raise TypeError(f"expected the path of a YAML config or a mapping of its keys, not {type(config).__name__}")
    if cfg.data.split.folds is not None and cfg.data.split.fold is None:
        raise ConfigError(
            f"data.split.folds: {cfg.data.split.folds}-fold cross-validation runs from the command line "
            "(bptrain fit CONFIG --folds K); here, fit one fold with data.split.fold"
        )
    paths = reading.MAPPING_PATHS if isinstance(config, Mapping) else reading.CONFIG_PATHS
    result = app.fit(cfg, runs_dir=Path(runs_dir), name=name, on_event=_warn, data_paths=paths)
    return Run(result.run_dir, result.report)
