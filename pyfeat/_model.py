"""CatBoost models evaluated in Go, and the Ranker that serves with them."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import os
import tempfile
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import _catinput, _convert, _native
from ._engine import (
    FEATURE_NAMES_KEY,
    SPEC_HASH_KEY,
    Counters,
    categorical_feature_names,
    feature_names,
    spec_hash,
    stage_timings,
)
from ._inputs import PreparedRequest, Record, check_out, threads_arg, top_k_arg
from .errors import ModelError

__all__ = ["Model", "Ranker", "RankResult", "BACKENDS", "SPEC_HASH_KEY", "FEATURE_NAMES_KEY"]


BACKENDS = ("native", "capi")


class RankResult(tuple):
    """``(order, scores)`` of one ranked request; unpacks as a 2-tuple.

    ``request_id`` is the id the request was logged under (``rank(...,
    log=...)``), else ``None``: the service keeps it to attribute later
    clicks and contacts to the request.

    ``timings`` says where the call's wall time went, in seconds:
    ``python`` (converting the inputs and outputs on the calling thread),
    ``wait`` (before the computation started: for ``arank``, waiting for a
    ranker thread too), ``user`` (preparing the user context), ``decode``
    (MessagePack records; none for an item cache's records), ``features``,
    ``scoring``, ``topk`` and ``other``; ``total`` is their sum, the call's
    wall time. Decoding, features and scoring run on several goroutines at
    once, so the computation's wall time is split between them in
    proportion to their CPU time.
    """

    request_id: Any
    timings: dict[str, float]

    def __new__(cls, order: np.ndarray, scores: np.ndarray, request_id: Any = None,
                timings: dict[str, float] | None = None) -> "RankResult":
        self = super().__new__(cls, (order, scores))
        self.request_id = request_id
        self.timings = timings or {}
        return self

    @property
    def order(self) -> np.ndarray:
        return self[0]

    @property
    def scores(self) -> np.ndarray:
        return self[1]


def _close_handle(handle: int) -> None:
    # Called from a finalizer, possibly at interpreter exit or in a forked
    # child where the library must not be touched: never raise.
    try:
        if _native.is_loaded_here():
            st = _native.new_status()
            _native.lib().pf_model_close(handle, st)
    except Exception:
        pass


class Model:
    """A CatBoost model, evaluated in Go.

    Args:
        path: a ``.json`` export (``save_model(path, format="json")``) or a
            ``.cbm`` file. The native backend evaluates the JSON export; a
            ``.cbm`` is converted through the ``catboost`` package in a
            separate converter process (started on first use and kept), so
            that a damaged file that crashes CatBoost's reader costs that
            process, not this one. The capi backend loads a ``.cbm`` with
            CatBoost's library in this process, after the converter process
            loaded a private copy with the same library without harm (it
            then loads that copy). The path must be a regular file of at
            most ``pyfeat.MAX_MODEL_BYTES`` (1 GiB).
        backend: ``"native"`` (oblivious trees in Go, exact) or ``"capi"``
            (CatBoost's own ``libcatboostmodel.so``).
        threads: goroutines per call at most; ``None`` uses every core
            (calls running together share the cores).
        catboost_lib: path of ``libcatboostmodel.so`` for the capi backend
            (default: ``$PYFEAT_CATBOOST_LIB``).

    A model is safe to share between threads. ``close()`` (or leaving a
    ``with`` block) releases it; Go, which owns every model's lifetime,
    closes it once the calls in flight have finished.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        backend: str = "native",
        *,
        threads: int | None = None,
        catboost_lib: str | os.PathLike[str] | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.path = Path(path)
        self.backend = backend
        self._threads = threads_arg(threads)
        self._closed = False
        self._handle = self._load(catboost_lib)
        self._finalizer = weakref.finalize(self, _close_handle, self._handle)
        lib = _native.lib()
        st = _native.new_status()
        nf, dims = _native.ffi.new("int64_t*"), _native.ffi.new("int64_t*")
        _native.check(lib.pf_model_shape(self._handle, nf, dims, st), st)
        self.n_features = int(nf[0])
        self.dimensions = int(dims[0])
        desc = json.loads(_native.read_text(functools.partial(lib.pf_model_describe, self._handle)))
        self.feature_names: list[str] | None = desc["feature_names"]
        self.metadata: dict[str, str] = desc["metadata"]
        self.n_trees: int | None = desc["trees"]
        layout = json.loads(_native.read_text(functools.partial(lib.pf_model_cat_layout, self._handle)))
        # Columns of the training table: a model with categorical features
        # takes rows of n_features + n_cat_features values in that order.
        self.float_columns: list[int] = layout["float_flat"]
        self.cat_columns: list[int] = layout["cat_flat"]
        self.cat_feature_names: list[str] = layout["cat_feature_names"]
        self.n_cat_features = len(self.cat_columns)

    def _load(self, catboost_lib: Any) -> int:
        suffix = self.path.suffix.lower()
        if suffix not in (".json", ".cbm"):
            raise ModelError(f"{self.path}: expected a .json export or a .cbm model, got {suffix or 'no suffix'}")
        _convert.check_model_file(self.path)  # a FIFO or a device is refused before any read
        want = ".json" if self.backend == "native" else ".cbm"
        if suffix == want == ".json":
            # Go reads JSON itself, with the same bounds.
            return self._load_file(self.path, catboost_lib)
        # The conversion, or for the capi backend the trial load, runs in
        # the converter process (pyfeat/_convert.py), on a private copy read
        # with bounds: the copy checked is the copy loaded.
        with tempfile.TemporaryDirectory(prefix="pyfeat-model-") as tmp:
            src = Path(tmp) / f"source{suffix}"
            src.write_bytes(_convert.read_model_file(self.path))
            if suffix == want:
                lib = catboost_lib if catboost_lib is not None else os.environ.get("PYFEAT_CATBOOST_LIB")
                if lib:  # without one, Go's error says how to name it
                    _convert.check_capi(src, os.path.abspath(os.fsdecode(lib)), name=self.path)
                return self._load_file(src, catboost_lib)
            converted = Path(tmp) / f"model{want}"
            _convert.convert(src, converted, suffix[1:], want[1:], name=self.path)
            return self._load_file(converted, catboost_lib)

    def _load_file(self, path: Path, catboost_lib: Any) -> int:
        lib = _native.lib()
        handle = _native.ffi.new("int64_t*")
        st = _native.new_status()
        libpath = os.fsencode(catboost_lib) if catboost_lib is not None else b""
        try:
            _native.check(lib.pf_model_load(os.fsencode(path), self.backend.encode(), libpath, handle, st), st)
        except ModelError as e:
            raise ModelError(f"{self.path}: {e}") from None
        return int(handle[0])

    def close(self) -> None:
        """Release the model. Calls already running finish with it first
        (Go waits for them); later calls raise ModelError. Idempotent."""
        self._closed = True
        self._finalizer()  # runs pf_model_close once

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{self.n_features} features, {self.dimensions} outputs"
        return f"<pyfeat.Model {self.path.name!r} backend={self.backend} {state}>"

    def predict(self, X: Any) -> np.ndarray:
        """Raw predictions (CatBoost's RawFormulaVal).

        Args:
            X: 2-D array of shape ``(n, n_features)``; converted to float32
                (CatBoost's own input type) if needed. NaN means missing.
                For a model with categorical features, a table of
                ``n_features + n_cat_features`` columns in training order
                (numpy array, pandas DataFrame or list of rows), the
                categorical values ints or strings, as catboost's
                ``predict`` takes them.

        Returns:
            float64 array of shape ``(n,)``, or ``(n, dimensions)`` for a
            multi-dimensional model (e.g. MultiClass).
        """
        if self._closed:
            raise ModelError(f"model {self.path} is closed")
        if self.n_cat_features:
            return _predict_cat(self._handle, X, self.float_columns, self.cat_columns, self.dimensions, self._threads)
        return _predict(self._handle, X, self.n_features, self.dimensions, self._threads)


def _predict(handle: int, X: Any, n_features: int, dimensions: int, threads: int) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n, {n_features}), got shape {X.shape}; use X.reshape(1, -1) for one row")
    if X.shape[1] != n_features:
        raise ValueError(f"the model takes {n_features} features per row, X has {X.shape[1]}")
    if not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer) or X.dtype == np.bool_):
        raise TypeError(f"X must hold numbers, got dtype {X.dtype}")
    X = np.ascontiguousarray(X, dtype=np.float32)
    n = X.shape[0]
    out = np.empty((n, dimensions), dtype=np.float64)
    ffi = _native.ffi
    st = _native.new_status()
    code = _native.lib().pf_model_predict(
        handle, ffi.from_buffer("float[]", X), n, X.shape[1], threads,
        ffi.from_buffer("double[]", out), out.size, st,
    )
    _native.check(code, st)
    return out[:, 0] if dimensions == 1 else out


def _predict_cat(
    handle: int, X: Any, float_columns: list[int], cat_columns: list[int], dimensions: int, threads: int
) -> np.ndarray:
    floats, cats = _catinput.split_table(X, float_columns, cat_columns)
    return _predict_hashed(handle, floats, cats, dimensions, threads)


def _predict_hashed(handle: int, floats: np.ndarray, cats: np.ndarray, dimensions: int, threads: int) -> np.ndarray:
    """Scores of float32 (n, n_float) rows and their hashed uint32 (n,
    n_cat) categorical values."""
    n = floats.shape[0]
    out = np.empty((n, dimensions), dtype=np.float64)
    ffi = _native.ffi
    st = _native.new_status()
    code = _native.lib().pf_model_predict_cat(
        handle, ffi.from_buffer("float[]", floats), n, floats.shape[1],
        ffi.from_buffer("uint32_t[]", cats), cats.shape[1], threads,
        ffi.from_buffer("double[]", out), out.size, st,
    )
    _native.check(code, st)
    return out[:, 0] if dimensions == 1 else out


def categorical_differences(model: "Model") -> list[str]:
    """How a model's categorical features differ from pyfeat's categorical
    columns (none for a model without categorical features)."""
    if not model.n_cat_features:
        return []
    ours = categorical_feature_names()
    theirs = list(model.cat_feature_names)
    diffs = []
    if theirs != ours:
        diffs.append(f"categorical features {theirs}, pyfeat computes {ours} (train with pyfeat train, or on "
                     "pyfeat.categorical_feature_names() in that order after the numeric columns)")
    n = len(feature_names())
    if model.float_columns != list(range(n)) or model.cat_columns != list(range(n, n + len(ours))):
        diffs.append("the numeric columns must come first in the training table, then the categorical ones")
    return diffs


def feature_differences(model_names: Sequence[str] | None) -> list[str]:
    """Human-readable differences between a model's features and pyfeat's."""
    ours = feature_names()
    if model_names is None:
        return ["the model records no feature names (train it on a DataFrame or Pool with pyfeat.feature_names())"]
    theirs = list(model_names)
    if theirs == ours:
        return []
    diffs = []
    missing = [n for n in ours if n not in theirs]
    unknown = [n for n in theirs if n not in ours]
    if len(theirs) != len(ours):
        diffs.append(f"the model has {len(theirs)} features, pyfeat computes {len(ours)}")
    if missing:
        diffs.append(f"not in the model: {', '.join(missing)}")
    if unknown:
        diffs.append(f"unknown to pyfeat: {', '.join(unknown)}")
    if not missing and not unknown:
        moved = [f"{n} (model column {theirs.index(n)}, pyfeat column {i})" for i, n in enumerate(ours) if theirs[i] != n]
        diffs.append(f"same names in another order: {', '.join(moved[:10])}{' ...' if len(moved) > 10 else ''}")
    return diffs


class Ranker:
    """Scores and orders a request's candidates: decoding, features and
    CatBoost scoring in one Go call, with the GIL released.

    Args:
        model_path: a ``.json`` export (loaded natively; serving never imports
            ``catboost``) or a ``.cbm`` (converted through ``catboost``).
        backend: ``"native"`` or ``"capi"`` (see :class:`Model`).
        threads: goroutines per call at most; ``None`` uses every core
            (calls running together share the cores).
        catboost_lib: ``libcatboostmodel.so`` for the capi backend.
        max_concurrency: how many ``arank`` calls run at once (default: the
            number of cores). The cores are busy with that many, so running
            more at once adds memory (each holds its request's records) and
            tail latency, not throughput; the others wait.

    The model must have been trained on ``pyfeat.feature_names()``, in that
    order, and optionally on ``pyfeat.categorical_feature_names()`` after
    them as CatBoost ``cat_features`` (what ``pyfeat train`` does): then the
    categorical columns are computed, hashed and scored in the same Go call.
    Any other model is refused with the list of differences.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        backend: str = "native",
        threads: int | None = None,
        *,
        catboost_lib: str | os.PathLike[str] | None = None,
        max_concurrency: int | None = None,
    ) -> None:
        if max_concurrency is not None and (isinstance(max_concurrency, bool) or max_concurrency < 1):
            raise ValueError(f"max_concurrency must be >= 1 or None, got {max_concurrency!r}")
        self._max_concurrency = max_concurrency or os.cpu_count() or 1
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._backend = backend
        self._threads = threads_arg(threads)
        self._catboost_lib = catboost_lib
        self._n_features = len(feature_names())
        self._swap = threading.Lock()
        self._counters = Counters()
        self._model = self._load(model_path)
        # The ranker's own handle: Go swaps the model behind it atomically
        # (reload), and every call acquires the model it serves in Go, so a
        # request never meets a model that a reload closed.
        shared = _native.ffi.new("int64_t*")
        st = _native.new_status()
        _native.check(_native.lib().pf_model_share(self._model._handle, shared, st), st)
        self._handle = int(shared[0])
        self._finalizer = weakref.finalize(self, _close_handle, self._handle)

    def stats(self) -> dict[str, Any]:
        """Calls, items and seconds per stage (see ``RankResult.timings``)
        summed over every ``rank`` and ``arank`` of this ranker."""
        return self._counters.snapshot()

    def _load(self, path: str | os.PathLike[str]) -> Model:
        model = Model(path, self._backend, threads=self._threads or None, catboost_lib=self._catboost_lib)
        try:
            diffs = feature_differences(model.feature_names) + categorical_differences(model)
            if diffs:
                raise ModelError(f"{path} was not trained on pyfeat's features: " + "; ".join(diffs))
            recorded = model.metadata.get(SPEC_HASH_KEY)
            if recorded is not None and recorded != spec_hash():
                raise ModelError(
                    f"{path} records spec hash {recorded}, this pyfeat computes {spec_hash()}: "
                    "retrain the model on the current features"
                )
            if model.dimensions != 1:
                raise ModelError(f"{path} has {model.dimensions} outputs per row; ranking needs one score per item")
        except BaseException:
            model.close()
            raise
        return model

    @property
    def model(self) -> Model:
        """The model currently serving (closed once a reload replaced it)."""
        return self._model

    def reload(self, model_path: str | os.PathLike[str]) -> None:
        """Load another model and swap it in atomically.

        Requests already running finish with the old model; every request
        that starts after the swap uses the new one; none sees a mix. If the
        new model cannot be loaded or does not fit, the old one keeps serving
        and the error is raised.
        """
        new = self._load(model_path)
        st = _native.new_status()
        with self._swap:
            try:
                _native.check(_native.lib().pf_model_swap(self._handle, new._handle, st), st)
            except BaseException:
                new.close()
                raise
            old, self._model = self._model, new
        old.close()

    def close(self) -> None:
        """Release the model (calls in flight finish first) and the
        ``arank`` threads."""
        self._finalizer()
        self._model.close()
        with self._swap:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False)

    def __enter__(self) -> "Ranker":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def predict(self, X: Any, categorical: Any = None) -> np.ndarray:
        """Raw scores (RawFormulaVal) of a feature matrix, float64 ``(n,)``.

        Args:
            X: the numeric features, ``(n, len(feature_names()))``.
            categorical: the categorical ids, int ``(n,
                len(categorical_feature_names()))`` (``compute_all``'s
                matrix, or a dataset's categorical columns); needed by a
                model with categorical features, ignored by one without.
        """
        if not self._model.n_cat_features:
            return _predict(self._handle, X, self._n_features, 1, self._threads)
        if categorical is None:
            raise ValueError("this model takes categorical features: pass predict(X, categorical)")
        X = np.asarray(X)
        C = np.asarray(categorical)
        n_cat = len(categorical_feature_names())
        if X.ndim != 2 or X.shape[1] != self._n_features:
            raise ValueError(f"X must be 2-D (n, {self._n_features}), got shape {X.shape}")
        if C.shape != (X.shape[0], n_cat):
            raise ValueError(f"categorical must have shape {(X.shape[0], n_cat)}, got {C.shape}")
        if C.dtype.kind not in "iu":
            raise TypeError(f"categorical must hold integer ids, got dtype {C.dtype}")
        floats = np.ascontiguousarray(X, dtype=np.float32)
        hashed = _catinput.hash_column(C.reshape(-1), 0).reshape(C.shape)
        return _predict_hashed(self._handle, floats, hashed, 1, self._threads)

    def rank(
        self,
        user: Record,
        items: Sequence[Record],
        candidates: Mapping[str, Any] | None = None,
        top_k: int | None = None,
        *,
        features_out: np.ndarray | None = None,
        log: Any = None,
        cat_features_out: np.ndarray | None = None,
    ) -> RankResult:
        """Order a request's candidates by the model's score.

        Args:
            user, items, candidates: as for ``FeatureEngine.compute``.
            top_k: return only the best ``top_k`` (default: all).
            features_out: optional float32 array ``(len(items), n_features)``
                that receives the feature matrix the scores came from.
            cat_features_out: optional int64 array ``(len(items),
                n_cat_features)`` that receives the categorical matrix
                (computed for it even when the model takes none).
            log: optional ``pyfeat.RequestLog``; once the request is ranked,
                its raw inputs are appended to it (for building training data
                later) and the result's ``request_id`` is the id it was logged
                under. A request that raises is not logged.

        Returns:
            ``(order, scores)`` (a :class:`RankResult`): ``order`` int64
            indices into ``items``, best first; ``scores`` float64 raw scores
            in that order, descending; ties keep input order.
        """
        t0 = time.perf_counter()
        with PreparedRequest(user, items, candidates, begin=True, pooled=True) as req:
            return self._rank(req, top_k, features_out, log, cat_features_out, python_s=time.perf_counter() - t0)

    def _rank(
        self, req: PreparedRequest, top_k: int | None, features_out: np.ndarray | None = None, log: Any = None,
        cat_features_out: np.ndarray | None = None, *, python_s: float = 0.0, submitted: float | None = None,
    ) -> RankResult:
        t0 = time.perf_counter()
        queued = 0.0 if submitted is None else t0 - submitted
        n = req.n
        k = top_k_arg(top_k, n)
        order = np.empty(k, dtype=np.int64)
        scores = np.empty(k, dtype=np.float64)
        ffi = _native.ffi
        feats = ffi.NULL
        if features_out is not None:
            check_out(features_out, (n, self._n_features), np.float32)
            feats = ffi.from_buffer("float[]", features_out)
        cats = ffi.NULL
        if cat_features_out is not None:
            check_out(cat_features_out, (n, len(categorical_feature_names())), np.int64)
            cats = ffi.from_buffer("int64_t[]", cat_features_out)
        st = _native.new_status()
        go = ffi.new("int64_t[]", _native.PF_STAGES)
        args = (*req.c_args(ffi), self._threads, feats, cats,
                ffi.from_buffer("double[]", scores), ffi.from_buffer("int64_t[]", order), k, go, st)
        # Go acquires the model the handle serves for the whole call: one
        # model per request, whatever reload() does meanwhile.
        user_handle = req.take_user_handle()
        t1 = time.perf_counter()
        code = _native.lib().pf_rank(self._handle, user_handle, *args)  # consumes the user handle
        t2 = time.perf_counter()
        _native.check(code, st)
        # Logged after it was served: the log holds exactly the requests that
        # produced a ranking, so training never sees one that serving refused.
        request_id = log.append_prepared(req) if log is not None else None
        python_s += (t1 - t0) + (t2 - t1 - go[0] * 1e-9) + (time.perf_counter() - t2)
        timings = stage_timings(go, python_s, queued)
        self._counters.add(timings, n)
        return RankResult(order, scores, request_id, timings)

    async def arank(
        self,
        user: Record,
        items: Sequence[Record],
        candidates: Mapping[str, Any] | None = None,
        top_k: int | None = None,
        **kwargs: Any,
    ) -> RankResult:
        """``rank`` off the event loop, on this ranker's own threads (at most
        ``max_concurrency`` at once). The call releases the GIL, so other
        coroutines run meanwhile. Bad inputs raise here, before the request
        waits for a thread."""
        executor = self._executor
        if executor is None:
            with self._swap:
                if self._executor is None:
                    self._executor = concurrent.futures.ThreadPoolExecutor(
                        max_workers=self._max_concurrency, thread_name_prefix="pyfeat-rank"
                    )
                executor = self._executor
        # The inputs are converted on the loop's thread: Python work holds
        # the GIL wherever it runs, and here its buffers come from the
        # allocator arena the caller's records live in, where an executor
        # thread would keep a glibc arena of its own (a megabyte or two of
        # RSS per thread). The user context is prepared in Go meanwhile.
        t0 = time.perf_counter()
        req = PreparedRequest(user, items, candidates, begin=True, pooled=True)
        t1 = time.perf_counter()
        try:
            cf = executor.submit(functools.partial(self._rank, req, top_k, **kwargs, python_s=t1 - t0, submitted=t1))
        except BaseException:
            req.__exit__(None, None, None)
            raise
        try:
            result = await asyncio.wrap_future(cf)
        except asyncio.CancelledError:
            # The call may be running: its buffers (pooled, reused by the next
            # request) are released when it has finished, not before.
            cf.add_done_callback(lambda _: req.__exit__(None, None, None))
            raise
        except BaseException:
            req.__exit__(None, None, None)
            raise
        req.__exit__(None, None, None)
        return result
