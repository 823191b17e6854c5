"""Tables, JSON and PNG plots of OPE results (success / precision / normalized precision).

Ports pysot's ``OPEBenchmark.show_result`` (``|Tracker name|Success|Norm Precision|Precision|``, sorted by AUC, and
the per-video table whose columns are the means of each video's success and precision curves) and
``toolkit/visualization/draw_success_precision.py`` (success plot over the IoU thresholds, precision plot over 0-50 px,
normalized precision plot over 0-0.5, one curve per tracker sorted by its score, legend ``[score] name``; per
attribute the same over that attribute's videos). Differences: all trackers are listed (pysot keeps the top 20); no
LaTeX in titles; the plots are written as PNG files (Agg backend) instead of shown; a per-attribute table (AUC and
precision per attribute) is new.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..utils.io import atomic_path, atomic_write_text
from .ope import (
    NORM_PRECISION_THRESHOLDS,
    PRECISION_THRESHOLDS,
    REPORT_INDEX,
    SUCCESS_THRESHOLDS,
    OPETrackerResult,
)
from .report import red_marker

__all__ = ["sort_by_auc", "format_ope_table", "format_ope_video_table", "format_ope_attribute_table", "ope_to_json",
           "write_ope_json", "plot_paths", "plot_success_precision"]


def sort_by_auc(results: Mapping[str, OPETrackerResult],
                videos: Optional[Sequence[str]] = None) -> list[OPETrackerResult]:
    """Trackers by decreasing success (AUC) over `videos` (default all)."""
    return sorted(results.values(), key=lambda r: r.auc(videos), reverse=True)


def format_ope_table(results: Mapping[str, OPETrackerResult]) -> str:
    """pysot's summary table: Success (AUC), Norm Precision (0.2), Precision (20 px), ``%.3f``, sorted by AUC."""
    width = max(max(len(n) for n in results) + 2, 12)
    header = f"|{'Tracker name':^{width}}|{'Success':^9}|{'Norm Precision':^16}|{'Precision':^11}|"
    bar = "-" * len(header)
    lines = [bar, header, bar]
    for r in sort_by_auc(results):
        lines.append(f"|{r.name:^{width}}|{r.auc():^9.3f}|{r.norm_precision():^16.3f}|{r.precision():^11.3f}|")
    lines.append(bar)
    return "\n".join(lines)


def format_ope_video_table(results: Mapping[str, OPETrackerResult], threshold: float = 0.6,
                           color: bool = False) -> str:
    """pysot's per-video table: per tracker the mean of the video's success curve and of its precision curve."""
    mark = red_marker(color)
    header1 = f"|{'Tracker name':^21}|" + "".join(f"{name:^21}|" for name in results)
    header2 = f"|{'Video name':^21}|" + "".join(f"{'success':^9}|{'precision':^11}|" for _ in results)
    bar = "-" * len(header1)
    lines = [bar, header1, bar, header2, bar]
    first = next(iter(results.values()))
    for video in first.videos:
        row = f"|{video:^21}|"
        for r in results.values():
            success = float(np.mean(r.videos[video].success))
            precision = float(np.mean(r.videos[video].precision))
            s_text, p_text = f"{success:^9.3f}", f"{precision:^11.3f}"
            row += (mark(s_text) if success < threshold else s_text) + "|"
            row += (mark(p_text) if precision < threshold else p_text) + "|"
        lines.append(row)
    lines.append(bar)
    return "\n".join(lines)


def format_ope_attribute_table(results: Mapping[str, OPETrackerResult], attributes: Mapping[str, Sequence[str]],
                               metric: str = "success") -> str:
    """Success (AUC) or precision (20 px) per attribute (columns ``<attr> (n videos)``), sorted by overall AUC."""
    name_width = max(max(len(n) for n in results) + 2, 14)
    heads = [f"{attr}({len(vids)})" for attr, vids in attributes.items()]
    widths = [max(len(h) + 2, 7) for h in heads]
    title = "Success (AUC)" if metric == "success" else "Precision (20 px)"
    header = f"|{title:^{name_width}}|" + "".join(f"{h:^{w}}|" for h, w in zip(heads, widths))
    bar = "-" * len(header)
    lines = [bar, header, bar]
    for r in sort_by_auc(results):
        values = [r.auc(v) if metric == "success" else r.precision(v) for v in attributes.values()]
        lines.append(f"|{r.name:^{name_width}}|" + "".join(f"{x:^{w}.3f}|" for x, w in zip(values, widths)))
    lines.append(bar)
    return "\n".join(lines)


def ope_to_json(results: Mapping[str, OPETrackerResult],
                attributes: Optional[Mapping[str, Sequence[str]]] = None) -> dict[str, Any]:
    """tracker -> success, precision, norm_precision, the three mean curves, per attribute and per video numbers."""
    out: dict[str, Any] = {}
    for r in sort_by_auc(results):
        entry: dict[str, Any] = {
            "success": r.auc(), "precision": r.precision(), "norm_precision": r.norm_precision(),
            "success_curve": r.success_curve().tolist(), "precision_curve": r.precision_curve().tolist(),
            "norm_precision_curve": r.norm_precision_curve().tolist(),
            "videos": {v: {"success": s.auc, "precision": float(s.precision[REPORT_INDEX]),
                           "norm_precision": float(s.norm_precision[REPORT_INDEX])} for v, s in r.videos.items()},
        }
        if attributes:
            entry["attributes"] = {a: {"videos": len(vids), "success": r.auc(vids), "precision": r.precision(vids),
                                       "norm_precision": r.norm_precision(vids)}
                                   for a, vids in attributes.items()}
        out[r.name] = entry
    return out


def write_ope_json(path: str | Path, data: Any) -> None:
    """Write `data` as JSON atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def plot_paths(path: str | Path, attr: str = "ALL") -> dict[str, Path]:
    """The three PNG files of one plot set: ``FILE.png`` (success), ``FILE_precision.png``,
    ``FILE_norm_precision.png``; for an attribute ``FILE_<attr>.png`` and so on."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix.lower() == ".png" else path
    tag = "" if attr == "ALL" else "_" + re.sub(r"[^A-Za-z0-9.-]+", "_", attr)
    return {"success": Path(f"{stem}{tag}.png"), "precision": Path(f"{stem}{tag}_precision.png"),
            "norm_precision": Path(f"{stem}{tag}_norm_precision.png")}


_STYLES = ("-", "--", "-.", ":")


def _plot_one(curves: list[tuple[str, float, np.ndarray]], thresholds: np.ndarray, xlabel: str, ylabel: str,
              title: str, legend_loc: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5), dpi=100)
    cmap = plt.get_cmap("tab10")
    for i, (name, score, curve) in enumerate(curves):
        ax.plot(thresholds, curve, color=cmap(i % 10), linestyle=_STYLES[(i // 10) % len(_STYLES)], linewidth=2,
                label=f"[{score:.3f}] {name}")
    ax.set_xlim(float(thresholds[0]), float(thresholds[-1]))
    ax.set_ylim(0, 1.03)
    ax.grid(True)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc=legend_loc, labelspacing=0.2, fontsize=8)
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)


def plot_success_precision(results: Mapping[str, OPETrackerResult], dataset_name: str, path: str | Path,
                           videos: Optional[Sequence[str]] = None, attr: str = "ALL") -> list[Path]:
    """Write the success, precision and normalized precision plots (PNG) over `videos` (default all).

    Returns:
        the three files written (see :func:`plot_paths`).
    """
    paths = plot_paths(path, attr)
    where = f"on {dataset_name}" if attr == "ALL" else f"- {attr}"
    rs = list(results.values())
    success = sorted(((r.name, r.auc(videos), r.success_curve(videos)) for r in rs), key=lambda t: -t[1])
    precision = sorted(((r.name, r.precision(videos), r.precision_curve(videos)) for r in rs), key=lambda t: -t[1])
    norm = sorted(((r.name, r.norm_precision(videos), r.norm_precision_curve(videos)) for r in rs),
                  key=lambda t: -t[1])
    _plot_one(success, SUCCESS_THRESHOLDS, "Overlap threshold", "Success rate", f"Success plots of OPE {where}",
              "lower left", paths["success"])
    _plot_one(precision, PRECISION_THRESHOLDS, "Location error threshold", "Precision",
              f"Precision plots of OPE {where}", "lower right", paths["precision"])
    _plot_one(norm, NORM_PRECISION_THRESHOLDS, "Location error threshold", "Precision",
              f"Normalized Precision plots of OPE {where}", "lower right", paths["norm_precision"])
    return [paths["success"], paths["precision"], paths["norm_precision"]]
