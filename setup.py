"""Build script: installs the project's packages and builds the Cython region-overlap extension.

`bash make.sh` runs `python setup.py build_ext --inplace`; `pip install -e .` installs the packages in editable
mode so `python tools/<name>.py` works from the repository root. Without Cython or a C compiler the extension
is skipped and `utils.region` falls back to its numba implementation.
"""
from pathlib import Path

from setuptools import find_packages, setup

PACKAGES = ["models", "datasets", "utils", "tracker", "evaluation", "tools"]
REGION_PYX = Path("utils/region/_region_ext.pyx")


def region_extensions() -> list:
    """The Cython extension modules, or none when Cython/numpy are missing or the source is absent."""
    if not REGION_PYX.exists():
        return []
    try:
        import numpy
        from Cython.Build import cythonize
    except ImportError:
        return []
    from setuptools import Extension

    ext = Extension(
        "utils.region._region_ext",
        [str(REGION_PYX)],
        include_dirs=[numpy.get_include()],
        extra_compile_args=["-O3", "-ffp-contract=off"],  # no fused multiply-add: float32 results as region.c
    )
    return cythonize([ext], language_level=3, quiet=True)


setup(
    name="siammask",
    version="0.1.0",
    description="SiamMask (CVPR 2019) for PyTorch 2.x: training, VOT evaluation and tracking",
    packages=find_packages(include=[p for name in PACKAGES for p in (name, f"{name}.*")]),
    ext_modules=region_extensions(),
    python_requires=">=3.9",
    zip_safe=False,
)
