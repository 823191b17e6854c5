"""SiamMask tracker: a stateless tracker object over a stateless model, per-target state in :class:`TargetState`.

This module orchestrates the steps kept in their own modules: the crops (:mod:`.crops`), the SiamRPN box step
(:mod:`.siamrpn`), the mask paste-back and polygon (:mod:`.mask_ops`) and the state/result types (:mod:`.state`).

Ports `get_subwindow_tracking`, `siamese_init` and `siamese_track` of the original `tools/test.py` (reference.md
E.1-E.3) with the same arithmetic: context 0.5, avg-colour padding and `round()` conventions of the crops, anchors
relative to the crop centre, scale/ratio penalty, cosine window, lr-smoothed size, clamping, the mask from
`track_refine(row, col)` (sharp) or the 63x63 head (base), pasted back with `cv2.warpAffine` (border -1), and the
polygon = `minAreaRect` of the largest contour when its area > 100, else the box corners.

Conventions: frames are BGR uint8 HWC (as cv2 reads them); boxes are 0-based ``xywh`` (top-left, size); positions on
the response map are (row, col). The tracker does no drawing and no file IO.

Deviations from the original:

* nothing is stored on or read from the model; the anchors come from the config (``cfg.anchors``); a target's
  template features live in its :class:`TargetState`, so several targets share one model, and
  :meth:`SiamMaskTracker.track_many` runs several targets of a frame in one network call;
* the mask side is the side of the mask actually produced (127 refine, 63 head) instead of ``hp.out_size`` (the
  original crashed when they differed);
* in refine mode the 3969-channel mask head is not computed (its output is unused there);
* the template branches of the three correlations (``model.template_kernels``) are computed once per target and
  kept in its state, not in every frame (same values);
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

import contextlib
import math
from typing import Any, Iterator, Mapping, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from ..utils.anchors import cosine_window, tracker_anchors
from ..utils.bbox import cxcywh_to_xywh, mask_to_xywh, xywh_to_corners4x2, xywh_to_cxcywh
from ..utils.config import AnchorsConfig, ConfigError, HpConfig, load_hp, response_size
from ..utils.runtime import Runtime
from .crops import crops_to_tensor, get_subwindow_tracking
from .mask_ops import mask_window_in_image, paste_mask, polygon_from_mask
from .siamrpn import AnchorPick, SearchGeometry, search_geometry, select_anchor
from .state import TargetState, TrackerStateError, TrackResult

#: Default `lost` threshold on the best anchor's foreground probability.
DEFAULT_LOST_THRESHOLD = 0.3


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
        anchors: the config's anchor block (``cfg.anchors``: stride, ratios, scales) the model was built with;
            default the original's anchors.
        mask: produce the mask and the rotated polygon (the original's `--mask`).
        refine: use the refinement module (`--refine`); default: True when the model has `refine`.
        lost_threshold: `lost` = score < this.
        amp_dtype: autocast dtype for the network (e.g. torch.bfloat16); None = fp32 (exact).
        channels_last: feed channels_last crops and convert the model's parameters to channels_last (in place).
        fingerprint: stamped on every state this tracker initialises (``TargetState.fingerprint``); a state with
            another fingerprint is refused by :meth:`track_many` (TrackerStateError). None (default): no stamp, no
            check. :func:`tracker.build.build_tracker` passes one of the architecture, template crop and weights.

    `model` may also be a NumPy backend (``numpy_io = True``, e.g. tracker.onnx_backend.OnnxBackend): the same calls
    on NumPy arrays, batch 1; the tracker then runs one network call per target and no torch in the frame path.
    """

    def __init__(self, model: torch.nn.Module, hp: Union[HpConfig, Mapping[str, Any], None] = None,
                 device: Union[str, torch.device, Runtime] = "cpu", *, anchors: Optional[AnchorsConfig] = None,
                 mask: bool = True, refine: Optional[bool] = None, lost_threshold: float = DEFAULT_LOST_THRESHOLD,
                 amp_dtype: Optional[torch.dtype] = None, channels_last: bool = False,
                 fingerprint: Optional[str] = None) -> None:
        if isinstance(device, Runtime):
            amp_dtype = device.amp_dtype if amp_dtype is None else amp_dtype
            device = device.device
        self.model = model
        self.device = torch.device(device)
        self.hp = _resolve_hp(hp)
        self.anchors_cfg = anchors if anchors is not None else AnchorsConfig()
        if self.hp.windowing not in ("cosine", "uniform"):
            raise ConfigError(f"key 'hp.windowing' must be 'cosine' or 'uniform', got {self.hp.windowing!r}")
        self.mask_enable = bool(mask)
        has_refine = callable(getattr(model, "refine", None))
        self.refine_enable = bool(mask) and (has_refine if refine is None else bool(refine))
        if self.refine_enable and not has_refine:
            raise ConfigError("refine needs a model with a refinement module (network.arch siammask_sharp, or Custom "
                              "with hp.out_size 127)")
        self.lost_threshold = float(lost_threshold)
        #: a NumPy backend (tracker.onnx_backend): crops go in as float32 arrays, one target per call
        self.numpy_io = bool(getattr(model, "numpy_io", False))
        self.amp_dtype = amp_dtype
        self.channels_last = bool(channels_last)
        self.fingerprint = fingerprint
        if self.channels_last and not self.numpy_io:
            model.to(memory_format=torch.channels_last)
        # The original's TrackerConfig.update: the stride comes from the anchors, score_size is recomputed.
        self.stride = int(self.anchors_cfg.stride)
        self.score_size = response_size(self.hp.instance_size, self.hp.exemplar_size, self.stride, self.hp.base_size)
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
        if self.numpy_io:  # onnxruntime backend: NumPy in and out; the state keeps zf as a (CPU) tensor view
            zf = torch.from_numpy(self.model.template(_crop_array(z_crop)))
        else:
            z = self._to_input(crops_to_tensor([z_crop], self.device))
            with self._inference():
                zf = self.model.template(z)
        state = TargetState(target_pos=target_pos, target_sz=target_sz, zf=zf, avg_chans=avg_chans,
                            im_h=frame.shape[0], im_w=frame.shape[1], fingerprint=self.fingerprint)
        if not self.numpy_io:
            self._kernels([state])  # the template branches, once per target
        return state

    # ------------------------------------------------------------------ track
    def track(self, state: TargetState, frame: np.ndarray) -> TrackResult:
        """Track one target into `frame` (BGR uint8 HWC); updates `state` in place and returns the result."""
        return self.track_many([state], frame)[0]

    def track_many(self, states: Sequence[TargetState], frame: np.ndarray) -> list[TrackResult]:
        """Track several targets of one frame with one network call (batch = len(states)).

        Each result equals what :meth:`track` gives for that target alone.

        Raises:
            TrackerStateError: a state stamped with another tracker's fingerprint (another model or weights).
            ValueError: a frame that is not BGR uint8 or not of the states' size.
        """
        _check_frame(frame)
        if not states:
            return []
        for st in states:
            if self.fingerprint is not None and st.fingerprint is not None and st.fingerprint != self.fingerprint:
                raise TrackerStateError(f"target state: made by another model or weights (fingerprint "
                                        f"{st.fingerprint}, this tracker's is {self.fingerprint})")
            if (frame.shape[0], frame.shape[1]) != (st.im_h, st.im_w):
                raise ValueError(f"frame is {frame.shape[1]}x{frame.shape[0]} but the target was initialised on "
                                 f"{st.im_w}x{st.im_h}")
        hp = self.hp
        geoms = [self._search_geometry(st) for st in states]
        crops = [get_subwindow_tracking(frame, np.asarray(st.target_pos, np.float64), hp.instance_size,
                                        round(g.s_x), st.avg_chans) for st, g in zip(states, geoms)]
        if self.numpy_io:
            picks, masks = self._network_numpy(states, geoms, crops)
            return [self._finish(st, g, p, m) for st, g, p, m in zip(states, geoms, picks, masks)]
        x = self._to_input(crops_to_tensor(crops, self.device))
        with self._inference():
            # The crops are channels_last-strided (HWC pixels seen as CHW, as the original's im_to_torch) and so
            # are the template features init() gets; a state restored by from_dict holds NCHW features, and CPU
            # convolutions round differently per layout, so every zf is made dense channels_last here.
            zf = torch.cat([st.zf.to(self.device) for st in states]).contiguous(memory_format=torch.channels_last)
            kernels = self._kernels(states)
            extra = {} if kernels is None else {"kernels": kernels}
            out = self.model.track(zf, x, mask_head=False, **extra)  # masks: refine or mask_at, one position
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
                        logits = self.model.refine(_sample_of(out, b, num), (p.row, p.col)).float()
                        side = math.isqrt(logits.shape[1])
                        masks.append(logits[0].sigmoid().view(side, side).cpu().numpy())
                else:  # the base mask head at the picked position of each target only
                    pos = torch.tensor([[p.row, p.col] for p in picks], device=self.device)
                    head = self.model.mask_at(out, pos).float().sigmoid()
                    side = math.isqrt(head.shape[1])
                    masks = [m.view(side, side).cpu().numpy() for m in head]
        return [self._finish(st, g, p, m) for st, g, p, m in zip(states, geoms, picks, masks)]

    def _network_numpy(self, states: Sequence[TargetState], geoms: Sequence[SearchGeometry],
                       crops: Sequence[np.ndarray]) -> tuple[list[AnchorPick], list[Optional[np.ndarray]]]:
        """The network part of :meth:`track_many` on a NumPy backend (tracker.onnx_backend), one call per target.

        The same steps as the torch path: softmax foreground scores, anchor pick, then the refined mask or the mask
        head at the picked position, sigmoid.
        """
        picks: list[AnchorPick] = []
        masks: list[Optional[np.ndarray]] = []
        for st, geom, crop in zip(states, geoms, crops):
            zf = np.asarray(st.zf.detach().cpu(), dtype=np.float32)
            out = self.model.track(zf, _crop_array(crop), mask_head=False)
            cls = out["cls"].astype(np.float32).reshape(2, -1)
            delta = out["loc"].astype(np.float32).reshape(4, -1)
            with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # untrained nets overflow exp()
                top = np.maximum(cls[0], cls[1])
                e_bg, e_fg = np.exp(cls[0] - top), np.exp(cls[1] - top)
                pick = self._select(st, geom, delta, e_fg / (e_bg + e_fg))
            picks.append(pick)
            if not self.mask_enable:
                masks.append(None)
                continue
            fn = self.model.refine if self.refine_enable else self.model.mask_at
            logits = fn(out, (pick.row, pick.col)).astype(np.float32).reshape(-1)
            side = math.isqrt(logits.shape[0])
            with np.errstate(over="ignore"):  # exp(-logit) overflows to inf for very negative logits: sigmoid 0
                masks.append((1.0 / (1.0 + np.exp(-logits))).reshape(side, side))
        return picks, masks

    # ------------------------------------------------------------------ steps of siamese_track
    def _search_geometry(self, st: TargetState) -> SearchGeometry:
        """Search-crop side and scale of a target (siamese_track step 1)."""
        return search_geometry(self.hp, st.target_pos, st.target_sz)

    def _select(self, st: TargetState, geom: SearchGeometry, delta: np.ndarray, score: np.ndarray) -> AnchorPick:
        """Decode the boxes, penalise, pick the best anchor, smooth the size (siamese_track steps 3-5).

        Args:
            delta: (4, A*S*S) float32 network regression (dx, dy, dw, dh).
            score: (A*S*S,) float32 foreground probabilities.
        """
        return select_anchor(delta, score, self.anchor, self.window, geom.target_pos, geom.target_sz,
                             geom.scale_x, self.hp, self.score_size)

    def _finish(self, st: TargetState, geom: SearchGeometry, pick: AnchorPick,
                mask: Optional[np.ndarray]) -> TrackResult:
        """Mask paste-back, polygon, clamping, state update (siamese_track steps 6-9)."""
        hp = self.hp
        target_pos, target_sz = pick.target_pos.copy(), pick.target_sz.copy()
        score = float(pick.score)
        if not (np.isfinite(target_pos).all() and np.isfinite(target_sz).all()):
            # Diverged regression (inf/NaN; the original then crashed in round()): keep the previous box.
            target_pos, target_sz, score = geom.target_pos.copy(), geom.target_sz.copy(), 0.0
        mask_in_img = None
        polygon = None
        if mask is not None:
            sub_box = mask_window_in_image(geom.crop_box, pick.row, pick.col, hp.instance_size,
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
                           response_pos=(pick.row, pick.col))

    # ------------------------------------------------------------------ helpers
    def _kernels(self, states: Sequence[TargetState]) -> Optional[tuple[torch.Tensor, ...]]:
        """The states' template branches (``model.template_kernels``) batched; computed where a state lacks them.

        None for models without ``template_kernels`` (they compute the branches in ``track``). Each target's
        kernels come from its own dense channels_last zf, as ``track`` would compute them, so the values are those
        of recomputing them every frame.
        """
        fn = getattr(self.model, "template_kernels", None)
        if not callable(fn):
            return None
        with self._inference():
            for st in states:
                if st.kernels is None:
                    zf = st.zf.to(self.device).contiguous(memory_format=torch.channels_last)
                    st.kernels = tuple(fn(zf))
            if len(states) == 1:
                return states[0].kernels
            return tuple(torch.cat(parts) for parts in zip(*(st.kernels for st in states)))

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


def _crop_array(crop: np.ndarray) -> np.ndarray:
    """An (S, S, 3) uint8 crop as a dense (1, 3, S, S) float32 BGR 0-255 array (a NumPy backend's input)."""
    return np.ascontiguousarray(crop.transpose(2, 0, 1)[None], dtype=np.float32)


def _four_floats(box: Sequence[float], name: str) -> tuple[float, float, float, float]:
    values = [float(v) for v in np.asarray(box, dtype=np.float64).ravel()]
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise ValueError(f"{name} must be 4 finite numbers, got {box!r}")
    return values[0], values[1], values[2], values[3]


def _check_frame(frame: np.ndarray) -> None:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        desc = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise ValueError(f"frame must be a BGR uint8 (H, W, 3) array, got {desc}")
