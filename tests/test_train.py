"""Training: the loop learns, runs are reproducible and resumable, DDP equals one process, the refine stage trains only
the mask and refine parameters, AMP (bf16) runs on the CPU, invalid losses are never silent, checkpoints are plain data.

Runs are tiny: the built-in data (quick size), 143-px searches (3x3 response map; the base model handles them as the
refine stage does) and batches of 2-4, in the frozen stage (--epochs 20, a few iterations), on the CPU.
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import pytest
import torch
from torch import nn

from siammask.models.weights import CheckpointError
from siammask.tools.train_siammask import get_args_parser, run
from siammask.tools.train_siammask_refine import get_args_parser as refine_parser
from siammask.training.engine import train_one_epoch
from siammask.training.errors import TrainingError
from siammask.training.invalid_loss import InvalidSteps
from siammask.training.loader import build_train_loader
from siammask.training.optim import OptimizerSettings, clip_gradients, start_epoch
from siammask.training.progress import EpochPlan, ProgressLogger
from siammask.utils.config import ClipConfig, load_config
from siammask.utils.runtime import Runtime, cleanup, init_runtime, seed_everything

ROOT = Path(__file__).resolve().parents[1]
LOSS_LINE = re.compile(r"siammask_loss: (\S+) \(")


# ------------------------------------------------------------------------------------------------------ helpers
@pytest.fixture(scope="session")
def builtin_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from siammask.datasets.synthetic import make_builtin_data

    return Path(make_builtin_data(str(tmp_path_factory.mktemp("builtin")), "quick", seed=0))


def tiny_config(folder: Path, name: str = "tiny.json", num: int = 8, sharp: bool = False,
                start_lr: Optional[float] = None) -> Path:
    """The built-in-data recipe with `num` samples per epoch, 143-px searches and no warm-up."""
    cfg = json.loads((ROOT / "experiments/siammask_synthetic" / ("config_sharp.json" if sharp else "config.json"))
                     .read_text())
    cfg["lr"].pop("warmup", None)
    cfg.pop("val_datasets", None)
    if start_lr is not None:
        cfg["lr"]["start_lr"] = start_lr
    train = cfg["train_datasets"]
    train.update(search_size=143, size=3, base_size=0, num=num)
    train["augmentation"]["search"]["shift"] = 8
    path = folder / name
    path.write_text(json.dumps(cfg, indent=1))
    return path


def train(folder: Path, config: Path, data_root: Path, *extra: str, refine: bool = False) -> list[float]:
    """Run the training tool's main in this process; returns the per-iteration losses it logged."""
    log = folder / f"log{len(list(folder.glob('log*.txt')))}.txt"
    parser = refine_parser() if refine else get_args_parser()
    args = parser.parse_args(["--config", str(config), "--data-root", str(data_root), "-j", "0", "-p", "1",
                              "--device", "cpu", "--log", str(log), "--log-dir", "", "-s", str(folder / "snap"),
                              "--backbone", "", *extra])
    run(args)
    return [float(v) for v in LOSS_LINE.findall(log.read_text())]


# ------------------------------------------------------------------------------------------------------ parser
def test_parser_defaults_and_typical_command_line() -> None:
    args = get_args_parser().parse_args([])
    assert (args.config, args.epochs, args.batch, args.workers, args.clip, args.print_freq) == (
        "experiments/siammask_base/config.json", 20, 64, 16, 10.0, 10)
    assert (args.momentum, args.weight_decay, args.seed, args.P, args.num_steps, args.stage) == (
        0.9, 1e-4, 12345, 1, -1, "base")
    assert args.resume == "" and args.device == "auto" and not args.amp and args.backbone == "models/resnet.model"
    args = get_args_parser().parse_args([
        "--config=experiments/siammask_base_ascend/config.json", "-j", "32", "-b", "64", "--epochs", "20",
        "--start-epoch", "3", "--lr", "0.01", "--momentum", "0.8", "--wd", "5e-4", "--clip", "5", "-p", "1",
        "--resume", "snap/checkpoint_latest.pth", "--pretrained", "x.pth", "-l", "logs/log.txt", "-s", "output",
        "--log-dir", "board", "--P", "8", "--num-steps", "2000", "--seed", "7", "--data-root", "/data",
        "--device", "cpu", "--amp", "--loss-scale", "128", "--skip-bad"])
    assert (args.workers, args.batch, args.start_epoch, args.lr, args.weight_decay, args.save_dir) == (
        32, 64, 3, 0.01, 5e-4, "output")
    assert (args.P, args.num_steps, args.loss_scale, args.skip_bad, args.log) == (8, 2000, 128.0, True, "logs/log.txt")
    refine = refine_parser().parse_args(["--pretrained", "snapshot/checkpoint_e20.pth"])
    assert refine.stage == "refine" and refine.config == "experiments/siammask_sharp/config.json"
    assert refine.backbone == "" and refine.pretrained == "snapshot/checkpoint_e20.pth"


# ------------------------------------------------------------------------------------------------------ learning
def test_loss_falls_on_builtin_data(builtin_root: Path, tmp_path: Path) -> None:
    """16 iterations (frozen stage, batch 4) lower the loss of a fixed batch drawn with another seed."""
    from siammask.datasets import build_train_dataset
    from siammask.models import build_model, compute_losses

    config = tiny_config(tmp_path, num=64)
    losses = train(tmp_path, config, builtin_root, "-b", "4", "--num-steps", "16", "--seed", "1")
    assert len(losses) == 16 and all(math.isfinite(v) for v in losses)
    cfg = load_config(config)
    dataset = build_train_dataset(cfg, str(builtin_root), seed=99)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(8)])
    seed_everything(1)  # the tool seeds the same way before building the model
    before = build_model(cfg)
    after = build_model(cfg)
    after.load_state_dict(torch.load(tmp_path / "snap/checkpoint_latest.pth", weights_only=True)["state_dict"])
    result = {}
    for name, model in (("before", before), ("after", after)):
        model.set_epoch(0, 20)
        model.train()
        with torch.no_grad():
            result[name] = {k: float(v) for k, v in compute_losses(model(batch), batch, cfg.loss.weight).items()}
    assert result["after"]["total"] < result["before"]["total"] - 0.3, result
    assert result["after"]["cls"] < result["before"]["cls"] - 0.1, result
    assert result["after"]["mask"] < result["before"]["mask"], result


# ------------------------------------------------------------------------------------------------------ resume
@pytest.fixture(scope="module")
def resume_runs(builtin_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An uninterrupted run of 2 epochs x 2 iterations, one stopped after 3 iterations, and its two resumptions."""
    base = tmp_path_factory.mktemp("resume")
    config = tiny_config(base, num=4)
    common = ("-b", "2", "--seed", "5")
    full_dir, cut_dir = base / "full", base / "cut"
    full_dir.mkdir()
    cut_dir.mkdir()
    out = {"config": config, "cut": cut_dir,
           "full": train(full_dir, config, builtin_root, *common, "--num-steps", "4"),
           "first3": train(cut_dir, config, builtin_root, *common, "--num-steps", "3")}
    for name, ckpt, steps in (("from_e1", "checkpoint_e1.pth", "2"), ("from_step3", "checkpoint_step3.pth", "1")):
        folder = base / name
        folder.mkdir()
        out[name] = train(folder, config, builtin_root, *common, "--num-steps", steps,
                          "--resume", str(cut_dir / "snap" / ckpt))
    return out


@pytest.mark.slow
def test_same_seed_gives_the_same_first_20_losses(builtin_root: Path, tmp_path: Path) -> None:
    """Two runs with one seed log identical first 20 losses; another seed gives other losses."""
    config = tiny_config(tmp_path, num=40)
    runs = {}
    for name, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        folder = tmp_path / name
        folder.mkdir()
        runs[name] = train(folder, config, builtin_root, "-b", "2", "--seed", seed, "--num-steps", "20")
    assert len(runs["a"]) == 20 and runs["a"] == runs["b"]
    assert runs["c"] != runs["a"]


@pytest.mark.slow
def test_stopped_run_logs_the_same_first_losses(resume_runs: dict[str, Any]) -> None:
    """A run stopped after 3 iterations logged exactly the first 3 losses of the uninterrupted run."""
    assert len(resume_runs["full"]) == 4 and resume_runs["first3"] == resume_runs["full"][:3]


@pytest.mark.slow
def test_resume_after_epoch_1_continues_identically(resume_runs: dict[str, Any]) -> None:
    assert resume_runs["from_e1"] == resume_runs["full"][2:]


@pytest.mark.slow
def test_resume_in_the_middle_of_an_epoch_continues_identically(resume_runs: dict[str, Any]) -> None:
    assert resume_runs["from_step3"] == resume_runs["full"][3:]


@pytest.mark.slow
def test_checkpoints_are_plain_data(resume_runs: dict[str, Any]) -> None:
    snap = resume_runs["cut"] / "snap"
    assert sorted(p.name for p in snap.iterdir()) == ["checkpoint_e1.pth", "checkpoint_latest.pth",
                                                      "checkpoint_step3.pth"]
    state = torch.load(snap / "checkpoint_e1.pth", weights_only=True)
    assert (state["epoch"], state["iteration"], state["step"], state["arch"]) == (1, 0, 2, "siammask_base")
    assert state["config"] == load_config(resume_runs["config"]).to_dict()
    assert state["anchors"] == state["config"]["anchors"] and state["lr_scheduler"]["last_epoch"] == 0
    assert [g["name"] for g in state["optimizer"]["param_groups"]] == ["features.downsample", "rpn_model",
                                                                      "mask_model"]
    latest = torch.load(snap / "checkpoint_latest.pth", weights_only=True)
    assert (latest["epoch"], latest["iteration"], latest["step"]) == (1, 1, 3)
    assert not list(snap.glob(".*tmp"))


def test_resume_errors_are_one_line(builtin_root: Path, tmp_path: Path) -> None:
    from siammask.models import build_model

    config = tiny_config(tmp_path, num=4)
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint\n")
    weights = tmp_path / "weights.pth"
    sharp = build_model(ROOT / "experiments/siammask_synthetic/config_sharp.json")
    torch.save({"state_dict": sharp.state_dict()}, weights)
    other = tmp_path / "sharp_ckpt.pth"
    torch.save({"state_dict": sharp.state_dict(), "optimizer": {}, "lr_scheduler": {}, "epoch": 1, "iteration": 0,
                "step": 4, "arch": "siammask_sharp", "scaler": {}, "global_batch": 2}, other)
    for path, message in ((tmp_path / "missing.pth", "not found"), (text, "not a PyTorch checkpoint"),
                          (weights, "not a training checkpoint"), (other, "siammask_sharp")):
        with pytest.raises(CheckpointError, match=message) as info:
            train(tmp_path, config, builtin_root, "-b", "2", "--resume", str(path))
        assert "\n" not in str(info.value)
    proc = subprocess.run([sys.executable, "tools/train_siammask.py", "--config", str(config), "--data-root",
                           str(builtin_root), "--device", "cpu", "--log", "", "--log-dir", "", "-j", "0",
                           "--resume", str(tmp_path / "missing.pth")], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [f"error: {tmp_path / 'missing.pth'}: checkpoint file not found"]


# ------------------------------------------------------------------------------------------------------ DDP
class _Paired(torch.utils.data.Dataset):
    """Sample i is the base's sample i // 2: with 2 processes each rank's half-batch holds the same samples as the
    other's, so per-rank BatchNorm statistics and loss normalisations equal those of the whole batch."""

    def __init__(self, base: torch.utils.data.Dataset, length: int) -> None:
        self.base, self.length = base, length

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        self.base.set_epoch(epoch)

    def __getitem__(self, index: int) -> Any:
        return self.base[index // 2]


def _first_step(runtime: Runtime, config: str, data_root: str, batch: int) -> tuple[float, dict[str, torch.Tensor]]:
    """One training iteration through the tool's train_one_epoch; returns the logged loss and the gradients."""
    from siammask.datasets import build_train_dataset
    from siammask.models import build_model

    cfg = load_config(config)
    seed_everything(0)
    net = build_model(cfg)
    optimizer, scheduler, _ = start_epoch(net, 0, 20, cfg, OptimizerSettings())
    model = torch.nn.parallel.DistributedDataParallel(net) if runtime.distributed else net
    loader = build_train_loader(_Paired(build_train_dataset(cfg, data_root, seed=0), 8), batch, 0, runtime, 0, 0)
    progress = ProgressLogger(logging.getLogger("test_ddp"), runtime, batch, 1, total=1)
    train_one_epoch(model, optimizer, runtime.make_scaler(), loader, runtime, progress,
                    EpochPlan(0, len(loader), scheduler.get_cur_lr(), max_iters=1), cfg.loss.weight, cfg.clip, 10.0,
                    InvalidSteps())
    grads = {n: p.grad.detach().clone() for n, p in net.named_parameters() if p.grad is not None}
    return progress.meters.val["siammask_loss"], grads


def _ddp_worker(rank: int, port: int, config: str, data_root: str, out: str) -> None:
    torch.set_num_threads(1)
    env = {"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(port)}
    os.environ.update(env)
    runtime = init_runtime("cpu")
    try:
        loss, grads = _first_step(runtime, config, data_root, batch=2)
        torch.save({"loss": loss, "grads": grads}, f"{out}.{rank}")
    finally:
        cleanup(runtime)


@pytest.mark.slow
def test_ddp_two_processes_equal_one_process(builtin_root: Path, tmp_path: Path) -> None:
    """2 gloo processes x batch 2 give the first-step loss and gradients of 1 process x batch 4 (rel 1e-5)."""
    config = str(tiny_config(tmp_path, num=8))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = str(tmp_path / "ddp.pt")
    torch.multiprocessing.spawn(_ddp_worker, args=(port, config, str(builtin_root), out), nprocs=2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each DDP process
    try:
        single_loss, single = _first_step(init_runtime("cpu", env={}), config, str(builtin_root), batch=4)
    finally:
        torch.set_num_threads(threads)
    for rank in range(2):
        ddp = torch.load(f"{out}.{rank}", weights_only=True)
        assert math.isclose(ddp["loss"], single_loss, rel_tol=1e-5), (ddp["loss"], single_loss)
        assert ddp["grads"].keys() == single.keys() and len(single) > 30
        largest = max(g.abs().max().item() for g in single.values())
        for name, grad in single.items():
            scale = grad.abs().max().item()
            if scale < 1e-6 * largest:  # a true zero up to rounding (the adjust layer's BN bias, conformance README)
                assert ddp["grads"][name].abs().max().item() < 1e-6 * largest, name
            else:
                torch.testing.assert_close(ddp["grads"][name], grad, rtol=1e-5, atol=1e-5 * scale, msg=name)


# ------------------------------------------------------------------------------------------------------ refine stage
@pytest.mark.slow
def test_refine_stage_changes_only_mask_and_refine(builtin_root: Path, tmp_path: Path) -> None:
    from siammask.models import build_model

    base_ckpt = tmp_path / "base.pth"
    torch.manual_seed(3)
    torch.save({"state_dict": build_model(ROOT / "experiments/siammask_synthetic/config.json").state_dict()},
               base_ckpt)
    config = tiny_config(tmp_path, "sharp.json", num=4, sharp=True)
    losses = train(tmp_path, config, builtin_root, "-b", "2", "--num-steps", "2", "--pretrained", str(base_ckpt),
                   refine=True)
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    seed_everything(12345)  # the tool's default seed, before it builds the model
    initial = build_model(config)
    initial.load_state_dict(torch.load(base_ckpt, weights_only=True)["state_dict"], strict=False)
    before = initial.state_dict()
    state = torch.load(tmp_path / "snap/checkpoint_latest.pth", weights_only=True)
    after = state["state_dict"]
    trainable = ("mask_model.mask.conv_kernel.", "mask_model.mask.conv_search.", "refine_model.")
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith(trainable) for k in changed), sorted(changed - {
        k for k in changed if k.startswith(trainable)})
    assert any(k.startswith("mask_model.") for k in changed) and any(k.startswith("refine_model.") for k in changed)
    assert [g["name"] for g in state["optimizer"]["param_groups"]] == ["mask_model", "refine_model"]
    assert state["arch"] == "siammask_sharp"


def test_refine_tool_rejects_a_base_config(builtin_root: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="refine stage trains siammask_sharp"):
        train(tmp_path, tiny_config(tmp_path), builtin_root, "-b", "2", refine=True)


# ------------------------------------------------------------------------------------------------------ AMP
def test_amp_bf16_runs_on_cpu(builtin_root: Path, tmp_path: Path) -> None:
    losses = train(tmp_path, tiny_config(tmp_path, num=4), builtin_root, "-b", "2", "--num-steps", "2", "--amp")
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    assert "amp bfloat16" in "".join(p.read_text() for p in tmp_path.glob("log*.txt"))


# ------------------------------------------------------------------------------------------------------ invalid loss
class _Stub(nn.Module):
    """A one-parameter 'model' whose losses the test scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"x": self.w * batch["x"].mean()}


def _scripted_losses(values: list[float]):
    calls = iter(values)

    def compute(out: dict[str, torch.Tensor], batch: Any, weights: Any) -> dict[str, torch.Tensor]:
        value = next(calls)
        total = out["x"] * 0 + value
        zero = torch.zeros(())
        return {"cls": total, "loc": zero, "mask": zero, "total": total, "iou_mean": zero, "iou_at_5": zero,
                "iou_at_7": zero}

    return compute


def _stub_epoch(monkeypatch: pytest.MonkeyPatch, losses: list[float], caplog: pytest.LogCaptureFixture,
                invalid: InvalidSteps | None = None):
    invalid = InvalidSteps() if invalid is None else invalid
    monkeypatch.setattr("siammask.training.engine.compute_losses", _scripted_losses(losses))
    model = _Stub()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    runtime = init_runtime("cpu", env={})
    logger = logging.getLogger("test_invalid_loss")
    logger.propagate = True
    progress = ProgressLogger(logger, runtime, 1, 100, total=len(losses))
    loader = [{"x": torch.ones(1, 1)} for _ in losses]
    cfg = load_config(ROOT / "experiments/siammask_base/config.json")
    with caplog.at_level(logging.WARNING, logger="test_invalid_loss"):
        stats = train_one_epoch(model, optimizer, runtime.make_scaler(), loader, runtime, progress,
                                EpochPlan(0, len(losses), 0.1), cfg.loss.weight, cfg.clip, 10.0, invalid)
    return model, stats


def test_invalid_losses_are_skipped_counted_and_logged(monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    model, stats = _stub_epoch(monkeypatch, [1.0, float("nan"), 2e4, 1.0], caplog)
    assert stats.skipped == 2 and stats.iterations == 4
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and "step 2 " in warnings[0] and "total=nan" in warnings[0]
    assert "step 3 " in warnings[1] and "total=20000" in warnings[1] and "optimizer step skipped" in warnings[1]


def test_a_diverged_run_stops_with_an_error(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(TrainingError, match="20 consecutive steps with an invalid loss"):
        _stub_epoch(monkeypatch, [float("inf")] * 25, caplog)


# ------------------------------------------------------------------------------------------------------ clipping
class _Parts(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        for name in ("features", "rpn_model", "mask_model", "refine_model"):
            setattr(self, name, nn.Linear(4, 4))


@pytest.mark.parametrize("clip", [ClipConfig(), ClipConfig(split=True, mask=3.0),
                                  ClipConfig(feature=1.0, rpn=2.0), ClipConfig(feature=1.0, rpn=2.0, mask=0.5)])
def test_gradient_clipping_whole_and_split(clip: ClipConfig) -> None:
    model = _Parts()
    for p in model.parameters():
        p.grad = torch.full_like(p, 10.0)
    clip_gradients(model, clip, default=10.0)
    split = clip.split or clip.feature != clip.rpn
    limits = {"features": clip.feature or 10.0, "rpn_model": clip.rpn or 10.0, "mask_model": clip.mask or 10.0,
              "refine_model": clip.mask or 10.0}
    if split:
        for name, limit in limits.items():
            norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in getattr(model, name).parameters()]))
            assert norm == pytest.approx(limit, rel=1e-4), name
    else:
        norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))
        assert norm == pytest.approx(10.0, rel=1e-4)
