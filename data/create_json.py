"""pysot-style VOT metadata json from sequence folders: <data-root>/<NAME>.json.

Ports the original `data/create_json.py` (``python create_json.py VOT2018`` there, through `fire`). Reads
<data-root>/<NAME>/list.txt, each sequence's groundtruth.txt, color/*.jpg (or *.jpg) and attribute .tag/.label files
(see `datasets.prep.vot`)::

    python data/create_json.py VOT2018 --data-root data
"""
from __future__ import annotations

import argparse
import os

from siammask.datasets.prep.common import run_cli, write_json
from siammask.datasets.prep.vot import create_vot_json


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Build <NAME>.json (pysot VOT metadata) from sequence folders")
    parser.add_argument("name", help="dataset folder name, e.g. VOT2018")
    parser.add_argument("--data-root", default="data", help="folder holding <NAME>/ (default data)")
    parser.add_argument("--out", default=None, help="output json (default <data-root>/<NAME>.json)")
    return parser


def main(args: argparse.Namespace) -> None:
    meta = create_vot_json(os.path.join(args.data_root, args.name))
    out = args.out or os.path.join(args.data_root, f"{args.name}.json")
    write_json(out, meta, indent=None)
    print(f"{args.name}: {len(meta)} sequences -> {out}")


if __name__ == "__main__":
    raise SystemExit(run_cli(main, get_args_parser().parse_args()))
