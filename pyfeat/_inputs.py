"""A request's Python inputs as the buffers the C ABI takes: the
conversions, the validators of arguments, and PreparedRequest, which holds a
request converted once (for the call, and for the request log).

Shapes, dtypes and lengths are validated here, before the call, so that Go
only ever sees well-formed buffers; the records' contents are validated by Go.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

import msgpack
import numpy as np

from . import _native
from .errors import InputError, InputTypeError

if TYPE_CHECKING:
    from ._cache import CachedItems

Record = Union[bytes, bytearray, memoryview, Mapping[str, Any]]

CANDIDATE_KEYS = ("source", "source_score", "source_rank")


def _msgpack_default(obj: Any) -> Any:
    # Dicts built with numpy values (common in notebooks) pack as plain
    # MessagePack numbers, exactly like their Python equivalents.
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, int):  # msgpack hands over the ints it cannot pack
        raise OverflowError(f"integer {obj} is outside MessagePack's 64-bit range")
    raise TypeError(f"cannot encode {type(obj).__name__} as MessagePack")


def pack(record: Mapping[str, Any]) -> bytes:
    """Encode a record given as a dict exactly as the item store would."""
    return msgpack.packb(record, use_bin_type=True, default=_msgpack_default)


def _record_bytes(record: Any, position: int | None, what: str) -> bytes:
    if isinstance(record, bytes):
        return record
    if isinstance(record, (bytearray, memoryview)):
        return bytes(record)
    where = "user context" if position is None else f"item {position}"
    if isinstance(record, Mapping):
        try:
            return pack(record)
        except (TypeError, ValueError, OverflowError) as e:
            raise InputTypeError(f"{where}: cannot encode the dict as MessagePack: {e}", position) from e
    raise InputTypeError(
        f"{where}: expected {what} as MessagePack bytes or a dict, got {type(record).__name__}", position
    )


def user_bytes(user: Any) -> bytes:
    return _record_bytes(user, None, "the user context")


@dataclass
class ItemBuffers:
    blob: bytes | memoryview
    offsets: np.ndarray  # int64, n + 1 entries
    # The pooled buffer blob is a view of, when it is one (see JoinPool).
    pooled: io.BytesIO | None = None

    @property
    def n(self) -> int:
        return len(self.offsets) - 1

    def release(self) -> None:
        """Give a pooled blob's buffer back for reuse; the blob is empty then."""
        buf, self.pooled = self.pooled, None
        if buf is not None:
            _join_pool.put(buf, self.blob)
            self.blob = b""


class JoinPool:
    """Buffers the item records of a call are joined into, reused from call
    to call.

    A fresh ``b"".join`` of 3000 records (most of a megabyte) is served by
    glibc from freshly mapped pages in a plain process, one page fault per
    4 KiB on every call. A pooled ``BytesIO`` keeps its pages: records are
    written over the previous call's (``writelines`` copies in C, as fast
    as ``join``). Safe for many threads: a buffer belongs to one call from
    ``get`` to ``put`` (the list operations are atomic under the GIL and
    guarded by a lock besides), and ``put`` reuses it only if no view of
    it is still exported (``release`` of the call's view succeeds), so a
    buffer still read by anything is dropped instead of being overwritten.
    """

    MAX_KEPT_BYTES = 16 << 20  # a buffer grown larger than this is not kept

    def __init__(self, keep: int) -> None:
        self._free: list[io.BytesIO] = []
        self._keep = keep
        self._lock = threading.Lock()

    def get(self) -> io.BytesIO:
        with self._lock:
            if self._free:
                return self._free.pop()
        return io.BytesIO()

    def put(self, buf: io.BytesIO, view: Any) -> None:
        try:
            if isinstance(view, memoryview):
                view.release()  # raises BufferError while someone still reads it
            buf.seek(0)
            if buf.getbuffer().nbytes > self.MAX_KEPT_BYTES:
                return
        except (BufferError, ValueError):
            return
        with self._lock:
            if len(self._free) < self._keep:
                self._free.append(buf)


_join_pool = JoinPool(keep=2 * (os.cpu_count() or 1) + 2)


def item_buffers(items: Any, pooled: bool = False) -> ItemBuffers:
    """Concatenate the item records and compute their offsets. With
    ``pooled``, the fast path joins them into a reused buffer; the caller
    then calls ``release()`` once Go has read them."""
    if isinstance(items, (bytes, bytearray, memoryview, str, Mapping)):
        raise InputTypeError(f"items must be a list of MessagePack bytes or dicts, got {type(items).__name__}")
    if not isinstance(items, Sequence):
        try:
            items = list(items)
        except TypeError:
            raise InputTypeError(
                f"items must be a list of MessagePack bytes or dicts, got {type(items).__name__}"
            ) from None
    n = len(items)
    offsets = np.zeros(n + 1, dtype=np.int64)
    if n == 0:
        return ItemBuffers(b"", offsets)
    # Fast path: all records are bytes-like, as they come from the store.
    # join() rejects anything without the buffer protocol; the length check
    # catches buffers whose len() is not their byte size.
    try:
        np.cumsum(np.fromiter(map(len, items), dtype=np.int64, count=n), out=offsets[1:])
        if pooled:
            buf = _join_pool.get()
            try:
                buf.writelines(items)
                size = buf.tell()
                if offsets[-1] == size:
                    return ItemBuffers(buf.getbuffer()[:size], offsets, buf)
            except TypeError:
                pass
            _join_pool.put(buf, None)
        else:
            blob = b"".join(items)
            if offsets[-1] == len(blob):
                return ItemBuffers(blob, offsets)
    except TypeError:
        pass
    records = [_record_bytes(r, i, "an item record") for i, r in enumerate(items)]
    blob = b"".join(records)
    np.cumsum(np.fromiter(map(len, records), dtype=np.int64, count=n), out=offsets[1:])
    return ItemBuffers(blob, offsets)


@dataclass
class CandidateArrays:
    source: np.ndarray | None
    source_score: np.ndarray | None
    source_rank: np.ndarray | None


def candidate_arrays(candidates: Any, n: int) -> CandidateArrays:
    """Validate the candidate metadata and convert it to contiguous arrays."""
    if candidates is None:
        return CandidateArrays(None, None, None)
    if not isinstance(candidates, Mapping):
        raise InputTypeError(
            f"candidates must be a dict of 1-D arrays {CANDIDATE_KEYS}, got {type(candidates).__name__}",
            key="candidates",
        )
    unknown = sorted(set(candidates) - set(CANDIDATE_KEYS))
    if unknown:
        raise InputError(
            f"candidates has unknown keys {unknown}; expected some of {list(CANDIDATE_KEYS)}",
            key=f"candidates.{unknown[0]}",
        )
    out: dict[str, np.ndarray | None] = {}
    for name in CANDIDATE_KEYS:
        value = candidates.get(name)
        if value is None:
            out[name] = None
            continue
        key = f"candidates.{name}"
        arr = np.asarray(value)
        if arr.ndim != 1:
            raise InputError(f"{key} must be 1-D, got shape {arr.shape}", key=key)
        if arr.shape[0] != n:
            raise InputError(f"{key} has {arr.shape[0]} entries for {n} items", key=key)
        if name == "source_score":
            if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
                raise InputTypeError(f"{key} must hold numbers, got dtype {arr.dtype}", key=key)
            # Always a copy: Go validates the values, then reads them again
            # per item; the caller's array, changed by another thread
            # meanwhile, could slip a value past the validation.
            arr = np.array(arr, dtype=np.float64, order="C", copy=True)
        else:
            if not np.issubdtype(arr.dtype, np.integer):
                raise InputTypeError(f"{key} must hold integers, got dtype {arr.dtype}", key=key)
            arr = np.array(arr, dtype=np.int64, order="C", copy=True)
        out[name] = arr
    return CandidateArrays(out["source"], out["source_score"], out["source_rank"])


def threads_arg(threads: int | None) -> int:
    if threads is None:
        return 0
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)):
        raise TypeError(f"threads must be an int or None, got {type(threads).__name__}")
    if threads < 1:
        raise ValueError(f"threads must be >= 1 (or None for all cores), got {threads}")
    if threads > _MAX_THREADS:
        # The C ABI takes an int32; Go uses the cores it has anyway.
        raise ValueError(f"threads must be at most {_MAX_THREADS} (or None for all cores), got {threads}")
    return int(threads)


_MAX_THREADS = 2**31 - 1


def top_k_arg(top_k: Any, n: int) -> int:
    """The number of results to return for n items (all for None)."""
    if top_k is None:
        return n
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)):
        raise TypeError(f"top_k must be an int or None, got {type(top_k).__name__} {top_k!r}")
    if top_k < 0:
        raise ValueError(f"top_k must be a non-negative int or None, got {top_k!r}")
    return min(int(top_k), n)


def _ptr(ffi: Any, ctype: str, arr: np.ndarray | None) -> Any:
    return ffi.NULL if arr is None else ffi.from_buffer(ctype, arr)


_NO_ITEMS = ItemBuffers(b"", np.zeros(1, dtype=np.int64))


class PreparedRequest:
    """A request's inputs converted to the buffers the C ABI takes.

    With ``begin=True`` the user context is handed to Go first, which
    prepares it on another core while the item records are joined here (a
    quarter of a millisecond for 3000 records); a call made without it
    starts the preparation itself. Use it as a context manager when
    ``begin=True``: leaving it frees a context that no call consumed.
    """

    __slots__ = ("user", "items", "lookup", "candidates", "_user_handle", "_blob_c")

    def __init__(self, user: Any, items: Any, candidates: Any, *, begin: bool = False, pooled: bool = False) -> None:
        self.user: bytes = user_bytes(user)
        self._blob_c: Any = None
        self._user_handle = _native.begin_user(self.user) if begin else 0
        try:
            # An item cache's lookup: the records are in Go already.
            from ._cache import CachedItems  # (imports this module)

            self.lookup: CachedItems | None = items if isinstance(items, CachedItems) else None
            # pooled: the records are joined into a reused buffer (no fresh
            # pages per call), which leaving the context gives back.
            self.items: ItemBuffers = _NO_ITEMS if self.lookup is not None else item_buffers(items, pooled=pooled)
            self.candidates: CandidateArrays = candidate_arrays(candidates, self.n)
        except BaseException:
            self.discard_user()
            if hasattr(self, "items"):
                self.items.release()
            raise

    @classmethod
    def from_buffers(cls, user: bytes, items: ItemBuffers, candidates: CandidateArrays) -> PreparedRequest:
        """A request from buffers already converted (a logged request)."""
        req = cls.__new__(cls)
        req.user, req.items, req.candidates, req._user_handle, req.lookup = user, items, candidates, 0, None
        req._blob_c = None
        return req

    @property
    def n(self) -> int:
        return len(self.lookup) if self.lookup is not None else self.items.n

    def raw_items(self) -> ItemBuffers:
        """The records' exact bytes (a cache lookup's are copied out of Go)."""
        if self.lookup is not None and self.items is _NO_ITEMS:
            self.items = self.lookup.raw()
        return self.items

    def take_user_handle(self) -> int:
        """The user context's handle for the call about to be made, which
        consumes it (started now if it was not begun)."""
        handle = self._user_handle or _native.begin_user(self.user)
        self._user_handle = 0
        return handle

    def discard_user(self) -> None:
        if self._user_handle:
            handle, self._user_handle = self._user_handle, 0
            _native.discard_user(handle)

    def __enter__(self) -> PreparedRequest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard_user()
        if self._blob_c is not None:
            # Release cffi's hold on a pooled buffer now, not when the call's
            # frame goes: an exception's traceback keeps the frame alive, and
            # a memoryview still exported when the garbage collector breaks
            # that cycle would leave cffi a dangling buffer.
            _native.ffi.release(self._blob_c)
            self._blob_c = None
        self.items.release()

    def c_args(self, ffi: Any) -> tuple[Any, ...]:
        """Arguments from `items` to `source_rank`, in pf_* order. The cdata
        objects keep no reference to the arrays: keep self alive meanwhile."""
        c = self.candidates
        if self.lookup is not None:
            items: tuple[Any, ...] = (ffi.NULL, ffi.NULL, len(self.lookup), self.lookup.handle())
        else:
            blob = ffi.from_buffer("uint8_t[]", self.items.blob)
            if self.items.pooled is not None:
                self._blob_c = blob
            items = (blob, ffi.from_buffer("int64_t[]", self.items.offsets), self.items.n, 0)
        return (
            *items,
            _ptr(ffi, "int64_t[]", c.source),
            _ptr(ffi, "double[]", c.source_score),
            _ptr(ffi, "int64_t[]", c.source_rank),
        )


def check_out(out: Any, shape: tuple[int, ...], dtype: Any) -> None:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array, got {type(out).__name__}")
    if out.dtype != dtype or out.shape != shape or not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(
            f"out must be a writeable C-contiguous {np.dtype(dtype).name} array of shape {shape}, "
            f"got {out.dtype} {out.shape}"
        )
