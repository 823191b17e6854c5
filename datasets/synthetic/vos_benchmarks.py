"""Built-in VOS benchmarks: a DAVIS-layout and a YouTube-VOS-layout (valid split) set of multi-object videos.

New (the original had no built-in data). Built on :mod:`datasets.synthetic`'s scene primitives (random_background,
MovingObject): several textured objects move over a panning background, later objects in front of earlier ones, and
some objects enter the scene on a later frame (YouTube-VOS: their own first frame in meta.json; DAVIS: they are
present from frame 0, as DAVIS requires every object in the first annotation).

* :func:`write_davis_dataset`: ``<root>/DAVIS/JPEGImages/480p/<seq>/00000.jpg``, ``Annotations/480p/<seq>/00000.png``
  (palette PNGs, DAVIS colours, every frame), ``ImageSets/2017/val.txt`` (all sequences) and
  ``ImageSets/2016/val.txt`` (the first half), read by tools/test.py / tools/eval.py ``--dataset DAVIS2016|DAVIS2017``;
* :func:`write_ytb_vos_valid`: ``<root>/ytb_vos/valid/JPEGImages/<video>/00000.jpg`` (frames 0, 5, 10, ...),
  ``Annotations/<video>/<frame>.png`` only on each object's first frame (as the real valid split) and ``meta.json``.

Everything is a pure function of the seed.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from ...utils.io import atomic_write_image, atomic_write_json, atomic_write_text
from ...utils.palette import write_palette_png
from .scene import MovingObject, random_background

VOS_SIZES = {"quick": {"davis_seqs": 2, "davis_frames": 10, "ytb_videos": 2, "ytb_frames": 10},
             "large": {"davis_seqs": 6, "davis_frames": 30, "ytb_videos": 6, "ytb_frames": 30}}
VOS_FRAME_SIZE = (320, 240)
JPEG_QUALITY = 92


@dataclass
class VOSScene:
    """Rendered frames and per-frame label maps (0 background, k = object k, later objects in front)."""

    frames: list[np.ndarray]  # (H, W, 3) uint8 BGR
    labels: list[np.ndarray]  # (H, W) uint8
    starts: list[int]  # first frame of each object (index into frames)


def render_vos_scene(seed: Sequence[int], num_frames: int, num_objects: int, starts: Sequence[int],
                     frame_size: tuple[int, int] = VOS_FRAME_SIZE) -> VOSScene:
    """Compose `num_objects` moving objects over a panning background; object k appears from frame `starts[k]`.

    Objects are kept away from the borders (they bounce) and sized 12-20 % of the short side, so that each stays
    visible; a later object hides the ones behind it.
    """
    rng = np.random.default_rng(list(seed))
    width, height = frame_size
    pad = 32
    background = random_background(rng, width + 2 * pad, height + 2 * pad)
    pan = rng.normal(0, 0.8, 2)
    short = min(width, height)
    objects = [MovingObject.random(rng, width, height, (0.12 * short, 0.2 * short), 0.01 * short)
               for _ in range(num_objects)]
    for obj in objects:
        obj.scale_amp = min(obj.scale_amp, 0.15)
    states = [o.states(num_frames, width, height) for o in objects]
    scene = VOSScene([], [], list(starts))
    for t in range(num_frames):
        ox, oy = np.clip(np.array([pad, pad]) + pan * t, 0, 2 * pad).astype(int)
        frame = background[oy:oy + height, ox:ox + width].copy()
        label = np.zeros((height, width), np.uint8)
        for k, (obj, st) in enumerate(zip(objects, states)):
            if t < starts[k]:
                continue
            label[obj.render(frame, st[t])] = k + 1
        scene.frames.append(frame)
        scene.labels.append(label)
    return scene


def _object_starts(rng: np.random.Generator, num_objects: int, num_frames: int, late: bool) -> list[int]:
    starts = [0] * num_objects
    if late and num_objects > 1:
        starts[-1] = int(rng.integers(2, max(3, num_frames // 2)))
    return starts


def write_davis_dataset(data_root: str, num_seqs: int = 2, num_frames: int = 10,
                        frame_size: tuple[int, int] = VOS_FRAME_SIZE, seed: int = 0) -> str:
    """A DAVIS-2016/2017-layout set under ``<data_root>/DAVIS`` (see the module docstring). Returns that folder."""
    root = os.path.join(data_root, "DAVIS")
    names = []
    for i in range(num_seqs):
        name = f"davis{i:03d}"
        names.append(name)
        rng = np.random.default_rng([seed, 0x646176, i])
        num_objects = 2 + int(rng.integers(2))
        scene = render_vos_scene((seed, 0x646176, i, 1), num_frames, num_objects, [0] * num_objects, frame_size)
        for t, (frame, label) in enumerate(zip(scene.frames, scene.labels)):
            atomic_write_image(os.path.join(root, "JPEGImages", "480p", name, f"{t:05d}.jpg"), frame,
                               (cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY))
            write_palette_png(os.path.join(root, "Annotations", "480p", name, f"{t:05d}.png"), label)
    atomic_write_text(os.path.join(root, "ImageSets", "2017", "val.txt"), "\n".join(names) + "\n")
    atomic_write_text(os.path.join(root, "ImageSets", "2016", "val.txt"),
                      "\n".join(names[:max(1, math.ceil(num_seqs / 2))]) + "\n")
    return root


def write_ytb_vos_valid(data_root: str, num_videos: int = 2, num_frames: int = 10,
                        frame_size: tuple[int, int] = VOS_FRAME_SIZE, seed: int = 0) -> str:
    """A YouTube-VOS valid-layout set under ``<data_root>/ytb_vos/valid`` with late-starting objects."""
    base = os.path.join(data_root, "ytb_vos", "valid")
    videos = {}
    for i in range(num_videos):
        name = f"ytbv{i:04d}"
        rng = np.random.default_rng([seed, 0x797476, i])
        num_objects = 2 + int(rng.integers(2))
        starts = _object_starts(rng, num_objects, num_frames, late=True)
        scene = render_vos_scene((seed, 0x797476, i, 1), num_frames, num_objects, starts, frame_size)
        frame_names = [f"{5 * t:05d}" for t in range(num_frames)]
        for t, frame in enumerate(scene.frames):
            atomic_write_image(os.path.join(base, "JPEGImages", name, frame_names[t] + ".jpg"), frame,
                               (cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY))
        objects = {}
        for k in range(num_objects):
            visible = [t for t in range(starts[k], num_frames) if (scene.labels[t] == k + 1).any()]
            if not visible:
                continue
            first = visible[0]
            objects[str(k + 1)] = {"category": "synthetic", "frames": frame_names[first:visible[-1] + 1]}
        for t in sorted({int(o["frames"][0]) // 5 for o in objects.values()}):
            # the valid split annotates each object on its first frame only (others of that frame too)
            label = scene.labels[t].copy()
            keep = [int(k) for k, o in objects.items() if int(o["frames"][0]) // 5 == t]
            label[~np.isin(label, keep)] = 0
            write_palette_png(os.path.join(base, "Annotations", name, frame_names[t] + ".png"), label)
        videos[name] = {"objects": objects}
    atomic_write_json(os.path.join(base, "meta.json"), {"videos": videos}, indent=None)
    return base


def write_vos_benchmarks(data_root: str, size: str = "quick", seed: int = 0) -> None:
    """Both VOS sets under `data_root` (seconds for "quick")."""
    n = VOS_SIZES[size]
    write_davis_dataset(data_root, n["davis_seqs"], n["davis_frames"], VOS_FRAME_SIZE, seed)
    write_ytb_vos_valid(data_root, n["ytb_videos"], n["ytb_frames"], VOS_FRAME_SIZE, seed)
