"""Serve the tracker over HTTP with CVAT's tracker-function protocol (semi-automatic video annotation).

``GET /health`` -> 200 once the model is loaded; ``POST /`` takes CVAT's JSON, single form
``{"image", "shape", "state"}`` or list form ``{"image", "shapes", "states"}`` (docs/annotation-server.md). The
state travels as plain JSON (no pickle); a state of another model is refused. Frames are decoded as ``cv2.imread``
decodes files (BGR), so the server answers what ``tools/demo.py`` tracks on the same frames and weights.

Binds to 127.0.0.1 unless ``--host`` says otherwise; ``--token`` (or ``SIAMMASK_SERVE_TOKEN``) requires
``Authorization: Bearer <token>``. Needs the ``serve`` extra: ``pip install 'siammask[serve]'``.
"""
from __future__ import annotations

import argparse
import logging
import os
import socket
import sys

from siammask.tools.test import ToolError
from siammask.tracker import DEFAULT_LOST_THRESHOLD
from siammask.tracker.build import add_backend_arguments
from siammask.utils.errors import run_tool, tool_cli
from siammask.utils.runtime import DEVICE_CHOICES

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="SiamMask annotation server (CVAT tracker-function protocol)",
                                     add_help=add_help)
    parser.add_argument("--config", default="experiments/siammask_sharp/config_davis.json",
                        help="config.json with hp + anchors (default: the DAVIS config, as CVAT's SiamMask function)")
    parser.add_argument("--resume", required=True, metavar="PATH", help="weights (e.g. SiamMask_DAVIS.pth)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine "
                        "only; 0.0.0.0 serves the network, use --token then)")
    parser.add_argument("--port", type=int, default=8080, help="TCP port (default 8080)")
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES, help="where the network runs")
    parser.add_argument("--fast", action="store_true", help="BatchNorm folded, bf16/fp16 weights + autocast, "
                        "channels_last (about 2x faster on CPU; not bit-exact)")
    add_backend_arguments(parser)
    parser.add_argument("--token", default=os.environ.get("SIAMMASK_SERVE_TOKEN", ""),
                        help="require 'Authorization: Bearer <token>' on POST / (default: $SIAMMASK_SERVE_TOKEN; "
                        "the environment keeps it out of the process list)")
    parser.add_argument("--max-image-pixels", type=int, default=40_000_000, metavar="N",
                        help="largest frame, width x height, checked from the header before decoding (default 40M: "
                        "an 8K frame fits)")
    parser.add_argument("--max-body-mb", type=float, default=32.0, metavar="MB",
                        help="largest request body in MiB (default 32, as CVAT's own function)")
    parser.add_argument("--max-targets", type=int, default=100, help="most targets in one request (default 100)")
    parser.add_argument("--workers", type=int, default=2, metavar="N",
                        help="requests handled at the same time, threads around the one model (default 2)")
    parser.add_argument("--max-connections", type=int, default=64, metavar="N",
                        help="open connections before the server answers 503 (bounds the bodies held in memory)")
    parser.add_argument("--lost-threshold", type=float, default=DEFAULT_LOST_THRESHOLD,
                        help="a target is reported lost when its score is below this")
    return parser


def _check_args(args: argparse.Namespace) -> None:
    if not 0 <= args.port <= 65535:
        raise ToolError(f"--port {args.port}: not a TCP port (0-65535)")
    for flag, value in (("--max-image-pixels", args.max_image_pixels), ("--max-body-mb", args.max_body_mb),
                        ("--max-targets", args.max_targets), ("--workers", args.workers),
                        ("--max-connections", args.max_connections)):
        if not value > 0:
            raise ToolError(f"{flag} {value}: must be positive")
    if not os.path.isfile(args.config):
        raise ToolError(f"--config {args.config}: no such file")


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (before the model loads, so a taken port fails in a second)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as e:
        raise ToolError(f"--host {host}: {e.strerror or e}") from e
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise ToolError(f"--host {host} --port {port}: cannot listen ({e.strerror or e})") from e
    return sock


def run(args: argparse.Namespace) -> None:
    """Load the model, then serve until Ctrl-C / SIGTERM; raises ToolError / SiamMaskError on user errors."""
    from siammask.serving.app import create_app, require_serve_extra
    from siammask.serving.handler import build_handler
    from siammask.serving.protocol import Limits

    require_serve_extra()  # before the model loads: a missing extra fails in a second
    _check_args(args)
    import uvicorn

    sock = bind_socket(args.host, args.port)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    log = logging.getLogger("siammask.serve")
    if args.host not in LOOPBACK and not args.token:
        log.warning("serving on %s without --token: anyone who can reach port %d can use this model", args.host,
                    args.port)
    limits = Limits(max_body_bytes=int(args.max_body_mb * (1 << 20)), max_image_pixels=args.max_image_pixels,
                    max_targets=args.max_targets)
    try:
        handler = build_handler(args.config, args.resume, args.device, fast=args.fast, backend=args.backend,
                                onnx_dir=args.onnx_dir, limits=limits, lost_threshold=args.lost_threshold)
        app = create_app(handler, token=args.token or None, workers=args.workers)
        host, port = sock.getsockname()[:2]
        log.info("model loaded (fingerprint %s); serving on http://%s:%d", handler.spec.fingerprint, host, port)
        config = uvicorn.Config(app, log_level="warning", access_log=False, limit_concurrency=args.max_connections,
                                timeout_keep_alive=5)
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


def main(args: argparse.Namespace) -> int:
    """Run the server; returns the exit status (0 stopped, 2 user error)."""
    return run_tool(run, args)


def cli() -> None:
    """Console script ``siammask-serve``."""
    tool_cli(main, get_args_parser)


if __name__ == "__main__":
    cli()
