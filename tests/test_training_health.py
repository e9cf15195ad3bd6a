"""Did a model finish learning: early stopping fired, and the loss left the class prior."""

from __future__ import annotations

import math

import pytest

from treasure_lib import training_health
from treasure_lib.metrics import MetricInputError

LN4 = math.log(4.0)


def test_balanced_four_classes_have_prior_entropy_ln4():
    assert training_health.prior_entropy([250, 250, 250, 250]) == pytest.approx(LN4, abs=1e-15)
    assert training_health.prior_entropy([0.5, 0.5, 0.5, 0.5]) == pytest.approx(LN4, abs=1e-15)


def test_prior_entropy_of_unbalanced_classes_matches_hand_computation():
    # fractions 0.5, 0.25, 0.25: 0.5 ln 2 + 2 * 0.25 ln 4 = 1.5 ln 2; an empty class adds nothing
    assert training_health.prior_entropy([2.0, 1.0, 1.0, 0.0]) == pytest.approx(1.5 * math.log(2.0), abs=1e-15)


@pytest.mark.parametrize("bad", [[], [1.0, -1.0], [0.0, 0.0], [1.0, math.nan]])
def test_prior_entropy_refuses_what_is_not_class_totals(bad):
    with pytest.raises(MetricInputError, match="class_weights must be"):
        training_health.prior_entropy(bad)


def test_best_epoch_at_the_end_is_not_converged():
    losses = [1.30 - 0.05 * e for e in range(10)]  # still falling when the 10-epoch budget ran out
    h = training_health.health(losses, 3, prior_entropy=LN4)
    assert (h["best_epoch"], h["epochs_run"], h["early_stopped"], h["converged"]) == (9, 10, False, False)
    assert h["below_prior"] and h["best_val_loss"] == pytest.approx(0.85)
    assert training_health.reason(h) == "still improving: its best epoch (10, counted from 1) is among the last 3 of 10"


def test_best_epoch_inside_the_patience_window_is_still_improving():
    h = training_health.health([1.0, 0.9, 0.8, 0.85, 0.86], 3)  # best at 2: only 2 epochs without improvement
    assert h["best_epoch"] == 2 and not h["early_stopped"] and not h["converged"]


def test_best_early_then_patience_fired_is_converged():
    h = training_health.health([1.2, 0.9, 0.7, 0.75, 0.74, 0.73], 3, prior_entropy=LN4)
    assert (h["best_epoch"], h["epochs_run"], h["early_stopped"], h["converged"]) == (2, 6, True, True)
    assert training_health.reason(h) == ""


def test_first_epoch_wins_a_tie_for_best():
    h = training_health.health([1.0, 0.7, 0.8, 0.7, 0.9, 0.9], 3)
    assert h["best_epoch"] == 1 and h["early_stopped"]


def test_loss_at_the_prior_is_not_converged_with_the_reason():
    h = training_health.health([1.05, 1.026, 1.03, 1.04, 1.05], 3, prior_entropy=1.010)
    assert h["early_stopped"] and not h["below_prior"] and not h["converged"]
    assert training_health.reason(h) == "never left the class prior: validation loss 1.026 vs prior entropy 1.010"


def test_loss_within_the_margin_of_the_prior_is_not_below_it():
    losses = [1.2, 0.995 * 1.0, 1.1, 1.1, 1.1]  # 0.5% below the prior: inside the default 2% margin
    assert not training_health.health(losses, 3, prior_entropy=1.0)["below_prior"]
    assert training_health.health(losses, 3, prior_entropy=1.0, margin=0.0)["converged"]


def test_without_a_prior_only_early_stopping_decides():
    h = training_health.health([1.0, 0.5, 0.6, 0.6, 0.6], 3)
    assert h["below_prior"] and h["converged"] and math.isnan(h["prior_entropy"])


@pytest.mark.parametrize(
    "losses, problem",
    [([], "no validation loss was recorded"), ([1.0, 0.8, math.nan, 0.9, 0.9, 0.9], "not finite at epoch 2")],
)
def test_missing_or_non_finite_losses_are_not_converged(losses, problem):
    h = training_health.health(losses, 3, prior_entropy=LN4)
    assert not h["converged"] and problem in training_health.reason(h)


def test_metric_items_carry_the_verdict_as_numbers():
    h = training_health.health([1.2, 0.9, 0.7, 0.75, 0.74, 0.73], 3, prior_entropy=LN4)
    assert training_health.metric_items("classify.flavour.tokens", h) == pytest.approx(
        {
            "classify.flavour.tokens.converged": 1.0,
            "classify.flavour.tokens.early_stopped": 1.0,
            "classify.flavour.tokens.left_prior": 1.0,
            "classify.flavour.tokens.best_epoch": 2.0,
            "classify.flavour.tokens.epochs_run": 6.0,
            "classify.flavour.tokens.best_val_loss": 0.7,
            "classify.flavour.tokens.prior_entropy": LN4,
        }
    )
    assert "pretrain.prior_entropy" not in training_health.metric_items("pretrain", training_health.health([1.0], 3))


def test_bad_patience_or_margin_raise():
    with pytest.raises(MetricInputError, match="patience"):
        training_health.health([1.0], -1)
    with pytest.raises(MetricInputError, match="margin"):
        training_health.health([1.0], 3, margin=1.5)


def test_a_slow_crawl_counts_as_converged_only_below_the_relative_tolerance():
    """Masked-token pretraining keeps creeping down for dozens of epochs: with min_delta it has stopped improving when
    `patience` epochs gain less than that fraction; early stopping and the health verdict use the same rule."""
    from treasure_lib.training_health import health, stalled

    crawl = [5.0 * (1 - 0.001 * i) for i in range(12)]  # 0.1% per epoch: 0.3% per 3 epochs
    assert stalled(crawl, 3, 0.005) and not stalled(crawl, 3, 0.0)
    assert health(crawl, 3, min_delta=0.005)["converged"] and not health(crawl, 3)["converged"]
    fast = [5.0 * (1 - 0.01 * i) for i in range(12)]  # 1% per epoch
    assert not stalled(fast, 3, 0.005) and not health(fast, 3, min_delta=0.005)["converged"]
