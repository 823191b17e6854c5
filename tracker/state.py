"""Per-target tracker state (:class:`TargetState`, with a JSON form) and the per-frame output (:class:`TrackResult`)."""
from __future__ import annotations

import base64
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Union

import numpy as np
import torch

from ..utils.bbox import cxcywh_to_xywh, xywh_to_corners4x2
from ..utils.errors import SiamMaskError

#: Version of the :meth:`TargetState.to_dict` layout; :meth:`TargetState.from_dict` refuses any other.
STATE_VERSION = 1


class TrackerStateError(SiamMaskError):
    """A saved target state (the dict / JSON form of :class:`TargetState`) is malformed or of another version."""


@dataclass
class TargetState:
    """Everything the tracker carries for one target (the original's `state` dict minus the shared parts).

    The caller owns it: :meth:`SiamMaskTracker.track` updates it in place. `target_pos` and `target_sz` may be set
    by the caller (e.g. a correction from an annotator); anything convertible to two floats is accepted.

    Attributes:
        target_pos: (2,) float64 centre (cx, cy) in image pixels.
        target_sz: (2,) float64 size (w, h) in image pixels.
        zf: (1, 256, 7, 7) template features on the tracker's device.
        avg_chans: (3,) float64 per-channel mean of the init frame (BGR), the crops' pad colour.
        im_h: frame height the target was initialised on.
        im_w: frame width.
        score: foreground probability of the last chosen anchor (1.0 after init).
        lost: last `score` below the tracker's threshold.
        frames: frames tracked since init.
        fingerprint: what the state depends on (model, template crop, weights; :func:`state_fingerprint`), set
            by a tracker that has one; a tracker with another fingerprint refuses the state. None: not checked.
        kernels: the model's template branches of `zf` (``model.template_kernels``), kept so that they are computed
            once per target; derived from `zf`, so not part of the JSON form (recomputed after :meth:`from_dict`).
    """

    target_pos: np.ndarray
    target_sz: np.ndarray
    zf: torch.Tensor
    avg_chans: np.ndarray
    im_h: int
    im_w: int
    score: float = 1.0
    lost: bool = False
    frames: int = 0
    fingerprint: Optional[str] = None
    kernels: Optional[tuple[torch.Tensor, ...]] = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.target_pos = np.array(self.target_pos, dtype=np.float64).reshape(2)
        self.target_sz = np.array(self.target_sz, dtype=np.float64).reshape(2)
        self.avg_chans = np.array(self.avg_chans, dtype=np.float64).reshape(-1)

    @property
    def box_xywh(self) -> np.ndarray:
        """(4,) float64 (x, y, w, h) of the current centre and size."""
        return cxcywh_to_xywh(np.asarray(self.target_pos, np.float64), np.asarray(self.target_sz, np.float64))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict: `version`, the numbers (exact through JSON) and `zf` as base64 float32 + shape.

        `fingerprint` is present only when the state has one.
        """
        zf = self.zf.detach().to("cpu", torch.float32).contiguous().numpy()
        data = {"version": STATE_VERSION,
                "target_pos": [float(v) for v in np.asarray(self.target_pos, np.float64)],
                "target_sz": [float(v) for v in np.asarray(self.target_sz, np.float64)],
                "avg_chans": [float(v) for v in self.avg_chans],
                "im_h": int(self.im_h), "im_w": int(self.im_w), "score": float(self.score), "lost": bool(self.lost),
                "frames": int(self.frames),
                "zf": {"shape": list(zf.shape), "float32_base64": base64.b64encode(zf.tobytes()).decode("ascii")}}
        if self.fingerprint is not None:
            data["fingerprint"] = str(self.fingerprint)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], device: Union[str, torch.device] = "cpu") -> "TargetState":
        """Inverse of :meth:`to_dict`; `zf` (float32) is put on `device`.

        Raises:
            TrackerStateError: another `version`, a missing key, a `zf` whose data does not fill its shape, or a
                `fingerprint` that is not a string.
        """
        if data.get("version") != STATE_VERSION:
            raise TrackerStateError(f"target state: version {data.get('version')!r} is not the supported "
                                    f"{STATE_VERSION}")
        missing = [k for k in ("target_pos", "target_sz", "avg_chans", "im_h", "im_w", "score", "lost", "frames",
                               "zf") if k not in data]
        if missing:
            raise TrackerStateError(f"target state: missing key '{missing[0]}'")
        zf = data["zf"]
        shape = [int(v) for v in zf.get("shape", ())]
        raw = base64.b64decode(zf.get("float32_base64", ""))
        if not shape or len(raw) != 4 * math.prod(shape):
            raise TrackerStateError(f"target state: key 'zf' holds {len(raw)} bytes, shape {shape} needs "
                                    f"{4 * math.prod(shape)}")
        fingerprint = data.get("fingerprint")
        if fingerprint is not None and not isinstance(fingerprint, str):
            raise TrackerStateError(f"target state: key 'fingerprint' must be a string, got "
                                    f"{type(fingerprint).__name__}")
        tensor = torch.from_numpy(np.frombuffer(raw, dtype=np.float32).reshape(shape).copy()).to(device)
        return cls(target_pos=data["target_pos"], target_sz=data["target_sz"], zf=tensor,
                   avg_chans=data["avg_chans"], im_h=int(data["im_h"]), im_w=int(data["im_w"]),
                   score=float(data["score"]), lost=bool(data["lost"]), frames=int(data["frames"]),
                   fingerprint=fingerprint)


def state_fingerprint(parts: Mapping[str, Any]) -> str:
    """A short digest of what a saved state depends on (e.g. architecture, template crop, weights digest).

    Args:
        parts: JSON-serialisable values; the digest is of their canonical JSON (sorted keys), so equal parts give
            equal fingerprints in every process.

    Returns:
        16 hex digits of the SHA-256.
    """
    text = json.dumps(dict(parts), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class TrackResult:
    """One target's output for one frame.

    Attributes:
        box: (4,) float64 (x, y, w, h) of the clamped centre/size (the original's `cxy_wh_2_rect` output).
        polygon: (4, 2) corners: the mask's rotated rectangle in mask mode (the original's `ploygon`), else the box.
        mask: (H, W) float32 probabilities in the full frame (-1 outside the pasted window), None without mask mode.
        score: foreground probability of the chosen anchor.
        lost: `score` below the tracker's `lost_threshold`.
        target_pos: (2,) float64 clamped centre.
        target_sz: (2,) float64 clamped size.
        response_pos: (row, col) of the chosen anchor on the response map.
    """

    box: np.ndarray
    polygon: np.ndarray
    mask: Optional[np.ndarray]
    score: float
    lost: bool
    target_pos: np.ndarray
    target_sz: np.ndarray
    response_pos: tuple[int, int] = (0, 0)


def init_result(state: TargetState) -> TrackResult:
    """The result describing a freshly initialised target: its box, the box corners, no mask, score 1."""
    box = state.box_xywh
    return TrackResult(box=box, polygon=xywh_to_corners4x2(box), mask=None, score=1.0, lost=False,
                       target_pos=state.target_pos.copy(), target_sz=state.target_sz.copy())
