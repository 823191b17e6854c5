"""VOT region overlap (utils.region): exact rational overlaps on pixel-aligned boxes, agreement with shapely within the
rasterisation error, bit-exact agreement of the Cython and numba backends, and a literal transcription of the VOT
toolkit's ``compute_polygon_overlap`` / ``rasterize_polygon`` (full masks, bubble sort) as the reference."""
from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
from shapely.geometry import Polygon

import siammask.utils.region as region
from siammask.utils.region import _region_numba, vot_float2str, vot_overlap, vot_overlap_traj

F = np.float32
FLT_MAX = F(np.finfo(np.float32).max)


# ----------------------------------------------------------------------------------------------------------------
# A literal transcription of region.c (non-legacy rasterisation), written for this test: full masks, the C control
# flow and the C expression types (float = np.float32, double = Python float).
# ----------------------------------------------------------------------------------------------------------------
def _c_round(v: np.float32) -> np.float32:
    d = float(v)
    return F(math.copysign(math.floor(abs(d) + 0.5), d))


def _c_min(a, b):
    return a if a < b else b


def _c_max(a, b):
    return a if a > b else b


def _rasterize(px: list, py: list, width: int, height: int) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    n = len(px)
    for pixel_y in range(height):
        nodes = []
        j = n - 1
        for i in range(n):
            yi, yj = int(py[i]), int(py[j])
            if ((yi <= pixel_y and yj > pixel_y) or (yj <= pixel_y and yi > pixel_y)
                    or (yi < pixel_y and yj >= pixel_y) or (yj < pixel_y and yi >= pixel_y)
                    or (yi == yj and yi == pixel_y)):
                r = float(F(py[j] - py[i]))
                k = float(F(px[j] - px[i]))
                if r != 0:
                    nodes.append(int(float(px[i]) + float(F(F(pixel_y) - py[i])) / r * k))
            j = i
        i = 0
        while i < len(nodes) - 1:  # bubble sort as in region.c
            if nodes[i] > nodes[i + 1]:
                nodes[i], nodes[i + 1] = nodes[i + 1], nodes[i]
                if i:
                    i -= 1
            else:
                i += 1
        i = 0
        while i < len(nodes) - 1:
            if nodes[i] == nodes[i + 1]:
                i += 1
                continue
            if nodes[i] >= width:
                break
            if nodes[i + 1] >= 0:
                if nodes[i] < 0:
                    nodes[i] = 0
                if nodes[i + 1] >= width:
                    nodes[i + 1] = width - 1
                mask[pixel_y, nodes[i]:nodes[i + 1] + 1] = True
            i += 2
    return mask


def reference_overlap(xy1: np.ndarray, xy2: np.ndarray, bounds: tuple) -> float:
    """compute_polygon_overlap(p1, p2, &only1, &only2, bounds) with bounds = (top, bottom, left, right) floats."""
    bt, bb, bl, br = (F(v) for v in bounds)

    def rounded_bounds(xy):
        top, bottom, left, right = FLT_MAX, -FLT_MAX, FLT_MAX, -FLT_MAX
        for x, y in zip(xy[0::2], xy[1::2]):
            top, bottom = _c_min(top, y), _c_max(bottom, y)
            left, right = _c_min(left, x), _c_max(right, x)
        top, bottom = F(math.floor(top)), F(math.ceil(bottom))
        left, right = F(math.floor(left)), F(math.ceil(right))
        return _c_max(top, bt), _c_min(bottom, bb), _c_max(left, bl), _c_min(right, br)

    t1, b1, l1, r1 = rounded_bounds(xy1)
    t2, b2, l2, r2 = rounded_bounds(xy2)
    x, y = _c_min(l1, l2), _c_min(t1, t2)
    width = int(F(_c_max(r1, r2) - x)) + 1
    height = int(F(_c_max(b1, b2) - y)) + 1
    a1 = float(F(F(r1 - l1) * F(b1 - t1)))
    a2 = float(F(F(r2 - l2) * F(b2 - t2)))
    with np.errstate(all="ignore"):
        q1, q2 = np.float64(a1) / np.float64(a2), np.float64(a2) / np.float64(a1)
        if q1 < 1e-10 or q2 < 1e-10 or width < 1 or height < 1:
            return 0.0
        inter = F(F(_c_min(r1, r2) - _c_max(l1, l2)) * F(_c_min(b1, b2) - _c_max(t1, t2)))
        denom = F(F(F(F(r1 - l1) * F(b1 - t1)) + F(F(r2 - l2) * F(b2 - t2))) - inter)
        ratio = F(inter / denom)
    ratio = F(0) if F(0) > ratio else ratio
    if ratio == 0:
        return 0.0

    def offset_rounded(xy):
        return ([_c_round(F(v + F(-x))) for v in xy[0::2]], [_c_round(F(v + F(-y))) for v in xy[1::2]])

    m1 = _rasterize(*offset_rounded(xy1), width, height)
    m2 = _rasterize(*offset_rounded(xy2), width, height)
    both = int(np.sum(m1 & m2))
    union = int(np.sum(m1 | m2))
    with np.errstate(all="ignore"):
        return float(F(both) / F(union))


def _bounds_tuple(bounds):
    if bounds is None:
        return (-np.inf, np.inf, -np.inf, np.inf)
    return (0.0, float(bounds[1]), 0.0, float(bounds[0]))


# ----------------------------------------------------------------------------------------------------------------
# Random regions
# ----------------------------------------------------------------------------------------------------------------
def _quad(rng: np.random.Generator, center_range: tuple, size_range: tuple) -> list[float]:
    c = rng.uniform(*center_range, 2)
    s = rng.uniform(*size_range, 2)
    a = rng.uniform(0, np.pi)
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * s / 2
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return (corners @ rot.T + c).ravel().tolist()


def _random_region(rng: np.random.Generator, scale: float = 80.0) -> list[float]:
    """A mix of the shapes that exercise region.c's corner cases."""
    kind = rng.integers(8)
    if kind == 0:  # integer rectangle (x, y, w, h), sometimes negative size
        return rng.integers(-10, int(scale), 4).astype(float).tolist()
    if kind == 1:  # half-integer coordinates: rounding ties
        return (rng.integers(-20, int(2 * scale), 8) / 2).tolist()
    if kind == 2:  # self-intersecting / arbitrary quad
        return rng.uniform(-10, scale, 8).tolist()
    if kind == 3:  # triangle or hexagon
        return rng.uniform(-5, scale, int(rng.choice([6, 12]))).tolist()
    if kind == 4:  # degenerate: all on one line / one point
        p = rng.uniform(0, scale, 2)
        return [p[0], p[1], p[0] + rng.integers(0, 3), p[1], p[0], p[1]] + [p[0], p[1]]
    if kind == 5:  # many vertices (heap buffers in the extension)
        t = np.sort(rng.uniform(0, 2 * np.pi, 40))
        r = rng.uniform(5, scale / 2, 40)
        c = rng.uniform(0, scale, 2)
        return np.stack([c[0] + r * np.cos(t), c[1] + r * np.sin(t)], 1).ravel().tolist()
    return _quad(rng, (-10, scale + 10), (1, scale))


# ----------------------------------------------------------------------------------------------------------------
# Tests
# ----------------------------------------------------------------------------------------------------------------
def test_identical_and_disjoint() -> None:
    box = [10.0, 20.0, 30.0, 40.0]
    assert vot_overlap(box, box) == 1.0
    assert vot_overlap(box, [100.0, 100.0, 5.0, 5.0]) == 0.0
    # touching boxes share no area: the bounding-box test returns 0 before rasterising
    assert vot_overlap([0, 0, 10, 10], [10, 0, 10, 10]) == 0.0
    poly = [10, 20, 40, 20, 40, 60, 10, 60]
    assert vot_overlap(poly, box) == 1.0  # a rectangle is its 4 corners (x, y), (x+w, y), (x+w, y+h), (x, y+h)


def _pixel_box(box: list[float], bounds: tuple | None) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = box[0], box[1], box[0] + box[2], box[1] + box[3]
    if bounds is not None:
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, bounds[0]), min(y1, bounds[1])
    return x0, y0, x1, y1


@pytest.mark.parametrize("with_bounds", [False, True])
def test_integer_boxes_give_exact_rational_overlaps(with_bounds: bool) -> None:
    # VOT rasterises the closed box: x..x+w covers w+1 pixel columns. For integer boxes whose clipped extents are
    # positive the overlap is exactly |A & B| / |A | B| counted in pixels, in C float.
    rng = np.random.default_rng(1)
    bounds = (120, 90) if with_bounds else None
    checked = 0
    for _ in range(600):
        b1 = [float(v) for v in (*rng.integers(-20, 110, 2), *rng.integers(1, 60, 2))]
        b2 = [float(v) for v in (*rng.integers(-20, 110, 2), *rng.integers(1, 60, 2))]
        c1, c2 = _pixel_box(b1, bounds), _pixel_box(b2, bounds)
        if min(c1[2] - c1[0], c1[3] - c1[1], c2[2] - c2[0], c2[3] - c2[1]) <= 0:
            continue
        ix = min(c1[2], c2[2]) - max(c1[0], c2[0])
        iy = min(c1[3], c2[3]) - max(c1[1], c2[1])
        area1 = (c1[2] - c1[0] + 1) * (c1[3] - c1[1] + 1)
        area2 = (c2[2] - c2[0] + 1) * (c2[3] - c2[1] + 1)
        inter = (ix + 1) * (iy + 1) if ix > 0 and iy > 0 else 0
        expected = float(F(inter) / F(area1 + area2 - inter))
        assert vot_overlap(b1, b2, bounds) == expected, (b1, b2)
        poly1 = [c1[0], c1[1], c1[2], c1[1], c1[2], c1[3], c1[0], c1[3]]
        assert vot_overlap(poly1, b2, bounds) == expected, (poly1, b2)
        checked += 1
    assert checked > 300


def test_close_to_shapely_on_random_polygons() -> None:
    # Rasterisation counts boundary pixels fully, so the error scales with perimeter / area.
    rng = np.random.default_rng(2)
    worst = 0.0
    for _ in range(400):
        p1 = _quad(rng, (100, 500), (40, 250))
        p2 = (np.asarray(p1) + rng.normal(0, 15, 8)).tolist()
        s1 = Polygon(np.reshape(p1, (4, 2)))
        s2 = Polygon(np.reshape(p2, (4, 2)))
        if not (s1.is_valid and s2.is_valid):
            continue
        union = s1.union(s2).area
        iou = s1.intersection(s2).area / union
        tol = 2.0 * (s1.length + s2.length) / union
        got = vot_overlap(p1, p2)
        assert abs(got - iou) <= tol, (p1, p2, got, iou, tol)
        worst = max(worst, abs(got - iou))
    assert worst < 0.05


def test_backend_matches_literal_transcription_of_region_c() -> None:
    rng = np.random.default_rng(3)
    point = [5.0, 5.0] * 3  # two identical single points: every guard passes and 0 / 0 pixels gives NaN
    assert math.isnan(vot_overlap(point, point)) and math.isnan(reference_overlap(np.float32(point),
                                                                                  np.float32(point),
                                                                                  _bounds_tuple(None)))
    for i in range(600):
        r1 = _random_region(rng, 40.0)
        r2 = _random_region(rng, 40.0) if i % 3 else (np.asarray(r1) + rng.integers(-3, 4, len(r1))).tolist()
        bounds = [None, (45, 35), (30.5, 50)][i % 3]
        got = vot_overlap(r1, r2, bounds)
        ref = reference_overlap(region._points(r1), region._points(r2), _bounds_tuple(bounds))
        assert np.float32(got).tobytes() == np.float32(ref).tobytes(), (r1, r2, bounds, got, ref)


def test_cython_and_numba_agree_bitwise() -> None:
    ext = pytest.importorskip("siammask.utils.region._region_ext", reason="Cython extension not built (bash make.sh)")
    rng = np.random.default_rng(4)
    n = 4000
    traj1 = [[1.0] if rng.random() < 0.03 else _random_region(rng, 700.0) for _ in range(n)]
    traj2 = [[float(rng.integers(3))] if rng.random() < 0.03 else
             (np.asarray(r) + rng.normal(0, 20, len(r))).tolist() if len(r) > 1 and rng.random() < 0.6 else
             _random_region(rng, 700.0) for r in traj1]
    xy1, n1 = region._pack(traj1)
    xy2, n2 = region._pack(traj2)
    for bounds in (None, (1280, 720), (640.5, 360)):
        b = region._bounds(bounds)
        a = np.asarray(ext.overlap_traj(xy1, n1, xy2, n2, b))
        c = _region_numba.overlap_traj(xy1, n1, xy2, n2, b)
        assert a.tobytes() == c.tobytes()
        assert 0 < np.sum(a > 0) < n and np.isnan(a).sum() >= 0.03 * n
        for i in range(0, n, 97):  # the single-pair entry points too
            if n1[i] and n2[i]:
                p, q = xy1[i, :2 * n1[i]], xy2[i, :2 * n2[i]]
                assert np.float32(ext.overlap_pair(p, q, b)) == np.float32(_region_numba.overlap_pair(p, q, b))


def test_specials_are_nan_and_traj_matches_pairs() -> None:
    assert math.isnan(vot_overlap([1], [0, 0, 5, 5]))
    assert math.isnan(vot_overlap([0, 0, 5, 5], [2]))
    assert math.isnan(vot_overlap([0, 0, math.nan, 5], [0, 0, 5, 5]))  # non-finite coordinates count as special
    assert math.isnan(vot_overlap_traj([[0, 0, 5, 5, 5, 0, math.inf, 1]], [[0, 0, 5, 5]])[0])
    assert math.isnan(vot_overlap_traj(np.array([[0, 0, 5, math.nan]]), np.array([[0, 0, 5, 5.0]]))[0])
    assert math.isnan(vot_overlap([0, 0, 1e39, 5], [0, 0, 5, 5]))  # beyond float32: infinite in C float
    gt = [[0, 0, 10, 0, 10, 10, 0, 10]] * 4
    pred = [[1], [0, 0, 10, 10], [2], [0]]
    out = vot_overlap_traj(pred, gt, (20, 20))
    assert out.dtype == np.float64 and out.shape == (4,)
    assert math.isnan(out[0]) and math.isnan(out[2]) and math.isnan(out[3]) and out[1] == 1.0
    rng = np.random.default_rng(5)
    t1 = [_random_region(rng) for _ in range(60)]
    t2 = [_random_region(rng) for _ in range(60)]
    pairs = [vot_overlap(a, b, (70, 60)) for a, b in zip(t1, t2)]
    np.testing.assert_array_equal(vot_overlap_traj(t1, t2, (70, 60)), np.asarray(pairs))
    as_array = vot_overlap_traj(np.asarray(gt * 2), np.asarray([[0.0, 0, 10, 10]] * 8))
    np.testing.assert_array_equal(as_array, np.ones(8))


def test_invalid_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="3 values"):
        vot_overlap([1, 2, 3], [0, 0, 1, 1])
    with pytest.raises(ValueError, match="bounds"):
        vot_overlap([0, 0, 1, 1], [0, 0, 1, 1], bounds=(0, 0, 10, 10))
    with pytest.raises(ValueError, match="length"):
        vot_overlap_traj([[1]], [[1], [1]])


def test_float2str_uses_c_float_and_sprintf() -> None:
    assert vot_float2str("%.4f", 3.14159265) == "3.1416"
    assert vot_float2str("%.4f", 1.00005) == "1.0000"  # float32(1.00005) = 1.0000499..., as the original's C float
    assert vot_float2str("%.2e", 12345.678) == "1.23e+04"
    assert vot_float2str("%8.3f", -2.5) == "  -2.500"
    for bad in ("%d", "%s", "%.4f,%.4f", "no conversion"):
        with pytest.raises(ValueError):
            vot_float2str(bad, 1.0)


def test_backend_env_var_forces_numba() -> None:
    env = dict(os.environ, SIAMMASK_REGION_BACKEND="numba")
    code = "import utils.region as r; print(r.BACKEND, r.vot_overlap([0, 0, 10, 10], [5, 0, 10, 10]))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["numba", "0.375"]
    assert region.BACKEND in ("cython", "numba")
