"""SiamMask tracker: a stateless tracker object over a stateless model, per-target state in :class:`TargetState`.

Ports `get_subwindow_tracking`, `siamese_init` and `siamese_track` of the original `tools/test.py` (reference.md
E.1-E.3) with the same arithmetic: context 0.5, avg-colour padding and `round()` conventions of the crops, anchors
relative to the crop centre, scale/ratio penalty, cosine window, lr-smoothed size, clamping, the mask from
`track_refine(row, col)` (sharp) or the 63x63 head (base), pasted back with `cv2.warpAffine` (border -1), and the
polygon = `minAreaRect` of the largest contour when its area > 100, else the box corners.

Conventions: frames are BGR uint8 HWC (as cv2 reads them); boxes are 0-based ``xywh`` (top-left, size); positions on
the response map are (row, col). The tracker does no drawing and no file IO.

Deviations from the original:

* nothing is stored on the model; a target's template features live in its :class:`TargetState`, so several targets
  share one model, and :meth:`SiamMaskTracker.track_many` runs several targets of a frame in one network call;
* the mask side is the side of the mask actually produced (127 refine, 63 head) instead of ``hp.out_size`` (the
  original crashed when they differed);
* in refine mode the 3969-channel mask head is not computed (its output is unused there);
* ``lost`` (score below a threshold) is new; it does not change the tracking;
* a regression that diverges to inf/NaN keeps the previous box with score 0 (the original crashed in ``round``);
* the crops use ``cv2.copyMakeBorder`` on the part of the image inside the crop instead of padding the whole image
  (same pixels: the pad value is the per-channel mean truncated to uint8, as the original's uint8 assignment).

Network inputs keep the original's memory layout: HWC crops viewed as CHW (``im_to_torch``) are channels_last-strided,
so the CPU convolutions run in channels_last as they did for the original under PyTorch 2.x; template features are
passed on as dense channels_last for the same reason (CPU convolution rounding depends on the layout).
Dtypes follow the original under NumPy 2 (decoding in float32, penalties and window in float64).
"""
from __future__ import annotations

import base64
import contextlib
import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Optional, Sequence, Union

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from siammask.utils.anchors import cosine_window, tracker_anchors
from siammask.utils.bbox import cxcywh_to_xywh, mask_to_xywh, xywh_to_corners4x2, xywh_to_cxcywh
from siammask.utils.config import AnchorsConfig, Config, HpConfig, load_hp
from siammask.utils.mask_ops import mask_window_in_image, paste_mask, polygon_from_mask
from siammask.utils.runtime import Runtime

#: Default `lost` threshold on the best anchor's foreground probability.
DEFAULT_LOST_THRESHOLD = 0.3


def get_subwindow_tracking(im: np.ndarray, pos: Sequence[float], model_sz: int, original_sz: int,
                           avg_chans: np.ndarray) -> np.ndarray:
    """Square crop of side `original_sz` centred on `pos`, padded with the mean colour, resized to `model_sz`.

    The original's `get_subwindow_tracking`: c = (original_sz + 1) / 2, xmin = round(pos_x - c),
    xmax = xmin + original_sz - 1 (same for y); pixels outside the image take `avg_chans` cast to uint8
    (truncation); `cv2.resize` (bilinear) when the sizes differ.

    Args:
        im: (H, W, 3) BGR uint8 frame.
        pos: (cx, cy) centre in image pixels.
        model_sz: output side (127 template, 255 search).
        original_sz: crop side in image pixels (an int, already rounded by the caller).
        avg_chans: (3,) per-channel mean of the first frame.

    Returns:
        (model_sz, model_sz, 3) uint8 BGR crop.
    """
    sz = original_sz
    c = (original_sz + 1) / 2
    xmin = round(pos[0] - c)
    ymin = round(pos[1] - c)
    xmax = xmin + sz - 1
    ymax = ymin + sz - 1
    im_h, im_w = im.shape[:2]
    x0, y0 = max(xmin, 0), max(ymin, 0)
    x1, y1 = min(xmax + 1, im_w), min(ymax + 1, im_h)
    fill = [float(int(v)) for v in avg_chans]  # numpy's float -> uint8 assignment truncates
    if x1 <= x0 or y1 <= y0:  # the crop misses the image: all padding
        patch = np.empty((sz, sz, im.shape[2]), dtype=np.uint8)
        patch[:] = np.array(fill, dtype=np.uint8)
    elif x0 == xmin and y0 == ymin and x1 == xmax + 1 and y1 == ymax + 1:
        patch = im[y0:y1, x0:x1]
    else:
        patch = cv2.copyMakeBorder(im[y0:y1, x0:x1], y0 - ymin, ymax + 1 - y1, x0 - xmin, xmax + 1 - x1,
                                   cv2.BORDER_CONSTANT, value=fill)
    if model_sz != original_sz:
        patch = cv2.resize(patch, (model_sz, model_sz))
    return patch


def crops_to_tensor(crops: Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
    """Stack (S, S, 3) uint8 crops into a (B, 3, S, S) float32 BGR 0-255 tensor on `device`."""
    batch = torch.from_numpy(np.stack(crops)).to(device)
    return batch.permute(0, 3, 1, 2).float()


def _tensor_to_b64(t: torch.Tensor) -> dict[str, Any]:
    dtype = str(t.dtype).replace("torch.", "")
    data = t.detach().to("cpu", torch.float32).contiguous().numpy()
    return {"dtype": dtype, "shape": list(data.shape), "data": base64.b64encode(data.tobytes()).decode("ascii")}


def _tensor_from_b64(d: Mapping[str, Any], device: Union[str, torch.device]) -> torch.Tensor:
    data = np.frombuffer(base64.b64decode(d["data"]), dtype=np.float32).reshape(d["shape"])
    return torch.from_numpy(data.copy()).to(device=device, dtype=getattr(torch, d["dtype"]))


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

    def __post_init__(self) -> None:
        self.target_pos = np.array(self.target_pos, dtype=np.float64).reshape(2)
        self.target_sz = np.array(self.target_sz, dtype=np.float64).reshape(2)
        self.avg_chans = np.array(self.avg_chans, dtype=np.float64).reshape(-1)

    @property
    def box_xywh(self) -> np.ndarray:
        """(4,) float64 (x, y, w, h) of the current centre and size."""
        return cxcywh_to_xywh(np.asarray(self.target_pos, np.float64), np.asarray(self.target_sz, np.float64))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (floats are exact through JSON; `zf` is base64 float32 with its dtype)."""
        return {"target_pos": [float(v) for v in np.asarray(self.target_pos, np.float64)],
                "target_sz": [float(v) for v in np.asarray(self.target_sz, np.float64)],
                "avg_chans": [float(v) for v in self.avg_chans],
                "im_h": int(self.im_h), "im_w": int(self.im_w), "score": float(self.score), "lost": bool(self.lost),
                "frames": int(self.frames), "zf": _tensor_to_b64(self.zf)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], device: Union[str, torch.device] = "cpu") -> "TargetState":
        """Inverse of :meth:`to_dict`; `zf` is put on `device`."""
        return cls(target_pos=data["target_pos"], target_sz=data["target_sz"], zf=_tensor_from_b64(data["zf"], device),
                   avg_chans=data["avg_chans"], im_h=int(data["im_h"]), im_w=int(data["im_w"]),
                   score=float(data["score"]), lost=bool(data["lost"]), frames=int(data["frames"]))


@dataclass
class TrackResult:
    """One target's output for one frame; also readable as a dict (``result["box"]``).

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

    def __getitem__(self, key: str) -> Any:
        if key not in self.keys():
            raise KeyError(key)
        return getattr(self, key)

    def keys(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self)]

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in self.keys() else default


def _resolve_hp(hp: Union[HpConfig, Mapping[str, Any], None]) -> HpConfig:
    if hp is None:
        return HpConfig()
    if isinstance(hp, HpConfig):
        return hp
    return load_hp(None, dict(hp))


class SiamMaskTracker:
    """SiamMask tracker (box + optional mask) for any number of targets on one model.

    Usage::

        tracker = SiamMaskTracker(model, cfg.hp, "cpu", anchors=cfg.anchors)
        state = tracker.init(frame, (x, y, w, h))         # or tracker.init_mask(frame, mask)
        result = tracker.track(state, next_frame)         # result.box, .polygon, .mask, .score, .lost
        results = tracker.track_many([s1, s2], frame)     # one network call for both

    Args:
        model: a models.build_model() model in eval mode (`template`, `track`, and `refine` for the sharp model).
        hp: tracker hyper-parameters: an HpConfig, a dict of a config's hp block (over the original's defaults) or
            None (defaults).
        device: where the network runs: 'cpu', 'cuda', a torch.device or a utils.runtime.Runtime (whose AMP setting
            is then used).
        anchors: anchor config (stride, ratios, scales); default the model's `anchors` / `config.anchors` attribute if
            it has one, else the original's anchors.
        mask: produce the mask and the rotated polygon (the original's `--mask`).
        refine: use the refinement module (`--refine`); default: True when the model has `refine`.
        lost_threshold: `lost` = score < this.
        amp_dtype: autocast dtype for the network (e.g. torch.bfloat16); None = fp32 (exact).
        channels_last: feed channels_last crops and convert the model's parameters to channels_last (in place).
    """

    def __init__(self, model: torch.nn.Module, hp: Union[HpConfig, Mapping[str, Any], None] = None,
                 device: Union[str, torch.device, Runtime] = "cpu", *, anchors: Optional[AnchorsConfig] = None,
                 mask: bool = True, refine: Optional[bool] = None, lost_threshold: float = DEFAULT_LOST_THRESHOLD,
                 amp_dtype: Optional[torch.dtype] = None, channels_last: bool = False) -> None:
        if isinstance(device, Runtime):
            amp_dtype = device.amp_dtype if amp_dtype is None else amp_dtype
            device = device.device
        self.model = model
        self.device = torch.device(device)
        self.hp = _resolve_hp(hp)
        self.anchors_cfg = anchors if anchors is not None else _model_anchors(model)
        self.mask_enable = bool(mask)
        has_refine = callable(getattr(model, "refine", None))
        self.refine_enable = bool(mask) and (has_refine if refine is None else bool(refine))
        if self.refine_enable and not has_refine:
            raise ValueError("refine=True needs a model with a refinement module (the sharp model)")
        self.lost_threshold = float(lost_threshold)
        self.amp_dtype = amp_dtype
        self.channels_last = bool(channels_last)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        # The original's TrackerConfig.update: the stride comes from the anchors, score_size is recomputed.
        self.stride = int(self.anchors_cfg.stride)
        self.score_size = (self.hp.instance_size - self.hp.exemplar_size) // self.stride + 1 + self.hp.base_size
        self.anchor_num = self.anchors_cfg.anchor_num
        self.anchor = tracker_anchors(self.anchors_cfg, self.score_size)  # (A*S*S, 4) float32
        self.window = cosine_window(self.score_size, self.anchor_num, self.hp.windowing)  # (A*S*S,) float64

    # ------------------------------------------------------------------ init
    def init(self, frame: np.ndarray, box_xywh: Sequence[float]) -> TargetState:
        """Start tracking the target in `box_xywh` (0-based x, y, w, h) of `frame` (BGR uint8 HWC)."""
        x, y, w, h = _four_floats(box_xywh, "box_xywh")
        if not (w > 0 and h > 0):
            raise ValueError(f"box_xywh needs a positive width and height, got {list(box_xywh)}")
        cx, cy, w, h = xywh_to_cxcywh((x, y, w, h))
        return self.init_cxcywh(frame, (cx, cy, w, h))

    def init_mask(self, frame: np.ndarray, mask: np.ndarray) -> TargetState:
        """Start tracking the object of an (H, W) mask (non-zero = object); box = `cv2.boundingRect` as the original.

        The mask only gives the box (the original's VOS init); its shape must match the frame.
        """
        mask = np.asarray(mask)
        if mask.shape[:2] != frame.shape[:2]:
            raise ValueError(f"mask shape {mask.shape[:2]} differs from the frame's {frame.shape[:2]}")
        x, y, w, h = mask_to_xywh(mask)
        if w == 0 or h == 0:
            raise ValueError("init_mask: the mask is empty")
        return self.init_cxcywh(frame, (x + w / 2, y + h / 2, w, h))

    def init_cxcywh(self, frame: np.ndarray, box_cxcywh: Sequence[float]) -> TargetState:
        """Start tracking from a centre/size box (the original `siamese_init(im, target_pos, target_sz)`)."""
        _check_frame(frame)
        cx, cy, w, h = _four_floats(box_cxcywh, "box_cxcywh")
        target_pos = np.array([cx, cy], dtype=np.float64)
        target_sz = np.array([w, h], dtype=np.float64)
        avg_chans = np.mean(frame, axis=(0, 1))
        wc_z = target_sz[0] + self.hp.context_amount * sum(target_sz)
        hc_z = target_sz[1] + self.hp.context_amount * sum(target_sz)
        s_z = round(np.sqrt(wc_z * hc_z))
        z_crop = get_subwindow_tracking(frame, target_pos, self.hp.exemplar_size, s_z, avg_chans)
        z = self._to_input(crops_to_tensor([z_crop], self.device))
        with self._inference():
            zf = self.model.template(z)
        return TargetState(target_pos=target_pos, target_sz=target_sz, zf=zf, avg_chans=avg_chans,
                           im_h=frame.shape[0], im_w=frame.shape[1])

    # ------------------------------------------------------------------ track
    def track(self, state: TargetState, frame: np.ndarray) -> TrackResult:
        """Track one target into `frame` (BGR uint8 HWC); updates `state` in place and returns the result."""
        return self.track_many([state], frame)[0]

    def track_many(self, states: Sequence[TargetState], frame: np.ndarray) -> list[TrackResult]:
        """Track several targets of one frame with one network call (batch = len(states)).

        Each result equals what :meth:`track` gives for that target alone.
        """
        _check_frame(frame)
        if not states:
            return []
        for st in states:
            if (frame.shape[0], frame.shape[1]) != (st.im_h, st.im_w):
                raise ValueError(f"frame is {frame.shape[1]}x{frame.shape[0]} but the target was initialised on "
                                 f"{st.im_w}x{st.im_h}")
        hp = self.hp
        geoms = [self._search_geometry(st) for st in states]
        crops = [get_subwindow_tracking(frame, np.asarray(st.target_pos, np.float64), hp.instance_size,
                                        round(g["s_x"]), st.avg_chans) for st, g in zip(states, geoms)]
        x = self._to_input(crops_to_tensor(crops, self.device))
        with self._inference():
            # The crops are channels_last-strided (HWC pixels seen as CHW, as the original's im_to_torch) and so
            # are the template features init() gets; a state restored by from_dict holds NCHW features, and CPU
            # convolutions round differently per layout, so every zf is made dense channels_last here.
            zf = torch.cat([st.zf.to(self.device) for st in states]).contiguous(memory_format=torch.channels_last)
            out = self.model.track(zf, x, mask_head=False)  # masks: refine or mask_at, one position
            cls, loc = out["cls"].float(), out["loc"].float()
            num = len(states)
            deltas = loc.reshape(num, 4, -1).cpu().numpy()
            scores = [F.softmax(cls[b].reshape(2, -1).permute(1, 0), dim=1)[:, 1].cpu().numpy() for b in range(num)]
            with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # untrained nets overflow exp()
                picks = [self._select(st, g, deltas[b], scores[b]) for b, (st, g) in enumerate(zip(states, geoms))]
            masks: list[Optional[np.ndarray]] = [None] * num
            if self.mask_enable:
                if self.refine_enable:
                    # One call per target: the refine convolutions are not batch-invariant on every backend, and
                    # per-target calls cost the same as a batched one.
                    masks = []
                    for b, p in enumerate(picks):
                        logits = self.model.refine(_sample_of(out, b, num), (p["row"], p["col"])).float()
                        side = math.isqrt(logits.shape[1])
                        masks.append(logits[0].sigmoid().view(side, side).cpu().numpy())
                else:  # the base mask head at the picked position of each target only
                    pos = torch.tensor([[p["row"], p["col"]] for p in picks], device=self.device)
                    head = self.model.mask_at(out, pos).float().sigmoid()
                    side = math.isqrt(head.shape[1])
                    masks = [m.view(side, side).cpu().numpy() for m in head]
        return [self._finish(st, g, p, m) for st, g, p, m in zip(states, geoms, picks, masks)]

    # ------------------------------------------------------------------ steps of siamese_track
    def _search_geometry(self, st: TargetState) -> dict[str, Any]:
        """Search-crop side and scale of a target (siamese_track step 1)."""
        hp = self.hp
        target_pos = np.asarray(st.target_pos, np.float64)
        target_sz = np.asarray(st.target_sz, np.float64)
        wc_x = target_sz[1] + hp.context_amount * sum(target_sz)
        hc_x = target_sz[0] + hp.context_amount * sum(target_sz)
        s_x = np.sqrt(wc_x * hc_x)
        scale_x = hp.exemplar_size / s_x
        d_search = (hp.instance_size - hp.exemplar_size) / 2
        pad = d_search / scale_x
        s_x = s_x + 2 * pad
        crop_box = [target_pos[0] - round(s_x) / 2, target_pos[1] - round(s_x) / 2, round(s_x), round(s_x)]
        return {"s_x": s_x, "scale_x": scale_x, "crop_box": crop_box, "target_pos": target_pos,
                "target_sz": target_sz}

    def _select(self, st: TargetState, geom: Mapping[str, Any], delta: np.ndarray,
                score: np.ndarray) -> dict[str, Any]:
        """Decode the boxes, penalise, pick the best anchor, smooth the size (siamese_track steps 3-5).

        Args:
            delta: (4, A*S*S) float32 network regression (dx, dy, dw, dh).
            score: (A*S*S,) float32 foreground probabilities.
        """
        return select_anchor(delta, score, self.anchor, self.window, geom["target_pos"], geom["target_sz"],
                             geom["scale_x"], self.hp, self.score_size)

    def _finish(self, st: TargetState, geom: Mapping[str, Any], pick: Mapping[str, Any],
                mask: Optional[np.ndarray]) -> TrackResult:
        """Mask paste-back, polygon, clamping, state update (siamese_track steps 6-9)."""
        hp = self.hp
        target_pos, target_sz = pick["target_pos"], pick["target_sz"]
        score = float(pick["score"])
        if not (np.isfinite(target_pos).all() and np.isfinite(target_sz).all()):
            # Diverged regression (inf/NaN; the original then crashed in round()): keep the previous box.
            target_pos, target_sz, score = geom["target_pos"].copy(), geom["target_sz"].copy(), 0.0
        mask_in_img = None
        polygon = None
        if mask is not None:
            sub_box = mask_window_in_image(geom["crop_box"], pick["row"], pick["col"], hp.instance_size,
                                           hp.exemplar_size, hp.base_size, self.stride)
            mask_in_img = paste_mask(mask, sub_box, st.im_w, st.im_h)
            polygon = polygon_from_mask(mask_in_img, hp.seg_thr, target_pos, target_sz)
        target_pos[0] = max(0, min(st.im_w, target_pos[0]))
        target_pos[1] = max(0, min(st.im_h, target_pos[1]))
        target_sz[0] = max(10, min(st.im_w, target_sz[0]))
        target_sz[1] = max(10, min(st.im_h, target_sz[1]))
        st.target_pos = target_pos
        st.target_sz = target_sz
        st.score = score
        st.lost = score < self.lost_threshold
        st.frames += 1
        box = cxcywh_to_xywh(target_pos, target_sz)
        if polygon is None:
            polygon = xywh_to_corners4x2(box)
        return TrackResult(box=box, polygon=polygon, mask=mask_in_img, score=score, lost=st.lost,
                           target_pos=target_pos.copy(), target_sz=target_sz.copy(),
                           response_pos=(pick["row"], pick["col"]))

    # ------------------------------------------------------------------ helpers
    def _to_input(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    @contextlib.contextmanager
    def _inference(self) -> Iterator[None]:
        with torch.inference_mode():
            if self.amp_dtype is None:
                yield
            else:
                with torch.autocast(device_type=self.device.type, dtype=self.amp_dtype):
                    yield


def select_anchor(delta: np.ndarray, score: np.ndarray, anchor: np.ndarray, window: np.ndarray,
                  target_pos: np.ndarray, target_sz: np.ndarray, scale_x: float, hp: HpConfig,
                  score_size: int) -> dict[str, Any]:
    """The box step of `siamese_track`: decode, scale/ratio penalty, cosine window, argmax, lr-smoothed update.

    Dtypes follow the original under NumPy 2: decoding in float32, penalties and scores in float64.

    Args:
        delta: (4, N) float32 regression outputs (dx, dy, dw, dh), N = A*S*S, index a*S*S + row*S + col.
        score: (N,) float32 foreground probabilities.
        anchor: (N, 4) float32 anchors (cx, cy, w, h) relative to the crop centre.
        window: (N,) float64 cosine window.
        target_pos: (2,) float64 previous centre.
        target_sz: (2,) float64 previous size.
        scale_x: exemplar_size / (context size of the previous target).
        hp: tracker hyper-parameters (penalty_k, window_influence, lr).
        score_size: S.

    Returns:
        dict with `index` (flat best index), `anchor`, `row`, `col`, `score` (float32), `penalty`, `pscore` (N,),
        `target_pos`, `target_sz` (new, unclamped, float64).
    """
    cx = delta[0] * anchor[:, 2] + anchor[:, 0]
    cy = delta[1] * anchor[:, 3] + anchor[:, 1]
    w = np.exp(delta[2]) * anchor[:, 2]
    h = np.exp(delta[3]) * anchor[:, 3]

    def change(r: np.ndarray) -> np.ndarray:
        return np.maximum(r, 1. / r)

    def sz(w_: np.ndarray, h_: np.ndarray) -> np.ndarray:
        pad = (w_ + h_) * 0.5
        return np.sqrt((w_ + pad) * (h_ + pad))

    target_sz_in_crop = target_sz * scale_x
    s_c = change(sz(w, h) / np.float64(sz(target_sz_in_crop[0], target_sz_in_crop[1])))  # scale penalty
    r_c = change((target_sz_in_crop[0] / target_sz_in_crop[1]) / (w / h))  # ratio penalty
    penalty = np.exp(-(r_c * s_c - 1) * hp.penalty_k)
    pscore = penalty * score
    pscore = pscore * (1 - hp.window_influence) + window * hp.window_influence
    best = int(np.argmax(pscore))
    pred_in_crop = np.array([cx[best], cy[best], w[best], h[best]], dtype=np.float32) / np.float64(scale_x)
    lr = penalty[best] * score[best] * hp.lr
    res_x = pred_in_crop[0] + target_pos[0]
    res_y = pred_in_crop[1] + target_pos[1]
    res_w = target_sz[0] * (1 - lr) + pred_in_crop[2] * lr
    res_h = target_sz[1] * (1 - lr) + pred_in_crop[3] * lr
    a, rest = divmod(best, score_size * score_size)
    row, col = divmod(rest, score_size)
    return {"index": best, "anchor": a, "row": row, "col": col, "score": score[best], "penalty": penalty,
            "pscore": pscore, "target_pos": np.array([res_x, res_y], dtype=np.float64),
            "target_sz": np.array([res_w, res_h], dtype=np.float64)}


def _model_anchors(model: torch.nn.Module) -> AnchorsConfig:
    """The anchors a model was built with: `model.anchors` / `model.config.anchors` when present, else defaults."""
    for holder in (model, getattr(model, "config", None), getattr(model, "cfg", None)):
        value = getattr(holder, "anchors", None) if holder is not None else None
        if isinstance(value, AnchorsConfig):
            return value
        if isinstance(value, Config):
            return value.anchors
    return AnchorsConfig()


def _sample_of(out: Mapping[str, Any], b: int, num: int) -> dict[str, Any]:
    """Sample `b` of a batched `model.track` output (tensors and tuples of tensors sliced to [b:b+1])."""
    if num == 1:
        return dict(out)
    sliced: dict[str, Any] = {}
    for key, value in out.items():
        if isinstance(value, torch.Tensor):
            sliced[key] = value[b:b + 1]
        elif isinstance(value, (tuple, list)):
            sliced[key] = type(value)(v[b:b + 1] for v in value)
        else:
            sliced[key] = value
    return sliced


def _four_floats(box: Sequence[float], name: str) -> tuple[float, float, float, float]:
    values = [float(v) for v in np.asarray(box, dtype=np.float64).ravel()]
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise ValueError(f"{name} must be 4 finite numbers, got {box!r}")
    return values[0], values[1], values[2], values[3]


def _check_frame(frame: np.ndarray) -> None:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        desc = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise ValueError(f"frame must be a BGR uint8 (H, W, 3) array, got {desc}")
