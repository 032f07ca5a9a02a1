"""The BLAS thread policy (bptrain.threads): a set count is kept, `auto` gives small networks one
thread without looking at the machine and larger ones the idle cores, and the limit is applied
through threadpoolctl for the duration of a block."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from bptrain import threads
from bptrain.nn.model import build_model


def blas_threads() -> int:
    return next(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")


def test_a_set_count_is_used_as_it_is():
    assert threads.choose(3, 10**9) == threads.Threads(3, "set")


def test_auto_gives_small_products_one_thread_without_measuring(monkeypatch):
    monkeypatch.setattr(threads, "idle_cores", lambda cores, since=None: pytest.fail("measured the machine for a small network"))
    assert threads.choose("auto", threads.MIN_THREADED_PRODUCT - 1) == threads.Threads(
        1, "auto: products up to 3,999,999 multiply-adds are too small for threads"
    )


@pytest.mark.parametrize("idle, count", [(4.0, 4), (3.85, 4), (3.75, 3), (1.79, 1), (1.8, 2), (0.3, 1), (0.0, 1)])
def test_auto_gives_large_products_the_idle_cores(monkeypatch, idle, count):
    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    monkeypatch.setattr(threads, "idle_cores", lambda cores, since=None: idle)
    chosen = threads.choose("auto", threads.MIN_THREADED_PRODUCT)
    assert chosen == threads.Threads(count, f"auto: {idle:.1f} of 4 cores idle at the start")


def _network(inputs: int, units: int, outputs: int = 3):
    return build_model([{"units": units}], inputs, outputs, rng=np.random.default_rng(0), batch_size=256)


@pytest.mark.parametrize(
    "units, why",
    [
        (1428, "auto: 9,996 multiply-adds a row for 4 input columns: reading the rows outweighs them, one thread"),
        (1429, "auto: products up to 1,463,296 multiply-adds are too small for threads"),  # 10,003 a row: training's rule decides
    ],
)
def test_auto_at_inference_gives_one_thread_where_reading_the_rows_outweighs_the_forward_pass(monkeypatch, units, why):
    monkeypatch.setattr(threads, "idle_cores", lambda cores, since=None: pytest.fail("measured the machine for a small network"))
    assert threads.MIN_INFERENCE_WORK * 4 == 10_000
    assert threads.choose_for_inference("auto", _network(4, units), 256, columns=4) == threads.Threads(1, why)


def test_auto_at_inference_gives_a_network_that_outweighs_reading_the_idle_cores(monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads, "idle_cores", lambda cores, since=None: 2.0)
    network = _network(4, 2048)  # 14,336 multiply-adds a row, 2,097,152 a batch of 256 on the largest product
    assert threads.choose_for_inference("auto", network, 256, columns=4) == threads.Threads(1, "auto: products up to 2,097,152 multiply-adds are too small for threads")
    assert threads.choose_for_inference("auto", network, 512, columns=4) == threads.Threads(2, "auto: 2.0 of 2 cores idle at the start")
    assert threads.choose_for_inference(3, _network(4, 8), 256, columns=4) == threads.Threads(3, "set")


def test_idle_cores_scale_the_idle_share_of_the_cpu_time(monkeypatch):
    snapshots = iter([{"cpu0": (100, 1000), "cpu1": (50, 900)}, {"cpu0": (110, 1010), "cpu1": (52, 910)}])
    monkeypatch.setattr(threads, "_cpu_times", lambda: next(snapshots))
    monkeypatch.setattr(threads.time, "sleep", lambda seconds: None)
    assert threads.idle_cores(2) == pytest.approx(2 * 12 / 20)  # cpu0 idle all along, cpu1 busy 80 %


@pytest.mark.parametrize("own, idle", [(0.0, 2 - 1.0), (0.5, 2 - 0.5), (1.0, 2.0), (1.5, 2.0)])
def test_a_watch_counts_only_what_other_processes_used_and_does_not_pause(monkeypatch, own, idle):
    # Over 2 s, the two cores were busy 1 core's worth (200 of 400 jiffies); this process used `own`
    # cores of it, other processes the rest.
    monkeypatch.setattr(threads, "_cpu_times", lambda: {"cpu0": (100, 1000), "cpu1": (100, 1000)})
    monkeypatch.setattr(threads.time, "monotonic", lambda: 50.0)
    monkeypatch.setattr(threads.time, "process_time", lambda: 10.0)
    with threads.watching() as since:
        monkeypatch.setattr(threads, "_cpu_times", lambda: {"cpu0": (200, 1200), "cpu1": (200, 1200)})
        monkeypatch.setattr(threads.time, "monotonic", lambda: 52.0)
        monkeypatch.setattr(threads.time, "process_time", lambda: 10.0 + 2 * own)
        monkeypatch.setattr(threads.time, "sleep", lambda seconds: pytest.fail("paused to measure"))
        assert threads.idle_cores(2, since) == pytest.approx(idle)


def _paused(monkeypatch, since, cores: int = 1) -> float:
    """idle_cores(cores, since) where measuring it takes a pause: its pause is checked."""
    snapshots = iter([{"cpu0": (100, 1000)}, {"cpu0": (105, 1010)}])
    monkeypatch.setattr(threads, "_cpu_times", lambda: next(snapshots))
    paused = []
    monkeypatch.setattr(threads.time, "sleep", paused.append)
    idle = threads.idle_cores(cores, since)
    assert paused == [threads.IDLE_WINDOW]
    return idle


def test_a_watch_started_just_now_is_not_enough_to_measure(monkeypatch):
    with threads.watching() as since:
        monkeypatch.setattr(threads.time, "monotonic", lambda: since.at + threads.IDLE_WINDOW / 2)
        assert _paused(monkeypatch, since) == pytest.approx(0.5)


def test_a_watch_that_another_command_of_the_process_overlapped_is_not_trusted(monkeypatch):
    with threads.watching() as since:
        with threads.watching():  # e.g. a second fit on another thread of the same program
            pass
        monkeypatch.setattr(threads.time, "monotonic", lambda: since.at + 1.0)
        assert _paused(monkeypatch, since) == pytest.approx(0.5)
    monkeypatch.setattr(threads, "_cpu_times", lambda: {"cpu0": (0, 0)})
    with threads.watching() as first, threads.watching():
        monkeypatch.setattr(threads.time, "monotonic", lambda: first.at + 1.0)
        assert _paused(monkeypatch, first) == pytest.approx(0.5)


def test_the_cpu_times_are_read_for_the_cores_this_process_may_use():
    import os

    times = threads._cpu_times()
    assert set(times) == {f"cpu{i}" for i in os.sched_getaffinity(0)}
    assert all(0 <= idle <= total for idle, total in times.values())
    assert 1 <= threads.usable_cores() <= len(times)
    assert 0.0 <= threads.idle_cores(len(times)) <= len(times)
    with threads.watching() as since:
        sum(i * i for i in range(10**6))  # this process busy for a while
        import time

        time.sleep(threads.IDLE_WINDOW)
        assert 0.0 <= threads.idle_cores(len(times), since) <= len(times)


def test_the_largest_product_is_that_of_the_widest_layer():
    model = build_model([{"units": 16}], 4, 3, rng=np.random.default_rng(0), batch_size=32)
    assert threads.largest_product(model, 32) == max(32 * 4 * 16, 32 * 16 * 3)


def test_the_limit_holds_inside_the_block_and_is_undone_after():
    before = blas_threads()
    with threads.limited(1):
        assert blas_threads() == 1
    assert blas_threads() == before
