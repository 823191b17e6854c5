"""Evaluate VOT baseline results: accuracy, robustness, lost number and EAO per tracker.

Ports SiamMask's ``tools/eval.py`` (pysot-toolkit; reference.md A.5, E.6). Reads the dataset json from the data root
and ``<result_dir>/<tracker>/baseline/<video>/<video>_001.txt`` for every tracker folder matching
``--tracker_prefix``; prints ``|Tracker Name|Accuracy|Robustness|Lost Number|EAO|`` sorted by EAO.

Differences from the original: the data root is a flag (``--data-root``, default ``data/``) instead of
``<repo>/data``; ``--json``, ``--attributes`` and ``--plot`` are new; any missing folder, file or json, or a truncated
result file, is reported as one line on stderr with exit status 1 (the original asserted, called ``exit()`` or
evaluated the shorter file); only VOT2016/VOT2018/VOT2019 are accepted (the original silently did nothing for others).
DAVIS datasets run tools/vos_eval.py, the one-pass datasets (OTB100, UAV123, LaSOT, GOT-10k, ...) tools/ope_eval.py.

    python tools/eval.py --dataset VOT2018 --result_dir results/VOT2018 --tracker_prefix Custom --num 4 --json e.json
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from siammask.evaluation import VOT_TAGS, evaluate_trackers, list_trackers, load_vot_dataset
from siammask.evaluation.davis import DAVIS_DATASETS
from siammask.evaluation.ope_datasets import OPE_DATASETS
from siammask.evaluation.report import (
    format_attribute_table,
    format_summary_table,
    format_video_table,
    plot_expected_overlap,
    to_json,
    write_json,
)
from siammask.evaluation.results import compare_videos, subset_dataset
from siammask.evaluation.vot import VOT_DATASETS
from siammask.utils.errors import SiamMaskError, run_tool, tool_cli
from siammask.utils.io import ensure_output_dir

DATASETS = VOT_DATASETS + DAVIS_DATASETS + tuple(OPE_DATASETS)  # DAVIS: tools/vos_eval.py; OPE: tools/ope_eval.py
VIDEO_TABLE_MAX_TRACKERS = 10  # pysot prints the per-video table only below this many trackers


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    """The command-line flags (see the module docstring)."""
    parser = argparse.ArgumentParser(description="VOT evaluation: accuracy, robustness, lost number and EAO",
                                     add_help=add_help)
    parser.add_argument("--dataset", default="VOT2018", choices=DATASETS,
                        help="dataset whose <name>.json is read from the data root (default: VOT2018)")
    parser.add_argument("--data-root", default="data",
                        help="folder holding <dataset>.json or <dataset>/<dataset>.json (default: data)")
    parser.add_argument("--result_dir", "--result-dir", dest="result_dir", required=True,
                        help="folder of tracker result folders, e.g. results/VOT2018 (holds <tracker>/baseline/...)")
    parser.add_argument("--tracker_prefix", "--tracker-prefix", dest="tracker_prefix", default="",
                        help="evaluate only tracker folders whose name starts with this (default: all)")
    parser.add_argument("--num", type=int, default=1,
                        help="worker processes, one tracker each (default: 1; capped at the number of trackers)")
    parser.add_argument("--show_video_level", "--show-video-level", dest="show_video_level", action="store_true",
                        help=f"also print per-video accuracy and lost number (below {VIDEO_TABLE_MAX_TRACKERS} "
                             "trackers)")
    parser.add_argument("--attributes", action="store_true",
                        help="also compute and print EAO per VOT attribute (camera_motion, ..., empty)")
    parser.add_argument("--json", metavar="FILE", default=None,
                        help="write tracker -> accuracy, robustness, lost, eao and per-video values to FILE")
    parser.add_argument("--plot", metavar="FILE.png", default=None,
                        help="save the expected-overlap curves (overall) to this PNG")
    parser.add_argument("--allow-missing", action="store_true",
                        help="evaluate the videos every tracker has results for, and print which were left out "
                             "(default: a tracker missing a video of the dataset, or holding videos it lacks, is an "
                             "error)")
    return parser


#: Mean predicted area above this many times the ground truth's is warned about (regions covering the frame).
AREA_WARNING_RATIO = 4.0


def select_videos(args: argparse.Namespace, dataset: Any, trackers: list[str]) -> Any:
    """The dataset to evaluate: all of it, or with --allow-missing the videos every tracker has (printed)."""
    keep = set(dataset.videos)
    for tracker in trackers:
        missing, extra = compare_videos(args.result_dir, tracker, dataset)
        where = os.path.join(args.result_dir, tracker)
        if not args.allow_missing:
            if missing:
                raise SiamMaskError(f"{where}: no results for {_listing(missing)} of the {len(dataset)} videos of "
                                    f"{dataset.name} ({dataset.json_path}); pass --allow-missing to evaluate the "
                                    f"others")
            if extra:
                raise SiamMaskError(f"{where}: results for {_listing(extra)} not in {dataset.name} "
                                    f"({dataset.json_path}); wrong --dataset or --data-root? pass --allow-missing to "
                                    f"leave them out")
        keep -= set(missing)
        if args.allow_missing and (missing or extra):
            if missing:
                print(f"left out for all trackers, no results from {tracker}: {', '.join(missing)}")
            if extra:
                print(f"left out, not in {dataset.name}: {tracker}'s {', '.join(extra)}")
    if not keep:
        raise SiamMaskError(f"{args.result_dir}: no video of {dataset.name} has results from every tracker")
    if len(keep) < len(dataset):
        print(f"evaluating {len(keep)} of the {len(dataset)} videos of {dataset.name} (--allow-missing)")
    return subset_dataset(dataset, keep)


def _listing(names: list[str], shown: int = 5) -> str:
    text = ", ".join(names[:shown]) + (f", ... ({len(names) - shown} more)" if len(names) > shown else "")
    return f"{len(names)} video{'s' if len(names) > 1 else ''} ({text})"


def warn_large_regions(evals: dict[str, Any]) -> None:
    """Warn (stderr) about trackers whose regions are far larger than the ground truth (never lost)."""
    for name, ev in evals.items():
        if ev.area_ratio > AREA_WARNING_RATIO:
            print(f"warning: {name}: the mean predicted region is {ev.area_ratio:.1f}x the ground truth's area; "
                  f"regions that cover most of the frame overlap everything and are never lost, so its robustness "
                  f"means little", file=sys.stderr)


def run(args: argparse.Namespace) -> None:
    """The VOT evaluation (raises SiamMaskError subclasses on user errors; output folders checked first)."""
    if args.num < 1:
        raise SiamMaskError(f"--num must be >= 1, got {args.num}")
    for flag, path in (("--json", args.json), ("--plot", args.plot)):
        if path:
            ensure_output_dir(os.path.dirname(os.path.abspath(path)), f"{flag} (folder)")
    dataset = load_vot_dataset(args.dataset, args.data_root)
    trackers = list_trackers(args.result_dir, args.tracker_prefix)
    dataset = select_videos(args, dataset, trackers)
    tags = VOT_TAGS if args.attributes else ("all",)
    evals = evaluate_trackers(dataset, args.result_dir, trackers, tags=tags, workers=args.num)
    print(format_summary_table(evals))
    warn_large_regions(evals)
    if args.attributes:
        print(format_attribute_table(evals, tags))
    if args.show_video_level and len(evals) < VIDEO_TABLE_MAX_TRACKERS:
        print(format_video_table(evals, color=sys.stdout.isatty()))
    if args.json:
        write_json(args.json, to_json(evals))
        print(f"wrote {args.json}")
    if args.plot:
        plot_expected_overlap(evals, args.plot)
        print(f"wrote {args.plot}")


def main(args: argparse.Namespace) -> int:
    """Run the evaluation; returns the exit status (0; 2 on a user error, one `error:` line on stderr)."""
    if args.dataset.startswith("DAVIS"):
        from siammask.tools.vos_eval import main as vos_main
        return vos_main(args)
    if args.dataset in OPE_DATASETS:
        from siammask.tools.ope_eval import main as ope_main
        return ope_main(args)
    return run_tool(run, args)


def cli() -> None:
    """Console script ``siammask-eval``."""
    tool_cli(main, get_args_parser)


if __name__ == "__main__":
    cli()
