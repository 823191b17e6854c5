"""Build script: installs the one import package `siammask` and builds the Cython region-overlap extension.

The repository's top-level folders are the sub-packages (`models/` is `siammask.models`, ...): `package_dir` maps
them, for `pip install -e .` and for a wheel alike. `bash make.sh` runs `python setup.py build_ext --inplace`.
Without Cython or a C compiler (or with SIAMMASK_NO_EXT=1) the extension is skipped and `siammask.utils.region`
falls back to its numba implementation.

A second, optional C extension, `siammask.datasets._jpeg_region`, decodes only the rows and columns of a crop511 JPEG
that an augmentation crop reads (libjpeg-turbo, Debian/Ubuntu package libjpeg-dev or libjpeg62-turbo-dev). It is
built where the headers and the library are found; without it the training set decodes whole JPEGs with OpenCV
and yields the same samples, more slowly. `siammask.datasets._png_rows` (libpng, libpng-dev) decodes a crop511
mask PNG only down to the last row a crop reads (without it OpenCV decodes the whole mask), and
`siammask.datasets._stream` (plain C, no library) writes the float32 rows of DataLoader workers' shared batch
buffers with streaming stores (without it numpy writes them); same samples either way.
`siammask.models._winograd` (plain C) holds the tile transforms of the Winograd F(4x4, 3x3) convolution that CPU
float32 training uses for its 3x3 convolutions (models/winograd.py); without it those run as direct convolutions.
"""
import os
from pathlib import Path

from setuptools import find_packages, setup

SUBPACKAGES = ["models", "datasets", "utils", "tracker", "evaluation", "training", "tools", "serving"]
CONSOLE_SCRIPTS = {
    "siammask-train": "train_siammask",
    "siammask-train-refine": "train_siammask_refine",
    "siammask-test": "test",
    "siammask-eval": "eval",
    "siammask-demo": "demo",
    "siammask-tune-vot": "tune_vot",
    "siammask-tune-vos": "tune_vos",
    "siammask-export-onnx": "export_onnx",
    "siammask-vot-trax": "vot_trax",
    "siammask-serve": "serve",
}
REGION_PYX = Path("utils/region/_region_ext.pyx")
JPEG_REGION_C = Path("datasets/_jpeg_region.c")
STREAM_C = Path("datasets/_stream.c")
PNG_ROWS_C = Path("datasets/_png_rows.c")
WINOGRAD_C = Path("models/_winograd.c")


def region_extensions() -> list:
    """The Cython extension modules, or none when Cython/numpy are missing or the source is absent."""
    if not REGION_PYX.exists() or os.environ.get("SIAMMASK_NO_EXT"):
        return []
    try:
        import numpy
        from Cython.Build import cythonize
    except ImportError:
        return []
    from setuptools import Extension

    ext = Extension(
        "siammask.utils.region._region_ext",
        [str(REGION_PYX)],
        include_dirs=[numpy.get_include()],
        extra_compile_args=["-O3", "-ffp-contract=off"],  # no fused multiply-add: float32 results as region.c
    )
    return cythonize([ext], language_level=3, quiet=True)


def jpeg_extensions() -> list:
    """The libjpeg region decoder (optional: a build failure, e.g. no jpeglib.h, only skips it)."""
    if not JPEG_REGION_C.exists() or os.environ.get("SIAMMASK_NO_EXT"):
        return []
    from setuptools import Extension

    return [Extension("siammask.datasets._jpeg_region", [str(JPEG_REGION_C)], libraries=["jpeg"],
                      extra_compile_args=["-O2"], optional=True)]


def png_extensions() -> list:
    """The libpng row decoder of crop511 masks (optional: a build failure, e.g. no png.h, only skips it)."""
    if not PNG_ROWS_C.exists() or os.environ.get("SIAMMASK_NO_EXT"):
        return []
    from setuptools import Extension

    return [Extension("siammask.datasets._png_rows", [str(PNG_ROWS_C)], libraries=["png"],
                      extra_compile_args=["-O2"], optional=True)]


def stream_extensions() -> list:
    """The streaming-store writer of batch rows (optional: a build failure only skips it)."""
    if not STREAM_C.exists() or os.environ.get("SIAMMASK_NO_EXT"):
        return []
    from setuptools import Extension

    return [Extension("siammask.datasets._stream", [str(STREAM_C)], extra_compile_args=["-O2"], optional=True)]


def winograd_extensions() -> list:
    """The Winograd tile transforms (optional: a build failure only skips it). -O3 vectorises the channel loops;
    the source picks AVX-512 / AVX2 at load time (gcc target_clones)."""
    if not WINOGRAD_C.exists() or os.environ.get("SIAMMASK_NO_EXT"):
        return []
    from setuptools import Extension

    return [Extension("siammask.models._winograd", [str(WINOGRAD_C)], extra_compile_args=["-O3"],
                      extra_link_args=["-pthread"], optional=True)]


def package_layout() -> tuple[list[str], dict[str, str]]:
    """`siammask` and every package below the mapped folders, with the folder of each mapped name."""
    packages, package_dir = ["siammask"], {"siammask": "siammask"}
    for name in SUBPACKAGES:
        if not Path(name, "__init__.py").is_file():
            continue
        package_dir[f"siammask.{name}"] = name
        packages += [f"siammask.{name}"] + [f"siammask.{name}.{sub}" for sub in find_packages(name)]
    return packages, package_dir


PACKAGES, PACKAGE_DIR = package_layout()

setup(
    name="siammask",
    version="0.2.0",
    description="SiamMask (CVPR 2019) for PyTorch 2.x: training, VOT evaluation and tracking",
    packages=PACKAGES,
    package_dir=PACKAGE_DIR,
    entry_points={"console_scripts": [f"{cmd} = siammask.tools.{mod}:cli" for cmd, mod in CONSOLE_SCRIPTS.items()]},
    ext_modules=region_extensions() + jpeg_extensions() + png_extensions() + stream_extensions()
    + winograd_extensions(),
    extras_require={"onnx": ["onnx", "onnxruntime"], "vot": ["vot-trax"], "got10k": ["got10k"],
                    "serve": ["starlette>=0.37", "uvicorn>=0.29"]},
    python_requires=">=3.10",
    zip_safe=False,
)
