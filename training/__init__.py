"""Training (torchvision-references style): the epoch loop and the parts it composes.

* :mod:`.engine` — :func:`train_one_epoch` (forward, named losses, backward, clip, SGD step) and
  :func:`first_non_finite`;
* :mod:`.invalid_loss` — the original's skip rule for invalid losses, counted across epochs (:class:`InvalidSteps`);
* :mod:`.optim` — SGD over the param groups, the epoch/stage boundary (:func:`start_epoch`), gradient clipping;
* :mod:`.lr_scheduler` — the original's per-epoch lr schedules;
* :mod:`.loader` — the loader of one epoch (DistributedSampler, resume inside an epoch);
* :mod:`.progress` — log lines, tensorboard scalars (one table :data:`LOSS_LOGS`), epoch throughput;
* :mod:`.checkpoint` — plain-data checkpoints, written atomically; resume.

``tools/train_siammask.py`` keeps the command line and ``main``.
"""
from .errors import TrainingError

__all__ = ["TrainingError"]
