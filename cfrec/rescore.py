"""Add the beyond-accuracy figures to finished runs made before they existed, without retraining:
`python -m cfrec.rescore RUN_OR_SWEEP_DIR [...]`.

For each finished neural run that lacks them, the run's best checkpoint is tested again on its own split
(the config stored in its metrics.json) with today's code; the recomputed test NDCG@100 must equal the stored
one (to 1e-6) or the run is left as it is, since the checkpoint would then not be the model that was scored.
Then coverage@100, gini@100 and popularity@100 join its `test` block and `by_activity` is added; metrics.json
is rewritten atomically with `rescored` naming when. Closed-form runs are not rescored (refit them instead).
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import OmegaConf

from cfrec.beyond_accuracy import BEYOND_K
from cfrec.config import build_model
from cfrec.errors import DataError
from cfrec.models.base import CFModule
from cfrec.rankings import run_list_figures
from cfrec.report.collect import find_run_dirs
from cfrec.run.record import RunRecord
from cfrec.run.result import FILENAME, RunResult

log = logging.getLogger(__name__)
TOLERANCE = 1e-6


def needs_rescore(result: RunResult | dict[str, Any]) -> bool:
    """A finished run whose test block lacks the beyond-accuracy figures (`result`: or metrics.json's content)."""
    result = result if isinstance(result, RunResult) else RunResult.from_json(result)
    return result.status == "ok" and "coverage@100" not in (result.test or {})


def best_checkpoint(run_dir: Path, result: RunResult) -> Path:
    """The run's best checkpoint: metrics.json's `best_checkpoint` if it is still there, else the one
    under `run_dir/checkpoints` (the folder may have moved since)."""
    stored = Path(result.best_checkpoint or "")
    for path in (stored, run_dir / "checkpoints" / stored.name):
        if stored.name and path.is_file():
            return path
    raise DataError(f"{run_dir}: no best checkpoint to rescore (metrics.json names "
                    f"{stored or 'none'}, and {run_dir / 'checkpoints'} does not hold it)")


def rescore(run_dir: Path, result: RunResult | None = None) -> RunResult:
    """Test the run's best checkpoint again and add the beyond-accuracy figures to its metrics.json (`result`:
    what it holds, when the caller has read it already)."""
    result = result if result is not None else RunResult.read(run_dir)
    ckpt = best_checkpoint(run_dir, result)
    cfg = OmegaConf.create(result.config)
    dm = instantiate(cfg.dataset)
    dm.setup()
    model = build_model(cfg.model, dm.n_items)
    if not isinstance(model, CFModule):
        raise DataError(f"{run_dir}: a closed-form model ({type(model).__name__}) is refit, not rescored")
    model.top_k = BEYOND_K
    record = RunRecord()
    trainer = pl.Trainer(accelerator="cpu", devices=1, precision=cfg.trainer.get("precision", "32-true"),
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[record])
    trainer.test(model, datamodule=dm, ckpt_path=str(ckpt), verbose=False, weights_only=False)
    stored, now = result.test["ndcg@100"], record.evaluated["test"].summary["ndcg@100"]
    if not math.isclose(stored, now, rel_tol=0, abs_tol=TOLERANCE):
        raise DataError(f"{run_dir}: {ckpt.name} gives test NDCG@100 {now:.6f}, metrics.json holds {stored:.6f}; "
                        f"not rescored")
    items, scores = (t.numpy() for t in record.test_top)
    beyond, by_activity = run_list_figures(dm.split, items, scores)
    result = result.replace(
        test={**result.test, **beyond}, by_activity={"test": by_activity},
        rescored={"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "checkpoint": str(ckpt)})
    result.write(run_dir)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cfrec.rescore", description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="+", help="run or sweep directories (searched recursively)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    for name in ("pytorch_lightning", "lightning", "lightning_fabric"):  # a test loop's chatter, not the result
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    failed = 0
    for root in args.dirs:
        for run_dir in find_run_dirs(Path(root)):
            try:
                if not (run_dir / FILENAME).is_file() or not needs_rescore(result := RunResult.read(run_dir)):
                    continue
                test = rescore(run_dir, result).test
            except DataError as e:
                failed += 1
                print(f"error: {e}", file=sys.stderr)
                continue
            print(f"{run_dir}: coverage@100 {test['coverage@100']:.4f}  gini@100 {test['gini@100']:.4f}  "
                  f"popularity@100 {test['popularity@100']:.4f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
