"""Built-in synthetic data: tracking videos, a box-only detection set and a VOT-style benchmark, all seeded.

New (the original had no built-in data). Modules by idea:

* :mod:`.scene`: rendering (textures, contours, moving objects, :func:`render_video`);
* :mod:`.writers`: the public datasets' raw layouts (YouTube-VOS, ImageNet-DET, VOT, palette PNGs), which then go
  through the same preparation code as the real data;
* :mod:`.vos_benchmarks`, :mod:`.ope_benchmark`: the DAVIS / YouTube-VOS valid sets and the OPE set
  ``SyntheticOPE`` (pysot's OTB-style json layout);
* :mod:`.builtin`: :func:`make_builtin_data`, all of it under one data root (``quick``: seconds; ``large``: a
  learning check), with a stamp.

Everything is a pure function of the seed: the same call writes byte-identical raw files.
"""
from .builtin import BUILTIN_VERSION, SIZES, make_builtin_data
from .ope_benchmark import OPE_NAME, write_ope_dataset
from .scene import (
           FRAME_SIZE,
           TEXTURE_SIZE,
           MovingObject,
           SyntheticVideo,
           random_background,
           random_contour,
           random_texture,
           render_video,
)
from .writers import write_det_dataset, write_palette_png, write_raw_ytb_vos, write_vot_dataset

__all__ = ["BUILTIN_VERSION", "FRAME_SIZE", "OPE_NAME", "SIZES", "TEXTURE_SIZE", "MovingObject", "SyntheticVideo",
           "make_builtin_data", "random_background", "random_contour", "random_texture", "render_video",
           "write_det_dataset", "write_ope_dataset", "write_palette_png", "write_raw_ytb_vos", "write_vot_dataset"]
