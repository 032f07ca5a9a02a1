"""The study's driver: checks the search, creates (or reopens) the tune folder, asks Optuna for each
trial's parameters, runs the trials on workers, records how each ended, and writes the reports.

The driver alone asks and tells, so every trial's outcome is written once, by one process, into the
journal file (Optuna's JournalStorage: appended under a lock and fsynced). A trial cut short by
Ctrl-C, a killed driver or a lost worker is recorded as failed with `interrupted` and does not
count: `--resume` runs new trials until the requested number have ended on their own (complete,
pruned, or failed by their own error). Nothing here prints; progress goes to `on_event`.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import bptrain
from bptrain import events, fileio
from bptrain.errors import BptrainError, ConfigError, ExitCode, extra_needed
from bptrain.runs import folder as runs
from bptrain.training.loop import StopRequest
from bptrain.tune import report, space
from bptrain.tune.trial import STOP_FILE, STUDY, absolute_paths, pruner, run_trial, storage

TUNE_FILE = runs.TUNE_PLAN
INTERRUPTED = "interrupted"


class TuneInterrupted(BptrainError):
    """The study stopped on SIGINT or SIGTERM; exits 130 or 143."""

    def __init__(self, reason: str, tune_dir: Path, finished: int | None = None, trials: int | None = None):
        self.exit_code = ExitCode.SIGINT if reason == "interrupted" else ExitCode.SIGTERM
        name = "SIGINT" if reason == "interrupted" else "SIGTERM"
        after = f" after {finished} of {trials} trials" if finished is not None else ""
        super().__init__(
            f"{reason} by {name}{after}; running trials are recorded as interrupted and will "
            f"be run again as new ones; continue with: bptrain tune --resume {tune_dir}"
        )


class TrialsFailed(BptrainError):
    """No trial ended with a result; exits with the first failure's code."""

    def __init__(self, message: str, exit_code: int):
        self.exit_code = ExitCode(exit_code) if exit_code in ExitCode._value2member_map_ else ExitCode.INTERNAL
        super().__init__(message)


@dataclass
class TuneResult:
    tune_dir: Path
    summary: dict[str, Any]


@dataclass
class Plan:
    """Everything the study needs, as tune.json records it."""

    config_path: Path
    raw: dict  # the config without tune:, overrides and seed applied
    search: space.Search
    metric: str
    direction: str
    trials: int
    folds: int | None
    max_resource: int

    def to_json(self) -> dict:
        return {
            "bptrain_version": bptrain.__version__,
            "config": str(self.config_path.resolve()),
            "raw": self.raw,
            "search": self.search.as_dict(),
            "metric": self.metric,
            "direction": self.direction,
            "trials": self.trials,
            "folds": self.folds,
            "max_resource": self.max_resource,
        }


# --- the plan ----------------------------------------------------------------------------------


def plan(config_path: Path, *, space_path: Path | None = None, overrides: dict | None = None, trials: int = 20, folds: int | None = None) -> Plan:
    """The checked study: config, search space, metric and direction. ConfigError or DataError for
    any problem, before a folder exists."""
    from bptrain import app
    from bptrain.config.loading import read_yaml_mapping, set_dotted, validate_config

    config_path = Path(config_path)
    raw, section = space.split(read_yaml_mapping(config_path))
    if space_path is not None:
        search = space.parse(read_yaml_mapping(space_path), str(space_path), prefix="")
    elif section is None:
        raise ConfigError(f"{config_path}: no tune: section to search; add one (see the README's tune section) or give --space FILE")
    else:
        search = space.parse(section, str(config_path))
    for key, value in (overrides or {}).items():
        set_dotted(raw, key, value)
    if folds is not None:
        set_dotted(raw, "data.split.folds", folds)
    config = validate_config(raw, config_path, list(overrides or {}))
    space.check_against(raw, config_path, search, prefix="" if space_path is not None else "tune.")
    raw["seed"] = config.seed if config.seed is not None else app.draw_seed()
    checked = app.check(_first_fold(validate_config(raw, config_path)))  # the data read once, every problem before any folder
    metric, direction = space.objective(search, config, checked["metrics"], prefix="" if space_path is not None else "tune.")
    cv = config.data.split.folds if config.data.split.fold is None else None
    return Plan(config_path, raw, search, metric, direction, trials, cv, cv or config.stopping.max_epochs)


def _first_fold(config):
    from bptrain.crossval import _fold

    return _fold(config, 1) if config.data.split.folds is not None and config.data.split.fold is None else config


def reopen(tune_dir: Path, trials: int | None) -> Plan:
    """The plan recorded in a tune folder; ConfigError when it is not one."""
    tune_dir = Path(tune_dir)
    if not tune_dir.is_dir():
        raise ConfigError(f"--resume {tune_dir}: no such tune folder")
    try:
        recorded = json.loads((tune_dir / TUNE_FILE).read_text(encoding="utf-8"))
        search = space.parse(recorded["search"], str(tune_dir / TUNE_FILE), prefix="")
        path = Path(recorded["config"])
        return Plan(path, recorded["raw"], search, recorded["metric"], recorded["direction"], trials or recorded["trials"], recorded["folds"], recorded["max_resource"])
    except FileNotFoundError:
        raise ConfigError(f"--resume {tune_dir}: not a tune folder written by bptrain tune (no {TUNE_FILE})") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"--resume {tune_dir}: {TUNE_FILE} is unreadable ({type(e).__name__}: {e})") from None


# --- running -----------------------------------------------------------------------------------


def tune(
    the_plan: Plan,
    *,
    runs_dir: Path = Path("runs"),
    name: str | None = None,
    resume: Path | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    timeout: float | None = None,
    stop_request: StopRequest | None = None,
    on_event: events.Events = events.quiet,
) -> TuneResult:
    """Run the study of `the_plan` in a new tune folder under `runs_dir` (or continue the one at
    `resume`) until `trials` trials have ended on their own, or `timeout` seconds have passed."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    stop_request = stop_request or StopRequest()
    with runs.RunLock() as lock, _executor(workers, scheduler) as submit:  # a cluster out of reach: no folder
        if resume is None:
            tune_dir = runs.new_run_dir(runs_dir, f"{name or the_plan.raw.get('name') or 'run'}-tune")
            lock.acquire(tune_dir)
            fileio.atomic_write_text(tune_dir / TUNE_FILE, json.dumps(the_plan.to_json(), indent=2) + "\n")
        else:
            tune_dir = Path(resume)
            lock.acquire(tune_dir)
        stop_request.run_dir = tune_dir
        (tune_dir / STOP_FILE).unlink(missing_ok=True)
        study = _study(tune_dir, the_plan)
        _close_stale(study, on_event)
        stopped = _run(study, the_plan, tune_dir, submit, submit.size(),
                       threads_one=workers > 1 or scheduler is not None, timeout=timeout, stop_request=stop_request, on_event=on_event)
        summary = report.write(tune_dir, study, the_plan)
        if stopped:
            raise TuneInterrupted(stopped, tune_dir, _finished(study), _limit(the_plan))
        if summary["best"] is None and not study.trials and timeout is not None:
            raise ConfigError(f"--timeout {timeout:g}: it passed before a trial started, so none ran; "
                              f"give more seconds, e.g. bptrain tune --resume {tune_dir} --timeout 60")
        if summary["best"] is None:
            first = next((t for t in study.trials if t.state == optuna.trial.TrialState.FAIL), None)
            message = first.user_attrs.get("message", "") if first is not None else ""
            raise TrialsFailed(
                f"all {len(study.trials)} trials failed; the first (trial {first.number if first else 0}): {message}; "
                f"every trial is listed in {tune_dir / 'trials.csv'}",
                first.user_attrs.get("exit_code", 1) if first is not None else 1,
            )
        return TuneResult(tune_dir, summary)


def _study(tune_dir: Path, the_plan: Plan):
    import optuna

    study_storage = storage(tune_dir)
    existing = len(study_storage.get_all_studies()) and len(optuna.load_study(study_name=STUDY, storage=study_storage).trials)
    search = the_plan.search
    seed = search.seed if search.seed is not None else the_plan.raw["seed"]
    # a resumed study's sampler draws on from a new stream: the first one would repeat its first trials' parameters
    seed = int(np.random.SeedSequence([seed, existing or 0]).generate_state(1)[0]) if existing else seed % 2**32
    samplers = {
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed, constant_liar=True),  # trials running at once get different values
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
        "grid": lambda: _grid({p.key: p.grid() for p in search.params}, seed),
        "qmc": lambda: optuna.samplers.QMCSampler(scramble=True, seed=seed),
    }
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # QMCSampler's: a note for developers
    return optuna.create_study(
        study_name=STUDY,
        storage=study_storage,
        sampler=samplers[search.sampler](),
        pruner=pruner(search.pruner, the_plan.max_resource, the_plan.folds),
        direction=the_plan.direction,
        load_if_exists=True,
    )


def _grid(search_space: dict, seed: int):
    """Optuna's grid sampler without its stop at the last grid point: Study.stop() works inside
    study.optimize() only, and this driver asks and tells (it caps the trials at the grid's size)."""
    import optuna

    class Grid(optuna.samplers.GridSampler):
        def after_trial(self, study, trial, state, values) -> None:
            pass

    return Grid(search_space, seed=seed)


def _close_stale(study, on_event) -> None:
    """Trials left running by a driver that was killed: recorded as interrupted, to be run again as new ones."""
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_user_attr(t._trial_id, "message", "stopped with the study")
        study._storage.set_trial_user_attr(t._trial_id, INTERRUPTED, True)
        study.tell(t.number, state=TrialState.FAIL)
        on_event(events.Notice(f"trial {t.number} was running when the study stopped; it is recorded as interrupted and runs again as a new trial"))


def _finished(study) -> int:
    """Trials that ended on their own: complete, pruned, or failed by their own error."""
    from optuna.trial import TrialState

    return sum(1 for t in study.get_trials(deepcopy=False) if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
               or (t.state == TrialState.FAIL and not t.user_attrs.get(INTERRUPTED)))


def _limit(the_plan: Plan) -> int:
    """The trials to end on their own: those requested, the grid sampler's at most its grid's size."""
    if the_plan.search.sampler == "grid":
        return min(the_plan.trials, math.prod(len(p.grid()) for p in the_plan.search.params))
    return the_plan.trials


def _run(study, the_plan: Plan, tune_dir: Path, submit, slots: int, *, threads_one: bool, timeout, stop_request, on_event) -> str | None:
    """Keep `slots` trials running until enough have ended; the stop reason when a signal came."""
    distributions = {p.key: p.distribution() for p in the_plan.search.params}
    limit = _limit(the_plan)
    deadline = time.monotonic() + timeout if timeout is not None else None  # 0: no trial at all, not no limit
    running: dict[Future, Any] = {}
    stopping = None
    try:
        while True:
            while (stopping is None and len(running) < slots and _finished(study) + len(running) < limit
                   and (deadline is None or time.monotonic() < deadline)):
                trial = study.ask(distributions)
                job = _job(trial, the_plan, tune_dir, threads_one)
                if isinstance(job, str):  # the parameters make an invalid config: a failed trial
                    _record(study, trial, {"state": "failed", "message": job, "exit_code": int(ExitCode.USAGE), "seconds": 0.0}, the_plan, on_event)
                    continue
                running[submit(run_trial, job)] = trial
            if not running:
                return stopping
            done, _ = wait(list(running), timeout=0.1, return_when=FIRST_COMPLETED)  # a signal is acted on within 0.1 s
            for future in done:
                trial = running.pop(future)
                _record(study, trial, _outcome(future, trial), the_plan, on_event)
            if stop_request.reason is not None and stopping is None:
                stopping = stop_request.reason
                fileio.atomic_write_text(tune_dir / STOP_FILE, stopping + "\n")
    except BaseException:  # a second Ctrl-C, or a bug: the running trials are recorded as interrupted
        fileio.atomic_write_text(tune_dir / STOP_FILE, "stop\n")
        for future, trial in running.items():
            future.cancel()
            _interrupted(study, trial)
        raise


def _outcome(future: Future, trial) -> dict[str, Any]:
    try:
        return future.result()
    except Exception as e:  # the worker itself died (a killed process, a lost cluster)
        return {"state": "interrupted", "message": f"its worker was lost ({type(e).__name__}: {e})", "seconds": 0.0}


def _job(trial, the_plan: Plan, tune_dir: Path, threads_one: bool) -> dict | str:
    """What a worker needs to run `trial`, or the config's message when its parameters make an invalid config."""
    from bptrain.config.loading import validate_config

    raw = space.apply(the_plan.raw, trial.params)
    if threads_one and "training.threads" not in trial.params and (raw.get("training") or {}).get("threads", "auto") == "auto":
        raw = space.apply(raw, {"training.threads": 1})  # N workers on N cores: one BLAS thread each
    try:
        config = validate_config(raw, the_plan.config_path)
    except ConfigError as e:
        return f"the parameters {space.describe(trial.params)} make the config invalid: {e}"
    return {
        "tune_dir": str(tune_dir.resolve()),
        "number": trial.number,
        "trial_id": trial._trial_id,
        "config": absolute_paths(config.model_dump(mode="json")),
        "metric": the_plan.metric,
        "folds": the_plan.folds,
        "pruner": the_plan.search.pruner,
        "max_resource": the_plan.max_resource,
    }


def _record(study, trial, outcome: dict[str, Any], the_plan: Plan, on_event) -> None:
    """Tell the study how `trial` ended, with its run folder, seconds and message as user attributes."""
    from optuna.trial import TrialState

    for key in ("run", "message", "seconds", "fit_seconds", "exit_code"):
        if outcome.get(key) not in (None, ""):
            trial.set_user_attr(key, outcome[key])
    state = outcome["state"]
    if state == "interrupted":
        _interrupted(study, trial)
        return
    if state == "complete" and outcome["value"] is not None and math.isfinite(outcome["value"]):
        study.tell(trial, outcome["value"])
    elif state == "pruned":
        study.tell(trial, state=TrialState.PRUNED)
    else:
        if state == "complete":
            trial.set_user_attr("message", f"{the_plan.metric} is not a finite number ({outcome['value']})")
        study.tell(trial, state=TrialState.FAIL)
        state = "failed"
    frozen = study._storage.get_trial(trial._trial_id)
    value = frozen.value if state == "complete" else report.last_reported(frozen) if state == "pruned" else None
    on_event(events.TrialDone(trial.number, _finished(study), _limit(the_plan), state, trial.params, the_plan.metric,
                              value, _best(study), outcome.get("seconds", 0.0), frozen.user_attrs.get("message", "")))


def _interrupted(study, trial) -> None:
    from optuna.trial import TrialState

    trial.set_user_attr(INTERRUPTED, True)
    trial.set_user_attr("message", "stopped with the study")
    try:
        study.tell(trial, state=TrialState.FAIL)
    except (RuntimeError, ValueError):  # already told
        pass


def _best(study) -> tuple[int, float] | None:
    try:
        best = study.best_trial
    except ValueError:
        return None
    return best.number, float(best.value)


# --- workers ------------------------------------------------------------------------------------


class _executor:
    """`submit(fn, job) -> Future` on local worker processes, or on the Dask cluster at `scheduler`."""

    CONNECT_SECONDS = 5

    def __init__(self, workers: int, scheduler: str | None):
        self.workers, self.scheduler = workers, scheduler
        self.pool = self.client = None

    def __enter__(self):
        if self.scheduler is None:
            self.pool = self._local()
        else:
            self.pool, self.client = self._dask()
        return self

    def __call__(self, fn, job) -> Future:
        from concurrent.futures.process import BrokenProcessPool

        try:
            return self.pool.submit(fn, job)
        except BrokenProcessPool:  # a worker process died: the pool cannot be used again
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = self._local()
            return self.pool.submit(fn, job)

    def _local(self):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        from bptrain.tune.trial import start_worker

        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=start_worker)

    def _dask(self):
        try:
            from distributed import Client
        except ImportError:
            raise extra_needed("--scheduler needs Dask's distributed scheduler", "dask") from None
        try:
            self._probe()
            client = Client(self.scheduler, timeout=self.CONNECT_SECONDS, set_as_default=False)
        except Exception as e:  # refused, timed out, or something else answered: a scheduler speaks Dask's protocol
            raise ConfigError(
                f"--scheduler {self.scheduler}: cannot reach a Dask scheduler there ({type(e).__name__}: {e}); "
                "start one with: dask scheduler, and workers with: dask worker ADDRESS"
            ) from None
        return client.get_executor(pure=False), client

    def _probe(self) -> None:
        """An address Dask cannot use (an unknown scheme such as http://, no host) fails here before a
        client exists (a client that failed to start waits 10 s to close, and then prints a traceback);
        a TCP address that refuses or does not answer fails here at once, not after the client's retries."""
        import socket
        from urllib.parse import urlsplit

        from distributed.comm import parse_address
        from distributed.comm.registry import get_backend

        scheme, _ = parse_address(self.scheduler)
        get_backend(scheme)  # ValueError naming the schemes Dask knows
        parts = urlsplit(self.scheduler if "://" in self.scheduler else f"tcp://{self.scheduler}")
        if parts.scheme in ("tcp", "tls", "ws", "wss") and not parts.hostname:
            raise ValueError("no host in the address; give one such as tcp://127.0.0.1:8786")
        if parts.scheme in ("tcp", "tls"):
            socket.create_connection((parts.hostname, parts.port or 8786), timeout=self.CONNECT_SECONDS).close()

    def size(self) -> int:
        """Trials at once: the local workers, or the cluster's worker threads (at least --workers)."""
        if self.client is None:
            return self.workers
        return max(self.workers, sum(w.get("nthreads", 1) for w in self.client.scheduler_info(n_workers=-1)["workers"].values()))

    def __exit__(self, *exc) -> None:
        if self.client is not None:
            self.pool.shutdown(wait=exc[0] is None)
            self.client.close()
        elif self.pool is not None:
            # Waited for, unless a second Ctrl-C asks to leave at once: the trials have ended, or were
            # told to through the stop file. A pool left to end by itself races the interpreter's
            # exit, which may write to a pipe the pool has just closed (CPython 3.11: a traceback of
            # "OSError: [Errno 9] Bad file descriptor" after the stop message).
            self.pool.shutdown(wait=exc[0] is None or issubclass(exc[0], Exception), cancel_futures=True)
