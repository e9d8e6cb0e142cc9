"""FeatureEngine: the feature matrix of a request, computed in Go."""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import _native
from ._inputs import PreparedRequest, Record, check_out, threads_arg

__all__ = [
    "FeatureEngine", "feature_names", "spec_hash", "feature_catalogue", "FeatureInfo", "compute_prepared",
    "SPEC_HASH_KEY", "FEATURE_NAMES_KEY", "Features", "categorical_feature_names", "CAT_MISSING", "NUMERIC",
    "CATEGORICAL", "compute_prepared_all",
]

NUMERIC = "numeric"
CATEGORICAL = "categorical"

CAT_MISSING = -(2**63)
"""The value of a missing categorical feature (int64's minimum). CatBoost
sees it as the string ``"-9223372036854775808"``, in training files and in
serving alike; an input id equal to it is refused."""

# Metadata keys under which a model (CatBoost user metadata) and a training
# file (Parquet key-value metadata) record the feature list they were made
# with: spec_hash(), and feature_names() as JSON.
SPEC_HASH_KEY = "pyfeat_spec_hash"
FEATURE_NAMES_KEY = "pyfeat_feature_names"


class FeatureInfo(tuple):
    """One catalogue entry: (name, group, definition, kind).

    ``kind`` is ``"numeric"`` (a float32 column of ``compute``, NaN when
    missing) or ``"categorical"`` (an int64 column of ``compute_all``'s
    ``categorical`` matrix, ``CAT_MISSING`` when missing).
    """

    __slots__ = ()

    def __new__(cls, name: str, group: str, definition: str, kind: str = NUMERIC) -> "FeatureInfo":
        return super().__new__(cls, (name, group, definition, kind))

    @property
    def name(self) -> str:
        return self[0]

    @property
    def group(self) -> str:
        return self[1]

    @property
    def definition(self) -> str:
        return self[2]


    @property
    def kind(self) -> str:
        return self[3]


@functools.lru_cache(maxsize=1)
def _catalogue() -> tuple[FeatureInfo, ...]:
    text = _native.read_text(_native.lib().pf_catalogue)
    out = []
    for line in text.splitlines():
        name, group, kind, definition = line.split("\t", 3)
        out.append(FeatureInfo(name, group, definition, kind))
    return tuple(out)


def feature_catalogue() -> list[FeatureInfo]:
    """Every column's name, group, one-line definition and kind: the
    numeric columns in matrix order, then the categorical ones."""
    return list(_catalogue())


def feature_names() -> list[str]:
    """The numeric feature matrix's column names, in order (``compute``)."""
    return [f.name for f in _catalogue() if f.kind == NUMERIC]


def categorical_feature_names() -> list[str]:
    """The categorical matrix's column names, in order (``compute_all``)."""
    return [f.name for f in _catalogue() if f.kind == CATEGORICAL]


@functools.lru_cache(maxsize=1)
def spec_hash() -> str:
    """16 hex digits identifying the feature list (names, kinds and order).

    A model records the hash it was trained with; a model with another hash
    was trained on other features.
    """
    buf = _native.ffi.new("char[64]")
    st = _native.new_status()
    _native.check(_native.lib().pf_spec_hash(buf, len(buf), st), st)
    return _native.ffi.string(buf).decode("ascii")


class Features(tuple):
    """``(numeric, categorical)`` of one request; unpacks as a 2-tuple.

    ``numeric`` is float32 ``(n, len(feature_names()))``, NaN for missing;
    ``categorical`` is int64 ``(n, len(categorical_feature_names()))``,
    ``CAT_MISSING`` for missing. CatBoost takes each categorical id as its
    decimal string (``str(id)``), which is what ``pyfeat train`` gives it.
    """

    def __new__(cls, numeric: np.ndarray, categorical: np.ndarray) -> "Features":
        return super().__new__(cls, (numeric, categorical))

    def __getnewargs__(self) -> tuple[np.ndarray, np.ndarray]:
        return (self[0], self[1])  # pickled as two arguments (dataset workers send it)

    @property
    def numeric(self) -> np.ndarray:
        return self[0]

    @property
    def categorical(self) -> np.ndarray:
        return self[1]


# The C ABI's timings array (pyfeat.h, PF_STAGE_*), and the stages a call's
# `timings` report, in seconds: "python" is converting the inputs and the
# outputs on the calling thread; the others are measured in Go.
_GO_STAGES = ("total", "wait", "user", "decode", "features", "scoring", "topk", "other")
STAGES = ("python", "wait", "user", "decode", "features", "scoring", "topk", "other")


class Counters:
    """Cumulative per-stage seconds, calls and items of an engine or a
    ranker; safe for many threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sums = dict.fromkeys(STAGES, 0.0)
        self._calls = 0
        self._items = 0

    def add(self, timings: dict[str, float], n_items: int) -> None:
        with self._lock:
            self._calls += 1
            self._items += n_items
            for k in STAGES:
                self._sums[k] += timings[k]

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"calls": self._calls, "items": self._items, "seconds": dict(self._sums),
                    "total_seconds": sum(self._sums.values())}


def stage_timings(go: Any, python_s: float, extra_wait_s: float = 0.0) -> dict[str, float]:
    """A call's stages in seconds, from Go's timings array and the time the
    call spent in Python; "total" is their sum."""
    t = {k: go[i] * 1e-9 for i, k in enumerate(_GO_STAGES) if k != "total"}
    t["wait"] += extra_wait_s
    t["python"] = python_s
    t = {k: t[k] for k in STAGES}
    t["total"] = sum(t.values())
    return t


class FeatureEngine:
    """Computes the feature matrix of a request in Go.

    Args:
        threads: goroutines per call at most; ``None`` uses every core.
            The call releases the GIL, so many Python threads may call at
            once; calls running together share the cores (each gets its
            share, at least one goroutine).

    The engine holds no per-request state; one instance can serve every
    thread of a process.
    """

    def __init__(self, threads: int | None = None) -> None:
        self._threads = threads_arg(threads)
        self.n_features = len(feature_names())
        self.n_cat_features = len(categorical_feature_names())
        self._counters = Counters()

    def stats(self) -> dict[str, Any]:
        """Calls, items and seconds per stage (see ``RankResult.timings``)
        summed over every ``compute`` of this engine."""
        return self._counters.snapshot()

    @property
    def threads(self) -> int | None:
        return self._threads or None

    def compute(
        self,
        user: Record,
        items: Sequence[Record],
        candidates: Mapping[str, Any] | None = None,
        *,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Features of every (user, item) pair of one request.

        Args:
            user: the user context, MessagePack bytes or a dict.
            items: the item records, each MessagePack bytes (as the item
                store returned them) or a dict.
            candidates: optional dict of 1-D arrays ``source`` (int),
                ``source_score`` (float), ``source_rank`` (int), each with
                one entry per item; absent arrays make their features NaN.
            out: optional C-contiguous float32 array of shape
                ``(len(items), n_features)`` to write into.

        Returns:
            float32 array of shape ``(len(items), n_features)``, columns in
            ``feature_names()`` order; NaN marks a missing value.

        Raises:
            InputError: a malformed record, a missing required key, a value
                out of range; ``position`` and ``key`` say where.
            InputTypeError: a value or argument of the wrong type.
            ForkError: called in a process forked after pyfeat loaded.
        """
        t0 = time.perf_counter()
        with PreparedRequest(user, items, candidates, begin=True, pooled=True) as req:
            return compute_prepared(req, self._threads, out, t0=t0, counters=self._counters)

    def compute_all(
        self,
        user: Record,
        items: Sequence[Record],
        candidates: Mapping[str, Any] | None = None,
        *,
        out: np.ndarray | None = None,
        cat_out: np.ndarray | None = None,
    ) -> Features:
        """The numeric and the categorical features of one request, in one
        call (arguments and errors as for ``compute``).

        Args:
            out: optional float32 array ``(len(items), n_features)``.
            cat_out: optional C-contiguous int64 array ``(len(items),
                n_cat_features)``.

        Returns:
            :class:`Features` ``(numeric, categorical)``: the float32 matrix
            of ``compute`` and the int64 matrix of the
            ``categorical_feature_names()`` columns, ``CAT_MISSING`` where
            a value is missing.
        """
        with PreparedRequest(user, items, candidates, begin=True) as req:
            return compute_prepared_all(req, self._threads, out, cat_out)


class OutputPool:
    """Feature matrices handed out as views of buffers that are reused once
    the caller has let go of them.

    A fresh ``np.empty`` of 3000 x 77 float32 (900 KiB) is served by glibc
    from freshly mapped pages in a plain process: 226 page faults, a third
    of a call's time. Here the returned array is a view of a pooled 1-D
    buffer, and a buffer is reused only when nothing but the pool refers to
    it: every numpy view of a view keeps the buffer itself as its ``base``,
    and memoryviews, cffi buffers and array wrappers of other libraries
    keep the array, so the buffer's reference count stays above the pool's
    own while anything can still read it. Many threads: a buffer is
    claimed under the lock, and the claim (the view) raises its count
    before the lock is released, so no two calls get the same buffer.
    (CPython with the GIL: reference counts are exact there.)
    """

    MAX_BYTES = 16 << 20  # larger matrices are plain allocations

    def __init__(self, keep: int) -> None:
        self._bufs: list[np.ndarray] = []
        self._keep = keep
        self._lock = threading.Lock()
        probe = [np.empty(1, dtype=np.float32)]
        self._idle_refs = self._refs(probe, 0)

    @staticmethod
    def _refs(bufs: list[np.ndarray], i: int) -> int:
        # The same expression for the probe and the pool, so the count of
        # the references this code itself holds is the same in both.
        return sys.getrefcount(bufs[i])

    def empty(self, n: int, n_features: int) -> np.ndarray:
        need = n * n_features
        if need == 0 or need * 4 > self.MAX_BYTES:
            return np.empty((n, n_features), dtype=np.float32)
        with self._lock:
            bufs = self._bufs
            idle = -1
            for i in range(len(bufs)):
                if self._refs(bufs, i) == self._idle_refs:
                    if bufs[i].size >= need:
                        return bufs[i][:need].reshape(n, n_features)
                    idle = i
            buf = np.empty(need, dtype=np.float32)
            if idle >= 0:
                bufs[idle] = buf  # an idle buffer too small for this call
            elif len(bufs) < self._keep:
                bufs.append(buf)
            return buf.reshape(n, n_features)


_outputs = OutputPool(keep=2 * (os.cpu_count() or 1) + 2)


def compute_prepared_all(
    req: PreparedRequest, threads: int = 0, out: np.ndarray | None = None, cat_out: np.ndarray | None = None,
    item_ids: np.ndarray | None = None,
) -> Features:
    """compute_prepared with the categorical matrix too (into cat_out, or a
    new int64 array)."""
    n = req.n
    n_cat = len(categorical_feature_names())
    if cat_out is None:
        cat_out = np.empty((n, n_cat), dtype=np.int64)
    else:
        check_out(cat_out, (n, n_cat), np.int64)
    return Features(compute_prepared(req, threads, out, item_ids, cat_out), cat_out)


def compute_prepared(
    req: PreparedRequest, threads: int = 0, out: np.ndarray | None = None, item_ids: np.ndarray | None = None,
    cat_out: np.ndarray | None = None, *, t0: float | None = None, counters: Counters | None = None,
) -> np.ndarray:
    """The feature matrix of a prepared request (threads: 0 for all cores).

    item_ids, an int64 array of one entry per item, receives each record's
    ``id`` as Go decoded it: a caller that needs them (the dataset builder)
    does not decode the records a second time.
    """
    lib = _native.lib()
    ffi = _native.ffi
    n = req.n
    n_features = len(feature_names())
    if out is None:
        out = _outputs.empty(n, n_features)
    else:
        check_out(out, (n, n_features), np.float32)
    ids = ffi.NULL
    if item_ids is not None:
        check_out(item_ids, (n,), np.int64)
        ids = ffi.from_buffer("int64_t[]", item_ids)
    st = _native.new_status()
    go = ffi.new("int64_t[]", _native.PF_STAGES)
    cats = (ffi.NULL, 0) if cat_out is None else (ffi.from_buffer("int64_t[]", cat_out), cat_out.size)
    args = (*req.c_args(ffi), threads, ffi.from_buffer("float[]", out), out.size, ids, go, *cats, st)
    handle = req.take_user_handle()
    t1 = time.perf_counter()
    code = lib.pf_compute(handle, *args)  # consumes the handle
    t2 = time.perf_counter()
    _native.check(code, st)
    if counters is not None and t0 is not None:
        # Python's share: converting the inputs before the call, the call's
        # crossing of the boundary, and what follows it.
        counters.add(stage_timings(go, (t1 - t0) + (t2 - t1 - go[0] * 1e-9) + (time.perf_counter() - t2)), n)
    return out
