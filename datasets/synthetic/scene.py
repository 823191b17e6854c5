"""Scene rendering of the built-in synthetic data: textures, object contours, moving objects, whole videos.

Videos show textured objects of varied shape (ellipses, polygons, smooth blobs), size, aspect ratio and rotation
moving over textured, cluttered backgrounds, with camera pans, illumination changes, scale changes and unannotated
occluders passing in front. Everything is a pure function of the seed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import cv2
import numpy as np

from ...evaluation.vot import VOT_ATTRIBUTES

#: (width, height) of the generated frames.
FRAME_SIZE = (320, 240)
#: Side of the generated object and background textures.
TEXTURE_SIZE = 96


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
    tags: dict[str, list[int]] = {t: [] for t in VOT_ATTRIBUTES}
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
