"""The paper's grids as Hydra sweeps: presets compose to the paper's rows, loggers / launchers / Optuna compose,
and tiny real sweeps run end to end (subprocesses of train.py on a small synthetic dataset)."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.utils import create_config_search_path
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from cfrec.config import CONFIG_DIR, PROJECT_ROOT
from cfrec.report.paper import load_paper
from cfrec.report.rows import derive_row, row_label, rows
from tests.conftest import compose_train, row_model

ROWS = sorted(p.stem for p in (CONFIG_DIR / "row").glob("*.yaml"))
TINY = ["dataset=synthetic", "dataset.synthetic.n_users=300", "dataset.synthetic.n_items=200",
        "dataset.heldout_users=50", "trainer.max_epochs=1"]


def _compose(overrides: list[str]):
    return compose_train(*overrides, debug=False, hydra=True)


def _sweep_rows(experiment: str) -> list[str]:
    """The rows a preset sweeps, as Hydra's sweeper expands its `row` parameter (a list, or a glob over conf/row)."""
    cfg = _compose([f"experiment={experiment}"])
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"  # the preset is a sweep without `-m`
    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(CONFIG_DIR)))
    overrides = OverridesParser.create(config_loader=loader).parse_overrides([f"row={cfg.hydra.sweeper.params.row}"])
    return [job[0].removeprefix("row=") for job in BasicSweeper.split_arguments(overrides, None)[0]]


def _missing_model(row: str) -> str | None:
    """The model config a row needs when another engineer has not written it yet."""
    model = row_model(row)
    return None if (CONFIG_DIR / "model" / f"{model}.yaml").exists() else model


def test_presets_sweep_the_papers_rows():
    """table2 / table3 sweep the rows whose files name that table, in the paper's order; extended sweeps every row
    file but the β search (a copied row file joins it)."""
    paper = load_paper()
    for table in ("table2", "table3"):
        swept = _sweep_rows(table)
        assert sorted(swept) == sorted(name for name, row in rows().items() if table in row.tables)
        published = [p.model for p in paper if p.table == table and p.dataset == "ml-20m"]
        assert [row_label(r) for r in swept] == published  # same rows, same order as the paper
    assert _sweep_rows("extended") == [r for r in ROWS if r != "beta_search"]
    assert not rows()["beta_search"].tables
    published_extended = {p.model for p in paper if p.table == "extended"}
    assert published_extended <= {row.label for row in rows().values() if "extended" in row.tables}


def test_table2_grid_and_beta_search():
    cfg = _compose(["experiment=table2_grid"])
    assert dict(cfg.hydra.sweeper.params) == {"likelihood": "multinomial,logistic,gaussian",
                                              "beta": "anneal,constant,zero"}
    cfg = _compose(["experiment=beta_search"])
    assert cfg.beta._target_.endswith("Search") and cfg.row == "beta_search"


@pytest.mark.parametrize("row", ROWS)
def test_row_composes_and_reads_back_as_itself(row: str):
    """Each conf/row/<row>.yaml composes, and the report's derivation from its choices gives the same row."""
    if missing := _missing_model(row):
        pytest.skip(f"conf/model/{missing}.yaml is not written yet")
    cfg = _compose(["experiment=extended", f"row={row}"])
    assert cfg.row == row
    choices = dict(cfg.hydra.runtime.choices)
    assert choices["row"] == row
    config = OmegaConf.to_container(cfg.model, resolve=False)
    assert derive_row(choices, {"model": config}) == row
    assert rows()[row].label


def test_row_overrides_of_the_vae_rows():
    vamp = _compose(["experiment=table3", "row=vae_vamp"])
    assert vamp.prior._target_.endswith("VampPrior") and vamp.likelihood._target_.endswith("Multinomial")
    reg = _compose(["experiment=table3", "row=vae_reg"])
    assert reg.model.l2 == 0.01 and reg.beta._target_.endswith("Anneal")
    logistic = _compose(["experiment=table2", "row=logistic"])
    assert logistic.likelihood._target_.endswith("Logistic") and logistic.beta._target_.endswith("Zero")
    # the command line still wins over a row (here: a shorter RecVAE run)
    recvae = _compose(["experiment=extended", "row=recvae", "trainer.max_epochs=2"])
    assert recvae.trainer.max_epochs == 2
    single = _compose(["+row=vae_vamp"])  # one row without a preset
    assert single.prior._target_.endswith("VampPrior")


def test_logger_launcher_trainer_and_optuna_configs():
    default = _compose(["logger=default"])
    assert set(default.logger) == {"csv", "wandb"}
    assert default.logger.wandb._target_ == "cfrec.loggers.wandb_logger"
    assert set(_compose(["logger=csv"]).logger) == {"csv"}
    assert not _compose(["logger=none"]).get("logger")
    slurm = _compose(["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4"])
    launcher = slurm.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.gpus_per_node == launcher.tasks_per_node == 4 and launcher.nodes == 1
    assert slurm.trainer.strategy == "ddp"
    optuna = _compose(["hparams_search=mult_vae_optuna"])
    sweeper = optuna.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.direction == "maximize"
    assert set(sweeper.params) == {"beta.cap", "model.encoder.dropout", "model.lr"}
    assert optuna.optimized_metric == "val/ndcg@100"


# ------------------------------------------------------------------------------------------ real sweeps

def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"CFREC_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline",
                "WANDB_SILENT": "true", "WANDB_DIR": str(tmp_path / "wandb"),
                "WANDB_CACHE_DIR": str(tmp_path / "wandb" / "cache"),
                "WANDB_CONFIG_DIR": str(tmp_path / "wandb" / "config"),
                "WANDB_DATA_DIR": str(tmp_path / "wandb" / "data"), "HYDRA_FULL_ERROR": "1"})
    env.pop("WANDB_API_KEY", None)
    return env


def _train(tmp_path: Path, *overrides: str, timeout: int = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "train.py", *overrides], cwd=PROJECT_ROOT, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _report(*args: str, tmp_path: Path) -> str:
    proc = subprocess.run([sys.executable, "-m", "cfrec.report", *args], cwd=PROJECT_ROOT, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_table2_sweep_end_to_end(tmp_path: Path):
    """`python train.py -m experiment=table2 ...` runs every row; the report prints them beside the paper."""
    sweep = tmp_path / "sweep"
    _train(tmp_path, "-m", "experiment=table2", *TINY, "logger=none", f"hydra.sweep.dir={sweep}")
    runs = sorted(glob.glob(str(sweep / "*" / "metrics.json")))
    assert len(runs) == 3
    assert all((Path(r).parent / ".hydra" / "config.yaml").is_file() for r in runs)
    out = _report(str(sweep), "--out", str(tmp_path / "report"), tmp_path=tmp_path)
    assert "### Table 2: synthetic (published columns: ML-20M, for reference only)" in out
    for label, r20 in (("Mult-VAE", "0.395"), ("Multinomial", "0.386"), ("Logistic", "0.390")):
        line = next(ln for ln in out.splitlines() if ln.startswith(f"| {label} |"))
        assert "1 run†" in line and f"| {r20} |" in line
    for name in ("report.md", "results.csv", "runs.csv", "val_ndcg_100_synthetic.png"):
        assert (tmp_path / "report" / name).stat().st_size > 0


def _wandb_file(run_dir: Path) -> bytes:
    files = list(run_dir.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(files) == 1, list(run_dir.rglob("*"))
    data = files[0].read_bytes()
    assert data and b"val/ndcg@100" in data and b"test/ndcg@100" in data
    return data


def test_default_logger_writes_an_offline_wandb_run(tmp_path: Path):
    """logger=default: a CSV log and an offline W&B run holding the logged metrics (no network, no account)."""
    run_dir = tmp_path / "run"
    _train(tmp_path, "model=mult", "seed=3", *TINY, "logger=default", f"hydra.run.dir={run_dir}")
    assert "val/ndcg@100" in (run_dir / "csv" / "metrics.csv").read_text().splitlines()[0]
    data = _wandb_file(run_dir)
    assert b"seed=3" in data and b"model=mult" in data and b"dataset=synthetic" in data


@pytest.mark.slow
def test_wandb_one_run_per_sweep_job(tmp_path: Path):
    """In a sequential sweep every job gets its own W&B run (not the first job's), grouped by the sweep."""
    sweep = tmp_path / "sweep"
    _train(tmp_path, "-m", "model=mult", "seed=1,2", *TINY, "logger=default", f"hydra.sweep.dir={sweep}")
    ids = set()
    for seed, other in ((1, 2), (2, 1)):
        run_dir = next(sweep.glob(f"*seed={seed}*"))
        data = _wandb_file(run_dir)
        ids.add(next(run_dir.glob("wandb/offline-run-*")).name.rsplit("-", 1)[1])
        # the run name is <row or model>-<dataset>-s<seed>; the other job's name must not be in this run
        assert f"mult-synthetic-s{seed}".encode() in data and f"mult-synthetic-s{other}".encode() not in data
        assert sweep.name.encode() in data  # the W&B group names the sweep
    assert len(ids) == 2


@pytest.mark.slow
def test_optuna_two_trials(tmp_path: Path):
    sweep = tmp_path / "optuna"
    _train(tmp_path, "hparams_search=mult_vae_optuna", "hydra.sweeper.n_trials=2",
           "hydra.sweeper.sampler.n_startup_trials=2", *TINY, "logger=none", f"hydra.sweep.dir={sweep}")
    results = OmegaConf.load(sweep / "optimization_results.yaml")
    assert set(results.best_params) == {"beta.cap", "model.encoder.dropout", "model.lr"}
    assert 0.0 < results.best_value <= 1.0
    assert len(list(sweep.glob("*/metrics.json"))) == 2


@pytest.mark.slow
def test_submitit_local_sweep(tmp_path: Path):
    """The SLURM machinery (submitit) run locally: two jobs, each in its own process."""
    sweep = tmp_path / "submitit"
    _train(tmp_path, "-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5", "model=mult",
           "seed=1,2", *TINY, "logger=none", f"hydra.sweep.dir={sweep}")
    assert len(list(sweep.glob("*/metrics.json"))) == 2
    assert list(sweep.glob(".submitit/*/*_result.pkl"))
