"""Training data: replay request logs through the feature library and join
the labels that came later (``pyfeat dataset``).

Output
------
One Parquet file, one row per (request, candidate item), rows in log order
(the rows of a request are consecutive)::

    request_id  string   the id the request was logged under (UUIDv7: time-ordered)
    item_id     int64    the item record's ``id``
    label       int8     0 no event, 1 click, 2 contact (the strongest event of the pair)
    <feature>   float32  one column per ``pyfeat.feature_names()`` entry, in that order
                         (numeric features; NaN when missing)
    <cat_...>   int64    one column per ``pyfeat.categorical_feature_names()`` entry, in
                         that order (categorical ids; ``pyfeat.CAT_MISSING`` when missing)

File metadata (``pyarrow.parquet.read_schema(path).metadata``):
``pyfeat_spec_hash`` (``pyfeat.spec_hash()``), ``pyfeat_feature_names`` (JSON
list of the numeric columns), ``pyfeat_categorical_feature_names`` (JSON list
of the categorical columns), ``pyfeat_feature_kinds`` (JSON object: column ->
``"numeric"`` or ``"categorical"``), ``pyfeat_cat_missing`` (the missing
categorical id, as a decimal string), ``pyfeat_label`` (the label
definition). Each feature column's field metadata also holds its kind
(``pyfeat_kind``). Features are computed by the same library call as
serving, so they are bit-identical to the served ones; a categorical column
goes to CatBoost as is (``cat_features``): CatBoost takes each id as its
decimal string, in training as in serving (DESIGN.md, "Training files").

Events file
-----------
CSV with a header line and at least the columns ``request_id`` (the id
returned by ``RequestLog.append`` / ``RankResult.request_id``), ``item_id``
(int) and ``event`` (``click`` or ``contact``); other columns (a timestamp,
...) are ignored. A pair's label is its strongest event: contact 2 > click
1 > nothing 0; repeated events count once. Without an events file every label
is 0. Events whose request id is not in the logs (the events of other log
files, say) or whose item was not among the request's candidates are
counted and reported in a warning, never dropped silently.

Repeated requests
-----------------
A request id yields its rows once: the first record of each id (logs in
the order given, then byte offset) is replayed and joined to the events. A
later record with the same id and identical bytes (the same header: payload
length and CRC-32) is dropped, counted (``duplicate_records``) and reported
in a warning. One with other contents raises :class:`DatasetError` naming
the id and both places; with ``on_corrupt="skip"`` it is dropped, counted
(``conflicting_records``) and warned about, and the first is kept.

Resources
---------
The log is streamed: the parent walks the record headers and hands out
batches of record locations to worker processes (started with "spawn": the
Go runtime does not survive fork), which read, check, decode and replay them;
at most ``2 * workers`` batches are in flight and rows are written to Parquet
one row group at a time, so memory does not grow with the log. The events are
held in memory, compactly (once parsed, ~9 bytes per (request, item) pair
and 36 per request id). Output goes to a temporary file in the output's
directory, renamed over the output only when complete: a failure never
leaves a partial file. Workers die with the parent (a parent-death signal),
however it ends; SIGTERM cleans up like Ctrl-C. A run killed with SIGKILL
leaves its temporary file ``.OUT.<random>.tmp``: the next run for the same
OUT removes it (runs in progress hold a lock on theirs, which is kept). The
parent keeps each distinct request id and the place of its first record
(~150 bytes a request), for the repeats above.
"""

from __future__ import annotations

import collections
import itertools
import json
import tempfile
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import _lifetime
from ._engine import FEATURE_NAMES_KEY, SPEC_HASH_KEY, compute_prepared_all
from ._inputs import threads_arg
from .errors import InputError, PyfeatError
from .requestlog import (
    REC_HEADER_SIZE,
    LogFormatError,
    PayloadChecksumError,
    ReadStats,
    RecordRef,
    RequestLogWarning,
    _parse_header,
    read_record,
    scan_log,
)

__all__ = [
    "build_dataset",
    "publish",
    "read_metadata",
    "DatasetStats",
    "DatasetError",
    "DatasetWarning",
    "Events",
    "read_events",
    "LABELS",
    "LABEL_DEFINITION",
    "FEATURE_NAMES_KEY",
    "CAT_FEATURE_NAMES_KEY",
    "FEATURE_KINDS_KEY",
    "CAT_MISSING_KEY",
    "KIND_FIELD_KEY",
    "SPEC_HASH_KEY",
    "LABEL_KEY",
    "read_categorical_names",
]

LABELS = {"click": 1, "contact": 2}
LABEL_DEFINITION = "0 no event, 1 click, 2 contact (strongest event of the (request_id, item_id) pair)"
CAT_FEATURE_NAMES_KEY = "pyfeat_categorical_feature_names"
FEATURE_KINDS_KEY = "pyfeat_feature_kinds"
CAT_MISSING_KEY = "pyfeat_cat_missing"
KIND_FIELD_KEY = "pyfeat_kind"
LABEL_KEY = "pyfeat_label"
ID_COLUMNS = ("request_id", "item_id", "label")
_ID_LEN = 36  # canonical UUID string

# A batch of records sent to a worker: big enough to amortise the IPC, small
# enough to keep several batches in flight within a few tens of MB.
BATCH_BYTES = 4 << 20
ROW_GROUP_ROWS = 64 * 1024


class DatasetError(PyfeatError, ValueError):
    """The dataset cannot be built (a missing or empty log, a bad events
    file, ...); no output was written."""


class DatasetWarning(UserWarning):
    """Something in the inputs was skipped or did not match (counted)."""


@dataclass
class DatasetStats:
    """What ``build_dataset`` did."""

    out: str = ""
    requests: int = 0  # requests written
    rows: int = 0
    positives: int = 0  # rows with label > 0
    failed_requests: int = 0  # logged requests the library rejects (InputError): skipped
    log_bytes: int = 0
    events: int = 0  # distinct (request, item) pairs in the events file
    events_matched: int = 0
    events_unknown_request: int = 0
    unknown_request_ids: int = 0
    events_unknown_item: int = 0
    duplicate_records: int = 0  # records repeating an earlier one byte for byte: not used
    conflicting_records: int = 0  # records reusing an earlier one's request id, other contents (on_corrupt="skip")
    tail_bytes_skipped: int = 0
    corrupt_records: int = 0
    corrupt_bytes_skipped: int = 0
    seconds: float = 0.0
    workers: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("nan")


# ------------------------------------------------------------ repeated requests

# (request id, path, offset, path of the first record, its offset): a record
# whose request id an earlier one (file order, then offset) already has.
Repeat = tuple[str, str, int, str, int]


def conflict_error(r: Repeat) -> DatasetError:
    """The error for two different records under one request id (the same
    words from every builder: the CLI's and pyfeat.spark's)."""
    rid, path, offset, first_path, first_offset = r
    return DatasetError(
        f"request id {rid} is logged twice with different contents: {first_path} at byte offset {first_offset} "
        f"and {path} at byte offset {offset}; its events cannot be told apart (pass on_corrupt='skip' "
        "(--skip-corrupt) to keep the first record, in file order then offset, and skip the other)"
    )


def warn_repeated_records(stats: DatasetStats, n_records: int, identical: Repeat | None,
                          conflicting: Repeat | None) -> None:
    """Warn about the records that repeat a request id already read (the
    same words from every builder); ``identical`` and ``conflicting`` are
    the first of each kind in file order, then offset."""
    for n, first, what, tail in (
        (stats.duplicate_records, identical, "repeat a request id already read, with identical bytes",
         "they are not used"),
        (stats.conflicting_records, conflicting, "reuse a request id already read, with different contents",
         "only the first record of each id is used (its events may be the other's)"),
    ):
        if n and first is not None:
            rid, path, offset, first_path, first_offset = first
            warnings.warn(
                f"{n} of {n_records} logged records {what} (e.g. {rid}: {path} at byte offset {offset}, "
                f"first at {first_path} byte offset {first_offset}); {tail}",
                DatasetWarning, 3,
            )


class _FirstRecords:
    """Keeps the first record of each request id (file order, then offset)
    as the logs are walked; a later record with the same id is dropped:
    counted when its header equals the first's (same payload length and
    CRC-32: the same bytes, by the standard every record is read by), an
    error (or with on_corrupt="skip", counted) when it differs.

    Memory: one dict entry per distinct request id, the id's string (kept
    from the record header) and its first record's place packed in one int:
    ~150 bytes a request (DESIGN.md, "Training files")."""

    _OFFSET_BITS = 48

    def __init__(self, paths: Sequence[str], on_corrupt: str) -> None:
        self.paths = paths
        self.on_corrupt = on_corrupt
        self.first: dict[str, int] = {}
        self.records = 0
        self.identical = 0
        self.conflicting = 0
        self.first_identical: Repeat | None = None
        self.first_conflicting: Repeat | None = None

    def keep(self, file_i: int, ref: RecordRef) -> bool:
        self.records += 1
        place = self.first.setdefault(ref.request_id, file_i << self._OFFSET_BITS | ref.offset)
        if place >> self._OFFSET_BITS == file_i and place & ((1 << self._OFFSET_BITS) - 1) == ref.offset:
            return True
        first_path = self.paths[place >> self._OFFSET_BITS]
        first_offset = place & ((1 << self._OFFSET_BITS) - 1)
        repeat = (ref.request_id, ref.path, ref.offset, first_path, first_offset)
        # Rare: read the first record's header again rather than keep its
        # length and checksum for every request.
        with open(first_path, "rb") as f:
            f.seek(first_offset)
            parsed = _parse_header(f.read(REC_HEADER_SIZE))
        if parsed is not None and parsed[:2] == (ref.length, ref.crc):
            self.identical += 1
            self.first_identical = self.first_identical or repeat
        elif self.on_corrupt == "error":
            raise conflict_error(repeat)
        else:
            self.conflicting += 1
            self.first_conflicting = self.first_conflicting or repeat
        return False


# ---------------------------------------------------------------------- events


class Events:
    """Labels of (request_id, item_id) pairs, held as sorted numpy arrays.

    ``rids`` are the distinct request ids (sorted, fixed 36-byte strings);
    the pairs of request ``k`` are ``items[start[k]:start[k+1]]`` (sorted)
    with ``labels`` alongside.
    """

    def __init__(self, rids: np.ndarray, start: np.ndarray, items: np.ndarray, labels: np.ndarray,
                 malformed: int = 0, path: str = "") -> None:
        self.rids = rids
        self.start = start
        self.items = items
        self.labels = labels
        self.matched = np.zeros(len(rids), dtype=bool)
        self.pairs_matched = 0
        self.malformed = malformed  # events whose request id cannot be a pyfeat id
        self.path = path

    @classmethod
    def empty(cls) -> "Events":
        return cls(np.empty(0, dtype=f"S{_ID_LEN}"), np.zeros(1, dtype=np.int64),
                   np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int8))

    @property
    def n_pairs(self) -> int:
        return len(self.items) + self.malformed

    def labels_for(self, request_id: str, item_ids: np.ndarray) -> np.ndarray:
        """int8 labels of ``item_ids`` in request ``request_id`` (0 without an event)."""
        out = np.zeros(len(item_ids), dtype=np.int8)
        if len(self.rids) == 0:
            return out
        key = request_id.encode("ascii")
        k = int(np.searchsorted(self.rids, key))
        if k >= len(self.rids) or self.rids[k] != key:
            return out
        lo, hi = int(self.start[k]), int(self.start[k + 1])
        ev_items, ev_labels = self.items[lo:hi], self.labels[lo:hi]
        pos = np.searchsorted(ev_items, item_ids).clip(0, hi - lo - 1)
        hit = ev_items[pos] == item_ids
        out[hit] = ev_labels[pos[hit]]
        if not self.matched[k]:
            self.matched[k] = True
            self.pairs_matched += int(np.isin(ev_items, item_ids[hit]).sum())
        return out

    def unmatched(self) -> tuple[int, int, list[str]]:
        """(pairs of unknown requests, unknown request ids, a few examples)."""
        miss = ~self.matched
        counts = np.diff(self.start)
        examples = [r.decode("ascii", "replace") for r in self.rids[miss][:3]]
        return int(counts[miss].sum()) + self.malformed, int(miss.sum()) + (1 if self.malformed else 0), examples


    def close(self) -> None:
        """Release what the events hold on disk (nothing, in memory)."""


# Events files are read in blocks of this many bytes; a file of one block is
# held in memory, a larger one is sorted on disk (runs, then one merge).
EVENTS_BLOCK_BYTES = 8 << 20
_SPARSE = 1024  # a spilled store keeps every 1024th request id in memory


def _sorted_pairs(rid: np.ndarray, item: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted by (request id, item), one row per pair with its strongest
    event (the first after sorting by label descending)."""
    order = np.lexsort((-label.astype(np.int16), item, rid))
    rid, item, label = rid[order], item[order], label[order]
    first = np.ones(len(rid), dtype=bool)
    first[1:] = (rid[1:] != rid[:-1]) | (item[1:] != item[:-1])
    return rid[first], item[first], label[first]


def _index_pairs(rid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct request ids, start of each one's pairs + the end) of sorted ids."""
    if len(rid) == 0:
        return rid[:0], np.zeros(1, dtype=np.int64)
    head = np.flatnonzero(np.r_[True, rid[1:] != rid[:-1]])
    return rid[head], np.r_[head, len(rid)].astype(np.int64)


class SpilledEvents(Events):
    """Events sorted on disk (a file larger than one block): the same
    lookups, by pread, with every 1024th request id in memory and one bit
    per request id for the matched ones."""

    def __init__(self, directory: str, n_rids: int, n_items: int, malformed: int, path: str) -> None:
        self.dir = directory
        self.n_rids, self.n_items = n_rids, n_items
        self.malformed = malformed
        self.path = path
        self.pairs_matched = 0
        self._bits = np.zeros((n_rids + 7) // 8, dtype=np.uint8)
        self._f = {name: open(os.path.join(directory, name), "rb") for name in ("rids", "start", "items", "labels")}
        self._block: tuple[int, np.ndarray] | None = None
        sparse = []
        for k in range(0, n_rids, _SPARSE):
            sparse.append(self._read("rids", f"S{_ID_LEN}", k, 1)[0])
        self._sparse = np.array(sparse, dtype=f"S{_ID_LEN}")

    @property
    def n_pairs(self) -> int:
        return self.n_items + self.malformed

    def _read(self, name: str, dtype: str, first: int, count: int) -> np.ndarray:
        f = self._f[name]
        size = np.dtype(dtype).itemsize
        f.seek(first * size)
        return np.frombuffer(f.read(count * size), dtype=dtype)

    def labels_for(self, request_id: str, item_ids: np.ndarray) -> np.ndarray:
        out = np.zeros(len(item_ids), dtype=np.int8)
        key = request_id.encode("ascii")
        b = int(np.searchsorted(self._sparse, key, "right")) - 1
        if b < 0:
            return out
        if self._block is None or self._block[0] != b:
            first = b * _SPARSE
            self._block = (b, self._read("rids", f"S{_ID_LEN}", first, min(_SPARSE, self.n_rids - first)))
        rids = self._block[1]
        j = int(np.searchsorted(rids, key))
        if j >= len(rids) or rids[j] != key:
            return out
        k = b * _SPARSE + j
        lo, hi = (int(x) for x in self._read("start", "<i8", k, 2))
        ev_items, ev_labels = self._read("items", "<i8", lo, hi - lo), self._read("labels", "i1", lo, hi - lo)
        pos = np.searchsorted(ev_items, item_ids).clip(0, hi - lo - 1)
        hit = ev_items[pos] == item_ids
        out[hit] = ev_labels[pos[hit]]
        if not self._bits[k >> 3] & (1 << (k & 7)):
            self._bits[k >> 3] |= 1 << (k & 7)
            self.pairs_matched += int(np.isin(ev_items, item_ids[hit]).sum())
        return out

    def unmatched(self) -> tuple[int, int, list[str]]:
        matched = np.unpackbits(self._bits, bitorder="little")[: self.n_rids].astype(bool)
        pairs, examples = 0, list[str]()
        step = 1 << 20
        for first in range(0, self.n_rids, step):
            n = min(step, self.n_rids - first)
            counts = np.diff(self._read("start", "<i8", first, n + 1))
            miss = ~matched[first : first + n]
            pairs += int(counts[miss].sum())
            for k in np.flatnonzero(miss)[: 3 - len(examples)]:
                examples.append(self._read("rids", f"S{_ID_LEN}", first + int(k), 1)[0].decode("ascii", "replace"))
        n_miss = int((~matched).sum())
        return pairs + self.malformed, n_miss + (1 if self.malformed else 0), examples

    def close(self) -> None:
        import shutil

        for f in self._f.values():
            f.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def read_events(path: str | os.PathLike[str], workdir: str | os.PathLike[str] | None = None) -> Events:
    """Load an events CSV (see the module docstring). Raises DatasetError.

    Streaming: the file is parsed one block (``EVENTS_BLOCK_BYTES``) at a
    time. A file of one block is held in memory; a larger one is sorted
    into runs on disk (in ``workdir``, default the system's temporary
    directory) and merged into one sorted file, looked up by pread: memory
    does not grow with the events file.
    """
    path = str(path)
    if not os.path.exists(path):
        raise DatasetError(f"events file not found: {path}")
    if os.path.isdir(path):
        raise DatasetError(f"events file is a directory: {path}")
    try:
        with open(path, "rb") as fh:
            header = fh.readline().decode("utf-8", "replace").strip().lstrip("\ufeff")
    except OSError as e:
        raise DatasetError(f"cannot read events file {path}: {e}") from e
    cols = [c.strip() for c in header.split(",")]
    missing = [c for c in ("request_id", "item_id", "event") if c not in cols]
    if missing:
        raise DatasetError(
            f"events file {path}: the header line must name the columns request_id,item_id,event "
            f"(missing: {', '.join(missing)}; found: {header[:200]!r})"
        )
    blocks = _event_blocks(path)
    malformed = 0
    first = next(blocks, None)
    if first is None:
        return Events.empty()
    second = next(blocks, None)
    if second is None:
        rid, item, label, malformed = first
        uniq, start = _index_pairs(rid)
        return Events(uniq, start, np.ascontiguousarray(item), np.ascontiguousarray(label), malformed, path)
    directory = tempfile.mkdtemp(prefix="pyfeat-events-", dir=None if workdir is None else str(workdir))
    try:
        runs = []
        for k, block in enumerate(itertools.chain([first, second], blocks)):
            rid, item, label, bad = block
            malformed += bad
            run = os.path.join(directory, f"run{k}")
            for name, arr in (("rids", rid), ("items", item), ("labels", label)):
                arr.tofile(f"{run}.{name}")
            runs.append((run, len(rid)))
            del rid, item, label, block
        n_rids, n_items = _merge_runs(runs, directory)
        return SpilledEvents(directory, n_rids, n_items, malformed, path)
    except BaseException:
        import shutil

        shutil.rmtree(directory, ignore_errors=True)
        raise


def _event_blocks(path: str) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, int]]:
    """The events file block by block: (request ids S36, items, labels)
    sorted and deduplicated within the block, malformed ids counted."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=EVENTS_BLOCK_BYTES, use_threads=False),
            convert_options=pacsv.ConvertOptions(
                column_types={"request_id": pa.string(), "item_id": pa.int64(), "event": pa.string()},
                include_columns=["request_id", "item_id", "event"],
                strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as e:
        raise DatasetError(f"events file {path}: {_first_bad_line(path) or e}") from e
    seen = 0  # rows before this block: line numbers
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as e:
            raise DatasetError(f"events file {path}: {_first_bad_line(path) or e}") from e
        if batch.num_rows == 0:
            continue
        item = batch.column("item_id")
        if item.null_count:
            row = int(pc.index(pc.is_null(item), True).as_py())
            raise DatasetError(f"events file {path}: line {seen + row + 2}: item_id is empty")
        event = batch.column("event")
        label = np.zeros(len(event), dtype=np.int8)
        for name, value in LABELS.items():
            label[pc.equal(event, name).to_numpy(zero_copy_only=False)] = value
        if not label.all():
            row = int(np.flatnonzero(label == 0)[0])
            raise DatasetError(
                f"events file {path}: line {seen + row + 2}: event {event[row].as_py()!r} is not one of {sorted(LABELS)}"
            )
        seen += batch.num_rows
        rid = batch.column("request_id")
        ok = pc.equal(pc.binary_length(rid), _ID_LEN).to_numpy(zero_copy_only=False)
        malformed = int((~ok).sum())
        if malformed:
            keep = pa.array(ok)
            rid, item, label = rid.filter(keep), item.filter(keep), label[ok]
        fixed = pc.cast(rid, pa.binary(_ID_LEN))
        rid_np = np.frombuffer(fixed.buffers()[1], dtype=f"S{_ID_LEN}", count=len(fixed),
                               offset=fixed.offset * _ID_LEN)
        yield (*_sorted_pairs(rid_np, item.to_numpy(), label), malformed)


def _merge_runs(runs: list[tuple[str, int]], directory: str, budget_rows: int = 1 << 19) -> tuple[int, int]:
    """Merge sorted runs into ``directory``/{rids,start,items,labels}: one
    sorted, deduplicated sequence of pairs. Each round reads a chunk of
    every run, emits every pair whose request id is at most the smallest
    last id among the runs that go on (a request's pairs are never split
    between rounds) and keeps the rest for the next round. Returns
    (distinct request ids, pairs)."""
    chunk = max(1 << 14, budget_rows // max(len(runs), 1))
    pos = [0] * len(runs)
    rid_dtype = np.dtype(f"S{_ID_LEN}")

    def read(k: int, name: str, dtype: Any, first: int, count: int) -> np.ndarray:
        with open(f"{runs[k][0]}.{name}", "rb") as f:
            f.seek(first * np.dtype(dtype).itemsize)
            return np.frombuffer(f.read(count * np.dtype(dtype).itemsize), dtype=dtype)

    n_rids = n_items = 0
    outs = {name: open(os.path.join(directory, name), "wb") for name in ("rids", "start", "items", "labels")}
    try:
        while True:
            heads: dict[int, np.ndarray] = {}
            bound = None
            for k, (_, n) in enumerate(runs):
                if pos[k] < n:
                    rid = read(k, "rids", rid_dtype, pos[k], min(chunk, n - pos[k]))
                    heads[k] = rid
                    if pos[k] + len(rid) < n and (bound is None or rid[-1] < bound):
                        bound = rid[-1]
            if not heads:
                break
            parts = []
            for k, rid in heads.items():
                n = runs[k][1]
                if bound is not None:
                    # Pairs of the bound's request past the chunk: read on until it ends.
                    while rid[-1] == bound and pos[k] + len(rid) < n:
                        more = read(k, "rids", rid_dtype, pos[k] + len(rid), min(chunk, n - pos[k] - len(rid)))
                        rid = np.concatenate([rid, more])
                    take = int(np.searchsorted(rid, bound, "right"))
                else:
                    take = len(rid)
                if take:
                    parts.append((rid[:take], read(k, "items", "<i8", pos[k], take), read(k, "labels", "i1", pos[k], take)))
                    pos[k] += take
            rid, item, label = _sorted_pairs(*(np.concatenate(c) for c in zip(*parts)))
            uniq, start = _index_pairs(rid)
            uniq.tofile(outs["rids"])
            (start[:-1] + n_items).astype("<i8").tofile(outs["start"])
            item.astype("<i8").tofile(outs["items"])
            label.astype("i1").tofile(outs["labels"])
            n_rids += len(uniq)
            n_items += len(rid)
        np.array([n_items], dtype="<i8").tofile(outs["start"])
    finally:
        for f in outs.values():
            f.close()
        for run, _ in runs:
            for name in ("rids", "items", "labels"):
                try:
                    os.unlink(f"{run}.{name}")
                except FileNotFoundError:
                    pass
    return n_rids, n_items


def _first_bad_line(path: str) -> str:
    """Where a CSV that pyarrow refused goes wrong (only on the error path)."""
    import csv

    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.reader(f)
        header = [c.strip().lstrip("\ufeff") for c in next(reader, [])]
        try:
            col = header.index("item_id")
        except ValueError:
            return ""
        for lineno, row in enumerate(reader, start=2):
            if len(row) != len(header):
                return f"line {lineno}: {len(row)} fields, the header has {len(header)}"
            try:
                int(row[col])
            except ValueError:
                return f"line {lineno}: item_id {row[col]!r} is not an integer"
    return ""


# ---------------------------------------------------------------------- worker

_threads = 0  # goroutines per call in this worker, 0 for all cores


def _worker_init(threads: int | None, parent_pid: int | None = None) -> None:
    global _threads
    if parent_pid is not None:
        from ._lifetime import die_with_parent

        die_with_parent(parent_pid)  # no orphan when the parent is killed
    _threads = threads_arg(threads)


def replay_batch(path: str, refs: Sequence[RecordRef]) -> list[tuple[Any, ...]]:
    """Replay some records of one log (runs in a worker process).

    Returns one tuple per record: ``("ok", request_id, item_ids int64,
    features)`` with ``features`` a :class:`pyfeat.Features` (numeric float32
    (n, n_features), categorical int64 (n, n_cat_features)), ``("crc",
    message)`` for a payload that fails its checksum, or ``("input",
    request_id, message)`` for a request the library rejects.
    """
    with open(path, "rb") as f:
        return [replay_record(f, ref) for ref in refs]


def replay_record(f: Any, ref: RecordRef) -> tuple[Any, ...]:
    """Replay one logged request: read it from the open file ``f``, check
    it, compute its rows. The one per-request step of every builder (the
    CLI's worker processes and pyfeat.spark's tasks); the library is loaded
    in the calling process on first use.

    Returns ``("ok", request_id, item_ids int64, features)`` with
    ``features`` a :class:`pyfeat.Features` (numeric float32 (n,
    n_features), categorical int64 (n, n_cat_features)), ``("crc",
    message)`` for a payload that fails its checksum, or ``("input",
    request_id, message)`` for a request the library rejects.
    """
    try:
        rec = read_record(f, ref)
    except PayloadChecksumError as e:
        return ("crc", str(e))
    try:
        ids = np.empty(rec.items.n, dtype=np.int64)
        X = compute_prepared_all(rec.prepared(), _threads, item_ids=ids)  # Go reads the ids while decoding
    except InputError as e:
        return ("input", rec.request_id, str(e))
    return ("ok", rec.request_id, ids, X)


# --------------------------------------------------------------------- builder


def _batches(paths: Sequence[str], on_corrupt: str, stats: ReadStats,
             first: _FirstRecords) -> Iterator[tuple[str, list[RecordRef]]]:
    for file_i, path in enumerate(paths):
        batch: list[RecordRef] = []
        size = 0
        for ref in scan_log(path, on_corrupt=on_corrupt, stats=stats):
            if not first.keep(file_i, ref):
                continue
            batch.append(ref)
            size += ref.length
            if size >= BATCH_BYTES:
                yield path, batch
                batch, size = [], 0
        if batch:
            yield path, batch


def _check_inputs(logs: Sequence[str | os.PathLike[str]], out: Path) -> list[str]:
    if not logs:
        raise DatasetError("no request log given")
    paths = []
    seen = set()
    for p in logs:
        p = str(p)
        if not os.path.exists(p):
            raise DatasetError(f"request log not found: {p}")
        if os.path.isdir(p):
            raise DatasetError(f"request log is a directory: {p}")
        real = os.path.realpath(p)
        if real in seen:
            raise DatasetError(f"request log given twice: {p}")
        if real == os.path.realpath(out):
            raise DatasetError(f"the output {out} is one of the request logs")
        seen.add(real)
        paths.append(p)
    if not out.parent.is_dir():
        raise DatasetError(f"output directory does not exist: {out.parent}")
    return paths


def _schema(names: list[str], spec: str, cat_names: list[str]) -> Any:
    import pyarrow as pa

    from ._engine import CAT_MISSING, CATEGORICAL, NUMERIC

    fields = [pa.field("request_id", pa.string(), nullable=False), pa.field("item_id", pa.int64(), nullable=False),
              pa.field("label", pa.int8(), nullable=False)]
    fields += [pa.field(n, pa.float32(), metadata={KIND_FIELD_KEY: NUMERIC}) for n in names]
    # Not nullable: a missing categorical value is CAT_MISSING, which is what
    # CatBoost is given for it in training and in serving.
    fields += [pa.field(n, pa.int64(), nullable=False, metadata={KIND_FIELD_KEY: CATEGORICAL}) for n in cat_names]
    kinds = {**{n: NUMERIC for n in names}, **{n: CATEGORICAL for n in cat_names}}
    meta = {SPEC_HASH_KEY: spec, FEATURE_NAMES_KEY: json.dumps(names), CAT_FEATURE_NAMES_KEY: json.dumps(cat_names),
            FEATURE_KINDS_KEY: json.dumps(kinds), CAT_MISSING_KEY: str(CAT_MISSING), LABEL_KEY: LABEL_DEFINITION}
    return pa.schema(fields, metadata=meta)


def feature_columns(pending: Sequence[tuple[str, np.ndarray, np.ndarray, Any]]) -> list[Any]:
    """The Arrow columns of the requests in ``pending`` ((request_id,
    item_ids, labels, Features) each), in ``_schema``'s order."""
    import pyarrow as pa

    rid_idx = np.repeat(np.arange(len(pending), dtype=np.int32), [len(p[1]) for p in pending])
    # Dictionary-encoded in memory as in the file: one string per request.
    rid = pa.DictionaryArray.from_arrays(pa.array(rid_idx), pa.array([p[0] for p in pending])).cast(pa.string())
    cols = [rid, pa.array(np.concatenate([p[1] for p in pending])), pa.array(np.concatenate([p[2] for p in pending]))]
    # Column by column from the per-request matrices: one copy of the row
    # group, not two.
    for part in (0, 1):  # numeric, categorical
        width = pending[0][3][part].shape[1]
        cols += [pa.array(np.concatenate([p[3][part][:, j] for p in pending])) for j in range(width)]
    return cols


class _Writer:
    """Rows to a Parquet temp file, one row group at a time."""

    def __init__(self, tmp: Path, schema: Any, row_group_rows: int) -> None:
        import pyarrow.parquet as pq

        self.schema = schema
        self.row_group_rows = row_group_rows
        self.writer = pq.ParquetWriter(str(tmp), schema, compression="zstd", compression_level=1)
        self.pending: list[tuple[str, np.ndarray, np.ndarray, Any]] = []
        self.pending_rows = 0

    def add(self, request_id: str, item_ids: np.ndarray, labels: np.ndarray, X: Any) -> None:
        self.pending.append((request_id, item_ids, labels, X))
        self.pending_rows += len(item_ids)
        if self.pending_rows >= self.row_group_rows:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa

        if not self.pending:
            return
        n = self.pending_rows
        cols = feature_columns(self.pending)
        self.pending, self.pending_rows = [], 0
        self.writer.write_table(pa.Table.from_arrays(cols, schema=self.schema), row_group_size=max(n, 1))

    def close(self) -> None:
        self.flush()
        self.writer.close()


def warn_unmatched_events(stats: DatasetStats, n_events: int, examples: Sequence[str]) -> None:
    """Warn about the events that no logged request or candidate matched
    (the same words from every builder: the CLI's and pyfeat.spark's)."""
    if stats.events_unknown_request:
        warnings.warn(
            f"{stats.events_unknown_request} of {n_events} events refer to {stats.unknown_request_ids} "
            f"request id(s) that are not in the logs (e.g. {', '.join(examples) or 'malformed ids'}); "
            "they are not used",
            DatasetWarning, 3,
        )
    if stats.events_unknown_item:
        warnings.warn(
            f"{stats.events_unknown_item} events name an item that was not among the request's candidates; "
            "they are not used",
            DatasetWarning, 3,
        )


def build_dataset(
    logs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    events: str | os.PathLike[str] | None = None,
    *,
    workers: int | None = None,
    threads: int | None = None,
    on_corrupt: str = "error",
    row_group_rows: int = ROW_GROUP_ROWS,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
) -> DatasetStats:
    """Replay request logs into a Parquet training file (see the module docstring).

    Args:
        logs: request log paths, replayed in this order.
        out: the Parquet file to write (replaced only when complete).
        events: the events CSV; ``None``: every label is 0.
        workers: worker processes (spawned); ``None``: one per core; ``0``
            replays in this process (for small logs and tests).
        threads: feature threads per worker; ``None``: the cores shared
            among the workers.
        on_corrupt: ``"error"`` (default) stops at a corrupt record before
            the end of a log; ``"skip"`` skips it with a warning (counted).
            A torn or damaged tail is always skipped with a warning.
        row_group_rows: rows per Parquet row group (memory per group:
            ~420 bytes a row).
        progress: show a progress bar (log bytes) on stderr.
        echo: where to print the one-line notes (default: nowhere).

    Returns:
        A :class:`DatasetStats`.

    Raises:
        DatasetError: a missing log or events file, no request in the logs.
        LogFormatError: a file that is not a request log, or (with
            ``on_corrupt="error"``) a corrupt record, with file and offset.
    """
    t0 = time.perf_counter()
    out = Path(out)
    paths = _check_inputs(logs, out)
    if on_corrupt not in ("error", "skip"):
        raise ValueError(f"on_corrupt must be 'error' or 'skip', got {on_corrupt!r}")
    stats = DatasetStats(out=str(out))
    if events is None:
        ev = Events.empty()
        stats.notes.append("no events file: every label is 0")
    else:
        ev = read_events(events, workdir=out.parent if out.parent.is_dir() else None)
    try:
        return _build(ev, paths, out, stats, t0, workers, threads, on_corrupt, row_group_rows, progress, echo)
    finally:
        ev.close()


def _build(ev: Events, paths: list[str], out: Path, stats: DatasetStats, t0: float, workers: int | None,
           threads: int | None, on_corrupt: str, row_group_rows: int, progress: bool,
           echo: Callable[[str], None] | None) -> DatasetStats:
    from ._engine import categorical_feature_names, feature_names, spec_hash

    stats.events = ev.n_pairs
    names = feature_names()
    n_cpu = os.cpu_count() or 1
    n_workers = n_cpu if workers is None else int(workers)
    if n_workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    if threads is None:
        threads = max(1, n_cpu // max(n_workers, 1)) if n_workers else None
    stats.workers = n_workers
    stats.log_bytes = sum(os.path.getsize(p) for p in paths)
    read_stats = ReadStats()

    # A run killed with SIGKILL leaves its temporary file: the next run for
    # the same output removes it (see pyfeat/_lifetime.py).
    _lifetime.remove_stale_temps(out)
    lock_fd, tmp = _lifetime.create_locked_temp(out)
    writer: _Writer | None = None
    pool: ProcessPoolExecutor | None = None
    bar = None
    first_input_error = ""
    try:
        writer = _Writer(tmp, _schema(names, spec_hash(), categorical_feature_names()), row_group_rows)
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=stats.log_bytes, unit="B", unit_scale=True, desc="pyfeat dataset",
                       mininterval=0.5, leave=True, dynamic_ncols=True)

        def consume(path: str, refs: list[RecordRef], results: list[tuple[Any, ...]]) -> None:
            nonlocal first_input_error
            for ref, res in zip(refs, results):
                kind = res[0]
                if kind == "ok":
                    _, rid, item_ids, X = res
                    labels = ev.labels_for(rid, item_ids)
                    assert writer is not None  # opened before the first batch
                    writer.add(rid, item_ids, labels, X)
                    stats.requests += 1
                    stats.rows += len(item_ids)
                    stats.positives += int(np.count_nonzero(labels))
                elif kind == "crc":
                    if ref.is_last:
                        read_stats.tail_bytes_skipped += ref.end - ref.offset
                        warnings.warn(f"{res[1]}: skipped it as a damaged tail ({ref.end - ref.offset} bytes)",
                                      RequestLogWarning, 2)
                    elif on_corrupt == "error":
                        raise LogFormatError(res[1] + "; pass --skip-corrupt to skip it", ref.path, ref.offset)
                    else:
                        read_stats.corrupt_records += 1
                        warnings.warn(f"{res[1]}: skipped", RequestLogWarning, 2)
                else:
                    stats.failed_requests += 1
                    if not first_input_error:
                        first_input_error = f"request {res[1]} ({ref.path} at byte offset {ref.offset}): {res[2]}"
            if bar is not None:
                bar.update(sum(r.end - r.offset for r in refs))
                bar.set_postfix(requests=stats.requests, rows=stats.rows, refresh=False)

        first_records = _FirstRecords(paths, on_corrupt)
        batches = _batches(paths, on_corrupt, read_stats, first_records)
        if n_workers == 0:
            _worker_init(threads)
            for path, refs in batches:
                consume(path, refs, replay_batch(path, refs))
        else:
            import multiprocessing

            ctx = multiprocessing.get_context("spawn")
            pool = ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=_worker_init,
                                       initargs=(threads, os.getpid()))
            inflight: collections.deque[tuple[str, list[RecordRef], Future[Any]]] = collections.deque()
            # Bounded submission: never more than 2 batches per worker exist
            # at once, however long the log (Pool.imap would read it all).
            limit = 2 * n_workers
            for path, refs in batches:
                inflight.append((path, refs, pool.submit(replay_batch, path, refs)))
                while len(inflight) >= limit:
                    p, r, fut = inflight.popleft()
                    consume(p, r, fut.result())
            while inflight:
                p, r, fut = inflight.popleft()
                consume(p, r, fut.result())
            pool.shutdown(wait=True)
            pool = None

        if bar is not None:
            bar.update(bar.total - bar.n)  # file headers and skipped bytes
        stats.tail_bytes_skipped = read_stats.tail_bytes_skipped
        stats.corrupt_records = read_stats.corrupt_records + read_stats.corrupt_regions
        stats.corrupt_bytes_skipped = read_stats.corrupt_bytes_skipped
        stats.duplicate_records, stats.conflicting_records = first_records.identical, first_records.conflicting
        warn_repeated_records(stats, first_records.records, first_records.first_identical,
                              first_records.first_conflicting)
        if stats.failed_requests:
            warnings.warn(
                f"skipped {stats.failed_requests} logged request(s) that the feature library rejects "
                f"(they were not served either); first: {first_input_error}",
                DatasetWarning, 2,
            )
        if stats.requests == 0:
            what = "no request" if not stats.failed_requests else "no request that the library accepts"
            raise DatasetError(f"{what} in {', '.join(paths)}: nothing to write")
        stats.events_matched = ev.pairs_matched
        stats.events_unknown_request, stats.unknown_request_ids, examples = ev.unmatched()
        stats.events_unknown_item = ev.n_pairs - ev.malformed - stats.events_matched - (
            stats.events_unknown_request - ev.malformed)
        warn_unmatched_events(stats, ev.n_pairs, examples)
        writer.close()
        writer = None
        publish(tmp, out)
    except BaseException as e:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
            _stop_workers(pool)
        if writer is not None:
            try:
                writer.writer.close()
            except Exception:
                pass
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        if isinstance(e, BrokenProcessPool):
            raise DatasetError(f"a worker process died while replaying the logs ({e}); no output written") from e
        raise
    finally:
        os.close(lock_fd)
        if bar is not None:
            bar.close()
    stats.seconds = time.perf_counter() - t0
    if echo is not None:
        for note in stats.notes:
            echo(note)
    return stats


def publish(tmp: str | os.PathLike[str], out: str | os.PathLike[str]) -> None:
    """Make a finished temporary file (from mkstemp, mode 0600) the output:
    the usual permissions, synced to disk, renamed atomically."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, out)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    # After an error or Ctrl-C, do not wait for batches already running.
    procs = getattr(pool, "_processes", None) or {}
    for p in list(procs.values()):
        try:
            p.terminate()
        except Exception:
            pass
    for p in list(procs.values()):
        try:
            p.join(timeout=5)
        except Exception:
            pass


def read_categorical_names(path: str | os.PathLike[str]) -> list[str]:
    """The categorical columns recorded in a dataset file (none in a file
    written before pyfeat had categorical columns)."""
    import pyarrow.parquet as pq

    if os.path.isdir(path):  # a Spark dataset: the metadata is in _common_metadata
        path = os.path.join(path, "_common_metadata")
    meta = pq.read_schema(str(path)).metadata or {}
    raw = meta.get(CAT_FEATURE_NAMES_KEY.encode())
    return [] if raw is None else list(json.loads(raw))


def read_metadata(path: str | os.PathLike[str]) -> tuple[list[str], str]:
    """(numeric feature names, spec hash) recorded in a dataset: one Parquet file
    (``pyfeat dataset``), or a directory of part files with the metadata
    in its ``_common_metadata`` (``pyfeat dataset --spark``)."""
    import pyarrow.parquet as pq

    if os.path.isdir(path):
        common = os.path.join(path, "_common_metadata")
        if not os.path.exists(common):
            raise DatasetError(f"{path}: not a pyfeat dataset (a directory without _common_metadata: "
                               "not written by pyfeat, or its job did not finish)")
        path = common
    meta = pq.read_schema(str(path)).metadata or {}
    try:
        names = json.loads(meta[FEATURE_NAMES_KEY.encode()])
        spec = meta[SPEC_HASH_KEY.encode()].decode()
    except KeyError as e:
        raise DatasetError(f"{path}: not a pyfeat dataset (no {e.args[0].decode()} in the file metadata)") from None
    return names, spec
