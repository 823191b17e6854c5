"""SHA-256 of every key of training samples on a small built-in set, to show that the data pipeline's samples do
not change when its code is made faster.

``tests/data/sample_hashes.json`` was written by this file run against the data pipeline before it was optimised
(commit c157bbe, the parent of the commit that added this file; its tree exported with ``git archive`` and put first
on PYTHONPATH)::

    git archive c157bbe | tar -x -C /tmp/orig
    PYTHONPATH=/tmp/orig python tests/sample_hashes.py tests/data/sample_hashes.json

It records the numpy and OpenCV versions: the synthetic images are JPEG-encoded and -decoded by OpenCV, so another
OpenCV (libjpeg-turbo) build can change the pixels; tests/test_data_pipeline.py skips the comparison then.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile

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


def versions() -> dict[str, str]:
    return {"numpy": np.__version__, "opencv": cv2.__version__}


def main(path: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        hashes = sample_hashes(make_data(tmp))
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"versions": versions(), "cases": hashes}, f, indent=0, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
