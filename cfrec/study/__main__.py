"""`python -m cfrec.study study.dir=DIR [study.key=value ...] [train.py overrides ...]`: run or finish a study;
`python -m cfrec.study status DIR`: where one stands.

A mistake (an option, a file, a folder holding another study) prints one line `error: ...` on stderr, exit status 2,
before anything is trained; a study left unfinished (runs failed, or running elsewhere) says so, exit status 1.
"""

import os

# as train.py: idle OpenMP workers must sleep, not spin, and this must be set before torch starts OpenMP
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from cfrec.config import CONFIG_DIR
from cfrec.errors import ConfigError, exit_status

log = logging.getLogger("cfrec.study")


def status_main(argv: list[str]) -> int:
    """`status DIR`: print the study's status; 2 with one `error:` line when DIR holds no study."""
    from cfrec.study.status import status

    parser = argparse.ArgumentParser(prog="python -m cfrec.study status", description="Each stage and run of a study, "
                                     "and the time left.")
    parser.add_argument("dir", type=Path, help="the study's folder (its study.dir)")
    args = parser.parse_args(argv)
    try:
        print(status(args.dir))
    except Exception as error:
        return exit_status(error)
    return 0


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="study")
def study_app(cfg: DictConfig) -> None:
    """The study conf/study.yaml and the command line describe, run from wherever it stands."""
    from cfrec.study.stages import StudyIncomplete, run_study

    hc = HydraConfig.get()
    try:
        if hc.mode == RunMode.MULTIRUN:
            raise ConfigError("-m/--multirun: a study is one command (study.rows and study.seeds are its sweep)")
        run_study(cfg, list(hc.overrides.task), list(hc.overrides.hydra), str(hc.runtime.choices["hydra/launcher"]),
                  OmegaConf.to_container(hc.job_logging, resolve=True))
    except StudyIncomplete as incomplete:
        log.error("study not finished: %s", incomplete)
        raise SystemExit(1) from None
    except Exception as error:
        raise SystemExit(exit_status(error)) from None


def main() -> None:
    """Dispatch `status DIR` to its parser, anything else to the Hydra app."""
    if sys.argv[1:2] == ["status"]:
        raise SystemExit(status_main(sys.argv[2:]))
    sys.stdout.reconfigure(line_buffering=True)  # nohup / SLURM: each log line reaches the file when written
    logging.captureWarnings(True)
    study_app()


if __name__ == "__main__":
    main()
