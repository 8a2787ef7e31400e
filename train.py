"""Entry point: `python train.py [overrides]`, or a sweep: `python train.py -m model=mult,sivae ...`.

Rerunning a command with the same output directory (`hydra.run.dir=...`) resumes it from its last
checkpoint (docs/reliability.md).
"""

import os

# Idle OpenMP workers that spin steal the main thread's time on a shared or oversubscribed CPU (measured:
# 4-9x slower training on a loaded 2-core machine); must be set before torch starts OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import logging
import math
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from cfrec.config import CONFIG_DIR, check_config
from cfrec.errors import composition_error, find_user_error

log = logging.getLogger("cfrec")


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def main(cfg: DictConfig) -> float:
    """One run; in a sweep a failing run is recorded in its metrics.json and the sweep goes on.

    A user mistake (cfrec.errors.UserError: an option, a file, missing data) is printed as one line
    `error: ...` on stderr, exit status 2, without a traceback; any other error is a bug and keeps its
    traceback. SIGTERM / Ctrl-C during training records status "interrupted" and stops (a sweep too),
    with exit status 143 / 130.
    """
    from cfrec.run.training import RunInterrupted, describe_error, record_failure, run  # torch etc.: not for --help

    hc = HydraConfig.get()
    choices = dict(hc.runtime.choices)
    try:
        check_config(cfg)
        return run(cfg, hc.runtime.output_dir, choices)["val"]["ndcg@100"]
    except RunInterrupted as interrupted:
        record_failure(cfg, hc.runtime.output_dir, choices, interrupted, status="interrupted")
        log.error("%s", interrupted)
        raise SystemExit(interrupted.exit_code) from None
    except Exception as error:
        record_failure(cfg, hc.runtime.output_dir, choices, error)
        mistake = find_user_error(error)
        if hc.mode == RunMode.MULTIRUN:
            reason = f"error: {mistake}" if mistake else describe_error(error)
            log.error("run %s failed (%s); the sweep goes on", hc.runtime.output_dir, reason)
            return math.nan
        if mistake is None:
            raise
        print(f"error: {mistake}", file=sys.stderr)
        raise SystemExit(2) from None


def cli() -> None:
    """`main` under Hydra, with Hydra's own errors composing the config (an unknown preset, an override its
    parser rejects, a misspelt key) as one line `error: ...` and exit status 2, like the run's own mistakes.

    Hydra prints those itself, on several lines, unless HYDRA_FULL_ERROR=1 lets them through: cfrec sets it to
    catch them. A user who sets HYDRA_FULL_ERROR=1 gets Hydra's full traceback instead.
    """
    debugging = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        main()
    except Exception as error:
        mistake = None if debugging else composition_error(error)
        if mistake is None:
            raise
        print(f"error: {mistake}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # nohup / SLURM: each log line reaches the file when written
    logging.captureWarnings(True)  # warnings go through the run's logging: train.log, and the console unless harmless
    cli()
