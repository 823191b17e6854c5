"""The OPE mode of tools/eval.py: success (AUC), precision and normalized precision with pysot's numbers.

``python tools/eval.py --dataset OTB100 --data-root data --result_dir results/OTB100 --tracker_prefix Custom
[--attributes] [--show_video_level] [--json ope.json] [--plot ope.png]`` reads every tracker folder's
``<tracker>/<video>.txt`` (GOT-10k: ``<tracker>/<video>/<video>_001.txt``), as tools/test.py and pysot write them,
scores them with :mod:`siammask.evaluation.ope` and prints pysot's ``|Tracker name|Success|Norm Precision|Precision|``
table (sorted by AUC; precision at 20 px, normalized precision at 0.2). ``--attributes`` adds the AUC and precision
per attribute (pysot's ``dataset.attr``); ``--show_video_level`` pysot's per-video table (below 10 trackers);
``--json`` writes tracker -> numbers, curves, per attribute and per video; ``--plot FILE.png`` writes the success
plot to FILE.png and the precision plots to FILE_precision.png / FILE_norm_precision.png (with ``--attributes`` also
one set per attribute, FILE_<attr>.png ...).

New (the original SiamMask evaluated VOT only; pysot's eval.py did OPE with a Pool per metric and ``plt.show()``).
Every bad input is one ``error:`` line naming the file or flag (exit status 2), checked before the work: a missing
result file names the tracker and the video. GOT-10k-test has no ground truth here (its server scores it). For
GOT-10k val the numbers are pysot's OPE ones over every frame; the official AO / SR (first frame and frames with
``cover.label`` 0 excluded) come from the got10k toolkit (``ExperimentGOT10k.report``, see tracker/got10k.py).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from siammask.evaluation.errors import BenchmarkError
from siammask.evaluation.ope import evaluate_ope
from siammask.evaluation.ope_datasets import list_ope_trackers, load_ope_dataset
from siammask.evaluation.ope_report import (
    format_ope_attribute_table,
    format_ope_table,
    format_ope_video_table,
    ope_to_json,
    plot_success_precision,
    write_ope_json,
)
from siammask.utils.errors import SiamMaskError, run_tool, tool_cli
from siammask.utils.io import ensure_output_dir

VIDEO_TABLE_MAX_TRACKERS = 10  # pysot prints the per-video table only below this many trackers


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """The work of :func:`main` (raises SiamMaskError subclasses on user errors; outputs checked first)."""
    if args.num < 1:
        raise SiamMaskError(f"--num must be >= 1, got {args.num}")
    for flag, path in (("--json", args.json), ("--plot", args.plot)):
        if path:
            ensure_output_dir(os.path.dirname(os.path.abspath(path)), f"{flag} (folder)")
    dataset = load_ope_dataset(args.dataset, args.data_root)
    if not dataset.spec.ground_truth:
        raise BenchmarkError(f"{args.dataset}: the ground truth is withheld (first frame only in {dataset.source}); "
                             f"submit {args.result_dir}/<tracker>/ to the GOT-10k evaluation server")
    nested = os.path.join(args.result_dir, args.dataset)
    if os.path.basename(os.path.normpath(args.result_dir)) != args.dataset and os.path.isdir(nested):
        raise SiamMaskError(f"--result_dir {args.result_dir} holds a {args.dataset}/ folder: pass --result_dir "
                            f"{nested} (the folder of <tracker>/ result folders)")
    trackers = list_ope_trackers(args.result_dir, args.tracker_prefix)
    tic = time.perf_counter()
    results = evaluate_ope(dataset, args.result_dir, trackers, workers=args.num)
    attributes = dataset.attributes
    print(format_ope_table(results))
    if args.attributes:
        print(format_ope_attribute_table(results, attributes, "success"))
        print(format_ope_attribute_table(results, attributes, "precision"))
    if args.show_video_level and len(results) < VIDEO_TABLE_MAX_TRACKERS:
        print(format_ope_video_table(results, color=sys.stdout.isatty()))
    report = ope_to_json(results, attributes)
    if args.json:
        write_ope_json(args.json, report)
        print(f"wrote {args.json}")
    if args.plot:
        sets = attributes if args.attributes else {"ALL": attributes["ALL"]}
        for attr, videos in sets.items():
            for path in plot_success_precision(results, args.dataset, args.plot, videos, attr):
                print(f"wrote {path}")
    print(f"evaluated {len(trackers)} tracker(s) on {len(dataset)} videos in {time.perf_counter() - tic:.1f}s")
    return report


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    """tools/eval.py's flags (this module is its OPE mode)."""
    from siammask.tools.eval import get_args_parser as eval_parser

    return eval_parser(add_help)


def main(args: argparse.Namespace) -> int:
    """Exit status: 0, or 2 with one ``error:`` line on stderr (other datasets run tools/eval.py's own paths)."""
    from siammask.evaluation.ope_datasets import OPE_DATASETS

    if args.dataset not in OPE_DATASETS:
        from siammask.tools.eval import main as eval_main

        return eval_main(args)
    return run_tool(evaluate, args)


def cli() -> None:
    """Console-script body."""
    tool_cli(main, get_args_parser)


if __name__ == "__main__":
    cli()
