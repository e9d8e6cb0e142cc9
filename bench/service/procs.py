"""Starting the services and the load generator, and measuring them.

CPU: user + system seconds of every process of a mode (the service and all
its descendants: python+ppe's workers and multiprocessing's helpers), read
with psutil right before and right after a load level.
Memory: the headline is PSS (proportional set size: a page shared by k
processes counts 1/k in each, so a shared library's pages count once over
the mode) summed over the mode's processes, sampled every 200 ms under load
(/proc/<pid>/smaps_rollup); its peak over the run. Next to it, peak RSS =
the sum over the processes of each one's VmHWM (peak resident set, from
/proc/<pid>/status), which counts shared pages once per process; also the
peak of the summed current RSS, sampled every 50 ms under load.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil

from . import common
from .redis_store import free_port

SERVE = Path(__file__).resolve().parent / "serve.py"
LOADGEN = Path(__file__).resolve().parent / "loadgen.py"


def vm_hwm_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class ProcTree:
    """A process and its descendants, as they are when asked."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.seen: dict[int, dict] = {}  # pid -> last known name / hwm, so exited processes still count

    def procs(self) -> list[psutil.Process]:
        try:
            return [self.root] + self.root.children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def cpu(self) -> dict[int, float]:
        out = {}
        for p in self.procs():
            try:
                t = p.cpu_times()
                out[p.pid] = t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return out

    def rss(self) -> int:
        total = 0
        for p in self.procs():
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def pss(self) -> int:
        """Summed PSS now (bytes), from smaps_rollup (one pass of the kernel
        over each process's mappings)."""
        total = 0
        for p in self.procs():
            try:
                with open(f"/proc/{p.pid}/smaps_rollup") as f:
                    for line in f:
                        if line.startswith("Pss:"):
                            total += int(line.split()[1]) * 1024
                            break
            except OSError:
                pass
        return total

    def snapshot_hwm(self) -> None:
        for p in self.procs():
            try:
                name = " ".join(p.cmdline()[:3])[-80:] or p.name()
            except psutil.NoSuchProcess:
                continue
            hwm = vm_hwm_kb(p.pid)
            prev = self.seen.get(p.pid, {})
            self.seen[p.pid] = dict(cmd=name, hwm_kb=max(hwm, prev.get("hwm_kb", 0)))

    def pss_uss(self) -> tuple[int, int]:
        """Summed proportional and unique set sizes now (bytes): RSS counts
        the shared pages of libraries in every process, PSS splits them."""
        pss = uss = 0
        for p in self.procs():
            try:
                m = p.memory_full_info()
                pss += m.pss
                uss += m.uss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        return pss, uss

    def rss_by_origin(self) -> dict[str, int]:
        """Resident memory now (bytes), summed over the processes, by where
        its pages come from, largest first: a Python package's files (by
        top-level package: "pyarrow", "catboost"), another file (by name),
        or "anonymous" (malloc and Python heaps, the Go heap, thread
        stacks). Says what a mode's peak is made of, and why it moves: how
        much of a library's code a process maps depends on the CPU features
        it dispatches to and on what the page cache holds."""
        out: dict[str, int] = {}
        for p in self.procs():
            try:
                with open(f"/proc/{p.pid}/smaps") as f:
                    origin = "anonymous"
                    for line in f:
                        head = line.split(None, 1)[0]
                        if not head.endswith(":"):  # a mapping's first line: range perms offset dev inode [path]
                            fields = line.split(None, 5)
                            origin = _origin(fields[5].strip() if len(fields) > 5 else "")
                        elif head == "Rss:":
                            out[origin] = out.get(origin, 0) + int(line.split()[1]) * 1024
            except OSError:
                continue
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def hwm_total_kb(self) -> int:
        return sum(v["hwm_kb"] for v in self.seen.values())


def _origin(path: str) -> str:
    if not path or path.startswith("["):
        return "anonymous"  # [heap], [stack], unnamed mappings; [vdso] and the like are a few pages
    parts = Path(path).parts
    if "site-packages" in parts:
        i = parts.index("site-packages")
        if i + 1 < len(parts):
            top = parts[i + 1]
            # numpy.libs/, pyarrow/ and _cffi_backend.cpython-311-x86_64-linux-gnu.so alike
            return top.split(".")[0]
    name = Path(path).name
    if name.startswith("libpython") or "/lib/python3" in path:
        return "python"
    return name.split(".so")[0]


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


class RssSampler:
    """Samples the summed RSS (every 50 ms) and PSS (every 200 ms: it costs
    the kernel a walk of the mappings) of one ProcTree in a thread; keeps
    the peaks."""

    def __init__(self, tree: ProcTree, interval: float = 0.05, pss_every: int = 4) -> None:
        self.tree, self.interval, self.pss_every = tree, interval, pss_every
        self.peak = 0
        self.peak_pss = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            self.peak = max(self.peak, self.tree.rss())
            if i % self.pss_every == 0:
                self.peak_pss = max(self.peak_pss, self.tree.pss())
            i += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> "RssSampler":
        self._t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self.tree.rss())
        self.peak_pss = max(self.peak_pss, self.tree.pss())


class Service:
    """One mode's service process, started with subprocess (its workers use spawn)."""

    def __init__(self, mode: str, redis_port: int, log_dir: Path, block_modules: str = "",
                 env: dict[str, str] | None = None, tag: str = "") -> None:
        self.mode = mode
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log_dir.mkdir(parents=True, exist_ok=True)
        (log_dir / ".gitignore").write_text("*\n")
        self.log_path = log_dir / f"service-{mode.replace('+', '_')}{tag}.log"
        self._log = open(self.log_path, "w")
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYFEAT_BENCH_BLOCK_MODULES=block_modules, **(env or {}))
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVE), "--mode", mode, "--port", str(self.port), "--redis-port", str(redis_port)],
            cwd=common.REPO_DIR, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        self.tree = ProcTree(self.proc.pid)

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.mode} service exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    if json.loads(r.read()).get("ready"):
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.mode} service not ready after {timeout:.0f} s: {self.log_tail()}")

    def get(self, rid: int, user: int = 0, timeout: float = 60.0) -> dict:
        with urllib.request.urlopen(f"{self.url}/feed?user={user}&req={rid}", timeout=timeout) as r:
            return json.loads(r.read())

    def stats(self, timeout: float = 10.0) -> dict:
        with urllib.request.urlopen(f"{self.url}/stats", timeout=timeout) as r:
            return json.loads(r.read())

    def log_tail(self, n: int = 8) -> str:
        self._log.flush()
        try:
            return " | ".join(self.log_path.read_text(errors="replace").strip().splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                for p in self.tree.procs()[::-1]:
                    try:
                        p.kill()
                    except psutil.NoSuchProcess:
                        pass
                self.proc.wait()
        self._log.close()


def run_level(service: Service, reqs: list[int], users: list[int], concurrency: int, *, duration: float,
              min_requests: int, max_requests: int, hard_timeout: float, offset: int = 0) -> dict:
    """One load level against one service; returns the load generator's
    results plus the service's CPU seconds and peak RSS over exactly the load."""
    cmd = [sys.executable, str(LOADGEN), "--url", service.url, "--reqs", ",".join(map(str, reqs)),
           "--users", ",".join(map(str, users)), "--concurrency", str(concurrency),
           "--duration", str(duration), "--min-requests", str(min_requests),
           "--max-requests", str(max_requests), "--hard-timeout", str(hard_timeout), "--offset", str(offset)]
    lg = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, cwd=common.REPO_DIR)
    try:
        line = lg.stdout.readline()
        if not line.strip().startswith("{"):
            raise RuntimeError(f"load generator failed: {line}{lg.stderr.read()[-2000:]}")
        lg_proc = psutil.Process(lg.pid)
        lg_cpu0 = sum(lg_proc.cpu_times()[:2])
        with RssSampler(service.tree) as sampler:
            cpu0 = service.tree.cpu()
            t0 = time.perf_counter()
            lg.stdin.write("go\n")
            lg.stdin.flush()
            line = lg.stdout.readline()
            cpu1 = service.tree.cpu()
            t1 = time.perf_counter()
        lg_cpu = sum(lg_proc.cpu_times()[:2]) - lg_cpu0
        lg.stdin.write("bye\n")
        lg.stdin.flush()
        lg.wait(30)
    finally:
        if lg.poll() is None:
            lg.kill()
            lg.wait()
    if not line.strip():
        raise RuntimeError(f"load generator died: {lg.stderr.read()[-2000:]}")
    res = json.loads(line)
    service.tree.snapshot_hwm()
    res.update(service_cpu_s=cpu_delta(cpu0, cpu1), window_s=t1 - t0, loadgen_cpu_s=lg_cpu,
               peak_rss_sampled=sampler.peak, peak_pss_sampled=sampler.peak_pss, processes=len(cpu1))
    return res
