"""The SiamMask tracker as a TraX server, for the VOT toolkit (vot-toolkit, ``protocol = trax``).

Usage (the ``command`` of a trackers.ini entry; docs/vot-toolkit.md)::

    python tools/vot_trax.py --config experiments/siammask_sharp/config_vot.json --resume SiamMask_VOT.pth \\
        --mask --refine --out polygon

The model is loaded before the TraX handshake (no toolkit timeout applies before it). Every ``initialize`` request
(the reset protocol sends one after each failure) is served in the same process, and no ``vot`` metadata is
announced, so the toolkit does not restart the process at a reset. Accepted input regions: polygon, rectangle and
mask (never mask only: libtrax 4.0.2 converts polygons to masks wrongly). A polygon or a rectangle initialises as
tools/test.py does (``get_axis_aligned_bbox`` of the 8-value polygon; a rectangle is first turned into the polygon
the VOT loader makes of it; a polygon with another vertex count uses its axis-aligned bounds); a mask initialises
from its bounding box (``init_mask``). Frames are read as tools/test.py reads them (``cv2.imread``, BGR), so the same
weights give tools/test.py's regions frame for frame.

Outputs (``--out``): ``polygon`` = the tracker's polygon (the mask's rotated rectangle with ``--mask``, else the box
corners, as tools/test.py's regions), ``rectangle`` = the box, ``mask`` (needs ``--mask``) = the thresholded mask
(``hp.seg_thr``) as a crop at its offset. Each reply carries ``confidence`` = the tracker's score (1 at init).
The ``initialize`` reply is the region received.

Needs ``pip install vot-trax`` (``pip install siammask[vot]``).
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Optional

import numpy as np

from siammask.tracker.build import add_backend_arguments, build_tracker
from siammask.tracker.frames import read_frame
from siammask.tracker.vot import gt_polygon8
from siammask.utils.bbox import get_axis_aligned_bbox
from siammask.utils.errors import SiamMaskError, run_tool, tool_cli
from siammask.utils.runtime import DEVICE_CHOICES

OUTPUTS = ("polygon", "rectangle", "mask")
TRACKER_NAME = "SiamMask"


class TraxToolError(SiamMaskError):
    """A user error of tools/vot_trax.py (vot-trax missing, a flag combination)."""


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="SiamMask as a TraX server for the VOT toolkit", add_help=add_help)
    parser.add_argument("--config", required=True, help="experiment config.json (hp + anchors)")
    parser.add_argument("--resume", required=True, metavar="PATH", help="weights: released .pth, pysot model.pth "
                        "or a training checkpoint")
    parser.add_argument("--mask", action="store_true", help="use the mask branch (polygon = the mask's rotated "
                        "rectangle, as tools/test.py --mask)")
    parser.add_argument("--refine", action="store_true", help="use the refinement module (sharp model)")
    parser.add_argument("--out", default="polygon", choices=OUTPUTS, help="region reported to the toolkit "
                        "(default polygon; mask needs --mask)")
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES, help="where the network runs")
    add_backend_arguments(parser)
    return parser


def import_trax() -> Any:
    """The vot-trax module, or a TraxToolError naming what to install."""
    try:
        import trax
    except ImportError:
        raise TraxToolError("tools/vot_trax.py needs vot-trax: pip install vot-trax") from None
    return trax


def init_box(trax: Any, region: Any) -> tuple[float, float, float, float]:
    """(cx, cy, w, h) of a polygon or rectangle region, as tools/test.py initialises from a ground-truth row."""
    if region.type == trax.Region.RECTANGLE:
        return get_axis_aligned_bbox(gt_polygon8(region.bounds()))
    points = np.array(list(region), dtype=np.float64).reshape(-1, 2)
    if len(points) == 4:
        return get_axis_aligned_bbox(points.ravel())
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    return get_axis_aligned_bbox([x0, y0, x1 - x0, y1 - y0])


def full_mask(region: Any, height: int, width: int) -> np.ndarray:
    """A TraX mask region as an (height, width) uint8 array (``array(True)`` pads only the top-left offset)."""
    mask = region.array(True)
    out = np.zeros((height, width), dtype=np.uint8)
    h, w = min(height, mask.shape[0]), min(width, mask.shape[1])
    out[:h, :w] = mask[:h, :w]
    return out


def output_region(trax: Any, result: Any, out: str, seg_thr: float) -> Any:
    """The TraX region of a TrackResult: polygon corners, box, or the thresholded mask's crop at its offset."""
    if out == "polygon":
        return trax.Polygon.create([(float(x), float(y)) for x, y in np.asarray(result.polygon).reshape(-1, 2)])
    if out == "rectangle":
        x, y, w, h = (float(v) for v in result.box)
        return trax.Rectangle.create(x, y, w, h)
    binary = (result.mask > seg_thr).astype(np.uint8)
    ys, xs = np.nonzero(binary)
    if not len(xs):
        return trax.Mask.create(np.zeros((1, 1), np.uint8), 0, 0)
    x0, y0 = int(xs.min()), int(ys.min())
    return trax.Mask.create(np.ascontiguousarray(binary[y0:ys.max() + 1, x0:xs.max() + 1]), x0, y0)


def serve(server: Any, tracker: Any, trax: Any, out: str) -> int:
    """Answer requests until ``quit``; returns the number of ``initialize`` requests served."""
    state: Optional[Any] = None
    inits = 0
    seg_thr = tracker.hp.seg_thr
    while True:
        request = server.wait()
        if request.type == trax.TraxStatus.QUIT:
            return inits
        frame = read_frame(request.image["color"].path())
        if request.type == trax.TraxStatus.INITIALIZE:
            region, _ = request.objects[0]
            if region.type == trax.Region.MASK:
                state = tracker.init_mask(frame, full_mask(region, frame.shape[0], frame.shape[1]))
            else:
                state = tracker.init_cxcywh(frame, init_box(trax, region))
            inits += 1
            server.status([(region, {"confidence": 1.0})])
        elif request.type == trax.TraxStatus.FRAME:
            if state is None:
                raise TraxToolError("TraX: a frame request came before any initialize")
            result = tracker.track(state, frame)
            server.status([(output_region(trax, result, out, seg_thr), {"confidence": float(result.score)})])


def run(args: argparse.Namespace) -> int:
    """Load the model, then serve TraX on stdin/stdout until the client quits."""
    trax = import_trax()
    if args.out == "mask" and not args.mask:
        raise TraxToolError("--out mask needs --mask")
    tracker, _, _ = build_tracker(args.config, args.resume, args.device, mask=args.mask, refine=args.refine,
                                  backend=args.backend, onnx_dir=args.onnx_dir, optimize=args.optimize,
                                  # one process per sequence: a second to build beats 5-20 s of compiling
                                  graphs="torchscript" if args.graphs == "auto" else args.graphs)
    server = trax.Server([trax.Region.POLYGON, trax.Region.RECTANGLE, trax.Region.MASK], [trax.Image.PATH],
                         ["color"], tracker_name=TRACKER_NAME)
    try:
        inits = serve(server, tracker, trax, args.out)
    finally:
        server.quit()
    print(f"vot_trax: served {inits} initialize request(s)", file=sys.stderr)
    return inits


def main(args: argparse.Namespace) -> int:
    """Run tools/vot_trax.py; returns the exit status (0 ok, 2 user error)."""
    return run_tool(run, args)


def cli() -> None:
    tool_cli(main, get_args_parser)


if __name__ == "__main__":
    cli()
