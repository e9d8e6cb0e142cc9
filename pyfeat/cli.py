"""The ``pyfeat`` command line."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from typing import Any


def _cmd_features(args: argparse.Namespace) -> int:
    from . import CAT_MISSING, feature_catalogue, spec_hash

    catalogue = feature_catalogue()
    if args.json:
        json.dump(
            {"spec_hash": spec_hash(), "missing_categorical": CAT_MISSING,
             "features": [dict(name=f.name, kind=f.kind, group=f.group, definition=f.definition) for f in catalogue]},
            sys.stdout,
            ensure_ascii=False,
            indent=2,
        )
        print()
        return 0
    width = max(len(f.name) for f in catalogue)
    n_cat = sum(f.kind == "categorical" for f in catalogue)
    print(f"# {len(catalogue) - n_cat} numeric features (float32, NaN when missing) and {n_cat} categorical "
          f"(int64 ids, {CAT_MISSING} when missing), spec hash {spec_hash()}")
    for i, f in enumerate(catalogue):
        print(f"{i:3d}  {f.name:<{width}}  {f.kind:<11}  {f.group:<9}  {f.definition}")
    return 0


def _cmd_dataset(args: argparse.Namespace) -> int:
    from .dataset import build_dataset

    echo = lambda s: print(f"pyfeat dataset: {s}", file=sys.stderr)  # noqa: E731
    on_corrupt = "skip" if args.skip_corrupt else "error"
    if args.spark is not None:
        if args.workers is not None:
            raise ValueError("--workers is for the single-machine build; with --spark, Spark's master sets the cores")
        from .spark import SPLIT_BYTES, build_dataset_spark, spark_session

        spark, created = spark_session(args.spark, progress=not args.no_progress,
                                       conf=dict(kv.split("=", 1) for kv in args.spark_conf))
        try:
            stats = build_dataset_spark(
                spark, args.requests, args.out, args.events, on_corrupt=on_corrupt,
                split_bytes=args.split_mb << 20 if args.split_mb else SPLIT_BYTES, threads=args.threads or 1,
                echo=echo,
            )
        finally:
            if created:
                spark.stop()
        what = f"{stats.workers} Spark replay task(s) on {args.spark}"
    else:
        stats = build_dataset(
            args.requests,
            args.out,
            args.events,
            workers=args.workers,
            threads=args.threads,
            on_corrupt=on_corrupt,
            progress=not args.no_progress,
            echo=echo,
        )
        what = f"{stats.workers or 'no'} worker process(es)"
    print(
        f"wrote {stats.out}: {stats.rows} rows of {stats.requests} requests "
        f"({stats.positives} with a click or contact) in {stats.seconds:.1f} s, "
        f"{stats.rows_per_second:,.0f} rows/s with {what}"
    )
    if args.events is not None:
        print(
            f"events: {stats.events} (request, item) pairs, {stats.events_matched} joined, "
            f"{stats.events_unknown_request} for requests not in the logs, "
            f"{stats.events_unknown_item} for items not among the candidates"
        )
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from .train import train_model

    train_model(
        args.data,
        args.out,
        iterations=args.iterations,
        learning_rate=args.learning_rate,
        depth=args.depth,
        loss=args.loss,
        valid_fraction=args.valid_fraction,
        negatives=args.negatives,
        seed=args.seed,
        threads=args.threads,
        verbose=args.verbose,
        top=args.top,
        cat_features=not args.no_cat_features,
    )
    return 0


def _positive_int(s: str) -> int:
    v = int(s)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _key_value(s: str) -> str:
    if "=" not in s or not s.split("=", 1)[0]:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {s!r}")
    return s


def _non_negative_int(s: str) -> int:
    v = int(s)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {v}")
    return v


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyfeat", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("features", help="list the feature catalogue")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_cmd_features)

    p = sub.add_parser(
        "dataset",
        help="replay request logs into a Parquet training file",
        description="Replay request logs (pyfeat.RequestLog) through the feature library, join the labels "
        "from an events CSV (request_id,item_id,event with event click or contact; label 0 none, 1 click, "
        "2 contact) and write Parquet: request_id, item_id, label, one float32 column per numeric feature and one int64 column per categorical feature. "
        "A request id repeated in the logs (a retried write, a copied log) is used once: a repeat with identical "
        "bytes is dropped with a warning; one with other contents is an error (with --skip-corrupt the first, in "
        "file order then offset, is kept, with a warning).",
    )
    p.add_argument("--requests", nargs="+", required=True, metavar="LOG", help="request log files, in time order")
    p.add_argument("--events", metavar="EVENTS.csv", help="events CSV; without it every label is 0")
    p.add_argument("--out", required=True, metavar="OUT.parquet",
                   help="the Parquet file to write (with --spark: the directory)")
    p.add_argument("--workers", type=_non_negative_int, default=None,
                   help="worker processes (default: one per core; 0: in this process)")
    p.add_argument("--threads", type=_positive_int, default=None, help="feature threads per worker")
    p.add_argument("--skip-corrupt", action="store_true",
                   help="skip corrupt records before the end of a log, and records that reuse a request id with "
                   "other contents (warned and counted) instead of stopping")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--spark", metavar="MASTER", default=None,
                   help="build on Apache Spark with this master (local[4], yarn, spark://host:7077, ...); "
                   "OUT is then a directory of Parquet part files (needs pyfeat[spark])")
    p.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE", type=_key_value,
                   help="a Spark setting, with --spark (repeatable)")
    p.add_argument("--split-mb", type=_positive_int, default=None, metavar="MB",
                   help="with --spark: MB of log per scan task (default 128; a larger log is split)")
    p.set_defaults(func=_cmd_dataset)

    p = sub.add_parser(
        "train",
        help="train a CatBoost ranking model on a dataset",
        description="Train a CatBoost ranking model (one group per request) on the earliest requests of the "
        "data, report NDCG@10 on the latest ones against the candidate generators' order, and save "
        "OUT.cbm and OUT.json with the feature names and spec hash in the model metadata. The categorical "
        "columns go to CatBoost as cat_features unless --no-cat-features.",
    )
    p.add_argument("--data", nargs="+", required=True, metavar="DATA.parquet", help="files (or --spark directories) from `pyfeat dataset`")
    p.add_argument("--out", required=True, metavar="MODEL.cbm", help="the model (its JSON export goes next to it)")
    p.add_argument("--iterations", type=_positive_int, default=300)
    p.add_argument("--learning-rate", type=float, default=None, help="default: CatBoost's choice")
    p.add_argument("--depth", type=_positive_int, default=6)
    p.add_argument("--loss", default="YetiRank", help="a CatBoost ranking loss (default YetiRank)")
    p.add_argument("--valid-fraction", type=float, default=0.2,
                   help="share of the requests, the latest, held out for the report (default 0.2)")
    p.add_argument("--negatives", type=_non_negative_int, default=None, metavar="N",
                   help="keep at most N items without a click per training request (faster; default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=_positive_int, default=None, help="CatBoost threads (default: every core)")
    p.add_argument("--verbose", type=_non_negative_int, default=0, metavar="N",
                   help="print CatBoost's progress every N iterations")
    p.add_argument("--top", type=_non_negative_int, default=20, help="features listed by importance")
    p.add_argument("--no-cat-features", action="store_true",
                   help="train on the numeric columns only (default: the categorical columns too, as CatBoost "
                        "cat_features)")
    p.set_defaults(func=_cmd_train)
    return parser


def _warning_printer(command: str) -> Any:
    def show(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        print(f"pyfeat {command}: warning: {message}", file=sys.stderr)

    return show


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ._lifetime import Terminated, sigterm_as_interrupt
    from .errors import PyfeatError

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        # Other libraries' notices (pyspark's about pandas versions) are not
        # the command's warnings.
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"pyspark\.")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.showwarning = _warning_printer(args.command)
        try:
            with sigterm_as_interrupt():  # SIGTERM cleans up like Ctrl-C
                return int(args.func(args) or 0)
        except Terminated:
            print(f"pyfeat {args.command}: terminated; no output written", file=sys.stderr)
            return 143
        except KeyboardInterrupt:
            print(f"pyfeat {args.command}: interrupted; no output written", file=sys.stderr)
            return 130
        except (PyfeatError, OSError, ValueError) as e:
            # Expected failures (bad input files, a foreign model, a full
            # disk): one line, no traceback.
            print(f"pyfeat {args.command}: error: {e}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
