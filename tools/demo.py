"""Track one or several objects in an image folder, a video file or a camera, with or without a display.

Ports `tools/demo.py` of the original SiamMask (reference.md A.6): sharp model, mask + refine, mask tinted into the
red channel, rotated box in green. Additions (users.md items 2, 3, 8, 10, 14):

* `--input` takes an image folder, a video file, a stream URL or a camera index (the original: a folder of JPEGs
  only);
* objects come from `--init x,y,w,h` (repeatable: several objects, tracked in one network call per frame),
  `--init-mask PNG` (every non-zero label is an object; its box is `cv2.boundingRect` as the original's VOS init) or,
  only when a display exists, interactive `cv2.selectROIs`;
* `--output DIR` writes `overlay.mp4` (mp4v), `masks/<frame>.png` (palette PNG, DAVIS colours: object k has
  index k, 0 = none;
  frame 0 holds the init masks, or the filled init boxes), and `tracks.json` (per frame and object: box, polygon,
  score, lost);
* `--no-display` runs headless (and is implied when OpenCV has no GUI).

Prints `SiamMask Time: Xs Speed: Y fps` (tracking only) and the FPS including reading, drawing and writing.
"""
from __future__ import annotations

import argparse
import contextlib
import glob
import itertools
import math
import os
import sys
import time
from typing import Any, Iterator, Optional

import cv2
import numpy as np
from tqdm import tqdm

from siammask.tools.test import ToolError
from siammask.tracker import DEFAULT_LOST_THRESHOLD, TargetState, build_tracker, init_result
from siammask.tracker.build import add_backend_arguments, check_tracker_inputs
from siammask.tracker.frames import FrameError, read_frame
from siammask.tracker.mask_ops import label_map
from siammask.utils.bbox import mask_to_xywh, xywh_to_corners4x2
from siammask.utils.errors import run_tool, tool_cli
from siammask.utils.io import atomic_write_json, ensure_output_dir
from siammask.utils.palette import write_palette_png
from siammask.utils.runtime import DEVICE_CHOICES

IMAGE_PATTERNS = ("*.jpg", "*.jpeg", "*.png", "*.bmp", "*.JPG", "*.JPEG", "*.PNG")
WINDOW = "SiamMask"
# BGR colours per object (object 1 is the original's red tint / green box).
PALETTE = np.array([[0, 0, 255], [255, 0, 0], [0, 200, 255], [255, 0, 255], [255, 255, 0], [0, 128, 255],
                    [128, 0, 255], [0, 255, 128]], dtype=np.uint8)


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="SiamMask demo: track objects in a folder, video or camera",
                                     add_help=add_help)
    parser.add_argument("--resume", required=True, metavar="PATH", help="weights (e.g. SiamMask_DAVIS.pth)")
    parser.add_argument("--config", default="experiments/siammask_sharp/config_davis.json",
                        help="config.json with hp + anchors (default: the DAVIS config, as the original)")
    parser.add_argument("--input", required=True, help="image folder, video file, stream URL (rtsp://, http://) "
                        "or camera index (e.g. 0)")
    parser.add_argument("--init", action="append", default=[], metavar="X,Y,W,H",
                        help="initial box of an object on the first frame (0-based pixels); repeat for several")
    parser.add_argument("--init-mask", default="", metavar="PNG", help="first-frame mask; every non-zero label "
                        "value is one object")
    parser.add_argument("--output", default="", metavar="DIR", help="write overlay.mp4, masks/*.png and "
                        "tracks.json here")
    parser.add_argument("--no-display", action="store_true", help="do not open a window")
    parser.add_argument("--max-frames", type=int, default=0, help="stop after this many frames (0 = all)")
    parser.add_argument("--fps", type=float, default=0.0, help="frame rate of overlay.mp4 (default: the video's, "
                        "else 25)")
    parser.add_argument("--lost-threshold", type=float, default=DEFAULT_LOST_THRESHOLD,
                        help="an object is reported lost when its score is below this")
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES, help="where the network runs")
    parser.add_argument("--amp", action="store_true", help="autocast the network (bf16 on CPU, fp16 on GPU/NPU)")
    parser.add_argument("--channels-last", action="store_true", help="channels_last memory format")
    parser.add_argument("--fast", action="store_true", help="BatchNorm folded, bf16/fp16 weights + autocast, "
                        "channels_last (not bit-exact; on a CPU without native bf16 it warns and runs the exact "
                        "network)")
    parser.add_argument("--skip-bad-frames", action="store_true", help="skip damaged image files of a folder input "
                        "(listed in tracks.json) instead of stopping with an error naming the file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    add_backend_arguments(parser)
    return parser


class FrameSource:
    """Frames (BGR uint8) and their names from an image folder, a video file or a camera index."""

    def __init__(self, spec: str, skip_bad: bool = False) -> None:
        self.spec = spec
        self.skip_bad = skip_bad
        self.bad: list[str] = []  # damaged image files skipped ("<path>: <reason>")
        self.files: list[str] = []
        self.capture: Optional[cv2.VideoCapture] = None
        self.fps = 0.0
        if os.path.isdir(spec):
            files = sorted({f for pattern in IMAGE_PATTERNS for f in glob.glob(os.path.join(spec, pattern))})
            if not files:
                raise ToolError(f"--input {spec}: no images (*.jpg, *.png, *.bmp) in this folder")
            self.files = files
        elif spec.isdigit() or os.path.isfile(spec) or "://" in spec:
            self.capture = cv2.VideoCapture(int(spec) if spec.isdigit() else spec)
            if not self.capture.isOpened():
                what = "camera" if spec.isdigit() else "stream" if "://" in spec else "video file"
                raise ToolError(f"--input {spec}: cannot open this {what}")
            self.fps = float(self.capture.get(cv2.CAP_PROP_FPS) or 0.0)
        else:
            raise ToolError(f"--input {spec}: no such folder, video file or camera index")

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        if self.files:
            for path in self.files:
                try:
                    im = read_frame(path)
                except FrameError as e:
                    if not self.skip_bad:
                        raise
                    self.bad.append(str(e))
                    continue
                yield os.path.splitext(os.path.basename(path))[0], im
        else:
            assert self.capture is not None
            index = 0
            while True:
                ok, im = self.capture.read()
                if not ok:
                    break
                yield f"{index:05d}", im
                index += 1
            self.capture.release()


def parse_box(text: str) -> tuple[float, float, float, float]:
    """'x,y,w,h' -> floats with w, h > 0."""
    try:
        values = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or not all(math.isfinite(v) for v in values) or values[2] <= 0 or values[3] <= 0:
        raise ToolError(f"--init {text!r}: expected x,y,w,h (finite numbers) with positive w and h")
    return values[0], values[1], values[2], values[3]


def has_display() -> bool:
    """True when OpenCV can open a window."""
    try:
        cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
        return True
    except cv2.error:
        return False


def draw_overlay(frame: np.ndarray, results: list[Any], seg_thr: float) -> np.ndarray:
    """Mask tint, rotated box and score per object (object 1 as the original: red tint, green box).

    Args:
        frame: (H, W, 3) BGR uint8.
        results: per object a TrackResult (or None: not drawn).
    """
    out = frame.copy()
    for k, res in enumerate(results):
        if res is None:
            continue
        colour = PALETTE[k % len(PALETTE)]
        if res.mask is not None:
            sel = res.mask > seg_thr
            if k == 0:
                out[:, :, 2][sel] = 255
            else:
                out[sel] = (0.5 * out[sel] + 0.5 * colour).astype(np.uint8)
        box_colour = (0, 255, 0) if k == 0 else tuple(int(c) for c in colour)
        if res.lost:
            box_colour = (128, 128, 128)
        pts = np.asarray(res.polygon, np.float64).reshape(-1, 1, 2).astype(np.int32)
        cv2.polylines(out, [pts], True, box_colour, 3)
        x, y = int(pts[:, 0, 0].min()), int(pts[:, 0, 1].min())
        label = f"{k + 1}: {res.score:.2f}" + (" lost" if res.lost else "")
        cv2.putText(out, label, (max(x, 0), max(y - 6, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, box_colour, 1)
    return out


def _init_objects(args: argparse.Namespace, frame: np.ndarray,
                  display: bool) -> tuple[list[tuple[float, float, float, float]], Optional[np.ndarray]]:
    """Boxes of the objects to track and (with --init-mask) the first-frame label map."""
    if args.init_mask:
        labels = cv2.imread(args.init_mask, cv2.IMREAD_UNCHANGED)
        if labels is None:
            raise ToolError(f"--init-mask {args.init_mask}: cannot read this image")
        if labels.ndim == 3:  # colour (e.g. a palette PNG that OpenCV expanded): one object per colour
            colours, index = np.unique(labels.reshape(-1, labels.shape[2]), axis=0, return_inverse=True)
            ids_img = index.reshape(labels.shape[:2]).astype(np.int64)
            black = np.where(~colours.any(axis=1))[0]
            labels = ids_img + 1
            if black.size:
                labels[ids_img == black[0]] = 0
        if labels.shape[:2] != frame.shape[:2]:
            raise ToolError(f"--init-mask {args.init_mask}: size {labels.shape[1]}x{labels.shape[0]} differs from "
                            f"the first frame's {frame.shape[1]}x{frame.shape[0]}")
        ids = [int(v) for v in np.unique(labels) if v != 0]
        if not ids:
            raise ToolError(f"--init-mask {args.init_mask}: the mask is empty")
        boxes = [tuple(float(v) for v in mask_to_xywh(labels == i)) for i in ids]
        label_img = np.zeros(labels.shape[:2], np.uint8)
        for k, i in enumerate(ids):
            label_img[labels == i] = k + 1
        return boxes, label_img  # type: ignore[return-value]
    if args.init:
        return [parse_box(text) for text in args.init], None
    if not display:
        raise ToolError("no --init or --init-mask given and no display for interactive selection")
    rois = cv2.selectROIs(WINDOW, frame, False, False)
    boxes = [tuple(float(v) for v in roi) for roi in np.asarray(rois).reshape(-1, 4) if roi[2] > 0 and roi[3] > 0]
    if not boxes:
        raise ToolError("no object selected")
    return boxes, None  # type: ignore[return-value]


def _box_label_map(boxes: list[tuple[float, float, float, float]], shape: tuple[int, int]) -> np.ndarray:
    out = np.zeros(shape, np.uint8)
    for k, (x, y, w, h) in enumerate(boxes):
        out[max(round(y), 0):max(round(y + h), 0), max(round(x), 0):max(round(x + w), 0)] = k + 1
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The work of `main`; raises ToolError on user errors. Returns the summary written to tracks.json.

    Everything a user can get wrong (the boxes, the mask, the input, the output folder, the config and checkpoint
    files) is checked before the model loads and before anything is written.
    """
    for text in args.init:
        parse_box(text)
    if args.max_frames < 0:
        raise ToolError(f"--max-frames must be >= 0 (0 = all), got {args.max_frames}")
    if not (math.isfinite(args.fps) and args.fps >= 0):
        raise ToolError(f"--fps must be >= 0 (0 = the video's, else 25), got {args.fps}")
    if not 0 <= args.lost_threshold <= 1:  # also refuses NaN
        raise ToolError(f"--lost-threshold is a score in [0, 1], got {args.lost_threshold}")
    if args.init_mask and not os.path.isfile(args.init_mask):
        raise ToolError(f"--init-mask {args.init_mask}: no such file")
    check_tracker_inputs(args.config, args.resume)
    source = FrameSource(args.input, skip_bad=args.skip_bad_frames)
    frames = iter(source)
    first = next(frames, None)
    if first is None:
        raise ToolError(f"--input {args.input}: no frames")
    display = not args.no_display and has_display()
    boxes, init_labels = _init_objects(args, first[1], display)
    _check_inside(boxes, first[1])
    out_dir = args.output
    if out_dir:
        ensure_output_dir(os.path.join(out_dir, "masks"), "--output")
    tracker, _, runtime = build_tracker(args.config, args.resume, args.device, args.amp, mask=True, refine=None,
                                        channels_last=args.channels_last, lost_threshold=args.lost_threshold,
                                        fast=args.fast, backend=args.backend, onnx_dir=args.onnx_dir,
                                        optimize=args.optimize, graphs=args.graphs)
    video_tmp = os.path.join(out_dir, ".overlay.partial.mp4") if out_dir else None
    try:
        summary = _track(args, tracker, runtime, source, itertools.chain([first], frames), boxes, init_labels,
                         display, video_tmp)
    except BaseException:
        if video_tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.remove(video_tmp)  # nothing half-written stays behind
        raise
    return summary


def _check_inside(boxes: list[tuple[float, float, float, float]], frame: np.ndarray) -> None:
    for b in boxes:
        x, y, w, h = b
        if x + w <= 0 or y + h <= 0 or x >= frame.shape[1] or y >= frame.shape[0]:
            raise ToolError(f"--init {','.join(f'{v:g}' for v in b)}: the box lies outside the first frame "
                            f"({frame.shape[1]}x{frame.shape[0]})")


def _object_json(k: int, r: Any) -> dict[str, Any]:
    """One object's entry in tracks.json; a non-finite box (a diverged model) is null and lost, never a number."""
    box = np.asarray(r.box, np.float64)
    polygon = np.asarray(r.polygon, np.float64)
    if not (np.isfinite(box).all() and np.isfinite(polygon).all()):
        return {"id": k + 1, "box": None, "polygon": None, "score": float(np.nan_to_num(r.score)), "lost": True}
    return {"id": k + 1, "box": box.tolist(), "polygon": polygon.tolist(), "score": float(r.score),
            "lost": bool(r.lost)}


def _track(args: argparse.Namespace, tracker: Any, runtime: Any, source: FrameSource,
           frames: Iterator[tuple[str, np.ndarray]], boxes: list[tuple[float, float, float, float]],
           init_labels: Optional[np.ndarray], display: bool, video_tmp: Optional[str]) -> dict[str, Any]:
    out_dir = args.output
    seg_thr = tracker.hp.seg_thr
    writer: Optional[cv2.VideoWriter] = None
    frames_json: list[dict[str, Any]] = []
    states: list[TargetState] = []
    track_time, n_tracked, f = 0.0, 0, -1
    wall_start = time.perf_counter()
    total = len(source.files) or None
    if args.max_frames:
        total = min(total, args.max_frames) if total else args.max_frames
    bar = tqdm(total=total, unit="frame", desc="SiamMask", file=sys.stderr, dynamic_ncols=True,
               disable=args.no_progress)
    try:
        for f, (name, frame) in enumerate(frames):
            if args.max_frames and f >= args.max_frames:
                f -= 1
                break
            if f == 0:
                tic = time.perf_counter()
                states = [tracker.init(frame, b) for b in boxes]
                track_time += time.perf_counter() - tic
                objects = [{"id": k + 1, "box": [float(v) for v in b], "polygon": xywh_to_corners4x2(b).tolist(),
                            "score": 1.0, "lost": False, "init": True} for k, b in enumerate(boxes)]
                labels = init_labels if init_labels is not None else _box_label_map(boxes, frame.shape[:2])
                shown = draw_overlay(frame, [init_result(st) for st in states], seg_thr)
            else:
                tic = time.perf_counter()
                results = tracker.track_many(states, frame)
                track_time += time.perf_counter() - tic
                n_tracked += 1
                objects = [_object_json(k, r) for k, r in enumerate(results)]
                labels = label_map([r.mask for r in results], seg_thr, frame.shape[:2])
                shown = draw_overlay(frame, list(results), seg_thr)
            frames_json.append({"frame": f, "name": name, "objects": objects})
            if out_dir:
                write_palette_png(os.path.join(out_dir, "masks", f"{name}.png"), labels)  # ids, DAVIS colours
                if writer is None:
                    fps = args.fps or source.fps or 25.0
                    writer = cv2.VideoWriter(video_tmp, cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                             (frame.shape[1], frame.shape[0]))
                    if not writer.isOpened():
                        raise ToolError(f"cannot write {video_tmp} (no mp4v encoder in this OpenCV build)")
                writer.write(shown)
            bar.update(1)
            if n_tracked and track_time > 0:
                bar.set_postfix_str(f"{n_tracked / track_time:.1f} fps tracking", refresh=False)
            if display:
                cv2.imshow(WINDOW, shown)
                if cv2.waitKey(1) > 0:
                    break
    finally:
        bar.close()
        if writer is not None:
            writer.release()
    if writer is not None and video_tmp is not None:
        os.replace(video_tmp, os.path.join(out_dir, "overlay.mp4"))
    wall = time.perf_counter() - wall_start
    speed = n_tracked / track_time if track_time > 0 else 0.0
    summary = {"input": args.input, "device": runtime.describe(), "num_objects": len(states),
               "num_frames": len(frames_json), "seg_thr": seg_thr, "lost_threshold": tracker.lost_threshold,
               "tracking_fps": speed, "skipped_frames": list(source.bad), "frames": frames_json}
    if out_dir:
        atomic_write_json(os.path.join(out_dir, "tracks.json"), summary)
    print("SiamMask Time: {:02.1f}s Speed: {:3.1f}fps ({} object{}, tracking only)".format(
        track_time, speed, len(states), "" if len(states) == 1 else "s"))
    print("End-to-end: {:3.1f}fps (reading, drawing{} included)".format(
        len(frames_json) / wall if wall > 0 else 0.0, " and writing" if out_dir else ""))
    if source.bad:
        print(f"Skipped {len(source.bad)} damaged frame{'s' if len(source.bad) > 1 else ''}:")
        for line in source.bad:
            print(f"  {line}")
    return summary


def main(args: argparse.Namespace) -> int:
    """Run the demo; returns the exit status (0 ok, 2 user error)."""
    return run_tool(run, args)


def cli() -> None:
    """Console script ``siammask-demo``."""
    tool_cli(main, get_args_parser)


if __name__ == "__main__":
    cli()
