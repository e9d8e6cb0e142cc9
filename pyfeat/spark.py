"""Training datasets on Apache Spark: ``pyfeat dataset`` for logs that one
machine cannot replay in time (``pip install pyfeat[spark]``).

:func:`build_dataset_spark` writes the dataset ``pyfeat dataset`` writes
(same rows, columns, types, labels, feature values bit for bit, same
``pyfeat_*`` metadata), as a directory of Parquet part files. How it runs:

1. **Splits.** The driver lists the logs through Spark's Hadoop file system
   (globs allowed) and cuts each file into byte ranges of ``split_bytes``.
   A task walks the record headers of its range only: it finds its first
   record again from the range's start (magic and header checksum,
   :func:`pyfeat.requestlog.scan_log` with ``start``/``end``), so a 10 GB
   log is many tasks. The result is an index (request id, file, offset,
   length, checksum), cached; header damage and torn tails come back as
   rows, and the driver reports them as the CLI does (or raises, before
   anything is written).
2. **Repeated requests.** A window per request id, ordered by (file,
   offset), keeps the first record of each id, as the CLI does (logs in
   the order given, a glob's matches in path order); the driver gets the
   counts of the later ones (identical or not) and the first of each kind,
   never the ids, and warns or raises with the CLI's words.
3. **Events join, per request.** The events (a CSV in the CLI's format or
   a DataFrame ``request_id, item_id, event``) are reduced in Spark to one
   row per request (its ``(item_id, label)`` pairs) and joined to the index
   by request id (a full outer join: events of unknown requests are
   counted, never lost). Joining before the features are computed shuffles
   ~100 bytes per request instead of ~300 bytes per candidate row.
4. **Features.** The joined index is range-partitioned by (file, offset),
   so each task reads a contiguous stretch of a log, and replayed by
   ``mapInArrow``: each Python worker loads the Go library on first use
   (after PySpark's daemon forked it; the daemon never loads it), replays
   each request with :func:`pyfeat.dataset.replay_record` (the CLI
   workers' function), labels it with numpy and emits Arrow record batches
   column by column: no Python loop over rows.
5. **Output.** Spark's own writer and commit protocol (``mode("overwrite")``
   on ``out``): files of failed or speculative task attempts are discarded,
   a rerun replaces the whole directory; nothing is written outside it.
   Spark's Parquet writer does not carry pyfeat's key-value metadata, so
   after the job commits the driver adds ``out/_common_metadata`` (the
   Parquet convention: a schema-only footer) with ``pyfeat_spec_hash``,
   ``pyfeat_feature_names`` and ``pyfeat_label``;
   :func:`pyfeat.dataset.read_metadata` and ``pyfeat train`` read both
   layouts.

Worker processes read the logs with Python: local paths (``file:``) with
``open``; other schemes (``hdfs://``, ``s3a://`` read as ``s3://``,
``gs://``, ...) through ``pyarrow.fs``, which takes its credentials from
the environment, not from Spark's Hadoop configuration.
"""

from __future__ import annotations

import os
import re
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from .dataset import (
    LABELS,
    DatasetError,
    DatasetStats,
    DatasetWarning,
    Repeat,
    _schema,
    conflict_error,
    replay_record,
    warn_repeated_records,
    warn_unmatched_events,
)
from ._native import address_space_limit
from .requestlog import LogFormatError, ReadStats, RecordRef, RequestLogWarning, scan_log

__all__ = ["build_dataset_spark", "METADATA_FILE", "SPLIT_BYTES"]

SPLIT_BYTES = 128 << 20  # as Spark's own spark.sql.files.maxPartitionBytes
METADATA_FILE = "_common_metadata"
_ID_LEN = 36

# Fault injection for the tests ("compute": every replay task fails on its
# first attempt, after emitting its first batch). Read in the driver and
# shipped with the task, so setting it in the test process is enough.
_FAULT: str | None = None

_INDEX_DDL = (
    "kind string, file int, path string, offset long, length long, crc long, request_id string, "
    "is_last boolean, message string, n long, tail long, regions long, region_bytes long"
)


# ------------------------------------------------------------------- listing


def _jvm_fs(spark: Any, path: str) -> tuple[Any, Any]:
    jvm = spark.sparkContext._jvm
    hp = jvm.org.apache.hadoop.fs.Path(path)
    return hp.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hp


def _local_or_uri(qualified: str) -> str:
    """What a worker opens: a plain path for the local file system (so that
    messages name files as the CLI does), the URI otherwise."""
    if qualified.startswith("file:"):
        p = qualified[len("file:"):]
        return "/" + p.lstrip("/") if p.startswith("//") else p
    return qualified


def _list_logs(spark: Any, logs: Sequence[str | os.PathLike[str]]) -> list[tuple[str, int]]:
    if not logs:
        raise DatasetError("no request log given")
    out: list[tuple[str, int]] = []
    seen: set[str] = set()
    for given in logs:
        fs, hp = _jvm_fs(spark, str(given))
        statuses = fs.globStatus(hp)
        if statuses is None or len(statuses) == 0:
            raise DatasetError(f"request log not found: {given}")
        for st in sorted(statuses, key=lambda s: s.getPath().toString()):
            name = _local_or_uri(st.getPath().toString())
            if st.isDirectory():
                raise DatasetError(f"request log is a directory: {name}")
            if name in seen:
                raise DatasetError(f"request log given twice: {name}")
            seen.add(name)
            out.append((name, int(st.getLen())))
    return out


def _open(path: str) -> Any:
    if "://" not in path:
        return open(path, "rb")
    from pyarrow import fs

    filesystem, inner = fs.FileSystem.from_uri(re.sub(r"^s3[an]://", "s3://", path))
    return filesystem.open_input_file(inner)


# ---------------------------------------------------------------- scan tasks


def _scan_batches(batches: Iterator[Any], on_corrupt: str) -> Iterator[Any]:
    """mapInArrow: the record headers of each split (runs in a worker; never
    loads the Go library)."""
    import pyarrow as pa

    schema = _arrow_schema(_INDEX_DDL)
    for b in batches:
        d = b.to_pydict()
        for file_i, path, start, end in zip(d["file"], d["path"], d["start"], d["stop"]):
            cols: dict[str, list[Any]] = {f.name: [] for f in schema}

            def row(cols: dict[str, list[Any]] = cols, **kw: Any) -> None:
                for name in cols:
                    cols[name].append(kw.get(name))

            stats = ReadStats()
            n = 0
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    with _open(path) as f:
                        for ref in scan_log(path, on_corrupt=on_corrupt, stats=stats, f=f, start=start, end=end):
                            row(kind="rec", file=file_i, path=path, offset=ref.offset, length=ref.length,
                                crc=ref.crc, request_id=ref.request_id, is_last=ref.is_last)
                            n += 1
                except LogFormatError as e:
                    row(kind="error", file=file_i, path=path, offset=e.offset if e.offset is not None else start,
                        message=str(e))
            for seq, w in enumerate(caught):
                if issubclass(w.category, RequestLogWarning):
                    row(kind="warn", file=file_i, path=path, offset=start, n=seq, message=str(w.message))
            row(kind="stat", file=file_i, path=path, offset=start, n=n, tail=stats.tail_bytes_skipped,
                regions=stats.corrupt_regions, region_bytes=stats.corrupt_bytes_skipped)
            yield pa.RecordBatch.from_pydict(cols, schema=schema)


def _arrow_schema(ddl: str) -> Any:
    import pyarrow as pa

    types = {"string": pa.string(), "int": pa.int32(), "long": pa.int64(), "boolean": pa.bool_()}
    return pa.schema([pa.field(n, types[t]) for n, t in (f.split() for f in ddl.split(", "))])


# ------------------------------------------------------------- replay tasks


class _Counts:
    """What the replay tasks report to the driver (an accumulator's value)."""

    KEYS = ("requests", "rows", "positives", "failed", "ev_pairs", "ev_matched", "ev_unknown_req_pairs",
            "ev_unknown_req_ids", "ev_unknown_item", "tail", "corrupt")

    @staticmethod
    def zero() -> dict[str, Any]:
        d: dict[str, Any] = {k: 0 for k in _Counts.KEYS}
        d["examples"] = []  # the smallest unknown request ids, as the CLI reports
        d["failed_first"] = None  # (file, offset, message) of the first rejected request
        d["messages"] = []  # (file, offset, message) of skipped damaged records, the first few
        return d

    @staticmethod
    def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
        for k in _Counts.KEYS:
            a[k] += b[k]
        a["examples"] = sorted(set(a["examples"]) | set(b["examples"]))[:3]
        firsts = [x for x in (a["failed_first"], b["failed_first"]) if x is not None]
        a["failed_first"] = min(firsts) if firsts else None
        a["messages"] = sorted(a["messages"] + b["messages"])[:50]
        return a


def _accumulator_param() -> Any:
    from pyspark.accumulators import AccumulatorParam

    class Param(AccumulatorParam):
        def zero(self, value: Any) -> dict[str, Any]:
            return _Counts.zero()

        def addInPlace(self, a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
            return _Counts.merge(a, b)

    return Param()


# The address space a replay worker needs: the Go runtime reserves ~1.6 GB
# of it when the library loads, and a worker maps ~3 GB in all while it
# uses ~200 MB (training/README.md, section 7). Measured under
# spark.executor.pyspark.memory: 1g and 2g abort at load, 4g runs.
MIN_ADDRESS_SPACE = 4 << 30


def _check_address_space() -> None:
    """Raise DatasetError where the worker's address space is too small for
    the Go runtime, which would otherwise abort the process at load
    (``fatal error: failed to reserve page summary memory``)."""
    soft = address_space_limit()
    if soft is not None and soft < MIN_ADDRESS_SPACE:
        raise DatasetError(
            f"this Spark Python worker's address space is limited to {soft >> 20} MB (RLIMIT_AS, which "
            f"spark.executor.pyspark.memory sets): the Go runtime of pyfeat's library reserves ~1.6 GB of "
            f"address space when it loads (it uses ~200 MB of memory) and would abort. Unset "
            f"spark.executor.pyspark.memory (or set it to at least {MIN_ADDRESS_SPACE >> 30}g) and budget the "
            f"workers with spark.executor.memoryOverhead (~250 MB per core)"
        )


def _replay_batches(batches: Iterator[Any], cfg: dict[str, Any], acc: Any) -> Iterator[Any]:
    """mapInArrow: replay the requests of one contiguous stretch of logs and
    emit their rows (runs in a PySpark worker, which loads the library here,
    on first use)."""
    import pyarrow as pa

    from . import dataset

    _check_address_space()  # before the library loads
    dataset._worker_init(cfg["threads"])  # this worker's goroutines per call
    names: list[str] = cfg["names"]
    schema = _schema(names, "", cfg["cat_names"])
    schema = pa.schema([f.with_nullable(True) for f in schema])  # as Spark declares them
    fail_first = cfg["fault"] == "compute" and _attempt() == 0
    counts = _Counts.zero()
    pending: list[tuple[str, np.ndarray, np.ndarray, Any]] = []
    pending_rows = 0
    files: dict[str, Any] = {}
    emitted = 0

    def flush() -> Any:
        nonlocal pending, pending_rows
        cols = dataset.feature_columns(pending)  # the CLI's columns: numeric, then categorical
        pending, pending_rows = [], 0
        return pa.RecordBatch.from_arrays(cols, schema=schema)

    def unknown(rid: str | None, n_pairs: int) -> None:
        counts["ev_unknown_req_pairs"] += n_pairs
        counts["ev_unknown_req_ids"] += 1
        if rid is not None:
            counts["examples"] = sorted(counts["examples"] + [rid])[:3]

    try:
        for b in batches:
            rids = b.column("request_id").to_pylist()
            paths = b.column("path").to_pylist()
            file_i = b.column("file").to_pylist()
            offsets = b.column("offset").to_pylist()
            lengths = b.column("length").to_pylist()
            crcs = b.column("crc").to_pylist()
            lasts = b.column("is_last").to_pylist()
            ev = b.column("ev")
            # offsets index the child array as a whole (.values), whatever
            # the batch's slice offset; null lists are skipped below.
            ev_off = ev.offsets.to_numpy(zero_copy_only=False)
            flat = ev.values
            ev_items = flat.field("item_id").to_numpy(zero_copy_only=False)
            ev_labels = flat.field("label").to_numpy(zero_copy_only=False).astype(np.int8)
            ev_null = ev.is_null().to_numpy(zero_copy_only=False)
            for i in range(b.num_rows):
                lo, hi = (0, 0) if ev_null[i] else (int(ev_off[i]), int(ev_off[i + 1]))
                counts["ev_pairs"] += hi - lo
                path = paths[i]
                if path is None:  # events of a request that is in none of the logs
                    unknown(rids[i], hi - lo)
                    continue
                f = files.get(path)
                if f is None:
                    f = files[path] = _open(path)
                ref = RecordRef(path, offsets[i], lengths[i], crcs[i], rids[i], lasts[i])
                res = replay_record(f, ref)
                if res[0] != "ok":
                    if hi > lo:  # as the CLI: the events of a request not replayed are unknown
                        unknown(rids[i], hi - lo)
                    if res[0] == "input":
                        counts["failed"] += 1
                        first = (file_i[i], ref.offset, f"request {res[1]} ({path} at byte offset {ref.offset}): {res[2]}")
                        if counts["failed_first"] is None or first < counts["failed_first"]:
                            counts["failed_first"] = first
                    elif ref.is_last:
                        counts["tail"] += ref.end - ref.offset
                        counts["messages"].append((file_i[i], ref.offset, f"{res[1]}: skipped it as a damaged tail "
                                                                            f"({ref.end - ref.offset} bytes)"))
                    elif cfg["on_corrupt"] == "error":
                        raise LogFormatError(res[1] + "; pass --skip-corrupt to skip it", path, ref.offset)
                    else:
                        counts["corrupt"] += 1
                        counts["messages"].append((file_i[i], ref.offset, f"{res[1]}: skipped"))
                    continue
                _, rid, ids, X = res
                labels = np.zeros(len(ids), dtype=np.int8)
                if hi > lo:
                    order = np.argsort(ev_items[lo:hi], kind="stable")
                    items, labs = ev_items[lo:hi][order], ev_labels[lo:hi][order]
                    pos = np.searchsorted(items, ids).clip(0, hi - lo - 1)
                    hit = items[pos] == ids
                    labels[hit] = labs[pos[hit]]
                    matched = int(np.isin(items, ids[hit]).sum())
                    counts["ev_matched"] += matched
                    counts["ev_unknown_item"] += hi - lo - matched
                counts["requests"] += 1
                counts["rows"] += len(ids)
                counts["positives"] += int(np.count_nonzero(labels))
                pending.append((rid, ids, labels, X))
                pending_rows += len(ids)
                if pending_rows >= cfg["batch_rows"]:
                    yield flush()
                    emitted += 1
                    if fail_first:
                        raise RuntimeError("pyfeat.spark fault injection: this attempt fails after its first batch")
        if pending:
            yield flush()
            emitted += 1
        if fail_first:
            raise RuntimeError("pyfeat.spark fault injection: this attempt fails after its output")
    finally:
        for f in files.values():
            f.close()
    counts["messages"] = sorted(counts["messages"])[:50]
    acc.add(counts)


def _attempt() -> int:
    from pyspark import TaskContext

    tc = TaskContext.get()
    return tc.attemptNumber() if tc is not None else 0


# ---------------------------------------------------------- repeated requests


def _first_records(recs: Any) -> tuple[Any, Any]:
    """(the first record of each request id, by (file, offset); the later
    ones, each with ``same``: its header equals the first's, payload length
    and CRC-32, and the first's ``first_path``, ``first_offset``). A window
    per request id, in Spark: the ids never reach the driver."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy("request_id").orderBy("file", "offset")
    ranked = recs.select(
        *recs.columns, F.row_number().over(w).alias("copy"),
        *(F.first(c).over(w).alias(f"first_{c}") for c in ("path", "offset", "length", "crc")))
    first = ranked.filter(F.col("copy") == 1).select(*recs.columns)
    same = (F.col("length") == F.col("first_length")) & (F.col("crc") == F.col("first_crc"))
    repeats = ranked.filter(F.col("copy") > 1).withColumn("same", same)
    return first, repeats


# -------------------------------------------------------------------- events


def _events_by_request(spark: Any, events: Any, n_rows: list[int]) -> tuple[Any, int]:
    """(one row per request id: ``ev`` = its distinct (item_id, label) pairs,
    number of event rows with a malformed request id); raises DatasetError
    for a bad file as the CLI does."""
    from pyspark.sql import DataFrame
    from pyspark.sql import functions as F

    if isinstance(events, DataFrame):
        df, what = events, "events DataFrame"
    else:
        path = str(events)
        fs, hp = _jvm_fs(spark, path)
        if not fs.exists(hp):
            raise DatasetError(f"events file not found: {path}")
        if fs.getFileStatus(hp).isDirectory():
            raise DatasetError(f"events file is a directory: {path}")
        df = spark.read.option("header", True).option("inferSchema", False).csv(path)
        df = df.toDF(*[c.strip().lstrip("\ufeff") for c in df.columns])
        what = f"events file {path}"
        header = ",".join(df.columns)
        missing = [c for c in ("request_id", "item_id", "event") if c not in df.columns]
        if missing:
            raise DatasetError(
                f"{what}: the header line must name the columns request_id,item_id,event "
                f"(missing: {', '.join(missing)}; found: {header[:200]!r})"
            )
    missing = [c for c in ("request_id", "item_id", "event") if c not in df.columns]
    if missing:
        raise DatasetError(f"{what}: no column {', '.join(missing)} (columns: {', '.join(df.columns)})")
    raw_item = F.col("item_id")
    item = raw_item.cast("string").try_cast("long") if dict(df.dtypes)["item_id"] == "string" else raw_item.try_cast("long")
    ev = df.select(F.col("request_id").cast("string").alias("request_id"), raw_item.cast("string").alias("raw_item"),
                   item.alias("item_id"), F.col("event").cast("string").alias("event"))
    label = F.when(F.col("event") == "click", F.lit(LABELS["click"])).when(
        F.col("event") == "contact", F.lit(LABELS["contact"]))
    ev = ev.withColumn("label", label.cast("byte"))
    bad_item = F.col("item_id").isNull()
    bad_event = F.col("label").isNull()
    malformed = F.coalesce(F.length("request_id"), F.lit(0)) != _ID_LEN
    check = ev.agg(F.count(F.when(bad_item, 1)).alias("bad_item"), F.count(F.when(bad_event, 1)).alias("bad_event"),
                   F.count(F.when(malformed, 1)).alias("malformed"), F.count(F.lit(1)).alias("n")).collect()[0]
    n_rows.append(int(check["n"]))
    if check["bad_item"] or check["bad_event"]:
        row = ev.filter(bad_item | bad_event).limit(1).collect()[0]
        if row["item_id"] is None:
            if row["raw_item"] is None or row["raw_item"] == "":
                raise DatasetError(f"{what}: item_id is empty (request_id {row['request_id']!r})")
            raise DatasetError(f"{what}: item_id {row['raw_item']!r} is not an integer (request_id {row['request_id']!r})")
        raise DatasetError(f"{what}: event {row['event']!r} is not one of {sorted(LABELS)} "
                           f"(request_id {row['request_id']!r})")
    pairs = ev.filter(~malformed).groupBy("request_id", "item_id").agg(F.max("label").alias("label"))
    by_request = pairs.groupBy("request_id").agg(
        F.collect_list(F.struct("item_id", "label")).alias("ev"))
    return by_request, int(check["malformed"])


# --------------------------------------------------------------------- build


def _write_metadata(spark: Any, out: str, names: list[str], spec: str, cat_names: list[str]) -> None:
    """``out/_common_metadata``: a schema-only Parquet footer with pyfeat's
    key-value metadata, through a temporary name and a rename in ``out``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_metadata(_schema(names, spec, cat_names), sink)
    data = sink.getvalue().to_pybytes()
    fs, dir_path = _jvm_fs(spark, out)
    jvm = spark.sparkContext._jvm
    final = jvm.org.apache.hadoop.fs.Path(dir_path, METADATA_FILE)
    tmp = jvm.org.apache.hadoop.fs.Path(dir_path, f"_{METADATA_FILE}.{uuid.uuid4().hex}.tmp")
    stream = fs.create(tmp, True)
    try:
        stream.write(bytearray(data))
    finally:
        stream.close()
    if fs.exists(final):
        fs.delete(final, False)
    if not fs.rename(tmp, final):
        fs.delete(tmp, False)
        raise OSError(f"cannot rename {tmp.toString()} to {final.toString()}")


def _check_output(spark: Any, out: str, logs: list[tuple[str, int]], events: Any) -> str:
    fs, hp = _jvm_fs(spark, out)
    qualified = _local_or_uri(fs.makeQualified(hp).toString()).rstrip("/")
    inside = [p for p, _ in logs if p == qualified or p.startswith(qualified + "/")]
    if isinstance(events, (str, os.PathLike)):
        efs, ehp = _jvm_fs(spark, str(events))
        ep = _local_or_uri(efs.makeQualified(ehp).toString())
        if ep == qualified or ep.startswith(qualified + "/"):
            inside.append(ep)
    if inside:
        raise DatasetError(f"the output {out} would replace {inside[0]} (an input): write elsewhere")
    if fs.exists(hp) and not fs.getFileStatus(hp).isDirectory():
        raise DatasetError(f"the output {out} is a file; Spark writes a directory")
    return qualified


def _python_error(e: BaseException) -> tuple[str, str] | None:
    """(exception class, message) of the Python exception that failed a task,
    from the text Spark relays."""
    m = re.search(r"pyfeat\.\w+\.(\w+Error): (.*)", str(e))
    return (m.group(1), m.group(2).strip()) if m else None


def build_dataset_spark(
    spark: Any,
    logs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    events: Any = None,
    *,
    on_corrupt: str = "error",
    split_bytes: int = SPLIT_BYTES,
    threads: int = 1,
    echo: Callable[[str], None] | None = None,
) -> DatasetStats:
    """Build the training dataset of ``pyfeat dataset`` on Spark (see the
    module docstring).

    Args:
        spark: a classic ``SparkSession`` (not Spark Connect: the driver lists
            files through the JVM).
        logs: request log paths or globs, in any file system Spark reads.
        out: the output directory (replaced as a whole by a successful run).
        events: a path to an events CSV in the CLI's format, a Spark
            DataFrame with columns ``request_id, item_id, event``, or
            ``None`` (every label 0).
        on_corrupt: ``"error"`` or ``"skip"``, as for ``pyfeat dataset``.
        split_bytes: bytes of log per scan task (a larger file is split).
        threads: Go feature threads per Python worker (Spark already runs
            one worker per task slot).
        echo: where to print the one-line notes.

    Returns:
        A :class:`pyfeat.dataset.DatasetStats` (``workers`` = the number of
        replay tasks).

    Raises:
        DatasetError, LogFormatError: as ``pyfeat dataset``; a corrupt
            record found by the header scan raises before anything is
            written; one found by its payload checksum fails the job
            (after Spark's task retries), and the output directory is then
            left without ``_common_metadata`` (not a dataset).
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, ByteType, LongType, StructField, StructType

    from ._engine import categorical_feature_names, feature_names, spec_hash

    t0 = time.perf_counter()
    if on_corrupt not in ("error", "skip"):
        raise ValueError(f"on_corrupt must be 'error' or 'skip', got {on_corrupt!r}")
    if split_bytes < 1:
        raise ValueError(f"split_bytes must be >= 1, got {split_bytes}")
    out = str(out)
    stats = DatasetStats(out=out)
    files = _list_logs(spark, logs)
    _check_output(spark, out, files, events)
    stats.log_bytes = sum(size for _, size in files)
    names = feature_names()  # the driver may load the library: PySpark's workers are not forked from it
    cat_names = categorical_feature_names()
    spec = spec_hash()
    sc = spark.sparkContext

    # 1. Scan the record headers, one task per split; cache the index.
    splits = [(i, p, a, min(a + split_bytes, size)) for i, (p, size) in enumerate(files)
              for a in range(0, max(size, 1), split_bytes)]
    split_df = spark.createDataFrame(sc.parallelize(splits, len(splits)),
                                     "file int, path string, start long, stop long")
    index = split_df.mapInArrow(lambda it: _scan_batches(it, on_corrupt), _INDEX_DDL)
    index = index.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        diag = index.filter(F.col("kind") != "rec").collect()
        diag.sort(key=lambda r: (r["file"], r["offset"], r["kind"] != "error", r["n"] or 0))
        errors = [r for r in diag if r["kind"] == "error"]
        for r in diag:
            if r["kind"] == "warn" and (not errors or (r["file"], r["offset"]) < (errors[0]["file"], errors[0]["offset"])):
                warnings.warn(r["message"], RequestLogWarning, 2)
        if errors:
            raise LogFormatError(errors[0]["message"], errors[0]["path"], errors[0]["offset"])
        stat_rows = [r for r in diag if r["kind"] == "stat"]
        n_records = sum(r["n"] for r in stat_rows)
        stats.tail_bytes_skipped = sum(r["tail"] for r in stat_rows)
        corrupt_regions = sum(r["regions"] for r in stat_rows)
        stats.corrupt_bytes_skipped = sum(r["region_bytes"] for r in stat_rows)
        if n_records == 0:
            raise DatasetError(f"no request in {', '.join(p for p, _ in files)}: nothing to write")

        # 2. Repeated request ids: the first record of each (file, then
        # offset) is kept, as the CLI does; only counts and the first
        # repeat of each kind reach the driver.
        recs, repeats = _first_records(index.filter(F.col("kind") == "rec").select(
            "request_id", "file", "path", "offset", "length", "crc", "is_last"))
        summary = repeats.agg(F.count(F.when(F.col("same"), 1)).alias("identical"),
                              F.count(F.when(~F.col("same"), 1)).alias("conflicting")).collect()[0]
        stats.duplicate_records = int(summary["identical"])
        stats.conflicting_records = int(summary["conflicting"])
        firsts: dict[bool, Repeat] = {}
        for same, n in ((True, stats.duplicate_records), (False, stats.conflicting_records)):
            if n:
                r = repeats.filter(F.col("same") == same).orderBy("file", "offset").limit(1).collect()[0]
                firsts[same] = (r["request_id"], r["path"], r["offset"], r["first_path"], r["first_offset"])
        if stats.conflicting_records and on_corrupt == "error":
            raise conflict_error(firsts[False])
        # Warned before the replay's warnings, as the CLI does.
        repeat_warning: tuple[int, Repeat | None, Repeat | None] = (n_records, firsts.get(True), firsts.get(False))

        # Events: one row per request, joined to the index.
        ev_type = ArrayType(StructType([StructField("item_id", LongType()), StructField("label", ByteType())]))
        malformed = 0
        if events is None:
            stats.notes.append("no events file: every label is 0")
            joined = recs.withColumn("ev", F.lit(None).cast(ev_type))
        else:
            n_rows: list[int] = []
            by_request, malformed = _events_by_request(spark, events, n_rows)
            joined = recs.join(by_request, "request_id", "full_outer")

        # 3. Replay: contiguous stretches of the logs, one per split that has records.
        n_tasks = max(1, sum(1 for r in stat_rows if r["n"]))
        stats.workers = n_tasks
        joined = joined.repartitionByRange(n_tasks, "file", "offset").sortWithinPartitions("file", "offset")
        acc = sc.accumulator(_Counts.zero(), _accumulator_param())
        batch_rows = int(spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch", "10000"))
        cfg = dict(names=names, cat_names=cat_names, threads=threads, on_corrupt=on_corrupt, fault=_FAULT,
                   batch_rows=max(1, batch_rows))
        out_type = StructType(
            [StructField("request_id", joined.schema["request_id"].dataType, False),
             StructField("item_id", LongType(), False), StructField("label", ByteType(), False)]
            + [StructField(n, _float_type(), True) for n in names]
            + [StructField(n, LongType(), True) for n in cat_names])
        rows = joined.mapInArrow(lambda it: _replay_batches(it, cfg, acc), out_type)

        # 4. Write through Spark's commit protocol, then the metadata.
        try:
            rows.write.mode("overwrite").option("compression", "zstd").parquet(out)
        except Exception as e:
            err = _python_error(e)
            if err is None:
                raise
            kind, message = err
            if kind == "LogFormatError":
                m = re.match(r"(.*): corrupt record at byte offset (\d+)", message)
                raise LogFormatError(message, m.group(1) if m else None, int(m.group(2)) if m else None) from None
            raise DatasetError(f"a replay task failed: {kind}: {message}") from None
    finally:
        index.unpersist()

    c = acc.value
    for _, _, message in c["messages"]:
        warnings.warn(message, RequestLogWarning, 2)
    stats.requests, stats.rows, stats.positives = c["requests"], c["rows"], c["positives"]
    stats.failed_requests = c["failed"]
    stats.tail_bytes_skipped += c["tail"]
    stats.corrupt_records = corrupt_regions + c["corrupt"]
    warn_repeated_records(stats, *repeat_warning)
    if stats.failed_requests:
        warnings.warn(
            f"skipped {stats.failed_requests} logged request(s) that the feature library rejects "
            f"(they were not served either); first: {c['failed_first'][2]}",
            DatasetWarning, 2,
        )
    if stats.requests == 0:
        _delete(spark, out)
        what = "no request" if not stats.failed_requests else "no request that the library accepts"
        raise DatasetError(f"{what} in {', '.join(p for p, _ in files)}: nothing to write")
    stats.events = c["ev_pairs"] + malformed
    stats.events_matched = c["ev_matched"]
    stats.events_unknown_request = c["ev_unknown_req_pairs"] + malformed
    stats.unknown_request_ids = c["ev_unknown_req_ids"] + (1 if malformed else 0)
    stats.events_unknown_item = c["ev_unknown_item"]
    warn_unmatched_events(stats, stats.events, c["examples"])
    _write_metadata(spark, out, names, spec, cat_names)
    stats.seconds = time.perf_counter() - t0
    if echo is not None:
        for note in stats.notes:
            echo(note)
    return stats


def _float_type() -> Any:
    from pyspark.sql.types import FloatType

    return FloatType()


def _delete(spark: Any, out: str) -> None:
    fs, hp = _jvm_fs(spark, out)
    fs.delete(hp, True)


def spark_session(master: str, *, progress: bool = True, conf: dict[str, str] | None = None) -> tuple[Any, bool]:
    """(session, created) for ``pyfeat dataset --spark MASTER``: the active
    session if this process has one (``created`` False: the caller must not
    stop it), else a new one whose Python workers run this interpreter."""
    import sys

    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    b = SparkSession.builder.master(master).appName("pyfeat dataset")
    settings = {
        "spark.pyspark.python": sys.executable,
        "spark.ui.showConsoleProgress": "true" if progress else "false",
        "spark.sql.shuffle.partitions": str(max(2, (os.cpu_count() or 1) * 2)),
    }
    settings.update(conf or {})
    for k, v in settings.items():
        b = b.config(k, v)
    return b.getOrCreate(), True
