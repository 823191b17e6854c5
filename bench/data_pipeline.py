"""Training-data throughput on crop511 JPEGs that decode like photographs: in-process, through a DataLoader, and
the two-JPEG decode cap.

The built-in synthetic crops are flat and decode about twice as fast as photographs, so by default this bench
makes the built-in 'quick' set in a temporary folder and re-encodes every crop511 image with multi-scale texture
(JPEG quality 90, about 80 KiB per 511x511 crop, what crops of YouTube-VOS / COCO frames weigh). Then it runs
`--rounds` interleaved rounds of four measurements over the same `--samples` samples, in this order:

* original-work: the original SiamMask's per-sample work on the same pairs (:func:`original_work`: whole-image
  ``cv2.imread`` of both JPEGs and the mask PNG, float64 colour and blur, float64 anchor targets), the in-run
  stand-in for the original, which this bench does not run;
* in-process: ``dataset[i]`` in a loop (one process, OpenCV single-threaded as in a DataLoader worker);
* DataLoader: batches of `--batch-size` from `--workers` persistent worker processes (each round a new pass), as
  the training loader makes them (:class:`~datasets.shared_batches.SharedBatchLoader`);
* decode cap: ``cv2.imread`` of the sample's two 511 JPEGs and nothing else, what a pipeline that decodes whole
  images cannot beat (this one decodes only the rows and columns its crops read, so it can).

It prints the median and spread of the rounds (wall clock, and samples per CPU-second of this process for the
single-process loops, which other load on the machine disturbs less), the in-process loop's speed-up over
original-work and the DataLoader's speed-up over the in-process loop (each the median and spread of the per-round
ratios: runs seconds apart, which this virtual machine's drifting speed disturbs least). The original
decodes both whole JPEGs of each sample, so the decode cap also bounds its in-process rate from above.

Usage::

    python bench/data_pipeline.py [--samples 1024] [--rounds 5] [--workers 2] [--batch-size 64] [--data-root DIR]
                                  [--flat] [--plain-writes]

``--plain-writes`` adds a second DataLoader whose workers write the batch rows with ordinary stores
(:mod:`datasets.row_writes` off) and prints what the streaming stores buy, in the same rounds.
"""
from __future__ import annotations

import argparse
import glob
import os
import tempfile
import time
from typing import Callable

import cv2
import numpy as np
import torch.utils.data

from siammask.datasets import build_train_dataset
from siammask.datasets.crop import target_box_in_crop
from siammask.datasets.synthetic import make_builtin_data
from siammask.utils.config import load_config
from siammask.utils.runtime import worker_init_fn

try:  # absent in checkouts before the region decoder: the bench also times those (PYTHONPATH=<old tree>)
    from siammask.datasets import jpeg
    from siammask.datasets.shared_batches import SharedBatchLoader  # the training loader's (training/loader.py)
except ImportError:
    jpeg = SharedBatchLoader = None
try:  # absent before the streaming-store writes
    from siammask.datasets import row_writes
except ImportError:
    row_writes = None

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
    parser.add_argument("--plain-writes", action="store_true", help="also time a DataLoader whose workers write the "
                        "batch rows with ordinary stores (datasets.row_writes off), for what the streaming stores buy")
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


def original_work(dataset: object, index: int) -> tuple[np.ndarray, ...]:
    """The original SiamMask's per-sample work (`DataSets.__getitem__`, reference.md D.3-D.5) on sample `index`'s
    pair, written out here as the in-run stand-in `original-work` (the original itself is not run by this bench).

    What it does, as the original does it: ``cv2.imread`` of the template and the search crop511 JPEG (twice for a
    single-frame track, whose two crops are one file) and, on positive pairs of mask datasets, of the mask PNG made
    a float32 0/1 array (else a zero float32 511 mask); grey on the whole 511 image (both branches); per branch one
    ``cv2.warpAffine`` of the uint8 image (and of the float mask) to the output square; a float64 zero offset array
    of the crop's shape, then ``image - offset`` (float64); the cross-kernel blur as ``cv2.filter2D`` with the
    explicit float64 kernel; the anchor targets with float64 IoU / deltas over all anchors, then the random picks;
    the transpose to CHW and ``astype(float32)``; the mask label ``(mask > 0.5) * 2 - 1`` (int64) made float32. Its
    random draws are this project's (the same distributions), so it crops the same boxes as ``dataset[index]``.
    """
    cfg = dataset.cfg
    plan = dataset.plan(index)
    rng = np.random.default_rng([dataset.seed, 1, index])
    template_image = cv2.imread(plan.template.image_path)
    search_image = cv2.imread(plan.search.image_path)
    if dataset.subsets[plan.dataset].has_mask and not plan.negative:
        search_mask = (cv2.imread(plan.search.mask_path, 0) > 0).astype(np.float32)
    else:
        search_mask = np.zeros(search_image.shape[:2], dtype=np.float32)
    template_box = target_box_in_crop(plan.template.size_wh, template_image.shape, cfg.template_size)
    search_box = target_box_in_crop(plan.search.size_wh, search_image.shape, cfg.template_size)

    def augment(aug, image, box, mask=None):
        if plan.gray:
            grayed = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            image = np.zeros((grayed.shape[0], grayed.shape[1], 3), np.uint8)
            image[:, :, 0] = image[:, :, 1] = image[:, :, 2] = grayed
        draws = aug.draw(image.shape, rng)
        size = aug.size
        x1, y1, x2, y2 = draws.crop
        a, b = (size - 1) / (x2 - x1), (size - 1) / (y2 - y1)
        mapping = np.array([[a, 0, -a * x1], [0, b, -b * y1]]).astype(np.float64)
        out = cv2.warpAffine(image, mapping, (size, size), borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        if mask is not None:
            mask = cv2.warpAffine(mask, mapping, (size, size), borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        offset = np.zeros(out.shape)
        offset = draws.offset.astype(np.float64).reshape(3)
        out = out - offset
        if draws.blur is not None:
            side, wx = draws.blur
            kernel = np.zeros((side, side))
            c = side // 2
            kernel[:, c] += 1.0 / side * wx
            kernel[c, :] += 1.0 / side * (1 - wx)
            out = cv2.filter2D(out, -1, kernel)
        return out, aug.target_box(box, draws), mask

    template, _, _ = augment(dataset.template_aug, template_image, template_box)
    search, bbox, mask = augment(dataset.search_aug, search_image, search_box, search_mask)
    anchors = dataset.anchor_target
    corners, centres = anchors.corners, anchors.centres
    shape = anchors.shape
    cls = np.zeros(shape, dtype=np.int64)
    cls[...] = -1
    delta = np.zeros((4,) + shape, dtype=np.float32)
    delta_weight = np.zeros(shape, dtype=np.float32)
    tx1, ty1, tx2, ty2 = (float(v) for v in bbox)
    tcx, tcy, tw, th = (tx1 + tx2) * 0.5, (ty1 + ty2) * 0.5, tx2 - tx1, ty2 - ty1
    x1, y1, x2, y2 = corners
    cx, cy, w, h = centres
    delta[0] = (tcx - cx) / w
    delta[1] = (tcy - cy) / h
    delta[2] = np.log(tw / w)
    delta[3] = np.log(th / h)
    xx1, yy1 = np.maximum(tx1, x1), np.maximum(ty1, y1)
    xx2, yy2 = np.minimum(tx2, x2), np.minimum(ty2, y2)
    inter = np.maximum(0, xx2 - xx1) * np.maximum(0, yy2 - yy1)
    overlap = inter / ((x2 - x1) * (y2 - y1) + (tx2 - tx1) * (ty2 - ty1) - inter)
    at = cfg.anchor_target

    def select(position, keep):
        num = position[0].shape[0]
        if num <= keep:
            return position, num
        order = np.arange(num)
        rng.shuffle(order)
        return tuple(p[order[:keep]] for p in position), keep

    if plan.negative:
        lo = max(shape[1] // 2 - 3, 0)
        window = cls[:, lo:lo + 7, lo:lo + 7]
        position, _ = select(np.where(window == -1), at.negative)
        window[position] = 0
    else:
        pos, pos_num = select(np.where(overlap > at.thr_high), at.positive)
        neg, _ = select(np.where(overlap < at.thr_low), at.rpn_batch - pos_num)
        cls[pos] = 1
        delta_weight[pos] = 1.0 / (pos_num + 1e-6)
        cls[neg] = 0
    mask_weight = cls.max(axis=0, keepdims=True) if not plan.negative else np.zeros((1,) + shape[1:])
    template, search = (np.transpose(x, (2, 0, 1)).astype(np.float32) for x in (template, search))
    mask = (np.expand_dims(mask, axis=0) > 0.5) * 2 - 1
    return (template, search, cls, delta, delta_weight, np.array(bbox, np.float32), np.array(mask, np.float32),
            np.array(mask_weight, np.float32))


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
    """Interleaved rounds of the measurements (module docstring); samples/s per round by name."""
    cfg = load_config(args.config)
    dataset = build_train_dataset(cfg, data_root, seed=args.seed)
    n = min(args.samples, len(dataset))
    plans = [dataset.plan(i) for i in range(n)]
    paths = [(p.template.image_path, p.search.image_path) for p in plans]
    cv2.setNumThreads(1)  # as in a DataLoader worker; set before the workers fork
    for i in range(min(20, n)):  # warm the page cache and OpenCV
        dataset[i]
    loader_class = SharedBatchLoader if SharedBatchLoader is not None else torch.utils.data.DataLoader

    def make_loader() -> object:
        made = loader_class(torch.utils.data.Subset(dataset, range(n)), batch_size=args.batch_size,
                            num_workers=args.workers, shuffle=False, worker_init_fn=worker_init_fn,
                            persistent_workers=args.workers > 0)
        for _ in made:  # start the workers (they fork now and keep this process's settings), warm them
            pass
        return made

    loader = make_loader()
    plain_loader = None
    if args.plain_writes and row_writes is not None:
        streaming, row_writes.STREAMING = row_writes.STREAMING, False
        try:
            plain_loader = make_loader()
        finally:
            row_writes.STREAMING = streaming
    rates: dict[str, list[float]] = {k: [] for k in (
        "in_process", "in_process_cpu", "decode_cap", "decode_cap_cpu", "original_work", "original_work_cpu",
        "dataloader", "dataloader_main_cpu", "dataloader_worker_cpu", "dataloader_plain_writes")}

    def loop(name: str, work: Callable[[], None]) -> None:
        """Time `work` (n samples' worth): samples/s by the wall clock and per CPU-second of this process."""
        start, start_cpu = time.perf_counter(), time.process_time()
        work()
        rates[name].append(n / (time.perf_counter() - start))
        rates[f"{name}_cpu"].append(n / (time.process_time() - start_cpu))

    def pipeline() -> None:
        for i in range(n):
            dataset[i]

    def original() -> None:
        for i in range(n):
            original_work(dataset, i)

    def decode_both() -> None:
        for a, b in paths:
            cv2.imread(a)
            cv2.imread(b)

    for _ in range(args.rounds):
        # original-work, in-process and the DataLoader one after the other: the ratios pair runs seconds apart
        loop("original_work", original)
        loop("in_process", pipeline)
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
        loop("decode_cap", decode_both)
        if plain_loader is not None:
            seen, start = 0, time.perf_counter()
            for batch in plain_loader:
                seen += batch["template"].shape[0]
            rates["dataloader_plain_writes"].append(seen / (time.perf_counter() - start))
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
    print(f"original-work:           {format_summary(stats['original_work'], 'samples/s')}, "
          f"{stats['original_work_cpu']['median']:.1f} per CPU-second")
    ratios = [a / b for a, b in zip(rates["in_process"], rates["original_work"])]
    cpu_ratios = [a / b for a, b in zip(rates["in_process_cpu"], rates["original_work_cpu"])]
    stats["vs_original_work"] = summarize(ratios)
    print(f"in-process / original-work: {format_summary(stats['vs_original_work'], 'x', digits=2)} "
          f"({summarize(cpu_ratios)['median']:.2f}x in CPU time)")
    stats["dataloader_vs_in_process"] = summarize([a / b for a, b in zip(rates["dataloader"], rates["in_process"])])
    print(f"DataLoader {args.workers} workers:    {format_summary(stats['dataloader'], 'samples/s')} "
          f"(batch {args.batch_size}, persistent workers, "
          f"{'reused shared-memory batches' if SharedBatchLoader else 'default collate'})")
    print(f"DataLoader / in-process: {format_summary(stats['dataloader_vs_in_process'], 'x', digits=2)}")
    if stats.get("dataloader_plain_writes", {}).get("rounds"):
        ratios = summarize([a / b for a, b in zip(rates["dataloader"], rates["dataloader_plain_writes"])])
        print(f"  with ordinary stores:  {format_summary(stats['dataloader_plain_writes'], 'samples/s')}; streaming "
              f"stores {format_summary(ratios, 'x', 2)}")
    if stats.get("dataloader_worker_cpu", {}).get("rounds"):
        per_cpu = stats["dataloader_worker_cpu"]["median"]
        share = 100 * per_cpu / stats["in_process_cpu"]["median"]
        print(f"  per worker CPU-second: {per_cpu:.1f} samples ({share:.0f} % of in-process's; below 100 %: the "
              f"collate, IPC and {args.workers} processes sharing caches and memory); main process "
              f"{stats['dataloader_main_cpu']['median']:.0f} samples per CPU-second")
    print("the original SiamMask is not run here: original-work is its per-sample work written out in this bench "
          "(original_work); the original decodes both whole JPEGs of every sample, so its in-process rate is also "
          "below the decode cap")
    return stats


if __name__ == "__main__":
    main(get_args_parser().parse_args())
