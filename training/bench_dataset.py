"""Benchmark of ``pyfeat dataset``: throughput and peak memory as the log grows.

Writes a request log of N requests and one of ``factor * N`` (synthetic
requests of 3000 candidates, cycled: a request's cost does not depend on its
content much, and generating them is slower than replaying them), with their
events, then runs ``python -m pyfeat.cli dataset`` on each as a subprocess
and samples the memory of its whole process tree (the parent and its spawned
workers) every 20 ms.

Reported per run: requests, rows, log size, wall time (process start to
exit, worker start-up included), rows/s, and peak RSS: of the parent, of the
largest Python worker (a CLI worker; with Spark, PySpark's daemon or one of
its workers), of the JVM, and of the tree (the sum over its processes at one
moment; shared pages such as the Go library count once per process). The
processes being spawned (which share their parent's memory until they exec)
are not counted: see :func:`sample_children`.

    .venv/bin/python training/bench_dataset.py [--requests 40] [--factor 10] [--workers N]
        [--spark local[1],local[2]]

With ``--spark``, the large log is also built by ``pyfeat dataset --spark
MASTER`` for each master: the tree then holds the driver, the JVM (driver
and executor in one, in local mode), PySpark's daemon and its workers.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import shutil
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


_KCMP = {"x86_64": 312, "aarch64": 272}.get(os.uname().machine)  # kcmp(2)'s syscall number
_libc = ctypes.CDLL(None, use_errno=True)


def shares_parent_memory(pid: int, ppid: int) -> bool:
    """Whether ``pid`` still runs in its parent's address space: a child
    being spawned (``vfork``, ``posix_spawn``) until it execs. /proc then
    reports the parent's whole RSS for it. (kcmp(2) with KCMP_VM; False
    where the kernel or the machine does not have it.)"""
    if _KCMP is None:
        return False
    return _libc.syscall(_KCMP, pid, ppid, 1, 0, 0) == 0


def sample_children(ps) -> tuple[list[int], int]:
    """(RSS of each Python descendant of ``ps``, summed RSS of the JVMs).

    A child being spawned is not counted: it shares its parent's memory
    until it execs. Python's multiprocessing spawns the CLI's workers that
    way, and the JVM its short-lived children (Hadoop's local file system
    runs ``chmod`` for every file it creates; Spark runs ``rm``,
    ``setsid``, ``bash``); such a child of the JVM carries the name of the
    JVM thread that spawned it ("Executor task l") and, read at the wrong
    moment, the RSS of the whole JVM. Checked before the RSS is read: a
    child that no longer shares its parent's memory never shares it again.
    """
    import psutil

    kids, jvm = [], 0
    for c in ps.children(recursive=True):
        try:
            if shares_parent_memory(c.pid, c.ppid()):
                continue
            rss = c.memory_info().rss
            base = os.path.basename(c.exe())
        except psutil.Error:
            continue
        if base == "java":
            jvm += rss
        elif base.startswith("python"):
            kids.append(rss)
    return kids, jvm


def run_dataset(log: Path, events: Path, out: Path, workers: int | None, spark: str | None = None,
                split_mb: int = 64) -> dict:
    import psutil

    cmd = [sys.executable, "-m", "pyfeat.cli", "dataset", "--requests", str(log), "--events", str(events),
           "--out", str(out), "--no-progress"]
    if workers is not None and spark is None:
        cmd += ["--workers", str(workers)]
    if spark is not None:
        cmd += ["--spark", spark, "--split-mb", str(split_mb)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    peak_tree = peak_parent = peak_worker = peak_jvm = 0
    while proc.poll() is None:
        try:
            parent = ps.memory_info().rss
            kids, jvm = sample_children(ps)
        except psutil.Error:
            break
        peak_parent = max(peak_parent, parent)
        peak_worker = max([peak_worker, *kids])
        peak_jvm = max(peak_jvm, jvm)
        peak_tree = max(peak_tree, parent + sum(kids) + jvm)
        time.sleep(0.02)
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"pyfeat dataset failed ({proc.returncode}): {stderr.strip()[-2000:]}")
    m = re.search(r"in ([0-9.]+) s, ([0-9,]+) rows/s", stdout)
    return dict(wall=wall, peak_tree_mb=peak_tree / 2**20, peak_parent_mb=peak_parent / 2**20,
                peak_worker_mb=peak_worker / 2**20, peak_jvm_mb=peak_jvm / 2**20, stdout=stdout.strip(),
                build_s=float(m.group(1)) if m else float("nan"),
                build_rows_per_s=float(m.group(2).replace(",", "")) if m else float("nan"))


def output_mb(out: Path) -> float:
    if out.is_dir():
        return sum(f.stat().st_size for f in out.iterdir() if f.is_file() and not f.name.startswith(".")) / 2**20
    return out.stat().st_size / 2**20


def remove(out: Path) -> None:
    if out.is_dir():
        shutil.rmtree(out)
    elif out.exists():
        out.unlink()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=40, help="N: requests in the small log")
    p.add_argument("--factor", type=int, default=10, help="the large log has factor * N requests")
    p.add_argument("--candidates", type=int, default=3000)
    p.add_argument("--distinct", type=int, default=10, help="distinct requests generated (then cycled)")
    p.add_argument("--workers", type=int, default=None, help="--workers for pyfeat dataset (default: its own)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--spark", default="", metavar="MASTER,...",
                   help="also build the large log with `pyfeat dataset --spark MASTER` for each (e.g. local[1],local[2])")
    p.add_argument("--split-mb", type=int, default=64, help="--split-mb for the Spark runs")
    args = p.parse_args(argv)
    masters = [m for m in re.split(r",(?![^\[]*\])", args.spark) if m]

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
                     parquet_mb=output_mb(out), how="CLI")
            results.append(r)
            print(f"N={n}: {r['stdout'].splitlines()[0]}", flush=True)
            remove(out)
            if n == args.requests * args.factor:
                for master in masters:
                    r = run_dataset(log, events, work / f"d{n}-spark", None, master, args.split_mb)
                    r.update(requests=n, rows=rows, log_mb=log.stat().st_size / 2**20, rows_per_s=rows / r["wall"],
                             parquet_mb=output_mb(work / f"d{n}-spark"), how=f"Spark {master}")
                    results.append(r)
                    print(f"N={n} {master}: {r['stdout'].splitlines()[0]}", flush=True)
                    remove(work / f"d{n}-spark")
            for f in (log, events):
                f.unlink()
    finally:
        if args.workdir is None:
            for f in work.iterdir():
                f.unlink()
            work.rmdir()

    print()
    print(f"pyfeat dataset, {args.candidates} candidates per request, {os.cpu_count()} cores")
    print("| build | requests | rows | log MB | Parquet MB | wall s | rows/s (wall) | build s | rows/s (build) "
          "| peak RSS parent MB | peak RSS worker MB | peak RSS JVM MB | peak RSS tree MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['how']} | {r['requests']} | {r['rows']} | {r['log_mb']:.0f} | {r['parquet_mb']:.0f} | "
              f"{r['wall']:.1f} | {r['rows_per_s']:,.0f} | {r['build_s']:.1f} | {r['build_rows_per_s']:,.0f} | "
              f"{r['peak_parent_mb']:.0f} | {r['peak_worker_mb']:.0f} | {r['peak_jvm_mb']:.0f} | "
              f"{r['peak_tree_mb']:.0f} |")
    if args.json:
        args.json.write_text(json.dumps([{k: v for k, v in r.items() if k != "stdout"} for r in results], indent=2))
    spark_runs = [r for r in results if r["how"] != "CLI"]
    small, large = [r for r in results if r["how"] == "CLI"]
    if spark_runs:
        print()
        for r in spark_runs:
            print(f"{r['how']}: {r['build_rows_per_s'] / large['build_rows_per_s']:.2f}x the CLI's rows/s (build), "
                  f"{r['rows_per_s'] / large['rows_per_s']:.2f}x (wall, JVM start-up included)")
        if len(spark_runs) > 1:
            base = spark_runs[0]
            for r in spark_runs[1:]:
                print(f"{r['how']} / {base['how']}: rows/s (build) x{r['build_rows_per_s'] / base['build_rows_per_s']:.2f}")
    print(f"\nlog x{args.factor}: peak tree RSS x{large['peak_tree_mb'] / small['peak_tree_mb']:.2f}, "
          f"rows/s x{large['rows_per_s'] / small['rows_per_s']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
