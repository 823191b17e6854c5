"""Training-data throughput on crop511 JPEGs that decode like photographs: in-process, through a DataLoader, and
the two-JPEG decode cap.

The built-in synthetic crops are flat and decode about twice as fast as photographs, so by default this bench
makes the built-in 'quick' set in a temporary folder and re-encodes every crop511 image with multi-scale texture
(JPEG quality 90, about 80 KiB per 511x511 crop, what crops of YouTube-VOS / COCO frames weigh). Then it runs
`--rounds` interleaved rounds of three measurements over the same `--samples` samples:

* in-process: ``dataset[i]`` in a loop (one process, OpenCV single-threaded as in a DataLoader worker);
* decode cap: ``cv2.imread`` of the sample's two 511 JPEGs and nothing else, what a pipeline that decodes whole
  images cannot beat (this one decodes only the rows and columns its crops read, so it can);
* DataLoader: batches of `--batch-size` from `--workers` persistent worker processes (each round a new pass), as
  the training loader makes them (:class:`~datasets.shared_batches.SharedBatchLoader`).

It prints the median and spread of the rounds (wall clock, and samples per CPU-second of this process for the two
single-process loops, which other load on the machine disturbs less), and the DataLoader's speed-up over the
in-process loop. The original SiamMask is not run here; it decodes both whole JPEGs of each sample, so the decode cap
bounds its in-process rate from above.

Usage::

    python bench/data_pipeline.py [--samples 1024] [--rounds 5] [--workers 2] [--batch-size 64] [--data-root DIR]
                                  [--flat]
"""
from __future__ import annotations

import argparse
import glob
import os
import tempfile
import time

import cv2
import numpy as np
import torch.utils.data

from siammask.datasets import build_train_dataset
from siammask.datasets.synthetic import make_builtin_data
from siammask.utils.config import load_config
from siammask.utils.runtime import worker_init_fn

try:  # absent in checkouts before the region decoder: the bench also times those (PYTHONPATH=<old tree>)
    from siammask.datasets import jpeg
    from siammask.datasets.shared_batches import SharedBatchLoader  # the training loader's (training/loader.py)
except ImportError:
    jpeg = SharedBatchLoader = None

from _common import format_summary, machine_info, print_header, summarize  # bench/ is the script's folder


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Data pipeline throughput (samples/s) on photo-like crop511 JPEGs")
    parser.add_argument("--config", default="experiments/siammask_synthetic/config.json")
    parser.add_argument("--data-root", default=None,
                        help="use this data root as it is (default: the photo-like set, made in a temporary folder)")
    parser.add_argument("--flat", action="store_true", help="the built-in crops as they are, not re-textured")
    parser.add_argument("--samples", type=int, default=1024, help="samples per round (default 1024: 16 batches "
                        "of 64, the same number for each of 2 workers, so that the end of a pass does not leave "
                        "one worker idle; a training epoch is thousands of batches)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5; the median is shown)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers (default 2)")
    parser.add_argument("--batch-size", type=int, default=64, help="DataLoader batch (default 64, the training "
                        "tool's -b)")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def texture(rng: np.random.Generator, height: int, width: int, amplitude: float = 23.0) -> np.ndarray:
    """Multi-scale noise (octaves of 4 to 512 cells, cubic-upsampled), (H, W, 3) float32 around 0."""
    out = np.zeros((height, width, 3), np.float32)
    for cells, weight in ((4, 1.0), (16, 0.7), (64, 0.5), (128, 0.4), (256, 0.3), (512, 0.25)):
        noise = rng.standard_normal((cells, cells, 3)).astype(np.float32)
        out += weight * cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
    return out * amplitude


def make_photo_like(root: str, seed: int = 0) -> tuple[str, float]:
    """The built-in 'quick' set under `root` with every crop511 JPEG re-encoded with texture (quality 90).

    The objects stay where they were (70 % of the rendered image is kept), so boxes and masks still fit.

    Returns:
        (data root, mean JPEG size in KiB).
    """
    data_root = make_builtin_data(os.path.join(root, "synthetic"), "quick", seed=seed)
    rng = np.random.default_rng(seed)
    sizes = []
    for path in sorted(glob.glob(os.path.join(data_root, "*", "crop511", "**", "*.x.jpg"), recursive=True)):
        image = cv2.imread(path).astype(np.float32)
        image = np.clip(image * 0.7 + 0.3 * 128 + texture(rng, *image.shape[:2]), 0, 255).astype(np.uint8)
        cv2.imwrite(path, image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        sizes.append(os.path.getsize(path))
    return data_root, float(np.mean(sizes)) / 1024


def jpeg_stats(data_root: str) -> str:
    paths = glob.glob(os.path.join(data_root, "*", "crop511", "**", "*.x.jpg"), recursive=True)
    if not paths:
        return "no crop511 JPEGs found"
    sizes = [os.path.getsize(p) for p in paths]
    shape = cv2.imread(paths[0]).shape
    return f"{len(paths)} crop511 JPEGs, {shape[1]}x{shape[0]}, mean {np.mean(sizes) / 1024:.0f} KiB"


def _workers_cpu(iterator: object) -> float | None:
    """CPU seconds (user + system) used so far by a DataLoader iterator's worker processes (Linux /proc), or None."""
    workers = getattr(iterator, "_workers", None)
    if not workers:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for worker in workers:
        try:
            with open(f"/proc/{worker.pid}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def bench(data_root: str, args: argparse.Namespace) -> dict[str, list[float]]:
    """Interleaved rounds of the three measurements; samples/s per round by name."""
    cfg = load_config(args.config)
    dataset = build_train_dataset(cfg, data_root, seed=args.seed)
    n = min(args.samples, len(dataset))
    plans = [dataset.plan(i) for i in range(n)]
    paths = [(p.template.image_path, p.search.image_path) for p in plans]
    cv2.setNumThreads(1)  # as in a DataLoader worker; set before the workers fork
    for i in range(min(20, n)):  # warm the page cache and OpenCV
        dataset[i]
    loader_class = SharedBatchLoader if SharedBatchLoader is not None else torch.utils.data.DataLoader
    loader = loader_class(torch.utils.data.Subset(dataset, range(n)), batch_size=args.batch_size,
                          num_workers=args.workers, shuffle=False, worker_init_fn=worker_init_fn,
                          persistent_workers=args.workers > 0)
    for _ in loader:  # start the workers, warm them
        pass
    rates: dict[str, list[float]] = {k: [] for k in ("in_process", "in_process_cpu", "decode_cap", "decode_cap_cpu",
                                                     "dataloader", "dataloader_main_cpu", "dataloader_worker_cpu")}
    for _ in range(args.rounds):
        start, start_cpu = time.perf_counter(), time.process_time()
        for i in range(n):
            dataset[i]
        rates["in_process"].append(n / (time.perf_counter() - start))
        rates["in_process_cpu"].append(n / (time.process_time() - start_cpu))
        start, start_cpu = time.perf_counter(), time.process_time()
        for a, b in paths:
            cv2.imread(a)
            cv2.imread(b)
        rates["decode_cap"].append(n / (time.perf_counter() - start))
        rates["decode_cap_cpu"].append(n / (time.process_time() - start_cpu))
        seen = 0
        start, start_cpu = time.perf_counter(), time.process_time()
        inner = getattr(loader, "loader", loader)  # SharedBatchLoader wraps a DataLoader
        workers_start = _workers_cpu(getattr(inner, "_iterator", None))
        for batch in loader:
            seen += batch["template"].shape[0]
        rates["dataloader"].append(seen / (time.perf_counter() - start))
        rates["dataloader_main_cpu"].append(seen / max(time.process_time() - start_cpu, 1e-9))
        if workers_start is not None:
            rates["dataloader_worker_cpu"].append(seen / max(_workers_cpu(inner._iterator) - workers_start, 1e-9))
    return rates


def main(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        if args.data_root is not None:
            data_root, what = args.data_root, f"{args.data_root} as it is"
        elif args.flat:
            data_root, what = make_builtin_data(os.path.join(tmp, "synthetic"), "quick", seed=0), "built-in flat"
        else:
            data_root, _ = make_photo_like(tmp)
            what = "built-in 'quick' set re-encoded with multi-scale texture (photo-like), quality 90"
        info = machine_info(threads=1)
        decoder = "region decoder (libjpeg, rows/columns the crops read)" if jpeg and jpeg.region_decoder_ok() else \
            "whole-image cv2.imdecode (region decoder not built: bash make.sh)"
        print_header("data pipeline: samples/s of the training set (base recipe, search 255)",
                     f"{what}: {jpeg_stats(data_root)}; {args.samples} samples per round, seed {args.seed}", info)
        print(f"decoding: {decoder}; OpenCV threads 1")
        rates = bench(data_root, args)
    stats = {k: summarize(v) for k, v in rates.items() if v}
    print(f"in-process:              {format_summary(stats['in_process'], 'samples/s')}, "
          f"{stats['in_process_cpu']['median']:.1f} per CPU-second")
    print(f"decode cap (2x imread):  {format_summary(stats['decode_cap'], 'samples/s')}, "
          f"{stats['decode_cap_cpu']['median']:.1f} per CPU-second")
    share = 100 * stats["in_process_cpu"]["median"] / stats["decode_cap_cpu"]["median"]
    print(f"in-process / cap:        {share:.0f} % (CPU time)")
    print(f"DataLoader {args.workers} workers:    {format_summary(stats['dataloader'], 'samples/s')} "
          f"(batch {args.batch_size}, persistent workers, "
          f"{'reused shared-memory batches' if SharedBatchLoader else 'default collate'}), "
          f"{stats['dataloader']['median'] / stats['in_process']['median']:.2f}x in-process")
    if stats.get("dataloader_worker_cpu", {}).get("rounds"):
        per_cpu = stats["dataloader_worker_cpu"]["median"]
        share = 100 * per_cpu / stats["in_process_cpu"]["median"]
        print(f"  per worker CPU-second: {per_cpu:.1f} samples ({share:.0f} % "
              f"of in-process: the collate and IPC cost); main process "
              f"{stats['dataloader_main_cpu']['median']:.0f} samples per CPU-second")
    print("the original SiamMask is not run here: it decodes both whole JPEGs of every sample (cv2.imread), so its "
          "in-process rate is below the decode cap of this run; compare with it side by side on one machine")
    return stats


if __name__ == "__main__":
    main(get_args_parser().parse_args())
