"""SiamMask models: base (RPN + 63x63 mask head) and sharp (+ refinement module).

Ports ``models/siammask.py`` / ``models/siammask_sharp.py`` (``SiamMask``) and the ``Custom`` classes of
``experiments/siammask_base/custom.py`` and ``experiments/siammask_sharp/custom.py`` of the original SiamMask, with the
original parameter names (``features.*``, ``rpn_model.*``, ``mask_model.*``, ``refine_model.*``; reference.md C.6),
and the freeze schedule of ``tools/train_siammask.py`` / ``tools/train_siammask_refine.py`` (C.7, D.6, D.7).

Deviations from the original:

* The modules are stateless. ``template(z)`` returns the template features and ``track(zf, x)`` returns everything the
  tracker needs (cls, loc, mask, correlation map, backbone features); nothing is stored between calls (the original
  kept ``self.zf``, ``self.feature``, ``self.corr_feature``). Any batch size works, and several targets share a model.
* Training: ``forward(batch)`` returns predictions only; :func:`models.losses.compute_losses` computes the losses.
  The 3969-channel conv of the mask head (base) and the refinement (sharp) run only at the positions the mask loss
  selects; values, gradients and BatchNorm statistics equal the full computation (up to float rounding).
* Training stages come from the epoch (:meth:`SiamMaskBase.set_epoch`), not from call history, and
  :meth:`SiamMaskBase.train` reproduces the BatchNorm modes of an *uninterrupted* original run also after a resume:
  the ResNet BatchNorms always use their running statistics (the original switched layer2/layer3 BatchNorms to
  train mode only when a run was resumed after the unfreeze epoch).
* Refine stage (sharp): ``rpn_model`` and ``mask_model.mask.head`` get ``requires_grad=False``. The original left them
  trainable, but they have no optimizer group and receive zero (rpn, loss weight 0) or no (mask head) gradient, so
  the update and the gradient-clipping norm are unchanged while DDP needs no ``find_unused_parameters``.
"""
from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from siammask.utils.config import LrConfig

from .features import ResDown
from .losses import select_mask_positions
from .mask import MaskCorr
from .refine import Position, Refine, position_indices
from .rpn import UP

Batch = dict[str, Tensor]
#: Side of the base mask head's masks (3969 = 63 * 63 channels), in both models.
MASK_HEAD_SIZE = 63


def _group(name: str, module: nn.Module, lr: float) -> list[dict]:
    params = [p for p in module.parameters() if p.requires_grad]
    return [{"params": params, "lr": lr, "name": name}] if params else []


def _flat_positions(pos: Position, batch: int, height: int, width: int, device: torch.device) -> Tensor:
    """(row, col) for every sample, or a (B, 2) tensor of per-sample positions -> (B,) flat ``b*H*W + r*W + c``."""
    rows, cols = position_indices(pos, batch, device)
    return torch.arange(batch, device=device) * (height * width) + rows * width + cols


class SiamMaskBase(nn.Module):
    """SiamMask base model (the original ``experiments/siammask_base/custom.py`` ``Custom``).

    Submodules: ``features`` (:class:`~models.features.ResDown`), ``rpn_model`` (:class:`~models.rpn.UP`),
    ``mask_model`` (:class:`~models.mask.MaskCorr`, 63x63 masks). 324 state_dict entries, 18,816,735 parameters.
    Input crops are BGR 0-255 float, no normalisation.

    Args:
        anchor_num: anchors per response position (``len(ratios) * len(scales)`` = 5).
    """

    arch: ClassVar[str] = "siammask_base"
    #: Side of the mask logits the model predicts at tracking time (the tracker's ``hp.out_size``).
    mask_size: ClassVar[int] = 63

    def __init__(self, anchor_num: int = 5) -> None:
        super().__init__()
        self.anchor_num = anchor_num
        self.features = ResDown()
        self.rpn_model = UP(anchor_num=anchor_num, feature_in=256, feature_out=256)
        self.mask_model = MaskCorr(o_sz=MASK_HEAD_SIZE)
        # ResDown starts in the epoch-0 stage (adjust layer trainable); rpn and mask head are trainable.
        self.train()

    # ------------------------------------------------------------------ tracking
    def template(self, z: Tensor) -> Tensor:
        """Template features.

        Args:
            z: (B, 3, 127, 127) template crops.

        Returns:
            zf (B, 256, 7, 7).
        """
        return self.features(z)

    def template_kernels(self, zf: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The template branches of the three correlations (rpn cls, rpn loc, mask), computed once per target.

        Args:
            zf: (B, 256, 7, 7) from :meth:`template`.

        Returns:
            (cls, loc, mask) adjusted kernels, each (B, 256, 5, 5); pass them to :meth:`track` as ``kernels``.
        """
        return (self.rpn_model.cls.adjust_kernel(zf), self.rpn_model.loc.adjust_kernel(zf),
                self.mask_model.mask.adjust_kernel(zf))

    def track(self, zf: Tensor, x: Tensor, mask_head: bool = True,
              kernels: tuple[Tensor, Tensor, Tensor] | None = None) -> dict[str, Tensor | tuple[Tensor, ...]]:
        """Responses of search crops against template features.

        Args:
            zf: (B, 256, 7, 7) from :meth:`template`.
            x: (B, 3, 255, 255) search crops.
            mask_head: compute the full 3969-channel mask head (``mask``); pass False when only :meth:`mask_at` or
                :meth:`SiamMaskSharp.refine` is needed.
            kernels: :meth:`template_kernels` of ``zf`` when the caller keeps them (the same values; the template
                branches are then not recomputed); None computes them from ``zf``.

        Returns:
            dict with ``cls`` (B, 2A, 25, 25), ``loc`` (B, 4A, 25, 25), ``mask`` (B, 3969, 25, 25) when ``mask_head``,
            ``corr_feature`` (B, 256, 25, 25) (mask correlation before the head), ``xf`` (B, 256, 31, 31) and
            ``features`` = backbone (p0, p1, p2, p3).
        """
        if kernels is None:
            kernels = self.template_kernels(zf)
        features, xf = self.features.forward_all(x)
        cls, loc = self.rpn_model.forward_adjusted(kernels[0], kernels[1], xf)
        corr_feature = self.mask_model.mask.correlate(kernels[2], xf)
        out: dict[str, Tensor | tuple[Tensor, ...]] = {
            "cls": cls, "loc": loc, "corr_feature": corr_feature, "xf": xf, "features": features}
        if mask_head:
            out["mask"] = self.mask_model.mask.head(corr_feature)
        return out

    def mask_at(self, out: dict, pos: Position) -> Tensor:
        """Mask-head logits at one response position per sample, without the full 3969 x 25 x 25 head.

        Args:
            out: result of :meth:`track` (``corr_feature`` is used).
            pos: (row, col) for every sample, or a (B, 2) int64 tensor.

        Returns:
            (B, 3969) logits of the 63x63 mask (row-major), equal to ``out["mask"][b, :, row, col]``.
        """
        corr = out["corr_feature"]
        index = _flat_positions(pos, corr.size(0), corr.size(2), corr.size(3), corr.device)
        return self.mask_model.mask.head_at(corr, index)

    # ------------------------------------------------------------------ training
    def forward(self, batch: Batch) -> dict[str, Tensor]:
        """Training forward (the original ``run`` without the loss part).

        Args:
            batch: training batch (docs/ARCHITECTURE.md); uses ``template`` (B, 3, 127, 127), ``search``
                (B, 3, S, S) and ``label_mask_weight`` (B, 1, H, W).

        Returns:
            dict with ``cls`` (B, 2A, H, W) logits, ``loc`` (B, 4A, H, W), ``mask`` (P, 3969) mask-head logits at the
            P selected positions and ``mask_index`` (P,) their flat indices ``b*H*W + r*W + c``
            (:func:`models.losses.select_mask_positions`). H = W = 25 for S = 255.
        """
        index = select_mask_positions(batch["label_mask_weight"])
        zf = self.features(batch["template"])
        xf = self.features(batch["search"])
        cls, loc = self.rpn_model(zf, xf)
        corr_feature = self.mask_model.mask.forward_corr(zf, xf)
        mask = self.mask_model.mask.head_at(corr_feature, index)
        return {"cls": cls, "loc": loc, "mask": mask, "mask_index": index}

    def set_epoch(self, epoch: int, total_epochs: int) -> bool:
        """Apply the training stage of ``epoch`` (0-based) of ``total_epochs`` (the original's ``unfix``).

        Epochs ``< total_epochs / 2`` train the adjust layer, rpn and mask head; from the half on, ResNet layer2 and
        layer3 train too. conv1, bn1 and layer1 never train.

        Returns:
            True when the trainable parameters changed, i.e. when the original rebuilds the optimizer.
        """
        changed = self.features.set_train_ratio(epoch / total_epochs)
        self.rpn_model.requires_grad_(True)
        self.mask_model.requires_grad_(True)
        return changed

    def param_groups(self, start_lr: float, lr: LrConfig | None = None) -> list[dict]:
        """Optimizer parameter groups in the original's order.

        ``features.downsample`` (``start_lr * feature_lr_mult``), then ``features.features`` (ResNet layer2 +
        layer3 at 0.1x that, only once unfrozen), ``rpn_model`` (``* rpn_lr_mult``), ``mask_model``
        (``* mask_lr_mult``). Each group carries a ``name``. Only parameters with ``requires_grad`` are included.

        Args:
            start_lr: the scheduler's start lr (``cfg.lr.start_lr``, or the warm-up's start).
            lr: the config's lr block (multipliers); None means all multipliers 1.
        """
        lr = LrConfig() if lr is None else lr
        return (self.features.param_groups(start_lr, lr.feature_lr_mult)
                + _group("rpn_model", self.rpn_model, start_lr * lr.rpn_lr_mult)
                + _group("mask_model", self.mask_model, start_lr * lr.mask_lr_mult))

    def train(self, mode: bool = True) -> SiamMaskBase:
        """Set train/eval mode with the original's BatchNorm modes.

        In train mode the ResNet trunk (``features.features``) stays in eval mode (running statistics), as in an
        uninterrupted original run; the adjust layer, rpn and mask head use batch statistics.
        """
        super().train(mode)
        if mode:
            self.features.features.eval()
        return self


class SiamMaskSharp(SiamMaskBase):
    """SiamMask sharp model (the original ``experiments/siammask_sharp/custom.py`` ``Custom``).

    The base model plus ``refine_model`` (:class:`~models.refine.Refine`): 356 state_dict entries, 21,482,052
    parameters. It is trained in the refine stage only (the original ``tools/train_siammask_refine.py``): backbone
    and rpn in eval mode with every BatchNorm frozen, mask correlation branches and refine module training at
    ``mask_lr_mult``, 143-px search crops (3x3 response map).
    """

    arch: ClassVar[str] = "siammask_sharp"
    mask_size: ClassVar[int] = 127

    def __init__(self, anchor_num: int = 5) -> None:
        super().__init__(anchor_num)
        self.refine_model = Refine()
        self.set_epoch(0, 1)
        self.train()

    def refine(self, out: dict, pos: Position) -> Tensor:
        """Refined mask logits at one response position per sample (the original ``track_refine``).

        Args:
            out: result of :meth:`track` on a 255-px search (``features`` and ``corr_feature`` are used).
            pos: (row, col) for every sample, or a (B, 2) int64 tensor of per-sample positions.

        Returns:
            (B, 16129) logits of the 127x127 mask, row-major (before the sigmoid).
        """
        return self.refine_model.forward_test(out["features"], out["corr_feature"], pos)

    def forward(self, batch: Batch) -> dict[str, Tensor]:
        """Refine-stage training forward (the original sharp ``run``, refinement only where the loss looks).

        Args:
            batch: training batch with ``template`` (B, 3, 127, 127), ``search`` (B, 3, 143, 143) and
                ``label_mask_weight`` (B, 1, 3, 3).

        Returns:
            dict with ``cls`` (B, 2A, 3, 3), ``loc`` (B, 4A, 3, 3), ``mask`` (P, 16129) refined logits at the P
            selected positions and ``mask_index`` (P,) their flat indices ``b*9 + r*3 + c``.
        """
        index = select_mask_positions(batch["label_mask_weight"])
        zf = self.features(batch["template"])
        features, xf = self.features.forward_all(batch["search"])
        cls, loc = self.rpn_model(zf, xf)
        corr_feature = self.mask_model.mask.forward_corr(zf, xf)
        mask = self.refine_model.forward_train(features, corr_feature, index)
        return {"cls": cls, "loc": loc, "mask": mask, "mask_index": index}

    def set_epoch(self, epoch: int, total_epochs: int) -> bool:
        """Apply the refine stage (the same at every epoch).

        Trainable: ``features.downsample`` (as the original; it has no optimizer group but its gradient counts in
        the clipping norm), ``mask_model.mask.conv_kernel`` / ``conv_search`` and ``refine_model``.

        Returns:
            True: the original rebuilds the optimizer at every epoch of the refine stage.
        """
        self.features.set_train_ratio(0.0)
        self.rpn_model.requires_grad_(False)
        self.mask_model.requires_grad_(True)
        self.mask_model.mask.head.requires_grad_(False)
        self.refine_model.requires_grad_(True)
        return True

    def param_groups(self, start_lr: float, lr: LrConfig | None = None) -> list[dict]:
        """Refine-stage groups: ``mask_model`` then ``refine_model``, both at ``start_lr * mask_lr_mult``."""
        lr = LrConfig() if lr is None else lr
        return (_group("mask_model", self.mask_model, start_lr * lr.mask_lr_mult)
                + _group("refine_model", self.refine_model, start_lr * lr.mask_lr_mult))

    def train(self, mode: bool = True) -> SiamMaskSharp:
        """Train mode of the refine stage: ``features`` and ``rpn_model`` (every BatchNorm) stay in eval mode."""
        super().train(mode)
        if mode:
            self.features.eval()
            self.rpn_model.eval()
        return self
