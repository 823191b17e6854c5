"""Numba implementation of the VOT toolkit's rasterised polygon overlap.

Ports ``compute_polygon_overlap`` and ``rasterize_polygon`` (non-legacy rasterisation, the default) from the VOT
toolkit's native ``region.c`` (the copy vendored by pysot-toolkit and by SiamMask under
``utils/pysot/utils/src/region.c``). This module and the Cython extension ``_region_ext.pyx`` compute the same
numbers bit for bit; ``utils.region`` picks one of them.

Numerics follow the C code exactly: coordinates and bounds are C ``float`` (float32) and every float-typed
expression of the C code is evaluated in float32 here; the few ``double`` expressions stay float64. Rounding of the
vertices is C ``round`` (half away from zero). Instead of filling two ``width x height`` byte masks, each image row
is reduced to the sorted list of pixel spans the C fill loop would set, which gives the same pixel counts without
allocating the masks (the C code allocates them; ``MAX_MASK`` is defined there but never used).

Inputs (prepared by ``utils.region``):
    xy: float32 ``(2n,)`` interleaved polygon vertices ``x0, y0, x1, y1, ...`` (rectangles already converted to
        their four corners ``(x, y), (x+w, y), (x+w, y+h), (x, y+h)`` as pysot's ``region.pyx`` does);
    bounds: float32 ``(4,)`` = ``top, bottom, left, right`` (``-inf, inf, -inf, inf`` for no bounds).
"""
from __future__ import annotations

import numpy as np
from numba import njit

_F32 = np.float32
_FLT_MAX = np.float32(np.finfo(np.float32).max)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _c_round(v: float) -> float:
    """C ``round`` of a float32 value (half away from zero), exact for every float32 input."""
    d = np.float64(v)
    if d >= 0.0:
        return np.floor(d + 0.5)
    return -np.floor(-d + 0.5)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _row_spans(px, py, n, row, width, nodes, starts, ends):
    """Pixel spans of one mask row, as set by the non-legacy branch of ``rasterize_polygon``.

    Args:
        px, py: float32 ``(n,)`` vertices, already offset to the mask origin and rounded.
        n: number of vertices.
        row: the row (``pixelY``).
        width: the mask width (columns are clamped to ``[0, width - 1]`` as the C fill loop does).
        nodes: int64 scratch ``(n,)``.
        starts, ends: int64 ``(n,)`` outputs; merged, sorted, inclusive column spans.

    Returns:
        The number of spans written.
    """
    nn = 0
    j = n - 1
    frow = _F32(row)
    for i in range(n):
        yi = int(py[i])
        yj = int(py[j])
        if ((yi <= row and yj > row) or (yj <= row and yi > row) or (yi < row and yj >= row)
                or (yj < row and yi >= row) or (yi == yj and yi == row)):
            r = np.float64(py[j] - py[i])
            k = np.float64(px[j] - px[i])
            if r != 0.0:
                nodes[nn] = int(np.float64(px[i]) + np.float64(frow - py[i]) / r * k)
                nn += 1
        j = i
    # insertion sort (the C code bubble-sorts; any sort gives the same ordered nodes)
    for a in range(1, nn):
        v = nodes[a]
        b = a - 1
        while b >= 0 and nodes[b] > v:
            nodes[b + 1] = nodes[b]
            b -= 1
        nodes[b + 1] = v
    ns = 0
    i = 0
    while i < nn - 1:
        lo = nodes[i]
        hi = nodes[i + 1]
        if lo == hi:  # a vertex on this row gives two identical nodes: ignore the first
            i += 1
            continue
        if lo >= width:
            break
        if hi >= 0:
            if lo < 0:
                lo = 0
            if hi >= width:
                hi = width - 1
            if ns > 0 and lo <= ends[ns - 1]:
                if hi > ends[ns - 1]:
                    ends[ns - 1] = hi
            else:
                starts[ns] = lo
                ends[ns] = hi
                ns += 1
        i += 2
    return ns


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _span_length(starts, ends, ns):
    """Number of pixels covered by ``ns`` disjoint inclusive spans."""
    total = 0
    for s in range(ns):
        total += ends[s] - starts[s] + 1
    return total


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _span_intersection(s1, e1, n1, s2, e2, n2):
    """Number of pixels in both of two sorted lists of disjoint inclusive spans."""
    total = 0
    a = 0
    b = 0
    while a < n1 and b < n2:
        lo = s1[a] if s1[a] > s2[b] else s2[b]
        hi = e1[a] if e1[a] < e2[b] else e2[b]
        if hi >= lo:
            total += hi - lo + 1
        if e1[a] < e2[b]:
            a += 1
        else:
            b += 1
    return total


@njit(cache=True, nogil=True, error_model="numpy")
def _polygon_bounds(xy, n):
    """``bounds_round(compute_bounds(p))``: top, bottom, left, right (float32)."""
    top = _FLT_MAX
    bottom = -_FLT_MAX
    left = _FLT_MAX
    right = -_FLT_MAX
    for i in range(n):
        x = xy[2 * i]
        y = xy[2 * i + 1]
        top = top if top < y else y
        bottom = bottom if bottom > y else y
        left = left if left < x else x
        right = right if right > x else x
    return (_F32(np.floor(np.float64(top))), _F32(np.ceil(np.float64(bottom))),
            _F32(np.floor(np.float64(left))), _F32(np.ceil(np.float64(right))))


@njit(cache=True, nogil=True, error_model="numpy")
def _offset_round(xy, n, dx, dy, px, py):
    """``round_polygon(offset_polygon(p, dx, dy))`` into ``px``/``py`` (float32 adds, C rounding)."""
    for i in range(n):
        px[i] = _F32(_c_round(xy[2 * i] + dx))
        py[i] = _F32(_c_round(xy[2 * i + 1] + dy))


@njit(cache=True, nogil=True, error_model="numpy")
def _row_range(py, n, height):
    """Rows ``[lo, hi]`` (clipped to the mask) that the polygon's edges can touch."""
    lo = int(py[0])
    hi = lo
    for i in range(1, n):
        v = int(py[i])
        if v < lo:
            lo = v
        if v > hi:
            hi = v
    if lo < 0:
        lo = 0
    if hi > height - 1:
        hi = height - 1
    return lo, hi


@njit(cache=True, nogil=True, error_model="numpy")
def _overlap(xy1, n1, xy2, n2, bt, bb, bl, br, fbuf, lbuf):
    """``compute_polygon_overlap(p1, p2, ..., bounds)``: float32 overlap of two polygons (see module doc).

    ``fbuf`` (float32, >= 4 * max(n1, n2)) and ``lbuf`` (int64, >= 5 * max(n1, n2)) are scratch buffers.
    """
    t1, b1, l1, r1 = _polygon_bounds(xy1, n1)
    t2, b2, l2, r2 = _polygon_bounds(xy2, n2)
    # bounds_intersection(polygon bounds, image bounds)
    t1 = t1 if t1 > bt else bt
    b1 = b1 if b1 < bb else bb
    l1 = l1 if l1 > bl else bl
    r1 = r1 if r1 < br else br
    t2 = t2 if t2 > bt else bt
    b2 = b2 if b2 < bb else bb
    l2 = l2 if l2 > bl else bl
    r2 = r2 if r2 < br else br

    x = l1 if l1 < l2 else l2
    y = t1 if t1 < t2 else t2
    width = int((r1 if r1 > r2 else r2) - x) + 1
    height = int((b1 if b1 > b2 else b2) - y) + 1

    a1 = np.float64((r1 - l1) * (b1 - t1))
    a2 = np.float64((r2 - l2) * (b2 - t2))
    if a1 / a2 < 1e-10 or a2 / a1 < 1e-10 or width < 1 or height < 1:
        return _F32(0.0)

    # bounds_overlap(b1, b2) == 0 -> no pixel can be shared
    it = t1 if t1 > t2 else t2
    ib = b1 if b1 < b2 else b2
    il = l1 if l1 > l2 else l2
    ir = r1 if r1 < r2 else r2
    inter = (ir - il) * (ib - it)
    denom = (r1 - l1) * (b1 - t1) + (r2 - l2) * (b2 - t2) - inter
    ratio = inter / denom
    if _F32(0.0) > ratio:
        ratio = _F32(0.0)
    if ratio == 0:
        return _F32(0.0)

    m = max(n1, n2)
    px1 = fbuf[0:m]
    py1 = fbuf[m:2 * m]
    px2 = fbuf[2 * m:3 * m]
    py2 = fbuf[3 * m:4 * m]
    _offset_round(xy1, n1, -x, -y, px1, py1)
    _offset_round(xy2, n2, -x, -y, px2, py2)

    nodes = lbuf[0:m]
    s1 = lbuf[m:2 * m]
    e1 = lbuf[2 * m:3 * m]
    s2 = lbuf[3 * m:4 * m]
    e2 = lbuf[4 * m:5 * m]
    lo1, hi1 = _row_range(py1, n1, height)
    lo2, hi2 = _row_range(py2, n2, height)
    only_1 = 0
    only_2 = 0
    both = 0
    for row in range(min(lo1, lo2), max(hi1, hi2) + 1):
        ns1 = 0
        ns2 = 0
        if lo1 <= row <= hi1:
            ns1 = _row_spans(px1, py1, n1, row, width, nodes, s1, e1)
        if lo2 <= row <= hi2:
            ns2 = _row_spans(px2, py2, n2, row, width, nodes, s2, e2)
        common = _span_intersection(s1, e1, ns1, s2, e2, ns2)
        both += common
        only_1 += _span_length(s1, e1, ns1) - common
        only_2 += _span_length(s2, e2, ns2) - common
    return _F32(both) / _F32(only_1 + only_2 + both)


@njit(cache=True, nogil=True, error_model="numpy")
def overlap_pair(xy1, xy2, bounds):
    """Overlap of two polygons; ``xy1``/``xy2`` float32 ``(2n,)``, ``bounds`` float32 ``(4,)`` top/bottom/left/right."""
    n1 = xy1.shape[0] // 2
    n2 = xy2.shape[0] // 2
    m = max(n1, n2)
    return _overlap(xy1, n1, xy2, n2, bounds[0], bounds[1], bounds[2], bounds[3],
                    np.empty(4 * m, np.float32), np.empty(5 * m, np.int64))


@njit(cache=True, nogil=True, error_model="numpy")
def overlap_traj(xy1, n1, xy2, n2, bounds):
    """Overlaps of two packed trajectories.

    Args:
        xy1, xy2: float32 ``(N, M)`` interleaved vertices per frame (row ``i`` uses its first ``2 * n[i]`` values).
        n1, n2: int32 ``(N,)`` vertex counts; 0 marks a special region (VOT code ``0``/``1``/``2``) -> NaN.
        bounds: float32 ``(4,)`` top, bottom, left, right.

    Returns:
        float64 ``(N,)`` overlaps (float32 values, NaN where either region is special).
    """
    out = np.empty(xy1.shape[0], np.float64)
    m = max(xy1.shape[1], xy2.shape[1]) // 2
    fbuf = np.empty(4 * m, np.float32)
    lbuf = np.empty(5 * m, np.int64)
    for i in range(xy1.shape[0]):
        if n1[i] == 0 or n2[i] == 0:
            out[i] = np.nan
        else:
            out[i] = _overlap(xy1[i], n1[i], xy2[i], n2[i], bounds[0], bounds[1], bounds[2], bounds[3], fbuf, lbuf)
    return out
