"""Process model: threads, fork, memory."""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading

import msgpack
import numpy as np
import pytest

import pyfeat

from conftest import base_item, base_user, run_in_threads


def test_eight_threads_get_serial_results():
    engine = pyfeat.FeatureEngine()
    requests = []
    for r in range(8):
        user = msgpack.packb(base_user(user_id=r, now=base_user()["now"] + r * 60))
        items = [msgpack.packb(base_item(i + r, title=f"iPhone {i} диван {r}")) for i in range(800)]
        cands = {"source": np.arange(800) % 8, "source_score": np.random.default_rng(r).random(800),
                 "source_rank": np.arange(800)}
        requests.append((user, items, cands))
    serial = [engine.compute(*req) for req in requests]
    results: dict[tuple[int, int], np.ndarray] = {}

    def work(t):
        for k in range(10):
            r = (t + k) % 8
            results[(t, k)] = engine.compute(*requests[r])

    run_in_threads(8, work)
    assert len(results) == 80
    for (t, k), got in results.items():
        assert got.tobytes() == serial[(t + k) % 8].tobytes()


def test_many_threads_share_the_engine_fairly():
    # More Python threads than cores, each calling in a loop: every one must
    # make progress. (Once the Go scheduler was left to pick which cgo
    # callback ran, and a thread could be starved for seconds.)
    engine = pyfeat.FeatureEngine()
    user = msgpack.packb(base_user())
    items = [msgpack.packb(base_item(i, title=f"диван {i}")) for i in range(1500)]
    counts = [0] * 8
    stop = threading.Event()
    barrier = threading.Barrier(9)

    def work(t):
        barrier.wait()
        while not stop.is_set():
            engine.compute(user, items)
            counts[t] += 1

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    barrier.wait()
    stop.wait(4.0)
    stop.set()
    for th in threads:
        th.join(timeout=120)
    mean = sum(counts) / len(counts)
    assert min(counts) >= 0.25 * mean, counts


def _child_calls(conn):  # runs in a forked child
    try:
        pyfeat.FeatureEngine().compute(base_user(), [base_item()])
        conn.send("no error")
    except pyfeat.ForkError as e:
        conn.send(f"ForkError: {e}")
    except BaseException as e:  # pragma: no cover - reported to the parent
        conn.send(f"{type(e).__name__}: {e}")


def test_fork_after_load_raises_instead_of_hanging():
    pyfeat.FeatureEngine().compute(base_user(), [base_item()])  # the library is loaded
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_child_calls, args=(child,))
    proc.start()
    proc.join(timeout=60)
    if proc.is_alive():  # the hang this guard exists to prevent
        os.kill(proc.pid, signal.SIGKILL)
        pytest.fail("the forked child hung")
    msg = parent.recv()
    assert msg.startswith("ForkError"), msg
    assert "spawn" in msg


def test_spawned_workers_work():
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        out = pool.apply(_spawn_compute)
    assert out == pyfeat.FeatureEngine().compute(base_user(), [base_item()]).tobytes()


def _spawn_compute():
    return pyfeat.FeatureEngine().compute(base_user(), [base_item()]).tobytes()


def test_fork_before_load_is_fine():
    # A process that imports pyfeat but forks before any call is safe: the
    # library loads lazily, in the child.
    code = textwrap.dedent(
        """
        import os, sys
        sys.path.insert(0, %r)
        import pyfeat
        from conftest import base_item, base_user
        pid = os.fork()
        if pid == 0:
            pyfeat.FeatureEngine().compute(base_user(), [base_item()])
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(status))
        """
    ) % os.path.dirname(__file__)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_rss_flat_over_100k_calls():
    engine = pyfeat.FeatureEngine(threads=1)
    user = msgpack.packb(base_user())
    items = [msgpack.packb(base_item(i)) for i in range(10)]
    # Warm up: cffi caches, allocator arenas, and the Go heap, which a call
    # grows by only a few kilobytes, so that it reaches the size at which the
    # collector keeps it (4 MB) only after some ten thousand calls.
    for _ in range(30_000):
        engine.compute(user, items)
    gc.collect()
    before = _rss_bytes()
    for _ in range(100_000):
        engine.compute(user, items)
    gc.collect()
    after = _rss_bytes()
    growth = (after - before) / before
    print(f"RSS {before / 2**20:.1f} MiB -> {after / 2**20:.1f} MiB ({growth:+.2%}) over 100,000 calls")
    assert growth < 0.05

