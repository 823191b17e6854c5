"""Printing, JSON and plots of VOT evaluation results.

Ports ``AccuracyRobustnessBenchmark.show_result`` (the ``|Tracker Name|Accuracy|Robustness|Lost Number|EAO|`` table,
sorted by EAO, and the per-video Acc/LN table) and ``EAOBenchmark.show_result`` (per-tag EAO table) of SiamMask's
``utils/pysot/evaluation``. Differences: all trackers are listed (pysot keeps the top 20), the per-video table is
coloured only on a terminal, and there are a JSON report and an expected-overlap plot.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from siammask.utils.io import atomic_path, atomic_write_text

from .benchmark import TrackerEvaluation

__all__ = ["sort_by_eao", "format_summary_table", "format_video_table", "format_attribute_table", "to_json",
           "write_json", "plot_expected_overlap"]


def _eao_key(ev: TrackerEvaluation) -> float:
    return -math.inf if math.isnan(ev.eao_all) else ev.eao_all


def sort_by_eao(evals: Mapping[str, TrackerEvaluation]) -> list[TrackerEvaluation]:
    """Trackers by decreasing EAO (NaN last)."""
    return sorted(evals.values(), key=_eao_key, reverse=True)


def format_summary_table(evals: Mapping[str, TrackerEvaluation]) -> str:
    """pysot's summary table: accuracy %.3f, robustness %.3f, lost number %.1f, EAO %.3f, sorted by EAO."""
    width = max(max(len(name) for name in evals) + 2, 12)
    header = f"|{'Tracker Name':^{width}}|{'Accuracy':^10}|{'Robustness':^12}|{'Lost Number':^13}|{'EAO':^7}|"
    bar = "-" * len(header)
    lines = [bar, header, bar]
    for ev in sort_by_eao(evals):
        lines.append(f"|{ev.name:^{width}}|{ev.accuracy:^10.3f}|{ev.robustness:^12.3f}|{ev.lost_number:^13.1f}|"
                     f"{ev.eao_all:^7.3f}|")
    lines.append(bar)
    return "\n".join(lines)


def red_marker(color: bool) -> Callable[[str], str]:
    """A function that paints a table cell red (colorama) when `color`, else leaves it as it is."""
    if not color:
        return lambda text: text
    from colorama import Fore, Style

    return lambda text: f"{Fore.RED}{text}{Style.RESET_ALL}"


def format_video_table(evals: Mapping[str, TrackerEvaluation], threshold: float = 0.5, color: bool = False) -> str:
    """pysot's per-video table: accuracy and mean lost number of each tracker (red: Acc < threshold or LN > 0)."""
    mark = red_marker(color)
    header1 = f"|{'Tracker name':^14}|" + "".join(f"{name:^17}|" for name in evals)
    header2 = f"|{'Video name':^14}|" + "".join(f"{'Acc':^8}|{'LN':^8}|" for _ in evals)
    bar = "-" * len(header1)
    lines = [bar, header1, bar, header2, bar]
    first = next(iter(evals.values()))
    for video in first.ar.overlaps:
        row = f"|{video:^14}|"
        for ev in evals.values():
            acc = ev.ar.video_accuracy(video)
            lost = ev.ar.video_lost(video)
            acc_text = f"{acc:^8.3f}"
            lost_text = f"{lost:^8.3f}"
            row += (mark(acc_text) if acc < threshold else acc_text) + "|"
            row += (mark(lost_text) if lost > 0 else lost_text) + "|"
        lines.append(row)
    lines.append(bar)
    return "\n".join(lines)


def format_attribute_table(evals: Mapping[str, TrackerEvaluation], tags: Sequence[str]) -> str:
    """EAO per tag (pysot's multi-tag ``EAOBenchmark.show_result``), sorted by overall EAO."""
    name_width = max(max(len(name) for name in evals) + 2, 20)
    widths = [max(len(tag) + 2, 7) for tag in tags]
    header = f"|{'Tracker Name':^{name_width}}|" + "".join(f"{tag:^{w}}|" for tag, w in zip(tags, widths))
    bar = "-" * len(header)
    lines = [bar, header, bar]
    for ev in sort_by_eao(evals):
        lines.append(f"|{ev.name:^{name_width}}|" + "".join(f"{ev.eao.eao[tag]:^{w}.3f}|"
                                                            for tag, w in zip(tags, widths)))
    lines.append(bar)
    return "\n".join(lines)


def _num(value: float) -> float | None:
    """JSON-safe number: NaN/inf become null."""
    value = float(value)
    return value if math.isfinite(value) else None


def to_json(evals: Mapping[str, TrackerEvaluation]) -> dict[str, Any]:
    """tracker -> accuracy, robustness, lost, eao, eao per tag, repetitions and per-video accuracy/lost/failures."""
    out: dict[str, Any] = {}
    for ev in sort_by_eao(evals):
        out[ev.name] = {
            "accuracy": _num(ev.accuracy),
            "robustness": _num(ev.robustness),
            "lost": _num(ev.lost_number),
            "eao": _num(ev.eao_all),
            "eao_tags": {tag: _num(v) for tag, v in ev.eao.eao.items()},
            "eao_interval": list(ev.eao.interval),
            "repetitions": ev.repetitions,
            "videos": {
                video: {
                    "accuracy": _num(ev.ar.video_accuracy(video)),
                    "lost": _num(ev.ar.video_lost(video)),
                    "failures": list(ev.ar.failures[video]),
                    "frames": len(ev.ar.overlaps[video]),
                }
                for video in ev.ar.overlaps
            },
        }
    return out


def write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` atomically (temporary file + ``os.replace``)."""
    atomic_write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def plot_expected_overlap(evals: Mapping[str, TrackerEvaluation], path: str | Path, tag: str = "all") -> None:
    """Save the expected-overlap curves (one per tracker, legend with EAO) with the EAO interval shaded, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    interval = None
    for ev in sort_by_eao(evals):
        curve = ev.eao.curves[tag]
        interval = ev.eao.interval
        ax.plot(range(1, len(curve)), curve[1:], label=f"{ev.name} [{ev.eao.eao[tag]:.3f}]")
    if interval is not None:
        ax.axvspan(interval[0], interval[1], color="0.9", zorder=0, label=f"EAO interval {interval[0]}-{interval[1]}")
    ax.set_xlabel("sequence length (frames)")
    ax.set_ylabel("expected overlap")
    ax.set_ylim(0, 1)
    ax.set_title(f"Expected overlap ({tag})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
