"""The four ways a feed service ranks one request's candidates.

Each mode is an object with ``await start()``, ``await rank(user_blob,
item_blobs, candidates, k) -> (order, scores)`` (indices into the
candidates, best first, and their raw scores) and ``close()``. The service
(`app.py`) is the same for every mode: only this step differs.

- python:     pyfeat.reference features + catboost predict, in the request
              process, on the event loop (what the service did before).
- python+ppe: the same work in a ProcessPoolExecutor of PPE_WORKERS spawn
              workers; each request is split into one chunk of items per
              worker (the usual way such services cut latency), the chunks'
              inputs (user blob, item blobs, candidate arrays) and scores
              are pickled across; the main process merges the scores.
- pyfeat:     pyfeat.Ranker.arank: decoding, features and scoring in one
              Go call on every core, GIL released, off the event loop.
- pyfeat+cache: the same, with a pyfeat.ItemCache: only the candidates
              missing from the cache (or stale) are read from Redis, and
              the cached ones are already decoded.
- pyfeat+cache@25%, pyfeat+cache@10%: the same with a cache a quarter
              or a tenth of the world's decoded size (evicting).
- cpp:        the C++/pybind11 peer's features (every core) + catboost
              predict, off the event loop in a thread.
"""

from __future__ import annotations

import asyncio
import functools

import numpy as np

from . import common


class PythonMode:
    name = "python"

    def __init__(self, model_cbm: str, model_json: str) -> None:
        self.model_cbm = model_cbm

    async def start(self) -> None:
        from pyfeat import reference

        self.reference = reference
        self.model = common.load_catboost(self.model_cbm)

    async def rank(self, user_blob, item_blobs, candidates, k):
        # Blocking, on the loop: pure-Python work holds the GIL anyway.
        X = self.reference.compute(user_blob, item_blobs, candidates)
        s = self.model.predict(X, prediction_type="RawFormulaVal")
        order = common.top_k(s, k)
        return order, s[order]

    def close(self) -> None:
        pass


class PpeMode:
    name = "python+ppe"

    def __init__(self, model_cbm: str, model_json: str, workers: int | None = None) -> None:
        self.model_cbm = model_cbm
        self.workers = workers or common.BENCH_THREADS or common.PPE_WORKERS
        self.pool = None

    async def start(self) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        from . import ppe_worker

        self._worker = ppe_worker
        self.pool = ProcessPoolExecutor(
            max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=ppe_worker.init, initargs=(self.model_cbm,),
        )
        loop = asyncio.get_running_loop()
        # Start every worker now (the pool spawns them on demand): a request
        # never pays for a worker's start-up.
        for _ in range(20):
            pids = await asyncio.gather(*[loop.run_in_executor(self.pool, ppe_worker.ping, 0.3)
                                          for _ in range(self.workers)])
            if len(set(pids)) == self.workers:
                break

    async def rank(self, user_blob, item_blobs, candidates, k):
        loop = asyncio.get_running_loop()
        n = len(item_blobs)
        bounds = np.linspace(0, n, self.workers + 1).astype(int)
        futs = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            chunk = {key: v[a:b] for key, v in candidates.items()}
            futs.append(loop.run_in_executor(self.pool, self._worker.score_chunk, user_blob, item_blobs[a:b], chunk))
        s = np.concatenate(await asyncio.gather(*futs))
        order = common.top_k(s, k)
        return order, s[order]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


class PyfeatMode:
    name = "pyfeat"

    def __init__(self, model_cbm: str, model_json: str) -> None:
        self.model_json = model_json

    async def start(self) -> None:
        import pyfeat

        # threads=None: every core (the memory-scaling runs set a cap, and
        # GOMAXPROCS to the same number, as on a machine with that many cores)
        th = common.BENCH_THREADS
        self.ranker = pyfeat.Ranker(self.model_json, threads=th, max_concurrency=th)

    async def rank(self, user_blob, item_blobs, candidates, k):
        return await self.ranker.arank(user_blob, item_blobs, candidates, top_k=k)

    def close(self) -> None:
        self.ranker.close()


class PyfeatCacheMode(PyfeatMode):
    name = "pyfeat+cache"

    async def start(self) -> None:
        import pyfeat

        await super().start()
        self.cache = pyfeat.ItemCache(max_bytes=common.cache_max_bytes(), ttl=common.CACHE_TTL_S)

    async def rank_ids(self, redis, user_blob, ids, candidates, k):
        """Looks the candidates up in the cache, reads only the missing ones
        from Redis, ranks: the serving recipe of the README."""
        with self.cache.lookup(ids) as items:
            if items.missing.size:
                items.fill(await redis.mget([common.item_key(i) for i in items.missing.tolist()]))
            return await self.ranker.arank(user_blob, items, candidates, top_k=k)

    def stats(self) -> dict:
        return self.cache.stats()

    def close(self) -> None:
        super().close()
        self.cache.close()


class PyfeatCache25Mode(PyfeatCacheMode):
    """pyfeat+cache with a cache a quarter of the world's decoded size (the
    harness passes the bytes)."""

    name = "pyfeat+cache@25%"


class PyfeatCache10Mode(PyfeatCacheMode):
    """pyfeat+cache with a cache a tenth of the world's decoded size."""

    name = "pyfeat+cache@10%"


class CppMode:
    name = "cpp"

    def __init__(self, model_cbm: str, model_json: str) -> None:
        self.model_cbm = model_cbm

    async def start(self) -> None:
        peer, why = common.import_cpp_peer(build=False)
        if peer is None:
            raise RuntimeError(why)
        self.peer = peer
        self.model = common.load_catboost(self.model_cbm)

    def _rank(self, user_blob, item_blobs, candidates, k):
        X = common.cpp_compute(self.peer, user_blob, item_blobs, candidates, threads=0)
        s = self.model.predict(X, prediction_type="RawFormulaVal")
        order = common.top_k(s, k)
        return order, s[order]

    async def rank(self, user_blob, item_blobs, candidates, k):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(self._rank, user_blob, item_blobs, candidates, k))

    def close(self) -> None:
        pass


class FloorMode:
    """Not a ranking: returns the first k candidates at once. The service's
    memory with it is the floor under every mode's (bench/memory_floor.py)."""

    name = "floor"

    def __init__(self, model_cbm: str, model_json: str) -> None:
        pass

    async def start(self) -> None:
        pass

    async def rank(self, user_blob, item_blobs, candidates, k):
        k = min(k, len(item_blobs))
        return np.arange(k), np.zeros(k)

    def close(self) -> None:
        pass


class HoldMode(FloorMode):
    """Not a ranking: joins the records as pyfeat does and holds them for
    HOLD_S in a thread, as long as a ranking call would, then answers like
    FloorMode. The service's memory with it is what keeping a request's
    inputs alive during a call costs, whatever the call does."""

    name = "floor+hold"
    HOLD_S = 0.006

    async def rank(self, user_blob, item_blobs, candidates, k):
        import time

        blob = b"".join(item_blobs)
        lengths = np.fromiter(map(len, item_blobs), dtype=np.int64, count=len(item_blobs))
        await asyncio.get_running_loop().run_in_executor(None, time.sleep, self.HOLD_S)
        del blob, lengths
        return await super().rank(user_blob, item_blobs, candidates, k)


MODE_CLASSES = {m.name: m for m in (PythonMode, PpeMode, PyfeatMode, PyfeatCacheMode, PyfeatCache25Mode,
                                     PyfeatCache10Mode, CppMode)}
# Served by serve.py but never timed by run_all.py: they rank nothing.
FLOOR_MODE_CLASSES = {m.name: m for m in (FloorMode, HoldMode)}
SERVED_MODE_CLASSES = {**MODE_CLASSES, **FLOOR_MODE_CLASSES}
