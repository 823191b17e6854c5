"""YouTube-VOS step 2: crop 511 patches and masks of every object -> crop511/train/<video>/.

Ports the original `data/ytb_vos/par_crop.py` (``python par_crop.py 511 12`` there). Resumable: finished crops are
kept and skipped. Run from the repository root (or pass --data-dir)::

    python data/ytb_vos/par_crop.py --data-dir data/ytb_vos --num-workers 12
"""
from __future__ import annotations

import argparse

from siammask.datasets.prep.common import add_common_args, run_cli
from siammask.datasets.prep.ytb_vos import crop_ytb_vos


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Crop YouTube-VOS objects to 511x511 patches + masks")
    add_common_args(parser, "data/ytb_vos")
    parser.add_argument("--instance-size", type=int, default=511, help="crop side (default 511)")
    return parser


def main(args: argparse.Namespace) -> None:
    crop_ytb_vos(args.data_dir, args.instance_size, args.num_workers, not args.no_progress)


if __name__ == "__main__":
    raise SystemExit(run_cli(main, get_args_parser().parse_args()))
