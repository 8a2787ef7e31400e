"""β schedules: values at given steps, fraction-based annealing, the β search's curve and peak."""

import math

import pytest

from cfrec.models.schedules import Anneal, Constant, Search, Zero


def test_anneal_is_liang_linear_ramp_with_cap():
    beta = Anneal(cap=0.2, total_anneal_steps=100)
    assert [beta(s) for s in (0, 10, 19, 20, 21, 10_000)] == pytest.approx([0.0, 0.1, 0.19, 0.2, 0.2, 0.2])


def test_anneal_defaults_are_liang_notebook():
    beta = Anneal()
    assert (beta.cap, beta.total_anneal_steps) == (0.2, 200_000)
    assert beta(46_800) == pytest.approx(0.2)  # ML-20M: 200 epochs × 234 steps end just above the cap
    assert beta(20_000) == pytest.approx(0.1)


def test_anneal_fraction_uses_the_runs_total_steps():
    beta = Anneal(cap=1.0, total_anneal_steps=7, anneal_fraction=0.5)
    beta.start(1000)
    assert beta.total_anneal_steps == 500
    assert beta(250) == pytest.approx(0.5)
    assert beta(600) == 1.0


def test_anneal_without_fraction_ignores_the_run_length():
    beta = Anneal(cap=0.2, total_anneal_steps=100)
    beta.start(math.inf)
    assert beta(50) == pytest.approx(0.2)


def test_anneal_fraction_needs_a_finite_run():
    with pytest.raises(ValueError, match="finite"):
        Anneal(anneal_fraction=0.5).start(math.inf)


def test_constant_and_zero():
    assert Constant(0.3)(0) == Constant(0.3)(10**6) == 0.3
    assert Zero()(123) == 0.0
    assert Zero.skip_kl and not Anneal.skip_kl and not Constant.skip_kl and not Search.skip_kl


def test_search_anneals_to_max_beta_and_reports_the_peak():
    search = Search(total_anneal_steps=100, max_beta=0.5)
    assert [search(s) for s in (0, 20, 50, 80)] == pytest.approx([0.0, 0.2, 0.5, 0.5])
    for beta, ndcg in [(0.1, 0.30), (0.2, 0.35), (0.3, 0.33), (0.4, 0.35)]:
        search.record(beta, ndcg)
    assert search.best_beta == 0.2  # first of the tied maxima
    assert search.curve() == {"beta": [0.1, 0.2, 0.3, 0.4], "ndcg@100": [0.30, 0.35, 0.33, 0.35], "best_beta": 0.2}
