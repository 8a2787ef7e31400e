"""Hydra/OmegaConf helpers shared by `train.py`, `python -m cfrec.data` and the tests."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import OmegaConf

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = PROJECT_ROOT / "conf"


def auto_precision() -> str:
    """bf16-mixed on a GPU, 32-bit on CPU (where bf16 must be chosen explicitly after measuring)."""
    return "bf16-mixed" if torch.cuda.is_available() else "32-true"


def register_resolvers() -> None:
    """`${project_root:}` and `${auto_precision:}` for the YAML files (idempotent)."""
    for name, fn in (("project_root", lambda: str(PROJECT_ROOT)), ("auto_precision", auto_precision)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


register_resolvers()
