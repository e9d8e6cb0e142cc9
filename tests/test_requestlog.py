"""RequestLog: framing, request ids, torn and corrupt tails, threads."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid
import warnings

import msgpack
import numpy as np
import pytest

import pyfeat
from pyfeat.requestlog import (
    FILE_HEADER_SIZE,
    REC_HEADER_SIZE,
    LogFormatError,
    ReadStats,
    RequestLog,
    RequestLogWarning,
    iter_requests,
    request_id_time,
    scan_log,
)

from conftest import base_item, base_user, run_in_threads


def make_request(r: int, n: int = 5, candidates: bool = True):
    user = msgpack.packb(base_user(user_id=r, now=base_user()["now"] + 60 * r))
    items = [msgpack.packb(base_item(i + r, title=f"item {i} of {r}")) for i in range(n)]
    cands = None
    if candidates:
        cands = {"source": np.arange(n) % 8, "source_score": np.linspace(0, 1, n) + r, "source_rank": np.arange(n)}
    return user, items, cands


def write_log(path, n_requests: int = 4, n_items: int = 5):
    ids, reqs = [], []
    with RequestLog(path) as log:
        for r in range(n_requests):
            req = make_request(r, n_items)
            ids.append(log.append(*req))
            reqs.append(req)
    return ids, reqs


def read_all(path, **kw):
    return list(iter_requests(path, **kw))


def record_offsets(path):
    return [ref.offset for ref in scan_log(path)]


def assert_same_request(rec, req):
    user, items, cands = req
    assert rec.user == user
    assert rec.item_blobs() == items
    assert rec.items.blob == b"".join(items)
    if cands is None:
        assert rec.candidate_dict() is None
    else:
        got = rec.candidate_dict()
        assert got["source"].dtype == np.int64 and got["source_rank"].dtype == np.int64
        assert got["source_score"].dtype == np.float64
        for k in cands:
            assert np.array_equal(got[k], np.asarray(cands[k])), k


def test_roundtrip_bytes_dicts_and_missing_candidates(tmp_path):
    path = tmp_path / "r.log"
    user, items, cands = make_request(0)
    with RequestLog(path) as log:
        a = log.append(user, items, cands)
        b = log.append(base_user(), [base_item(0), base_item(1)])  # dicts, no candidates
        c = log.append(user, items, {"source_score": [0.5] * 5})  # some candidate arrays only
        d = log.append(user, [], None)  # an empty candidate list
    recs = read_all(path)
    assert [r.request_id for r in recs] == [a, b, c, d]
    assert_same_request(recs[0], (user, items, cands))
    assert recs[1].user == msgpack.packb(base_user(), use_bin_type=True)
    assert [msgpack.unpackb(x, strict_map_key=False)["id"] for x in recs[1].item_blobs()] == [1000, 1001]
    assert recs[1].candidate_dict() is None
    assert set(recs[2].candidate_dict()) == {"source_score"}
    assert len(recs[3]) == 0 and recs[3].items.offsets.tolist() == [0]


def test_replayed_request_computes_identical_features(tmp_path, engine):
    path = tmp_path / "r.log"
    req = make_request(3, 40)
    with RequestLog(path) as log:
        log.append(*req)
    (rec,) = read_all(path)
    want = engine.compute(*req)
    got = engine.compute(rec.user, rec.item_blobs(), rec.candidate_dict())
    assert got.tobytes() == want.tobytes()


def test_request_ids_are_uuid7_increasing_and_timed(tmp_path):
    t0 = time.time()
    with RequestLog(tmp_path / "a.log") as a, RequestLog(tmp_path / "b.log") as b:
        ids = [log.append(*make_request(i, 1)) for i in range(300) for log in (a, b)]
    t1 = time.time()
    assert len(set(ids)) == len(ids)
    for rid in ids:
        u = uuid.UUID(rid)
        assert u.version == 7 and u.variant == uuid.RFC_4122 and str(u) == rid
        assert t0 - 0.002 <= request_id_time(rid) <= t1 + 0.002 + 0.0041 * 300  # counter overflow bumps ms
    for log_ids in (ids[0::2], ids[1::2]):  # one writer: strictly increasing, as strings too
        assert log_ids == sorted(log_ids) and len(set(log_ids)) == len(log_ids)


def test_append_prepared_writes_buffers_as_they_are(tmp_path):
    from pyfeat._inputs import PreparedRequest

    req = PreparedRequest(*make_request(1, 7))
    with RequestLog(tmp_path / "r.log") as log:
        rid = log.append_prepared(req)
    (rec,) = read_all(tmp_path / "r.log")
    assert rec.request_id == rid
    assert rec.user == req.user and rec.items.blob == req.items.blob
    assert np.array_equal(rec.items.offsets, req.items.offsets)
    assert rec.prepared().items is rec.items


def test_ranker_logs_as_it_serves(tmp_path, small_model_json, engine):
    req = make_request(2, 30)
    ranker = pyfeat.Ranker(small_model_json)
    with RequestLog(tmp_path / "r.log") as log:
        res = ranker.rank(*req, log=log)
        res2 = ranker.rank(*req, log=log)
    order, scores = res
    assert res.request_id != res2.request_id
    recs = read_all(tmp_path / "r.log")
    assert [r.request_id for r in recs] == [res.request_id, res2.request_id]
    assert_same_request(recs[0], req)


def test_torn_tail_is_skipped_with_a_warning(tmp_path):
    path = tmp_path / "r.log"
    ids, reqs = write_log(path, 3)
    full = path.read_bytes()
    last = record_offsets(path)[-1]
    for cut in (last + 1, last + REC_HEADER_SIZE - 1, last + REC_HEADER_SIZE + 3, len(full) - 1):
        path.write_bytes(full[:cut])
        with pytest.warns(RequestLogWarning, match=rf"torn tail of {cut - last} bytes at byte offset {last}"):
            recs = read_all(path)
        assert [r.request_id for r in recs] == ids[:2]
        assert_same_request(recs[1], reqs[1])


def test_damaged_tail_is_skipped_with_a_warning(tmp_path):
    path = tmp_path / "r.log"
    ids, _ = write_log(path, 3)
    full = bytearray(path.read_bytes())
    last = record_offsets(path)[-1]
    cases = {
        "payload": (last + REC_HEADER_SIZE + 20, "does not match its checksum"),
        "header": (last + 6, "damaged tail"),
        "request id": (last + 17, "damaged tail"),
    }
    for what, (pos, msg) in cases.items():
        bad = bytearray(full)
        bad[pos] ^= 0xFF
        path.write_bytes(bytes(bad))
        with pytest.warns(RequestLogWarning, match=msg):
            recs = read_all(path)
        assert [r.request_id for r in recs] == ids[:2], what
    # What a crash on some filesystems leaves: the file extended with zeros.
    path.write_bytes(bytes(full) + bytes(5000))
    with pytest.warns(RequestLogWarning, match="damaged tail of 5000 bytes"):
        assert [r.request_id for r in read_all(path)] == ids


def test_corruption_before_the_end_is_an_error_naming_file_and_offset(tmp_path):
    path = tmp_path / "r.log"
    ids, _ = write_log(path, 4)
    full = path.read_bytes()
    offs = record_offsets(path)
    for pos, first_bad in ((offs[1] + REC_HEADER_SIZE + 9, offs[1]), (offs[1] + 5, offs[1])):
        bad = bytearray(full)
        bad[pos] ^= 0x55
        path.write_bytes(bytes(bad))
        with pytest.raises(LogFormatError, match=rf"r\.log: corrupt record at byte offset {first_bad}") as ei:
            read_all(path)
        assert ei.value.offset == first_bad and ei.value.path == str(path)
        stats = ReadStats()
        with pytest.warns(RequestLogWarning, match=f"byte offset {first_bad}"):
            recs = read_all(path, on_corrupt="skip", stats=stats)
        assert [r.request_id for r in recs] == [ids[0], ids[2], ids[3]]
        assert stats.corrupt_records + stats.corrupt_regions == 1


def test_not_a_log_and_empty_files(tmp_path):
    other = tmp_path / "other.bin"
    other.write_bytes(b"PAR1" + bytes(100))
    with pytest.raises(LogFormatError, match="not a pyfeat request log"):
        read_all(other)
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    assert read_all(empty) == []
    with RequestLog(tmp_path / "header_only.log"):
        pass
    assert os.path.getsize(tmp_path / "header_only.log") == FILE_HEADER_SIZE
    assert read_all(tmp_path / "header_only.log") == []
    torn_header = tmp_path / "torn_header.log"
    torn_header.write_bytes((tmp_path / "header_only.log").read_bytes()[:5])
    with pytest.warns(RequestLogWarning, match="torn file header"):
        assert read_all(torn_header) == []


def test_reopen_appends_and_cuts_a_torn_tail(tmp_path):
    path = tmp_path / "r.log"
    ids, _ = write_log(path, 2)
    with RequestLog(path) as log:  # mode "a"
        ids.append(log.append(*make_request(5)))
    assert [r.request_id for r in read_all(path)] == ids
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size - 10)  # a crash in the middle of the last record
    with pytest.warns(RequestLogWarning, match="cutting"):
        log = RequestLog(path)
    with log:
        new = log.append(*make_request(6))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [r.request_id for r in read_all(path)] == ids[:2] + [new]
    with pytest.raises(FileExistsError):
        RequestLog(path, "x")
    with RequestLog(path, "w"):
        pass
    assert read_all(path) == []


def test_reopen_refuses_a_corrupt_log_and_a_second_writer(tmp_path):
    path = tmp_path / "r.log"
    write_log(path, 3)
    with RequestLog(path) as log:
        with pytest.raises(LogFormatError, match="another writer"):
            RequestLog(path)
        log.append(*make_request(1))
    bad = bytearray(path.read_bytes())
    bad[record_offsets(path)[1] + 2] ^= 1
    path.write_bytes(bytes(bad))
    with pytest.raises(LogFormatError, match="corrupt record at byte offset"):
        RequestLog(path)
    other = tmp_path / "notes.txt"
    other.write_text("hello, world: not a log")
    with pytest.raises(LogFormatError, match="not a pyfeat request log"):
        RequestLog(other)


def test_closed_log_refuses_appends(tmp_path):
    log = RequestLog(tmp_path / "r.log")
    log.close()
    log.close()
    assert log.closed
    with pytest.raises(ValueError, match="closed"):
        log.append(*make_request(0))


def test_bad_input_is_refused_before_writing(tmp_path):
    with RequestLog(tmp_path / "r.log") as log:
        with pytest.raises(pyfeat.InputTypeError):
            log.append(b"user", [b"a", 3])
        with pytest.raises(pyfeat.InputError, match="entries"):
            log.append(b"user", [b"a"], {"source": [1, 2]})
        assert log.count == 0
    assert read_all(tmp_path / "r.log") == []


def test_eight_threads_append_whole_records(tmp_path):
    path = tmp_path / "r.log"
    per_thread = 40
    reqs = [make_request(t, 3 + t) for t in range(8)]
    got: dict[str, int] = {}
    with RequestLog(path) as log:

        def work(t):
            for _ in range(per_thread):
                got[log.append(*reqs[t])] = t

        run_in_threads(8, work, timeout=60)
    assert len(got) == 8 * per_thread
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        recs = read_all(path)
    assert len(recs) == 8 * per_thread
    ids = [r.request_id for r in recs]
    assert ids == sorted(ids)  # ids are generated and written under one lock
    for rec in recs:
        assert_same_request(rec, reqs[got[rec.request_id]])


def test_writing_a_log_does_not_load_the_go_library(tmp_path):
    code = textwrap.dedent(
        f"""
        import pyfeat, pyfeat._native as n
        with pyfeat.RequestLog({str(tmp_path / 'r.log')!r}) as log:
            log.append({{"user_id": 1, "now": 5}}, [{{"id": 1}}], {{"source": [1]}})
        assert list(pyfeat.iter_requests({str(tmp_path / 'r.log')!r}))[0].user
        print(n.is_loaded_here())
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_a_killed_writer_leaves_a_readable_prefix(tmp_path):
    path = tmp_path / "r.log"
    code = textwrap.dedent(
        f"""
        import sys, pyfeat
        user = b"\\x82\\xa7user_id\\x01\\xa3now\\x05"
        items = [bytes(2000)] * 500  # ~1 MB records: the kill lands mid-write
        with pyfeat.RequestLog({str(path)!r}) as log:
            while True:
                log.append(user, items)
                print(log.count, flush=True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(5):  # a few records written, then SIGKILL
            assert proc.stdout.readline(), "the writer died"
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        recs = read_all(path)
    assert len(recs) >= 5
    assert all(len(r) == 500 and r.items.blob == bytes(1_000_000) for r in recs)
    assert all(issubclass(w.category, RequestLogWarning) for w in caught)


def test_rank_logs_only_served_requests(tmp_path):
    """A request the Ranker refuses is not logged; a served one is, with the
    id the result carries."""
    import numpy as np
    import pandas as pd
    from catboost import CatBoostRegressor

    import pyfeat
    from pyfeat.requestlog import iter_requests

    from conftest import base_item, base_user

    names = pyfeat.feature_names()
    X = np.random.default_rng(0).normal(size=(50, len(names))).astype(np.float32)
    m = CatBoostRegressor(iterations=3, verbose=False, allow_writing_files=False)
    m.fit(pd.DataFrame(X, columns=names), X[:, 0])
    m.save_model(str(tmp_path / "m.json"), format="json")
    ranker = pyfeat.Ranker(tmp_path / "m.json")
    path = tmp_path / "served.log"
    with pyfeat.RequestLog(path) as log:
        with pytest.raises(pyfeat.InputError):
            ranker.rank(base_user(), [base_item(0), base_item(1, price=-1)], log=log)
        res = ranker.rank(base_user(), [base_item(0), base_item(1)], log=log)
    logged = list(iter_requests([path]))
    assert [r.request_id for r in logged] == [res.request_id]


def scan_in_splits(path, split: int, **kw):
    """Every split of ``path`` walked on its own, as tasks would: (refs,
    warning texts, the first error or None, stats)."""
    size = os.path.getsize(path)
    refs, texts, stats = [], [], ReadStats()
    for start in range(0, max(size, 1), split):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                refs += list(scan_log(path, start=start, end=start + split, stats=stats, **kw))
            except LogFormatError as e:
                return refs, texts, e, stats
        texts += [str(w.message) for w in caught]
    return refs, texts, None, stats


def scan_whole(path, **kw):
    stats = ReadStats()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            refs = list(scan_log(path, stats=stats, **kw))
        except LogFormatError as e:
            return None, [], e, stats
    return refs, [str(w.message) for w in caught], None, stats


def damaged_variants(full: bytes, offs: list[int]):
    """A log's bytes as a crash or a bad disk leaves them."""
    yield "intact", full
    yield "torn tail", full[: offs[-1] + REC_HEADER_SIZE + 7]
    yield "torn header", full[: offs[-1] + 9]
    yield "zero tail", full + bytes(3000)
    for k, delta in (("header", 6), ("request id", 20), ("payload", REC_HEADER_SIZE + 30)):
        for which in (1, len(offs) // 2, len(offs) - 1):
            bad = bytearray(full)
            bad[offs[which] + delta] ^= 0x5A
            yield f"{k} of record {which}", bytes(bad)
    bad = bytearray(full)  # two damaged regions, one of them two records long
    for which in (1, 2, len(offs) - 3):
        bad[offs[which] + 3] ^= 0x01
    yield "two regions", bytes(bad)


@pytest.mark.parametrize("split", [40, 97, 1000, 4096, 1 << 20])
def test_splits_find_records_again_from_any_offset(tmp_path, split):
    """Done-when: a log read as byte-range splits (each split resyncs on
    magic + header checksum) gives the records, warnings and errors of one
    walk of the whole file, each once; torn tails and corrupt records
    included."""
    path = tmp_path / "r.log"
    write_log(path, 12, n_items=7)
    full = path.read_bytes()
    offs = record_offsets(path)
    assert len(full) > 4 * 1000  # several splits of 1000 bytes, records longer than 97
    for what, data in damaged_variants(full, offs):
        path.write_bytes(data)
        for mode in ("error", "skip"):
            want_refs, want_texts, want_err, want_stats = scan_whole(path, on_corrupt=mode)
            refs, texts, err, stats = scan_in_splits(path, split, on_corrupt=mode)
            if want_err is not None:
                assert err is not None and (err.offset, str(err)) == (want_err.offset, str(want_err)), (what, mode)
                continue
            assert err is None, (what, mode, err)
            assert refs == want_refs, (what, mode)
            assert texts == want_texts, (what, mode)
            assert (stats.tail_bytes_skipped, stats.corrupt_regions, stats.corrupt_bytes_skipped) == (
                want_stats.tail_bytes_skipped, want_stats.corrupt_regions, want_stats.corrupt_bytes_skipped), what


def test_split_bounds_are_checked(tmp_path):
    path = tmp_path / "r.log"
    write_log(path, 2)
    with pytest.raises(ValueError, match="byte range"):
        list(scan_log(path, start=10, end=5))
    assert list(scan_log(path, start=os.path.getsize(path), end=None)) == []
    # A split that starts inside the only record it could have yields nothing.
    offs = record_offsets(path)
    assert list(scan_log(path, start=offs[0] + 1, end=offs[1])) == []
