"""COCO step 1: crop 511 patches (and masks) of every annotated object -> crop511/<subset>/<image>/.

Ports the original `data/coco/par_crop.py` (``python par_crop.py --enable_mask --num_threads 24`` there). Resumable:
finished crops are kept and skipped. Needs annotations/instances_<subset>.json and the <subset>/ image folders::

    python data/coco/par_crop.py --data-dir data/coco --num-workers 24
"""
from __future__ import annotations

import argparse

from siammask.datasets.prep.coco import SUBSETS, crop_coco
from siammask.datasets.prep.common import add_common_args, run_cli


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Crop COCO objects to 511x511 patches + masks")
    add_common_args(parser, "data/coco")
    parser.add_argument("--subsets", nargs="+", default=list(SUBSETS), help="default: val2017 train2017")
    parser.add_argument("--instance-size", type=int, default=511, help="crop side (default 511)")
    parser.add_argument("--no-mask", action="store_true",
                        help="skip the mask crops (the original cropped masks only with --enable_mask)")
    return parser


def main(args: argparse.Namespace) -> None:
    crop_coco(args.data_dir, args.subsets, args.instance_size, not args.no_mask, args.num_workers,
              not args.no_progress)


if __name__ == "__main__":
    raise SystemExit(run_cli(main, get_args_parser().parse_args()))
