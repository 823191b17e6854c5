"""Requests per second and latency of the annotation server (tools/serve.py's app) under 1, 4 and 16 clients.

Usage::

    python bench/serve_load.py                          # random sharp weights, CPU, 2 worker threads
    python bench/serve_load.py --resume SiamMask_DAVIS.pth --concurrency 1,4 --rounds 5

An in-process uvicorn server on a free localhost port serves the sharp model (config_davis, mask + refine); each
client sends CVAT single-form track requests (one target, a 640x480 JPEG, the state of one init) back to back over
real HTTP (urllib, a new connection per request, as CVAT's `requests` calls). A round is `--requests` requests per
client; each concurrency level runs `--rounds` rounds. Reported per level: requests/s of the round and the p50 / p95
latency within the round, each as the median over rounds with the spread (bench/_common.py). No figure is
asserted anywhere; CPU figures depend on the load of the machine (the header says it).
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import statistics
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import _common
import cv2
import numpy as np
import torch

CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "experiments", "siammask_sharp",
                      "config_davis.json")


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="annotation server load: requests/s, p50/p95 latency",
                                     add_help=add_help)
    parser.add_argument("--config", default=CONFIG, help="config.json (default: the DAVIS sharp config)")
    parser.add_argument("--resume", default="", help="weights (default: a seed-0 random sharp model)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--fast", action="store_true", help="the server's --fast mode")
    parser.add_argument("--workers", type=int, default=2, help="the server's --workers (default 2)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--concurrency", default="1,4,16", help="comma list of client counts (default 1,4,16)")
    parser.add_argument("--requests", type=int, default=2, help="requests per client per round (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per concurrency level (default 3)")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--json", default="", help="write the figures to this JSON file")
    return parser


def _frames(width: int, height: int) -> list[str]:
    """Two base64 JPEG frames: a textured background and an ellipse that moves between them."""
    rng = np.random.default_rng(0)
    base = cv2.resize(rng.integers(0, 256, (height // 20, width // 20, 3), dtype=np.uint8), (width, height),
                      interpolation=cv2.INTER_CUBIC)
    out = []
    for shift in (0, 6):
        im = base.copy()
        cv2.ellipse(im, (width // 3 + shift, height // 2), (40, 25), 0, 0, 360, (30, 200, 240), -1)
        out.append(base64.b64encode(cv2.imencode(".jpg", im)[1].tobytes()).decode("ascii"))
    return out


def _post(url: str, payload: dict[str, Any]) -> tuple[float, int]:
    data = json.dumps(payload).encode()
    tic = time.perf_counter()
    req = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as resp:
        resp.read()
        status = resp.status
    return time.perf_counter() - tic, status


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def run(args: argparse.Namespace) -> dict[str, Any]:
    import uvicorn

    from siammask.models import build_model
    from siammask.serving import build_handler
    from siammask.serving.app import create_app

    torch.set_num_threads(args.threads)
    tmp = tempfile.TemporaryDirectory()
    resume = args.resume
    if not resume:
        torch.manual_seed(0)
        resume = os.path.join(tmp.name, "random_sharp.pth")
        torch.save(build_model(args.config).state_dict(), resume)
    handler = build_handler(args.config, resume, args.device, fast=args.fast)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(handler, workers=args.workers), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}/"
    frames = _frames(args.width, args.height)
    box = [args.width // 3 - 40, args.height // 2 - 25, args.width // 3 + 40, args.height // 2 + 25]
    req = urllib.request.Request(url, data=json.dumps({"image": frames[0], "shape": box, "state": None}).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as resp:
        state = json.loads(resp.read())["state"]
    payload = {"image": frames[1], "shape": None, "state": state}
    _post(url, payload)  # warm-up

    info = _common.machine_info(threads=args.threads, device=args.device)
    _common.print_header("annotation server load (tools/serve.py app, CVAT single-form track requests)",
                         f"{args.width}x{args.height} JPEG, 1 target, sharp model (mask + refine), --workers "
                         f"{args.workers}{', --fast' if args.fast else ''}, {args.requests} requests per client "
                         f"per round, new connection per request", info)
    levels = [int(v) for v in args.concurrency.split(",") if v.strip()]
    results: dict[str, Any] = {"machine": info, "levels": {}}
    for clients in levels:
        rps, p50, p95 = [], [], []
        for _ in range(args.rounds):
            tic = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                answers = list(pool.map(lambda _: [_post(url, payload) for _ in range(args.requests)],
                                        range(clients)))
            wall = time.perf_counter() - tic
            latencies = [lat for per_client in answers for lat, status in per_client]
            assert all(status == 200 for per_client in answers for _, status in per_client)
            rps.append(len(latencies) / wall)
            p50.append(1000 * statistics.median(latencies))
            p95.append(1000 * _percentile(latencies, 95))
        level = {"requests_per_s": _common.summarize(rps), "p50_ms": _common.summarize(p50),
                 "p95_ms": _common.summarize(p95)}
        results["levels"][str(clients)] = level
        print(f"{clients:>3} client{'s' if clients > 1 else ' '}: "
              f"{_common.format_summary(level['requests_per_s'], 'req/s', 2)}; "
              f"p50 {_common.format_summary(level['p50_ms'], 'ms', 0)}; "
              f"p95 {_common.format_summary(level['p95_ms'], 'ms', 0)}")
    server.should_exit = True
    thread.join(10)
    tmp.cleanup()
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    run(get_args_parser().parse_args())
