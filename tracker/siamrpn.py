"""The SiamRPN box step of the tracker: search-crop geometry, anchor decoding, scale/ratio penalty, cosine window,
argmax and the lr-smoothed size update (the box part of the original `siamese_track`, reference.md E.3).

Dtypes follow the original under NumPy 2: decoding in float32, penalties and scores in float64.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..utils.config import HpConfig


@dataclass(frozen=True)
class SearchGeometry:
    """Where a target's search crop lies (siamese_track step 1).

    Attributes:
        s_x: search-crop side in image pixels (unrounded; the crop uses ``round(s_x)``).
        scale_x: exemplar_size / (context size of the target): image -> crop scale.
        crop_box: (x, y, side, side) of the search crop in the image, side = round(s_x).
        target_pos: (2,) float64 centre the crop is taken around.
        target_sz: (2,) float64 size of the target before this frame.
    """

    s_x: float
    scale_x: float
    crop_box: tuple[float, float, float, float]
    target_pos: np.ndarray
    target_sz: np.ndarray


@dataclass(frozen=True)
class AnchorPick:
    """The chosen anchor and the new (unclamped) target (siamese_track steps 3-5).

    Attributes:
        index: flat index a*S*S + row*S + col of the best penalised score.
        anchor: its anchor number a.
        row: its response-map row.
        col: its response-map column.
        score: its foreground probability (float32).
        penalty: (N,) float64 scale/ratio penalty of every anchor.
        pscore: (N,) float64 penalised and windowed scores.
        target_pos: (2,) float64 new centre.
        target_sz: (2,) float64 new lr-smoothed size.
    """

    index: int
    anchor: int
    row: int
    col: int
    score: np.floating
    penalty: np.ndarray
    pscore: np.ndarray
    target_pos: np.ndarray
    target_sz: np.ndarray


def search_geometry(hp: HpConfig, target_pos: np.ndarray, target_sz: np.ndarray) -> SearchGeometry:
    """Search-crop side and scale around a target (siamese_track step 1, the original's arithmetic).

    Args:
        target_pos: (2,) float64 centre (cx, cy).
        target_sz: (2,) float64 size (w, h).
    """
    target_pos = np.asarray(target_pos, np.float64)
    target_sz = np.asarray(target_sz, np.float64)
    wc_x = target_sz[1] + hp.context_amount * sum(target_sz)
    hc_x = target_sz[0] + hp.context_amount * sum(target_sz)
    s_x = np.sqrt(wc_x * hc_x)
    scale_x = hp.exemplar_size / s_x
    d_search = (hp.instance_size - hp.exemplar_size) / 2
    pad = d_search / scale_x
    s_x = s_x + 2 * pad
    crop_box = (target_pos[0] - round(s_x) / 2, target_pos[1] - round(s_x) / 2, round(s_x), round(s_x))
    return SearchGeometry(s_x=s_x, scale_x=scale_x, crop_box=crop_box, target_pos=target_pos, target_sz=target_sz)


def select_anchor(delta: np.ndarray, score: np.ndarray, anchor: np.ndarray, window: np.ndarray,
                  target_pos: np.ndarray, target_sz: np.ndarray, scale_x: float, hp: HpConfig,
                  score_size: int) -> AnchorPick:
    """The box step of `siamese_track`: decode, scale/ratio penalty, cosine window, argmax, lr-smoothed update.

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
    return AnchorPick(index=best, anchor=a, row=row, col=col, score=score[best], penalty=penalty, pscore=pscore,
                      target_pos=np.array([res_x, res_y], dtype=np.float64),
                      target_sz=np.array([res_w, res_h], dtype=np.float64))
