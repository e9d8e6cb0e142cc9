"""ItemCache: decoded item records kept in Go between requests."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _native
from ._inputs import ItemBuffers, Record, item_buffers
from .errors import InputError, InputTypeError

__all__ = ["ItemCache", "CachedItems"]

_STATS = ("len", "bytes", "max_bytes", "hits", "misses", "expired", "inserts", "evictions", "invalidations", "refused")


def _ids_array(ids: Any, what: str = "ids") -> np.ndarray:
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise InputError(f"{what} must be 1-D, got shape {arr.shape}", key=what)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise InputTypeError(f"{what} must hold integers (item ids), got dtype {arr.dtype}", key=what)
    return np.ascontiguousarray(arr, dtype=np.int64)


def _release(kind: str, handle: int) -> None:
    # From a finalizer (maybe at exit, maybe in a forked child): never raise.
    try:
        if _native.is_loaded_here():
            fn = _native.lib().pf_cache_close if kind == "cache" else _native.lib().pf_lookup_close
            fn(handle, _native.new_status())
    except Exception:
        pass


class ItemCache:
    """Item records kept in Go, decoded, between requests.

    Args:
        max_bytes: the most memory the records may hold (their exact bytes,
            decoded fields and title tokens, accounted per record); when it
            is reached, records are evicted (S3-FIFO: records read only
            once go first, records read again stay).
        ttl: seconds a record stays fresh after it was stored; a stale
            record is reported missing, so the service reads it again.
            ``None`` or 0: until evicted or invalidated.

    The cache never reads a store itself. A request looks its candidates
    up, reads the missing ones from wherever the service keeps them, hands
    their bytes over, and ranks::

        with cache.lookup(ids) as items:
            if items.missing.size:
                items.fill(store.mget(keys(items.missing)))
            order, scores = ranker.rank(user, items, candidates)

    Each lookup is a snapshot: a record replaced or invalidated while a
    request runs changes the requests after it, never that one halfway.
    Safe to share between threads; ``close()`` (or the object's end)
    releases the memory.
    """

    def __init__(self, max_bytes: int = 256 << 20, ttl: float | None = 300.0) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)) or max_bytes <= 0:
            raise ValueError(f"max_bytes must be a positive int, got {max_bytes!r}")
        if ttl is not None and (isinstance(ttl, bool) or not ttl >= 0 or ttl != ttl or ttl > 1e9):
            raise ValueError(f"ttl must be None or a number of seconds >= 0, got {ttl!r}")
        self.max_bytes = int(max_bytes)
        self.ttl = float(ttl) if ttl else None
        handle = _native.ffi.new("int64_t*")
        st = _native.new_status()
        _native.check(_native.lib().pf_cache_new(self.max_bytes, int((self.ttl or 0) * 1e9), handle, st), st)
        self._handle = int(handle[0])
        self._closed = False
        self._finalizer = weakref.finalize(self, _release, "cache", self._handle)

    def _h(self) -> int:
        if self._closed:
            raise ValueError("the item cache is closed")
        return self._handle

    def lookup(self, ids: Any) -> CachedItems:
        """A request's candidates, by item id (any 1-D integer sequence, in
        request order): which records are cached and fresh, and which must
        be fetched (``.missing``). Use it as a context manager."""
        arr = _ids_array(ids)
        ffi = _native.ffi
        missing = np.empty(arr.size, dtype=np.int64)
        lookup, n_missing = ffi.new("int64_t*"), ffi.new("int64_t*")
        st = _native.new_status()
        code = _native.lib().pf_cache_lookup(
            self._h(), ffi.from_buffer("int64_t[]", arr), arr.size, lookup, ffi.from_buffer("int64_t[]", missing),
            n_missing, st)
        _native.check(code, st)
        return CachedItems(int(lookup[0]), arr, missing[: int(n_missing[0])].copy())

    def put(self, ids: Any, records: Sequence[Record]) -> None:
        """Store records (replacing any held under the same ids), e.g. to
        warm the cache; ``records[i]`` is the record of ``ids[i]``."""
        self.invalidate(ids)
        with self.lookup(ids) as items:
            items.fill(records)

    def invalidate(self, ids: Any) -> int:
        """Drop the records of ids (those not held are ignored); returns how
        many were held. The next request reads them from the store again."""
        arr = _ids_array(ids)
        dropped = _native.ffi.new("int64_t*")
        st = _native.new_status()
        code = _native.lib().pf_cache_invalidate(self._h(), _native.ffi.from_buffer("int64_t[]", arr), arr.size,
                                                 dropped, st)
        _native.check(code, st)
        return int(dropped[0])

    def clear(self) -> None:
        """Drop every record."""
        st = _native.new_status()
        _native.check(_native.lib().pf_cache_clear(self._h(), st), st)

    def stats(self) -> dict[str, int]:
        """Counters since the cache was made: ``len`` and ``bytes`` held
        now, ``max_bytes``, ``hits`` and ``misses`` (per candidate looked
        up; ``expired`` of the misses were held but stale), ``inserts``,
        ``evictions``, ``invalidations`` and ``refused`` (records larger
        than the whole cache)."""
        out = np.zeros(len(_STATS), dtype=np.int64)
        st = _native.new_status()
        _native.check(_native.lib().pf_cache_stats(self._h(), _native.ffi.from_buffer("int64_t[]", out), st), st)
        return dict(zip(_STATS, (int(x) for x in out)))

    def __len__(self) -> int:
        return self.stats()["len"]

    @property
    def nbytes(self) -> int:
        """Bytes the records hold now (at most ``max_bytes``)."""
        return self.stats()["bytes"]

    def close(self) -> None:
        """Drop the records and release the cache. Requests already holding
        a lookup finish with their records. Idempotent."""
        self._closed = True
        self._finalizer()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> ItemCache:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._closed:
            return "<pyfeat.ItemCache closed>"
        s = self.stats()
        return f"<pyfeat.ItemCache {s['len']} records, {s['bytes']} of {s['max_bytes']} bytes, ttl={self.ttl}>"


class CachedItems:
    """One request's candidates as an :class:`ItemCache` lookup saw them;
    pass it to ``FeatureEngine.compute``, ``Ranker.rank`` or ``arank`` in
    place of the item records.

    Attributes:
        ids: the candidates' item ids, in request order.
        missing: the ids to fetch from the store (absent or stale; each id
            once, in request order); empty when every record was cached.
    """

    def __init__(self, handle: int, ids: np.ndarray, missing_positions: np.ndarray) -> None:
        self._handle = handle
        self._lock = threading.Lock()
        self.ids = ids
        self.missing_positions = missing_positions
        self.missing: np.ndarray = ids[missing_positions]
        self._filled = missing_positions.size == 0
        self._finalizer = weakref.finalize(self, _release, "lookup", handle)

    def __len__(self) -> int:
        return int(self.ids.size)

    @property
    def complete(self) -> bool:
        """Every candidate has its record (nothing was missing, or
        ``fill`` succeeded)."""
        return self._filled

    def fill(self, records: Sequence[Record]) -> None:
        """Hand over the records of ``missing``, in that order (MessagePack
        bytes as the store returned them, or dicts). Each is decoded and
        checked once, here (a bad record raises the same ``InputError`` as
        ``compute``, with the candidate's position), and stored in the
        cache for the next requests."""
        if isinstance(records, (bytes, bytearray, memoryview, str)) or not hasattr(records, "__len__"):
            raise InputTypeError(f"records must be a list of MessagePack bytes or dicts, got {type(records).__name__}")
        if len(records) != self.missing.size:
            raise InputError(f"{len(records)} records for {self.missing.size} missing ids", key="records")
        try:
            bufs = item_buffers(records)
        except InputError as e:
            raise self._at_candidate(e) from None
        st = _native.new_status()
        ffi = _native.ffi
        with self._lock:
            code = _native.lib().pf_lookup_fill(self._h(), ffi.from_buffer("uint8_t[]", bufs.blob),
                                                ffi.from_buffer("int64_t[]", bufs.offsets), bufs.n, st)
            _native.check(code, st)
            self._filled = True

    def _at_candidate(self, e: InputError) -> InputError:
        # item_buffers numbers the records it was given; the caller thinks in
        # candidate positions, as every other error does.
        if e.position is None or not 0 <= e.position < self.missing_positions.size:
            return e
        pos = int(self.missing_positions[e.position])
        return type(e)(f"candidate {pos} (id {int(self.ids[pos])}): {e}", pos, e.key)

    def raw(self) -> ItemBuffers:
        """The exact bytes of every candidate's record (cached or filled),
        back to back, as a logged request records them."""
        ffi = _native.ffi
        needed = ffi.new("int64_t*")
        st = _native.new_status()
        with self._lock:
            h = self._h()
            _native.check(_native.lib().pf_lookup_raw(h, ffi.NULL, 0, ffi.NULL, 0, needed, st), st)
            blob = bytearray(int(needed[0]))
            offsets = np.empty(self.ids.size + 1, dtype=np.int64)
            code = _native.lib().pf_lookup_raw(h, ffi.from_buffer("uint8_t[]", blob), len(blob),
                                               ffi.from_buffer("int64_t[]", offsets), offsets.size, needed, st)
            _native.check(code, st)
        return ItemBuffers(bytes(blob), offsets)

    def _h(self) -> int:
        if not self._finalizer.alive:
            raise ValueError("the lookup is closed (use it inside its `with` block)")
        return self._handle

    def handle(self) -> int:
        """The lookup's handle for a compute or rank call (it must be complete)."""
        if not self._filled:
            raise InputError(
                f"{self.missing.size} of the request's {self.ids.size} candidates are missing from the cache: "
                "fetch them and call fill() first", key="items")
        return self._h()

    def close(self) -> None:
        self._finalizer()

    def __enter__(self) -> CachedItems:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<pyfeat.CachedItems {self.ids.size} candidates, {self.missing.size} missing>"
