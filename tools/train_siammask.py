"""Train SiamMask: the base model (RPN + mask head); `get_args_parser(stage="refine")` gives the sharp refine stage.

Ports `tools/train_siammask.py` of the original SiamMask and the Ascend port's additions (``--P``, ``--num-steps``,
``--seed``, DDP). ``tools/train_siammask_refine.py`` is this script with the refine stage's defaults.

The loop is explicit (epoch -> iterations) instead of the original's one pass over an ``epochs x num`` dataset:

* each epoch: the model's stage for that epoch (ResNet layer2/3 unfreeze at half the epochs, or the refine stage),
  an optimizer rebuild when the stage changed (momentum lost, as the original), ``lr_scheduler.step(epoch)``, a loader
  for the epoch (DistributedSampler ``set_epoch`` every epoch), the iterations, then ``checkpoint_e{N}.pth``;
* checkpoints are plain data written atomically, including the last epoch's (the original never wrote it) and a
  ``checkpoint_step{N}.pth`` when ``--num-steps`` stops a run early; ``checkpoint_latest.pth`` is always the newest;
* ``--resume`` restores model, optimizer, lr schedule, loss scaler, epoch and iteration, and the data order continues
  where it stopped (the dataset is deterministic per seed, epoch and index);
* the optimizer step is skipped when the loss is not finite or above 1e4 (the original's rule), but every skipped step
  is logged with its loss terms and counted; 20 consecutive skips stop the run with an error.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
from typing import Any

import cv2
import torch
from torch.nn.parallel import DistributedDataParallel

from siammask.datasets import build_train_dataset
from siammask.datasets.siam_mask_dataset import tune_malloc
from siammask.models import build_model
from siammask.models.weights import CheckpointError, load_pretrained
from siammask.models.winograd import use_winograd
from siammask.training.checkpoint import (
    checkpoint_state,
    find_resume_checkpoint,
    load_resume_checkpoint,
    save_checkpoint,
)
from siammask.training.engine import first_non_finite, train_one_epoch
from siammask.training.errors import TrainingError
from siammask.training.frozen_trunk import FrozenTrunkRunner
from siammask.training.invalid_loss import InvalidSteps
from siammask.training.loader import build_train_loader, steps_per_epoch
from siammask.training.lr_scheduler import lr_spaces
from siammask.training.optim import OptimizerSettings, start_epoch
from siammask.training.progress import EpochPlan, ProgressLogger
from siammask.utils.config import Config, load_config
from siammask.utils.errors import run_tool, tool_cli
from siammask.utils.io import ensure_output_dir, remove_stale_temporaries
from siammask.utils.log_helper import init_log, log_environment
from siammask.utils.runtime import cleanup, init_runtime, main_process_first, seed_everything, unwrap

STAGES = {"base": ("experiments/siammask_base/config.json", "siammask_base"),
          "refine": ("experiments/siammask_sharp/config.json", "siammask_sharp")}
DEFAULT_BACKBONE = "models/resnet.model"  # where the Ascend port expected the ImageNet backbone


def get_args_parser(add_help: bool = True, stage: str = "base") -> argparse.ArgumentParser:
    """Command-line flags of the original (+ Ascend's); `stage` picks the base or refine-stage defaults."""
    refine = stage == "refine"
    parser = argparse.ArgumentParser(description=f"SiamMask training ({stage} stage)", add_help=add_help)
    parser.set_defaults(stage=stage)
    parser.add_argument("--config", default=STAGES[stage][0], help="experiment config.json (default: %(default)s)")
    parser.add_argument("-j", "--workers", default=16, type=int, help="DataLoader workers per process (default 16)")
    parser.add_argument("--epochs", default=20, type=int, help="epochs (20: every recipe of the original)")
    parser.add_argument("--start-epoch", default=0, type=int, help="first epoch of a fresh run (--resume overrides)")
    parser.add_argument("-b", "--batch", default=64, type=int, help="batch per process (default 64)")
    parser.add_argument("--lr", "--learning-rate", default=0.001, type=float,
                        help="SGD default lr; unused in practice: every param group takes its lr from the config")
    parser.add_argument("--momentum", default=0.9, type=float, help="SGD momentum")
    parser.add_argument("--weight-decay", "--wd", default=1e-4, type=float, help="weight decay (all parameters)")
    parser.add_argument("--clip", default=10.0, type=float, help="gradient-norm clip when the config sets none")
    parser.add_argument("-p", "--print-freq", default=10, type=int, help="log every N iterations")
    parser.add_argument("--resume", default="", help="training checkpoint to continue (model, optimizer, lr, epoch); "
                        "a folder or 'auto' (= --save_dir) takes its newest complete checkpoint")
    parser.add_argument("--override-seed", action="store_true", help="with --resume: accept a --seed other than the "
                        "checkpoint's (the data order then differs from an uninterrupted run)")
    parser.add_argument("--pretrained", default="", help="weights to start from: a base checkpoint for the refine "
                        "stage, or any SiamMask/pysot weights file (loaded strictly)")
    parser.add_argument("--backbone", default="" if refine else DEFAULT_BACKBONE,
                        help="ImageNet ResNet-50 weights (resnet.model) for the backbone; '' = none "
                        "(default: %(default)r, skipped with a warning when absent)")
    parser.add_argument("-l", "--log", default="log.txt", help="log file ('' = console only)")
    parser.add_argument("-s", "--save_dir", "--save-dir", default="snapshot", help="checkpoint folder")
    parser.add_argument("--log-dir", default="board", help="tensorboard folder ('' = no tensorboard)")
    parser.add_argument("--P", default=1, type=int, help="multiply the config's learning rates by P (the Ascend "
                        "port's linear scaling; its 8-device scripts pass 8)")
    parser.add_argument("--num-steps", default=-1, type=int, help="stop after N iterations (perf runs; -1 = all)")
    parser.add_argument("--seed", default=12345, type=int, help="seed of weights init, data order and augmentation")
    parser.add_argument("--data-root", default="data", help="root of the config's relative dataset paths")
    parser.add_argument("--device", default="auto", choices=("auto", "npu", "cuda", "cpu"), help="compute device")
    parser.add_argument("--amp", action="store_true", help="mixed precision (fp16 NPU/CUDA, bf16 CPU) + GradScaler")
    parser.add_argument("--loss-scale", default=None, type=float, help="static fp16 loss scale (Ascend: 128)")
    parser.add_argument("--channels-last", default="auto", choices=("auto", "on", "off"), help="model and crops in "
                        "channels_last layout (auto: on the CPU, where it is faster in fp32 and bf16, and with --amp "
                        "on CUDA)")
    parser.add_argument("--trunk-graph", action=argparse.BooleanOptionalAction, default=True, help="on the CPU, "
                        "run the ResNet trunk as a compiled inference graph (torch.compile, else TorchScript) while "
                        "it trains nothing (the first stage; fp32 with float32 rounding, or bf16 with --amp; "
                        "training/frozen_trunk.py)")
    parser.add_argument("--winograd", action=argparse.BooleanOptionalAction, default=True, help="on the CPU in "
                        "fp32, run the trainable stride-1 3x3 convolutions by Winograd F(4x4, 3x3) (a quarter of the "
                        "products, float32 rounding ~1e-5; models/winograd.py; needs the extension make.sh builds)")
    parser.add_argument("--skip-bad", action="store_true", help="replace unreadable samples (counted) instead of "
                        "failing")
    return parser


def load_weights(model: torch.nn.Module, args: argparse.Namespace, logger: logging.Logger) -> None:
    """ImageNet backbone (base stage) and/or --pretrained weights; says plainly when training starts without them."""
    if args.backbone and (os.path.isfile(args.backbone) or args.backbone != DEFAULT_BACKBONE):
        report = load_pretrained(model, args.backbone)
        _refuse_non_finite(model, args.backbone)
        logger.info(f"ImageNet backbone: {report.loaded} tensors from {args.backbone}")
    elif args.stage == "base" and not args.pretrained:
        why = f"{args.backbone} not found" if args.backbone else "--backbone ''"
        logger.warning(f"training WITHOUT ImageNet weights: the backbone is randomly initialised ({why}); pass "
                       f"--backbone path/to/resnet.model to use them")
    if args.pretrained:
        report = load_pretrained(model, args.pretrained, allow_missing_refine=args.stage == "refine")
        _refuse_non_finite(model, args.pretrained)
        logger.info(f"pretrained: {report.loaded} tensors from {args.pretrained} ({report.kind}"
                    f"{'; ' + '; '.join(report.tolerated) if report.tolerated else ''})")
    elif args.stage == "refine":
        logger.warning("refine stage WITHOUT a trained base model (--pretrained not given): random weights")


def _refuse_non_finite(model: torch.nn.Module, path: str) -> None:
    name = first_non_finite(model)
    if name is not None:
        raise CheckpointError(f"{path}: tensor {name!r} holds NaN or inf; refusing to train from it")


def check_outputs(args: argparse.Namespace) -> None:
    """Every output folder can be written, before any work; stale checkpoint temporaries of a killed run removed."""
    ensure_output_dir(args.save_dir, "--save_dir")
    if args.log_dir:
        ensure_output_dir(args.log_dir, "--log-dir")
    if args.log:
        ensure_output_dir(os.path.dirname(os.path.abspath(args.log)), "--log (folder)")
    remove_stale_temporaries(args.save_dir, "checkpoint_*")


def check_resume(state: dict, path: str, cfg: Config, args: argparse.Namespace) -> None:
    """A resume continues the same run: same seed (unless --override-seed) and the same config."""
    if state.get("seed") is not None and state["seed"] != args.seed and not args.override_seed:
        raise TrainingError(f"{path} was trained with --seed {state['seed']}, not {args.seed}; pass --seed "
                            f"{state['seed']} (or --override-seed to accept another data order)")
    saved, now = state.get("config"), cfg.to_dict()
    if saved is not None and saved != now:
        key = _first_difference(saved, now)
        raise TrainingError(f"{path} was trained with another config ({args.config} differs at key {key!r}); "
                            f"resume with the checkpoint's config")


def _first_difference(a: object, b: object, key: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{key}.{k}" if key else k)
    return key or "<root>"


def main(args: argparse.Namespace) -> int:
    """Run the training behind the error boundary; returns the exit status (0, 2 user error, 130/143 signal)."""
    return run_tool(run, args, interrupted="interrupted (the last complete checkpoint is kept; --resume auto "
                    "continues)")


def cli() -> None:
    """Console script ``siammask-train``."""
    tool_cli(main, get_args_parser)


#: (flag, attribute, test, what it must be) for every numeric flag; checked before anything else happens.
FLAG_RULES: tuple[tuple[str, str, Any, str], ...] = (
    ("-j/--workers", "workers", lambda v: v >= 0, ">= 0"),
    ("--epochs", "epochs", lambda v: v >= 1, ">= 1"),
    ("--start-epoch", "start_epoch", lambda v: v >= 0, ">= 0"),
    ("-b/--batch", "batch", lambda v: v >= 1, ">= 1"),
    ("--lr", "lr", lambda v: math.isfinite(v) and v > 0, "a positive number"),
    ("--momentum", "momentum", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("--weight-decay", "weight_decay", lambda v: math.isfinite(v) and v >= 0, ">= 0"),
    ("--clip", "clip", lambda v: math.isfinite(v) and v > 0, "a positive number"),
    ("-p/--print-freq", "print_freq", lambda v: v >= 1, ">= 1"),
    ("--P", "P", lambda v: v >= 1, ">= 1"),
    ("--num-steps", "num_steps", lambda v: v == -1 or v >= 1, "-1 (all) or >= 1"),
    ("--seed", "seed", lambda v: 0 <= v < 2 ** 32, "in [0, 2**32)"),
    ("--loss-scale", "loss_scale", lambda v: v is None or (math.isfinite(v) and v > 0), "a positive number"),
)


def check_flags(args: argparse.Namespace) -> None:
    """Raise TrainingError naming the first flag whose value cannot work (before any output or model exists)."""
    for flag, attr, ok, what in FLAG_RULES:
        value = getattr(args, attr, None)
        if attr != "loss_scale" and value is None:
            continue
        if not ok(value):
            raise TrainingError(f"{flag} must be {what}, got {value}")
    if args.start_epoch >= args.epochs:
        raise TrainingError(f"--start-epoch {args.start_epoch} leaves nothing to train with --epochs {args.epochs}")


def run(args: argparse.Namespace) -> None:
    """Train for ``args.epochs`` epochs (or ``args.num_steps`` iterations), checkpointing every epoch.

    Raises:
        SiamMaskError: bad flag, config, data, checkpoint or output folder; a diverged run (one line each).
    """
    check_flags(args)
    check_outputs(args)
    runtime = init_runtime(args.device, args.amp, args.loss_scale,
                           channels_last={"auto": None, "on": True, "off": False}[args.channels_last])
    # activations and batches of every step from reused heap memory instead of fresh pages (a page fault costs ~10 us
    # on virtual machines: tens of thousands per step)
    tune_malloc(32 << 20, 1 << 30, heap_only=True)
    logger = init_log("global", runtime.rank, args.log or None)
    try:
        log_environment(logger, runtime)
        logger.info(f"args: {json.dumps(vars(args))}")
        seed_everything(args.seed)
        cfg = load_config(args.config)
        cfg = cfg.scale_lr(args.P) if args.P != 1 else cfg
        logger.info("lr per epoch: " + ", ".join(f"{v:.6g}" for v in lr_spaces(cfg.lr, args.epochs).values))
        logger.info(f"config {args.config}\n{json.dumps(cfg.to_dict(), indent=2)}")
        model = build_model(cfg)
        if model.arch != STAGES[args.stage][1]:
            other = "train_siammask_refine.py" if model.arch == "siammask_sharp" else "train_siammask.py"
            raise TrainingError(f"{args.config} builds {model.arch}; the {args.stage} stage trains "
                                f"{STAGES[args.stage][1]} (use tools/{other})")
        load_weights(model, args, logger)
        model.to(runtime.device)
        if runtime.channels_last:
            model.to(memory_format=torch.channels_last)
        if args.trunk_graph and runtime.device.type == "cpu":  # fp32, or bf16 under --amp
            model.features.trunk_runner = FrozenTrunkRunner(winograd=args.winograd)
        if args.winograd and runtime.device.type == "cpu" and not runtime.amp:
            turned = use_winograd(model)
            logger.info(f"Winograd F(4x4, 3x3): {turned} convolutions" if turned else
                        "Winograd convolutions off: siammask.models._winograd is not built (bash make.sh)")
        settings = OptimizerSettings(args.lr, args.momentum, args.weight_decay)
        scaler = runtime.make_scaler()
        first_epoch, iteration, optimizer, scheduler = args.start_epoch, 0, None, None
        invalid = InvalidSteps()
        if args.resume:
            if args.resume == "auto" or os.path.isdir(args.resume):
                args.resume = find_resume_checkpoint(args.save_dir if args.resume == "auto" else args.resume)
                logger.info(f"--resume: the newest complete checkpoint is {args.resume}")
            state = load_resume_checkpoint(args.resume, model.arch)
            check_resume(state, args.resume, cfg, args)
            model.load_state_dict(state["state_dict"])
            _refuse_non_finite(model, args.resume)
            if "invalid_steps" in state:
                invalid.load_state_dict(state["invalid_steps"])
            first_epoch, iteration = state["epoch"], state["iteration"]
            if iteration and state["global_batch"] != args.batch * runtime.world_size:
                raise TrainingError(f"{args.resume} stopped inside an epoch with batch x processes = "
                                    f"{state['global_batch']}; resume it with the same (now "
                                    f"{args.batch * runtime.world_size}) or from an epoch checkpoint")
            # the saved optimizer holds the param groups of the epoch it was written in
            optimizer, scheduler, _ = start_epoch(model, max(first_epoch - (iteration == 0), 0), args.epochs, cfg,
                                                  settings)
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["lr_scheduler"])
            if state["scaler"] and scaler.is_enabled():
                scaler.load_state_dict(state["scaler"])
            logger.info(f"resumed {args.resume}: epoch {first_epoch}, iteration {iteration}, step {state['step']}")
        if args.workers > 0:
            # the workers are forked: a fork after OpenCV's thread pool ran can deadlock in the child, and each
            # worker decodes on one thread anyway
            cv2.setNumThreads(1)
        with main_process_first(runtime):
            dataset = build_train_dataset(cfg, args.data_root, seed=args.seed, skip_bad=args.skip_bad or None,
                                          logger=logger)
        n_epoch = steps_per_epoch(len(dataset), args.batch, runtime.world_size)
        if n_epoch == 0:
            raise TrainingError(f"{len(dataset)} samples per epoch give no full batch of {args.batch} x "
                                f"{runtime.world_size} process(es)")
        done = first_epoch * n_epoch + iteration
        total = args.epochs * n_epoch if args.num_steps < 0 else min(args.epochs * n_epoch, done + args.num_steps)
        logger.info(f"{len(dataset)} samples/epoch, {n_epoch} iterations/epoch of {args.batch} x "
                    f"{runtime.world_size} process(es); epochs {first_epoch + 1}..{args.epochs}, "
                    f"{total - done} iterations")
        tb_writer = None
        if runtime.is_main and args.log_dir:
            from tensorboardX import SummaryWriter

            tb_writer = SummaryWriter(args.log_dir)
        progress = ProgressLogger(logger, runtime, args.batch, args.print_freq, total, done, tb_writer)
        net, ddp, trainable = unwrap(model), model, None
        for epoch in range(first_epoch, args.epochs):
            if progress.step >= total:
                break
            start = iteration if progress.step == done else 0
            optimizer, scheduler, rebuilt = start_epoch(net, epoch, args.epochs, cfg, settings, optimizer, scheduler,
                                                        keep_optimizer=start > 0)
            logger.info(f"epoch {epoch + 1}: {'new optimizer, ' if rebuilt else ''}lr " + ", ".join(
                f"{g['name']} {g['lr']:.6g}" for g in optimizer.param_groups))
            flags = tuple(p.requires_grad for p in net.parameters())
            if runtime.distributed and flags != trainable:  # DDP registers the trainable parameters at wrap time
                ddp = DistributedDataParallel(net, device_ids=[runtime.local_rank] if runtime.device.type != "cpu"
                                              else None)
            trainable = flags
            loader = build_train_loader(dataset, args.batch, args.workers, runtime, epoch, args.seed, start)
            plan = EpochPlan(epoch, n_epoch, scheduler.get_cur_lr(), start, total - progress.step)
            stats = train_one_epoch(ddp, optimizer, scaler, loader, runtime, progress, plan, cfg.loss.weight, cfg.clip,
                                    args.clip, invalid)
            progress.log_epoch(epoch, stats, optimizer)
            if dataset.bad_count:
                logger.warning(f"{dataset.bad_count} unreadable samples replaced so far (skip_bad)")
            finished = start + stats.iterations >= n_epoch
            bad = first_non_finite(net)
            if bad is not None:
                raise TrainingError(f"the weights are not finite after step {progress.step} (first: {bad!r}; "
                                    f"{invalid.total} invalid steps); no checkpoint saved for epoch {epoch + 1}")
            if runtime.is_main:
                state = checkpoint_state(net, optimizer, scheduler, scaler, cfg, epoch + finished,
                                         0 if finished else start + stats.iterations, progress.step, args.seed,
                                         args.batch * runtime.world_size, invalid.state_dict())
                name = f"checkpoint_e{epoch + 1}.pth" if finished else f"checkpoint_step{progress.step}.pth"
                logger.info(f"saved {save_checkpoint(state, args.save_dir, name)}")
            if not finished:
                break
        if tb_writer is not None:
            tb_writer.close()
        logger.info(f"training done: {progress.step} iterations in total")
    finally:
        cleanup(runtime)


if __name__ == "__main__":
    cli()
