"""FeatureEngine: the feature matrix of a request, computed in Go."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import _native
from ._inputs import PreparedRequest, Record, check_out, threads_arg

__all__ = [
    "FeatureEngine", "feature_names", "spec_hash", "feature_catalogue", "FeatureInfo", "compute_prepared",
    "SPEC_HASH_KEY", "FEATURE_NAMES_KEY",
]

# Metadata keys under which a model (CatBoost user metadata) and a training
# file (Parquet key-value metadata) record the feature list they were made
# with: spec_hash(), and feature_names() as JSON.
SPEC_HASH_KEY = "pyfeat_spec_hash"
FEATURE_NAMES_KEY = "pyfeat_feature_names"


class FeatureInfo(tuple):
    """One catalogue entry: (name, group, definition)."""

    __slots__ = ()

    def __new__(cls, name: str, group: str, definition: str) -> "FeatureInfo":
        return super().__new__(cls, (name, group, definition))

    @property
    def name(self) -> str:
        return self[0]

    @property
    def group(self) -> str:
        return self[1]

    @property
    def definition(self) -> str:
        return self[2]


@functools.lru_cache(maxsize=1)
def _catalogue() -> tuple[FeatureInfo, ...]:
    text = _native.read_text(_native.lib().pf_catalogue)
    return tuple(FeatureInfo(*line.split("\t", 2)) for line in text.splitlines())


def feature_catalogue() -> list[FeatureInfo]:
    """Every feature's name, group and one-line definition, in column order."""
    return list(_catalogue())


def feature_names() -> list[str]:
    """The feature matrix's column names, in order."""
    return [f.name for f in _catalogue()]


@functools.lru_cache(maxsize=1)
def spec_hash() -> str:
    """16 hex digits identifying the feature list (names and order).

    A model records the hash it was trained with; a model with another hash
    was trained on other features.
    """
    buf = _native.ffi.new("char[64]")
    st = _native.new_status()
    _native.check(_native.lib().pf_spec_hash(buf, len(buf), st), st)
    return _native.ffi.string(buf).decode("ascii")


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
        self.n_features = len(_catalogue())

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
        with PreparedRequest(user, items, candidates, begin=True) as req:
            return compute_prepared(req, self._threads, out)


def compute_prepared(
    req: PreparedRequest, threads: int = 0, out: np.ndarray | None = None, item_ids: np.ndarray | None = None
) -> np.ndarray:
    """The feature matrix of a prepared request (threads: 0 for all cores).

    item_ids, an int64 array of one entry per item, receives each record's
    ``id`` as Go decoded it: a caller that needs them (the dataset builder)
    does not decode the records a second time.
    """
    lib = _native.lib()
    ffi = _native.ffi
    n = req.items.n
    n_features = len(_catalogue())
    if out is None:
        out = np.empty((n, n_features), dtype=np.float32)
    else:
        check_out(out, (n, n_features), np.float32)
    ids = ffi.NULL
    if item_ids is not None:
        check_out(item_ids, (n,), np.int64)
        ids = ffi.from_buffer("int64_t[]", item_ids)
    st = _native.new_status()
    args = (*req.c_args(ffi), threads, ffi.from_buffer("float[]", out), out.size, ids, st)
    code = lib.pf_compute(req.take_user_handle(), *args)  # consumes the handle
    _native.check(code, st)
    return out
