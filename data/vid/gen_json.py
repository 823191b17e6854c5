"""ImageNet VID step 3: train.json and val.json for the training set.

Ports the original `data/vid/gen_json.py` (see `datasets.prep.vid` for the track rules)::

    python data/vid/gen_json.py --data-dir data/vid
"""
from __future__ import annotations

import argparse

from siammask.datasets.prep.common import run_cli
from siammask.datasets.prep.vid import gen_json_vid


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Write ImageNet VID train.json / val.json from vid.json")
    parser.add_argument("--data-dir", default="data/vid", help="folder of vid.json")
    return parser


def main(args: argparse.Namespace) -> None:
    gen_json_vid(args.data_dir)


if __name__ == "__main__":
    raise SystemExit(run_cli(main, get_args_parser().parse_args()))
