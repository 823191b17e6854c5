"""VOT region overlap with the VOT toolkit's semantics (rasterised polygon overlap).

Ports the Python API of SiamMask's ``utils/pysot/utils/region.pyx`` / ``utils/pyvotkit/region.pyx`` (pysot-toolkit)
over the VOT toolkit's native ``region.c``:

* a region is a flat sequence: 1 value = a special VOT code (``1`` init, ``2`` failure, ``0`` skipped),
  4 values = rectangle ``x, y, w, h`` (turned into the corners ``(x, y), (x+w, y), (x+w, y+h), (x, y+h)`` in double
  precision, as ``region.pyx`` does), an even number >= 6 = polygon ``x0, y0, x1, y1, ...``;
* overlaps are computed in C ``float`` on a pixel grid (``compute_polygon_overlap``), optionally clipped to image
  bounds ``(width, height)`` = the rectangle ``0..width`` x ``0..height``;
* a special region on either side gives NaN; so does a region with a NaN or infinite coordinate (the VOT toolkit's
  parser turns such regions into special ones; region.c's arithmetic on them is undefined).

Two implementations give bit-identical results: the Cython extension ``_region_ext`` (built by ``make.sh``) and the
numba module ``_region_numba`` (used when the extension is not built). ``BACKEND`` names the active one; the
environment variable ``SIAMMASK_REGION_BACKEND=cython|numba`` forces one (read once, at import).

Deviations from pysot's ``region.pyx``: invalid regions (0, 2, 3 or an odd number >= 5 of values) and bounds that
are not ``(width, height)`` raise ``ValueError`` instead of being read silently; 4-value bounds are not accepted
(pysot and pyvotkit read them in different, undocumented orders, reference.md G.1.14).
"""
from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from types import ModuleType

import numpy as np

__all__ = ["BACKEND", "vot_overlap", "vot_overlap_traj", "vot_float2str"]

_BACKEND_ENV = "SIAMMASK_REGION_BACKEND"
_NO_BOUNDS = np.array([-np.inf, np.inf, -np.inf, np.inf], dtype=np.float32)
_FLOAT_TEMPLATE = re.compile(r"%[-+ #0]*(\d+)?(\.\d+)?[fFeEgG]")


def _load_backend() -> tuple[str, ModuleType]:
    """Import the requested (or the best available) implementation."""
    wanted = os.environ.get(_BACKEND_ENV, "").strip().lower()
    if wanted not in ("", "cython", "numba"):
        raise ImportError(f"{_BACKEND_ENV}={wanted!r}: expected 'cython' or 'numba'")
    if wanted in ("", "cython"):
        try:
            from . import _region_ext
        except ImportError as exc:
            if wanted == "cython":
                raise ImportError(
                    f"{_BACKEND_ENV}=cython but the extension siammask.utils.region._region_ext is not built "
                    f"(run `bash make.sh`): {exc}") from exc
        else:
            return "cython", _region_ext
    from . import _region_numba

    return "numba", _region_numba


BACKEND, _impl = _load_backend()


def _points(region: Sequence[float]) -> np.ndarray | None:
    """float32 interleaved vertices of a region, or None for a special (1-value or non-finite) region."""
    n = len(region)
    if n == 1:
        return None
    if n == 4:
        x, y, w, h = (float(v) for v in region)
        values = np.array((x, y, x + w, y, x + w, y + h, x, y + h), dtype=np.float64)
    elif n >= 6 and n % 2 == 0:
        values = np.asarray(region, dtype=np.float64)
    else:
        values = None
    if values is not None:
        with np.errstate(over="ignore"):
            points = values.astype(np.float32)
        return points if np.isfinite(points).all() else None
    raise ValueError(f"region with {n} values: expected 1 (special code), 4 (x, y, w, h) or an even number >= 6 "
                     "(polygon x0, y0, x1, y1, ...)")


def _bounds(bounds: Sequence[float] | None) -> np.ndarray:
    """float32 ``top, bottom, left, right`` from ``(width, height)`` or None."""
    if bounds is None:
        return _NO_BOUNDS
    if len(bounds) != 2:
        raise ValueError(f"bounds must be (width, height), got {len(bounds)} values")
    width, height = float(bounds[0]), float(bounds[1])
    return np.array([0.0, height, 0.0, width], dtype=np.float32)


def _pack(traj: Sequence[Sequence[float]] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pack a trajectory into float32 ``(N, M)`` interleaved vertices and int32 ``(N,)`` vertex counts (0 = special)."""
    if isinstance(traj, np.ndarray) and traj.ndim == 2:
        arr = traj.astype(np.float64, copy=False)
        count, k = arr.shape
        if k == 1:
            return np.zeros((count, 8), np.float32), np.zeros(count, np.int32)
        if k == 4:
            x, y, w, h = arr.T
            xy = np.stack([x, y, x + w, y, x + w, y + h, x, y + h], axis=1)
        elif k >= 6 and k % 2 == 0:
            xy = arr
        else:
            raise ValueError(f"trajectory array with {k} values per frame: expected 1, 4 or an even number >= 6")
        with np.errstate(over="ignore"):
            points = np.ascontiguousarray(xy, dtype=np.float32)
        return points, np.where(np.isfinite(points).all(axis=1), 4 if k == 4 else k // 2, 0).astype(np.int32)
    lengths = [len(r) for r in traj]
    width = max([8] + [n for n in lengths if n > 4])
    buf = np.zeros((len(lengths), width), np.float64)
    counts = np.zeros(len(lengths), np.int32)
    for i, (region, n) in enumerate(zip(traj, lengths)):
        if n == 1:
            continue
        if n == 4:
            x, y, w, h = (float(v) for v in region)
            buf[i, :8] = (x, y, x + w, y, x + w, y + h, x, y + h)
            counts[i] = 4
        elif n >= 6 and n % 2 == 0:
            buf[i, :n] = region
            counts[i] = n // 2
        else:
            raise ValueError(f"frame {i}: region with {n} values: expected 1 (special code), 4 (x, y, w, h) or an "
                             "even number >= 6 (polygon)")
    with np.errstate(over="ignore"):
        points = buf.astype(np.float32)
    counts[~np.isfinite(points).all(axis=1)] = 0
    return points, counts


def vot_overlap(poly1: Sequence[float], poly2: Sequence[float],
                bounds: Sequence[float] | None = None) -> float:
    """Rasterised overlap (IoU) of two regions as the VOT toolkit computes it.

    Args:
        poly1: region: ``[code]`` (special), ``[x, y, w, h]`` or ``[x0, y0, x1, y1, ...]`` (>= 3 vertices).
        poly2: region, same forms.
        bounds: ``(width, height)``: both regions are clipped to ``0..width`` x ``0..height``; None = no clipping.

    Returns:
        The overlap in [0, 1] (a float32 value); NaN if either region is special or has a non-finite coordinate
        (or if both rasterise to no pixel).
    """
    p1 = _points(poly1)
    p2 = _points(poly2)
    b = _bounds(bounds)
    if p1 is None or p2 is None:
        return math.nan
    return float(_impl.overlap_pair(p1, p2, b))


def vot_overlap_traj(traj1: Sequence[Sequence[float]] | np.ndarray, traj2: Sequence[Sequence[float]] | np.ndarray,
                     bounds: Sequence[float] | None = None) -> np.ndarray:
    """Per-frame ``vot_overlap`` of two equally long trajectories.

    Args:
        traj1: sequence of regions (or an ``(N, K)`` array, K = 1, 4 or even >= 6).
        traj2: same length as ``traj1``.
        bounds: ``(width, height)`` or None, as in ``vot_overlap``.

    Returns:
        float64 ``(N,)`` overlaps, NaN where either region is special.
    """
    if len(traj1) != len(traj2):
        raise ValueError(f"trajectories differ in length: {len(traj1)} vs {len(traj2)}")
    b = _bounds(bounds)
    if len(traj1) == 0:
        return np.zeros(0, np.float64)
    xy1, n1 = _pack(traj1)
    xy2, n2 = _pack(traj2)
    return np.asarray(_impl.overlap_traj(xy1, n1, xy2, n2, b))


def vot_float2str(template: str, value: float) -> str:
    """Format one number as the original's Cython ``vot_float2str`` does: C ``sprintf(template, (float) value)``.

    The original declares the value as a C ``float``, so it is rounded to float32 before formatting (e.g.
    ``vot_float2str("%.4f", 1.00005) == "1.0000"``). Python's ``%`` formatting of ``f/e/g`` conversions produces the
    same digits as C's ``sprintf``.

    Args:
        template: a printf template with exactly one ``%f``/``%e``/``%g``-style conversion, e.g. ``"%.4f"``.
        value: the number.

    Returns:
        The formatted string.
    """
    conversions = [m for m in re.finditer(r"%.", template) if m.group() != "%%"]
    if len(conversions) != 1 or not _FLOAT_TEMPLATE.search(template):
        raise ValueError(f"vot_float2str: template {template!r} must contain exactly one float conversion "
                         "such as %.4f, %e or %g")
    return template % float(np.float32(value))
