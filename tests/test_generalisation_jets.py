"""The jets generalisation verdict: a flavour model trained on ttbar jets, tested on ttbar and Z' jets."""

from __future__ import annotations

import math

from treasure_lib.study.generalisation import jets_sentence


def _result(light, light_err, n_b=800):
    return {
        "counts": {"n_b": n_b, "n_c": 300, "n_light": 1400},
        "summary": {
            "light_rejection_at_77": light,
            "light_rejection_at_77_err": light_err,
            "c_rejection_at_77": 3.2,
            "c_rejection_at_77_err": 0.4,
        },
        "bins": [{"value": light, "err": light_err}],
    }


def _gen(z_light, z_err):
    return {
        "source": "ttbar",
        "converged": True,
        "health": {},
        "results": {"ttbar": _result(21.0, 5.2), "Zprime_qq": _result(z_light, z_err, n_b=150)},
    }


def test_a_shift_within_the_errors_of_two_independent_test_samples_is_not_called_a_change():
    text = jets_sentence(_gen(18.4, 6.7))
    assert "moves by -2.6 ± 8.5" in text and "0.3 σ: not significant at this sample size" in text


def test_a_large_drop_on_the_other_sample_is_significant():
    text = jets_sentence(_gen(5.0, 1.0))
    diff, err = 5.0 - 21.0, math.hypot(5.2, 1.0)
    assert f"{abs(diff) / err:.1f} σ: a significant change" in text


def test_an_unconverged_source_model_carries_no_verdict():
    gen = {
        **_gen(5.0, 1.0),
        "converged": False,
        "health": {
            "seed": 1,
            "converged": 0.0,
            "best_epoch": 2.0,
            "epochs_run": 3.0,
            "best_val_loss": 1.0,
            "prior_entropy": 1.01,
        },
    }
    assert "did not finish learning" in jets_sentence(gen) and "moves by" not in jets_sentence(gen)
