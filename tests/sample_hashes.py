"""SHA-256 of every key of training samples on a small built-in set, to show that the data pipeline's samples do
not change when its code is made faster.

``tests/data/sample_hashes.json`` was written by this file run against the data pipeline before it was optimised
(commit c157bbe, the parent of the commit that added this file; its tree exported with ``git archive`` and put first
on PYTHONPATH)::

    git archive c157bbe | tar -x -C /tmp/orig
    PYTHONPATH=/tmp/orig python tests/sample_hashes.py tests/data/sample_hashes.json

(The AVX2 reference on an AMD EPYC, the AVX-512 one on an Intel Xeon, and one keyed by the OpenCV probe on an AMD
EPYC Zen 5 with AVX-512, whose samples are the AVX2 machine's, 2026-12-08; all from c157bbe.)

It records the numpy and OpenCV versions and the CPU's SIMD level: the synthetic images are JPEG-encoded and
-decoded by OpenCV, so another OpenCV (libjpeg-turbo) build can change the pixels, and OpenCV's warps round
differently on AVX-512 than on AVX2, and CPUs with the same SIMD level can still take other paths
(:func:`opencv_probe`). The file holds one reference per such combination (each run adds its own);
tests/test_data_pipeline.py compares with the one :func:`find_reference` picks and skips where none matches.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = {"base": "experiments/siammask_synthetic/config.json",
           "sharp": "experiments/siammask_synthetic/config_sharp.json"}
#: (config, seed, epoch, number of indices from 0)
CASES = (("base", 7, 0, 96), ("base", 7, 3, 32), ("sharp", 2, 1, 32))


def make_data(root: str) -> str:
    """The small built-in set of tests/test_datasets.py: 4 ytb_vos videos x 10 frames (masks), 8 det images."""
    from siammask.datasets.prep import ytb_vos as ytb_prep
    from siammask.datasets.synthetic import write_det_dataset, write_raw_ytb_vos

    ytb = os.path.join(root, "ytb_vos")
    write_raw_ytb_vos(ytb, num_videos=4, num_frames=10, seed=3)
    ytb_prep.parse_ytb_vos(ytb, progress=False)
    ytb_prep.crop_ytb_vos(ytb, progress=False)
    ytb_prep.gen_json_ytb_vos(ytb)
    write_det_dataset(os.path.join(root, "det"), num_images=8, seed=3)
    return root


def digest(array: np.ndarray) -> str:
    """Hash of an array's dtype, shape and bytes (C order)."""
    array = np.ascontiguousarray(array)
    h = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    h.update(array.tobytes())
    return h.hexdigest()[:24]


def sample_hashes(data_root: str) -> dict[str, list[dict[str, str]]]:
    """{"<config>/<seed>/<epoch>": [{key: digest} per index]} for :data:`CASES` (``dataset.sample``)."""
    from siammask.datasets import build_train_dataset
    from siammask.utils.config import load_config

    out = {}
    for name, seed, epoch, count in CASES:
        ds = build_train_dataset(load_config(os.path.join(REPO, CONFIGS[name])), data_root, seed=seed)
        out[f"{name}/{seed}/{epoch}"] = [{k: digest(v) for k, v in ds.sample(i, epoch).items()}
                                         for i in range(count)]
    return out


def cpu_simd() -> str:
    """The widest SIMD level OpenCV dispatches to on this CPU: its warps and resizes round differently with
    AVX-512 than with AVX2, so sample hashes are only comparable on the same level."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return "unknown"
    if {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= set(flags):
        return "avx512"
    return "avx2" if "avx2" in flags else "other"


def opencv_probe() -> str:
    """Hash of OpenCV's outputs, on fixed data, for the operations samples go through (resizes, affine warps of uint8
    and float32 images, box blur, a JPEG round trip): which code paths OpenCV takes on this CPU. One SIMD level is not
    enough to tell: an AMD EPYC (Zen 5) with AVX-512 gave the AVX2 machine's samples on 2026-12-08, not the Intel
    AVX-512 machine's."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (97, 89, 3), dtype=np.uint8)
    plane = rng.random((31, 37)).astype(np.float32)
    mapping = np.array([[1.13, 0.07, -3.4], [-0.05, 0.91, 2.2]])
    outputs = [cv2.resize(image, (211, 190), interpolation=cv2.INTER_LINEAR),
               cv2.resize(plane, (120, 101), interpolation=cv2.INTER_CUBIC), cv2.resize(image, (40, 37)),
               cv2.warpAffine(image, mapping, (127, 127), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT),
               cv2.warpAffine(plane, mapping, (64, 64), flags=cv2.INTER_LINEAR),
               cv2.blur(plane, (5, 1), borderType=cv2.BORDER_REFLECT_101),
               cv2.imdecode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1], cv2.IMREAD_COLOR)]
    return hashlib.sha256("".join(digest(o) for o in outputs).encode()).hexdigest()[:16]


def versions() -> dict[str, str]:
    return {"numpy": np.__version__, "opencv": cv2.__version__, "simd": cpu_simd(), "opencv_probe": opencv_probe()}


def find_reference(refs: list[dict]) -> dict | None:
    """The reference made with this machine's :func:`versions`, else one made before the probe existed (no
    ``opencv_probe``) with the same numpy, OpenCV and SIMD level; None if neither."""
    mine = versions()
    legacy = {k: v for k, v in mine.items() if k != "opencv_probe"}
    return (next((r for r in refs if r["versions"] == mine), None)
            or next((r for r in refs if r["versions"] == legacy), None))


def main(path: str) -> None:
    """Adds (or replaces) the reference of this machine's versions in the file at ``path``."""
    with tempfile.TemporaryDirectory() as tmp:
        hashes = sample_hashes(make_data(tmp))
    refs = json.loads(Path(path).read_text(encoding="utf-8"))["references"] if os.path.exists(path) else []
    refs = [r for r in refs if r["versions"] != versions()] + [{"versions": versions(), "cases": hashes}]
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump({"references": refs}, f, indent=0, sort_keys=True)
        f.write("\n")
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main(sys.argv[1])
