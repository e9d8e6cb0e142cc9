"""pyfeat.profile: a Go CPU profile of a running process, taken while py-spy
records the same process, without taking SIGINT from Python."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import msgpack
import numpy as np
import pytest

from pyfeat.synth import Marketplace

CHILD = textwrap.dedent(
    """
    import signal, sys, threading, time
    # Python's own SIGINT handler, whatever the parent left (a background
    # job inherits SIGINT ignored, and Python keeps that).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import msgpack, numpy as np
    import pyfeat
    data = msgpack.unpackb(open(sys.argv[1], "rb").read(), raw=False)
    ranker = pyfeat.Ranker(sys.argv[2])
    cands = {k: np.asarray(v) for k, v in data["candidates"].items()}
    stop = threading.Event()
    def work():
        while not stop.is_set():
            ranker.rank(data["user"], data["items"], cands, top_k=100)
    workers = [threading.Thread(target=work) for _ in range(2)]
    for t in workers:
        t.start()
    before = signal.getsignal(signal.SIGINT)
    prof = threading.Thread(target=pyfeat.profile, args=(sys.argv[3], 3.0))
    prof.start()
    print("ready", flush=True)
    try:
        time.sleep(60)
        print("no SIGINT", flush=True)
    except KeyboardInterrupt:
        print("KeyboardInterrupt", flush=True)
    prof.join()
    stop.set()
    for t in workers:
        t.join()
    print("handler kept", signal.getsignal(signal.SIGINT) is before, flush=True)
    try:
        pyfeat.profile(sys.argv[3] + ".2", 0.2)
        print("second profile ok", flush=True)
    except Exception as e:
        print("second profile failed", e, flush=True)
    """
)


def _go() -> str | None:
    return shutil.which("go") or (str(Path(sys.executable).parent / "go") if (Path(sys.executable).parent / "go").exists() else None)


def _py_spy() -> str | None:
    exe = Path(sys.executable).parent / "py-spy"
    return str(exe) if exe.exists() else shutil.which("py-spy")


def test_profile_while_py_spy_records_and_sigint_reaches_python(tmp_path, small_model_json):
    go, spy = _go(), _py_spy()
    if go is None or spy is None:
        pytest.skip("needs go (to read the profile) and py-spy")
    req = Marketplace(seed=1, n_items=20_000, n_users=500).request(1, 3000)
    data = tmp_path / "request.msgpack"
    cands = {k: np.asarray(v).tolist() for k, v in req.candidates.items()}
    data.write_bytes(msgpack.packb({"user": req.user_blob, "items": list(req.item_blobs), "candidates": cands}))
    prof = tmp_path / "go.pprof"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(data), str(small_model_json), str(prof)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
        flame = tmp_path / "py-spy.txt"
        spy_run = subprocess.Popen([spy, "record", "--pid", str(child.pid), "--duration", "2", "--rate", "50",
                                    "--format", "raw", "--nonblocking", "--output", str(flame)],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(1.5)
        os.kill(child.pid, signal.SIGINT)  # while Go profiles and py-spy records
        spy_out, _ = spy_run.communicate(timeout=60)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    lines = out.splitlines()
    assert "KeyboardInterrupt" in lines, (out, err)
    assert "handler kept True" in lines, out
    assert "second profile ok" in lines, out
    assert child.returncode == 0, err
    assert spy_run.returncode == 0, spy_out
    stacks = flame.read_text()
    assert "rank" in stacks, stacks[:2000]
    lib = Path(__import__("pyfeat._native", fromlist=["x"]).library_path())
    top = subprocess.run([go, "tool", "pprof", "-top", "-nodecount=12", str(lib), str(prof)],
                         capture_output=True, text=True, timeout=120)
    assert top.returncode == 0, top.stderr
    print(top.stdout)
    # pprof -top rows: flat flat% sum% cum cum% name. Samples on Python's
    # threads show as "[libpython...]" / "[libc...]" and the scheduler's as
    # runtime.*; of the Go code that does work, the engine's functions (and
    # the math they call) lead.
    rows = []
    for ln in top.stdout.splitlines():
        f = ln.split(None, 5)
        if len(f) == 6 and f[1].endswith("%") and f[4].endswith("%"):
            rows.append((float(f[1][:-1]), f[5]))
    work = [(pct, name) for pct, name in rows if not name.startswith(("[", "runtime.", "internal/runtime"))]
    ours = [(pct, name) for pct, name in work if "pyfeat/" in name or name.startswith("math.")]
    assert work and ("pyfeat/" in work[0][1] or work[0][1].startswith("math.")), rows
    assert sum(p for p, _ in ours) >= 0.6 * sum(p for p, _ in work), rows
