"""β schedules for the KL weight of Eq. 5: β as a function of the optimiser step (Liang's update counter).

The VAE calls `start(total_steps)` at fit start (the run's `trainer.estimated_stepping_batches`) and
`schedule(global_step)` before each update, so the counter is never reset within a run.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field
from typing import ClassVar


class Schedule(abc.ABC):
    """β(step); `skip_kl` tells the VAE to drop the KL term altogether."""

    skip_kl: ClassVar[bool] = False
    ramps: ClassVar[bool] = False  # whether β rises towards a cap (then `reached_cap` says when it gets there)

    def start(self, total_steps: float) -> None:  # noqa: B027 (a no-op hook that schedules may override)
        """Learn the run's total number of optimiser steps (only fraction-based schedules use it)."""

    @abc.abstractmethod
    def __call__(self, step: int) -> float:
        """β for the update numbered `step` (0-based)."""

    def reached_cap(self, step: int) -> bool:
        """Whether the update numbered `step` trains at the schedule's final β (always, for a schedule that does
        not ramp); early stopping counts its patience only from there (`cfrec.run.callbacks.EarlyStopping`)."""
        return True


def cap_epoch(schedule: Schedule, steps_per_epoch: int, max_epochs: int) -> int | None:
    """The 0-based index of the first epoch trained entirely at the cap, i.e. whose first update (step
    e × steps_per_epoch) already is; None when that is not within `max_epochs`, or the schedule does not ramp.
    β-aware early stopping counts its patience from this epoch on, so such a run runs at least
    cap_epoch + patience epochs."""
    if not schedule.ramps or steps_per_epoch < 1:
        return None
    return next((e for e in range(max_epochs) if schedule.reached_cap(e * steps_per_epoch)), None)


@dataclass
class Anneal(Schedule):
    """Liang's linear annealing: β = min(cap, step / total_anneal_steps).

    With `anneal_fraction`, total_anneal_steps = fraction × the run's total steps (set at fit start).
    """

    cap: float = 0.2
    total_anneal_steps: int = 200_000
    anneal_fraction: float | None = None

    def start(self, total_steps: float) -> None:
        if self.anneal_fraction is None:
            return
        if not math.isfinite(total_steps):
            raise ValueError("anneal_fraction needs a finite run length (trainer.max_epochs or max_steps)")
        self.total_anneal_steps = max(1, round(self.anneal_fraction * total_steps))

    ramps: ClassVar[bool] = True

    def __call__(self, step: int) -> float:
        return min(self.cap, step / self.total_anneal_steps)

    def reached_cap(self, step: int) -> bool:
        return step / self.total_anneal_steps >= self.cap


@dataclass
class Constant(Schedule):
    """β fixed at `value` from the first step."""

    value: float = 0.2

    def __call__(self, step: int) -> float:
        return self.value


@dataclass
class Zero(Schedule):
    """β = 0 with the KL term removed (Table 2's "Multinomial" and "Logistic" rows)."""

    skip_kl: ClassVar[bool] = True

    def __call__(self, step: int) -> float:
        return 0.0


@dataclass
class Search(Schedule):
    """Liang's β search (§2.2.2): anneal slowly towards `max_beta`, record validation NDCG@100 against β
    after each epoch, and report the β at the peak (to use as `Anneal.cap` in a second run)."""

    total_anneal_steps: int = 200_000
    max_beta: float = 1.0
    betas: list[float] = field(default_factory=list, init=False)
    ndcgs: list[float] = field(default_factory=list, init=False)

    ramps: ClassVar[bool] = True

    def __call__(self, step: int) -> float:
        return min(self.max_beta, step / self.total_anneal_steps)

    def reached_cap(self, step: int) -> bool:
        return step / self.total_anneal_steps >= self.max_beta

    def record(self, beta: float, ndcg: float) -> None:
        """Add one point (β at the epoch's end, validation NDCG@100) to the curve."""
        self.betas.append(beta)
        self.ndcgs.append(ndcg)

    def epoch_end(self, beta: float, val_ndcg: float) -> dict[str, dict[str, list[float] | float]]:
        """The VAE's epoch-end hook (`cfrec.models.vae.PartHooks`): one more point, and the curve so far as the
        run's `beta_search` result."""
        self.record(beta, val_ndcg)
        return {"beta_search": self.curve()}

    def get_state(self) -> dict[str, list[float]]:
        """The curve a resumed search goes on from (kept in the checkpoint)."""
        return {"beta": list(self.betas), "ndcg@100": list(self.ndcgs)}

    def set_state(self, state: dict[str, list[float]]) -> None:
        self.betas, self.ndcgs = list(state["beta"]), list(state["ndcg@100"])

    @property
    def best_beta(self) -> float:
        """β at the highest validation NDCG@100 recorded so far (the first one on ties)."""
        return self.betas[max(range(len(self.ndcgs)), key=self.ndcgs.__getitem__)]

    def curve(self) -> dict[str, list[float] | float]:
        """The recorded curve and its peak, as written to metrics.json."""
        return {"beta": list(self.betas), "ndcg@100": list(self.ndcgs), "best_beta": self.best_beta}
