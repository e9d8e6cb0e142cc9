"""Reliability: damaged model files, fork during load, memory after a huge
request, killed dataset runs (issue 14). Each scenario that could take the
process down runs in a child process with a timeout, so a regression fails
the test instead of killing the test run."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from catboost import CatBoostRegressor

import pyfeat

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent


def run_script(code: str, *args: str, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), str(ROOT)]), **(env or {}))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=str(TESTS))


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    """A small real model on pyfeat's features, trained with a fixed seed."""
    d = tmp_path_factory.mktemp("small_model")
    names = pyfeat.feature_names()
    rng = np.random.default_rng(14)
    X = rng.random((300, len(names))).astype(np.float32)
    y = X[:, 3] + rng.random(300)
    m = CatBoostRegressor(iterations=30, depth=4, random_seed=1, verbose=False, allow_writing_files=False, thread_count=1)
    m.fit(pd.DataFrame(X, columns=names), y)
    m.get_metadata()[pyfeat.SPEC_HASH_KEY] = pyfeat.spec_hash()
    m.save_model(str(d / "good.cbm"))
    m.save_model(str(d / "good.json"), format="json")
    return d / "good.cbm", d / "good.json"


# ---- 1. damaged and non-regular model files ---------------------------------

FLIP_SCRIPT = """
    import sys, time
    import numpy as np
    import pyfeat
    from conftest import base_item, base_user

    good_cbm, good_json, bad, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    raw = open(good_cbm, "rb").read()
    rng = np.random.default_rng(1414)
    ranker = pyfeat.Ranker(good_cbm)
    user, items = base_user(), [base_item(i) for i in range(20)]
    base = ranker.rank(user, items)
    loaded = refused = 0
    t = time.monotonic()
    for k in range(n):
        b = bytearray(raw)
        for _ in range(int(rng.integers(1, 17))):
            b[int(rng.integers(len(b)))] ^= int(rng.integers(1, 256))
        with open(bad, "wb") as f:
            f.write(b)
        try:
            ranker.reload(bad)
        except pyfeat.ModelError:
            refused += 1
        else:
            loaded += 1  # a flip CatBoost does not notice (a leaf value, a border)
            assert ranker.model.n_features == len(pyfeat.feature_names())
            ranker.reload(good_json)
        got = ranker.rank(user, items)
        assert np.array_equal(got.order, base.order) and np.array_equal(got.scores, base.scores), k
    print(f"files={n} loaded={loaded} refused={refused} seconds={time.monotonic() - t:.1f}")
"""


def test_damaged_cbm_files_never_take_the_process_down(small_model, tmp_path):
    good_cbm, good_json = small_model
    r = run_script(FLIP_SCRIPT, str(good_cbm), str(good_json), str(tmp_path / "bad.cbm"), "150", timeout=240)
    assert r.returncode == 0, f"rc {r.returncode}\n{r.stdout}\n{r.stderr[-3000:]}"
    print(r.stdout.strip())
    assert "files=150" in r.stdout


NON_REGULAR_SCRIPT = """
    import os, sys, time
    import pyfeat
    d, good = sys.argv[1], sys.argv[2]
    os.mkfifo(os.path.join(d, "fifo.json"))
    os.mkfifo(os.path.join(d, "fifo.cbm"))
    os.symlink("/dev/zero", os.path.join(d, "zero.json"))
    os.symlink("/dev/zero", os.path.join(d, "zero.cbm"))
    os.mkdir(os.path.join(d, "dir.json"))
    ranker = pyfeat.Ranker(good)
    for name in ("fifo.json", "fifo.cbm", "zero.json", "zero.cbm", "dir.json"):
        for load in (pyfeat.Model, ranker.reload):
            t = time.monotonic()
            try:
                load(os.path.join(d, name))
            except pyfeat.ModelError as e:
                assert "regular file" in str(e), e
            else:
                raise AssertionError(f"{name} loaded")
            assert time.monotonic() - t < 5, name
    print("ok")
"""


def test_fifo_dev_zero_and_directories_are_refused_at_once(small_model, tmp_path):
    r = run_script(NON_REGULAR_SCRIPT, str(tmp_path), str(small_model[1]), timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "ok", f"rc {r.returncode}\n{r.stdout}\n{r.stderr[-3000:]}"


def test_oversized_model_file_is_refused(tmp_path, monkeypatch):
    p = tmp_path / "big.json"
    with open(p, "wb") as f:
        f.truncate(pyfeat.MAX_MODEL_BYTES + 1)  # sparse
    with pytest.raises(pyfeat.ModelError, match="a model file may have"):
        pyfeat.Model(p)
    q = tmp_path / "big.cbm"
    os.rename(p, q)
    with pytest.raises(pyfeat.ModelError, match="a model file may have"):
        pyfeat.Model(q)


def test_converter_restarts_after_it_dies(small_model):
    from pyfeat import _convert

    pyfeat.Model(small_model[0]).close()
    proc = _convert._converter._proc
    assert proc is not None
    proc.kill()
    proc.wait()
    model = pyfeat.Model(small_model[0])
    assert model.n_features == len(pyfeat.feature_names())
    assert _convert._converter._proc is not proc
    model.close()


# ---- 3. fork while another thread loads the library --------------------------

FORK_DURING_LOAD_SCRIPT = """
    import os, random, signal, sys, threading, time
    import pyfeat
    from conftest import base_item, base_user

    trials = int(sys.argv[1])
    user, items = base_user(), [base_item(0)]
    results = {"ok": 0, "fork_error": 0, "hang": 0, "other": 0}
    for trial in range(trials):
        # Each trial process starts with the library not loaded (this one
        # never loads it), so every trial races a first load.
        pid = os.fork()
        if pid == 0:
            started = threading.Event()

            def load():
                started.set()
                pyfeat.spec_hash()  # the first load: dlopen, then the Go runtime starts

            threading.Thread(target=load, daemon=True).start()
            started.wait()
            # The Go runtime takes a few milliseconds to start: fork inside it.
            time.sleep(random.Random(trial).uniform(0, 0.008))
            child = os.fork()
            if child == 0:
                try:
                    pyfeat.FeatureEngine().compute(user, items)
                    os._exit(0)  # forked before the load began: a clean load of its own
                except pyfeat.ForkError:
                    os._exit(3)
                except BaseException:
                    os._exit(4)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                done, status = os.waitpid(child, os.WNOHANG)
                if done:
                    os._exit(os.waitstatus_to_exitcode(status))
                time.sleep(0.005)
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)
            os._exit(5)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        results[{0: "ok", 3: "fork_error", 5: "hang"}.get(code, "other")] += 1
    print(results)
"""


def test_fork_during_first_load_gives_fork_error_not_a_hang():
    r = run_script(FORK_DURING_LOAD_SCRIPT, "40", timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    results = eval(r.stdout.strip().splitlines()[-1])
    print(results)
    assert results["hang"] == 0 and results["other"] == 0, results
    assert results["ok"] + results["fork_error"] == 40


# ---- 4. memory after one huge request ----------------------------------------

MEMORY_SCRIPT = """
    import threading, time
    import psutil
    import pyfeat
    from pyfeat._inputs import pack
    from conftest import base_item, base_user

    proc = psutil.Process()
    rss = lambda: proc.memory_info().rss / 2**20
    engine = pyfeat.FeatureEngine()
    items = [pack(base_item(i)) for i in range(200)]
    normal = pack(base_user())
    huge = pack(base_user(impressions={i: i % 7 + 1 for i in range(1_000_000)}))  # ~5.6 MB

    def calls(user, k):
        for _ in range(k):
            engine.compute(user, items)

    def threads(user, k):
        ts = [threading.Thread(target=calls, args=(user, k)) for _ in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    threads(normal, 100)
    base = rss()
    threads(huge, 2)
    peak = rss()
    threads(normal, 50)
    t0 = time.monotonic()
    while rss() - base > 50 and time.monotonic() - t0 < 10:
        calls(normal, 10)
        time.sleep(0.1)
    print(f"huge_mb={len(huge) / 2**20:.1f} base={base:.0f} peak={peak:.0f} after={rss():.0f} "
          f"delta={rss() - base:+.0f} settle_s={time.monotonic() - t0:.1f}")
"""


def test_memory_of_a_huge_request_is_given_back():
    r = run_script(MEMORY_SCRIPT, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    line = r.stdout.strip().splitlines()[-1]
    print(line)
    fields = dict(kv.split("=") for kv in line.split())
    assert float(fields["peak"]) - float(fields["base"]) > 200, "the huge request did not use memory: no test"
    assert float(fields["delta"]) <= 50, line
