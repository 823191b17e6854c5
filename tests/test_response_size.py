"""The response-map size, declared once (utils.config.response_size), and everything that derives from it."""
from __future__ import annotations

from pathlib import Path

import pytest

from siammask.datasets.anchor_target import AnchorTarget
from siammask.datasets.fake_batch import synthetic_batch
from siammask.tracker import SiamMaskTracker
from siammask.utils.config import AnchorsConfig, AnchorTargetConfig, ConfigError, HpConfig, load_config, response_size

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("search, template, stride, base, expected", [
    (255, 127, 8, 8, 25),  # (255 - 127) / 8 = 16 steps -> 17 cells, + 8: the tracker / training map
    (255, 127, 8, 0, 17),  # the val pairs of the base configs
    (143, 127, 8, 0, 3),  # the sharp stage: 16 / 8 = 2 steps -> 3 cells
    (271, 127, 16, 0, 10),  # 144 / 16 = 9 steps -> 10 cells
    (130, 127, 8, 0, 1),  # floor: 3 / 8 -> 0 steps
])
def test_response_size_hand_values(search: int, template: int, stride: int, base: int, expected: int) -> None:
    assert response_size(search, template, stride, base) == expected


@pytest.mark.parametrize("config", sorted(p.relative_to(REPO).as_posix()
                                          for p in (REPO / "experiments").glob("*/config*.json")))
def test_experiment_configs_agree_with_response_size(config: str) -> None:
    cfg = load_config(REPO / config)
    assert cfg.hp.score_size == response_size(cfg.hp.instance_size, cfg.hp.exemplar_size, cfg.anchors.stride,
                                              cfg.hp.base_size)
    for ds in (cfg.train_datasets, cfg.val_datasets):
        if ds is not None:
            assert ds.size == response_size(ds.search_size, ds.template_size, cfg.anchors.stride, ds.base_size)


def test_disagreeing_strides_are_refused_naming_both_keys() -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"hp": {"total_stride": 16}, "anchors": {"stride": 8}})
    message = str(info.value)
    assert "'hp.total_stride'" in message and "'anchors.stride'" in message and "\n" not in message


def test_dataset_size_disagreeing_with_the_stride_is_refused_naming_the_key() -> None:
    data = {"anchors": {"stride": 16}, "hp": {"total_stride": 16},
            "train_datasets": {"search_size": 255, "template_size": 127, "base_size": 8, "size": 25}}
    with pytest.raises(ConfigError, match=r"'train_datasets.size' is 25.* = 17"):
        load_config(data)


def test_consumers_use_the_shared_size() -> None:
    at = AnchorTarget.for_crops(AnchorTargetConfig(), AnchorsConfig(), 143, 127, 0)
    assert at.shape == (5, 3, 3)
    assert synthetic_batch(1, 143)["label_cls"].shape == (1, 5, 3, 3)
    assert synthetic_batch(1, 255)["label_cls"].shape == (1, 5, 25, 25)
    tracker = SiamMaskTracker(_NoNet(), HpConfig(instance_size=271, base_size=0), "cpu", mask=False,
                              anchors=AnchorsConfig(stride=16))
    assert tracker.score_size == 10 and tracker.anchor.shape == (5 * 10 * 10, 4)


class _NoNet:
    """A model stand-in: the tracker's constructor reads only the anchors and hp."""
