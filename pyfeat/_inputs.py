"""A request's Python inputs as the buffers the C ABI takes: the
conversions, the validators of arguments, and PreparedRequest, which holds a
request converted once (for the call, and for the request log).

Shapes, dtypes and lengths are validated here, before the call, so that Go
only ever sees well-formed buffers; the records' contents are validated by Go.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import msgpack
import numpy as np

from . import _native
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
    blob: bytes
    offsets: np.ndarray  # int64, n + 1 entries

    @property
    def n(self) -> int:
        return len(self.offsets) - 1


def item_buffers(items: Any) -> ItemBuffers:
    """Concatenate the item records and compute their offsets."""
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
        blob = b"".join(items)
        np.cumsum(np.fromiter(map(len, items), dtype=np.int64, count=n), out=offsets[1:])
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


class PreparedRequest:
    """A request's inputs converted to the buffers the C ABI takes.

    With ``begin=True`` the user context is handed to Go first, which
    prepares it on another core while the item records are joined here (a
    quarter of a millisecond for 3000 records); a call made without it
    starts the preparation itself. Use it as a context manager when
    ``begin=True``: leaving it frees a context that no call consumed.
    """

    __slots__ = ("user", "items", "candidates", "_user_handle")

    def __init__(self, user: Any, items: Any, candidates: Any, *, begin: bool = False) -> None:
        self.user: bytes = user_bytes(user)
        self._user_handle = _native.begin_user(self.user) if begin else 0
        try:
            self.items: ItemBuffers = item_buffers(items)
            self.candidates: CandidateArrays = candidate_arrays(candidates, self.items.n)
        except BaseException:
            self.discard_user()
            raise

    @classmethod
    def from_buffers(cls, user: bytes, items: ItemBuffers, candidates: CandidateArrays) -> PreparedRequest:
        """A request from buffers already converted (a logged request)."""
        req = cls.__new__(cls)
        req.user, req.items, req.candidates, req._user_handle = user, items, candidates, 0
        return req

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

    def c_args(self, ffi: Any) -> tuple[Any, ...]:
        """Arguments from `items` to `source_rank`, in pf_* order. The cdata
        objects keep no reference to the arrays: keep self alive meanwhile."""
        c = self.candidates
        return (
            ffi.from_buffer("uint8_t[]", self.items.blob),
            ffi.from_buffer("int64_t[]", self.items.offsets),
            self.items.n,
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
