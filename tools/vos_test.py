"""The VOS mode of tools/test.py: DAVIS-2016/2017 and YouTube-VOS, writing the official submission format.

``python tools/test.py --config experiments/siammask_sharp/config_davis.json --resume SiamMask_DAVIS.pth --mask
--refine --dataset DAVIS2017`` runs :func:`siammask.tracker.vos.run_vos_sequence` on every sequence and writes
``<result-dir>/<dataset>/<tracker-name>/<sequence>/<frame>.png`` (palette PNGs, DAVIS colours, frame size; pixel =
object id) -- the folder tools/eval.py and the DAVIS toolkit read. For ytb_vos it also writes
``<result-dir>/ytb_vos/<tracker-name>.zip`` holding ``Annotations/<video>/<frame>.png``, the layout the YouTube-VOS
evaluation server takes. As the original it prints ``(n) Video: <name> Time: <s>s Speed: <fps>fps`` per sequence,
the mean IoU at thresholds 0.30-0.45 (MultiBatchIouMeter) when every frame has ground truth, and the mean speed.

Differences from the original: the PNGs are always written (the original needed ``--save_mask`` and wrote them to
``test/<dataset>/SiamMask/``), with the DAVIS palette instead of grey levels; the data root is ``--data-root``.
"""
from __future__ import annotations

import argparse
import os
import sys
import zipfile
from typing import Any

import numpy as np
from tqdm import tqdm

from siammask.evaluation.davis import is_binary_dataset, load_vos_dataset
from siammask.tracker.build import check_tracker_inputs
from siammask.tracker.frames import check_frames_exist
from siammask.tracker.vos import MIOU_THRESHOLDS, labels_at, run_vos_sequence
from siammask.utils.errors import SiamMaskError, one_line
from siammask.utils.io import OutputLock, atomic_path, ensure_output_dir
from siammask.utils.log_helper import init_log
from siammask.utils.palette import write_palette_png


def write_submission_zip(result_root: str, names: list[str], zip_path: str) -> None:
    """Zip ``<result_root>/<video>/*.png`` as ``Annotations/<video>/<frame>.png`` (the YouTube-VOS server layout)."""
    with atomic_path(zip_path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for video in names:
                folder = os.path.join(result_root, video)
                for png in sorted(os.listdir(folder)):
                    if png.endswith(".png") and not png.startswith("."):
                        zf.write(os.path.join(folder, png), f"Annotations/{video}/{png}")


def run_vos(args: argparse.Namespace) -> dict[str, Any]:
    """tools/test.py on a VOS dataset (see the module docstring); user errors raise the tool's error class."""
    from siammask.tools.test import ToolError, default_tracker_name
    from siammask.tracker import build_tracker

    try:
        return _run(args, build_tracker, default_tracker_name)
    except SiamMaskError as e:
        if isinstance(e, ToolError):
            raise
        raise ToolError(one_line(e)) from None


def _run(args: argparse.Namespace, build_tracker: Any, default_tracker_name: Any) -> dict[str, Any]:
    from siammask.tools.test import ToolError

    if not args.mask:
        raise ToolError(f"--dataset {args.dataset} is a VOS dataset: it needs --mask (and --refine for the sharp "
                        "model)")
    sequences = load_vos_dataset(args.dataset, args.data_root)
    if args.video:
        sequences = [s for s in sequences if s.name == args.video]
        if not sequences:
            raise ToolError(f"video {args.video!r} is not in {args.dataset} under {args.data_root}")
    for seq in sequences:  # before the model loads: a missing frame or folder is found now, not when reached
        check_frames_exist(seq.image_paths, f"{args.dataset} sequence {seq.name}")
    arch = check_tracker_inputs(args.config, args.resume).network.arch
    name = args.tracker_name or default_tracker_name(arch, args.resume, args.mask, args.refine)
    out_root = os.path.join(args.result_dir, args.dataset, name)
    ensure_output_dir(out_root, "--result-dir")
    with OutputLock(out_root, "--result-dir"):
        return _track_sequences(args, sequences, build_tracker, name, out_root)


def _track_sequences(args: argparse.Namespace, sequences: list[Any], build_tracker: Any, name: str,
                     out_root: str) -> dict[str, Any]:
    tracker, _, runtime = build_tracker(args.config, args.resume, args.device, args.amp, mask=True,
                                          refine=args.refine, channels_last=args.channels_last, fast=args.fast,
                                          backend=getattr(args, "backend", "torch"),
                                          onnx_dir=getattr(args, "onnx_dir", None),
                                          optimize=getattr(args, "optimize", True),
                                          graphs=getattr(args, "graphs", "auto"))
    seg_thr = tracker.hp.seg_thr
    binary = is_binary_dataset(args.dataset)
    init_from_mask = bool(getattr(args, "init_from_mask", False))
    logger = init_log("global", log_file=getattr(args, "log", "") or None)
    logger.info("tracker %s on %s (%d sequences), %s", name, args.dataset, len(sequences), runtime.describe())
    speeds, mious, per_video = [], [], {}
    bar = tqdm(sequences, desc=args.dataset, unit="video", file=sys.stderr, dynamic_ncols=True)
    for v_id, seq in enumerate(bar, start=1):
        seq_dir = os.path.join(out_root, seq.name)

        def save(f: int, frame: str, best_id: np.ndarray, best_prob: np.ndarray, seq_dir: str = seq_dir) -> None:
            write_palette_png(os.path.join(seq_dir, frame + ".png"), labels_at(best_id, best_prob, seg_thr))

        res = run_vos_sequence(tracker, seq, binary=binary, init_from_mask=init_from_mask, on_frame=save)
        speeds.append(res.fps)
        per_video[seq.name] = res
        if res.miou is not None:
            mious.append(res.miou)
            for i, obj_id in enumerate(res.object_ids):
                for j, thr in enumerate(res.thresholds):
                    logger.info("Fusion Multi Object{:20s} IOU at {:.2f}: {:.4f}".format(
                        f"{seq.name}_{obj_id}", thr, res.miou[i, j]))
        for obj_id in res.skipped:
            tqdm.write(f"warning: {seq.name} object {obj_id}: empty first-frame mask, not tracked", file=sys.stderr)
        bar.write("({:3d}) Video: {:12s} Time: {:02.1f}s Speed: {:3.1f}fps".format(v_id, seq.name, res.time_s,
                                                                                  res.fps), file=sys.stdout)
    bar.close()
    summary: dict[str, Any] = {"tracker_name": name, "result_dir": out_root, "videos": per_video}
    if mious:
        overall = np.nanmean(np.concatenate(mious), axis=0)
        for thr, value in zip(MIOU_THRESHOLDS, overall):
            print("Segmentation Threshold {:.2f} mIoU: {:.3f}".format(thr, value))
        summary["miou"] = {f"{thr:.2f}": float(v) for thr, v in zip(MIOU_THRESHOLDS, overall)}
    mean_speed = float(np.mean(speeds)) if speeds else 0.0
    print(f"Mean Speed: {mean_speed:.2f} FPS")
    summary["mean_speed"] = mean_speed
    if args.dataset == "ytb_vos":
        zip_path = os.path.join(args.result_dir, args.dataset, f"{name}.zip")
        write_submission_zip(out_root, [s.name for s in sequences], zip_path)
        print(f"wrote {zip_path} (Annotations/<video>/<frame>.png, for the YouTube-VOS server)")
        summary["zip"] = zip_path
    print(f"results in {out_root}")
    return summary


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    """tools/test.py's flags (this module is its VOS mode; `python tools/vos_test.py` = `python tools/test.py`)."""
    from siammask.tools.test import get_args_parser as test_parser

    return test_parser(add_help)


def main(args: argparse.Namespace) -> int:
    """tools/test.py's `main` (a VOT dataset runs the VOT path there)."""
    from siammask.tools.test import main as test_main

    return test_main(args)


def cli() -> None:
    """Console-script body."""
    sys.exit(main(get_args_parser().parse_args()))


if __name__ == "__main__":
    cli()
