"""Learning-rate schedules: the factor on the base learning rate at each point of training.

A schedule maps the fraction of the training budget done, ``progress`` in [0, 1], to a factor
on ``lr``. Decaying to (near) zero by the end of the budget lets the last steps settle into a
minimum instead of rattling around it at full step size (Loshchilov & Hutter 2017, SGDR;
Smith & Topin 2017, one-cycle; Chen et al. 2021 on decay-to-zero).
"""

from __future__ import annotations

import math
from enum import StrEnum


class ScheduleKind(StrEnum):
    """The schedules aecli knows, by their ``--schedule`` names."""

    NONE = "none"
    WSD = "wsd"
    COSINE = "cosine"
    LINEAR = "linear"
    ONECYCLE = "onecycle"


# One-cycle: a warm-up from lr/25 over the first 30% of the budget, then a cosine decay to
# lr/1e4 (Smith & Topin's shape, PyTorch's OneCycleLR defaults).
_WARMUP, _START, _END = 0.3, 1 / 25, 1e-4
# Warm-up, stable, decay (Hu et al. 2024, MiniCPM; Hägele et al. 2024): a short warm-up, the
# full rate for most of the budget, and a cosine decay to zero over its last fifth.
_WSD_WARMUP, _WSD_DECAY = 0.02, 0.8


def lr_factor(kind: ScheduleKind, progress: float) -> float:
    """The factor on the base learning rate once ``progress`` (0..1) of the budget is done."""
    p = min(max(progress, 0.0), 1.0)
    if kind is ScheduleKind.NONE:
        return 1.0
    if kind is ScheduleKind.COSINE:
        return 0.5 * (1.0 + math.cos(math.pi * p))
    if kind is ScheduleKind.LINEAR:
        return 1.0 - p
    if kind is ScheduleKind.WSD:
        if p < _WSD_WARMUP:
            return (p + 1e-3) / (_WSD_WARMUP + 1e-3)
        if p < _WSD_DECAY:
            return 1.0
        return 0.5 * (1.0 + math.cos(math.pi * (p - _WSD_DECAY) / (1.0 - _WSD_DECAY)))
    if p < _WARMUP:
        return _START + (1.0 - _START) * p / _WARMUP
    q = (p - _WARMUP) / (1.0 - _WARMUP)
    return _END + (1.0 - _END) * 0.5 * (1.0 + math.cos(math.pi * q))
