"""A real redis-server on loopback, started and filled by the harness."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from . import common


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """redis-server on 127.0.0.1, no persistence, stopped on exit."""

    def __init__(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server not found: apt-get install redis-server")
        self.exe = exe
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="pyfeat-bench-redis-"))
        self.proc: subprocess.Popen | None = None

    def start(self) -> "RedisServer":
        self.proc = subprocess.Popen(
            [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), "--logfile", str(self.dir / "redis.log"), "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        deadline = time.monotonic() + 20
        while True:
            try:
                redis.Redis(host="127.0.0.1", port=self.port).ping()
                return self
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start: see {self.dir / 'redis.log'}") from None
                time.sleep(0.05)

    def version(self) -> str:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port).info("server")["redis_version"]

    def fill(self, world, requests, stream=()) -> dict:
        """Every item record of the world, and each request's user context and
        candidate list (the benchmark requests' and the stream's)."""
        import redis

        r = redis.Redis(host="127.0.0.1", port=self.port)
        r.flushall()
        ids = world.item_ids.tolist()
        blobs = world.items_blobs()
        pipe = r.pipeline(transaction=False)
        for a in range(0, len(ids), 2000):
            pipe.mset({common.item_key(i): b for i, b in zip(ids[a:a + 2000], blobs[a:a + 2000])})
        for q in [*requests, *stream]:
            pipe.set(common.user_key(q.rid), q.user_blob)
            pipe.set(common.cand_key(q.rid), common.pack_candidates(q.item_ids, q.candidates))
        pipe.execute()
        info = r.info("memory")
        return dict(items=len(ids), item_bytes=sum(map(len, blobs)), requests=len(requests), stream=len(stream),
                    used_memory_mb=round(info["used_memory"] / 2**20, 1))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
