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


def compute_prepared_all(
    req: PreparedRequest, threads: int = 0, out: np.ndarray | None = None, cat_out: np.ndarray | None = None,
    item_ids: np.ndarray | None = None,
) -> Features:
    """compute_prepared with the categorical matrix too (into cat_out, or a
    new int64 array)."""
    n = req.items.n
    n_cat = len(categorical_feature_names())
    if cat_out is None:
        cat_out = np.empty((n, n_cat), dtype=np.int64)
    else:
        check_out(cat_out, (n, n_cat), np.int64)
    return Features(compute_prepared(req, threads, out, item_ids, cat_out), cat_out)


def compute_prepared(
    req: PreparedRequest, threads: int = 0, out: np.ndarray | None = None, item_ids: np.ndarray | None = None,
    cat_out: np.ndarray | None = None,
) -> np.ndarray:
    """The feature matrix of a prepared request (threads: 0 for all cores).

    item_ids, an int64 array of one entry per item, receives each record's
    ``id`` as Go decoded it: a caller that needs them (the dataset builder)
    does not decode the records a second time.
    """
    lib = _native.lib()
    ffi = _native.ffi
    n = req.items.n
    n_features = len(feature_names())
    if out is None:
        out = np.empty((n, n_features), dtype=np.float32)
    else:
        check_out(out, (n, n_features), np.float32)
    ids = ffi.NULL
    if item_ids is not None:
        check_out(item_ids, (n,), np.int64)
        ids = ffi.from_buffer("int64_t[]", item_ids)
    st = _native.new_status()
    cats = (ffi.NULL, 0) if cat_out is None else (ffi.from_buffer("int64_t[]", cat_out), cat_out.size)
    args = (*req.c_args(ffi), threads, ffi.from_buffer("float[]", out), out.size, ids, *cats, st)
    code = lib.pf_compute(req.take_user_handle(), *args)  # consumes the handle
    _native.check(code, st)
    return out
