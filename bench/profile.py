"""Profiles of the services under load, and of the Go engine.

    .venv/bin/python bench/profile.py                 # what `make profile` runs
    .venv/bin/python bench/profile.py --modes pyfeat --duration 10

For each mode (python, python+ppe, pyfeat, and cpp when the peer is built):
starts Redis and the mode's service as run_all.py does, drives it with the
load generator at --concurrency clients and records it with py-spy
(--subprocesses: python+ppe's workers are included) into
bench/results/flame_<mode>.svg (interactive: open it in a browser) and
flame_<mode>.png (the same picture, rendered with rsvg-convert when it is
installed).

For the pyfeat modes, the service also records a Go CPU profile of
itself (pyfeat.profile, through its /go-profile endpoint) during the same
seconds py-spy records it: flame_<mode>.png and pprof_<mode>.png are the
Python and the Go side of the same run (bench/README.md says how to read
them together), pprof_<mode>_top.txt its top functions.

Then a Go CPU profile of the feature engine alone: one benchmark request is
dumped to a file, `go test -bench ComputeFile -cpuprofile` runs the engine
on it (threads=1 and 2) and `go tool pprof` renders pprof_engine.svg/.png
(needs graphviz) and pprof_engine_top.txt.
"""

from __future__ import annotations

import argparse
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from service import common, procs  # noqa: E402
from service.redis_store import RedisServer  # noqa: E402

T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f}s] {msg}", flush=True)


def rel(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(common.REPO_DIR))
    except ValueError:
        return str(p)


def py_spy() -> str:
    exe = Path(sys.executable).parent / "py-spy"
    if exe.exists():
        return str(exe)
    found = shutil.which("py-spy")
    if not found:
        sys.exit("py-spy not found: .venv/bin/pip install py-spy")
    return found


def to_png(svg: Path, png: Path, width: int = 1600) -> bool:
    exe = shutil.which("rsvg-convert")
    if exe is None:
        log(f"  (no rsvg-convert: {png.name} not rendered; apt-get install librsvg2-bin)")
        return False
    p = subprocess.run([exe, "-w", str(width), "-b", "white", "-o", str(png), str(svg)], capture_output=True, text=True)
    if p.returncode != 0:
        log(f"  rsvg-convert failed: {p.stderr.strip()[:300]}")
        return False
    return True


def profile_service(mode: str, redis: RedisServer, requests, users, out: Path, a) -> None:
    svc = procs.Service(mode, redis.port, out / "logs")
    try:
        svc.wait_ready()
        reqs = [q.rid for q in requests]
        # warm-up, then load for longer than py-spy records
        w = procs.run_level(svc, reqs, users, a.concurrency, duration=0.5, min_requests=2 * a.concurrency,
                            max_requests=4 * a.concurrency, hard_timeout=60)
        if w["n_errors"]:
            raise RuntimeError(f"the service fails before the recording: {w['errors'][:2]}")
        load: dict = {}

        def drive():
            load.update(procs.run_level(svc, reqs, users, a.concurrency, duration=a.duration + 3,
                                        min_requests=1, max_requests=100_000, hard_timeout=a.duration + 60))

        t = threading.Thread(target=drive)
        t.start()
        time.sleep(1.0)
        stem = mode.replace('+', '_')
        svg = out / f"flame_{stem}.svg"
        cmd = [py_spy(), "record", "--pid", str(svc.proc.pid), "--duration", str(int(a.duration)),
               "--rate", str(a.rate), "--nolineno", "--format", "flamegraph", "--output", str(svg)]
        if mode == "python+ppe":
            cmd.append("--subprocesses")
        gprof = out / f"{stem}.go.prof"
        go_thread = None
        if mode.startswith("pyfeat"):
            # The Go side of the same seconds, from inside the service.
            url = f"{svc.url}/go-profile?seconds={int(a.duration)}&path={gprof.resolve()}"
            go_thread = threading.Thread(target=lambda: urllib.request.urlopen(url, timeout=a.duration + 60).read())
            go_thread.start()
        p = subprocess.run(cmd, capture_output=True, text=True)
        if go_thread is not None:
            go_thread.join()
        t.join()
        if p.returncode != 0 or not svg.exists():
            log(f"  py-spy failed for {mode}: {(p.stderr or p.stdout).strip()[-500:]}")
            return
        png = svg.with_suffix(".png")
        to_png(svg, png)
        n = load.get("completed", 0)
        if n == 0 or load.get("n_errors"):
            log(f"  WARNING: {mode} answered {n} requests during the recording, {load.get('n_errors', '?')} failed: "
                f"the flame graph shows a service that does not work")
        log(f"{mode}: {rel(svg)} ({n} requests at concurrency {a.concurrency} "
            f"during the recording)")
        if gprof.exists():
            render_go_profile(gprof, out / f"pprof_{stem}", a)
    finally:
        svc.stop()


def render_go_profile(prof: Path, stem: Path, a) -> None:
    """pprof_<mode>.svg/.png and pprof_<mode>_top.txt from a service's Go profile."""
    from pyfeat import _native

    go = shutil.which("go") or str(Path(sys.executable).parent / "go")
    lib = str(_native.library_path())
    top = subprocess.run([go, "tool", "pprof", "-top", "-nodecount=30", lib, str(prof)], capture_output=True, text=True)
    stem.with_name(stem.name + "_top.txt").write_text(top.stdout)
    if shutil.which("dot") is None:
        log("  (graphviz not installed: only the top functions; apt-get install graphviz)")
        return
    for fmt in ("svg", "png"):
        r = subprocess.run([go, "tool", "pprof", f"-{fmt}", "-nodefraction=0.01", "-output",
                            str(stem.with_suffix(f".{fmt}")), lib, str(prof)], capture_output=True, text=True)
        if r.returncode != 0:
            log(f"  pprof -{fmt} failed: {r.stderr.strip()[:300]}")
    log(f"  Go side of the same run: {rel(stem.with_suffix('.png'))}, {rel(stem.with_name(stem.name + '_top.txt'))}")


def dump_request(q, path: Path) -> None:
    """The format BenchmarkComputeFile reads: int64-LE length-prefixed user
    blob, int64-LE item count, int64-LE length-prefixed item blobs."""
    with open(path, "wb") as f:
        f.write(struct.pack("<q", len(q.user_blob)) + q.user_blob)
        f.write(struct.pack("<q", len(q.item_blobs)))
        for b in q.item_blobs:
            f.write(struct.pack("<q", len(b)) + b)


def profile_go(requests, out: Path, a) -> None:
    go = shutil.which("go") or str(Path(sys.executable).parent / "go")
    # The request with the longest view history: the user x item features dominate.
    q = max(requests, key=lambda q: q.n_views)
    with tempfile.TemporaryDirectory(prefix="pyfeat-pprof-") as tmp:
        req_file = Path(tmp) / "request.bin"
        dump_request(q, req_file)
        prof = out / "engine.cpu.prof"
        binary = Path(tmp) / "features.test"
        env = dict(__import__("os").environ, PYFEAT_BENCH_REQUEST=str(req_file))
        log(f"go: BenchmarkComputeFile on request {q.rid} ({q.n_views} views, {len(q.item_blobs)} items)")
        p = subprocess.run([go, "test", "-run", "^$", "-bench", "ComputeFile", "-benchtime", a.go_benchtime,
                            "-cpuprofile", str(prof), "-o", str(binary), "./features"],
                           cwd=common.REPO_DIR, env=env, capture_output=True, text=True)
        if p.returncode != 0:
            log(f"  go test failed: {(p.stderr or p.stdout).strip()[-800:]}")
            return
        bench_lines = [ln for ln in p.stdout.splitlines() if ln.startswith("Benchmark")]
        for ln in bench_lines:
            log(f"  {ln}")
        top = subprocess.run([go, "tool", "pprof", "-top", "-nodecount=40", str(binary), str(prof)],
                             capture_output=True, text=True)
        (out / "pprof_engine_top.txt").write_text("\n".join(bench_lines) + "\n\n" + top.stdout)
        if shutil.which("dot") is None:
            log("  (graphviz not installed: only pprof_engine_top.txt; apt-get install graphviz)")
            return
        for fmt in ("svg", "png"):
            r = subprocess.run([go, "tool", "pprof", f"-{fmt}", "-nodefraction=0.01", "-output",
                                str(out / f"pprof_engine.{fmt}"), str(binary), str(prof)], capture_output=True, text=True)
            if r.returncode != 0:
                log(f"  pprof -{fmt} failed: {r.stderr.strip()[:300]}")
        log(f"go: {rel(prof)}, pprof_engine.svg/.png, pprof_engine_top.txt")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # The smaller caches profile like pyfeat+cache: not by default.
    ap.add_argument("--modes", default=",".join(m for m in common.MODES if m not in common.CACHE_FRACTIONS))
    ap.add_argument("--duration", type=float, default=15.0, help="seconds recorded per mode")
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    ap.add_argument("--go-benchtime", default="3s")
    ap.add_argument("--no-go", action="store_true")
    ap.add_argument("--out", default=str(common.RESULTS_DIR))
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    modes = [m for m in a.modes.split(",") if m]

    world = common.build_world()
    requests = common.build_requests(world)
    common.ensure_model(world, log=log)
    if "cpp" in modes:
        peer, why = common.import_cpp_peer(build=True, log=log)
        if peer is None:
            log(f"cpp: skipped: {why}")
            modes.remove("cpp")
    import msgpack

    users = [int(msgpack.unpackb(q.user_blob, strict_map_key=False)["user_id"]) for q in requests]
    redis = RedisServer().start()
    try:
        redis.fill(world, requests)
        for m in modes:
            log(f"{m}: profiling {a.duration:.0f} s at concurrency {a.concurrency} ...")
            try:
                profile_service(m, redis, requests, users, out, a)
            except RuntimeError as e:
                log(f"{m}: not profiled: {e}")
    finally:
        redis.stop()
    if not a.no_go:
        profile_go(requests, out, a)
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
