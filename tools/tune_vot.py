"""Grid search of the tracker hyper-parameters on a VOT dataset, then EAO of every combination.

Ports `tools/tune_vot.py` of the original SiamMask (reference.md A.7)::

    python tools/tune_vot.py --config experiments/siammask_sharp/config_vot.json --resume SiamMask_VOT.pth \\
        --mask --refine --dataset VOT2018 --num-workers 4

Ranges are `start,stop,step` for `np.arange` (defaults as the original: penalty_k 0.05,0.5,0.05; lr 0.35,0.5,0.05;
window_influence 0.1,0.8,0.05; search region 255,256,8). Each combination gets the original's folder name
`<arch>_<ckpt>_r<instance>_penalty_k_<..>_window_influence_<..>_lr_<..>` (dots -> `_`) under
`<result-dir>/<dataset>/`, with the standard `baseline/<video>/<video>_001.txt` files, so tools/eval.py reads them.

Differences from the original: a (combination, video) job is claimed with an atomic lock file
(`<video>_001.txt.lock`, created with O_EXCL, holding the owner's pid and host; locks of dead processes on this host
are taken over) instead of writing an 'Occ' placeholder into the result file, so an interrupted run never leaves a
result file that tools/eval.py cannot parse; finished jobs are skipped, so a run resumes where it stopped; workers are
processes of this tool (`--num-workers`) rather than separately launched copies; when every job is done the
evaluation package computes accuracy, robustness and EAO of all complete combinations and the best one is printed.
"""
from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import random
import socket
import time
from typing import Any, Callable

import numpy as np

from siammask.evaluation.vot import VOT_DATASETS
from siammask.evaluation.vot import load_vot_dataset as load_dataset
from siammask.tools.test import ToolError
from siammask.tracker import SiamMaskTracker, build_tracker, run_vot_sequence, vot_result_path, write_vot_result
from siammask.tracker.frames import check_frames_exist, read_frame
from siammask.utils.errors import SiamMaskError, one_line, run_tool, tool_cli
from siammask.utils.io import ensure_output_dir, pid_alive
from siammask.utils.runtime import DEVICE_CHOICES

LOCK_SUFFIX = ".lock"


def parse_range(text: str, kind: type = float) -> np.ndarray:
    """'start,stop,step' -> np.arange(start, stop, step) of `kind` (the original's `parse_range` /
    `parse_range_int`); a single value is that value alone (np.arange would give [0, 1, ...) up to it)."""
    try:
        values = [kind(v) for v in text.split(",")]
        grid = np.array(values[:1], dtype=kind) if len(values) == 1 else np.arange(*values)  # one value: itself
    except (ValueError, TypeError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"{text!r} is not {kind.__name__} start,stop,step") from None
    if len(values) not in (1, 2, 3) or grid.size == 0:
        raise argparse.ArgumentTypeError(f"{text!r} gives an empty range")
    return grid


def parse_range_int(text: str) -> np.ndarray:
    """'start,stop,step' -> np.arange of ints."""
    return parse_range(text, int)


def run_workers(entry: Callable[[tuple[int, dict[str, Any]]], tuple[int, str]], settings: dict[str, Any],
                num_workers: int) -> int:
    """Run ``entry((worker_index, settings))`` in `num_workers` spawned processes (here when 1); each claims
    (combination, video) jobs by lock file and returns (jobs run, first error or ''). Returns the jobs run.

    Raises:
        SiamMaskError: the first worker error (one line).
    """
    tic = time.perf_counter()
    if num_workers == 1:
        outcomes = [entry((0, settings))]
    else:
        with multiprocessing.get_context("spawn").Pool(processes=num_workers) as pool:
            outcomes = pool.map(entry, [(i, settings) for i in range(num_workers)])
    errors = [e for _, e in outcomes if e]
    if errors:
        raise ToolError(errors[0])
    ran = sum(n for n, _ in outcomes)
    print(f"tracked {ran} (combination, video) jobs in {time.perf_counter() - tic:.1f}s")
    return ran


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Grid-search SiamMask tracker hyper-parameters on VOT",
                                     add_help=add_help)
    parser.add_argument("--config", required=True, help="config.json (the hp block gives the fixed values)")
    parser.add_argument("--resume", required=True, metavar="PATH", help="weights")
    parser.add_argument("--mask", action="store_true", help="report mask polygons (as test.py --mask)")
    parser.add_argument("--refine", action="store_true", help="use the refinement module")
    parser.add_argument("--dataset", default="VOT2018", choices=VOT_DATASETS, help="VOT dataset")
    parser.add_argument("--data-root", default="data", help="folder holding <dataset>.json and <dataset>/")
    parser.add_argument("--result-dir", default="results/tune", help="combinations land in "
                        "<result-dir>/<dataset>/<name>/ (default results/tune)")
    parser.add_argument("--penalty-k", default="0.05,0.5,0.05", type=parse_range, help="start,stop,step")
    parser.add_argument("--lr", default="0.35,0.5,0.05", type=parse_range, help="start,stop,step")
    parser.add_argument("--window-influence", default="0.1,0.8,0.05", type=parse_range, help="start,stop,step")
    parser.add_argument("--search-region", default="255,256,8", type=parse_range_int,
                        help="instance (search crop) sizes, integer start,stop,step")
    parser.add_argument("--num-workers", type=int, default=1, help="worker processes (each loads the model)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per worker (0: cores / workers)")
    parser.add_argument("--seed", type=int, default=0, help="shuffles the job order of each worker")
    parser.add_argument("--no-eval", action="store_true", help="only track; skip the evaluation")
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES, help="where the network runs")
    parser.add_argument("--amp", action="store_true", help="autocast the network")
    return parser


def combo_name(network_name: str, hp: dict[str, Any]) -> str:
    """The original's folder name of one combination (dots replaced by underscores)."""
    return (network_name + "_r{}".format(int(hp["instance_size"]))
            + "_penalty_k_{:.3f}".format(hp["penalty_k"])
            + "_window_influence_{:.3f}".format(hp["window_influence"])
            + "_lr_{:.3f}".format(hp["lr"])).replace(".", "_")


def combinations(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every (penalty_k, window_influence, lr, instance_size) of the grid, as hp override dicts."""
    return [{"penalty_k": float(pk), "window_influence": float(wi), "lr": float(lr), "instance_size": int(inst)}
            for pk, wi, lr, inst in itertools.product(args.penalty_k, args.window_influence, args.lr,
                                                       args.search_region)]


def claim(result_path: str) -> bool:
    """Claim a job: False when its result exists or another live process holds its lock; else take the lock.

    The lock `<result_path>.lock` is created with O_CREAT | O_EXCL (atomic); it holds "pid host". A lock whose owner
    was on this host and is no longer running is removed and retaken.
    """
    if os.path.exists(result_path):
        return False
    os.makedirs(os.path.dirname(result_path), exist_ok=True)
    lock = result_path + LOCK_SUFFIX
    host = socket.gethostname()
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                with open(lock, encoding="utf-8") as f:
                    owner_pid, owner_host = f.read().split()[:2]
            except (OSError, ValueError):
                return False  # being written right now, or foreign: leave it
            if owner_host != host or pid_alive(int(owner_pid)):
                return False
            try:
                os.remove(lock)  # stale: its owner died
            except FileNotFoundError:
                pass
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(f"{os.getpid()} {host}\n")
        if os.path.exists(result_path):  # finished between the check and the lock
            release(result_path)
            return False
        return True
    return False


def release(result_path: str) -> None:
    """Remove the job's lock."""
    try:
        os.remove(result_path + LOCK_SUFFIX)
    except FileNotFoundError:
        pass


def _worker(index: int, settings: dict[str, Any]) -> int:
    """Run the jobs of the grid this worker can claim; returns how many it ran."""
    import torch

    if settings["threads"] > 0:
        torch.set_num_threads(settings["threads"])
    base, _, _ = build_tracker(settings["config"], settings["resume"], settings["device"], settings["amp"],
                               mask=settings["mask"], refine=settings["refine"])
    dataset = load_dataset(settings["dataset"], settings["data_root"])
    videos = [v for v in dataset]
    rng = random.Random(settings["seed"] * 1000 + index)
    rng.shuffle(videos)
    combos = list(settings["combos"])
    done = 0
    for video in videos:
        cache: dict[str, Any] = {}  # this video's frames, read once for all combinations

        def cached(path: str, cache: dict[str, Any] = cache) -> Any:
            if path not in cache:
                cache[path] = read_frame(path)
            return cache[path]

        rng.shuffle(combos)
        for hp in combos:
            name = combo_name(settings["network_name"], hp)
            path = vot_result_path(settings["out_root"], name, video.name)
            if not claim(path):
                continue
            try:
                tracker = SiamMaskTracker(base.model, {**_plain_hp(base), **hp}, base.device,
                                          anchors=base.anchors_cfg, mask=base.mask_enable, refine=base.refine_enable,
                                          amp_dtype=base.amp_dtype, channels_last=base.channels_last)
                res = run_vot_sequence(tracker, video, use_polygon=settings["mask"], image_reader=cached)
                write_vot_result(path, res.regions)
            finally:
                release(path)
            done += 1
            print("[w{}] {} Video: {:12s} Time: {:2.1f}s Speed: {:3.1f}fps Lost: {:d}".format(
                index, name, video.name, res.time_s, res.fps, res.lost), flush=True)
    return done


def _plain_hp(tracker: SiamMaskTracker) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(tracker.hp)


def _worker_entry(payload: tuple[int, dict[str, Any]]) -> tuple[int, str]:
    index, settings = payload
    try:
        return _worker(index, settings), ""
    except SiamMaskError as e:
        return 0, str(e)


def complete_combos(out_root: str, names: list[str], videos: list[str]) -> list[str]:
    """Combinations whose result file exists for every video."""
    return [n for n in names if all(os.path.isfile(vot_result_path(out_root, n, v)) for v in videos)]


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The work of `main`; raises ToolError on user errors."""
    if args.num_workers < 1:
        raise ToolError("--num-workers must be at least 1")
    out_root = ensure_output_dir(os.path.join(args.result_dir, args.dataset), "--result-dir")
    # Fail early, in this process, on a bad config, checkpoint or dataset.
    base, cfg, _ = build_tracker(args.config, args.resume, args.device, args.amp, mask=args.mask, refine=args.refine)
    dataset = load_dataset(args.dataset, args.data_root)
    for video in dataset:  # a missing frame or folder now, not in a worker halfway through the grid
        check_frames_exist(video.img_paths, f"{args.dataset} video {video.name}")
    del base
    network_name = cfg.network.arch + "_" + os.path.basename(args.resume).split(".")[0]
    combos = combinations(args)
    names = [combo_name(network_name, hp) for hp in combos]
    print(f"{len(combos)} combinations x {len(dataset)} videos -> {out_root}")
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.num_workers)
    settings = {"config": args.config, "resume": args.resume, "device": args.device, "amp": args.amp,
                "mask": args.mask, "refine": args.refine, "dataset": args.dataset, "data_root": args.data_root,
                "out_root": out_root, "network_name": network_name, "combos": combos, "seed": args.seed,
                "threads": threads}
    ran = run_workers(_worker_entry, settings, args.num_workers)
    summary: dict[str, Any] = {"out_root": out_root, "names": names, "jobs_run": ran}
    if args.no_eval:
        return summary
    complete = complete_combos(out_root, names, [v.name for v in dataset])
    if not complete:
        raise ToolError(f"no combination has results for every video in {out_root}")
    from siammask.evaluation import evaluate_trackers
    from siammask.evaluation.errors import ResultError
    from siammask.evaluation.report import format_summary_table, sort_by_eao

    try:
        evals = evaluate_trackers(dataset, out_root, complete, workers=args.num_workers)
    except ResultError as e:
        raise ToolError(one_line(e)) from None
    print(format_summary_table(evals))
    best = sort_by_eao(evals)[0]
    best_hp = combos[names.index(best.name)]
    print("Best: {} EAO {:.3f} Accuracy {:.3f} Robustness {:.3f} ({})".format(
        best.name, best.eao_all, best.accuracy, best.robustness,
        ", ".join(f"{k}={v:g}" for k, v in best_hp.items())))
    summary.update({"evaluations": evals, "best": best.name, "best_hp": best_hp})
    return summary


def main(args: argparse.Namespace) -> int:
    """Run the grid search; returns the exit status (0 ok, 2 user error)."""
    return run_tool(run, args, interrupted="interrupted (finished combinations are kept; run again to resume)")


def cli() -> None:
    """Console script ``siammask-tune-vot``."""
    tool_cli(main, get_args_parser)


if __name__ == "__main__":
    cli()
