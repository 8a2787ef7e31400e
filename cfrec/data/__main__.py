"""`python -m cfrec.data dataset=<preset> [overrides]`: prepare (and cache) a split, print Table 1's counts.

A mistake (an unknown preset or option, a missing or malformed file, no network for a download) is
printed as one line `error: ...` on stderr with exit status 2, without a traceback.
"""

from __future__ import annotations

import json
import logging
import sys

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from hydra.utils import instantiate
from omegaconf.errors import OmegaConfBaseException

from cfrec.config import CONFIG_DIR, check_config
from cfrec.errors import ConfigError, composition_error, exit_status


def main(argv: list[str]) -> int:
    """Prepare the split the overrides describe and print its counts as JSON; 0 on success, 2 on a mistake."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        try:
            with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR), job_name="cfrec.data"):
                cfg = compose("train", overrides=argv, return_hydra_config=False)
        except (HydraException, OmegaConfBaseException) as error:
            text = str(error).split("Config search path")[0]  # Hydra appends its search path to some messages
            raise composition_error(error) or ConfigError(
                " ".join(line.strip() for line in text.splitlines() if line.strip())) from None
        check_config(cfg.dataset, "dataset")
        dm = instantiate(cfg.dataset)
        dm.setup()
    except Exception as error:
        return exit_status(error)
    print(json.dumps(dm.split.counts()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
