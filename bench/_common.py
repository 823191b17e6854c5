"""What every benchmark shares: the machine line, the median and spread of rounds, the header.

A benchmark times several rounds of the same work and reports the median with the spread (min-max and the
inter-quartile range), never the best round; its header says the machine, the threads, the load and the data it
ran on, so two figures are compared only when they come from the same run.
"""
from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Sequence
from typing import Any


def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's model name with its family / model numbers and matrix ISA, e.g. ``AMD EPYC (family 26 model 2;
    AVX512-BF16, no AMX)`` (from `cpuinfo` on Linux, else `platform.processor()`). Virtual machines often report a
    bare ``AMD EPYC``; the numbers and the ISA tell their generations apart (bf16 and fp32 peaks differ 2x)."""
    fields: dict[str, str] = {}
    try:
        with open(cpuinfo, encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if not key.strip():  # the first processor's block ends at its blank line
                    break
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    if "model name" not in fields:
        return platform.processor() or platform.machine()
    flags = set(fields.get("flags", "").split())
    if "amx_tile" in flags:
        isa = "AMX"
    elif "avx512f" in flags:
        isa = ("AVX512-BF16" if "avx512_bf16" in flags else "AVX-512, no bf16") + ", no AMX"
    else:
        isa = "AVX2" if "avx2" in flags else "no AVX2"
    numbers = f"family {fields['cpu family']} model {fields.get('model', '?')}; " if "cpu family" in fields else ""
    return f"{fields['model name']} ({numbers}{isa})"


def machine_info(threads: int | None = None, device: str = "cpu") -> dict[str, Any]:
    """Machine, software and load figures that make a benchmark line comparable.

    Args:
        threads: the torch intra-op threads in use (default: `torch.get_num_threads()`).
        device: the device the benchmark runs on ("cpu", "cuda", ...).
    """
    import torch

    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": threads if threads is not None else torch.get_num_threads(),
        "device": device,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def machine_line(info: dict[str, Any]) -> str:
    """One line for the header: `machine: <cpu>, <cores> cores, <threads> threads, torch <v>, load <l>`."""
    text = f"machine: {info['cpu']}, {info['cores']} cores, {info['threads']} threads, device {info['device']}"
    if info.get("gpu"):
        text += f" ({info['gpu']})"
    text += f", torch {info['torch']}, python {info['python']}"
    if info.get("load_1min") is not None:
        text += f", load average {info['load_1min']:.2f} (figures under load are pessimistic)"
    return text


def summarize(values: Sequence[float]) -> dict[str, float]:
    """Median, min, max and inter-quartile range of the rounds' figures.

    Args:
        values: one figure per round (at least one).

    Returns:
        {"median", "min", "max", "q1", "q3", "rounds"}; quartiles are the medians' halves (exclusive method) and
        equal the median for fewer than 4 rounds.
    """
    if not values:
        raise ValueError("summarize needs at least one round")
    ordered = sorted(float(v) for v in values)
    median = statistics.median(ordered)
    if len(ordered) >= 4:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="exclusive")
    else:
        q1 = q3 = median
    return {"median": median, "min": ordered[0], "max": ordered[-1], "q1": q1, "q3": q3, "rounds": len(ordered)}


def format_summary(stats: dict[str, float], unit: str, digits: int = 1) -> str:
    """`12.3 <unit> (median of 5 rounds, 11.9-12.8, IQR 12.1-12.5)`."""
    fmt = f"{{:.{digits}f}}"
    text = f"{fmt.format(stats['median'])} {unit} (median of {stats['rounds']} rounds"
    if stats["rounds"] > 1:
        text += f", {fmt.format(stats['min'])}-{fmt.format(stats['max'])}"
    if stats["rounds"] >= 4:
        text += f", IQR {fmt.format(stats['q1'])}-{fmt.format(stats['q3'])}"
    return text + ")"


def print_header(title: str, data: str, info: dict[str, Any]) -> None:
    """Print the benchmark's title, the machine line and what data it runs on."""
    print(title)
    print(machine_line(info))
    print(f"data: {data}")
