"""Built-in synthetic data: tracking videos, a box-only detection set and a VOT-style benchmark, all seeded.

New (the original had no built-in data). Videos show textured objects of varied shape (ellipses, polygons, smooth
blobs), size, aspect ratio and rotation moving over textured, cluttered backgrounds, with camera pans, illumination
changes, scale changes and unannotated occluders passing in front. The raw data is written in the public datasets'
layouts and then goes through the same preparation code as the real data:

* :func:`write_raw_ytb_vos`: YouTube-VOS train layout (JPEG frames, palette PNG instance masks, meta.json); the
  `datasets.prep.ytb_vos` steps turn it into crop511 + train.json;
* :func:`write_det_dataset`: ImageNet-DET layout (JPEGs + XML boxes), then crop511 + train.json (box-only);
* :func:`write_vot_dataset`: a VOT2018-style benchmark (color/ frames, rotated-box groundtruth.txt, per-frame
  attribute .tag files, list.txt) and its pysot json;
* :func:`make_builtin_data`: all of it under one data root (``quick``: seconds; ``large``: a learning check).

Everything is a pure function of the seed: the same call writes byte-identical raw files.
"""
from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass, field
from typing import Optional, Sequence

import cv2
import numpy as np

from .errors import DataError
from .prep import det as det_prep
from .prep import ytb_vos as ytb_prep
from .prep.common import parallel_map, read_json, write_json
from .prep.vot import VOT_TAGS, create_vot_json
from siammask.utils.io import atomic_path, atomic_write_text
from siammask.utils.palette import davis_palette as _palette, write_palette_png  # noqa: F401 - shared writer

BUILTIN_VERSION = 3  # 3: + the DAVIS / YouTube-VOS valid benchmarks (synthetic_vos)
SIZES = {
    # ytb videos x frames, det images, vot videos x frames
    "quick": {"ytb_videos": 8, "ytb_frames": 20, "det_images": 16, "vot_videos": 4, "vot_frames": 110},
    "large": {"ytb_videos": 96, "ytb_frames": 40, "det_images": 400, "vot_videos": 8, "vot_frames": 160},
}
FRAME_SIZE = (320, 240)
_GENERATED = ("ytb_vos", "det", "VOT2018", "VOT2018.json", "DAVIS", "builtin.json", "builtin.partial.json")
TEXTURE_SIZE = 96


# ----------------------------------------------------------------------------------------------- scene primitives
def random_contour(rng: np.random.Generator, points: int = 64) -> np.ndarray:
    """Outline of a random shape in unit coordinates (max |x| = max |y| = 1): ellipse, polygon or smooth blob.

    Returns:
        (N, 2) float64 points in order around the shape.
    """
    kind = int(rng.integers(3))
    theta = np.linspace(0.0, 2 * np.pi, points, endpoint=False)
    if kind == 0:  # ellipse
        pts = np.stack([np.cos(theta), np.sin(theta)], 1)
    elif kind == 1:  # polygon with 3-8 vertices at jittered angles and radii
        n = int(rng.integers(3, 9))
        ang = np.sort((np.arange(n) + rng.uniform(-0.3, 0.3, n)) * 2 * np.pi / n + rng.uniform(0, 2 * np.pi))
        rad = rng.uniform(0.65, 1.0, n)
        pts = np.stack([rad * np.cos(ang), rad * np.sin(ang)], 1)
    else:  # blob: r(theta) = 1 + sum_k a_k cos(k theta + phi_k)
        r = np.ones_like(theta)
        for k in range(2, 6):
            r += rng.uniform(0.0, 0.3) / k * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
        pts = np.stack([r * np.cos(theta), r * np.sin(theta)], 1)
    pts = pts - (pts.max(0) + pts.min(0)) / 2
    return pts / np.abs(pts).max(0)


def random_texture(rng: np.random.Generator, size: int = TEXTURE_SIZE) -> np.ndarray:
    """A saturated two-colour pattern (stripes, checker, rings or smooth noise) with grain.

    Returns:
        (size, size, 3) uint8 BGR.
    """
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    kind = int(rng.integers(4))
    freq = rng.uniform(2, 6)
    if kind == 0:
        a = rng.uniform(0, np.pi)
        t = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (np.cos(a) * xx + np.sin(a) * yy))
    elif kind == 1:
        t = ((np.floor(xx * freq) + np.floor(yy * freq)) % 2).astype(np.float32)
    elif kind == 2:
        t = 0.5 + 0.5 * np.sin(2 * np.pi * freq * np.hypot(xx - 0.5, yy - 0.5))
    else:
        t = cv2.resize(rng.random((5, 5)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    c1 = rng.integers(0, 256, 3).astype(np.float32)
    c2 = rng.integers(0, 256, 3).astype(np.float32)
    c1[rng.integers(3)] = rng.uniform(200, 255)  # keep at least one strong channel: objects stand out
    img = c1 * (1 - t[..., None]) + c2 * t[..., None] + rng.normal(0, 8, (size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def random_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Muted smooth colour noise plus clutter (lines, rectangles, ellipses) and grain.

    Returns:
        (height, width, 3) uint8 BGR.
    """
    low = rng.uniform(40, 200, (max(height // 60, 2), max(width // 60, 2), 3)).astype(np.float32)
    img = cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)
    mid = rng.normal(0, 18, (max(height // 12, 2), max(width // 12, 2), 3)).astype(np.float32)
    img += cv2.resize(mid, (width, height), interpolation=cv2.INTER_LINEAR)
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(6, 16))):
        color = tuple(int(c) for c in rng.integers(30, 226, 3))
        x, y = int(rng.integers(width)), int(rng.integers(height))
        kind = int(rng.integers(3))
        if kind == 0:
            cv2.line(img, (x, y), (int(rng.integers(width)), int(rng.integers(height))), color,
                     int(rng.integers(1, 5)))
        elif kind == 1:
            cv2.rectangle(img, (x, y), (x + int(rng.integers(10, 60)), y + int(rng.integers(10, 60))), color, -1)
        else:
            cv2.ellipse(img, (x, y), (int(rng.integers(5, 30)), int(rng.integers(5, 30))),
                        float(rng.uniform(0, 180)), 0, 360, color, -1)
    grain = rng.integers(-10, 11, img.shape, dtype=np.int16)
    return np.clip(img.astype(np.int16) + grain, 0, 255).astype(np.uint8)


@dataclass
class MovingObject:
    """A textured shape on a smooth trajectory: position bounces off the frame, size and angle drift."""

    contour: np.ndarray  # (N, 2) unit outline
    texture: np.ndarray  # (T, T, 3) uint8
    center: np.ndarray  # (2,) start position, frame pixels
    velocity: np.ndarray  # (2,) pixels per frame
    half_size: float  # mean half side, pixels
    aspect: float  # width / height
    angle: float  # radians
    spin: float  # radians per frame
    scale_amp: float  # log-scale amplitude
    scale_freq: float  # radians per frame
    scale_phase: float

    @classmethod
    def random(cls, rng: np.random.Generator, width: int, height: int, size_range: tuple[float, float],
               speed: float) -> "MovingObject":
        half = rng.uniform(*size_range)
        margin = half * 1.2
        return cls(random_contour(rng), random_texture(rng),
                   np.array([rng.uniform(margin, width - margin), rng.uniform(margin, height - margin)]),
                   rng.normal(0, speed, 2), half, float(np.exp(rng.uniform(-0.7, 0.7))), rng.uniform(0, 2 * np.pi),
                   rng.normal(0, 0.03), rng.uniform(0, 0.35), rng.uniform(0.05, 0.2), rng.uniform(0, 2 * np.pi))

    def states(self, num_frames: int, width: int, height: int,
               bounce: bool = True) -> list[tuple[np.ndarray, float, float, float]]:
        """Per frame: (centre, half width, half height, angle); the centre reflects off the frame borders
        (or moves on in a straight line when `bounce` is False)."""
        out = []
        pos, vel = self.center.astype(np.float64).copy(), self.velocity.astype(np.float64).copy()
        for t in range(num_frames):
            scale = math.exp(self.scale_amp * math.sin(self.scale_freq * t + self.scale_phase))
            hw = self.half_size * scale * math.sqrt(self.aspect)
            hh = self.half_size * scale / math.sqrt(self.aspect)
            out.append((pos.copy(), hw, hh, self.angle + self.spin * t))
            pos += vel
            for k, limit in enumerate((width, height)):
                if bounce and (pos[k] < 0 or pos[k] > limit):
                    vel[k] = -vel[k]
                    pos[k] = min(max(pos[k], 0.0), float(limit))
        return out

    @staticmethod
    def transform(state: tuple[np.ndarray, float, float, float]) -> np.ndarray:
        """2x3 affine map from unit coordinates to frame pixels for a state."""
        (cx, cy), hw, hh, angle = state
        c, s = math.cos(angle), math.sin(angle)
        return np.array([[c * hw, -s * hh, cx], [s * hw, c * hh, cy]], dtype=np.float64)

    def render(self, frame: np.ndarray, state: tuple[np.ndarray, float, float, float]) -> np.ndarray:
        """Draw the object onto `frame` in place; returns its (H, W) bool mask."""
        unit = self.transform(state)
        pts = self.contour @ unit[:, :2].T + unit[:, 2]
        mask = np.zeros(frame.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
        tsize = self.texture.shape[0]
        to_unit = np.array([[2.0 / tsize, 0, -1.0], [0, 2.0 / tsize, -1.0], [0, 0, 1]])
        full = unit @ to_unit
        layer = cv2.warpAffine(self.texture, full, (frame.shape[1], frame.shape[0]), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT)
        inside = mask.astype(bool)
        frame[inside] = layer[inside]
        return inside

    def polygon(self, state: tuple[np.ndarray, float, float, float]) -> np.ndarray:
        """Outline in frame pixels: (N, 2) float32."""
        unit = self.transform(state)
        return (self.contour @ unit[:, :2].T + unit[:, 2]).astype(np.float32)


@dataclass
class SyntheticVideo:
    """Rendered frames of one seeded scene."""

    frames: list[np.ndarray]  # (H, W, 3) uint8 BGR
    masks: list[list[np.ndarray]]  # per frame, per annotated object: visible (H, W) bool mask
    polygons: list[list[np.ndarray]]  # per frame, per annotated object: full outline (N, 2) float32
    tags: dict[str, list[int]] = field(default_factory=dict)  # VOT attributes of object 0, per frame


def render_video(seed: Sequence[int], num_frames: int, frame_size: tuple[int, int] = FRAME_SIZE,
                 num_objects: int = 1, occluder: Optional[bool] = None) -> SyntheticVideo:
    """Render one scene: `num_objects` annotated objects and maybe an unannotated occluder over a panning
    background with an illumination drift.

    Args:
        seed: sequence of integers seeding the scene (e.g. [seed, video index]).
        num_frames: frames to render.
        frame_size: (width, height).
        num_objects: annotated objects (drawn in order, later ones in front).
        occluder: force (True/False) or draw at random (None) an occluder crossing the scene in front.
    """
    rng = np.random.default_rng(list(seed))
    width, height = frame_size
    pad = 64
    background = random_background(rng, width + 2 * pad, height + 2 * pad)
    pan = rng.normal(0, 1.0, 2) if rng.random() < 0.6 else np.zeros(2)
    light_amp = rng.uniform(0.1, 0.35) if rng.random() < 0.5 else 0.0
    light_freq = rng.uniform(0.05, 0.2)
    short = min(width, height)
    objects = [MovingObject.random(rng, width, height, (0.1 * short, 0.2 * short), 0.012 * short)
               for _ in range(num_objects)]
    if occluder is None:
        occluder = bool(rng.random() < 0.5)
    blocker = None
    if occluder:
        blocker = MovingObject.random(rng, width, height, (0.08 * short, 0.16 * short), 0.0)
        start = rng.uniform([-0.3 * width, 0.2 * height], [-0.1 * width, 0.8 * height])
        blocker.center = start
        blocker.velocity = np.array([1.6 * width / max(num_frames, 1), rng.normal(0, 0.3)])
    states = [o.states(num_frames, width, height) for o in objects]
    blocker_states = blocker.states(num_frames, width, height, bounce=False) if blocker else None

    video = SyntheticVideo([], [], [])
    offset = np.array([pad, pad], dtype=np.float64)
    light_prev = 1.0
    tags: dict[str, list[int]] = {t: [] for t in VOT_TAGS}
    for t in range(num_frames):
        ox, oy = np.clip(offset + pan * t, 0, [2 * pad, 2 * pad]).astype(int)
        frame = background[oy:oy + height, ox:ox + width].copy()
        visible = [o.render(frame, s[t]) for o, s in zip(objects, states)]
        for i in range(len(visible) - 1):  # objects in front hide the ones behind
            for j in range(i + 1, len(visible)):
                visible[i] &= ~visible[j]
        full_area = visible[0].sum() if visible else 0
        occluded = 0.0
        if blocker is not None and blocker_states is not None:
            hidden = blocker.render(frame, blocker_states[t])
            if visible:
                occluded = float((visible[0] & hidden).sum()) / max(float(full_area), 1.0)
            visible = [v & ~hidden for v in visible]
        light = 1.0 + light_amp * math.sin(light_freq * t)
        if light != 1.0:
            frame = cv2.convertScaleAbs(frame, alpha=light)
        video.frames.append(frame)
        video.masks.append(visible)
        video.polygons.append([o.polygon(s[t]) for o, s in zip(objects, states)])
        if objects:
            s_now, s_prev = states[0][t], states[0][max(t - 1, 0)]
            v_now = s_now[0] - s_prev[0]
            v_prev = s_prev[0] - states[0][max(t - 2, 0)][0]
            tags["camera_motion"].append(int(np.abs(pan).max() > 0.3))
            tags["illum_change"].append(int(abs(light - light_prev) > 0.01))
            tags["motion_change"].append(int(t >= 2 and float(np.dot(v_now, v_prev)) < 0))
            tags["size_change"].append(int(abs(math.log((s_now[1] * s_now[2]) / (s_prev[1] * s_prev[2]))) > 0.02))
            tags["occlusion"].append(int(occluded > 0.1))
        light_prev = light
    video.tags = tags
    return video


# ----------------------------------------------------------------------------------------------- writers
def _imwrite(path: str, image: np.ndarray, params: Sequence[int] = ()) -> None:
    ok, buf = cv2.imencode(os.path.splitext(path)[1], image, list(params))
    if not ok:
        raise DataError(f"{path}: cannot encode image")
    with atomic_path(path) as tmp:
        buf.tofile(tmp)


@dataclass(frozen=True)
class _YtbTask:
    out_dir: str
    video: str
    seed: tuple[int, ...]
    num_frames: int
    frame_size: tuple[int, int]


def _write_ytb_video(task: _YtbTask) -> dict[str, dict[str, object]]:
    rng = np.random.default_rng(list(task.seed) + [1])
    num_objects = 1 + int(rng.random() < 0.4)
    video = render_video(task.seed, task.num_frames, task.frame_size, num_objects)
    img_dir = os.path.join(task.out_dir, "train", "JPEGImages", task.video)
    ann_dir = os.path.join(task.out_dir, "train", "Annotations", task.video)
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(ann_dir, exist_ok=True)
    frames_of: dict[str, list[str]] = {str(i + 1): [] for i in range(num_objects)}
    for t, (frame, masks) in enumerate(zip(video.frames, video.masks)):
        name = f"{5 * t:05d}"  # YouTube-VOS annotates every 5th frame
        _imwrite(os.path.join(img_dir, name + ".jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 92])
        label = np.zeros(frame.shape[:2], np.uint8)
        for i, m in enumerate(masks):
            label[m] = i + 1
            if m.any():
                frames_of[str(i + 1)].append(name)
        write_palette_png(os.path.join(ann_dir, name + ".png"), label)
    return {"objects": {k: {"category": "synthetic", "frames": v} for k, v in frames_of.items()}}


def write_raw_ytb_vos(out_dir: str, num_videos: int = 8, num_frames: int = 20,
                      frame_size: tuple[int, int] = FRAME_SIZE, seed: int = 0, num_workers: int = 0,
                      progress: bool = False) -> str:
    """Write a raw YouTube-VOS-layout train split (input of `data/ytb_vos` / :mod:`datasets.prep.ytb_vos`).

    Layout: ``<out_dir>/train/JPEGImages/<video>/<00000>.jpg`` (frames numbered 0, 5, 10, ...),
    ``<out_dir>/train/Annotations/<video>/<00000>.png`` (palette PNG, index = object id, 0 = background) and
    ``<out_dir>/train/meta.json`` (``{"videos": {video: {"objects": {id: {"category", "frames"}}}}}``).
    Videos hold one or two annotated objects; occluders are not annotated (their pixels are background).

    Returns:
        `out_dir`.
    """
    tasks = [_YtbTask(out_dir, f"syn{i:04d}", (seed, 0x797462, i), num_frames, tuple(frame_size))
             for i in range(num_videos)]
    metas = parallel_map(_write_ytb_video, tasks, num_workers, desc="render ytb_vos", progress=progress)
    write_json(os.path.join(out_dir, "train", "meta.json"),
               {"videos": {t.video: m for t, m in zip(tasks, metas)}}, indent=None)
    return out_dir


def _det_xml(filename: str, width: int, height: int, boxes: list[list[int]]) -> str:
    objects = "".join(
        f"<object><name>n00000000</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>"
        f"<ymax>{b[3]}</ymax></bndbox></object>" for b in boxes)
    return (f"<annotation><folder>synthetic</folder><filename>{filename}</filename><size><width>{width}</width>"
            f"<height>{height}</height></size>{objects}</annotation>\n")


@dataclass(frozen=True)
class _DetTask:
    out_dir: str
    subset: str
    name: str
    seed: tuple[int, ...]
    frame_size: tuple[int, int]


def _write_det_image(task: _DetTask) -> None:
    rng = np.random.default_rng(list(task.seed))
    video = render_video(task.seed, 1, task.frame_size, num_objects=1 + int(rng.integers(3)), occluder=False)
    frame, masks = video.frames[0], video.masks[0]
    boxes = []
    for m in masks:
        ys, xs = np.nonzero(m)
        if len(xs) >= 50:
            boxes.append([int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())])
    img_path = os.path.join(task.out_dir, det_prep.DATA_SUBDIR, task.subset, task.name + ".JPEG")
    xml_path = os.path.join(task.out_dir, det_prep.ANNO_SUBDIR, task.subset, task.name + ".xml")
    os.makedirs(os.path.dirname(img_path), exist_ok=True)
    os.makedirs(os.path.dirname(xml_path), exist_ok=True)
    _imwrite(img_path, frame, [cv2.IMWRITE_JPEG_QUALITY, 92])
    atomic_write_text(xml_path, _det_xml(task.name, frame.shape[1], frame.shape[0], boxes))


def write_det_dataset(out_dir: str, num_images: int = 16, frame_size: tuple[int, int] = FRAME_SIZE, seed: int = 0,
                      num_workers: int = 0, progress: bool = False) -> str:
    """A box-only DET-style set: raw ``<out_dir>/ILSVRC2015/{Data,Annotations}/DET/train/...`` images and XML,
    then (through :mod:`datasets.prep.det`) ``<out_dir>/crop511/...`` and ``<out_dir>/train.json``.

    Returns:
        `out_dir`.
    """
    tasks = [_DetTask(out_dir, "synthetic_train_0000", f"syn_det_{i:06d}", (seed, 0x646574, i), tuple(frame_size))
             for i in range(num_images)]
    parallel_map(_write_det_image, tasks, num_workers, desc="render det", progress=progress)
    det_prep.crop_det(out_dir, num_workers=num_workers, progress=progress)
    det_prep.gen_json_det(out_dir)
    return out_dir


def _vot_polygon(points: np.ndarray) -> list[float]:
    """Rotated bounding box of outline points as 8 values x1, y1, ..., x4, y4 (VOT2018 groundtruth)."""
    corners = cv2.boxPoints(cv2.minAreaRect(points.astype(np.float32)))
    return [float(v) for v in corners.reshape(-1)]


@dataclass(frozen=True)
class _VotTask:
    dataset_dir: str
    video: str
    seed: tuple[int, ...]
    num_frames: int
    frame_size: tuple[int, int]


def _write_vot_video(task: _VotTask) -> None:
    video = render_video(task.seed, task.num_frames, task.frame_size, num_objects=1)
    folder = os.path.join(task.dataset_dir, task.video)
    os.makedirs(os.path.join(folder, "color"), exist_ok=True)
    for t, frame in enumerate(video.frames):
        _imwrite(os.path.join(folder, "color", f"{t + 1:08d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 92])
    lines = [",".join(f"{v:.2f}" for v in _vot_polygon(polys[0])) for polys in video.polygons]
    atomic_write_text(os.path.join(folder, "groundtruth.txt"), "\n".join(lines) + "\n")
    for tag in VOT_TAGS:
        atomic_write_text(os.path.join(folder, f"{tag}.tag"), "\n".join(str(v) for v in video.tags[tag]) + "\n")


def write_vot_dataset(data_root: str, name: str = "VOT2018", num_videos: int = 4, num_frames: int = 40,
                      frame_size: tuple[int, int] = FRAME_SIZE, seed: int = 0, num_workers: int = 0,
                      progress: bool = False) -> str:
    """A VOT2018-style benchmark of single-target videos.

    Writes ``<data_root>/<name>/<video>/color/00000001.jpg ...``, ``groundtruth.txt`` (rotated boxes, 8 values per
    line), one ``<attribute>.tag`` per VOT attribute, ``<data_root>/<name>/list.txt`` and the pysot json
    ``<data_root>/<name>.json`` (img_names relative to ``<data_root>/<name>/``, e.g. "vot0000/color/00000001.jpg").

    Returns:
        the dataset folder ``<data_root>/<name>``.
    """
    dataset_dir = os.path.join(data_root, name)
    tasks = [_VotTask(dataset_dir, f"vot{i:04d}", (seed, 0x766F74, i), num_frames, tuple(frame_size))
             for i in range(num_videos)]
    parallel_map(_write_vot_video, tasks, num_workers, desc=f"render {name}", progress=progress)
    atomic_write_text(os.path.join(dataset_dir, "list.txt"), "\n".join(t.video for t in tasks) + "\n")
    write_json(os.path.join(data_root, f"{name}.json"), create_vot_json(dataset_dir), indent=None)
    return dataset_dir


def make_builtin_data(data_root: str = "data/synthetic", size: str = "quick", seed: int = 0, num_workers: int = 0,
                      progress: bool = False) -> str:
    """Generate and preprocess the built-in data under `data_root` (skipped when already complete).

    Layout (matching experiments/siammask_synthetic/config*.json with ``--data-root <data_root>``):
    ``ytb_vos/`` (raw, ``crop511/``, ``train.json``), ``det/`` (raw, ``crop511/``, ``train.json``), ``VOT2018/`` and
    ``VOT2018.json``. A stamp ``builtin.json`` records size, seed and version; a different request regenerates.

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
    from .synthetic_vos import write_vos_benchmarks
    write_vos_benchmarks(data_root, size, seed)
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
