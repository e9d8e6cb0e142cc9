"""Side-by-side timing: the C++ peer against pyfeat.FeatureEngine on one
3000-candidate request (the request of bench/conftest.py), at 1 and 2 threads.

    make lib cpp-peer && .venv/bin/python bench/cpp/compare_timing.py [--rounds 41]

The configurations run interleaved, one call each per round, so that load
from other processes on the machine falls on all of them alike; reports the
median and the minimum per call. Outputs are checked equal first.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import pyfeat
from pyfeat.synth import Marketplace

sys.path.insert(0, str(Path(__file__).resolve().parent / "build"))
import pyfeat_cpp_peer  # noqa: E402


def pick_request(n_candidates: int):
    world = Marketplace(seed=1, n_items=50_000, n_users=5_000)
    for i in range(200):
        req = world.request(i, n_candidates)
        if len(req.user.get("views") or []) >= 500:
            return req
    raise RuntimeError("no request with a long view history")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=41)
    ap.add_argument("--candidates", type=int, default=3000)
    args = ap.parse_args()

    req = pick_request(args.candidates)
    user, blobs, c = req.user_blob, req.item_blobs, req.candidates
    src, score, rank = c["source"], c["source_score"], c["source_rank"]
    configs = {}
    for threads in (1, 2):
        engine = pyfeat.FeatureEngine(threads=threads)
        configs[f"pyfeat (Go)  threads={threads}"] = lambda e=engine: e.compute(user, blobs, c)
        configs[f"C++ peer     threads={threads}"] = lambda t=threads: pyfeat_cpp_peer.compute(
            user, blobs, src, score, rank, threads=t
        )

    outs = [np.asarray(f()) for f in configs.values()]  # also warms up
    for o in outs[1:]:
        assert np.array_equal(np.isnan(o), np.isnan(outs[0]))
        m = ~np.isnan(o)
        np.testing.assert_allclose(o[m], outs[0][m], rtol=1e-6)

    times = {name: [] for name in configs}
    for _ in range(args.rounds):
        for name, f in configs.items():
            t0 = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t0)

    print(f"{len(blobs)} items, {len(req.user.get('views') or [])} views, {args.rounds} rounds")
    for name, ts in times.items():
        print(f"  {name}: median {statistics.median(ts) * 1e3:7.2f} ms   min {min(ts) * 1e3:7.2f} ms")


if __name__ == "__main__":
    main()
