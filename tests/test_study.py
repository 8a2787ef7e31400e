"""`python -m cfrec.study`: the claims study as one command (cfrec/study/). Its settings, its plan of runs, which run
folders it adopts, its status, and tiny real studies end to end (subprocesses on small synthetic data and on a
delimited file): killed in the middle and rerun, rerun when complete, refused on another split, under submitit."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from cfrec.config import CONFIG_DIR, PROJECT_ROOT, check_config, compose_config
from cfrec.errors import ConfigError
from cfrec.report import claims
from cfrec.study import stages
from cfrec.study.launch import quoted
from cfrec.study.record import LOCK, acquire, in_process_runs, queued_runs, release
from cfrec.study.runs import CONFLICT, DONE, FAILED, RUNNING, TODO, PlannedRun, RunState, annealing, expected, inspect
from cfrec.study.runs import plan as plan_runs
from cfrec.study.settings import Settings, Variant, fixed_changes, launcher_overrides, read_settings
from cfrec.study.split import fingerprint_changes
from cfrec.study.stages import runs_stage
from cfrec.study.status import time_left

TINY = ["dataset.synthetic.n_users=300", "dataset.synthetic.n_items=200", "dataset.heldout_users=50", "logger=none"]
COUNTS = {"train": {"users": 200, "items": 200, "interactions": 9000}}


def _settings(*overrides: str, **study: object) -> Settings:
    node = OmegaConf.load(CONFIG_DIR / "study.yaml").study
    node.dir = "unused"
    for key, value in study.items():
        node[key] = value
    return read_settings(node, list(overrides))


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"CFREC_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"})
    return env


def _study(tmp_path: Path, *args: str, code: int = 0, timeout: int = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "cfrec.study", *args], cwd=PROJECT_ROOT, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == code, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc


def _ok_runs(directory: Path) -> dict[str, bytes]:
    """metrics.json bytes of every finished run under `directory`/runs, by folder name."""
    found = {}
    for path in sorted((directory / "runs").glob("*/metrics.json")):
        data = path.read_bytes()
        if json.loads(data).get("status") == "ok":
            found[path.parent.name] = data
    return found


# ------------------------------------------------------------------------------------------ settings and plan


def test_defaults_are_the_claims_rows_five_seeds_and_a_third_of_the_budget_as_minimum():
    settings = _settings()
    claimed = {row for claim in claims() for row in (claim.row, claim.against)}  # conf/claims.yaml's rows
    assert settings.rows[0] == "mult_vae" and set(settings.rows) == claimed and len(settings.rows) == len(claimed)
    assert settings.seeds == (1, 2, 3, 4, 5) and settings.beta is None
    assert (settings.max_epochs, settings.patience, settings.min_epochs) == (300, 20, 100)
    assert _settings(max_epochs=10, seeds=[3, 7]).min_epochs == 3 and _settings(seeds=[3, 7]).seeds == (3, 7)


@pytest.mark.parametrize(("override", "study", "message"), [
    ("seed=3", {}, "use study.seeds"),
    ("+row=mult_vae", {}, "use study.rows"),
    ("trainer.max_epochs=5", {}, "use study.max_epochs"),
    ("beta.cap=0.3", {}, "use study.beta"),
    ("model.lr=0.1,0.01", {}, "one value per option"),
    ("logger=csv", {"rows": ["mult_vae", "nope"]}, "study.rows: no row 'nope'"),
    ("logger=csv", {"beta": "peak"}, "study.beta=peak must be `search` or a positive number"),
    ("logger=csv", {"seeds": 0}, "study.seeds=0 must be an integer >= 1"),
    ("logger=csv", {"variants": {"bad/name": {"row": "logistic"}}}, "a variant's name may hold"),
    ("logger=csv", {"variants": {"v": {"row": "logistic", "overrides": ["seed=2"]}}}, "cannot be set by a variant"),
])
def test_settings_refuse_what_the_study_sets_itself_and_bad_options(override: str, study: dict, message: str):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        _settings(override, **study)


def test_variants_given_on_the_command_line_reach_the_settings():
    """conf/study.yaml leaves study.variants open, so a command line can give it a mapping (the controlled runs)."""
    from hydra import compose, initialize_config_dir

    variants = ("study.variants={bias_init: {row: [mult_vae, logistic], overrides: ['model.output_bias=log_odds'], "
                "seeds: 3}}")
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("study", overrides=["study.dir=x", variants])
    assert read_settings(cfg.study, []).variants == (
        Variant("bias_init", ("mult_vae", "logistic"), ("model.output_bias=log_odds",), (1, 2, 3)),)


def test_the_launcher_options_pass_and_the_folders_the_study_sets_are_refused():
    assert launcher_overrides(["hydra/launcher=submitit_slurm", "hydra.launcher.partition=gpu", "hydra.mode=RUN"]) == (
        "hydra/launcher=submitit_slurm", "hydra.launcher.partition=gpu")
    with pytest.raises(ConfigError, match="the study sets hydra.sweep.dir itself"):
        launcher_overrides(["hydra.sweep.dir=/elsewhere"])


def test_plan_names_each_run_and_gives_annealed_rows_the_study_beta_and_ramp_only():
    settings = _settings("logger=none", rows=["mult_vae", "multinomial"], seeds=2, max_epochs=10,
                         variants={"bias_init": {"row": "logistic", "overrides": ["model.output_bias=log_odds"],
                                                 "seeds": [1]}})
    runs = {r.path: r for r in plan_runs(settings, 0.3697, 30, annealing(settings))}
    assert list(runs) == ["runs/mult_vae_s1", "runs/multinomial_s1", "runs/mult_vae_s2", "runs/multinomial_s2",
                          "runs/logistic-bias_init_s1"]
    budget = ("trainer.max_epochs=10", "callbacks.early_stopping.patience=20", "callbacks.early_stopping.min_epochs=3")
    assert runs["runs/mult_vae_s2"].overrides == ("+row=mult_vae", "seed=2", "logger=none", *budget, "beta.cap=0.3697",
                                                  "beta.total_anneal_steps=30")
    assert runs["runs/multinomial_s1"].overrides == ("+row=multinomial", "seed=1", "logger=none", *budget)
    assert runs["runs/logistic-bias_init_s1"].overrides[-2:] == ("variant=bias_init", "model.output_bias=log_odds")
    assert [r.annealed for r in runs.values()] == [True, False, True, False, False]


def test_a_later_command_must_keep_the_budget_beta_and_overrides_but_may_add_seeds():
    first = _settings("logger=csv", seeds=3)
    assert fixed_changes(first.record(), _settings("logger=csv", seeds=5, rows=["mult_vae"])) == []
    assert fixed_changes(first.record(), _settings("logger=none", max_epochs=200, beta=0.3)) == [
        "study.max_epochs: 300 -> 200", "study.min_epochs: 100 -> 66", "study.beta: 'search' -> 0.3",
        "overrides ['logger=csv'] -> ['logger=none']"]
    assert fixed_changes(_settings("logger=csv", "trainer.precision=32-true").record(),
                         _settings("trainer.precision=32-true", "logger=csv")) == []  # in any order
    assert Settings.from_record(first.record()) == first


def test_quoted_overrides_read_back_as_the_path_they_hold():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    for path in ("/tmp/a b,c=d", "it's", "C:\\runs\\"):
        assert OverridesParser.create().parse_overrides([quoted("hydra.sweep.dir", path)])[0].value() == path


# ------------------------------------------------------------------------------------------ β belongs to the study


def test_presets_hold_no_beta_and_a_plain_run_anneals_to_liangs_cap():
    cfg = compose_config(["dataset=ml-1m-implicit", "+row=mult_vae"], "t")
    assert cfg.beta.cap == 0.2 and "beta_cap" not in cfg.dataset.budget
    budget = (cfg.trainer.max_epochs, cfg.callbacks.early_stopping.patience, cfg.beta.total_anneal_steps)
    assert budget == (300, 20, 3000)
    assert cfg.beta.anneal_fraction is None
    sized = compose_config(["dataset=custom"], "t")  # a preset whose ramp is sized to the run keeps it
    assert sized.beta.total_anneal_steps is None and sized.beta.anneal_fraction == 1.0
    for preset in (CONFIG_DIR / "dataset").glob("*.yaml"):
        assert "beta_cap" not in (OmegaConf.load(preset).get("budget") or {}), preset.name


def test_a_budget_key_nothing_reads_is_refused_naming_where_beta_is_set():
    cfg = compose_config(["+dataset.budget.beta_cap=0.3", "paths.output_dir=/x", "logger=none"], "t")
    with pytest.raises(ConfigError, match="dataset.budget.beta_cap is not read: β's cap is beta.cap"):
        check_config(cfg)
    cfg = compose_config(["+dataset.budget.epoch=3", "paths.output_dir=/x", "logger=none"], "t")
    with pytest.raises(ConfigError, match="dataset.budget.epoch is not a budget key"):
        check_config(cfg)


# ------------------------------------------------------------------------------------------ which folders hold a run


def _stored(tmp_path: Path, name: str, overrides: list[str], status: str = "ok", counts: dict = COUNTS) -> Path:
    """A run folder as train.py leaves it: metrics.json with the resolved config of `overrides` (split
    fingerprint `aaaa`)."""
    folder = tmp_path / "runs" / name
    folder.mkdir(parents=True)
    cfg = compose_config([*overrides, "logger=none", f"paths.output_dir={folder}"], "t")
    metrics = {"status": status, "data": counts, "config": OmegaConf.to_container(cfg, resolve=True),
               "split_fingerprint": "aaaa", "epochs": 7, "best_epoch": 4, "train_seconds": 12.5,
               "error": "ValueError: boom\ntraceback"}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def _planned(settings: Settings) -> tuple[dict[str, PlannedRun], dict]:
    runs = {r.path: r for r in plan_runs(settings, 0.72333, 3000, annealing(settings))}
    return runs, expected(list(runs.values()))


def test_a_run_made_by_hand_with_the_same_values_is_adopted_and_another_configuration_is_not(tmp_path: Path):
    """Values are compared, not override strings: a train.py run with its overrides in another order and β rounded
    to 0.723 is the study's run; another budget, model setting or split is not."""
    settings = _settings("trainer.precision=32-true", rows=["mult_vae"], seeds=2)
    runs, wanted = _planned(settings)
    by_hand = ["trainer.precision=32-true", "trainer.max_epochs=300", "callbacks.early_stopping.patience=20",
               "callbacks.early_stopping.min_epochs=100", "beta.total_anneal_steps=3000", "beta.cap=0.723"]
    _stored(tmp_path, "mult_vae_s1", ["+row=mult_vae", "seed=1", *by_hand])
    _stored(tmp_path, "mult_vae_s2", ["seed=2", "+row=mult_vae", *by_hand, "model.lr=0.01"])
    tolerance = 0.5 / settings.max_epochs
    done = inspect(tmp_path, runs["runs/mult_vae_s1"], wanted["runs/mult_vae_s1"], COUNTS, tolerance)
    assert done.state == DONE and done.seconds == 12.5 and done.detail == "7 epochs (best 5), 12 s"
    other = inspect(tmp_path, runs["runs/mult_vae_s2"], wanted["runs/mult_vae_s2"], COUNTS, tolerance)
    assert other.state == CONFLICT and "model.lr: 0.01 -> 0.001" in other.detail
    split = inspect(tmp_path, runs["runs/mult_vae_s1"], wanted["runs/mult_vae_s1"], {"train": {"users": 9}}, tolerance)
    assert split.state == CONFLICT and "another split" in split.detail
    # the same counts, but train.py's split_fingerprint names another split (other file contents)
    first, first_wanted = runs["runs/mult_vae_s1"], wanted["runs/mult_vae_s1"]
    same = inspect(tmp_path, first, first_wanted, COUNTS, tolerance, split="aaaa")
    elsewhere = inspect(tmp_path, first, first_wanted, COUNTS, tolerance, split="bbbb")
    assert same.state == DONE and elsewhere.state == CONFLICT and "another split" in elsewhere.detail
    far = inspect(tmp_path, runs["runs/mult_vae_s1"], wanted["runs/mult_vae_s1"], COUNTS, 0.0001)
    assert far.state == CONFLICT and "beta.cap: 0.723 -> 0.72333" in far.detail


def test_an_unfinished_run_is_running_while_written_to_else_to_do_or_failed(tmp_path: Path):
    settings = _settings(rows=["multinomial"], seeds=2)
    runs, wanted = _planned(settings)
    first, second = runs["runs/multinomial_s1"], runs["runs/multinomial_s2"]
    folder = tmp_path / first.path
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "last.ckpt").write_bytes(b"x")
    (folder / "train.log").write_text("[..][cfrec.run.progress][INFO] - epoch 4/300  loss 1.0\n")
    now = time.time()
    state = inspect(tmp_path, first, wanted[first.path], COUNTS, 0.1, now=now)
    assert (state.state, state.detail) == (RUNNING, "epoch 4/300")
    # a study command killed while it ran this run in-process: not running, however fresh its files
    dead = inspect(tmp_path, first, wanted[first.path], COUNTS, 0.1, dead=frozenset([first.path]), now=now)
    assert (dead.state, dead.detail) == (TODO, "resumes from checkpoints/last.ckpt")
    assert inspect(tmp_path, first, wanted[first.path], COUNTS, 0.1, now=now + 3600).state == TODO
    # a run a killed study command submitted to SLURM and that has not started: it may wait in the queue
    fresh = tmp_path / "fresh"
    assert inspect(fresh, second, wanted[second.path], COUNTS, 0.1, queued=frozenset([second.path])).state == RUNNING
    assert inspect(fresh, second, wanted[second.path], COUNTS, 0.1).state == TODO
    _stored(tmp_path, second.name, ["+row=multinomial", "seed=2"], status="failed")
    failed = inspect(tmp_path, second, wanted[second.path], COUNTS, 0.1)
    assert (failed.state, failed.detail) == (FAILED, "ValueError: boom")
    assert inspect(tmp_path, second, wanted[second.path], COUNTS, 0.1).state == FAILED


def test_time_left_counts_each_run_at_its_rows_mean_less_what_a_running_run_has_run():
    run = PlannedRun("runs/a_s1", "a", None, 1, ())
    other = PlannedRun("runs/b_s1", "b", None, 1, ())
    states = [RunState(run, DONE, seconds=10.0), RunState(run, DONE, seconds=30.0),
              RunState(run, RUNNING, started=995.0), RunState(other, TODO)]
    # a: mean 20, running for 5 s -> 15 left; b has no finished run: the mean of all, 20
    assert time_left(states, now=1000.0).startswith("about 35 s of training, one run at a time, for 2 runs")
    assert time_left([RunState(other, TODO)], now=0.0) == "unknown until a run has finished"


def test_fingerprints_of_another_split_name_what_differs():
    base = {"dataset": "custom", "protocol": {"heldout_users": 50, "seed": 98765}, "counts": COUNTS,
            "sources": [{"path": "/a/ratings.csv", "sha256": "00"}]}
    moved = {**base, "sources": [{"path": "/b/ratings.csv", "sha256": "00"}]}  # the same file elsewhere
    assert fingerprint_changes(base, moved) == []
    other = {**base, "protocol": {"heldout_users": 40, "seed": 98765}, "sources": [{"path": "/a", "sha256": "11"}]}
    assert fingerprint_changes(base, other) == ["dataset.heldout_users: 50 -> 40", "the source files' sha256 differ"]
    keyed = {**base, "key": "aaaa"}
    assert fingerprint_changes(keyed, {**base, "key": "bbbb"}) == ["split fingerprint aaaa -> bbbb"]


def test_only_a_killed_commands_cluster_jobs_may_still_be_queued():
    runs = ["runs/a_s1"]
    assert queued_runs({"launcher": "submitit_slurm", "runs": runs}) == frozenset(runs)
    assert queued_runs({"launcher": "submitit_slurm", "runs": runs, "ended": "2026-01-01 00:00:00"}) == frozenset()
    assert queued_runs({"launcher": "basic", "runs": runs}) == frozenset()  # in-process: dead with the command
    assert in_process_runs({"launcher": "basic", "runs": runs}) == frozenset(runs)


def test_the_runs_stage_is_done_again_when_more_runs_are_planned(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(stages, "stamp", lambda: "now")
    first = {"started": "then", "planned": 4, "finished": 4, "done": "then"}
    assert runs_stage(first, 4, 4)["done"] == "then"  # a rerun finds it done: the stamp is kept
    assert runs_stage(first, 6, 4)["done"] is None  # seeds added: not done while they train
    assert runs_stage(first, 6, 6) == {"started": "then", "planned": 6, "finished": 6, "done": "now"}
    assert runs_stage({"started": "then", "done": None}, 4, 4)["done"] == "now"


def test_a_folder_in_use_by_a_running_study_command_is_refused(tmp_path: Path):
    assert acquire(tmp_path, "basic") == {}
    with pytest.raises(ConfigError, match=f"another study command \\(pid {os.getpid()}"):
        acquire(tmp_path, "basic")
    release(tmp_path)
    assert acquire(tmp_path, "joblib")["ended"]  # the previous command's mark, ended
    assert json.loads((tmp_path / LOCK).read_text())["launcher"] == "joblib"


# ------------------------------------------------------------------------------------------ tiny real studies


def test_a_study_killed_in_stage_3_and_rerun_finishes_without_retraining_a_finished_run(tmp_path: Path):
    """End to end on the synthetic data (2 rows, 2 seeds): killed (SIGKILL) once a run has finished, the same
    command finishes the study, keeping the finished runs; run again, it trains nothing."""
    study = tmp_path / "study"
    args = [f"study.dir={study}", "study.rows=[mult_vae,multinomial]", "study.seeds=2", "study.max_epochs=6", *TINY]
    proc = subprocess.Popen([sys.executable, "-m", "cfrec.study", *args], cwd=PROJECT_ROOT, env=_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 240
    while not _ok_runs(study) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = _ok_runs(study)
    assert 1 <= len(finished) < 4, proc.stdout.read().decode()[-3000:]
    record = json.loads((study / "study.json").read_text())
    assert record["beta"]["source"] == "search" and record["stages"]["runs"]["done"] is None
    killed = _study(tmp_path, "status", str(study)).stdout
    assert "study command: not running" in killed and f"{len(finished)} done, 0 running" in killed
    assert "4. report     to do" in killed

    out = _study(tmp_path, *args).stdout
    assert f"runs: 4 planned, {len(finished)} done, {4 - len(finished)} to launch" in out
    final = _ok_runs(study)
    assert set(final) == {"mult_vae_s1", "multinomial_s1", "mult_vae_s2", "multinomial_s2"}
    assert all(final[name] == data for name, data in finished.items())  # never retrained, never rewritten
    record = json.loads((study / "study.json").read_text())
    assert all(record["stages"][stage]["done"] for stage in ("split", "beta_search", "runs", "report"))
    # the annealed rows run at the searched β, ramped over the whole budget (6 epochs of 1 step)
    assert record["anneal_steps"] == 6
    overrides = OmegaConf.load(study / "runs" / "mult_vae_s2" / ".hydra" / "overrides.yaml")
    assert f"beta.cap={record['beta']['value']}" in overrides and "beta.total_anneal_steps=6" in overrides
    assert not any(o.startswith("beta.") for o in OmegaConf.load(study / "runs/multinomial_s2/.hydra/overrides.yaml"))
    assert "nothing to train" in _study(tmp_path, *args).stdout
    assert _ok_runs(study) == final
    done = _study(tmp_path, "status", str(study)).stdout
    assert "3. runs       4 done, 0 running, 0 failed, 0 to do (of 4)" in done and "4. report     done" in done


def _triplets(path: Path, users: int = 300, items: int = 80) -> Path:
    """A delimited user,item,rating file: users in four taste groups of items, 8-20 items each."""
    rng = np.random.default_rng(0)
    lines = []
    for u in range(users):
        group = u % 4
        chosen = {int(i) for i in rng.choice(items // 4, rng.integers(6, 15), replace=False) + group * (items // 4)}
        chosen |= {int(i) for i in rng.choice(items, rng.integers(2, 6), replace=False)}
        lines += [f"u{u},i{i},{rng.integers(1, 6)}" for i in sorted(chosen)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_acceptance_command_on_a_delimited_file_and_another_split_refused(tmp_path: Path):
    """The issue's acceptance command on data cfrec has never seen: study.json (fingerprint, β, stages) and the
    report covering every row × seed; a second run trains nothing; the same folder refuses another split."""
    data = _triplets(tmp_path / "ratings.csv")
    study = tmp_path / "study"
    dataset = ["dataset=custom", "dataset.format=triplets", f"dataset.raw_path={data}"]
    args = [*dataset, "dataset.heldout_users=50", f"study.dir={study}", "study.rows=[mult_vae,multinomial]",
            "study.seeds=2", "study.max_epochs=10", "logger=none"]
    _study(tmp_path, *args)
    record = json.loads((study / "study.json").read_text())
    sha256 = hashlib.sha256(data.read_bytes()).hexdigest()
    assert record["fingerprint"]["sources"] == [{"path": str(data.resolve()), "sha256": sha256}]
    assert record["fingerprint"]["counts"]["test_tr"]["users"] == 50
    ran_on = {json.loads(p.read_text())["split_fingerprint"] for p in study.glob("*/**/metrics.json")}
    assert ran_on == {record["fingerprint"]["key"]}  # the β search and every run, on this split
    assert record["beta"]["curve"]["beta"] and 0 < record["beta"]["value"] <= 1
    assert all(record["stages"][stage]["done"] for stage in ("split", "beta_search", "runs", "report"))
    with (study / "report" / "runs.csv").open() as f:
        reported = {(r["row"], r["seed"]) for r in csv.DictReader(f) if r["status"] == "ok"}
    assert {(row, str(seed)) for row in ("mult_vae", "multinomial") for seed in (1, 2)} <= reported
    with (study / "report" / "comparisons.csv").open() as f:
        assert any({r.get("row_a"), r.get("row_b")} == {"multinomial", "mult_vae"} for r in csv.DictReader(f))
    with (study / "report" / "claims.csv").open() as f:
        decided = [r for r in csv.DictReader(f) if (r["row"], r["against"]) == ("multinomial", "mult_vae")]
    assert decided and all(r["verdict"] in ("holds", "fails", "inconclusive") for r in decided)
    assert all((r["n_seeds_row"], r["n_seeds_against"]) == ("2", "2") for r in decided)  # every seed of both rows
    before = {p: p.stat().st_mtime_ns for p in study.rglob("metrics.json")}

    second = _study(tmp_path, *args).stdout
    assert "study complete: nothing to train, the report is up to date" in second
    assert {p: p.stat().st_mtime_ns for p in study.rglob("metrics.json")} == before
    assert json.loads((study / "study.json").read_text()) == record
    stale = {**record, "stages": {**record["stages"], "report": {**record["stages"]["report"], "commit": "0" * 40}}}
    (study / "study.json").write_text(json.dumps(stale))  # a report that another commit of cfrec wrote
    written = (study / "report" / "claims.csv").stat().st_mtime_ns
    assert "the report is up to date" not in _study(tmp_path, *args).stdout  # rewritten, nothing trained
    assert (study / "report" / "claims.csv").stat().st_mtime_ns > written
    assert {p: p.stat().st_mtime_ns for p in study.rglob("metrics.json")} == before
    record = json.loads((study / "study.json").read_text())
    assert record["stages"]["report"]["commit"] != "0" * 40  # this commit's report now

    other = [a.replace("heldout_users=50", "heldout_users=40") for a in args]
    refused = _study(tmp_path, *other, code=2)  # the same folder, another split: its β and runs are not shared
    assert refused.stderr.strip().splitlines() == [
        f"error: {study} is a study of another split (dataset.heldout_users: 50 -> 40; the split's counts differ); "
        f"a split's β and runs are its own: use another study.dir"]
    assert json.loads((study / "study.json").read_text()) == record
    assert {p: p.stat().st_mtime_ns for p in study.rglob("metrics.json")} == before


def test_submitit_local_launcher_runs_the_study(tmp_path: Path):
    """hydra/launcher=submitit_local: the runs go through submitit (each job in its own process), as on SLURM."""
    study = tmp_path / "study"
    out = _study(tmp_path, f"study.dir={study}", "study.rows=[multinomial]", "study.seeds=1", "study.max_epochs=2",
                 "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5", *TINY).stdout
    assert "not needed" in _study(tmp_path, "status", str(study)).stdout  # no row anneals β: no β search
    assert list(_ok_runs(study)) == ["multinomial_s1"] and "study complete" in out
    assert list((study / "runs" / ".submitit").glob("*/*_result.pkl"))
    assert (study / "runs" / "multinomial_s1" / "train.log").is_file()
    assert (study / "report" / "comparisons.csv").is_file()
