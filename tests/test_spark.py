"""pyfeat.spark: the dataset built on a real local Spark equals the CLI's,
bit for bit; damaged logs, failed task attempts, the fork guard."""

from __future__ import annotations

import os
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

pytest.importorskip("pyspark")

import pyfeat  # noqa: E402
from pyfeat import cli  # noqa: E402
from pyfeat import spark as pfs  # noqa: E402
from pyfeat.dataset import DatasetError, build_dataset, read_metadata  # noqa: E402
from pyfeat.requestlog import REC_HEADER_SIZE, LogFormatError, RequestLog, scan_log  # noqa: E402
from pyfeat.synth import Marketplace  # noqa: E402
from shared import log_records, record_id, with_request_id, write_records  # noqa: E402

N_CANDIDATES = 100
SPLIT = 150_000  # bytes per scan task: every log here spans two or three
UNKNOWN_RID = "019a6f0e-3b1c-7000-9a41-5d0c8e2f7b11"


@pytest.fixture(scope="session")
def spark():
    """One local Spark for the whole run: 2 cores, a task may fail 3 times
    (local[2,4]), no UI. Its Python workers run this interpreter."""
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2,4]")
        .appName("pyfeat tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.memory", "1g")
        .config("spark.pyspark.python", sys.executable)
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    """Three logs (one with a torn tail, one with a damaged record header and
    one with a damaged payload, mid-file; a request of the first copied into
    the second, mid-file, and one of the third logged twice in it) and an
    events file with events of unknown requests, unknown items and a
    malformed id."""
    world = Marketplace(23, n_items=2000, n_users=200)
    d = tmp_path_factory.mktemp("spark_logs")
    paths, events = [], []
    for k, n in enumerate((5, 7, 4)):
        p = d / f"requests-{k}.log"
        with RequestLog(p) as log:
            for i in range(n):
                req = world.request(100 * k + i, N_CANDIDATES)
                rid = log.append(req.user_blob, req.item_blobs, req.candidates)
                clicks, contacts = world.feedback(req)
                ids = req.item_ids
                events += [(rid, int(ids[j]), "click") for j in np.flatnonzero(clicks)]
                events += [(rid, int(ids[j]), "contact") for j in np.flatnonzero(contacts)]
                if i == 1:
                    events += [(rid, 999_999_999, "click"), (rid, int(ids[0]), "click")]
        paths.append(p)
    events += [(UNKNOWN_RID, 5, "click"), (UNKNOWN_RID, 6, "contact"), ("not-a-request-id", 7, "click")]
    # The same request twice: file 0's second request (it has events) copied
    # into file 1 (a rotation mishap), file 2's first logged again at its
    # end (a retried write). Identical bytes: each is used once.
    (h0, r0), (h1, r1), (h2, r2) = (log_records(p) for p in paths)
    write_records(paths[1], h1, r1[:3] + [r0[1]] + r1[3:])
    write_records(paths[2], h2, r2 + [r2[0]])
    offs = [[r.offset for r in scan_log(p)] for p in paths]
    data = [bytearray(p.read_bytes()) for p in paths]
    data[0] = data[0][: offs[0][-1] + REC_HEADER_SIZE + 50]  # torn tail
    data[1][offs[1][4] + 7] ^= 0x5A  # a record header, mid-file
    data[2][offs[2][2] + REC_HEADER_SIZE + 99] ^= 0x5A  # a payload, mid-file
    for p, b in zip(paths, data):
        p.write_bytes(bytes(b))
    ev = d / "events.csv"
    with open(ev, "w") as f:
        f.write("request_id,item_id,event,ts\n")
        for rid, item, event in events:
            f.write(f"{rid},{item},{event},0\n")
    assert all(os.path.getsize(p) > SPLIT for p in paths), [os.path.getsize(p) for p in paths]
    return dict(dir=d, paths=[str(p) for p in paths], events=str(ev), rows=events, offs=offs, world=world,
                repeated=[record_id(r0[1]), record_id(r2[0])])


def run_capturing(fn, *args, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fn(*args, **kw)
    return res, sorted(str(w.message) for w in caught if issubclass(w.category, (UserWarning,))
                       and "pandas" not in str(w.message))


@pytest.fixture(scope="module")
def cli_out(logs):
    out = logs["dir"] / "cli.parquet"
    stats, texts = run_capturing(build_dataset, logs["paths"], out, logs["events"], workers=0,
                                 on_corrupt="skip", progress=False)
    return out, stats, texts


def sorted_table(path):
    t = pq.read_table(path)
    return t.sort_by([("request_id", "ascending"), ("item_id", "ascending")])


def assert_same_dataset(spark_dir, cli_file):
    """Rows sorted by (request_id, item_id): every column equal bit for bit
    (float32 compared as their bits, so NaNs too); same column types; same
    pyfeat metadata."""
    a, b = sorted_table(cli_file), sorted_table(spark_dir)
    assert a.num_rows == b.num_rows
    assert a.column_names == b.column_names
    assert [f.type for f in a.schema] == [f.type for f in b.schema]
    keys = list(zip(a.column("request_id").to_pylist(), a.column("item_id").to_pylist()))
    assert len(set(keys)) == len(keys)  # the sort order is total: no (request, item) twice
    for name in a.column_names:
        x, y = a.column(name).to_numpy(), b.column(name).to_numpy()
        if x.dtype == np.float32:
            x, y = x.view(np.uint32), y.view(np.uint32)
        assert np.array_equal(x, y), name
    assert read_metadata(spark_dir) == read_metadata(cli_file)
    want = pq.read_schema(cli_file).metadata
    got = pq.read_schema(Path(spark_dir) / pfs.METADATA_FILE).metadata
    assert {k: v for k, v in got.items() if k.startswith(b"pyfeat_")} == {
        k: v for k, v in want.items() if k.startswith(b"pyfeat_")}


STAT_FIELDS = ("requests", "rows", "positives", "failed_requests", "events", "events_matched",
               "events_unknown_request", "unknown_request_ids", "events_unknown_item", "tail_bytes_skipped",
               "corrupt_records", "corrupt_bytes_skipped", "duplicate_records", "conflicting_records")


def test_spark_equals_cli_bit_for_bit(spark, logs, cli_out, tmp_path):
    """Done-when: several logs, each larger than the split size, a torn
    tail, a corrupt header and a corrupt payload (skipped, as the CLI with
    --skip-corrupt), events of unknown requests and items: same rows, same
    counts, same warnings."""
    cli_file, cli_stats, cli_texts = cli_out
    assert cli_stats.corrupt_records == 2 and cli_stats.tail_bytes_skipped > 0
    assert cli_stats.events_unknown_request > 3 and cli_stats.events_unknown_item > 0  # incl. skipped records
    out = tmp_path / "ds"
    stats, texts = run_capturing(pfs.build_dataset_spark, spark, logs["paths"], str(out), logs["events"],
                                 on_corrupt="skip", split_bytes=SPLIT)
    assert stats.workers > len(logs["paths"])  # the files were split
    assert_same_dataset(out, cli_file)  # rows once: no (request, item) twice
    assert cli_stats.duplicate_records == 2
    assert sum(1 for t in cli_texts if "repeat a request id already read" in t) == 1
    for f in STAT_FIELDS:
        assert getattr(stats, f) == getattr(cli_stats, f), f
    assert texts == cli_texts
    # A rerun replaces the output as a whole: still one copy of every row.
    pfs.build_dataset_spark(spark, logs["paths"], str(out), logs["events"], on_corrupt="skip", split_bytes=SPLIT * 3)
    assert_same_dataset(out, cli_file)


def test_a_task_failing_on_its_first_attempt_leaves_every_row_once(spark, logs, cli_out, tmp_path, monkeypatch):
    """Done-when: every replay task fails once, after emitting rows (a
    worker raising on attemptNumber() 0); Spark retries them, its commit
    protocol drops the failed attempts' files. Events from a DataFrame."""
    monkeypatch.setattr(pfs, "_FAULT", "compute")
    ev = spark.createDataFrame(logs["rows"], "request_id string, item_id long, event string")
    out = tmp_path / "ds"
    stats = pfs.build_dataset_spark(spark, logs["paths"], str(out), ev, on_corrupt="skip", split_bytes=SPLIT)
    cli_file, cli_stats, _ = cli_out
    assert_same_dataset(out, cli_file)
    for f in STAT_FIELDS:  # the failed attempts' counts are dropped too
        assert getattr(stats, f) == getattr(cli_stats, f), f


def test_a_request_id_with_different_contents_as_in_the_cli(spark, logs, tmp_path):
    """Two different records under one request id: the CLI's error (the id
    and both places) before anything is written; with on_corrupt="skip"
    the CLI's dataset (the first record kept), counts and warnings."""
    world = logs["world"]
    paths = [tmp_path / "a.log", tmp_path / "b.log"]
    rids = []
    for k, p in enumerate(paths):
        with RequestLog(p) as log:
            for i in range(3):
                req = world.request(1000 + 10 * k + i, N_CANDIDATES)
                rids.append(log.append(req.user_blob, req.item_blobs, req.candidates))
    header, recs = log_records(paths[1])
    write_records(paths[1], header, [recs[0], with_request_id(recs[1], rids[1]), recs[1], recs[2]])
    ev = tmp_path / "events.csv"
    ev.write_text(f"request_id,item_id,event\n{rids[1]},{world.request(1001, N_CANDIDATES).item_ids[0]},click\n")
    cli_file, out = tmp_path / "cli.parquet", tmp_path / "ds"
    with pytest.raises(DatasetError) as want:
        build_dataset(paths, cli_file, ev, workers=0, progress=False)
    with pytest.raises(DatasetError) as got:
        pfs.build_dataset_spark(spark, [str(p) for p in paths], str(out), str(ev), split_bytes=SPLIT)
    assert str(got.value) == str(want.value)
    assert f"request id {rids[1]} is logged twice with different contents" in str(got.value)
    assert not out.exists()
    cli_stats, cli_texts = run_capturing(build_dataset, paths, cli_file, ev, workers=0, on_corrupt="skip",
                                         progress=False)
    stats, texts = run_capturing(pfs.build_dataset_spark, spark, [str(p) for p in paths], str(out), str(ev),
                                 on_corrupt="skip", split_bytes=SPLIT)
    assert (cli_stats.conflicting_records, cli_stats.requests, cli_stats.events_matched) == (1, 6, 1)
    assert_same_dataset(out, cli_file)
    for f in STAT_FIELDS:
        assert getattr(stats, f) == getattr(cli_stats, f), f
    assert texts == cli_texts and any("with different contents" in t for t in texts)


def test_corrupt_records_are_errors_as_in_the_cli(spark, logs, tmp_path):
    """A corrupt record header fails before anything is written (an earlier
    output stays as it was); a corrupt payload fails the job; both with the
    CLI's message, file and offset."""
    out = tmp_path / "ds"
    good = [logs["paths"][0]]
    pfs.build_dataset_spark(spark, good, str(out), split_bytes=SPLIT)
    before = sorted(os.listdir(out))
    for bad in logs["paths"][1:]:
        with pytest.raises(LogFormatError) as want:
            build_dataset([bad], tmp_path / "cli.parquet", workers=0, progress=False)
        with pytest.raises(LogFormatError) as got:
            pfs.build_dataset_spark(spark, [bad], str(out), split_bytes=SPLIT)
        assert (str(got.value), got.value.path, got.value.offset) == (
            str(want.value), want.value.path, want.value.offset)
        if bad == logs["paths"][1]:  # found by the header scan: the output was not touched
            assert sorted(os.listdir(out)) == before
    assert not (out / pfs.METADATA_FILE).exists()  # the payload's failed job: not a dataset
    with pytest.raises(DatasetError, match="without _common_metadata"):
        read_metadata(out)


def test_inputs_are_checked(spark, logs, tmp_path):
    with pytest.raises(DatasetError, match="request log not found"):
        pfs.build_dataset_spark(spark, [str(tmp_path / "nope-*.log")], str(tmp_path / "o"))
    with pytest.raises(DatasetError, match="would replace"):
        pfs.build_dataset_spark(spark, logs["paths"][:1], str(logs["dir"]))
    bad = tmp_path / "bad.csv"
    bad.write_text("request_id,item_id,event\nabc,12,click\nabc,12,like\n")
    with pytest.raises(DatasetError, match="event 'like' is not one of"):
        pfs.build_dataset_spark(spark, logs["paths"][:1], str(tmp_path / "o"), str(bad))
    bad.write_text("request_id,item\nabc,12\n")
    with pytest.raises(DatasetError, match="missing: item_id, event"):
        pfs.build_dataset_spark(spark, logs["paths"][:1], str(tmp_path / "o"), str(bad))


def test_cli_spark_and_train_read_the_directory(spark, logs, cli_out, tmp_path, capsys):
    """`pyfeat dataset --spark MASTER` (in a process with a session: it uses
    it and leaves it running) and `pyfeat train` on its directory."""
    out = tmp_path / "ds"
    args = ["dataset", "--requests", *logs["paths"], "--events", logs["events"], "--out", str(out),
            "--skip-corrupt", "--no-progress", "--spark", "local[2]", "--split-mb", "1"]
    assert cli.main(args) == 0
    printed = capsys.readouterr()
    assert "Spark replay task(s) on local[2]" in printed.out
    assert re.search(r"pyfeat dataset: warning: \d+ of \d+ events refer to", printed.err)
    assert "pandas" not in printed.err  # other libraries' FutureWarnings are not pyfeat's to print
    assert_same_dataset(out, cli_out[0])
    assert not spark.sparkContext._jsc.sc().isStopped()
    model = tmp_path / "m.cbm"
    assert cli.main(["train", "--data", str(out), "--out", str(model), "--iterations", "5", "--valid-fraction",
                     "0.3"]) == 0
    assert model.exists()


def test_spark_workers_never_hit_the_fork_guard(spark):
    """Done-when: PySpark's daemon, which forks the workers, never has the
    library mapped, after the builds above too (their workers loaded it
    themselves: a worker forked after a load would have raised ForkError);
    and a real fork after the load in a worker is refused by the guard
    (ForkError in the child)."""
    assert pyfeat.feature_names()  # the driver has it loaded: allowed

    # Defined here so that it is pickled by value (the workers cannot
    # import this test module).
    def _worker_probe(batches):
        """Runs in a PySpark worker: what is loaded where, and whether a real
        fork after loading is refused by the guard."""
        import pyarrow as pa

        from pyfeat import _native

        def maps(pid):
            with open(f"/proc/{pid}/maps") as f:
                return "libpyfeat.so" in f.read()

        before = maps("self")
        parent_before = maps(os.getppid())
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as f:
            parent_cmd = f.read().replace(b"\0", b" ").decode()
        _native.lib()  # loads it here if this worker has not yet
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                _native.lib().pf_abi_version()
                os._exit(1)
            except pyfeat.ForkError:
                os._exit(42)
            except BaseException:
                os._exit(2)
        _, status = os.waitpid(pid, 0)
        for b in batches:
            n = b.num_rows
            yield pa.RecordBatch.from_pydict({
                "pid": [os.getpid()] * n, "loaded_before": [before] * n, "parent_loaded": [parent_before] * n,
                "parent_loaded_after": [maps(os.getppid())] * n, "parent_cmd": [parent_cmd] * n,
                "loaded_after": [maps("self")] * n, "child_exit": [os.waitstatus_to_exitcode(status)] * n,
            })

    rows = spark.range(0, 8, numPartitions=4).mapInArrow(
        _worker_probe, "pid long, loaded_before boolean, parent_loaded boolean, parent_loaded_after boolean, "
        "parent_cmd string, loaded_after boolean, child_exit long").collect()
    assert rows
    for r in rows:
        assert "pyspark.daemon" in r["parent_cmd"] or "pyspark/daemon" in r["parent_cmd"], r["parent_cmd"]
        assert not r["parent_loaded"] and not r["parent_loaded_after"]
        assert r["loaded_after"]
        assert r["child_exit"] == 42


_UNDER_LIMIT = """
import resource, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))  # as PySpark does for spark.executor.pyspark.memory
from pyfeat import spark as pfs
from pyfeat.dataset import DatasetError
try:
    next(pfs._replay_batches(iter([]), {}, None))
except DatasetError as e:
    loaded = "libpyfeat.so" in open("/proc/self/maps").read()
    print("refused", "loaded" if loaded else "not loaded", e)
    sys.exit(0)
except (StopIteration, KeyError):  # the check passed: the task went on to its configuration
    pass
import pyfeat
from pyfeat.synth import Marketplace
req = Marketplace(0).request(0, 3000)
X = pyfeat.FeatureEngine().compute_all(req.user_blob, list(req.item_blobs), req.candidates)
print("computed", X[0].shape)
"""


@pytest.mark.parametrize("limit, expect", [(1 << 30, "refused"), (2 << 30, "refused"),
                                           (pfs.MIN_ADDRESS_SPACE, "computed")])
def test_an_address_space_limit_is_an_error_before_the_library_loads(limit, expect):
    """spark.executor.pyspark.memory limits a worker's address space
    (RLIMIT_AS); with 1g or 2g the Go runtime aborted PySpark's worker as
    the library loaded (measured; a bare process aborts at 1 GiB). A replay
    task refuses a limit under MIN_ADDRESS_SPACE with a DatasetError naming
    the setting, before loading the library; at MIN_ADDRESS_SPACE the
    library loads and computes a 3000-candidate request."""
    import subprocess

    r = subprocess.run([sys.executable, "-c", _UNDER_LIMIT, str(limit)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.startswith(expect), r.stdout + r.stderr[-2000:]
    if expect == "refused":
        assert "not loaded" in r.stdout and "spark.executor.pyspark.memory" in r.stdout
    else:
        assert "(3000, 77)" in r.stdout
