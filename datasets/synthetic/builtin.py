"""The built-in data: every synthetic set under one data root, preprocessed, with a stamp (``quick`` / ``large``)."""
from __future__ import annotations

import os
import shutil

from ..errors import DataError
from ..prep import ytb_vos as ytb_prep
from ..prep.common import read_json, write_json
from .ope_benchmark import OPE_NAME, OPE_SIZES, write_ope_dataset
from .scene import FRAME_SIZE
from .vos_benchmarks import write_vos_benchmarks
from .writers import write_det_dataset, write_raw_ytb_vos, write_vot_dataset

#: Version of the generated data; a stamp of another version regenerates.
BUILTIN_VERSION = 4  # 3: + the DAVIS / YouTube-VOS valid benchmarks (vos_benchmarks); 4: + SyntheticOPE
SIZES = {
    # ytb videos x frames, det images, vot videos x frames, OPE videos x frames
    "quick": {"ytb_videos": 8, "ytb_frames": 20, "det_images": 16, "vot_videos": 4, "vot_frames": 110,
              **OPE_SIZES["quick"]},
    "large": {"ytb_videos": 96, "ytb_frames": 40, "det_images": 400, "vot_videos": 8, "vot_frames": 160,
              **OPE_SIZES["large"]},
}
_GENERATED = ("ytb_vos", "det", "VOT2018", "VOT2018.json", "DAVIS", OPE_NAME, "builtin.json",
              "builtin.partial.json")


def make_builtin_data(data_root: str = "data/synthetic", size: str = "quick", seed: int = 0, num_workers: int = 0,
                      progress: bool = False) -> str:
    """Generate and preprocess the built-in data under `data_root` (skipped when already complete).

    Layout (matching experiments/siammask_synthetic/config*.json with ``--data-root <data_root>``):
    ``ytb_vos/`` (raw, ``crop511/``, ``train.json``), ``det/`` (raw, ``crop511/``, ``train.json``), ``VOT2018/`` and
    ``VOT2018.json``, the DAVIS / YouTube-VOS valid sets and the OPE benchmark ``SyntheticOPE/`` (pysot's OTB-style
    json layout). A stamp ``builtin.json`` records size, seed and version; a different request regenerates.

    Args:
        size: "quick" (seconds; tests, CI) or "large" (a learning check, about a minute or two on 2 cores).
        num_workers: processes for rendering and cropping (0 = this process).

    Returns:
        `data_root`.
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    spec = {"version": BUILTIN_VERSION, "size": size, "seed": seed, **SIZES[size]}
    stamp = os.path.join(data_root, "builtin.json")
    partial = os.path.join(data_root, "builtin.partial.json")
    if os.path.isfile(stamp):
        try:
            if read_json(stamp, "built-in data stamp") == spec:
                return data_root
        except DataError:
            pass
    ours = [p for p in (stamp, partial) if os.path.isfile(p)]
    if not ours and any(os.path.exists(os.path.join(data_root, n)) for n in _GENERATED):
        raise DataError(f"{data_root}: holds {'/'.join(_GENERATED[:3])} data not made by make_builtin_data; "
                           f"choose another output folder")
    if any(_read_spec(p) != spec for p in ours):
        _remove_generated(data_root)
    os.makedirs(data_root, exist_ok=True)
    write_json(partial, spec)
    n = SIZES[size]
    ytb_dir = os.path.join(data_root, "ytb_vos")
    write_raw_ytb_vos(ytb_dir, n["ytb_videos"], n["ytb_frames"], FRAME_SIZE, seed, num_workers, progress)
    ytb_prep.parse_ytb_vos(ytb_dir, num_workers=num_workers, progress=progress)
    ytb_prep.crop_ytb_vos(ytb_dir, num_workers=num_workers, progress=progress)
    ytb_prep.gen_json_ytb_vos(ytb_dir)
    write_det_dataset(os.path.join(data_root, "det"), n["det_images"], FRAME_SIZE, seed, num_workers, progress)
    write_vot_dataset(data_root, "VOT2018", n["vot_videos"], n["vot_frames"], FRAME_SIZE, seed, num_workers,
                      progress)
    write_vos_benchmarks(data_root, size, seed)
    write_ope_dataset(data_root, n["ope_videos"], n["ope_frames"], FRAME_SIZE, seed, num_workers, progress)
    write_json(stamp, spec)
    os.remove(partial)
    return data_root


def _read_spec(path: str) -> object:
    try:
        return read_json(path, "built-in data stamp")
    except DataError:
        return None


def _remove_generated(data_root: str) -> None:
    """Remove what :func:`make_builtin_data` writes (and nothing else) before regenerating."""
    for name in _GENERATED:
        path = os.path.join(data_root, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.isfile(path):
            os.remove(path)
