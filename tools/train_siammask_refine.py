"""Refine stage of SiamMask (the sharp model): train the mask branch and the refine module on 143-px searches.

Ports `tools/train_siammask_refine.py` of the original SiamMask. It is `tools/train_siammask.py` with the refine-stage
defaults: config ``experiments/siammask_sharp/config.json`` (log lr 0.01 -> 0.0025, loss weights [0, 0, 36]), no
ImageNet backbone, ``--pretrained`` = the trained base checkpoint (its missing ``refine_model`` entries keep their
initialisation). The sharp model's training stage keeps ``features`` and ``rpn_model`` frozen in eval mode (every
BatchNorm included) and trains ``mask_model`` and ``refine_model`` (optimizer groups in that order, both at
``mask_lr_mult``, rebuilt at every epoch as the original).

Example: ``python tools/train_siammask_refine.py --pretrained snapshot/checkpoint_e20.pth -s snapshot_sharp``
"""
from __future__ import annotations

import argparse

from siammask.tools.train_siammask import get_args_parser as _training_parser
from siammask.tools.train_siammask import main, run
from siammask.utils.errors import tool_cli

__all__ = ["get_args_parser", "main", "run", "cli"]


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    """The training flags with the refine stage's defaults."""
    return _training_parser(add_help=add_help, stage="refine")


def cli() -> None:
    """Console script ``siammask-train-refine``."""
    tool_cli(main, get_args_parser)


if __name__ == "__main__":
    cli()
