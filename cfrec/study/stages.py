"""The study's four stages, each skipped when done: the split, the β search, the row × seed runs, the report.

Every stage reads its state from the study folder itself (study.json, each run's metrics.json), so a command killed at
any point and run again picks up where it stopped: a finished run is kept, a half-trained one resumes from its
`checkpoints/last.ckpt` (train.py does), and what is missing is launched.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from cfrec.config import check_config
from cfrec.errors import ConfigError
from cfrec.run.provenance import code_version
from cfrec.study.launch import launch
from cfrec.study.record import (
    acquire,
    in_process_runs,
    mark_launched,
    queued_runs,
    read_json,
    read_record,
    release,
    stamp,
    write_record,
)
from cfrec.study.runs import (
    CONFLICT,
    DONE,
    FAILED,
    QUEUED,
    RUNNING,
    TODO,
    PlannedRun,
    RunState,
    annealing,
    expected,
    inspect,
    plan,
    search_run,
)
from cfrec.study.settings import Settings, fixed_changes, launcher_overrides, read_settings
from cfrec.study.split import fingerprint_changes, prepare

log = logging.getLogger("cfrec.study")


class StudyIncomplete(RuntimeError):
    """Runs failed or are running elsewhere: the study is not finished (rerunning the command goes on with it)."""


@dataclass(frozen=True)
class Survey:
    """Where a study stands: its β search (None: none needed or β given) and its row × seed runs."""

    search: RunState | None
    runs: list[RunState]


def survey(directory: Path, settings: Settings, record: dict[str, Any], dead: frozenset[str] = frozenset(),
           queued: frozenset[str] = frozenset()) -> Survey:
    """The state of the β search and of every planned run, from their folders (`dead` and `queued`: as
    runs.inspect); runs of annealed rows are checked against the study's β once study.json has one."""
    counts = record["fingerprint"]["counts"]
    steps, beta = record["anneal_steps"], (record.get("beta") or {}).get("value")
    tolerance = 0.5 / settings.max_epochs
    annealed = annealing(settings)
    planned = plan(settings, beta, steps, annealed)
    searching = settings.beta is None and any(run.annealed for run in planned)
    known = [run for run in planned if beta is not None or not run.annealed]
    wanted = expected([*known, *([search_run(settings, steps)] if searching else [])])
    split = record["fingerprint"].get("key")
    runs = [inspect(directory, run, wanted.get(run.path), counts, tolerance, dead, split=split, queued=queued)
            for run in planned]
    search = None
    if searching:
        run = search_run(settings, steps)
        search = inspect(directory, run, wanted[run.path], counts, tolerance, dead, split=split, queued=queued)
    return Survey(search, runs)


def _conflict(directory: Path, states: Sequence[RunState]) -> None:
    """ConfigError naming the first folder that holds another run than the study's (nothing is launched then)."""
    conflicts = [s for s in states if s.state == CONFLICT]
    if conflicts:
        more = f" (and {len(conflicts) - 1} more runs)" if len(conflicts) > 1 else ""
        raise ConfigError(f"{directory / conflicts[0].run.path} holds a finished run with {conflicts[0].detail}; "
                          f"move it aside, or use another study.dir{more}")


def _search_result(directory: Path, run: PlannedRun, steps: int) -> dict[str, Any]:
    """study.json's β from a finished β search: the peak's β (rounded to 4 significant digits, what the runs get),
    the curve and where it came from."""
    metrics = read_json(directory / run.path / "metrics.json") or {}
    curve = metrics.get("beta_search") or {}
    betas, ndcgs = list(curve.get("beta") or []), list(curve.get("ndcg@100") or [])
    if not ndcgs:
        raise StudyIncomplete(f"{directory / run.path}/metrics.json holds no β-search curve")
    peak = max(range(len(ndcgs)), key=ndcgs.__getitem__)
    return {"value": float(f"{betas[peak]:.4g}"), "searched": betas[peak], "source": "search", "run": run.path,
            "peak_epoch": peak + 1, "peak_ndcg@100": ndcgs[peak], "total_anneal_steps": steps,
            "curve": {"beta": betas, "ndcg@100": ndcgs}}


def runs_stage(last: dict[str, Any], planned: int, finished: int) -> dict[str, Any]:
    """study.json's stage 3 once `finished` of `planned` runs are done: `done` stamped when they are all done, kept
    from `last` only when it was done for as many runs (more seeds or variants make it a stage done again)."""
    kept = last.get("done") if last.get("planned") == planned else None
    return {**last, "planned": planned, "finished": finished,
            "done": (kept or stamp()) if finished == planned else None}


@dataclass
class Study:
    """One command's study: its folder, settings, record, and how it launches jobs."""

    directory: Path
    settings: Settings
    record: dict[str, Any]
    launch_with: tuple[str, ...]
    study_logging: dict[str, Any]
    dead: frozenset[str]
    queued: frozenset[str]
    launched: int = 0

    def save(self) -> None:
        write_record(self.directory, self.record)

    def launch(self, runs: Sequence[PlannedRun], sweep_dir: Path) -> None:
        """Launch `runs` into `sweep_dir` (one multirun); a launcher that stops (a job that crashed under
        submitit) is logged, and the runs' folders say what finished."""
        mark_launched(self.directory, [run.path for run in runs])
        self.launched += len(runs)
        log.info("launching %d run%s into %s", len(runs), "s" if len(runs) != 1 else "", sweep_dir)
        try:
            launch([(run.name, run.overrides) for run in runs], sweep_dir, self.settings.overrides, self.launch_with,
                   self.study_logging)
        except Exception as error:
            log.error("the launcher stopped: %s: %s", type(error).__name__, str(error).splitlines()[0])

    def beta(self, state: RunState | None) -> dict[str, Any]:
        """Stage 2: the β the annealed rows get, from study.beta, an existing β search or a new one."""
        steps = self.record["anneal_steps"]
        if self.settings.beta is not None:
            return {"value": self.settings.beta, "source": "study.beta", "total_anneal_steps": steps}
        if state is None:
            return {"value": None, "source": "none: no row of the study anneals β"}
        if state.state == CONFLICT:
            _conflict(self.directory, [state])
        if state.state == RUNNING:
            raise StudyIncomplete(f"the β search in {self.directory / state.run.path} is running ({state.detail}); "
                                  f"rerun this command when it has finished")
        if state.state != DONE:
            self.launch([state.run], self.directory)
            state = survey(self.directory, self.settings, self.record, self.dead, self.queued).search
            if state.state != DONE:
                raise StudyIncomplete(f"the β search did not finish ({state.state}: {state.detail}); "
                                      f"rerun the same command to retry it")
        return _search_result(self.directory, state.run, steps)

    def runs(self) -> list[RunState]:
        """Stage 3: every planned run done, launching those still to do as one multirun."""
        states = survey(self.directory, self.settings, self.record, self.dead, self.queued).runs
        _conflict(self.directory, states)
        todo = [s.run for s in states if s.state in (TODO, FAILED)]
        done = sum(s.state == DONE for s in states)
        log.info("runs: %d planned, %d done, %d to launch%s", len(states), done, len(todo),
                 f", {sum(s.state == RUNNING for s in states)} running elsewhere" if done + len(todo) < len(states)
                 else "")
        if todo:
            self.record["stages"]["runs"] = {"started": stamp(), "done": None}
            self.save()
            self.launch(todo, self.directory / "runs")
            states = survey(self.directory, self.settings, self.record, self.dead, self.queued).runs
        finished = sum(s.state == DONE for s in states)
        self.record["stages"]["runs"] = runs_stage(self.record["stages"].get("runs", {}), len(states), finished)
        self.save()
        return states

    def report(self, states: Sequence[RunState]) -> bool:
        """Stage 4: the report over the runs (and the β search), unless the last one covered these same runs and
        was written by this commit of cfrec (another commit may report them otherwise); whether it was written."""
        from cfrec.report import report

        names = sorted(s.run.path for s in states if s.state == DONE)
        out = self.directory / "report"
        last = self.record["stages"].get("report") or {}
        commit = code_version()["commit"]
        if not names or (not self.launched and last.get("runs") == names and last.get("commit") == commit
                         and (out / "claims.csv").is_file()):
            return False
        search = self.directory / "beta_search"
        report([self.directory / "runs", *([search] if (search / "metrics.json").is_file() else [])], out=out)
        self.record["stages"]["report"] = {"done": stamp() if len(names) == len(states) else None, "runs": names,
                                           "commit": commit}
        self.save()
        log.info("report: %s (claims.csv, comparisons.csv)", out / "report.md")
        return True


def _summary(states: Sequence[RunState]) -> str:
    """Why the study is not finished: how many runs failed (the first one's error) or are running elsewhere."""
    failed = [s for s in states if s.state in (FAILED, TODO)]
    running = [s for s in states if s.state == RUNNING]
    parts = [f"{len(states) - len(failed) - len(running)} of {len(states)} runs done"]
    if failed:
        parts.append(f"{len(failed)} did not finish ({failed[0].run.path}: {failed[0].detail or failed[0].state})")
    queued = [s for s in running if s.detail == QUEUED]
    if len(running) > len(queued):
        parts.append(f"{len(running) - len(queued)} running elsewhere (written in the last minutes; rerun when they "
                     f"have stopped)")
    if queued:
        parts.append(f"{len(queued)} submitted by the killed study command and not started (squeue lists them "
                     f"while they wait; scancel those you do not want, and rerun once none waits)")
    return "; ".join(parts) + "; rerun the same command to finish the study"


def run_study(cfg: DictConfig, task_overrides: Sequence[str], hydra_overrides: Sequence[str], launcher: str,
              study_logging: dict[str, Any]) -> None:
    """The study that `cfg` (conf/study.yaml composed with the command line) describes, from wherever it stands.
    Raises ConfigError for a mistake (before anything is written), StudyIncomplete when runs are left."""
    check_config(cfg)
    directory = Path(str(cfg.study.dir)).expanduser()
    settings = read_settings(cfg.study, task_overrides)
    launch_with = launcher_overrides(hydra_overrides)
    record = read_record(directory)
    fingerprint, steps_per_epoch = prepare(cfg.dataset)
    if record is not None and (changed := fingerprint_changes(record["fingerprint"], fingerprint)):
        raise ConfigError(f"{directory} is a study of another split ({'; '.join(changed[:3])}); a split's β and runs "
                          f"are its own: use another study.dir")
    if record is not None and (changed := fixed_changes(record["settings"], settings)):
        raise ConfigError(f"{directory} is a study with other settings ({'; '.join(changed)}); give the same, "
                          f"or use another study.dir")
    previous = acquire(directory, launcher)
    try:
        record = {**(record or {"stages": {}}), "fingerprint": fingerprint, "settings": settings.record(),
                  "anneal_steps": settings.max_epochs * steps_per_epoch}
        record["stages"]["split"] = record["stages"].get("split") or {"done": stamp()}
        dead, queued = in_process_runs(previous), queued_runs(previous)
        study = Study(directory, settings, record, launch_with, study_logging, dead, queued)
        study.save()
        record["beta"] = study.beta(survey(directory, settings, record, dead, queued).search)
        record["stages"]["beta_search"] = record["stages"].get("beta_search") or {"done": stamp(),
                                                                                  "source": record["beta"]["source"]}
        study.save()
        log.info("β: %s (%s)", record["beta"]["value"], record["beta"]["source"])
        states = study.runs()
        reported = study.report(states)
        if any(s.state != DONE for s in states):
            raise StudyIncomplete(_summary(states))
        if study.launched or reported:
            search = " and the β search" if record["beta"]["source"] == "search" else ""
            log.info("study complete: %d runs%s in %s (%d trained by this command)", len(states), search, directory,
                     study.launched)
        else:
            log.info("study complete: nothing to train, the report is up to date (%s)", directory / "report")
    finally:
        release(directory)
