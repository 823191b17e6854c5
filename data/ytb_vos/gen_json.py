"""YouTube-VOS step 3: train.json for the training set (boxes per video, track and frame).

Ports the original `data/ytb_vos/gen_json.py`. Run from the repository root (or pass --data-dir)::

    python data/ytb_vos/gen_json.py --data-dir data/ytb_vos
"""
from __future__ import annotations

import argparse

from siammask.datasets.prep.common import run_cli
from siammask.datasets.prep.ytb_vos import gen_json_ytb_vos


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Write YouTube-VOS train.json from instances_train.json")
    parser.add_argument("--data-dir", default="data/ytb_vos", help="folder of instances_train.json")
    return parser


def main(args: argparse.Namespace) -> None:
    gen_json_ytb_vos(args.data_dir)


if __name__ == "__main__":
    raise SystemExit(run_cli(main, get_args_parser().parse_args()))
