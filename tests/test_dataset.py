"""pyfeat dataset and pyfeat train: replay parity, labels, failures, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyfeat
from pyfeat import cli
from pyfeat.dataset import DatasetError, DatasetWarning, build_dataset, read_events
from pyfeat.requestlog import LogFormatError, RequestLog, RequestLogWarning, scan_log
from shared import log_records, record_id, save_pyfeat_model, training_set, with_request_id, write_records
from pyfeat.train import train_model

NAMES = None
N_CANDIDATES = 200


def names():
    global NAMES
    if NAMES is None:
        NAMES = pyfeat.feature_names()
    return NAMES


WORLD = (11, 3000, 300)


def write_events(path: Path, rows) -> None:
    with open(path, "w") as f:
        f.write("request_id,item_id,event\n")
        for rid, item, event in rows:
            f.write(f"{rid},{item},{event}\n")


def feedback_events(world, req, rid):
    clicks, contacts = world.feedback(req)
    ids = req.item_ids
    rows = [(rid, int(ids[j]), "click") for j in np.flatnonzero(clicks)]
    rows += [(rid, int(ids[j]), "contact") for j in np.flatnonzero(contacts)]
    return rows, (clicks.astype(np.int8) + contacts).astype(np.int8)


def train_bootstrap(world, path: Path, n_requests: int = 8) -> Path:
    """A first model on features computed directly (no log), JSON export."""
    from catboost import CatBoost, Pool

    data = training_set(world, range(1000, 1000 + n_requests), N_CANDIDATES)
    m = CatBoost(dict(loss_function="YetiRank", iterations=15, depth=4, verbose=False,
                      allow_writing_files=False, random_seed=0))
    m.fit(Pool(data["X"], data["clicks"] + data["contacts"], group_id=data["group"], feature_names=names()))
    return save_pyfeat_model(m, path)


@pytest.fixture(scope="module")
def served(world, tmp_path_factory):
    """24 requests served by a Ranker and logged, with what was served."""
    d = tmp_path_factory.mktemp("served")
    model = train_bootstrap(world, d / "bootstrap.json")
    ranker = pyfeat.Ranker(model)
    out = dict(dir=d, log=d / "requests.log", events=d / "events.csv", features={}, scores={}, labels={},
               item_ids={}, order=[])
    rows = []
    with RequestLog(out["log"]) as log:
        for i in range(24):
            req = world.request(i, N_CANDIDATES)
            feats = np.empty((len(req), len(names())), dtype=np.float32)
            res = ranker.rank(req.user_blob, req.item_blobs, req.candidates, features_out=feats, log=log)
            rid = res.request_id
            per_item = np.empty(len(req))
            per_item[res.order] = res.scores
            out["features"][rid], out["scores"][rid] = feats, per_item
            ev, out["labels"][rid] = feedback_events(world, req, rid)
            out["item_ids"][rid] = req.item_ids
            out["order"].append(rid)
            rows += ev
    write_events(out["events"], rows)
    ranker.close()
    return out


def read_parquet(path):
    t = pq.read_table(path)
    X = np.column_stack([t.column(n).to_numpy() for n in names()]).astype(np.float32)
    return t, X


def rows_by_request(t):
    rids = t.column("request_id").to_pylist()
    bounds = [0] + [i for i in range(1, len(rids)) if rids[i] != rids[i - 1]] + [len(rids)]
    return [(rids[a], a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def test_parity_served_features_and_scores(served, tmp_path):
    """Done-when: logged requests replay to bit-identical features, and the
    trained model scores the Parquet rows exactly as the Ranker serves."""
    out = tmp_path / "train.parquet"
    stats = build_dataset([served["log"]], out, served["events"], workers=2, progress=False)  # spawn workers
    assert stats.requests == 24 and stats.rows == 24 * N_CANDIDATES and stats.workers == 2
    assert stats.events_unknown_request == 0 and stats.events_unknown_item == 0
    t, X = read_parquet(out)
    meta = t.schema.metadata
    assert meta[b"pyfeat_spec_hash"].decode() == pyfeat.spec_hash()
    assert json.loads(meta[b"pyfeat_feature_names"]) == names()
    cat_names = pyfeat.categorical_feature_names()
    assert json.loads(meta[b"pyfeat_categorical_feature_names"]) == cat_names
    kinds = json.loads(meta[b"pyfeat_feature_kinds"])
    assert kinds == {**{n: "numeric" for n in names()}, **{n: "categorical" for n in cat_names}}
    assert int(meta[b"pyfeat_cat_missing"]) == pyfeat.CAT_MISSING
    assert t.column_names == ["request_id", "item_id", "label", *names(), *cat_names]
    assert all(t.schema.field(n).type == pa.float32() for n in names())
    assert all(t.schema.field(n).type == pa.int64() and not t.schema.field(n).nullable for n in cat_names)
    assert all(t.schema.field(n).metadata == {b"pyfeat_kind": b"categorical"} for n in cat_names)
    assert all(t.schema.field(n).metadata == {b"pyfeat_kind": b"numeric"} for n in names())
    C = np.column_stack([t.column(n).to_numpy() for n in cat_names])
    assert (C == pyfeat.CAT_MISSING).any()  # the synthetic world leaves some optional keys out

    groups = rows_by_request(t)
    assert [g[0] for g in groups] == served["order"]  # log order
    mismatches = 0
    engine = pyfeat.FeatureEngine()
    logged = {r.request_id: r for r in pyfeat.iter_requests(served["log"])}
    for rid, a, b in groups:
        mismatches += int(np.count_nonzero(X[a:b].view(np.uint32) != served["features"][rid].view(np.uint32)))
        rec = logged[rid]
        cats = engine.compute_all(rec.user, rec.item_blobs(), rec.candidate_dict()).categorical
        mismatches += int(np.count_nonzero(C[a:b] != cats))
        assert np.array_equal(t.column("item_id").to_numpy()[a:b], served["item_ids"][rid])
        assert np.array_equal(t.column("label").to_numpy()[a:b], served["labels"][rid])
    assert mismatches == 0

    # The model that served scores the replayed rows exactly as served.
    with pyfeat.Ranker(served["dir"] / "bootstrap.json") as ranker:
        got = ranker.predict(X)
    want = np.concatenate([served["scores"][rid] for rid, _, _ in groups])
    assert np.array_equal(got, want)

    # A model trained on the Parquet serves the same scores as it predicts on it.
    rep = train_model(out, tmp_path / "m.cbm", iterations=20, depth=4, echo=None, threads=2, cat_features=False)
    assert rep.train_requests + rep.valid_requests == 24
    from catboost import CatBoost

    cb = CatBoost()
    cb.load_model(str(tmp_path / "m.cbm"))
    with pyfeat.Ranker(tmp_path / "m.json") as ranker:
        assert ranker.model.metadata[pyfeat.SPEC_HASH_KEY] == pyfeat.spec_hash()
        assert np.array_equal(ranker.predict(X), cb.predict(X, prediction_type="RawFormulaVal"))
        rid, a, b = groups[-1]
        rec = next(r for r in pyfeat.iter_requests(served["log"]) if r.request_id == rid)
        feats = np.empty((b - a, len(names())), dtype=np.float32)
        order, scores = ranker.rank(rec.user, rec.item_blobs(), rec.candidate_dict(), features_out=feats)
        assert feats.tobytes() == X[a:b].tobytes()
        assert np.array_equal(scores, ranker.predict(X[a:b])[order])


def test_in_process_replay_equals_workers(served, tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    build_dataset([served["log"]], a, served["events"], workers=0, progress=False)
    build_dataset([served["log"]], b, served["events"], workers=1, progress=False)
    ta, tb = pq.read_table(a), pq.read_table(b)
    for name in ta.column_names:
        x, y = ta.column(name).to_numpy(), tb.column(name).to_numpy()
        assert np.array_equal(x.view(np.uint32) if x.dtype == np.float32 else x,
                              y.view(np.uint32) if y.dtype == np.float32 else y), name


def test_row_groups_are_bounded(served, tmp_path, monkeypatch):
    import pyfeat.dataset as ds

    monkeypatch.setattr(ds, "BATCH_BYTES", 1)  # one record per batch
    out = tmp_path / "o.parquet"
    build_dataset([served["log"]], out, None, workers=0, progress=False, row_group_rows=500)
    f = pq.ParquetFile(out)
    assert f.metadata.num_rows == 24 * N_CANDIDATES
    assert max(f.metadata.row_group(i).num_rows for i in range(f.metadata.num_row_groups)) <= 500 + N_CANDIDATES


def assert_no_output(directory: Path, out: Path) -> None:
    assert not out.exists()
    assert [p.name for p in directory.iterdir() if p.name.endswith(".tmp")] == []


def test_missing_events_file_is_an_error(served, tmp_path):
    out = tmp_path / "o.parquet"
    with pytest.raises(DatasetError, match="events file not found: .*nope.csv"):
        build_dataset([served["log"]], out, tmp_path / "nope.csv", workers=0, progress=False)
    assert_no_output(tmp_path, out)


def test_no_events_file_means_label_zero(served, tmp_path):
    out = tmp_path / "o.parquet"
    stats = build_dataset([served["log"]], out, None, workers=0, progress=False)
    assert stats.notes == ["no events file: every label is 0"]
    assert pq.read_table(out, columns=["label"]).column("label").to_numpy().max() == 0


def test_unknown_request_ids_and_items_are_counted(served, tmp_path):
    rid = served["order"][0]
    ev = tmp_path / "events.csv"
    items = served["item_ids"][rid]
    write_events(ev, [
        (rid, int(items[3]), "click"),
        (rid, int(items[3]), "contact"),  # the strongest event wins
        (rid, int(items[4]), "contact"),  # a contact alone is a contact
        (rid, int(items[4]), "contact"),  # repeats count once
        (rid, 999_999_999, "click"),  # not a candidate of this request
        ("01890000-0000-7000-8000-000000000000", 5, "click"),
        ("01890000-0000-7000-8000-000000000000", 6, "click"),
        ("req-42", 5, "contact"),  # not even a request id
    ])
    out = tmp_path / "o.parquet"
    with pytest.warns(DatasetWarning) as rec:
        stats = build_dataset([served["log"]], out, ev, workers=0, progress=False)
    msgs = " | ".join(str(w.message) for w in rec)
    assert "3 of 6 events refer to 2 request id(s) that are not in the logs" in msgs
    assert "01890000-0000-7000-8000-000000000000" in msgs
    assert "1 events name an item that was not among the request's candidates" in msgs
    assert (stats.events, stats.events_matched, stats.events_unknown_item) == (6, 2, 1)
    t = pq.read_table(out, columns=["request_id", "label"])
    labels = t.column("label").to_numpy()[:N_CANDIDATES]
    assert labels[3] == 2 and labels[4] == 2 and labels.sum() == 4


@pytest.mark.parametrize(
    "text, message",
    [
        ("request,item,kind\nx,1,click\n", "must name the columns request_id,item_id,event"),
        ("request_id,item_id,event\nx,1,view\n", "line 2: event 'view' is not one of"),
        ("request_id,item_id,event\nx,1,click\ny,,click\n", "line 3: item_id is empty"),
        ("request_id,item_id,event\nx,abc,click\n", "line 2: item_id .abc. is not an integer"),
        ("request_id,item_id,event\nx,1,click\nx,2\n", "line 3: 2 fields, the header has 3"),
    ],
)
def test_bad_events_files(tmp_path, text, message):
    (tmp_path / "e.csv").write_text(text)
    with pytest.raises(DatasetError, match=message):
        read_events(tmp_path / "e.csv")


def test_empty_log_is_an_error(tmp_path):
    with RequestLog(tmp_path / "empty.log"):
        pass
    out = tmp_path / "o.parquet"
    with pytest.raises(DatasetError, match="no request in .*empty.log"):
        build_dataset([tmp_path / "empty.log"], out, workers=0, progress=False)
    assert_no_output(tmp_path, out)


def test_torn_tail_is_skipped_and_counted(served, tmp_path):
    log = tmp_path / "torn.log"
    data = served["log"].read_bytes()
    log.write_bytes(data[:-100])
    out = tmp_path / "o.parquet"
    with pytest.warns(RequestLogWarning, match="torn tail"), pytest.warns(DatasetWarning, match="not in the logs"):
        stats = build_dataset([log], out, served["events"], workers=0, progress=False)
    assert stats.requests == 23 and stats.tail_bytes_skipped > 0
    assert out.exists()


def test_corrupt_tail_payload_is_skipped(served, tmp_path):
    log = tmp_path / "bad.log"
    data = bytearray(served["log"].read_bytes())
    data[-50] ^= 0xFF  # inside the last record's payload: the checksum fails
    log.write_bytes(bytes(data))
    out = tmp_path / "o.parquet"
    with pytest.warns(RequestLogWarning, match="damaged tail"):
        for workers in (0, 1):
            stats = build_dataset([log], out, None, workers=workers, progress=False)
            assert stats.requests == 23


def test_corruption_before_the_end_leaves_no_partial_output(served, tmp_path, monkeypatch):
    import pyfeat.dataset as ds

    monkeypatch.setattr(ds, "BATCH_BYTES", 1)  # rows are written before the damage is met
    log = tmp_path / "bad.log"
    data = bytearray(served["log"].read_bytes())
    refs = list(scan_log(served["log"]))
    data[refs[20].offset + 100] ^= 0xFF
    log.write_bytes(bytes(data))
    out = tmp_path / "o.parquet"
    out.write_bytes(b"previous output")
    with pytest.raises(LogFormatError, match=f"bad.log: corrupt record at byte offset {refs[20].offset}"):
        build_dataset([log], out, None, workers=0, progress=False, row_group_rows=100)
    assert out.read_bytes() == b"previous output"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    with pytest.warns(RequestLogWarning, match="skipped"):
        stats = build_dataset([log], out, None, workers=0, progress=False, on_corrupt="skip")
    assert stats.requests == 23 and stats.corrupt_records == 1


def test_requests_the_library_rejects_are_skipped_with_a_warning(tmp_path, world):
    log = tmp_path / "r.log"
    req = world.request(5, 20)
    bad = [dict(it) for it in req.items]
    bad[7]["price"] = -1.0
    with RequestLog(log) as lg:
        lg.append(req.user, req.items, req.candidates)
        lg.append(req.user, bad, req.candidates)  # logged, then refused when served
    out = tmp_path / "o.parquet"
    with pytest.warns(DatasetWarning, match=r"skipped 1 logged request.*item 7.*price"):
        stats = build_dataset([log], out, workers=0, progress=False)
    assert stats.requests == 1 and stats.failed_requests == 1


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "pyfeat.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_cli_dataset_and_train(served, tmp_path):
    out = tmp_path / "d.parquet"
    r = run_cli("dataset", "--requests", served["log"], "--events", served["events"], "--out", out,
                "--workers", "1", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert f"wrote {out}: {24 * N_CANDIDATES} rows of 24 requests" in r.stdout
    assert r.stderr == ""
    r = run_cli("train", "--data", out, "--out", tmp_path / "m.cbm", "--iterations", "10", "--top", "5")
    assert r.returncode == 0, r.stderr
    assert "NDCG@10 on" in r.stdout and "source order" in r.stdout and "never used (" in r.stdout
    assert (tmp_path / "m.cbm").exists() and (tmp_path / "m.json").exists()
    pyfeat.Ranker(tmp_path / "m.json").close()


def test_cli_errors_are_one_line_and_exit_1(served, tmp_path, capsys):
    out = tmp_path / "o.parquet"
    cases = [
        (["dataset", "--requests", tmp_path / "nope.log", "--out", out], "request log not found"),
        (["dataset", "--requests", served["log"], "--events", tmp_path / "nope.csv", "--out", out],
         "events file not found"),
        (["dataset", "--requests", served["log"], "--out", tmp_path / "no" / "o.parquet"],
         "output directory does not exist"),
        (["train", "--data", tmp_path / "nope.parquet", "--out", tmp_path / "m.cbm"], "dataset not found"),
    ]
    for argv, message in cases:
        assert cli.main([str(a) for a in argv] + ["--no-progress"] * (argv[0] == "dataset")) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"pyfeat {argv[0]}: error: ") and message in err, err
        assert err.count("\n") == 1 and "Traceback" not in err
    assert_no_output(tmp_path, out)
    # Warnings are one line each too, and the command succeeds.
    torn = tmp_path / "torn.log"
    torn.write_bytes(served["log"].read_bytes()[:-10])
    assert cli.main(["dataset", "--requests", str(torn), "--out", str(out), "--workers", "0", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "pyfeat dataset: warning: " in err and "torn tail" in err


def test_cli_empty_log_exit_code(tmp_path):
    with RequestLog(tmp_path / "empty.log"):
        pass
    r = run_cli("dataset", "--requests", tmp_path / "empty.log", "--out", tmp_path / "o.parquet", "--no-progress")
    assert r.returncode == 1
    assert r.stderr.strip().startswith("pyfeat dataset: error: no request in")
    assert not (tmp_path / "o.parquet").exists()


def test_train_refuses_foreign_and_unlabelled_data(served, tmp_path):
    out = tmp_path / "d.parquet"
    build_dataset([served["log"]], out, None, workers=0, progress=False)
    with pytest.raises(DatasetError, match="none of the .* training requests has a positive label"):
        train_model(out, tmp_path / "m.cbm", iterations=5, echo=None)
    assert not (tmp_path / "m.cbm").exists()
    t = pq.read_table(out)
    meta = dict(t.schema.metadata)
    meta[b"pyfeat_spec_hash"] = b"0000000000000000"
    pq.write_table(t.replace_schema_metadata(meta), tmp_path / "old.parquet")
    with pytest.raises(DatasetError, match="built with feature spec 0000000000000000"):
        train_model(tmp_path / "old.parquet", tmp_path / "m.cbm", iterations=5, echo=None)
    pq.write_table(pa.concat_tables([t, t]), tmp_path / "twice.parquet")
    with pytest.raises(DatasetError, match="appears in several places"):
        train_model(tmp_path / "twice.parquet", tmp_path / "m.cbm", iterations=5, echo=None)


def test_train_splits_by_time_and_reports(served, tmp_path):
    out = tmp_path / "d.parquet"
    build_dataset([served["log"]], out, served["events"], workers=0, progress=False)
    lines = []
    rep = train_model(out, tmp_path / "m.cbm", iterations=10, depth=3, echo=lines.append, negatives=50)
    assert (rep.train_requests, rep.valid_requests) == (19, 5)
    info = json.loads(pyfeat.Model(tmp_path / "m.json").metadata["pyfeat_train"])
    assert info["first_valid_request"] == served["order"][19]  # the latest requests are held out
    assert rep.train_rows <= 19 * 50 + sum(int((served["labels"][r] > 0).sum()) for r in served["order"][:19])
    assert 0 <= rep.ndcg_source <= 1 and 0 <= rep.ndcg_model <= 1
    cat_names = pyfeat.categorical_feature_names()
    assert rep.cat_features == cat_names  # by default
    assert sorted(n for n, _, _ in rep.importance) == sorted(names() + cat_names)
    assert {n for n, _, s in rep.importance if s < 0} == set(cat_names)  # splits are counted for numeric ones
    assert set(rep.unused) == {n for n, pct, s in rep.importance if s == 0 or (s < 0 and pct == 0)}
    assert any(line.startswith("never used (") for line in lines)


def _pack_id_key_long(record: dict) -> bytes:
    """A record whose "id" key is a str8 (a valid, non-canonical encoding)."""
    rest = {k: v for k, v in record.items() if k != "id"}
    body = b"".join(msgpack_packb(k) + msgpack_packb(v) for k, v in rest.items())
    n = len(rest) + 1
    head = bytes([0x80 | n]) if n < 16 else b"\xde" + n.to_bytes(2, "big")
    return head + body + b"\xd9\x02id" + msgpack_packb(record["id"])


def msgpack_packb(x):
    import msgpack

    return msgpack.packb(x, use_bin_type=True)


@settings(max_examples=150, deadline=None)
@given(
    ids=st.lists(st.integers(-(2**63), 2**63 - 1), min_size=0, max_size=12),
    titles=st.lists(st.sampled_from(["Android id", "¢id", "idid", "", "Адидас", "kid's bike", "iPhone", "\x02id", "id"]),
                    min_size=12, max_size=12),
    extra=st.lists(st.sampled_from(["none", "id_like", "long_key", "first"]), min_size=12, max_size=12),
)
def test_item_ids_come_from_the_decoder(ids, titles, extra):
    # The dataset builder takes each record's id from the Go decoder
    # (pf_compute's item_ids), whatever the record's encoding.
    from conftest import base_item, base_user

    from pyfeat._engine import compute_prepared
    from pyfeat._inputs import PreparedRequest

    blobs = []
    for i, item_id in enumerate(ids):
        rec = {**base_item(i, title=titles[i]), "id": item_id}
        if extra[i] == "id_like":
            rec["kid"] = 3
            rec["idx"] = 4
        elif extra[i] == "first":
            rec = {"id": item_id, **rec}
        blobs.append(_pack_id_key_long(rec) if extra[i] == "long_key" else msgpack_packb(rec))
    got = np.full(len(ids), 7, dtype=np.int64)
    compute_prepared(PreparedRequest(base_user(), blobs, None), item_ids=got)
    assert got.tolist() == ids


def test_categorical_model_replay_parity(served, tmp_path):
    """Done-when: a model trained with the categorical columns (the
    default) serves, in one rank call, the scores it gives the Parquet rows
    of the same requests, bit for bit; and those are catboost's own."""
    from catboost import CatBoost

    from pyfeat.train import catboost_data

    data = tmp_path / "d.parquet"
    build_dataset([served["log"]], data, served["events"], workers=0, progress=False)
    rep = train_model(data, tmp_path / "cat.cbm", iterations=30, depth=5, echo=None, threads=2)
    cat_names = pyfeat.categorical_feature_names()
    assert rep.cat_features == cat_names
    t, X = read_parquet(data)
    C = np.column_stack([t.column(n).to_numpy() for n in cat_names])
    cb = CatBoost()
    cb.load_model(str(tmp_path / "cat.cbm"))
    assert cb.get_cat_feature_indices() == list(range(len(names()), len(names()) + len(cat_names)))
    want = np.asarray(cb.predict(catboost_data(X, C, names(), cat_names), prediction_type="RawFormulaVal"))
    with pyfeat.Ranker(tmp_path / "cat.json") as ranker:
        assert ranker.model.n_cat_features == len(cat_names)
        parquet_scores = ranker.predict(X, C)
        assert np.array_equal(parquet_scores, want)  # the native evaluator is catboost's, bit for bit
        with pytest.raises(ValueError, match="categorical"):
            ranker.predict(X)
        mismatches = 0
        for rec, (rid, a, b) in zip(pyfeat.iter_requests(served["log"]), rows_by_request(t)):
            assert rec.request_id == rid
            feats = np.empty((b - a, len(names())), np.float32)
            cats = np.empty((b - a, len(cat_names)), np.int64)
            order, scores = ranker.rank(rec.user, rec.item_blobs(), rec.candidate_dict(), features_out=feats,
                                        cat_features_out=cats)
            per_item = np.empty(b - a)
            per_item[order] = scores
            mismatches += int(np.count_nonzero(per_item != parquet_scores[a:b]))
            mismatches += int(np.count_nonzero(feats.view(np.uint32) != X[a:b].view(np.uint32)))
            mismatches += int(np.count_nonzero(cats != C[a:b]))
        assert mismatches == 0
    # The model uses its categorical features (the synthetic world's
    # categories and sellers carry signal).
    assert any(pct > 0 for n, pct, _ in rep.importance if n in cat_names)
    # A numeric-only model trained on the same file ranks as before.
    rep = train_model(data, tmp_path / "num.cbm", iterations=10, depth=4, echo=None, threads=2, cat_features=False)
    assert rep.cat_features == []
    with pyfeat.Ranker(tmp_path / "num.json") as ranker:
        assert ranker.model.n_cat_features == 0
        assert np.array_equal(ranker.predict(X), ranker.predict(X, C))


def test_ranker_refuses_foreign_categorical_models(served, tmp_path):
    from catboost import CatBoost, Pool

    from pyfeat.train import catboost_data

    data = tmp_path / "d.parquet"
    build_dataset([served["log"]], data, served["events"], workers=0, progress=False)
    t, X = read_parquet(data)
    cat_names = pyfeat.categorical_feature_names()
    C = np.column_stack([t.column(n).to_numpy() for n in cat_names])
    y = t.column("label").to_numpy().astype(float)
    for name, cols in {"fewer": cat_names[:-1], "reordered": cat_names[::-1]}.items():
        Cs = C[:, [cat_names.index(c) for c in cols]]
        m = CatBoost(dict(loss_function="RMSE", iterations=5, depth=3, verbose=False, allow_writing_files=False))
        m.fit(Pool(catboost_data(X, Cs, names(), cols), y))
        m.get_metadata()[pyfeat.SPEC_HASH_KEY] = pyfeat.spec_hash()
        m.save_model(str(tmp_path / f"{name}.json"), format="json")
        with pytest.raises(pyfeat.ModelError, match="categorical features"):
            pyfeat.Ranker(tmp_path / f"{name}.json")


def _lookups(ev, queries):
    return [ev.labels_for(rid, items).tolist() for rid, items in queries]


def test_events_larger_than_a_block_are_sorted_on_disk(tmp_path, monkeypatch):
    """The events file is streamed: past one block it is sorted into runs on
    disk and merged; lookups, counts and examples are those of the
    in-memory events, duplicates and a request spread over all blocks
    included; a bad line in a later block is named by its line number."""
    import pyfeat.dataset as ds

    rng = np.random.default_rng(5)
    rids = [f"019a6f0e-{i:04x}-7000-9a41-5d0c8e2f7b11" for i in range(300)]
    rows = [(rids[int(r)], int(rng.integers(0, 40)), "click" if rng.random() < 0.7 else "contact")
            for r in rng.integers(0, len(rids), 6000)]
    rows += [(rids[7], 3, "contact")] * 50 + [("short-id", 1, "click")] * 3
    rng.shuffle(rows)
    path = tmp_path / "e.csv"
    write_events(path, rows)
    queries = [(rids[i], np.arange(0, 30, dtype=np.int64)) for i in range(0, 250)]
    queries += [("019a6f0e-ffff-7000-9a41-5d0c8e2f7b11", np.arange(5, dtype=np.int64))]
    mem = read_events(path)
    assert type(mem) is ds.Events
    want = (_lookups(mem, queries), mem.pairs_matched, mem.n_pairs, mem.unmatched())
    monkeypatch.setattr(ds, "EVENTS_BLOCK_BYTES", 4096)  # ~100 lines a block: ~60 runs
    spilled = read_events(path, workdir=tmp_path)
    assert isinstance(spilled, ds.SpilledEvents)
    directory = spilled.dir
    assert sorted(os.listdir(directory)) == ["items", "labels", "rids", "start"]  # the runs are gone
    assert (_lookups(spilled, queries), spilled.pairs_matched, spilled.n_pairs, spilled.unmatched()) == want
    spilled.close()
    assert not os.path.exists(directory)
    lines = path.read_text().splitlines()
    lines[4000] = f"{rids[0]},12,like"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match="line 4001: event 'like'"):
        read_events(path, workdir=tmp_path)
    assert [p for p in os.listdir(tmp_path) if p.startswith("pyfeat-events-")] == []


def test_spilled_events_give_the_same_dataset(served, tmp_path, monkeypatch):
    import pyfeat.dataset as ds

    a = build_dataset([served["log"]], tmp_path / "a.parquet", served["events"], workers=0, progress=False)
    monkeypatch.setattr(ds, "EVENTS_BLOCK_BYTES", 2048)
    b = build_dataset([served["log"]], tmp_path / "b.parquet", served["events"], workers=0, progress=False)
    ta, tb = pq.read_table(tmp_path / "a.parquet"), pq.read_table(tmp_path / "b.parquet")
    for name in ("request_id", "item_id", "label"):
        assert ta.column(name).equals(tb.column(name))
    assert a.positives > 0
    assert (a.events, a.events_matched, a.positives) == (b.events, b.events_matched, b.positives)
    assert [p for p in os.listdir(tmp_path) if p.startswith("pyfeat-events-")] == []


def assert_same_rows(got: Path, want: Path) -> None:
    """Every column equal, float32 compared as bits (NaNs too)."""
    a, b = pq.read_table(got), pq.read_table(want)
    assert a.column_names == b.column_names and a.num_rows == b.num_rows, (a.num_rows, b.num_rows)
    for name in a.column_names:
        x, y = a.column(name).to_numpy(), b.column(name).to_numpy()
        if x.dtype == np.float32:
            x, y = x.view(np.uint32), y.view(np.uint32)
        assert np.array_equal(x, y), name


COUNTS = ("requests", "rows", "positives", "failed_requests", "events", "events_matched", "events_unknown_request",
          "unknown_request_ids", "events_unknown_item")


def dataset_warnings(caught) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, DatasetWarning)]


def test_a_request_logged_twice_yields_its_rows_once(served, tmp_path):
    """Done-when: the same request (same id, same bytes) twice in one log (a
    retried write) and in two logs (a copy after a rotation): its rows are
    written once, its events joined once, the repeats counted and reported
    in one warning; the dataset is the one of the logs without the
    repeats, with worker processes or without."""
    header, recs = log_records(served["log"])
    with_events = [i for i in range(12) if served["labels"][served["order"][i]].any()]
    again, copied = with_events[-1], with_events[0]  # requests with a click or contact
    clean = [tmp_path / "clean-a.log", tmp_path / "clean-b.log"]
    write_records(clean[0], header, recs[:12])
    write_records(clean[1], header, recs[12:])
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    offs_a = write_records(logs[0], header, recs[: again + 1] + [recs[again]] + recs[again + 1 : 12])
    write_records(logs[1], header, recs[12:16] + [recs[copied]] + recs[16:])
    want = build_dataset(clean, tmp_path / "want.parquet", served["events"], workers=0, progress=False)
    assert want.positives > 0
    rid = record_id(recs[again])
    for workers in (0, 1):
        out = tmp_path / f"got{workers}.parquet"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            stats = build_dataset(logs, out, served["events"], workers=workers, progress=False)
        assert_same_rows(out, tmp_path / "want.parquet")
        assert [getattr(stats, k) for k in COUNTS] == [getattr(want, k) for k in COUNTS]
        assert (stats.duplicate_records, stats.conflicting_records, want.duplicate_records) == (2, 0, 0)
        assert dataset_warnings(caught) == [
            f"2 of 26 logged records repeat a request id already read, with identical bytes (e.g. {rid}: "
            f"{logs[0]} at byte offset {offs_a[again + 1]}, first at {logs[0]} byte offset {offs_a[again]}); "
            "they are not used"
        ]


def test_a_request_id_logged_with_different_contents(served, tmp_path):
    """Two different records under one request id (its events cannot be
    told apart): an error naming the id and both places, no output; with
    on_corrupt="skip", the first (file order, then offset) is kept and the
    other skipped with a warning."""
    header, recs = log_records(served["log"])
    rid = record_id(recs[3])
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    offs_a = write_records(logs[0], header, recs[:12])
    offs_b = write_records(logs[1], header, recs[12:20] + [with_request_id(recs[20], rid)] + recs[21:])
    out = tmp_path / "o.parquet"
    for workers in (0, 1):
        with pytest.raises(DatasetError) as e:
            build_dataset(logs, out, served["events"], workers=workers, progress=False)
        assert str(e.value) == (
            f"request id {rid} is logged twice with different contents: {logs[0]} at byte offset {offs_a[3]} and "
            f"{logs[1]} at byte offset {offs_b[8]}; its events cannot be told apart (pass on_corrupt='skip' "
            "(--skip-corrupt) to keep the first record, in file order then offset, and skip the other)"
        )
        assert_no_output(tmp_path, out)
    write_records(tmp_path / "c.log", header, recs[12:20] + recs[21:])
    want = build_dataset([logs[0], tmp_path / "c.log"], tmp_path / "want.parquet", served["events"], workers=0,
                         progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stats = build_dataset(logs, out, served["events"], workers=0, progress=False, on_corrupt="skip")
    assert_same_rows(out, tmp_path / "want.parquet")
    assert [getattr(stats, k) for k in COUNTS] == [getattr(want, k) for k in COUNTS]
    assert (stats.duplicate_records, stats.conflicting_records) == (0, 1)
    assert (f"1 of 24 logged records reuse a request id already read, with different contents (e.g. {rid}: "
            f"{logs[1]} at byte offset {offs_b[8]}, first at {logs[0]} byte offset {offs_a[3]}); only the first "
            "record of each id is used (its events may be the other's)") in dataset_warnings(caught)


def test_cli_reports_repeated_requests(served, tmp_path):
    header, recs = log_records(served["log"])
    log = tmp_path / "a.log"
    write_records(log, header, recs + recs[:3])
    r = run_cli("dataset", "--requests", log, "--out", tmp_path / "o.parquet", "--workers", "0", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert f"wrote {tmp_path / 'o.parquet'}: {24 * N_CANDIDATES} rows of 24 requests" in r.stdout
    assert "pyfeat dataset: warning: 3 of 27 logged records repeat a request id already read" in r.stderr
    assert "A request id repeated in the logs" in " ".join(run_cli("dataset", "--help").stdout.split())
