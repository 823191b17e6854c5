"""The DAVIS mode of tools/eval.py: official semi-supervised J and F of result PNG folders.

``python tools/eval.py --dataset DAVIS2017 --data-root data --result_dir results/DAVIS2017 --tracker_prefix Custom
--json davis.json [--show_video_level]`` evaluates every tracker folder ``<result_dir>/<tracker>/<seq>/<frame>.png``
(as tools/test.py writes them) with :mod:`siammask.evaluation.davis` and prints the official table
``J&F-Mean, J-Mean, J-Recall, J-Decay, F-Mean, F-Recall, F-Decay`` (per tracker), with ``--show_video_level`` the
per-object ``J-Mean, F-Mean`` table, and writes ``--json``: tracker -> those keys + ``per_object`` ->
``{"<seq>_<k>": {"J-Mean", "F-Mean"}}``.

New (the original evaluated VOS only by its mIoU in test.py and left J&F to the external DAVIS toolkit). A missing,
unreadable or wrongly sized result PNG, or an object id above the sequence's objects, is one ``error:`` line naming
the file (exit status 2), and no JSON is written.
"""
from __future__ import annotations

import argparse
import sys
import time

from siammask.evaluation.davis import (
    VOS_DATASETS_SPEC,
    evaluate_davis,
    format_object_table,
    format_vos_table,
    is_binary_dataset,
    list_vos_trackers,
    load_davis,
    to_json,
)
from siammask.utils.errors import run_tool
from siammask.utils.io import atomic_write_json


def evaluate(args: argparse.Namespace) -> dict[str, object]:
    """The work of :func:`main` (raises SiamMaskError subclasses on user errors)."""
    year, binary = VOS_DATASETS_SPEC[args.dataset][1], is_binary_dataset(args.dataset)
    sequences = load_davis(args.data_root, year, "val")
    trackers = list_vos_trackers(args.result_dir, args.tracker_prefix)
    tic = time.perf_counter()
    evals = [evaluate_davis(sequences, f"{args.result_dir}/{t}", t, binary=binary, workers=max(1, args.num))
             for t in trackers]
    print(format_vos_table(evals))
    if args.show_video_level:
        for ev in evals:
            print(format_object_table(ev))
    report = to_json(evals)
    if args.json:
        atomic_write_json(args.json, report)
        print(f"wrote {args.json}")
    print(f"evaluated {len(trackers)} tracker(s) on {len(sequences)} sequences in {time.perf_counter() - tic:.1f}s")
    return report


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    """tools/eval.py's flags (this module is its DAVIS mode)."""
    from siammask.tools.eval import get_args_parser as eval_parser

    return eval_parser(add_help)


def main(args: argparse.Namespace) -> int:
    """Exit status: 0, or 2 with one ``error:`` line on stderr (a VOT dataset runs tools/eval.py's VOT path)."""
    if not args.dataset.startswith("DAVIS"):
        from siammask.tools.eval import main as eval_main

        return eval_main(args)
    return run_tool(evaluate, args)


def cli() -> None:
    """Console-script body."""
    sys.exit(main(get_args_parser().parse_args()))


if __name__ == "__main__":
    cli()
