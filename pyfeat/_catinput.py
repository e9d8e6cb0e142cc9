"""Input tables of models with categorical features.

A CatBoost model with categorical features takes rows of its training
table: float columns and categorical columns in the order it was trained
with. Categorical values are ints or strings, as catboost's own ``predict``
takes them; they cross to Go as CatBoost's 32-bit hashes (an int is hashed
as its decimal string, as catboost does), computed in Go.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _native
from .errors import InputError, InputTypeError


def _table_columns(X: Any, n_cols: int) -> tuple[int, list[Any]]:
    """The columns of a 2-D table (numpy array, pandas DataFrame, or a
    sequence of rows) as 1-D numpy arrays, and the row count. A pandas
    column of Arrow strings (pandas' default string dtype) stays a pandas
    Series: its hashes are computed from the Arrow buffers (_arrow_hashes)."""
    if hasattr(X, "iloc") and hasattr(X, "columns"):  # pandas DataFrame, without importing pandas
        if len(X.columns) != n_cols:
            raise ValueError(f"the model takes {n_cols} columns per row, X has {len(X.columns)}")
        cols: list[Any] = []
        for j in range(n_cols):
            col = X.iloc[:, j]
            cols.append(col if hasattr(col.array, "__arrow_array__") else np.asarray(col.to_numpy()))
        return len(X), cols
    if isinstance(X, np.ndarray):
        arr = X
    else:
        # dtype=object keeps ints and strings as they are: without it numpy
        # would turn a row like [0.5, "a"] into strings.
        try:
            arr = np.array(X, dtype=object)
        except ValueError as e:
            raise ValueError(f"X is not a table of equal-length rows: {e}") from e
    if arr.ndim != 2:
        raise ValueError(f"X must be 2-D (n, {n_cols}), got shape {arr.shape}; use [row] for one row")
    if arr.shape[1] != n_cols:
        raise ValueError(f"the model takes {n_cols} columns per row, X has {arr.shape[1]}")
    return arr.shape[0], [arr[:, j] for j in range(n_cols)]


def _float_column(col: np.ndarray, j: int) -> np.ndarray:
    if col.dtype.kind in "fiub":
        return col.astype(np.float32)
    out = np.empty(len(col), dtype=np.float32)
    for i, v in enumerate(col):
        if v is None:
            out[i] = np.nan
            continue
        if isinstance(v, (str, bytes)) or not isinstance(v, (int, float, np.number)):
            raise InputTypeError(
                f"row {i}, column {j}: float feature value {v!r} of type {type(v).__name__}; pass a number (NaN for missing)",
                i, f"column {j}",
            )
        out[i] = v
    return out


def _hash_ints(values: np.ndarray) -> np.ndarray:
    v = np.ascontiguousarray(values, dtype=np.int64)
    out = np.empty(len(v), dtype=np.uint32)
    if len(v):
        ffi = _native.ffi
        st = _native.new_status()
        _native.check(
            _native.lib().pf_cat_hash_ints(ffi.from_buffer("int64_t[]", v), len(v), ffi.from_buffer("uint32_t[]", out), st),
            st,
        )
    return out


def _hash_bytes(values: Sequence[bytes]) -> np.ndarray:
    n = len(values)
    if n == 0:
        return np.empty(0, dtype=np.uint32)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, values), dtype=np.int64, count=n), out=offsets[1:])
    return _hash_blob(b"".join(values), offsets, n)


def _hash_blob(blob: Any, offsets: np.ndarray, n: int) -> np.ndarray:
    """Hashes of n strings back to back in blob, string i at
    blob[offsets[i]:offsets[i+1]]."""
    out = np.empty(n, dtype=np.uint32)
    ffi = _native.ffi
    st = _native.new_status()
    _native.check(
        _native.lib().pf_cat_hash_strings(
            ffi.from_buffer("uint8_t[]", blob or b"\0"), ffi.from_buffer("int64_t[]", offsets), n,
            ffi.from_buffer("uint32_t[]", out), st,
        ),
        st,
    )
    return out


def _arrow_hashes(col: Any) -> np.ndarray | None:
    """CatBoost's hashes of a column of Arrow strings without nulls, from
    the Arrow buffers (no Python object per value); None for any other
    column (then it is converted to numpy)."""
    try:
        chunked = col.array.__arrow_array__()
        chunks = list(chunked.chunks)
    except Exception:
        return None
    if not all(str(c.type) in ("string", "large_string", "utf8", "large_utf8") and c.null_count == 0 for c in chunks):
        return None
    parts = []
    for c in chunks:
        n = len(c)
        if n == 0:
            continue
        _, offs_buf, data_buf = c.buffers()
        width = np.int64 if str(c.type).startswith("large") else np.int32
        offsets = np.frombuffer(offs_buf, dtype=width)[c.offset:c.offset + n + 1].astype(np.int64)
        start, end = int(offsets[0]), int(offsets[-1])
        offsets -= start
        data = memoryview(data_buf)[start:end] if data_buf is not None else b""
        parts.append(_hash_blob(data, offsets, n))
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.uint32)


def _bad_cat(i: int, j: int, v: Any) -> InputError:
    what = "a float" if isinstance(v, (float, np.floating)) else f"{v!r} of type {type(v).__name__}"
    return InputTypeError(
        f"row {i}, column {j}: categorical value {what}; categorical values must be ints or strings "
        f"(as catboost takes them: convert missing values to a string such as \"nan\")",
        i, f"column {j}",
    )


def hash_column(col: Any, j: int) -> np.ndarray:
    """CatBoost's hashes of one categorical column (ints or strings)."""
    if not isinstance(col, np.ndarray):  # a pandas Series of Arrow strings
        hashes = _arrow_hashes(col)
        if hashes is not None:
            return hashes
        col = np.asarray(col.to_numpy())
    kind = col.dtype.kind
    if kind in "iu":
        if kind == "u" and len(col) and int(col.max()) > np.iinfo(np.int64).max:
            i = int(np.argmax(col > np.iinfo(np.int64).max))
            raise InputError(f"row {i}, column {j}: categorical value {col[i]} does not fit int64", i, f"column {j}")
        return _hash_ints(col)
    if kind == "U":
        return _hash_bytes([s.encode("utf-8") for s in col.tolist()])
    if kind == "S":
        return _hash_bytes(col.tolist())
    if kind != "O":
        i = 0
        raise _bad_cat(i, j, col[i] if len(col) else None)
    values = col.tolist()
    if all(type(v) is str for v in values):
        # A column of strings repeats few values: each distinct one is
        # encoded and hashed once.
        distinct = list(dict.fromkeys(values))
        by_value = dict(zip(distinct, _hash_bytes([v.encode("utf-8") for v in distinct]).tolist()))
        return np.fromiter(map(by_value.__getitem__, values), dtype=np.uint32, count=len(values))
    if all(type(v) is int for v in values):
        if values and (max(values) > np.iinfo(np.int64).max or min(values) < np.iinfo(np.int64).min):
            i = next(i for i, v in enumerate(values) if not np.iinfo(np.int64).min <= v <= np.iinfo(np.int64).max)
            raise InputError(f"row {i}, column {j}: categorical value {values[i]} does not fit int64", i, f"column {j}")
        return _hash_ints(np.array(values, dtype=np.int64))
    encoded: list[bytes] = []
    for i, v in enumerate(values):
        if isinstance(v, str):
            encoded.append(v.encode("utf-8"))
        elif isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
            encoded.append(str(int(v)).encode())
        elif isinstance(v, bytes):
            encoded.append(v)
        else:
            raise _bad_cat(i, j, v)
    return _hash_bytes(encoded)


def split_table(X: Any, float_cols: Sequence[int], cat_cols: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The float32 matrix of the float columns and the uint32 matrix of the
    hashed categorical columns of table X."""
    n, cols = _table_columns(X, len(float_cols) + len(cat_cols))
    floats = np.empty((n, len(float_cols)), dtype=np.float32)
    for k, j in enumerate(float_cols):
        col = cols[j]
        floats[:, k] = _float_column(col if isinstance(col, np.ndarray) else np.asarray(col.to_numpy()), j)
    hashes = np.empty((n, len(cat_cols)), dtype=np.uint32)
    for k, j in enumerate(cat_cols):
        hashes[:, k] = hash_column(cols[j], j)
    return floats, hashes
