"""The OPE mode of tools/test.py: one pass over OTB100, UAV123, LaSOT, GOT-10k or the built-in SyntheticOPE.

``python tools/test.py --config experiments/siammask_sharp/config_vot.json --resume SiamMask_VOT.pth --dataset OTB100``
runs :func:`siammask.tracker.ope.run_ope_sequence` on every video (init on frame 0 from the ground truth, then track
without resets) and writes pysot's result layout: ``<result-dir>/<dataset>/<tracker-name>/<video>.txt`` (one
``x,y,w,h`` line per frame), for GOT-10k ``<result-dir>/GOT-10k/<tracker-name>/<video>/<video>_001.txt`` and
``<video>_time.txt``. As pysot it prints ``(n) Video: <name> Time: <s>s Speed: <fps>fps`` per video. The recorded
location is the tracker's box in mask mode too (pysot's OPE records ``outputs['bbox']``), so ``--mask`` / ``--refine``
change only the tracker name and the work done. New (the original SiamMask had no OPE path; pysot's test.py has).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from siammask.evaluation.ope_datasets import OPE_DATASETS, load_ope_dataset
from siammask.tracker.build import check_tracker_inputs
from siammask.tracker.frames import FrameReader, check_frames_exist
from siammask.tracker.ope import run_ope_sequence, write_ope_result
from siammask.utils.errors import tool_cli
from siammask.utils.io import OutputLock, ensure_output_dir
from siammask.utils.log_helper import init_log


class _BoxVisualiser:
    """Optional per-frame display (`--vis`) of the ground truth (green) and the tracker's box (yellow)."""

    def __init__(self, enabled: bool, video: Any) -> None:
        self.enabled = enabled
        self.video = video

    def __call__(self, f: int, im: np.ndarray, box: np.ndarray) -> None:
        if not self.enabled or f == 0:
            return
        show = im.copy()
        if f < len(self.video.gt) and np.all(np.isfinite(self.video.gt[f])):
            x, y, w, h = (int(v) for v in self.video.gt[f])
            cv2.rectangle(show, (x, y), (x + w, y + h), (0, 255, 0), 3)
        if np.all(np.isfinite(box)):
            x, y, w, h = (int(v) for v in box)
            cv2.rectangle(show, (x, y), (x + w, y + h), (0, 255, 255), 3)
        cv2.putText(show, str(f), (40, 40), cv2.FONT_HERSHEY_SIMPLEX, 1, (0, 255, 255), 2)
        try:
            cv2.imshow(self.video.name, show)
            cv2.waitKey(1)
        except cv2.error:
            tqdm.write("warning: --vis needs a display (OpenCV has no GUI here); continuing without it",
                       file=sys.stderr)
            self.enabled = False


def run_ope(args: argparse.Namespace) -> dict[str, Any]:
    """tools/test.py on an OPE dataset (see the module docstring); user errors raise SiamMaskError subclasses.

    Returns:
        ``tracker_name``, ``result_dir`` (``<result-dir>/<dataset>``), per-video results and ``mean_speed``.
    """
    from siammask.tools.test import ToolError, default_tracker_name
    from siammask.tracker import build_tracker

    if args.save_mask:
        raise ToolError(f"--save-mask writes VOT/VOS masks; --dataset {args.dataset} records boxes only")
    spec = OPE_DATASETS[args.dataset]
    out_root = ensure_output_dir(os.path.join(args.result_dir, args.dataset), "--result-dir")
    dataset = load_ope_dataset(args.dataset, args.data_root)
    videos = list(dataset)
    if args.video:
        videos = [v for v in videos if v.name == args.video]
        if not videos:
            raise ToolError(f"video {args.video!r} is not in {args.dataset} ({dataset.source})")
    for video in videos:  # checked before any tracking
        box = video.init_box
        if not (box[2] > 0 and box[3] > 0):
            raise ToolError(f"{dataset.source}: video '{video.name}': the first frame's ground truth "
                            f"{box.tolist()} has no positive width and height")
        check_frames_exist(video.img_paths, f"{args.dataset} video {video.name}")
    arch = check_tracker_inputs(args.config, args.resume).network.arch
    name = args.tracker_name or default_tracker_name(arch, args.resume, args.mask, args.refine)
    with OutputLock(os.path.join(out_root, name), "--result-dir"):
        return _track_videos(args, spec, videos, out_root, name, build_tracker)


def _track_videos(args: argparse.Namespace, spec: Any, videos: list[Any], out_root: str, name: str,
                  build_tracker: Any) -> dict[str, Any]:
    tracker, _, runtime = build_tracker(args.config, args.resume, args.device, args.amp, mask=args.mask,
                                        refine=args.refine, channels_last=args.channels_last, fast=args.fast,
                                        backend=args.backend, onnx_dir=args.onnx_dir,
                                        optimize=args.optimize, graphs=args.graphs)
    reader = FrameReader(skip_bad=args.skip_bad_frames)
    logger = init_log("global", log_file=args.log or None)
    logger.info("tracker %s on %s (%d videos, one pass), %s", name, args.dataset, len(videos), runtime.describe())
    speeds, per_video = [], {}
    bar = tqdm(videos, desc=args.dataset, unit="video", file=sys.stderr, dynamic_ncols=True)
    for v_id, video in enumerate(bar, start=1):
        reader.reset()
        res = run_ope_sequence(tracker, video, on_frame=_BoxVisualiser(args.vis, video), image_reader=reader)
        write_ope_result(out_root, name, video.name, res, spec.layout)
        speeds.append(res.fps)
        per_video[video.name] = res
        bar.write("({:3d}) Video: {:12s} Time: {:5.1f}s Speed: {:3.1f}fps".format(
            v_id, video.name, res.time_s, res.fps), file=sys.stdout)
    bar.close()
    mean_speed = float(np.mean(speeds)) if speeds else 0.0
    print(f"Mean Speed: {mean_speed:.2f} FPS")
    reader.report()
    logger.info("results in %s", os.path.join(out_root, name))
    return {"tracker_name": name, "result_dir": out_root, "videos": per_video, "mean_speed": mean_speed,
            "bad_frames": list(reader.bad)}


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    """tools/test.py's flags (this module is its OPE mode; `python tools/ope_test.py` = `python tools/test.py`)."""
    from siammask.tools.test import get_args_parser as test_parser

    return test_parser(add_help)


def main(args: argparse.Namespace) -> int:
    """tools/test.py's `main` (a VOT or VOS dataset runs its own path there)."""
    from siammask.tools.test import main as test_main

    return test_main(args)


def cli() -> None:
    """Console-script body."""
    tool_cli(main, get_args_parser)


if __name__ == "__main__":
    cli()
