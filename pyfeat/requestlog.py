"""Request logs: the raw inputs of served requests, for building training data.

A service appends every request it serves (``Ranker.rank(..., log=log)`` or
``log.append(user, items, candidates)``); ``pyfeat dataset`` later replays
the log through the same library, so the features of a logged request are
bit-identical to the ones it was served with.

This module is pure Python: writing a log never loads the Go library.

File format (version 1, little-endian)
--------------------------------------
A 16-byte file header::

    magic  b"PYFEATRQ"   8 bytes
    version  u16 = 1
    header_size u16 = 16
    flags  u32 = 0

then records, back to back. Each record is a 32-byte header and a payload::

    magic  b"PFRQ"       4 bytes
    payload_len  u32     bytes of payload that follow the header
    payload_crc  u32     zlib.crc32 of the payload
    request_id   16 bytes (a UUIDv7, see below)
    header_crc   u32     zlib.crc32 of the 28 header bytes before it

and the payload (8-byte aligned sections, zero padding)::

    user_len u32, n_items u32, blob_len u64, candidate flags u8, 7 zero bytes
    user context          user_len bytes (MessagePack, as the user store returned it)
    padding to 8
    item offsets          (n_items + 1) int64: item i is blob[offsets[i]:offsets[i+1]]
    item blob             blob_len bytes (the item records back to back, as the item store returned them)
    padding to 8
    source                n_items int64      if flags & 1
    source_score          n_items float64    if flags & 2
    source_rank           n_items int64      if flags & 4

Request ids
-----------
Each appended request gets a UUIDv7 (RFC 9562), as its canonical 36-character
string: 48 bits of Unix time in milliseconds (the wall clock when it was
logged), a 12-bit counter that keeps the ids of one writer strictly
increasing within a millisecond, and 62 random bits that make ids unique
across writers, processes and machines. The string order is the time order,
which ``pyfeat train`` uses for its train/validation split. The service keeps
the id (``RankResult.request_id``) to attribute clicks and contacts.

Damage
------
A crash can leave a torn last record (a short write) or a damaged tail (a file
extended with zeros or garbage): the reader stops at the last intact record
and warns (:class:`RequestLogWarning`) with the file, the byte offset and the
number of bytes skipped. Damage *followed by intact records* cannot come from
a crash: it raises :class:`LogFormatError` naming the file and the byte offset,
unless the reader is told ``on_corrupt="skip"``, which skips the damaged bytes
to the next intact record, warns and counts them.
"""

from __future__ import annotations

import errno
import os
import struct
import threading
import time
import uuid
import warnings
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ._inputs import CandidateArrays, ItemBuffers, PreparedRequest, Record
from .errors import PyfeatError

__all__ = [
    "RequestLog",
    "LoggedRequest",
    "RecordRef",
    "iter_requests",
    "scan_log",
    "read_record",
    "LogFormatError",
    "RequestLogWarning",
    "ReadStats",
    "request_id_time",
    "FILE_MAGIC",
    "FORMAT_VERSION",
]

FILE_MAGIC = b"PYFEATRQ"
FORMAT_VERSION = 1
_FILE_HEADER = struct.Struct("<8sHHI")
FILE_HEADER_SIZE = _FILE_HEADER.size  # 16

RECORD_MAGIC = b"PFRQ"
_REC_HEADER = struct.Struct("<4sII16sI")
REC_HEADER_SIZE = _REC_HEADER.size  # 32
_REC_HEADER_CRC_SPAN = REC_HEADER_SIZE - 4

_PAYLOAD_HEAD = struct.Struct("<IIQB7x")
_MAX_PAYLOAD = 0xFFFFFFFF

_F_SOURCE, _F_SCORE, _F_RANK = 1, 2, 4
_ZERO_PAD = bytes(8)


class LogFormatError(PyfeatError, ValueError):
    """A file that is not a request log, or a log damaged before its end.

    Attributes:
        path: the file.
        offset: byte offset of the damage in the file (``None`` when the
            whole file is concerned).
    """

    def __init__(self, message: str, path: str | os.PathLike[str] | None = None, offset: int | None = None) -> None:
        super().__init__(message)
        self.path = None if path is None else str(path)
        self.offset = offset


class RequestLogWarning(UserWarning):
    """A torn or damaged log tail was skipped (what a crash leaves), or
    damaged records were skipped on request."""


def _pad8(n: int) -> int:
    return -n % 8


# ----------------------------------------------------------------- request ids


class _IdClock:
    """UUIDv7 generator: strictly increasing for one writer (not thread-safe;
    the log calls it under its lock)."""

    def __init__(self) -> None:
        self._ms = 0
        self._seq = 0

    def next(self) -> bytes:
        ms = time.time_ns() // 1_000_000
        if ms > self._ms:
            self._ms, self._seq = ms, 0
        else:
            # Same millisecond, or the wall clock went back: keep increasing.
            self._seq += 1
            if self._seq > 0xFFF:
                self._ms, self._seq = self._ms + 1, 0
        rand = int.from_bytes(os.urandom(8), "little") & ((1 << 62) - 1)
        value = (self._ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | self._seq << 64 | 0b10 << 62 | rand
        return value.to_bytes(16, "big")


def _id_str(raw: bytes) -> str:
    return str(uuid.UUID(bytes=raw))


def request_id_time(request_id: str) -> float:
    """Unix time (seconds, ms resolution) at which a request was logged."""
    return (uuid.UUID(request_id).int >> 80) / 1000.0


# ---------------------------------------------------------------------- writer


def _encode_payload(req: PreparedRequest) -> list[Any]:
    """The payload as a list of buffers (no copy of the blobs)."""
    user = req.user
    items = req.raw_items()
    offsets = items.offsets
    n = items.n
    if not isinstance(offsets, np.ndarray) or offsets.dtype != np.int64 or offsets.ndim != 1:
        raise TypeError("items.offsets must be a 1-D int64 numpy array")
    blob = items.blob
    blob_len = memoryview(blob).nbytes
    c = req.candidates
    flags = 0
    arrays = []
    for bit, arr, dtype in ((_F_SOURCE, c.source, np.int64), (_F_SCORE, c.source_score, np.float64),
                            (_F_RANK, c.source_rank, np.int64)):
        if arr is not None:
            flags |= bit
            arrays.append(np.ascontiguousarray(arr, dtype=dtype))
    parts: list[Any] = [_PAYLOAD_HEAD.pack(len(user), n, blob_len, flags), user, _ZERO_PAD[: _pad8(len(user))],
                        np.ascontiguousarray(offsets), blob, _ZERO_PAD[: _pad8(blob_len)]]
    parts.extend(arrays)
    return parts


class RequestLog:
    """Append-only log of served requests' raw inputs (see the module
    docstring for the format).

    Args:
        path: the log file. One writer per file: use one file per process
            (an exclusive advisory lock refuses a second writer).
        mode: ``"a"`` creates the file or appends to it (a torn tail left by a
            crash is cut off first, with a warning), ``"w"`` truncates it,
            ``"x"`` requires a new file.
        fsync: ``True`` syncs to disk after every record (durable, slow);
            by default records reach the OS at once (they survive a crash of
            the process) and the disk at ``close()``.
        on_corrupt: what ``"a"`` does with a file damaged *before* its last
            intact record (which no crash leaves): ``"error"`` (default)
            raises :class:`LogFormatError`; ``"skip"`` appends after the
            last intact record with a warning, leaving the damage where it
            is (readers then need ``on_corrupt="skip"``, ``pyfeat dataset
            --skip-corrupt``). A service that must start logging whatever
            the file holds passes ``"skip"``, or logs to a new file.

    Thread-safe: many serving threads may append at once; each record is
    written whole, by one ``writev`` under a lock (continued if the OS
    writes less; cut back if writing fails, and the error is raised). A
    context manager: leaving the ``with`` block closes it.
    """

    def __init__(self, path: str | os.PathLike[str], mode: str = "a", *, fsync: bool = False,
                 on_corrupt: str = "error") -> None:
        if mode not in ("a", "w", "x"):
            raise ValueError(f"mode must be 'a', 'w' or 'x', got {mode!r}")
        if on_corrupt not in ("error", "skip"):
            raise ValueError(f"on_corrupt must be 'error' or 'skip', got {on_corrupt!r}")
        self.path = Path(path)
        self._fsync = bool(fsync)
        self._lock = threading.Lock()
        self._clock = _IdClock()
        self.count = 0  # records appended by this writer
        flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        if mode == "x":
            flags |= os.O_EXCL
        fd = os.open(self.path, flags, 0o644)
        try:
            _lock_exclusive(fd, self.path)
            if mode == "w":
                os.ftruncate(fd, 0)
            end = os.fstat(fd).st_size
            if end > 0:
                end = _recover_end(self.path, on_corrupt)
                os.ftruncate(fd, end)
            if end == 0:
                _write_all(fd, [_FILE_HEADER.pack(FILE_MAGIC, FORMAT_VERSION, FILE_HEADER_SIZE, 0)])
                end = FILE_HEADER_SIZE
            os.lseek(fd, end, os.SEEK_SET)
        except BaseException:
            os.close(fd)
            raise
        self._fd: int | None = fd
        self._end = end

    def append(self, user: Record, items: Sequence[Record], candidates: Mapping[str, Any] | None = None) -> str:
        """Log one request's inputs; returns its request id.

        Args:
            user, items, candidates: as for ``FeatureEngine.compute``
                (MessagePack bytes as the stores returned them, or dicts,
                which are packed).
        """
        return self.append_prepared(PreparedRequest(user, items, candidates))

    def append_prepared(self, req: PreparedRequest) -> str:
        """Log a request already converted to buffers (what ``Ranker.rank``
        does): the user bytes, the item blob and offsets and the candidate
        arrays are written as they are. Returns the request id."""
        parts = _encode_payload(req)
        size = sum(memoryview(p).nbytes for p in parts)
        if size > _MAX_PAYLOAD:
            raise ValueError(f"request too large to log: {size} bytes (at most {_MAX_PAYLOAD})")
        crc = 0
        for p in parts:
            crc = zlib.crc32(p, crc)  # releases the GIL on large buffers
        with self._lock:
            if self._fd is None:
                raise ValueError(f"request log {self.path} is closed")
            raw_id = self._clock.next()
            head = _REC_HEADER.pack(RECORD_MAGIC, size, crc, raw_id, 0)
            head = head[:_REC_HEADER_CRC_SPAN] + struct.pack("<I", zlib.crc32(head[:_REC_HEADER_CRC_SPAN]))
            try:
                _write_all(self._fd, [head, *parts])
            except BaseException:
                # Never leave half a record before the next one: cut back to
                # the last whole record (best effort; a reader skips a torn
                # tail anyway).
                try:
                    os.ftruncate(self._fd, self._end)
                    os.lseek(self._fd, self._end, os.SEEK_SET)
                except OSError:
                    pass
                raise
            self._end += REC_HEADER_SIZE + size
            self.count += 1
            if self._fsync:
                os.fsync(self._fd)
        return _id_str(raw_id)

    def sync(self) -> None:
        """Flush the records written so far to disk (fsync)."""
        with self._lock:
            if self._fd is not None:
                os.fsync(self._fd)

    def close(self) -> None:
        """Sync and close the file. Idempotent; appending afterwards raises."""
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    @property
    def closed(self) -> bool:
        return self._fd is None

    def __enter__(self) -> "RequestLog":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{self.count} appended"
        return f"<pyfeat.RequestLog {str(self.path)!r} {state}>"


def _lock_exclusive(fd: int, path: Path) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise LogFormatError(
                f"{path}: another writer has this request log open; use one log file per process", path
            ) from None
        raise


def _write_all(fd: int, parts: list[Any]) -> None:
    views = [memoryview(p).cast("B") for p in parts if memoryview(p).nbytes]
    while views:
        n = os.writev(fd, views[:1024])
        # A short write (a signal, a full disk) continues where it stopped.
        while n and views:
            if n >= views[0].nbytes:
                n -= views[0].nbytes
                views.pop(0)
            else:
                views[0] = views[0][n:]
                n = 0


def _recover_end(path: Path, on_corrupt: str = "error") -> int:
    """End of the last intact record of an existing log (0 for an empty or
    torn-header file). Damage before the end raises LogFormatError, or with
    on_corrupt="skip" is skipped with a warning."""
    end = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            refs = scan_log(path, f=f, on_corrupt=on_corrupt)
            last = None
            for ref in refs:
                last = ref
                end = ref.end
            if last is None:
                end = _header_end(f, size)
            elif last.is_last:
                payload = _pread(f, last.offset + REC_HEADER_SIZE, last.length)
                if zlib.crc32(payload) != last.crc:
                    end = last.offset
    skipped = [str(w.message) for w in caught if "corrupt bytes" in str(w.message)]
    for message in skipped:
        warnings.warn(f"{message}; appending after the last intact record", RequestLogWarning, stacklevel=3)
    caught = [w for w in caught if "corrupt bytes" not in str(w.message)]
    if end < size:
        what = "; ".join(str(w.message) for w in caught) or "a damaged last record"
        warnings.warn(
            f"{path}: cutting {size - end} bytes of torn tail at byte offset {end} before appending ({what})",
            RequestLogWarning,
            stacklevel=3,
        )
    return end


def _header_end(f: BinaryIO, size: int) -> int:
    # A file with an intact header and no record ends after the header; a
    # torn header is rewritten from scratch.
    return FILE_HEADER_SIZE if size >= FILE_HEADER_SIZE and _read_file_header(f, size) else 0


# ---------------------------------------------------------------------- reader


@dataclass(frozen=True)
class RecordRef:
    """Where one record lies in a log file (from the headers alone)."""

    path: str
    offset: int  # byte offset of the record header in the file
    length: int  # payload bytes
    crc: int  # payload crc32
    request_id: str
    is_last: bool  # the record ends exactly at the end of the file

    @property
    def end(self) -> int:
        return self.offset + REC_HEADER_SIZE + self.length


@dataclass
class ReadStats:
    """What a scan skipped, for the caller's report."""

    tail_bytes_skipped: int = 0
    corrupt_regions: int = 0
    corrupt_bytes_skipped: int = 0
    corrupt_records: int = 0
    files: list[str] = field(default_factory=list)


@dataclass
class LoggedRequest:
    """One logged request: the inputs exactly as they were served.

    ``user`` is the user context's MessagePack bytes, ``items`` the item
    records (blob and offsets), ``candidates`` the candidate arrays (each
    ``None`` when it was not given). ``path`` and ``offset`` say where the
    record lies in its log.
    """

    request_id: str
    user: bytes
    items: ItemBuffers
    candidates: CandidateArrays
    path: str = ""
    offset: int = 0

    def __len__(self) -> int:
        return self.items.n

    def item_blobs(self) -> list[bytes]:
        """The item records as a list of MessagePack bytes."""
        blob, o = self.items.blob, self.items.offsets.tolist()
        return [blob[o[i] : o[i + 1]] for i in range(len(o) - 1)]

    def candidate_dict(self) -> dict[str, np.ndarray] | None:
        """The candidate arrays as ``FeatureEngine.compute`` takes them."""
        c = self.candidates
        d = {k: v for k, v in (("source", c.source), ("source_score", c.source_score), ("source_rank", c.source_rank))
             if v is not None}
        return d or None

    def prepared(self) -> PreparedRequest:
        """The buffers the engine takes, without re-encoding anything."""
        return PreparedRequest.from_buffers(self.user, self.items, self.candidates)


def _pread(f: BinaryIO, offset: int, n: int) -> bytes:
    f.seek(offset)
    return f.read(n)


def _read_file_header(f: BinaryIO, size: int, path: Any = None) -> bool:
    """True for a valid header; False for a torn (short) one; raises for a
    file that is not a request log."""
    head = _pread(f, 0, FILE_HEADER_SIZE)
    if len(head) < FILE_HEADER_SIZE:
        expected = _FILE_HEADER.pack(FILE_MAGIC, FORMAT_VERSION, FILE_HEADER_SIZE, 0)
        if expected.startswith(head):
            return False
        raise LogFormatError(f"{path or f.name}: not a pyfeat request log (bad magic)", path or f.name, 0)
    magic, version, header_size, _flags = _FILE_HEADER.unpack(head)
    if magic != FILE_MAGIC:
        raise LogFormatError(f"{path or f.name}: not a pyfeat request log (bad magic)", path or f.name, 0)
    if version != FORMAT_VERSION or header_size < FILE_HEADER_SIZE:
        raise LogFormatError(
            f"{path or f.name}: request log format version {version}; this pyfeat reads version {FORMAT_VERSION}",
            path or f.name, 0,
        )
    return True


def _parse_header(head: bytes) -> tuple[int, int, bytes] | None:
    """(payload_len, payload_crc, raw_id) of an intact record header, else None."""
    if len(head) < REC_HEADER_SIZE:
        return None
    magic, length, crc, raw_id, hcrc = _REC_HEADER.unpack_from(head)
    if magic != RECORD_MAGIC or zlib.crc32(head[:_REC_HEADER_CRC_SPAN]) != hcrc:
        return None
    return length, crc, raw_id


def _next_intact_header(f: BinaryIO, start: int, size: int) -> int | None:
    """Offset of the first intact record header after ``start`` that fits in
    the file, or None."""
    return _find_intact_header(f, start + 1, size)


def _find_intact_header(f: BinaryIO, pos: int, size: int) -> int | None:
    """Offset of the first intact record header at or after ``pos`` that fits
    in the file, or None: the magic, then a header whose own checksum
    matches (a chance match of both is 1 in 2**32 per magic-like 4 bytes)."""
    chunk = 1 << 20
    while pos < size:
        buf = _pread(f, pos, chunk + REC_HEADER_SIZE)
        i = buf.find(RECORD_MAGIC)
        while i != -1 and i < chunk:
            parsed = _parse_header(_pread(f, pos + i, REC_HEADER_SIZE))
            if parsed is not None and pos + i + REC_HEADER_SIZE + parsed[0] <= size:
                return pos + i
            i = buf.find(RECORD_MAGIC, i + 1)
        pos += chunk
    return None


def _file_size(fh: Any) -> int:
    try:
        return os.fstat(fh.fileno()).st_size
    except (AttributeError, OSError, ValueError):
        return int(fh.size())  # a pyarrow file (HDFS, S3): no descriptor


def scan_log(
    path: str | os.PathLike[str],
    *,
    on_corrupt: str = "error",
    stats: ReadStats | None = None,
    f: BinaryIO | None = None,
    start: int = 0,
    end: int | None = None,
) -> Iterator[RecordRef]:
    """Walk a log's record headers (payloads are not read nor checked).

    Yields a :class:`RecordRef` per intact header, lazily. A torn or damaged
    tail ends the walk with a :class:`RequestLogWarning`; damage before
    intact records raises :class:`LogFormatError` (``on_corrupt="error"``)
    or is skipped with a warning (``"skip"``). Raises FileNotFoundError and
    LogFormatError for a file that is not a request log.

    ``start``/``end`` walk one byte range of the file (a split, for readers
    that share a large file among tasks): the records whose header starts in
    ``[start, end)``. A range that does not begin at the file header finds
    its first record again from ``start`` (the next intact header: magic and
    header checksum). Splits that cover a file without overlap yield every
    record once and report every damage once, as a walk of the whole file
    would: damage belongs to the split whose walk runs into it (which may be
    past ``end``), not to the split it lies in, whose search skips it.
    """
    if on_corrupt not in ("error", "skip"):
        raise ValueError(f"on_corrupt must be 'error' or 'skip', got {on_corrupt!r}")
    if start < 0 or (end is not None and end < start):
        raise ValueError(f"bad byte range [{start}, {end})")
    path = str(path)
    stats = stats if stats is not None else ReadStats()
    own = f is None
    fh = open(path, "rb") if f is None else f
    try:
        size = _file_size(fh)
        stop = size if end is None else min(end, size)
        if start == 0:
            stats.files.append(path)
        if size == 0 or start >= stop:
            return
        if start < FILE_HEADER_SIZE:
            if not _read_file_header(fh, size, path):
                stats.tail_bytes_skipped += size
                warnings.warn(f"{path}: torn file header ({size} bytes): no request in this log", RequestLogWarning, 2)
                return
            pos = FILE_HEADER_SIZE
        else:
            found = _find_intact_header(fh, start, size)
            if found is None or found >= stop:
                return  # the split lies inside one record, or in damage that an earlier split reports
            pos = found
        while pos < size:
            head = _pread(fh, pos, REC_HEADER_SIZE)
            parsed = _parse_header(head)
            if pos >= stop and parsed is not None and pos + REC_HEADER_SIZE + parsed[0] <= size:
                return  # the next split's first record
            if parsed is not None and pos + REC_HEADER_SIZE + parsed[0] <= size:
                length, crc, raw_id = parsed
                end = pos + REC_HEADER_SIZE + length
                yield RecordRef(path, pos, length, crc, _id_str(raw_id), end == size)
                pos = end
                continue
            # A short header, a damaged one, or one whose payload runs past
            # the end of the file: a tail unless an intact record follows.
            nxt = _next_intact_header(fh, pos, size)
            if nxt is None:
                stats.tail_bytes_skipped += size - pos
                kind = "torn" if parsed is not None or len(head) < REC_HEADER_SIZE else "damaged"
                warnings.warn(
                    f"{path}: skipped a {kind} tail of {size - pos} bytes at byte offset {pos} "
                    "(an interrupted write; the records before it are intact)",
                    RequestLogWarning,
                    2,
                )
                return
            if on_corrupt == "error":
                raise LogFormatError(
                    f"{path}: corrupt record at byte offset {pos} ({nxt - pos} damaged bytes before the next "
                    f"intact record at {nxt}); pass on_corrupt='skip' (--skip-corrupt) to skip it",
                    path, pos,
                )
            stats.corrupt_regions += 1
            stats.corrupt_bytes_skipped += nxt - pos
            warnings.warn(f"{path}: skipped {nxt - pos} corrupt bytes at byte offset {pos}", RequestLogWarning, 2)
            pos = nxt
    finally:
        if own:
            fh.close()


def decode_payload(payload: bytes | memoryview, ref: RecordRef) -> LoggedRequest:
    """Decode a payload whose checksum matched. Raises LogFormatError for an
    inconsistent layout."""
    mv = memoryview(payload)
    total = mv.nbytes

    def bad(what: str) -> LogFormatError:
        return LogFormatError(f"{ref.path}: malformed record at byte offset {ref.offset}: {what}", ref.path, ref.offset)

    if total < _PAYLOAD_HEAD.size:
        raise bad("payload shorter than its header")
    user_len, n, blob_len, flags = _PAYLOAD_HEAD.unpack_from(mv)
    pos = _PAYLOAD_HEAD.size
    n_arrays = bin(flags & 7).count("1")
    need = pos + user_len + _pad8(user_len) + 8 * (n + 1) + blob_len + _pad8(blob_len) + 8 * n * n_arrays
    if flags & ~7 or need != total:
        raise bad(f"sections add up to {need} bytes, the payload has {total}")
    user = bytes(mv[pos : pos + user_len])
    pos += user_len + _pad8(user_len)
    offsets = np.frombuffer(mv, dtype="<i8", count=n + 1, offset=pos).astype(np.int64)
    pos += 8 * (n + 1)
    if offsets[0] != 0 or offsets[-1] != blob_len or (n and np.any(np.diff(offsets) < 0)):
        raise bad("item offsets are not increasing from 0 to the blob's length")
    blob = bytes(mv[pos : pos + blob_len])
    pos += blob_len + _pad8(blob_len)
    arrays: list[np.ndarray | None] = []
    for bit, dtype in ((_F_SOURCE, "<i8"), (_F_SCORE, "<f8"), (_F_RANK, "<i8")):
        if flags & bit:
            # A copy: aligned, writeable, independent of the payload buffer.
            arrays.append(np.frombuffer(mv, dtype=dtype, count=n, offset=pos).astype(dtype[1:]))
            pos += 8 * n
        else:
            arrays.append(None)
    return LoggedRequest(ref.request_id, user, ItemBuffers(blob, offsets), CandidateArrays(*arrays), ref.path, ref.offset)


class PayloadChecksumError(LogFormatError):
    """A record whose payload does not match its checksum."""


def read_record(f: BinaryIO, ref: RecordRef) -> LoggedRequest:
    """Read and decode the record ``ref`` from the open file ``f``.

    Raises PayloadChecksumError when the payload does not match its checksum
    (the caller decides whether that is a damaged tail, ``ref.is_last``).
    """
    payload = _pread(f, ref.offset + REC_HEADER_SIZE, ref.length)
    if len(payload) != ref.length or zlib.crc32(payload) != ref.crc:
        raise PayloadChecksumError(
            f"{ref.path}: corrupt record at byte offset {ref.offset}: the payload does not match its checksum",
            ref.path, ref.offset,
        )
    return decode_payload(payload, ref)


def iter_requests(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    on_corrupt: str = "error",
    stats: ReadStats | None = None,
) -> Iterator[LoggedRequest]:
    """Every intact request of one or more logs, in file order, streaming
    (one record in memory at a time).

    A torn or damaged tail is skipped with a :class:`RequestLogWarning`.
    Damage before intact records raises :class:`LogFormatError` naming the
    file and byte offset, or, with ``on_corrupt="skip"``, is skipped with a
    warning and counted in ``stats``.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    stats = stats if stats is not None else ReadStats()
    for path in paths:
        with open(path, "rb") as f:
            for ref in scan_log(path, on_corrupt=on_corrupt, stats=stats, f=f):
                try:
                    rec = read_record(f, ref)
                except PayloadChecksumError as e:
                    if ref.is_last:
                        stats.tail_bytes_skipped += ref.end - ref.offset
                        warnings.warn(f"{e}: skipped it as a damaged tail ({ref.end - ref.offset} bytes)",
                                      RequestLogWarning, 2)
                        continue
                    if on_corrupt == "error":
                        raise
                    stats.corrupt_records += 1
                    warnings.warn(f"{e}: skipped", RequestLogWarning, 2)
                    continue
                yield rec
