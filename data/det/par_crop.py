"""ImageNet DET step 1: crop 511 patches of every object -> crop511/<subset>/<image>/.

Ports the original `data/det/par_crop.py` (``python par_crop.py 511 12`` there). Resumable. Needs
ILSVRC2015/Annotations/DET/train and ILSVRC2015/Data/DET/train under --data-dir::

    python data/det/par_crop.py --data-dir data/det --num-workers 12
"""
from __future__ import annotations

import argparse

from siammask.datasets.prep.common import add_common_args, run_cli
from siammask.datasets.prep.det import crop_det


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Crop ImageNet DET objects to 511x511 patches")
    add_common_args(parser, "data/det")
    parser.add_argument("--instance-size", type=int, default=511, help="crop side (default 511)")
    return parser


def main(args: argparse.Namespace) -> None:
    crop_det(args.data_dir, args.instance_size, args.num_workers, not args.no_progress)


if __name__ == "__main__":
    raise SystemExit(run_cli(main, get_args_parser().parse_args()))
