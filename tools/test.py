"""Run the SiamMask tracker on a VOT dataset with the reset protocol and write VOT result files.

Ports `tools/test.py` of the original SiamMask (VOT path; reference.md A.4, E.4, E.5)::

    python tools/test.py --config experiments/siammask_sharp/config_vot.json --resume SiamMask_VOT.pth \\
        --mask --refine --dataset VOT2018

writes `results/VOT2018/Custom_mask_refine_SiamMask_VOT/baseline/<video>/<video>_001.txt` (read by tools/eval.py).

Differences from the original: the data root and the result folder are flags (`--data-root data/`,
`--result-dir results/`) instead of CWD-relative paths; `--dataset` choices do not depend on what is downloaded;
`--device` replaces `--cpu`; result files are written atomically; `--vis` draws only when a display exists;
`--save-mask` writes per-frame label PNGs of the VOT run. Errors (missing dataset, checkpoint, bad config) are one
line on stderr with exit status 2. The DAVIS / YouTube-VOS path (`--dataset DAVIS2016|DAVIS2017|ytb_vos --mask`)
runs tools/vos_test.py; the one-pass datasets (`--dataset OTB100|UAV123|LaSOT|GOT-10k|...`) run tools/ope_test.py.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, Optional

import cv2
import numpy as np
from tqdm import tqdm

from siammask.evaluation.davis import VOS_DATASETS
from siammask.evaluation.ope_datasets import OPE_DATASETS
from siammask.evaluation.vot import VOT_DATASETS, load_vot_dataset
from siammask.tracker import build_tracker, run_vot_sequence, vot_result_path, write_vot_result
from siammask.tracker.build import add_backend_arguments, check_tracker_inputs
from siammask.tracker.frames import FrameReader, check_frames_exist
from siammask.tracker.mask_ops import label_map
from siammask.utils.errors import SiamMaskError, run_tool, tool_cli
from siammask.utils.io import OutputLock, atomic_write_image, ensure_output_dir
from siammask.utils.log_helper import init_log
from siammask.utils.runtime import DEVICE_CHOICES

ToolError = SiamMaskError  # the name the VOS tools import; errors meant for the user


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Test SiamMask on a VOT dataset (reset protocol)", add_help=add_help)
    parser.add_argument("--config", required=True, help="experiment config.json (hp + anchors), e.g. "
                        "experiments/siammask_sharp/config_vot.json")
    parser.add_argument("--resume", required=True, metavar="PATH", help="weights: released .pth, pysot model.pth "
                        "or a training checkpoint")
    parser.add_argument("--mask", action="store_true", help="use the mask branch: report the mask's rotated "
                        "rectangle (8-value polygons) instead of the box")
    parser.add_argument("--refine", action="store_true", help="use the refinement module (sharp model) for the mask")
    parser.add_argument("--dataset", default="VOT2018", choices=VOT_DATASETS + VOS_DATASETS + tuple(OPE_DATASETS),
                        help="VOT dataset (default VOT2018), a VOS dataset with --mask, or an OPE dataset")
    parser.add_argument("--data-root", default="data", help="folder holding <dataset>.json and <dataset>/ "
                        "(default data/)")
    parser.add_argument("--video", default="", help="run only this video")
    parser.add_argument("--vis", action="store_true", help="show frames while tracking (needs a display)")
    parser.add_argument("--save-mask", action="store_true", help="with --mask: write per-frame mask PNGs to "
                        "<result-dir>/<dataset>/<tracker-name>/masks/<video>/")
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES, help="where the network runs "
                        "(auto: NPU, then CUDA, then CPU)")
    parser.add_argument("--amp", action="store_true", help="autocast the network (fp16 on NPU/CUDA, bf16 on CPU); "
                        "not bit-exact with the original")
    parser.add_argument("--channels-last", action="store_true", help="channels_last memory format")
    parser.add_argument("--fast", action="store_true", help="fast mode: BatchNorm folded into the convolutions, "
                        "bf16 (CPU) / fp16 (GPU, NPU) weights and autocast, channels_last; not bit-exact. Needs a CPU "
                        "with native bf16 (AVX512-BF16 / AMX), elsewhere it warns and runs the exact fp32 network")
    parser.add_argument("--result-dir", default="results", help="results land in <result-dir>/<dataset>/"
                        "<tracker-name>/baseline/ (default results/)")
    parser.add_argument("--tracker-name", default="", help="result folder name (default <arch>_[mask_][refine_]"
                        "<checkpoint name>, as the original)")
    parser.add_argument("--init-from-mask", action="store_true", help="VOS: initialise with init_mask (the mask) "
                        "instead of the original's bounding box of the first-frame mask")
    parser.add_argument("--skip-bad-frames", action="store_true", help="track past damaged frames (a JPEG cut short "
                        "or with corrupt data) by repeating the last good frame, and report them; without it a "
                        "damaged frame stops the run with an error naming the file")
    parser.add_argument("-l", "--log", default="", help="also log to this file")
    add_backend_arguments(parser)
    return parser


def default_tracker_name(arch: str, resume: str, mask: bool, refine: bool) -> str:
    """The original's result name: `<arch>_` + `mask_` + `refine_` + checkpoint basename up to its first dot."""
    ckpt = os.path.basename(resume).split(".")[0]
    return f"{arch}_" + ("mask_" if mask else "") + ("refine_" if refine else "") + ckpt


@dataclass
class _Visualiser:
    """Optional per-frame display (`--vis`); turns itself off with one warning when there is no display."""

    enabled: bool
    seg_thr: float

    def __call__(self, name: str, f: int, im: np.ndarray, gt: np.ndarray, region: Any, result: Any,
                 lost: int) -> None:
        if not self.enabled or isinstance(region, int):
            return
        show = im.copy()
        cv2.polylines(show, [np.asarray(gt, np.float64).reshape(-1, 1, 2).astype(np.int32)], True, (0, 255, 0), 3)
        if result is not None and result.mask is not None:
            show[:, :, 2] = np.where(result.mask > self.seg_thr, 255, show[:, :, 2])
        if result is not None:
            cv2.polylines(show, [np.asarray(result.polygon).reshape(-1, 1, 2).astype(np.int32)], True,
                          (0, 255, 255), 3)
        cv2.putText(show, str(f), (40, 40), cv2.FONT_HERSHEY_SIMPLEX, 1, (0, 255, 255), 2)
        cv2.putText(show, str(lost), (40, 80), cv2.FONT_HERSHEY_SIMPLEX, 1, (0, 0, 255), 2)
        try:
            cv2.imshow(name, show)
            cv2.waitKey(1)
        except cv2.error:
            tqdm.write("warning: --vis needs a display (OpenCV has no GUI here); continuing without it",
                       file=sys.stderr)
            self.enabled = False


def _frame_callback(video: Any, vis: _Visualiser, mask_dir: Optional[str],
                    seg_thr: float) -> Callable[[int, np.ndarray, Any, Any], None]:
    from siammask.tracker.vot import FAILURE, gt_polygon8

    lost = [0]

    def on_frame(f: int, im: np.ndarray, region: Any, result: Any) -> None:
        if isinstance(region, int) and region == FAILURE:
            lost[0] += 1
        vis(video.name, f, im, gt_polygon8(video.gt[f]), region, result, lost[0])
        if mask_dir is not None:
            prob = result.mask if result is not None else None
            labels = label_map([prob], seg_thr, im.shape[:2])
            stem = os.path.splitext(os.path.basename(video.img_paths[f]))[0]
            atomic_write_image(os.path.join(mask_dir, f"{stem}.png"), labels)

    return on_frame


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The work of `main`; raises ToolError on user errors. Returns per-video results and totals."""
    if args.dataset in VOS_DATASETS:
        from siammask.tools.vos_test import run_vos
        return run_vos(args)
    if args.dataset in OPE_DATASETS:
        from siammask.tools.ope_test import run_ope
        return run_ope(args)
    if args.save_mask and not args.mask:
        raise ToolError("--save-mask needs --mask")
    # everything a user can get wrong is checked before the model loads and the first video is tracked
    arch = check_tracker_inputs(args.config, args.resume).network.arch
    out_root = ensure_output_dir(os.path.join(args.result_dir, args.dataset), "--result-dir")
    dataset = load_vot_dataset(args.dataset, args.data_root)
    videos = list(dataset)
    if args.video:
        videos = [v for v in videos if v.name == args.video]
        if not videos:
            raise ToolError(f"video {args.video!r} is not in {args.dataset} ({dataset.json_path})")
    for video in videos:
        check_frames_exist(video.img_paths, f"{args.dataset} video {video.name}")
    name = args.tracker_name or default_tracker_name(arch, args.resume, args.mask, args.refine)
    with OutputLock(os.path.join(out_root, name), "--result-dir"):
        return _track_videos(args, videos, out_root, name)


def _track_videos(args: argparse.Namespace, videos: list[Any], out_root: str, name: str) -> dict[str, Any]:
    tracker, cfg, runtime = build_tracker(args.config, args.resume, args.device, args.amp, mask=args.mask,
                                          refine=args.refine, channels_last=args.channels_last, fast=args.fast,
                                          backend=args.backend, onnx_dir=args.onnx_dir,
                                          optimize=args.optimize, graphs=args.graphs)
    reader = FrameReader(skip_bad=args.skip_bad_frames)
    logger = init_log("global", log_file=args.log or None)
    logger.info("tracker %s on %s (%d videos), %s", name, args.dataset, len(videos), runtime.describe())
    vis = _Visualiser(enabled=args.vis, seg_thr=tracker.hp.seg_thr)
    total_lost, speeds, per_video = 0, [], {}
    bar = tqdm(videos, desc=args.dataset, unit="video", file=sys.stderr, dynamic_ncols=True)
    for v_id, video in enumerate(bar, start=1):
        mask_dir = os.path.join(out_root, name, "masks", video.name) if args.save_mask else None
        reader.reset()
        res = run_vot_sequence(tracker, video, use_polygon=args.mask, image_reader=reader,
                               on_frame=_frame_callback(video, vis, mask_dir, tracker.hp.seg_thr))
        write_vot_result(vot_result_path(out_root, name, video.name), res.regions)
        total_lost += res.lost
        speeds.append(res.fps)
        per_video[video.name] = res
        bar.write("({:3d}) Video: {:12s} Time: {:02.1f}s Speed: {:3.1f}fps Lost: {:d}".format(
            v_id, video.name, res.time_s, res.fps, res.lost), file=sys.stdout)
    bar.close()
    mean_speed = float(np.mean(speeds)) if speeds else 0.0
    print(f"Total Lost: {total_lost:d}")
    print(f"Mean Speed: {mean_speed:.2f} FPS")
    reader.report()
    logger.info("results in %s", os.path.join(out_root, name))
    return {"tracker_name": name, "result_dir": out_root, "videos": per_video, "total_lost": total_lost,
            "mean_speed": mean_speed, "bad_frames": list(reader.bad)}


def main(args: argparse.Namespace) -> int:
    """Run `tools/test.py`; returns the exit status (0 ok, 2 user error)."""
    return run_tool(run, args)


def cli() -> None:
    """Console script ``siammask-test``."""
    logging.captureWarnings(True)
    tool_cli(main, get_args_parser)


if __name__ == "__main__":
    cli()
