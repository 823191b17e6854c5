"""ImageNet VID step 1: parse every frame's XML -> vid.json.

Ports the original `data/vid/parse_vid.py`. As its readme says, move the val snippets into the train annotation and
data folders as a subset named `val` first. Run from the repository root (or pass --data-dir)::

    python data/vid/parse_vid.py --data-dir data/vid --num-workers 8
"""
from __future__ import annotations

import argparse

from siammask.datasets.prep.common import add_common_args, run_cli
from siammask.datasets.prep.vid import parse_vid


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Parse ImageNet VID annotations into vid.json")
    add_common_args(parser, "data/vid")
    return parser


def main(args: argparse.Namespace) -> None:
    parse_vid(args.data_dir, args.num_workers, not args.no_progress)


if __name__ == "__main__":
    raise SystemExit(run_cli(main, get_args_parser().parse_args()))
