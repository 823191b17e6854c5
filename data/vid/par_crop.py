"""ImageNet VID step 2: crop 511 patches of every object of every frame -> crop511/<subset>/<snippet>/.

Ports the original `data/vid/par_crop.py` (``python par_crop.py 511 12`` there). Resumable::

    python data/vid/par_crop.py --data-dir data/vid --num-workers 12
"""
from __future__ import annotations

import argparse

from siammask.datasets.prep.common import add_common_args, run_cli
from siammask.datasets.prep.vid import crop_vid


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Crop ImageNet VID objects to 511x511 patches")
    add_common_args(parser, "data/vid")
    parser.add_argument("--instance-size", type=int, default=511, help="crop side (default 511)")
    return parser


def main(args: argparse.Namespace) -> None:
    crop_vid(args.data_dir, args.instance_size, args.num_workers, not args.no_progress)


if __name__ == "__main__":
    raise SystemExit(run_cli(main, get_args_parser().parse_args()))
