"""COCO step 2: <subset>.json for the training set (train2017.json, val2017.json).

Ports the original `data/coco/gen_json.py`::

    python data/coco/gen_json.py --data-dir data/coco
"""
from __future__ import annotations

import argparse

from siammask.datasets.prep.coco import SUBSETS, gen_json_coco
from siammask.datasets.prep.common import run_cli


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Write COCO <subset>.json index files")
    parser.add_argument("--data-dir", default="data/coco", help="folder holding annotations/")
    parser.add_argument("--subsets", nargs="+", default=list(SUBSETS), help="default: val2017 train2017")
    return parser


def main(args: argparse.Namespace) -> None:
    gen_json_coco(args.data_dir, args.subsets)


if __name__ == "__main__":
    raise SystemExit(run_cli(main, get_args_parser().parse_args()))
