"""The local worker pool of `bptrain tune`: ended and waited for when the study stops."""

from __future__ import annotations

import contextlib

import pytest

from bptrain.errors import ConfigError
from bptrain.tune.study import _executor


@pytest.mark.parametrize("stop", [None, ConfigError], ids=["finished", "stopped-by-an-error"])
def test_the_pool_its_thread_and_its_workers_have_ended_when_the_study_does(stop):
    """A study stopped by a signal or an error leaves no pool behind to race the interpreter's exit
    (which wrote to a pipe the pool had just closed: 'OSError: [Errno 9] Bad file descriptor')."""
    with pytest.raises(stop) if stop else contextlib.nullcontext():
        with _executor(1, None) as submit:
            assert submit(abs, -3).result(timeout=120) == 3
            manager, workers = submit.pool._executor_manager_thread, list(submit.pool._processes.values())
            if stop:
                raise stop("the study stopped")
    assert not manager.is_alive()
    assert workers and not any(worker.is_alive() for worker in workers)
