"""YouTube-VOS step 1: instance boxes of every annotated frame -> instances_train.json / instances_val.json.

Ports the original `data/ytb_vos/parse_ytb_vos.py` (see `datasets.prep.ytb_vos` for the rules). Run from the
repository root (or pass --data-dir)::

    python data/ytb_vos/parse_ytb_vos.py --data-dir data/ytb_vos --num-workers 8
"""
from __future__ import annotations

import argparse

from siammask.datasets.prep.common import add_common_args, run_cli
from siammask.datasets.prep.ytb_vos import MIN_PIXELS, TRAIN_VIDEOS, parse_ytb_vos


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Parse YouTube-VOS instance masks into instances_*.json")
    add_common_args(parser, "data/ytb_vos")
    parser.add_argument("--num-train", type=int, default=TRAIN_VIDEOS,
                        help=f"videos (sorted) in instances_train.json; the rest go to val (default {TRAIN_VIDEOS})")
    parser.add_argument("--min-pixels", type=int, default=MIN_PIXELS, help="smallest instance kept (pixels)")
    return parser


def main(args: argparse.Namespace) -> None:
    parse_ytb_vos(args.data_dir, args.num_train, args.min_pixels, args.num_workers, not args.no_progress)


if __name__ == "__main__":
    raise SystemExit(run_cli(main, get_args_parser().parse_args()))
