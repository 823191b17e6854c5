# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
# distutils: extra_compile_args = -ffp-contract=off
"""Cython implementation of the VOT toolkit's rasterised polygon overlap.

Ports ``compute_polygon_overlap`` and ``rasterize_polygon`` (non-legacy rasterisation, the default) from the VOT
toolkit's native ``region.c`` as vendored by pysot-toolkit and SiamMask (``utils/pysot/utils/src/region.c``).
It computes exactly the numbers of ``_region_numba.py`` (same algorithm, same float32/float64 expression types);
``utils.region`` chooses between the two. Built by ``make.sh`` / ``python setup.py build_ext --inplace``.

The C code fills two ``width x height`` byte masks; here each row is reduced to the merged pixel spans the C fill
loop would set, which gives identical counts without the allocation. ``-ffp-contract=off`` keeps compilers that
fuse multiply-adds by default (aarch64 GCC) from changing float32 results.
"""
from libc.float cimport FLT_MAX
from libc.math cimport NAN, ceil, floor, round
from libc.stdlib cimport free, malloc

import numpy as np

cdef enum:
    _STACK = 32  # polygons up to this many vertices use stack buffers


cdef inline int _row_spans(const float* px, const float* py, int n, int row, int width,
                           long* nodes, long* starts, long* ends) noexcept nogil:
    """Merged, sorted, inclusive pixel spans of one mask row (see ``_region_numba._row_spans``)."""
    cdef int nn = 0, i, j = n - 1, a, b, ns = 0, yi, yj
    cdef double r, k
    cdef long v, lo, hi
    cdef float frow = <float>row
    for i in range(n):
        yi = <int>py[i]
        yj = <int>py[j]
        if ((yi <= row and yj > row) or (yj <= row and yi > row) or (yi < row and yj >= row)
                or (yj < row and yi >= row) or (yi == yj and yi == row)):
            r = <double>(py[j] - py[i])
            k = <double>(px[j] - px[i])
            if r != 0:
                nodes[nn] = <long>(<double>px[i] + <double>(frow - py[i]) / r * k)
                nn += 1
        j = i
    for a in range(1, nn):
        v = nodes[a]
        b = a - 1
        while b >= 0 and nodes[b] > v:
            nodes[b + 1] = nodes[b]
            b -= 1
        nodes[b + 1] = v
    i = 0
    while i < nn - 1:
        lo = nodes[i]
        hi = nodes[i + 1]
        if lo == hi:
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


cdef inline long _span_length(const long* starts, const long* ends, int ns) noexcept nogil:
    cdef long total = 0
    cdef int s
    for s in range(ns):
        total += ends[s] - starts[s] + 1
    return total


cdef inline long _span_intersection(const long* s1, const long* e1, int n1,
                                    const long* s2, const long* e2, int n2) noexcept nogil:
    cdef long total = 0, lo, hi
    cdef int a = 0, b = 0
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


cdef inline void _polygon_bounds(const float* xy, int n, float* out) noexcept nogil:
    """``bounds_round(compute_bounds(p))`` into ``out`` = top, bottom, left, right."""
    cdef float top = FLT_MAX, bottom = -FLT_MAX, left = FLT_MAX, right = -FLT_MAX, x, y
    cdef int i
    for i in range(n):
        x = xy[2 * i]
        y = xy[2 * i + 1]
        top = top if top < y else y
        bottom = bottom if bottom > y else y
        left = left if left < x else x
        right = right if right > x else x
    out[0] = <float>floor(top)
    out[1] = <float>ceil(bottom)
    out[2] = <float>floor(left)
    out[3] = <float>ceil(right)


cdef inline void _row_range(const float* py, int n, int height, int* lo_hi) noexcept nogil:
    cdef int lo = <int>py[0], hi = lo, v, i
    for i in range(1, n):
        v = <int>py[i]
        if v < lo:
            lo = v
        if v > hi:
            hi = v
    if lo < 0:
        lo = 0
    if hi > height - 1:
        hi = height - 1
    lo_hi[0] = lo
    lo_hi[1] = hi


cdef float _overlap(const float* xy1, int n1, const float* xy2, int n2,
                    float bt, float bb, float bl, float br) noexcept nogil:
    """``compute_polygon_overlap(p1, p2, ..., bounds)`` (see ``_region_numba._overlap``)."""
    cdef float pb1[4]
    cdef float pb2[4]
    cdef float t1, b1, l1, r1, t2, b2, l2, r2, x, y, it, ib, il, ir, inter, denom, ratio
    cdef int width, height, i, row, ns1, ns2, m
    cdef double a1, a2
    cdef int rr1[2]
    cdef int rr2[2]
    cdef long only_1 = 0, only_2 = 0, both = 0, common
    cdef float fbuf[4 * _STACK]
    cdef long lbuf[5 * _STACK]
    cdef float* fmem = fbuf
    cdef long* lmem = lbuf
    cdef float* px1
    cdef float* py1
    cdef float* px2
    cdef float* py2
    cdef long* nodes
    cdef long* s1
    cdef long* e1
    cdef long* s2
    cdef long* e2
    cdef float result

    _polygon_bounds(xy1, n1, pb1)
    _polygon_bounds(xy2, n2, pb2)
    t1 = pb1[0] if pb1[0] > bt else bt
    b1 = pb1[1] if pb1[1] < bb else bb
    l1 = pb1[2] if pb1[2] > bl else bl
    r1 = pb1[3] if pb1[3] < br else br
    t2 = pb2[0] if pb2[0] > bt else bt
    b2 = pb2[1] if pb2[1] < bb else bb
    l2 = pb2[2] if pb2[2] > bl else bl
    r2 = pb2[3] if pb2[3] < br else br

    x = l1 if l1 < l2 else l2
    y = t1 if t1 < t2 else t2
    width = <int>((r1 if r1 > r2 else r2) - x) + 1
    height = <int>((b1 if b1 > b2 else b2) - y) + 1

    a1 = <double>((r1 - l1) * (b1 - t1))
    a2 = <double>((r2 - l2) * (b2 - t2))
    if a1 / a2 < 1e-10 or a2 / a1 < 1e-10 or width < 1 or height < 1:
        return 0

    it = t1 if t1 > t2 else t2
    ib = b1 if b1 < b2 else b2
    il = l1 if l1 > l2 else l2
    ir = r1 if r1 < r2 else r2
    inter = (ir - il) * (ib - it)
    denom = (r1 - l1) * (b1 - t1) + (r2 - l2) * (b2 - t2) - inter
    ratio = inter / denom
    if 0 > ratio:
        ratio = 0
    if ratio == 0:
        return 0

    m = n1 if n1 > n2 else n2
    if m > _STACK:
        fmem = <float*>malloc(4 * m * sizeof(float))
        lmem = <long*>malloc(5 * m * sizeof(long))
        if fmem == NULL or lmem == NULL:
            free(fmem)
            free(lmem)
            return -1  # allocation failure; reported by the caller
    px1 = fmem
    py1 = fmem + m
    px2 = fmem + 2 * m
    py2 = fmem + 3 * m
    nodes = lmem
    s1 = lmem + m
    e1 = lmem + 2 * m
    s2 = lmem + 3 * m
    e2 = lmem + 4 * m

    for i in range(n1):
        px1[i] = <float>round(xy1[2 * i] + (-x))
        py1[i] = <float>round(xy1[2 * i + 1] + (-y))
    for i in range(n2):
        px2[i] = <float>round(xy2[2 * i] + (-x))
        py2[i] = <float>round(xy2[2 * i + 1] + (-y))

    _row_range(py1, n1, height, rr1)
    _row_range(py2, n2, height, rr2)
    for row in range(rr1[0] if rr1[0] < rr2[0] else rr2[0], (rr1[1] if rr1[1] > rr2[1] else rr2[1]) + 1):
        ns1 = 0
        ns2 = 0
        if rr1[0] <= row <= rr1[1]:
            ns1 = _row_spans(px1, py1, n1, row, width, nodes, s1, e1)
        if rr2[0] <= row <= rr2[1]:
            ns2 = _row_spans(px2, py2, n2, row, width, nodes, s2, e2)
        common = _span_intersection(s1, e1, ns1, s2, e2, ns2)
        both += common
        only_1 += _span_length(s1, e1, ns1) - common
        only_2 += _span_length(s2, e2, ns2) - common

    if m > _STACK:
        free(fmem)
        free(lmem)
    result = <float>both / <float>(only_1 + only_2 + both)
    return result


def overlap_pair(const float[::1] xy1, const float[::1] xy2, const float[::1] bounds):
    """Overlap of two polygons; ``xy1``/``xy2`` float32 ``(2n,)``, ``bounds`` float32 ``(4,)`` top/bottom/left/right."""
    cdef float v
    with nogil:
        v = _overlap(&xy1[0], xy1.shape[0] // 2, &xy2[0], xy2.shape[0] // 2,
                     bounds[0], bounds[1], bounds[2], bounds[3])
    if v == -1:
        raise MemoryError("region overlap: could not allocate rasterisation buffers")
    return v


def overlap_traj(const float[:, ::1] xy1, const int[::1] n1, const float[:, ::1] xy2, const int[::1] n2,
                 const float[::1] bounds):
    """Overlaps of two packed trajectories (see ``_region_numba.overlap_traj``); returns float64 ``(N,)``."""
    cdef Py_ssize_t i, count = xy1.shape[0]
    cdef float v
    cdef bint failed = False
    out = np.empty(count, dtype=np.float64)
    cdef double[::1] res = out
    with nogil:
        for i in range(count):
            if n1[i] == 0 or n2[i] == 0:
                res[i] = NAN
            else:
                v = _overlap(&xy1[i, 0], n1[i], &xy2[i, 0], n2[i], bounds[0], bounds[1], bounds[2], bounds[3])
                if v == -1:
                    failed = True
                    break
                res[i] = v
    if failed:
        raise MemoryError("region overlap: could not allocate rasterisation buffers")
    return out
