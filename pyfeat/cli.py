"""The ``pyfeat`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


def _cmd_features(args: argparse.Namespace) -> int:
    from . import feature_catalogue, spec_hash

    catalogue = feature_catalogue()
    if args.json:
        json.dump(
            {"spec_hash": spec_hash(), "features": [dict(name=f.name, group=f.group, definition=f.definition) for f in catalogue]},
            sys.stdout,
            ensure_ascii=False,
            indent=2,
        )
        print()
        return 0
    width = max(len(f.name) for f in catalogue)
    print(f"# {len(catalogue)} features, spec hash {spec_hash()}")
    for i, f in enumerate(catalogue):
        print(f"{i:3d}  {f.name:<{width}}  {f.group:<9}  {f.definition}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyfeat", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("features", help="list the feature catalogue")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_cmd_features)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
