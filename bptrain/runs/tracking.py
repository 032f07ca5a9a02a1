"""Tracking: a run logged to MLflow as it trains (tracking.mlflow, or `fit --mlflow`; the `mlflow` extra).

One MLflow run per fit, named after the run folder, in the experiment tracking.mlflow.experiment
(default: the config's name), created when missing. Params: the resolved config, flattened to
dotted keys as `--set` takes them (`optimizer.lr`, `model.layers.0.units`). Metrics: every finite number of each
epoch's row at step = epoch, and at the end the final metrics of report.json (the model kept) as
`final_test_accuracy`, `final_val_loss`, ... (step = the epochs run). Artifacts: the run folder's files (not the checkpoints).
A resumed run is a new MLflow run holding every epoch so far. The MLflow run ends FINISHED, FAILED
(diverged) or KILLED (interrupted).

mlflow is imported here only, when tracking is asked for. A failure of the tracking (an
unreachable server, a store that cannot be written) is one warning, after which the run is no
longer tracked; it never ends the training.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from bptrain import events
from bptrain.errors import extra_needed
from bptrain.training.callbacks import Callback

if TYPE_CHECKING:
    from bptrain.config.schema import MlflowConfig
    from bptrain.training.loop import Trainer

BATCH = 100  # params or metrics per request (MLflow's log_batch takes at most 100 params)
STATUS = {"diverged": "FAILED", "interrupted": "KILLED", "terminated": "KILLED"}


def require_mlflow() -> None:
    """ConfigError with the install command when the mlflow extra is missing (before any training)."""
    try:
        import mlflow  # noqa: F401
    except ImportError as e:
        raise extra_needed(f"tracking.mlflow needs MLflow ({e.name or 'a module'} is missing)", "mlflow") from None


def flat_params(value: Any, prefix: str = "") -> dict[str, str]:
    """{"optimizer.lr": "0.01", "model.layers.0.units": "16", ...} from the resolved config (keys as --set takes them)."""
    if isinstance(value, dict) and value:
        out: dict[str, str] = {}
        for key, item in value.items():
            out.update(flat_params(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value and any(isinstance(item, (dict, list)) for item in value):
        out = {}
        for i, item in enumerate(value):
            out.update(flat_params(item, f"{prefix}.{i}"))
        return out
    return {prefix: "null" if value is None else str(value)}


class MlflowTracking(Callback):
    """Logs params at the start, each epoch's row as it ends, and (finish) the report and the files."""

    def __init__(self, settings: MlflowConfig, experiment: str, params: dict[str, str], run_dir: Path, on_event: Callable[[Any], None]):
        self.settings, self.experiment, self.params, self.run_dir = settings, experiment, params, Path(run_dir)
        self.on_event = on_event
        self.client = None
        self.run_id: str | None = None

    def _guarded(self, what: str, action: Callable[[], None]) -> None:
        """Run `action` unless tracking has failed; a failure warns once and stops the tracking."""
        if self.client is None and what != "start":
            return
        try:
            action()
        except Exception as e:  # any failure of the tracking library or server: the training must go on
            self.client = None
            where = self.settings.tracking_uri or "the default tracking URI"
            self.on_event(events.Warning(f"mlflow: {what} at {where} failed ({type(e).__name__}: {e}); training goes on, no longer tracked in MLflow"))

    def on_train_begin(self, trainer: Trainer) -> None:
        self._guarded("start", lambda: self._start(trainer.position.rows))

    def _start(self, rows: list[dict]) -> None:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=self.settings.tracking_uri)
        found = client.get_experiment_by_name(self.experiment)
        experiment_id = found.experiment_id if found is not None else client.create_experiment(self.experiment)
        run = client.create_run(experiment_id, run_name=self.run_dir.name, tags={"bptrain.run_dir": str(self.run_dir.resolve())})
        self.client, self.run_id = client, run.info.run_id
        params = [Param(k[:250], v[:6000]) for k, v in self.params.items()]
        for start in range(0, len(params), BATCH):
            client.log_batch(self.run_id, params=params[start : start + BATCH])
        self._log_rows(rows)

    def _log_rows(self, rows: list[dict]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [
            Metric(key, float(value), now, row["epoch"])
            for row in rows
            for key, value in row.items()
            if key != "epoch" and isinstance(value, (int, float)) and math.isfinite(value)
        ]
        for start in range(0, len(metrics), BATCH):
            self.client.log_batch(self.run_id, metrics=metrics[start : start + BATCH])

    def on_epoch_end(self, trainer: Trainer, row: dict) -> None:
        self._guarded(f"logging epoch {row['epoch']}", lambda: self._log_rows([row]))

    def finish(self, report: dict) -> None:
        """The final metrics of `report` (report.json), the run folder's files, and the run's end."""
        self._guarded("logging the report and files", lambda: self._finish(report))

    def _finish(self, report: dict) -> None:
        finals = {f"final_{split}_{name}": value for split, scores in report["metrics"].items() if scores for name, value in scores.items()}
        self._log_rows([{"epoch": report["epochs_run"], **finals}])
        for path in sorted(self.run_dir.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                self.client.log_artifact(self.run_id, str(path))
        self.client.set_terminated(self.run_id, STATUS.get(report["stop_reason"], "FINISHED"))
