"""Chapter 05's chance level: the share of the most frequent code, not 1/K (issue 14: 'chance is 1/K')."""

from __future__ import annotations

import numpy as np

from treasure_lib.datamodules import TokenFiles, read_split
from treasure_lib.study import pretraining

from .test_datamodules import token_files  # noqa: F401  (the module fixture)


def test_chance_level_is_the_most_frequent_codes_share(token_files):  # noqa: F811
    _, tokens, _ = token_files
    files = TokenFiles(tokens)
    base = pretraining.code_baselines(files, "val")
    rows = read_split(files, None, "val")
    objects = rows["mask"] & (rows["type_ids"] > 0)
    level1 = rows["tokens"][..., 0][objects]
    level1 = level1[level1 >= 5]
    expected = np.bincount(level1).max() / level1.size
    assert base["level_1"] == expected and base["level_1"] > 1 / 8, "codes are not uniform: 1/K flatters a model"
    assert 0 < base["all"] <= max(v for k, v in base.items() if k.startswith("level_"))


def test_the_verdict_reads_accuracy_against_the_chance_level_and_says_residual_levels_are_hard():
    m = {
        "pretrain.masked_accuracy": 0.30,
        "pretrain.masked_accuracy.level_1": 0.5,
        "pretrain.masked_accuracy.level_2": 0.2,
        "pretrain.masked_accuracy.level_3": 0.1,
        "pretrain.epochs_run": 9,
        "pretrain.best_epoch": 5,
        "pretrain.converged": 1.0,
        "pretrain.train_rows": 1000,
        "pretrain.probe_auc": 0.7,
    }
    text = pretraining.verdict(m, {"all": 0.2, "level_1": 0.3, "level_2": 0.1, "level_3": 0.05}, "flavour")
    assert "30.0% of the masked codes exactly, against 20.0% for always guessing the most frequent code" in text
    assert "irreducible" in text and "Early stopping ended training" in text
    low = pretraining.verdict(
        {**m, "pretrain.masked_accuracy": 0.1, "pretrain.converged": 0.0},
        {"all": 0.2, "level_1": 0.3, "level_2": 0.1, "level_3": 0.05},
        "flavour",
    )
    assert "no better than that chance level" in low and "has not converged" in low


def test_collections_the_backbone_barely_predicts_are_named_even_when_the_overall_accuracy_is_high():
    """Events: the overall 6% against 0.7% came from the tracks, while muons sat at the chance level."""
    m = {
        "pretrain.masked_accuracy": 0.061,
        "pretrain.masked_accuracy.tracks": 0.062,
        "pretrain.masked_accuracy.muons": 0.0146,
        "pretrain.masked_accuracy.electrons": 0.0177,
        "pretrain.masked_accuracy.level_1": 0.067,
        "pretrain.epochs_run": 10,
        "pretrain.converged": 1.0,
        "pretrain.train_rows": 100,
        "pretrain.probe_auc": 0.65,
    }
    base = {"all": 0.007, "tracks": 0.0081, "muons": 0.0151, "electrons": 0.0131, "level_1": 0.0068}
    text = pretraining.verdict(m, base, "h_vs_zz_sr")
    assert "Per collection, it predicts muons (0.97x), electrons (1.35x) less than 1.5 times" in text
    assert "tracks (" not in text.split("Per collection")[1], "a collection it does predict is not listed"
    assert "Per collection" not in pretraining.verdict(
        {**m, "pretrain.masked_accuracy.muons": 0.05, "pretrain.masked_accuracy.electrons": 0.05}, base, "x"
    )
