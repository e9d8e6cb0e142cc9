"""Conversion of the caller's Python inputs into the buffers the C ABI takes.

Shapes, dtypes and lengths are validated here, before the call, so that Go
only ever sees well-formed buffers; the records' contents are validated by Go.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import msgpack
import numpy as np

from .errors import InputError, InputTypeError

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
            arr = np.ascontiguousarray(arr, dtype=np.float64)
        else:
            if not np.issubdtype(arr.dtype, np.integer):
                raise InputTypeError(f"{key} must hold integers, got dtype {arr.dtype}", key=key)
            arr = np.ascontiguousarray(arr, dtype=np.int64)
        out[name] = arr
    return CandidateArrays(out["source"], out["source_score"], out["source_rank"])
