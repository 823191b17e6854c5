"""Grid search of the tracker hyper-parameters on DAVIS (J&F), several workers, resumable.

Ports `tools/tune_vos.py` of the original SiamMask (reference.md A.7)::

    python tools/tune_vos.py --config experiments/siammask_sharp/config_davis.json --resume SiamMask_DAVIS.pth \\
        --mask --refine --dataset DAVIS2016 --num-workers 4

Searched, as the original: penalty_k (default 0.0,0.1,0.03), lr (0.8,1.01,0.05), window_influence (0.3,0.5,0.04),
the search region (255,256,8) and the segmentation threshold (0.3,0.81,0.05; the original's `thrs`). seg_thr does not
change the tracking (the mask never feeds back into the box), so each (penalty_k, window_influence, lr, instance
size) combination tracks a video once and every threshold is scored from the same masks. A finished (combination,
video) job leaves ``<result-dir>/<dataset>/<name>/<video>.json`` (per threshold and object: J/F Mean, Recall,
Decay); jobs are claimed with tools/tune_vot.py's lock files, so several workers share the grid and an interrupted
run resumes. At the end every complete combination x threshold is one row of a table sorted by J&F-Mean.

Differences from the original: the score is the official J&F (the original stored the mean IoU per threshold of a
video in ``<video>.txt``); the original's `--arch` default (`SiamRPNA`) and its reading of a `gt` that the DAVIS
loader never provides are gone; workers are processes of this tool.
"""
from __future__ import annotations

import argparse
import os
import random
from dataclasses import asdict
from typing import Any

import numpy as np

from siammask.evaluation.davis import (
    DAVIS_DATASETS,
    DAVIS_MEASURES,
    VOS_DATASETS_SPEC,
    FrameScorer,
    is_binary_dataset,
    load_davis,
)
from siammask.tools.test import ToolError
from siammask.tools.tune_vot import claim, combinations, combo_name, parse_range, parse_range_int, release, run_workers
from siammask.tracker import SiamMaskTracker, build_tracker
from siammask.tracker.vos import labels_at, run_vos_sequence
from siammask.utils.errors import SiamMaskError, one_line, run_tool, tool_cli
from siammask.utils.io import atomic_write_json, ensure_output_dir, read_image, read_json
from siammask.utils.runtime import DEVICE_CHOICES


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Grid-search SiamMask tracker hyper-parameters on DAVIS (J&F)",
                                     add_help=add_help)
    parser.add_argument("--config", required=True, help="config.json (the hp block gives the fixed values)")
    parser.add_argument("--resume", required=True, metavar="PATH", help="weights")
    parser.add_argument("--mask", action="store_true", help="accepted for the original's command lines (VOS always "
                        "uses the mask)")
    parser.add_argument("--refine", action="store_true", help="use the refinement module")
    parser.add_argument("--dataset", default="DAVIS2016", choices=DAVIS_DATASETS, help="DAVIS val set")
    parser.add_argument("--data-root", default="data", help="folder holding DAVIS/")
    parser.add_argument("--result-dir", default="results/tune_vos", help="jobs land in <result-dir>/<dataset>/")
    parser.add_argument("--penalty-k", default="0.0,0.1,0.03", type=parse_range, help="start,stop,step")
    parser.add_argument("--lr", default="0.8,1.01,0.05", type=parse_range, help="start,stop,step")
    parser.add_argument("--window-influence", default="0.3,0.5,0.04", type=parse_range, help="start,stop,step")
    parser.add_argument("--search-region", default="255,256,8", type=parse_range_int, help="instance sizes")
    parser.add_argument("--seg-thr", default="0.3,0.81,0.05", type=parse_range, help="segmentation thresholds")
    parser.add_argument("--num-workers", type=int, default=1, help="worker processes (each loads the model)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per worker (0: cores / workers)")
    parser.add_argument("--seed", type=int, default=0, help="shuffles the job order of each worker")
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES, help="where the network runs")
    parser.add_argument("--amp", action="store_true", help="autocast the network")
    return parser


def job_path(out_root: str, name: str, video: str) -> str:
    """The result file of one (combination, video) job."""
    return os.path.join(out_root, name, f"{video}.json")


def _worker(index: int, s: dict[str, Any]) -> int:
    import torch

    if s["threads"] > 0:
        torch.set_num_threads(s["threads"])
    base, _, _ = build_tracker(s["config"], s["resume"], s["device"], s["amp"], mask=True, refine=s["refine"])
    year, binary = VOS_DATASETS_SPEC[s["dataset"]][1], is_binary_dataset(s["dataset"])
    sequences = load_davis(s["data_root"], year, "val")
    rng = random.Random(s["seed"] * 1000 + index)
    rng.shuffle(sequences)
    combos = list(s["combos"])
    done = 0
    for seq in sequences:
        cache: dict[str, np.ndarray] = {}

        def cached(path: str, cache: dict[str, np.ndarray] = cache) -> np.ndarray:
            if path not in cache:
                cache[path] = read_image(path, error=ToolError)
            return cache[path]

        rng.shuffle(combos)
        for hp in combos:
            name = combo_name(s["network_name"], hp)
            path = job_path(s["out_root"], name, seq.name)
            if not claim(path):
                continue
            try:
                tracker = SiamMaskTracker(base.model, {**asdict(base.hp), **hp}, base.device,
                                          anchors=base.anchors_cfg, mask=True, refine=base.refine_enable,
                                          amp_dtype=base.amp_dtype, channels_last=base.channels_last)
                scorer = FrameScorer(seq, s["seg_thr"], binary=binary)

                def score(f: int, frame: str, best_id: np.ndarray, best_prob: np.ndarray,
                          scorer: FrameScorer = scorer, last: int = len(seq.frames) - 2) -> None:
                    if 1 <= f <= last:
                        scorer.add(f, [labels_at(best_id, best_prob, t) for t in scorer.thresholds])

                res = run_vos_sequence(tracker, seq, binary=binary, on_frame=score, image_reader=cached)
                atomic_write_json(path, {"hp": hp, "seg_thr": scorer.thresholds, "objects": scorer.object_stats()})
            finally:
                release(path)
            done += 1
            print("[w{}] {} Video: {:12s} Time: {:2.1f}s Speed: {:3.1f}fps".format(
                index, name, seq.name, res.time_s, res.fps), flush=True)
    return done


def _worker_entry(payload: tuple[int, dict[str, Any]]) -> tuple[int, str]:
    index, settings = payload
    try:
        return _worker(index, settings), ""
    except (ToolError, SiamMaskError) as e:
        return 0, one_line(e)


def collect(out_root: str, combos: list[dict[str, Any]], names: list[str], videos: list[str],
            thresholds: list[float]) -> list[dict[str, Any]]:
    """One row per complete combination and threshold: its hp, seg_thr and the global DAVIS measures."""
    rows = []
    for hp, name in zip(combos, names):
        paths = [job_path(out_root, name, v) for v in videos]
        if not all(os.path.isfile(p) for p in paths):
            continue
        jobs = [read_json(p, "tune_vos result", error=ToolError) for p in paths]
        for t, thr in enumerate(thresholds):
            per = [stats for job in jobs for stats in job["objects"][t].values()]
            row = {key: float(np.mean([p[key] for p in per])) for key in DAVIS_MEASURES[1:]}
            row["J&F-Mean"] = (row["J-Mean"] + row["F-Mean"]) / 2
            rows.append({"name": name, **hp, "seg_thr": float(thr), **row})
    return sorted(rows, key=lambda r: -r["J&F-Mean"])


def format_table(rows: list[dict[str, Any]]) -> str:
    """penalty_k, window_influence, lr, instance, seg_thr and J&F-Mean / J-Mean / F-Mean, best first."""
    header = (f"|{'penalty_k':^10}|{'window_inf':^10}|{'lr':^7}|{'instance':^8}|{'seg_thr':^7}|{'J&F-Mean':^9}|"
              f"{'J-Mean':^8}|{'F-Mean':^8}|")
    bar = "-" * len(header)
    lines = [bar, header, bar]
    for r in rows:
        lines.append(f"|{r['penalty_k']:^10.3f}|{r['window_influence']:^10.3f}|{r['lr']:^7.3f}|"
                     f"{r['instance_size']:^8d}|{r['seg_thr']:^7.2f}|{r['J&F-Mean']:^9.3f}|{r['J-Mean']:^8.3f}|"
                     f"{r['F-Mean']:^8.3f}|")
    lines.append(bar)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The work of `main`; raises ToolError on user errors."""
    if args.num_workers < 1:
        raise ToolError("--num-workers must be at least 1")
    base, cfg, _ = build_tracker(args.config, args.resume, args.device, args.amp, mask=True, refine=args.refine)
    del base
    year = VOS_DATASETS_SPEC[args.dataset][1]
    try:
        sequences = load_davis(args.data_root, year, "val")
    except SiamMaskError as e:
        raise ToolError(one_line(e)) from None
    network_name = (cfg.network.arch + "_mask_" + os.path.basename(args.resume).split(".")[0]
                    + ("_refine" if args.refine else ""))
    combos = combinations(args)
    names = [combo_name(network_name, hp) for hp in combos]
    out_root = os.path.join(args.result_dir, args.dataset)
    try:
        ensure_output_dir(out_root, "--result-dir")
    except SiamMaskError as e:
        raise ToolError(one_line(e)) from None
    thresholds = [float(t) for t in args.seg_thr]
    print(f"{len(combos)} combinations x {len(thresholds)} thresholds x {len(sequences)} videos -> {out_root}")
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.num_workers)
    settings = {"config": args.config, "resume": args.resume, "device": args.device, "amp": args.amp,
                "refine": args.refine, "dataset": args.dataset, "data_root": args.data_root, "out_root": out_root,
                "network_name": network_name, "combos": combos, "seed": args.seed, "threads": threads,
                "seg_thr": thresholds}
    ran = run_workers(_worker_entry, settings, args.num_workers)
    rows = collect(out_root, combos, names, [s.name for s in sequences], thresholds)
    if not rows:
        raise ToolError(f"no combination has results for every video in {out_root}")
    print(format_table(rows))
    best = rows[0]
    print("Best: {} seg_thr {:.2f} J&F-Mean {:.3f} (J-Mean {:.3f}, F-Mean {:.3f})".format(
        best["name"], best["seg_thr"], best["J&F-Mean"], best["J-Mean"], best["F-Mean"]))
    return {"out_root": out_root, "rows": rows, "best": best, "jobs_run": ran}


def main(args: argparse.Namespace) -> int:
    """Run the grid search; returns the exit status (0 ok, 2 user error)."""
    return run_tool(run, args, interrupted="interrupted (finished combinations are kept; run again to resume)")


def cli() -> None:
    """Console script `siammask-tune-vos`."""
    tool_cli(main, get_args_parser)


if __name__ == "__main__":
    cli()
