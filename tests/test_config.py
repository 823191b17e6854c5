"""utils.config: the shipped configs load, defaults are the original's, bad files give one-line errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from siammask.utils.config import Config, ConfigError, HpConfig, load_config, load_hp

SHIPPED = sorted(Path(__file__).resolve().parents[1].glob("experiments/*/*.json"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_configs_load_and_round_trip(path: Path) -> None:
    cfg = load_config(path)
    assert cfg.source == str(path)
    assert load_config(cfg.to_dict()) == cfg  # plain data in, same typed config out
    json.dumps(cfg.to_dict())  # checkpoint-storable


def test_base_recipe_values() -> None:
    root = Path(__file__).resolve().parents[1] / "experiments"
    base = load_config(root / "siammask_base/config.json")
    assert base.loss.weight == (1.0, 1.2, 36.0)
    assert (base.lr.start_lr, base.lr.end_lr) == (0.005, 0.0025)
    assert base.lr.warmup is not None and base.lr.warmup.epoch == 5
    assert base.train_datasets is not None and base.train_datasets.num == 600000
    assert base.train_datasets.datasets["coco"].num_use == -1  # all of COCO
    assert base.train_datasets.augmentation.search.shift == 64
    ascend = load_config(root / "siammask_base_ascend/config.json")
    assert ascend.loss.weight == (1.0, 1.0, 32.0) and ascend.lr.end_lr == 0.0005
    sharp = load_config(root / "siammask_sharp/config.json")
    assert sharp.train_datasets is not None and sharp.train_datasets.search_size == 143
    assert sharp.train_datasets.size == 3 and sharp.hp.out_size == 127


def test_tracker_defaults_are_the_originals() -> None:
    hp = HpConfig()
    assert (hp.penalty_k, hp.window_influence, hp.lr, hp.seg_thr) == (0.09, 0.39, 0.38, 0.3)
    assert hp.score_size == 25
    assert HpConfig(instance_size=287).score_size == 29
    assert load_hp(None, {"penalty_k": 0.1}).penalty_k == 0.1


def test_scale_lr_multiplies_every_rate() -> None:
    cfg = load_config(Path(__file__).resolve().parents[1] / "experiments/siammask_base_ascend/config.json")
    scaled = cfg.scale_lr(8)
    assert scaled.lr.start_lr == pytest.approx(0.04) and scaled.lr.end_lr == pytest.approx(0.004)
    assert scaled.lr.warmup.start_lr == pytest.approx(0.008) and scaled.lr.warmup.end_lr == pytest.approx(0.04)
    assert cfg.lr.start_lr == 0.005  # frozen original untouched


@pytest.mark.parametrize("data, key", [
    ({"lr": {"start_lr": 0.1, "end_lrr": 0.01}}, "lr.end_lrr"),
    ({"netwrok": {"arch": "Custom"}}, "netwrok"),
    ({"train_datasets": {"datasets": {"x": {"root": "r", "anno": "a", "frame_rang": 3}}}},
     "train_datasets.datasets.x.frame_rang"),
])
def test_unknown_key_names_key_and_file(tmp_path: Path, data: dict, key: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message and f"'{key}'" in message and "\n" not in message


@pytest.mark.parametrize("data, key", [
    ({"lr": {"start_lr": "0.1"}}, "lr.start_lr"),
    ({"hp": {"instance_size": 255.5}}, "hp.instance_size"),
    ({"anchors": {"ratios": 0.5}}, "anchors.ratios"),
    ({"loss": {"cls": {"split": 1}}}, "loss.cls.split"),
    ({"train_datasets": {"datasets": {"x": {"root": "r"}}}}, "train_datasets.datasets.x.anno"),
])
def test_wrong_type_or_missing_key(tmp_path: Path, data: dict, key: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=f"'{key}'"):
        load_config(path)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{\"lr\": ")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(bad)


def test_size_must_match_crop_geometry(tmp_path: Path) -> None:
    data = {"train_datasets": {"search_size": 255, "template_size": 127, "base_size": 8, "size": 17}}
    with pytest.raises(ConfigError, match="train_datasets.size"):
        load_config(data)


def test_comments_are_ignored() -> None:
    cfg = load_config({"_comment": "x", "hp": {"_note": "y", "lr": 0.3}})
    assert isinstance(cfg, Config) and cfg.hp.lr == 0.3


@pytest.mark.parametrize("datasets, key", [
    ({"num": -5}, "train_datasets.num' is -5"),
    ({"num": 0}, "train_datasets.num' is 0"),
    ({"datasets": {"coco": {"root": "r", "anno": "a", "num_use": -2}}}, "train_datasets.datasets.coco.num_use"),
    ({"datasets": {"coco": {"root": "r", "anno": "a", "frame_range": -1}}}, "coco.frame_range' is -1"),
])
def test_negative_counts_are_refused_not_read_as_all(tmp_path: Path, datasets: dict, key: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"train_datasets": datasets}))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: key '") and key in str(info.value)
    assert load_config({"train_datasets": {"num": -1}}).train_datasets.num == -1  # the documented "all"
