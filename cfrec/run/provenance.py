"""What made a result: the code version, the library versions, the precision and the machine (metrics.json's
`provenance`), so that a report can tell runs of different code apart (cfrec.report warns when it compares them)."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CODE_PATHS = ("cfrec", "conf", "train.py", "pyproject.toml")  # what a run's numbers depend on (not docs/, results)


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(PROJECT_ROOT), *args], capture_output=True, text=True, timeout=10,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def code_version() -> dict[str, Any]:
    """{commit, dirty, version}: the checkout's git commit and whether its code differs from it (tracked files
    under CODE_PATHS), or commit/dirty None outside a git checkout; `version` is the installed package's."""
    try:
        version = metadata.version("cfrec")
    except metadata.PackageNotFoundError:
        version = "unknown"
    commit = _git("rev-parse", "HEAD") if (PROJECT_ROOT / ".git").exists() else None
    dirty = None
    if commit is not None:
        status = _git("status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS)
        dirty = None if status is None else bool(status)
    return {"commit": commit, "dirty": dirty, "version": version}


def device_name(accelerator: str) -> str:
    """The GPU's name on cuda, else the CPU's model name (from /proc/cpuinfo, or platform's)."""
    if accelerator == "cuda":
        import torch

        return torch.cuda.get_device_name()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(precision: str | None, accelerator: str) -> dict[str, Any]:
    """metrics.json's `provenance`: code version, torch / Lightning / Python versions, the precision actually used
    (None for a closed-form fit, which has no trainer) and the device."""
    import pytorch_lightning as pl
    import torch

    return {"code": code_version(), "torch": torch.__version__, "lightning": pl.__version__,
            "python": platform.python_version(), "precision": precision, "device": device_name(accelerator)}
