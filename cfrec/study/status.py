"""`python -m cfrec.study status DIR`: each stage and each run of a study, and an estimate of the time left.

It reads the study folder only (study.json, the runs' metrics.json, logs and checkpoints) and trains nothing, so it
can be run at any time, beside a study command that is running (or on another machine sharing the folder).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cfrec.errors import ConfigError
from cfrec.study.record import LOCK, STUDY_JSON, holder, in_process_runs, queued_runs, read_json, read_record
from cfrec.study.runs import DONE, FAILED, RUNNING, RunState, duration
from cfrec.study.settings import Settings
from cfrec.study.stages import survey


def time_left(states: Sequence[RunState], now: float) -> str:
    """The training time left, one run at a time: each run not done at the mean train_seconds of its row's finished
    runs (of all finished runs where its row has none), less what a running run has run already."""
    finished = [s for s in states if s.state == DONE and s.seconds]
    if not finished:
        return "unknown until a run has finished"
    pool = [s.seconds for s in finished]
    by_row: dict[str, list[float]] = {}
    for s in finished:
        by_row.setdefault(s.run.row, []).append(s.seconds)
    left, counted = 0.0, 0
    for s in states:
        if s.state == DONE:
            continue
        counted += 1
        mean = statistics.fmean(by_row.get(s.run.row) or pool)
        left += max(mean - (now - s.started), 0.0) if s.state == RUNNING and s.started else mean
    if not counted:
        return "none: every run has finished"
    return (f"about {duration(left)} of training, one run at a time, for {counted} run{'s' if counted > 1 else ''} "
            f"(the mean train_seconds of finished runs per row; less with jobs in parallel)")


def _beta_line(record: dict[str, Any], search: RunState | None) -> str:
    beta = record.get("beta") or {}
    if beta.get("source") == "search" and search is not None and search.state == DONE:
        return (f"done: β {beta['value']} (peak validation NDCG@100 {beta['peak_ndcg@100']:.4f} at epoch "
                f"{beta['peak_epoch']}; {beta['run']}/)")
    if search is None:
        settings = record["settings"]
        given = settings.get("beta") != "search"
        return f"given: study.beta={settings['beta']}" if given else "not needed: no row of the study anneals β"
    return f"{search.state}{': ' + search.detail if search.detail else ''}"


def _report_line(directory: Path, record: dict[str, Any], states: Sequence[RunState]) -> str:
    last = record.get("stages", {}).get("report") or {}
    done = sorted(s.run.path for s in states if s.state == DONE)
    if last.get("done") and last.get("runs") == done and len(done) == len(states):
        return f"done: {directory / 'report' / 'report.md'}"
    covered = f" (the last one covers {len(last['runs'])} runs)" if last.get("runs") else ""
    return f"to do{covered}"


def status(directory: Path, now: float | None = None) -> str:
    """The status of the study in `directory`, as printed."""
    record = read_record(directory)
    if record is None:
        raise ConfigError(f"{directory / STUDY_JSON} not found: {directory} is not a study folder (start one with "
                          f"python -m cfrec.study study.dir={directory} ...)")
    now = time.time() if now is None else now
    settings = Settings.from_record(record["settings"])
    command = holder(directory)
    mark = read_json(directory / LOCK) or {}
    found = survey(directory, settings, record, *((frozenset(), frozenset()) if command else
                                                  (in_process_runs(mark), queued_runs(mark))))
    states = found.runs
    counts = record["fingerprint"]["counts"]["train"]
    tally = {state: sum(s.state == state for s in states) for state in (DONE, RUNNING, FAILED)}
    todo = len(states) - sum(tally.values())
    ended = f" (last ended {mark['ended']})" if mark.get("ended") else ""
    lines = [f"study of {record['fingerprint']['dataset']} in {directory}: {counts['users']} training users, "
             f"{counts['items']} items; {len(states)} runs (rows {', '.join(settings.rows)}; seeds "
             f"{', '.join(map(str, settings.seeds))}{'; and variants' if settings.variants else ''})",
             f"study command: running (pid {command['pid']} on {command['host']}, since {command['started']})"
             if command else f"study command: not running{ended}",
             f"1. split      done ({record['stages'].get('split', {}).get('done', '?')})",
             f"2. β search   {_beta_line(record, found.search)}",
             f"3. runs       {tally[DONE]} done, {tally[RUNNING]} running, {tally[FAILED]} failed, {todo} to do "
             f"(of {len(states)})",
             f"4. report     {_report_line(directory, record, states)}"]
    width = max(len(s.run.name) for s in states)
    lines += [f"   {s.run.name:<{width}}  {s.state:<8}  {s.detail}".rstrip() for s in states]
    lines.append(f"time left: {time_left([*([found.search] if found.search else []), *states], now)}")
    return "\n".join(lines)
