"""Does training help? Train SiamMask for a fixed budget of minutes on the built-in data, then compare on a VOT set.

Usage::

    python bench/learning_curve.py                  # 8 minutes of training, then scoring (a few more minutes)
    python bench/learning_curve.py --minutes 30 --batch 16 --device cuda --unfreeze
    python bench/learning_curve.py --epochs 9       # exactly 9 one-epoch chunks: the same model on any machine

Steps (every step uses the project's own tools, as a user would):

1. the built-in data (``large`` size) under ``--data-root`` and, under ``<work-dir>/vot``, a synthetic VOT2018-style
   set whose videos are at least 100 frames long (the built-in quick/large VOT videos are shorter than VOT2018's EAO
   interval [100, 356], which would leave the EAO undefined);
2. training with ``tools/train_siammask.py`` in one-epoch chunks of ``--iters-per-epoch`` iterations, each chunk
   resuming the previous one's ``checkpoint_latest.pth`` (so the run is exactly one uninterrupted run of the tool),
   until the next chunk would exceed the budget. Time-based chunks keep the amount of training honest on a machine
   whose load changes; ``--epochs N`` trains exactly N chunks instead (training is deterministic for a seed, so
   that is the same model on a faster or slower machine: what a comparison of --fast with exact needs). The
   schedule has ``--schedule-epochs`` epochs; by default only its first half runs, i.e. the
   original's frozen stage (adjust layer, rpn and mask heads train; the ResNet stays as initialised): on a CPU the
   backward pass through the dilated ResNet layer3 that the unfrozen stage needs is one to two orders of magnitude
   slower per iteration. ``--unfreeze`` lets the run go on into the second half (sensible on a GPU/NPU);
3. ``tools/test.py --mask`` with the untrained model (the same random initialisation the training started from, no
   ImageNet weights) and with the trained one, then ``tools/eval.py``; prints EAO / accuracy / robustness / lost of
   both and exits with status 1 unless the trained model is clearly better: EAO higher by 0.01 or more and at most
   3/4 of the untrained model's failures. (Accuracy is shown but not judged: it averages only frames being tracked,
   and an untrained tracker, re-initialised on the ground truth after every failure, is mostly measured on the few
   frames right after an initialisation.)

4. with ``--fast-eao`` (default) the trained model is also tracked with ``tools/test.py --fast`` (bf16 on the CPU,
   fp16 on a GPU) and the EAO difference to the exact mode is printed (``--fast`` on a CPU without native bf16 runs
   the exact network: the difference is then 0 by construction).

Recipe notes: without ImageNet weights and with minutes of CPU, learning is limited; the bench uses a log lr
0.01 -> 0.0025 without warm-up, 255-pixel searches (the tracker's size) and fp32 (``--amp`` for bf16/fp16; on CPUs
without bf16 matrix units bf16 convolutions at 255 px are slower than fp32). The tools' own defaults are unchanged.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

from siammask.datasets.synthetic import make_builtin_data, write_vot_dataset

ROOT = Path(__file__).resolve().parents[1]


def get_args_parser() -> argparse.ArgumentParser:
    """Command-line flags."""
    parser = argparse.ArgumentParser(description="Train for a fixed time on the built-in data; trained vs untrained "
                                     "on a synthetic VOT set")
    parser.add_argument("--minutes", type=float, default=8.0, help="training budget in minutes (default 8)")
    parser.add_argument("--epochs", type=int, default=0, help="train exactly this many one-epoch chunks instead of "
                        "a time budget (default 0: the --minutes budget)")
    parser.add_argument("--work-dir", default="output/learning_curve", help="config, checkpoints, results, logs")
    parser.add_argument("--data-root", default="", help="built-in data (large size) folder (default <work-dir>/data)")
    parser.add_argument("--batch", type=int, default=8, help="training batch (default 8)")
    parser.add_argument("--iters-per-epoch", type=int, default=20, help="iterations per epoch = per chunk (default 20)")
    parser.add_argument("--schedule-epochs", type=int, default=40, help="epochs of the lr schedule (default 40)")
    parser.add_argument("--unfreeze", action="store_true", help="go on into the schedule's second half, where ResNet "
                        "layer2/3 train too (default: stop at the half)")
    parser.add_argument("--lr", type=float, nargs=2, default=(0.01, 0.0025), metavar=("START", "END"),
                        help="log lr schedule of the bench recipe (default 0.01 0.0025)")
    parser.add_argument("--device", default="auto", choices=("auto", "npu", "cuda", "cpu"))
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=False,
                        help="mixed precision for training and tracking (default off)")
    parser.add_argument("--winograd", action=argparse.BooleanOptionalAction, default=True,
                        help="fp32 on the CPU: the training tool's Winograd 3x3 convolutions (--no-winograd: direct, "
                        "to compare the learning of both)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    parser.add_argument("--vot-videos", type=int, default=4, help="videos of the scoring set (default 4)")
    parser.add_argument("--vot-frames", type=int, default=120, help="frames per scoring video (>= 100, default 120)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fast-eao", action=argparse.BooleanOptionalAction, default=True,
                        help="also track with the trained model in tools/test.py --fast and print its EAO minus "
                        "the exact mode's (default on)")
    return parser


def run(cmd: list[str], log: Path, echo: str = "") -> str:
    """Run a tool from the repository root; its output goes to `log`, lines containing `echo` to the console too.

    Raises:
        SystemExit: the tool failed (with the end of its output).
    """
    lines = []
    with open(log, "w") as out, subprocess.Popen([sys.executable, *cmd], cwd=ROOT, stdout=subprocess.PIPE,
                                                 stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            lines.append(line)
            if echo and echo in line:
                print("   ", line.rstrip().split("] ", 1)[-1], flush=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {proc.returncode}); see {log}:\n{''.join(lines[-20:])}")
    return "".join(lines)


def write_config(path: Path, num: int, lr: tuple[float, float]) -> None:
    """The built-in recipe with `num` samples per epoch and a log lr without warm-up."""
    cfg = json.loads((ROOT / "experiments/siammask_synthetic/config.json").read_text())
    cfg["lr"] = {"type": "log", "start_lr": lr[0], "end_lr": lr[1]}
    cfg["train_datasets"]["num"] = num
    cfg.pop("val_datasets", None)
    path.write_text(json.dumps(cfg, indent=2))


def train(args: argparse.Namespace, config: Path, work: Path) -> Path:
    """One-epoch chunks until the budget is spent; returns the last checkpoint."""
    save = work / "snapshot"
    base = ["tools/train_siammask.py", "--config", str(config), "--data-root", args.data_root, "-b", str(args.batch),
            "-j", str(args.workers), "--epochs", str(args.schedule_epochs), "--device", args.device, "--seed",
            str(args.seed), "--backbone", "", "-s", str(save), "--log", "", "--log-dir", "", "-p", "10",
            "--num-steps", str(args.iters_per_epoch)] + (["--amp"] if args.amp else []) + (
                [] if args.winograd else ["--no-winograd"])
    last_epoch = args.schedule_epochs if args.unfreeze else args.schedule_epochs // 2
    budget, start, longest = args.minutes * 60, time.perf_counter(), 0.0
    for epoch in range(1, (args.epochs or last_epoch) + 1):
        t0 = time.perf_counter()
        resume = ["--resume", str(save / "checkpoint_latest.pth")] if epoch > 1 else []
        run(base + resume, work / f"train_e{epoch}.log", echo="] done")
        longest = max(longest, time.perf_counter() - t0)
        if not args.epochs and time.perf_counter() - start + longest > budget:
            break
    print(f"trained {epoch} epochs x {args.iters_per_epoch} iterations of {args.batch} in "
          f"{(time.perf_counter() - start) / 60:.1f} min", flush=True)
    return save / "checkpoint_latest.pth"


def score(args: argparse.Namespace, config: Path, weights: Path, name: str, work: Path,
          extra: tuple[str, ...] = ()) -> None:
    cmd = ["tools/test.py", "--config", str(config), "--resume", str(weights), "--mask", "--dataset", "VOT2018",
           "--data-root", str(work / "vot"), "--result-dir", str(work / "results"), "--tracker-name", name,
           "--device", args.device] + (["--amp"] if args.amp else []) + list(extra)
    t0 = time.perf_counter()
    run(cmd, work / f"test_{name}.log", echo="Video:")
    print(f"  tracked with the {name} model in {time.perf_counter() - t0:.0f}s", flush=True)


def main(args: argparse.Namespace) -> int:
    """Prepare data, train for the budget, score both models; 0 when training clearly helped."""
    import torch

    from siammask.models import build_model
    from siammask.utils.runtime import seed_everything

    last_epoch = args.schedule_epochs if args.unfreeze else args.schedule_epochs // 2
    if not 0 <= args.epochs <= last_epoch:
        print(f"error: --epochs {args.epochs}: the schedule's {'' if args.unfreeze else 'first half '}has "
              f"{last_epoch} epochs (--schedule-epochs {args.schedule_epochs}"
              f"{'' if args.unfreeze else '; --unfreeze for all'})", file=sys.stderr)
        return 2
    work = (ROOT / args.work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    args.data_root = args.data_root or str(work / "data")
    t0 = time.perf_counter()
    make_builtin_data(args.data_root, "large", seed=0)
    if not (work / "vot" / "VOT2018.json").is_file():
        write_vot_dataset(str(work / "vot"), "VOT2018", args.vot_videos, args.vot_frames, seed=123)
    print(f"data ready in {time.perf_counter() - t0:.0f}s", flush=True)
    for stale in ("snapshot", "results"):  # a new run, not a continuation of an older one
        shutil.rmtree(work / stale, ignore_errors=True)

    config = work / "config.json"
    write_config(config, num=args.batch * args.iters_per_epoch, lr=tuple(args.lr))
    seed_everything(args.seed)  # the training tool builds its model right after the same call
    untrained = work / "untrained.pth"
    torch.save({"state_dict": build_model(config).state_dict()}, untrained)
    trained = train(args, config, work)

    for name, weights in (("untrained", untrained), ("trained", trained)):
        score(args, config, weights, name, work)
    names = ["untrained", "trained"]
    if args.fast_eao and not args.amp:
        score(args, config, trained, "trained-fast", work, ("--fast",))
        names.append("trained-fast")
    run(["tools/eval.py", "--dataset", "VOT2018", "--data-root", str(work / "vot"), "--result_dir",
         str(work / "results" / "VOT2018"), "--json", str(work / "eval.json")], work / "eval.log")
    evals = json.loads((work / "eval.json").read_text())
    print(f"\n{'model':<10}{'EAO':>8}{'accuracy':>10}{'robustness':>12}{'lost':>8}")
    for name in names:
        row = [evals[name][key] for key in ("eao", "accuracy", "robustness", "lost")]
        cells = [("n/a" if v is None else f"{v:.4f}").rjust(w) for v, w in zip(row, (8, 10, 12, 8), strict=True)]
        print(f"{name:<10}" + "".join(cells))
    if "trained-fast" in evals and evals["trained"]["eao"] is not None and evals["trained-fast"]["eao"] is not None:
        delta = evals["trained-fast"]["eao"] - evals["trained"]["eao"]
        print(f"\n--fast vs exact, trained model: EAO {delta:+.4f}, accuracy "
              f"{evals['trained-fast']['accuracy'] - evals['trained']['accuracy']:+.4f}, lost "
              f"{evals['trained-fast']['lost'] - evals['trained']['lost']:+.0f}")
    after, before = evals["trained"], evals["untrained"]
    eao_after = math.nan if after["eao"] is None else after["eao"]
    eao_before = math.nan if before["eao"] is None else before["eao"]
    better = eao_after >= eao_before + 0.01 and after["lost"] <= 0.75 * before["lost"]
    print("\nverdict:", "the trained model is clearly better" if better else "NO clear improvement from training")
    return 0 if better else 1


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
