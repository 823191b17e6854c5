"""Typed experiment configuration: `experiments/<name>/config.json` parsed into frozen dataclasses.

Ports `utils/config_helper.load_config` and `utils/tracker_config.TrackerConfig` of the original SiamMask. Every key
the original reads is declared here once, with the original's default. Merging is strict: an unknown or misspelt
key, or a value of the wrong type, raises :class:`ConfigError` with one line naming the file and the key.

Deviations from the original:
* the Ascend port multiplied the learning rates by ``--P`` while loading; here that is :meth:`Config.scale_lr`, called
  by the training script, so loading a file never depends on command-line flags;
* keys that start with ``_`` are comments and are ignored;
* ``train_datasets.skip_bad`` and ``datasets.<name>.has_mask`` are new (documented below).
"""
from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from .errors import SiamMaskError


class ConfigError(SiamMaskError):
    """A config file is missing, malformed, or holds an unknown key or a value of the wrong type."""


def response_size(search_size: int, template_size: int, stride: int, base_size: int) -> int:
    """Side of the RPN response map: (search - template) // stride + 1 + base_size.

    The one formula the config, the anchor targets, the tracker and the fake training batch share: 25 for
    255/127/8/8 (the tracker and the training pairs), 17 for 255/127/8/0, 3 for 143/127/8/0 (the sharp stage).
    """
    return (search_size - template_size) // stride + 1 + base_size


@dataclass(frozen=True)
class NetworkConfig:
    arch: str = "Custom"  # model name in models.MODELS; "Custom" = the original's name (base or sharp by hp.out_size)


@dataclass(frozen=True)
class HpConfig:
    """Tracker hyper-parameters (the original's TrackerConfig defaults)."""

    penalty_k: float = 0.09  # scale/ratio change penalty
    window_influence: float = 0.39  # weight of the cosine window in the final score
    lr: float = 0.38  # size smoothing rate
    seg_thr: float = 0.3  # mask probability threshold for the polygon
    windowing: str = "cosine"  # 'cosine' or 'uniform'
    exemplar_size: int = 127  # template crop size
    instance_size: int = 255  # search crop size
    total_stride: int = 8  # backbone stride
    out_size: int = 63  # mask side: 63 (base mask head) or 127 (sharp refine)
    base_size: int = 8  # extra response cells beyond (instance - exemplar) / stride + 1
    context_amount: float = 0.5  # context added around the target: (w + h) * context_amount

    @property
    def score_size(self) -> int:
        """Side of the response map, :func:`response_size` of instance/exemplar/total_stride/base_size (25)."""
        return response_size(self.instance_size, self.exemplar_size, self.total_stride, self.base_size)


@dataclass(frozen=True)
class WarmupConfig:
    type: str = "step"  # scheduler type used for the warm-up epochs
    start_lr: float = 0.001
    end_lr: float = 0.005
    step: int = 1  # epochs per step (step scheduler)
    epoch: int = 5  # number of warm-up epochs
    mult: Optional[float] = None  # step multiplier; derived from start/end when absent


@dataclass(frozen=True)
class LrConfig:
    type: str = "log"  # log | step | multi-step | linear | cos
    start_lr: float = 0.03
    end_lr: Optional[float] = None  # None: the scheduler's own default (log: 5e-4)
    step: int = 10  # step scheduler: epochs per step
    mult: Optional[float] = None  # step / multi-step multiplier
    steps: tuple[int, ...] = (10, 20, 30, 40)  # multi-step milestones
    feature_lr_mult: float = 1.0  # backbone adjust layer (ResNet layers get a further 0.1x)
    rpn_lr_mult: float = 1.0
    mask_lr_mult: float = 1.0  # mask head (and refine module in the sharp stage)
    warmup: Optional[WarmupConfig] = None


@dataclass(frozen=True)
class LossRegConfig:
    loss: str = "L1Loss"  # declared by the original, unused (the box loss is always the weighted L1)


@dataclass(frozen=True)
class LossClsConfig:
    split: bool = True  # declared by the original, unused


@dataclass(frozen=True)
class LossConfig:
    weight: tuple[float, ...] = (1.0, 1.0, 36.0)  # cls, loc, mask
    reg: LossRegConfig = field(default_factory=LossRegConfig)
    cls: LossClsConfig = field(default_factory=LossClsConfig)


@dataclass(frozen=True)
class ClipConfig:
    feature: Optional[float] = None  # None: --clip
    rpn: Optional[float] = None
    mask: Optional[float] = None
    split: bool = False  # clip backbone / rpn / mask (/ refine) separately


@dataclass(frozen=True)
class AnchorsConfig:
    stride: int = 8
    ratios: tuple[float, ...] = (0.33, 0.5, 1.0, 2.0, 3.0)
    scales: tuple[float, ...] = (8.0,)
    round_dight: int = 0  # (sic, the original's key) digits kept when rounding anchor sizes; 0 = int()

    @property
    def anchor_num(self) -> int:
        return len(self.ratios) * len(self.scales)


@dataclass(frozen=True)
class AugBranchConfig:
    shift: float = 0.0  # max shift in pixels
    scale: float = 0.0  # max relative scale change
    blur: float = 0.0  # probability of motion blur
    resize: bool = False  # declared by the original, disabled
    flip: float = 0.0  # probability of a horizontal flip


@dataclass(frozen=True)
class AugmentationConfig:
    template: AugBranchConfig = field(default_factory=AugBranchConfig)
    search: AugBranchConfig = field(default_factory=AugBranchConfig)
    neg: float = 0.0  # probability of a negative pair
    gray: float = 0.0  # probability of a grey pair
    inner_neg: float = 0.0  # probability that a negative comes from the same sub-dataset


@dataclass(frozen=True)
class SubDatasetConfig:
    root: str  # crop511 folder; relative paths are resolved against the data root
    anno: str  # index json; relative to the data root likewise
    num_use: int = -1  # videos drawn per round; -1 = all
    frame_range: int = 100  # max frame-list distance between template and search
    path_format: str = "{}.{}.{}.jpg"  # frame, track, 'x'
    mask_format: str = "{}.{}.m.png"  # frame, track
    has_mask: Optional[bool] = None  # None: True for 'coco' and 'ytb_vos' (the original's rule)


@dataclass(frozen=True)
class AnchorTargetConfig:
    thr_high: float = 0.6
    thr_low: float = 0.3
    positive: int = 16
    negative: int = 16  # candidates kept for a negative pair
    rpn_batch: int = 64


@dataclass(frozen=True)
class DatasetsConfig:
    datasets: dict[str, SubDatasetConfig] = field(default_factory=dict)
    template_size: int = 127
    search_size: int = 255
    base_size: int = 8
    size: int = 25  # response map side; must equal (search - template) / stride + 1 + base_size
    num: int = -1  # samples per epoch; -1 = the sum of the sub-datasets' num_use
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)
    anchor_target: AnchorTargetConfig = field(default_factory=AnchorTargetConfig)
    skip_bad: bool = False  # replace unreadable samples (with a warning and a count) instead of failing


@dataclass(frozen=True)
class Config:
    """One experiment: the whole of a config.json."""

    network: NetworkConfig = field(default_factory=NetworkConfig)
    hp: HpConfig = field(default_factory=HpConfig)
    lr: LrConfig = field(default_factory=LrConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    clip: ClipConfig = field(default_factory=ClipConfig)
    anchors: AnchorsConfig = field(default_factory=AnchorsConfig)
    train_datasets: Optional[DatasetsConfig] = None
    val_datasets: Optional[DatasetsConfig] = None
    source: str = field(default="<dict>", compare=False)  # file it came from (not a config key)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (the config.json keys), e.g. to store in a checkpoint."""
        out = _to_plain(self)
        out.pop("source", None)
        return out

    def replace(self, **changes: Any) -> "Config":
        """A copy with top-level sections replaced."""
        return dataclasses.replace(self, **changes)

    def scale_lr(self, factor: float) -> "Config":
        """Multiply start/end lr and the warm-up's start/end lr by `factor` (the Ascend port's `--P` scaling)."""
        lr = self.lr
        warmup = lr.warmup
        if warmup is not None:
            warmup = dataclasses.replace(warmup, start_lr=warmup.start_lr * factor, end_lr=warmup.end_lr * factor)
        end = None if lr.end_lr is None else lr.end_lr * factor
        return self.replace(lr=dataclasses.replace(lr, start_lr=lr.start_lr * factor, end_lr=end, warmup=warmup))


def _to_plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v) for v in obj]
    return obj


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp) if a is not type(None))
    if origin in (tuple, list):
        return "list"
    if origin is dict:
        return "object"
    if dataclasses.is_dataclass(tp):
        return "object"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, key: str, source: str) -> Any:
    """Check `value` against the annotation `tp` and convert it (lists -> tuples, dicts -> dataclasses)."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(value, args[0], key, source)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: key '{key}' must be an object, got {type(value).__name__}")
        return _build(tp, value, key, source)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: key '{key}' must be an object, got {type(value).__name__}")
        _, vtp = typing.get_args(tp)
        return {k: _convert(v, vtp, f"{key}.{k}", source) for k, v in value.items() if not k.startswith("_")}
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: key '{key}' must be a list, got {type(value).__name__}")
        (etp, *_) = typing.get_args(tp)
        return tuple(_convert(v, etp, f"{key}[{i}]", source) for i, v in enumerate(value))
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{source}: key '{key}' must be a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            raise ConfigError(f"{source}: key '{key}' must be an integer, got {value!r}")
        return int(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: key '{key}' must be true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: key '{key}' must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config annotation {tp!r} for {key}")  # a bug in this module, not in the file


def _build(cls: type, data: dict[str, Any], prefix: str, source: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.name != "source"}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key.startswith("_"):
            continue
        full = f"{prefix}.{key}" if prefix else key
        if key not in names:
            raise ConfigError(f"{source}: unknown key '{full}' (valid keys here: {', '.join(sorted(names))})")
        kwargs[key] = _convert(value, hints[key], full, source)
    missing = [f.name for f in dataclasses.fields(cls)
               if f.name not in kwargs and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        full = f"{prefix}.{missing[0]}" if prefix else missing[0]
        raise ConfigError(f"{source}: missing required key '{full}'")
    return cls(**kwargs)


def load_config(config: Union[str, os.PathLike, dict, Config]) -> Config:
    """Load a config.json path, a dict with its content, or pass a Config through.

    Raises:
        ConfigError: the file is missing or not JSON, or a key is unknown or of the wrong type; the message is one
            line naming the file and the key. The response-map size is checked against the crop sizes too.
    """
    if isinstance(config, Config):
        return config
    if isinstance(config, dict):
        data, source = config, "<dict>"
    else:
        source = os.fspath(config)
        try:
            with open(source, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            raise ConfigError(f"{source}: config file not found") from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"{source}: not valid JSON ({e.msg} at line {e.lineno})") from None
        except OSError as e:
            raise ConfigError(f"{source}: cannot read ({e.strerror})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a JSON object")
    cfg = dataclasses.replace(_build(Config, data, "", source), source=source)
    for name in ("train_datasets", "val_datasets"):
        ds = getattr(cfg, name)
        if ds is None:
            continue
        if ds.num != -1 and ds.num <= 0:
            raise ConfigError(f"{source}: key '{name}.num' is {ds.num}; samples per epoch must be positive, or -1 "
                              f"for the sum of the sub-datasets' num_use")
        for sub_name, sub in ds.datasets.items():
            if sub.num_use != -1 and sub.num_use <= 0:
                raise ConfigError(f"{source}: key '{name}.datasets.{sub_name}.num_use' is {sub.num_use}; videos per "
                                  f"round must be positive, or -1 for all")
            if sub.frame_range < 0:
                raise ConfigError(f"{source}: key '{name}.datasets.{sub_name}.frame_range' is {sub.frame_range}; "
                                  f"it must be >= 0")
        expected = response_size(ds.search_size, ds.template_size, cfg.anchors.stride, ds.base_size)
        if ds.size != expected:
            raise ConfigError(f"{source}: key '{name}.size' is {ds.size}, but (search_size - template_size) / "
                              f"stride + 1 + base_size = {expected}")
    if cfg.hp.total_stride != cfg.anchors.stride:
        raise ConfigError(f"{source}: key 'hp.total_stride' is {cfg.hp.total_stride}, but key 'anchors.stride' is "
                          f"{cfg.anchors.stride} (the response map has one stride)")
    if cfg.hp.windowing not in ("cosine", "uniform"):
        raise ConfigError(f"{source}: key 'hp.windowing' must be 'cosine' or 'uniform', got {cfg.hp.windowing!r}")
    if len(cfg.loss.weight) != 3:
        raise ConfigError(f"{source}: key 'loss.weight' must hold 3 numbers (cls, loc, mask)")
    return cfg


def load_hp(path: Union[str, os.PathLike, None], overrides: Optional[dict[str, Any]] = None) -> HpConfig:
    """Tracker hyper-parameters: the hp block of a config file (or the defaults), then `overrides` (e.g. tuning)."""
    hp = load_config(path).hp if path is not None else HpConfig()
    if overrides:
        hp = _build(HpConfig, {**_to_plain(hp), **overrides}, "hp", "<overrides>")
    return hp
