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
from cfrec.errors import ConfigError
from cfrec.report.paper import load_paper
from cfrec.report.rows import NODES, derive_row, row_label, rows, table_rows
from cfrec.run.loggers import run_tags, wandb_logger
from cfrec.run.naming import job_dir
from cfrec.run.progress import sweep_summary
from tests.conftest import compose_train, row_model
from tests.test_console import wandb_run

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


def test_presets_sweep_the_papers_rows():
    """table2 / table3 sweep the rows whose files name that table (`report.tables`), the paper's in its order (a
    copied row file tagged for the table joins it, after them: tests/report/test_rows.py); extended sweeps every row
    file but the β search."""
    paper = load_paper()
    for table in ("table2", "table3"):
        swept = _sweep_rows(table)
        assert swept == table_rows(table) and set(swept) == {n for n, row in rows().items() if table in row.tables}
        published = [p.model for p in paper if p.table == table and p.dataset == "ml-20m"]
        assert [row_label(r) for r in swept][:len(published)] == published  # the paper's rows, in its order
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
    """Each conf/row/<row>.yaml composes in a preset with the model config it names, and the report's derivation from
    its choices and settings gives the same row, with or without the `row` it records."""
    assert (CONFIG_DIR / "model" / f"{row_model(row)}.yaml").is_file()
    cfg = _compose(["experiment=extended", f"row={row}"])
    assert cfg.row == row
    choices = dict(cfg.hydra.runtime.choices)
    assert choices["row"] == row
    config = {node: OmegaConf.to_container(cfg[node], resolve=True) for node in NODES}
    assert derive_row(choices, config, prefer=row) == row  # the row file it records, unchanged
    assert derive_row({k: v for k, v in choices.items() if k != "row"}, config) == row  # the same run, by hand
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
    assert default.logger.wandb._target_ == "cfrec.run.loggers.wandb_logger"
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
    # the paper's ML-20M numbers asked for explicitly: whether a dataset without published numbers gets a
    # reference by default, and how its heading reads, is the report's business (tests/report)
    out = _report(str(sweep), "--out", str(tmp_path / "report"), "--reference-dataset", "ml-20m", tmp_path=tmp_path)
    assert any(line.startswith("### Table 2: synthetic") for line in out.splitlines()), out
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


# ------------------------------------------------------------------------------- job folders and W&B names

def _multirun_yaml(sweep: Path, *task: str) -> Path:
    """A sweep folder whose multirun.yaml (as Hydra's basic sweeper writes it) holds the command line `task`."""
    sweep.mkdir(parents=True, exist_ok=True)
    (sweep / "multirun.yaml").write_text(OmegaConf.to_yaml({"hydra": {"overrides": {"task": list(task)}}}))
    return sweep


def _flat(name: str) -> bool:
    return "/" not in name and "\\" not in name and "\t" not in name and 0 < len(name.encode()) <= 255


def test_job_folder_is_the_number_and_the_swept_keys_with_paths_left_out(tmp_path: Path):
    """The issue's sweep over a custom file: `<num>_row=...,seed=...`, no data path, tab or unswept key in it."""
    sweep = _multirun_yaml(tmp_path, "experiment=table2", "dataset=custom", "dataset.format=triplets",
                           "dataset.raw_path=/data/ratings.tsv", "dataset.reader.sep='\\t'",
                           "dataset.heldout_users=190", "seed=1,2")
    job = ["row=multinomial", "experiment=table2", "dataset=custom", "dataset.format=triplets",
           "dataset.raw_path=/data/ratings.tsv", "dataset.reader.sep='\\t'", "dataset.heldout_users=190", "seed=2"]
    assert job_dir(3, job, str(sweep), {"row": "mult_vae,multinomial,logistic"}, ["experiment"]) == \
        "3_row=multinomial,seed=2"


@pytest.mark.parametrize("swept,job,expected", [
    (["dataset.raw_path=/a/x.tsv,/b/y.tsv"], ["dataset.raw_path=/b/y.tsv"], "1"),  # a swept path: the number only
    (["dataset.raw_path=[/a/x.tsv,/b/y.tsv],/c/z.tsv", "seed=1,2"], ["dataset.raw_path=[/a/x.tsv,/b/y.tsv]", "seed=2"],
     "1_seed=2"),  # a list of paths
    (["dataset.reader.sep='\\t',';'"], ["dataset.reader.sep='\\t'"], "1"),  # a tab
    (["dataset.reader.sep='\\t',';'"], ["dataset.reader.sep=';'"], "1_dataset.reader.sep=_"),  # sanitised
    (["model.encoder.hidden_dims=[600,200],[300]"], ["model.encoder.hidden_dims=[600,200]"],
     "1_model.encoder.hidden_dims=600+200"),
    (["tags=[" + ",".join(["x" * 40] * 3) + "],[y]"], ["tags=[" + ",".join(["x" * 40] * 3) + "]"], "1"),  # long
])
def test_job_folder_stays_flat_and_short_whatever_the_values(tmp_path: Path, swept, job, expected):
    sweep = _multirun_yaml(tmp_path, *swept)
    assert job_dir(1, job, str(sweep), None, []) == expected


def test_job_folder_of_many_swept_keys_is_cut_below_the_file_name_limit(tmp_path: Path):
    keys = [f"model.option_number_{i}" for i in range(40)]
    sweep = _multirun_yaml(tmp_path, *[f"{k}=aaaaaaaaaaaaaaaaaaaaaaaaaa,b" for k in keys])
    name = job_dir(12, [f"{k}=aaaaaaaaaaaaaaaaaaaaaaaaaa" for k in keys], str(sweep), None, [])
    assert _flat(name) and name.startswith("12_model.option_number_0=") and len(name) <= 130


def test_a_sweep_may_still_name_its_own_job_folders():
    """The claims study sets `hydra.sweep.subdir=${row}_s${seed}`; the override wins over cfrec's default."""
    cfg = _compose(["+row=mult_vae", "seed=2", "hydra.sweep.subdir=${row}_s${seed}"])
    assert cfg.hydra.sweep.subdir == "mult_vae_s2"


def test_sweep_summary_counts_and_syncs_the_runs_of_nested_job_folders(tmp_path: Path):
    """A `hydra.sweep.subdir` of the user's own may nest jobs (`${row}/s${seed}`): the summary still counts every
    run, and its `wandb sync` patterns match every offline run (and nothing under a run's own folders)."""
    for job, status in (("mult_vae/s1", "ok"), ("mult_vae/s2", "failed"), ("logistic", "ok")):
        (tmp_path / job / "wandb" / "offline-run-20261207_000000-abc").mkdir(parents=True)
        (tmp_path / job / "metrics.json").write_text(f'{{"status": "{status}"}}')
    (tmp_path / "logistic" / "checkpoints" / "x").mkdir(parents=True)
    (tmp_path / "logistic" / "checkpoints" / "x" / "metrics.json").write_text("{}")  # not a run
    lines = sweep_summary(tmp_path)
    assert lines[0] == f"sweep done: 3 runs (1 failed, 2 ok) in {tmp_path}/"
    patterns = lines[2].removeprefix("upload to W&B: wandb sync ").split()
    found = sorted(str(Path(run).parents[1].relative_to(tmp_path)) for p in patterns for run in glob.glob(p))
    assert found == ["logistic", "mult_vae/s1", "mult_vae/s2"]


def test_a_single_runs_wandb_name_leaves_the_data_options_to_its_config(tmp_path: Path):
    """Issue 25, item 6: a run on a custom file is named by its model, what it changes, dataset name and seed; the
    long data path, the tab, `header` and `threshold` are left to its config (the name was ~250 characters)."""
    overrides = ["dataset=custom", "dataset.format=triplets", f"dataset.raw_path=/data/{'x' * 200}/ratings.tsv",
                 "dataset.reader.sep='\\t'", "dataset.reader.header=true", "dataset.threshold=null",
                 "dataset.heldout_users=190", "model.lr=0.01"]
    logger = wandb_logger(str(tmp_path), mode="disabled", run_mode="RUN", model="mult", dataset="custom", seed=1,
                          overrides=overrides, log_config=False)
    assert logger._wandb_init["name"] == "mult-model.lr=0.01-custom-s1"
    assert sorted(logger._wandb_init["tags"]) == ["dataset=custom", "model.lr=0.01", "model=mult", "seed=1"]


def test_tags_are_never_cut():
    """W&B cuts a tag at 64 characters: cfrec's own tags are shortened to the key's last part (or left out), a
    user's tag that long is refused, naming it."""
    long_key = "model.encoder.an_option_whose_name_takes_more_than_fifty_characters"  # 68 with its value
    assert run_tags(["mine"], [f"{long_key}=1", f"model.{'y' * 70}=2", "seed=1"]) == [
        "mine", "an_option_whose_name_takes_more_than_fifty_characters=1", "seed=1"]
    with pytest.raises(ConfigError, match="tags: 'zzz.*' is longer than the 64 characters"):
        run_tags(["z" * 65], [])


def test_sweep_over_a_custom_file_writes_flat_jobs_that_summary_report_and_sync_find(tmp_path: Path):
    """Issue 25, item 1: the table2 sweep over a custom file, whose overrides hold an absolute path and a tab, writes
    each job as a direct child of the sweep folder; the closing summary counts them, the printed `wandb sync` finds
    every offline run, and each W&B run has a short name and whole tags, the data path staying in its config."""
    ratings = tmp_path / "data" / "ratings.tsv"
    ratings.parent.mkdir()
    ratings.write_text("".join(f"{u}\t{i}\n" for u in range(120) for i in range(60) if (u * 7 + i * 3) % 4 == 0))
    sweep = tmp_path / "sweep"
    proc = _train(tmp_path, "-m", "experiment=table2", "dataset=custom", "dataset.format=triplets",
                  f"dataset.raw_path={ratings}", "dataset.reader.sep='\\t'", "dataset.heldout_users=10", "seed=1,2",
                  "trainer.max_epochs=1", "logger=wandb", f"hydra.sweep.dir={sweep}")
    jobs = [f"{n}_row={row},seed={seed}" for n, (row, seed) in
            enumerate((row, seed) for row in ("mult_vae", "multinomial", "logistic") for seed in (1, 2))]
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == sorted(jobs)
    assert all((sweep / job / "metrics.json").is_file() for job in jobs)
    console = (proc.stdout + proc.stderr).splitlines()
    assert console[-3].endswith(f"sweep done: 6 runs (6 ok) in {sweep}/"), console[-3:]
    sync = console[-1].split("upload to W&B: wandb sync ", 1)[1]
    runs = [run for pattern in sync.split() for run in glob.glob(pattern)]
    assert sorted(Path(r).parents[1].name for r in runs) == sorted(jobs)
    dry = subprocess.run([sys.executable, "-m", "wandb", "sync", "--dry-run", *runs], env=_env(tmp_path),
                         capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0 and "Would sync 6 run(s)" in dry.stdout + dry.stderr, dry.stdout + dry.stderr
    for job in jobs:
        run = wandb_run(sweep / job)
        row, seed = job.split("_", 1)[1].removeprefix("row=").split(",seed=")
        assert run["name"] == f"{row}-custom-s{seed}"
        assert f"row={row}" in run["tags"] and all(len(tag) <= 64 for tag in run["tags"])
        assert str(ratings) in run["config"]["dataset"]  # the data path is in the config, not the name
    _report(str(sweep), "--out", str(tmp_path / "report"), tmp_path=tmp_path)
    assert len((tmp_path / "report" / "runs.csv").read_text().splitlines()) == 1 + len(jobs)  # a header, each run
