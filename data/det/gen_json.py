"""ImageNet DET step 2: train.json for the training set.

Ports the original `data/det/gen_json.py`::

    python data/det/gen_json.py --data-dir data/det
"""
from __future__ import annotations

import argparse

from siammask.datasets.prep.common import run_cli
from siammask.datasets.prep.det import gen_json_det


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Write ImageNet DET train.json")
    parser.add_argument("--data-dir", default="data/det", help="folder holding ILSVRC2015/")
    return parser


def main(args: argparse.Namespace) -> None:
    gen_json_det(args.data_dir)


if __name__ == "__main__":
    raise SystemExit(run_cli(main, get_args_parser().parse_args()))
