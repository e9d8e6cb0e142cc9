"""Benchmark of ``pyfeat dataset``: throughput and peak memory as the log grows.

Writes a request log of N requests and one of ``factor * N`` (synthetic
requests of 3000 candidates, cycled: a request's cost does not depend on its
content much, and generating them is slower than replaying them), with their
events, then runs ``python -m pyfeat.cli dataset`` on each as a subprocess
and samples the memory of its whole process tree (the parent and its spawned
workers) every 20 ms.

Reported per run: requests, rows, log size, wall time (process start to
exit, worker start-up included), rows/s, and peak RSS: of the parent, of the
largest worker, and of the tree (the sum over its processes at one moment;
shared pages such as the Go library count once per process).

    .venv/bin/python training/bench_dataset.py [--requests 40] [--factor 10] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path



def write_log(world, log_path: Path, events_path: Path, n: int, distinct: int, n_candidates: int) -> int:
    import pyfeat

    reqs = []
    for i in range(distinct):
        r = world.request(i, n_candidates)
        clicks, contacts = world.feedback(r)
        ids = r.item_ids
        reqs.append((r.user_blob, r.item_blobs, r.candidates, ids[clicks > 0], ids[contacts > 0]))
    rows = 0
    with pyfeat.RequestLog(log_path, "w") as log, open(events_path, "w") as ev:
        ev.write("request_id,item_id,event\n")
        for k in range(n):
            user, items, cands, clicked, contacted = reqs[k % distinct]
            rid = log.append(user, items, cands)
            rows += len(items)
            ev.writelines(f"{rid},{i},click\n" for i in clicked.tolist())
            ev.writelines(f"{rid},{i},contact\n" for i in contacted.tolist())
    return rows


def run_dataset(log: Path, events: Path, out: Path, workers: int | None) -> dict:
    import psutil

    cmd = [sys.executable, "-m", "pyfeat.cli", "dataset", "--requests", str(log), "--events", str(events),
           "--out", str(out), "--no-progress"]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    peak_tree = peak_parent = peak_worker = 0
    while proc.poll() is None:
        try:
            parent = ps.memory_info().rss
            kids = []
            for c in ps.children(recursive=True):
                try:
                    kids.append(c.memory_info().rss)
                except psutil.Error:
                    pass
        except psutil.Error:
            break
        peak_parent = max(peak_parent, parent)
        peak_worker = max([peak_worker, *kids])
        peak_tree = max(peak_tree, parent + sum(kids))
        time.sleep(0.02)
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"pyfeat dataset failed ({proc.returncode}): {stderr.strip()}")
    return dict(wall=wall, peak_tree_mb=peak_tree / 2**20, peak_parent_mb=peak_parent / 2**20,
                peak_worker_mb=peak_worker / 2**20, stdout=stdout.strip())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=40, help="N: requests in the small log")
    p.add_argument("--factor", type=int, default=10, help="the large log has factor * N requests")
    p.add_argument("--candidates", type=int, default=3000)
    p.add_argument("--distinct", type=int, default=10, help="distinct requests generated (then cycled)")
    p.add_argument("--workers", type=int, default=None, help="--workers for pyfeat dataset (default: its own)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.add_argument("--workdir", type=Path, default=None)
    args = p.parse_args(argv)

    from pyfeat.synth import Marketplace

    work = args.workdir or Path(tempfile.mkdtemp(prefix="pyfeat-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    world = Marketplace(0)
    results = []
    try:
        for n in (args.requests, args.requests * args.factor):
            log, events, out = work / f"r{n}.log", work / f"e{n}.csv", work / f"d{n}.parquet"
            rows = write_log(world, log, events, n, min(args.distinct, n), args.candidates)
            r = run_dataset(log, events, out, args.workers)
            r.update(requests=n, rows=rows, log_mb=log.stat().st_size / 2**20, rows_per_s=rows / r["wall"],
                     parquet_mb=out.stat().st_size / 2**20)
            results.append(r)
            print(f"N={n}: {r['stdout'].splitlines()[0]}", flush=True)
            for f in (log, events, out):
                f.unlink()
    finally:
        if args.workdir is None:
            for f in work.iterdir():
                f.unlink()
            work.rmdir()

    print()
    print(f"pyfeat dataset, {args.candidates} candidates per request, {os.cpu_count()} cores")
    print("| requests | rows | log MB | Parquet MB | wall s | rows/s | peak RSS parent MB | peak RSS worker MB | peak RSS tree MB |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['requests']} | {r['rows']} | {r['log_mb']:.0f} | {r['parquet_mb']:.0f} | {r['wall']:.1f} | "
              f"{r['rows_per_s']:,.0f} | {r['peak_parent_mb']:.0f} | {r['peak_worker_mb']:.0f} | "
              f"{r['peak_tree_mb']:.0f} |")
    if args.json:
        args.json.write_text(json.dumps([{k: v for k, v in r.items() if k != "stdout"} for r in results], indent=2))
    small, large = results
    print(f"\nlog x{args.factor}: peak tree RSS x{large['peak_tree_mb'] / small['peak_tree_mb']:.2f}, "
          f"rows/s x{large['rows_per_s'] / small['rows_per_s']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
