"""The anomaly verdict sentences on synthetic numbers: every branch (a lead beyond or within the errors, the share
of the supervised bound, a score that only counts objects, a signal that looks more SM-like than SM) is decided by
the numbers given."""

from __future__ import annotations

from treasure_lib.anomaly import wording
from treasure_lib.anomaly.wording import (
    best_score_sentence,
    control_sentence,
    signal_verdict,
    sm_like_sentence,
    upper_bound_sentence,
)


def _s(auc, err=0.005, spread=None, n=None, converged=None):
    out = {"auc": auc, "auc_err": err}
    if spread is not None:
        out.update(auc_seed_std=spread, n_seeds=n)
    if converged is not None:
        out["converged"] = converged
    return out


def test_a_lead_beyond_the_test_and_seed_errors_names_the_best_score():
    summaries = {"reconstruction": _s(0.70), "masked": _s(0.80), "autoencoder": _s(0.74, spread=0.004, n=3)}
    text = best_score_sentence("the dark shower", summaries)
    assert text.startswith(
        "For the dark shower, the masked-token pseudo-likelihood ranks it best (AUC 0.8000 ± 0.0050)"
    )
    assert (
        "lead over the raw-feature autoencoder (AUC 0.7400 ± 0.0050 (seed spread 0.00400)) is 0.0600 ± 0.0074" in text
    )
    assert "larger than the test-sample and seed errors together" in text


def test_a_lead_within_the_seed_spread_is_not_called_a_lead():
    """0.02 ahead with test errors 0.005 each is 2.8 sigma; a seed spread of 0.02 over 3 seeds (its seed mean's error
    0.02 / sqrt(3)) makes it 1.5 sigma."""
    no_spread = {"masked": _s(0.76), "autoencoder": _s(0.74)}
    assert "larger than" in best_score_sentence("Z'", no_spread)
    spread = {"masked": _s(0.76), "autoencoder": _s(0.74, spread=0.02, n=3)}
    text = best_score_sentence("Z'", spread)
    assert "1.5 σ: within the test-sample and seed errors, so the two rank it alike" in text


def test_no_score_is_called_best_when_none_beats_chance():
    level = best_score_sentence("Z'", {"masked": _s(0.505, 0.004), "autoencoder": _s(0.49, 0.004)})
    assert level.startswith("No unsupervised score separates Z' from the standard model") and "best" not in level
    below = best_score_sentence("Z'", {"masked": _s(0.45), "autoencoder": _s(0.40)})
    assert below.startswith("No unsupervised score ranks Z' above the standard model: the highest AUC is the ")
    assert "masked-token pseudo-likelihood's (AUC 0.4500" in below


def test_a_paired_comparison_replaces_the_unpaired_lead():
    summaries = {"masked": _s(0.76), "autoencoder": _s(0.75)}
    assert "rank it alike" in best_score_sentence("Z'", summaries)
    paired = wording.lead_comparison("masked", "autoencoder", summaries)
    paired = type(paired)(**{**paired.__dict__, "err": 0.002, "z": 5.0, "significant": True})
    assert "larger than the test-sample and seed errors" in best_score_sentence("Z'", summaries, paired)


def test_an_autoencoder_that_did_not_finish_learning_carries_no_verdict():
    summaries = {"masked": _s(0.70), "autoencoder": _s(0.90, converged=0.0)}
    text = best_score_sentence("the 4l scalar", summaries)
    assert "masked-token pseudo-likelihood ranks it best" in text and "only score with a number" in text
    assert "raw-feature autoencoder: no number or did not finish learning; left out" in text


def test_share_of_the_supervised_upper_bound():
    text = upper_bound_sentence("Z'", "masked", _s(0.70, 0.01), _s(0.90, 0.01))
    assert "reaches 50% ± 3% of the supervised classifier's separation above chance, (AUC − 0.5), on Z'" in text
    assert "reaches none" in upper_bound_sentence("Z'", "masked", _s(0.45), _s(0.9))
    assert "no upper bound" in upper_bound_sentence("Z'", "masked", _s(0.7), _s(0.5))


def test_a_score_that_loses_its_separation_when_multiplicity_is_matched_ranks_by_multiplicity():
    at_chance = control_sentence("the dark shower", "masked", _s(0.80), _s(0.505, 0.004))
    assert "mostly ranks the dark shower by number of objects" in at_chance and "within 2 σ of 0.5" in at_chance
    halved = control_sentence("the dark shower", "masked", _s(0.80), _s(0.62, 0.004))
    assert "mostly ranks" in halved and "only 40% of its distance from 0.5 is left" in halved
    kept = control_sentence("the dark shower", "masked", _s(0.80), _s(0.75, 0.004), control="jet_pt")
    assert "does not only rank the dark shower by jet pT" in kept and "keeps 83%" in kept
    below = control_sentence("the dark shower", "masked", _s(0.40), _s(0.53, 0.004))
    assert "mostly ranks the dark shower by number of objects" in below and "on the other side of 0.5" in below
    flat = control_sentence("Z'", "masked", _s(0.505, 0.01), _s(0.5, 0.01))
    assert "does not separate Z' from SM even before matching" in flat


def test_the_matched_control_says_how_much_signal_it_could_not_match():
    matched = {**_s(0.51, 0.004), "dropped_fraction": 0.031}
    assert "3.1% of the signal has number of objects values no SM event has" in control_sentence(
        "Z'", "masked", _s(0.8), matched
    )


def test_a_signal_scoring_below_the_standard_model_by_having_fewer_objects_is_said_to_rank_by_multiplicity():
    summaries = {"masked": _s(0.40, 0.01), "autoencoder": _s(0.49, 0.01)}
    text = sm_like_sentence("the dark shower", summaries, mean_objects=(6.1, 3.2))
    assert text.startswith("The dark shower scores *below* the standard model (masked-token pseudo-likelihood")
    assert "raw-feature autoencoder" not in text, "0.49 ± 0.01 is not significantly below 0.5"
    assert "carry fewer objects (3.20 on average against 6.10)" in text and "ranks by multiplicity" in text
    assert "more standard-model-like" not in text
    other = sm_like_sentence("the dark shower", summaries, mean_objects=(3.0, 4.0), rows="jets")
    assert "not by having fewer objects" in other and "its jets look more standard-model-like" in other
    assert sm_like_sentence("Z'", {"masked": _s(0.7)}) == ""


def test_the_signal_paragraph_puts_the_parts_together_for_the_best_score():
    summaries = {"masked": _s(0.80), "reconstruction": _s(0.70)}
    text = signal_verdict(
        "Z'",
        summaries,
        supervised=_s(0.95),
        matched={"masked": _s(0.52, 0.004), "reconstruction": _s(0.7)},
    )
    assert text.index("ranks it best") < text.index("supervised classifier") < text.index("mostly ranks Z'")
    assert "tokenizer reconstruction error mostly" not in text


def test_a_score_has_one_name_on_the_pages_and_in_the_sentences_and_naming_needs_no_torch():
    """`study.names.MODELS` takes chapter 08's score names from `anomaly.wording` (one home), and the names stay
    light: the book's pages import them without torch."""
    import subprocess
    import sys

    from treasure_lib.anomaly.wording import SCORE_NAMES, score_name
    from treasure_lib.study.names import MODELS

    assert {k: MODELS[k] for k in SCORE_NAMES} == SCORE_NAMES
    assert score_name("masked_per_object") == MODELS["masked_per_object"] == "masked-token pseudo-likelihood per object"
    code = "import sys, treasure_lib.study.names; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == (
        "False"
    )


def test_only_a_score_summed_over_objects_is_said_to_rank_by_multiplicity():
    """A per-object score below chance is not explained by the signal's fewer objects: it is said apart."""
    summaries = {"masked": _s(0.24, 0.01), "masked_per_object": _s(0.45, 0.01), "autoencoder": _s(0.65, 0.01)}
    text = sm_like_sentence("the dark shower", summaries, mean_objects=(8.2, 4.9), rows="jets")
    first, _, rest = text.partition(" Not summed over objects")
    assert (
        "masked-token pseudo-likelihood AUC" in first and "per object" not in first and "ranks by multiplicity" in first
    )
    assert "masked-token pseudo-likelihood per object" in rest and "its jets look more standard-model-like" in rest
    assert "autoencoder" not in text
    alone = sm_like_sentence("the dark shower", {"masked_per_object": _s(0.45, 0.01)}, mean_objects=(8.2, 4.9))
    assert "ranks by multiplicity" not in alone and "more standard-model-like" in alone
