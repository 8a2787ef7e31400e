"""`python -m cfrec.data dataset=<preset> [overrides]`: prepare (and cache) a split, print Table 1's counts."""

from __future__ import annotations

import json
import sys

from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from cfrec.config import CONFIG_DIR


def main(argv: list[str]) -> None:
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR), job_name="cfrec.data"):
        cfg = compose("train", overrides=argv, return_hydra_config=False)
    dm = instantiate(cfg.dataset)
    dm.setup()
    print(json.dumps(dm.split.counts()))


if __name__ == "__main__":
    main(sys.argv[1:])
