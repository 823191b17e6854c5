"""Generate the built-in synthetic data (tracking videos, a box-only detection set, a VOT-style benchmark).

New (the original had no built-in data). The videos are written in the YouTube-VOS / ImageNet-DET / VOT layouts and
preprocessed by the same code as the real datasets, so that training, testing and evaluation run end to end without
downloads::

    python tools/make_synthetic_data.py --out data/synthetic --size quick
    python tools/train_siammask.py --config experiments/siammask_synthetic/config.json --data-root data/synthetic

`--size quick` takes seconds (tests, CI); `--size large` is enough for a learning check (a minute or two on 2 cores).
A finished folder is detected (stamp `builtin.json`) and not regenerated.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from siammask.datasets.synthetic import SIZES, make_builtin_data
from siammask.utils.errors import run_tool


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Generate the built-in synthetic training and VOT data")
    parser.add_argument("--out", default="data/synthetic", help="data root to write (default data/synthetic)")
    parser.add_argument("--size", choices=sorted(SIZES), default="quick", help="quick (seconds) or large")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-workers", type=int, default=0, help="processes for rendering and cropping")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def main(args: argparse.Namespace) -> str:
    start = time.perf_counter()
    root = make_builtin_data(args.out, size=args.size, seed=args.seed, num_workers=args.num_workers,
                             progress=not args.no_progress)
    print(f"built-in data ({args.size}, seed {args.seed}) ready in {os.path.abspath(root)} "
          f"({time.perf_counter() - start:.1f} s)")
    return root


def cli() -> None:
    """Command-line entry: `main` behind the project's error boundary (one `error:` line, exit 2)."""
    sys.exit(run_tool(main, get_args_parser().parse_args()))


if __name__ == "__main__":
    cli()
