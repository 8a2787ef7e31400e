"""Entry point: `python train.py [overrides]`, or a sweep: `python train.py -m model=mult,sivae ...`.

Rerunning a command with the same output directory (`hydra.run.dir=...`) resumes it from its last
checkpoint (docs/reliability.md).
"""

import os

# Idle OpenMP workers that spin steal the main thread's time on a shared or oversubscribed CPU (measured:
# 4-9x slower training on a loaded 2-core machine); must be set before torch starts OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import logging  # noqa: E402
import math  # noqa: E402

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from hydra.types import RunMode  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from cfrec.config import CONFIG_DIR  # noqa: E402
from cfrec.training import RunInterrupted, describe_error, record_failure, run  # noqa: E402

log = logging.getLogger("cfrec")


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def main(cfg: DictConfig) -> float:
    """One run; in a sweep a failing run is recorded in its metrics.json and the sweep goes on.

    SIGTERM / Ctrl-C during training records status "interrupted" and stops (a sweep too), with
    exit status 143 / 130.
    """
    hc = HydraConfig.get()
    choices = dict(hc.runtime.choices)
    try:
        return run(cfg, hc.runtime.output_dir, choices)["val"]["ndcg@100"]
    except RunInterrupted as interrupted:
        record_failure(cfg, hc.runtime.output_dir, choices, interrupted, status="interrupted")
        log.error("%s", interrupted)
        raise SystemExit(interrupted.exit_code) from None
    except Exception as error:
        record_failure(cfg, hc.runtime.output_dir, choices, error)
        if hc.mode != RunMode.MULTIRUN:
            raise
        log.error("run %s failed (%s); the sweep goes on", hc.runtime.output_dir, describe_error(error))
        return math.nan


if __name__ == "__main__":
    main()
