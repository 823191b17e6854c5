"""Learning-rate schedules: the original's values (lr_schedules.json) epoch by epoch and group by group.

The optimizer is built by the training engine from the real model, through the same epoch-boundary function the
training loop calls (unfreeze, optimizer rebuild, ``lr_scheduler.step(epoch)``), so the group order, the 0.1x ResNet
group after the unfreeze and the refine stage's two groups are all checked, not only the schedule tables.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from siammask.training.lr_scheduler import SCHEDULES, EpochLRScheduler, build_lr_scheduler, lr_spaces
from siammask.training.optim import OptimizerSettings, start_epoch
from siammask.utils.config import ConfigError, LrConfig, WarmupConfig, load_config

ROOT = Path(__file__).resolve().parents[1]
CASES = {  # conformance entry -> (config, --P)
    "siammask_base": ("experiments/siammask_base/config.json", 1),
    "siammask_base_ascend_1p": ("experiments/siammask_base_ascend/config.json", 1),
    "siammask_base_ascend_8p": ("experiments/siammask_base_ascend/config.json", 8),
    "siammask_sharp": ("experiments/siammask_sharp/config.json", 1),
}


@pytest.fixture(scope="module")
def schedules(conformance_dir: Path) -> dict:
    return json.loads((conformance_dir / "lr_schedules.json").read_text())


def _config(name: str):
    path, factor = CASES[name]
    cfg = load_config(ROOT / path)
    return cfg.scale_lr(factor) if factor != 1 else cfg


@pytest.mark.parametrize("name", CASES)
def test_lr_spaces_match_original(schedules: dict, name: str) -> None:
    ref = schedules["schedules"][name]
    spaces = lr_spaces(_config(name).lr, schedules["epochs"])
    np.testing.assert_allclose(spaces.values, ref["lr_spaces"], rtol=1e-12, atol=0)


@pytest.fixture(scope="module")
def models() -> dict:
    from siammask.models import build_model

    torch.manual_seed(0)
    return {"siammask_base": build_model(ROOT / CASES["siammask_base"][0]),
            "siammask_sharp": build_model(ROOT / CASES["siammask_sharp"][0])}


@pytest.mark.parametrize("name", CASES)
def test_param_group_lrs_match_original(schedules: dict, models: dict, name: str) -> None:
    """Every epoch: same groups in the same optimizer order, same lr per group (rel 1e-12), same printed lr."""
    ref = schedules["schedules"][name]
    cfg = _config(name)
    model = models["siammask_sharp" if name == "siammask_sharp" else "siammask_base"]
    names = {id(p): n for n, p in model.named_parameters()}
    epochs = schedules["epochs"]
    optimizer = scheduler = None
    for epoch in range(epochs):
        optimizer, scheduler, rebuilt = start_epoch(model, epoch, epochs, cfg, OptimizerSettings(), optimizer,
                                                    scheduler)
        if name == "siammask_sharp":
            assert rebuilt, "the refine stage rebuilds its optimizer every epoch"
        columns = []
        for group in optimizer.param_groups:
            prefixes = {c for c in ref["columns"] if all(names[id(p)].startswith(c + ".") for p in group["params"])}
            assert len(prefixes) == 1, f"epoch {epoch}: group {group.get('name')} spans {prefixes}"
            columns.append(prefixes.pop())
        assert columns == ref["param_group_order"][epoch], f"epoch {epoch}"
        for column, expected in zip(ref["columns"], ref["lr"][epoch], strict=True):
            groups = [g for g, c in zip(optimizer.param_groups, columns, strict=True) if c == column]
            if expected is None:
                assert not groups, f"epoch {epoch}: unexpected group {column}"
            else:
                assert len(groups) == 1, f"epoch {epoch}: no group {column}"
                assert math.isclose(groups[0]["lr"], expected, rel_tol=1e-12), (epoch, column, groups[0]["lr"])
        assert math.isclose(scheduler.get_cur_lr(), ref["scheduler_lr"][epoch], rel_tol=1e-12)


def test_unfreeze_rebuilds_optimizer_at_half(models: dict) -> None:
    cfg = load_config(ROOT / CASES["siammask_base"][0])
    model = models["siammask_base"]
    optimizer = scheduler = None
    rebuilt_at = []
    for epoch in range(20):
        optimizer, scheduler, rebuilt = start_epoch(model, epoch, 20, cfg, OptimizerSettings(), optimizer, scheduler)
        if rebuilt:
            rebuilt_at.append(epoch)
    assert rebuilt_at == [0, 10]
    assert [g["name"] for g in optimizer.param_groups] == [
        "features.downsample", "features.features", "rpn_model", "mask_model"]
    assert all(g["momentum"] == 0.9 and g["weight_decay"] == 1e-4 for g in optimizer.param_groups)


def _sgd(lrs: tuple[float, ...] = (1.0,)) -> torch.optim.SGD:
    return torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in lrs], lr=0.1)


def test_every_schedule_type_of_the_original() -> None:
    """Values of each type by the original's formulas (re-derived here), and the warm-up concatenation."""
    e = np.arange(10)
    cases = {
        LrConfig(type="log", start_lr=0.03, end_lr=None): np.logspace(math.log10(0.03), math.log10(5e-4), 10),
        LrConfig(type="step", start_lr=0.01, step=3, mult=0.5): 0.01 * 0.5 ** (e // 3),
        LrConfig(type="step", start_lr=0.001, end_lr=0.008, step=3): 0.001 * 2.0 ** (e // 3),
        LrConfig(type="multi-step", start_lr=0.01, mult=0.1, steps=(3, 7)):
            np.float32([0.01] * 3 + [0.001] * 4 + [0.0001] * 3),
        LrConfig(type="linear", start_lr=0.01, end_lr=0.001): np.linspace(0.01, 0.001, 10),
        LrConfig(type="cos", start_lr=0.01, end_lr=0.001):
            np.float32(0.001 + 0.009 * (1 + np.cos(np.float32(e) * np.pi / 10)) * 0.5),
    }
    assert {c.type for c in cases} == set(SCHEDULES)
    for cfg, expected in cases.items():
        np.testing.assert_allclose(lr_spaces(cfg, 10).values, expected, rtol=1e-6, err_msg=cfg.type)
    warm = LrConfig(type="linear", start_lr=0.01, end_lr=0.001,
                    warmup=WarmupConfig(type="step", start_lr=0.001, end_lr=0.01, step=1, epoch=2))
    spaces = lr_spaces(warm, 10)
    np.testing.assert_allclose(spaces.values, np.concatenate([0.001 * np.sqrt(10) ** np.arange(2),
                                                              np.linspace(0.01, 0.001, 8)]), rtol=1e-12)
    assert spaces.start_lr == 0.01


def test_scheduler_keeps_group_multipliers_and_round_trips_state() -> None:
    optimizer = _sgd((0.01, 0.001))
    scheduler = build_lr_scheduler(optimizer, LrConfig(type="log", start_lr=0.01, end_lr=0.0001), epochs=3)
    scheduler.step(2)
    assert [round(lr, 12) for lr in scheduler.get_last_lr()] == [0.0001, 0.00001]
    other = EpochLRScheduler(_sgd((0.01, 0.001)), lr_spaces(LrConfig(type="log", start_lr=0.01), 3))
    other.load_state_dict(scheduler.state_dict())
    assert other.get_last_lr() == scheduler.get_last_lr() and other.last_epoch == 2
    with pytest.raises(ValueError, match="outside the lr schedule"):
        scheduler.step(3)


def test_bad_schedule_configs_fail_with_a_message() -> None:
    with pytest.raises(ConfigError, match="unknown lr schedule type 'exp'"):
        lr_spaces(LrConfig(type="exp"), 5)
    with pytest.raises(ConfigError, match="does not fit"):
        lr_spaces(LrConfig(warmup=WarmupConfig(epoch=5)), 5)
