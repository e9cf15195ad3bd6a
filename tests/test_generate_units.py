"""Generator building blocks: seeds, job planning, vectorised helpers, tagger calibration."""

from __future__ import annotations

import numpy as np
import pytest

from treasure_lib import config
from treasure_lib.errors import ConfigError
from treasure_lib.generate.detector import detector_config
from treasure_lib.generate.grouping import event_pairs, pad_by_group
from treasure_lib.generate.jets import association_cone
from treasure_lib.generate.run import job_seed, plan_jobs
from treasure_lib.generate.taggers import DL1D, GN2, tagger_scores
from treasure_lib.generate.truth import heaviest_quark, is_hadron
from treasure_lib.metrics import discriminant_b

from .conftest import ROOT, generate_sections

DEFAULT = ROOT / "params" / "default.yaml"


def test_job_seeds_are_reproducible_distinct_and_in_pythia_range():
    seeds = [job_seed(42, f"ttbar_{k:03d}") for k in range(50)]
    assert seeds == [job_seed(42, f"ttbar_{k:03d}") for k in range(50)]
    assert len(set(seeds)) == 50 and all(1 <= s <= 900_000_000 for s in seeds)
    assert job_seed(43, "ttbar_000") != job_seed(42, "ttbar_000")


def test_large_samples_are_split_into_files_with_consecutive_event_numbers(tmp_path):
    params = config.load(
        [DEFAULT],
        [
            f"generate.output_dir={tmp_path}",
            "generate.samples={ttbar: 12000, QCD: 10}",
            "generate.events_per_file=5000",
        ],
    )
    jobs = plan_jobs(*generate_sections(params))
    assert [(j.process, j.n_events, j.first_event_number) for j in jobs] == [
        ("ttbar", 5000, 0),
        ("ttbar", 5000, 5000),
        ("ttbar", 2000, 10000),
        ("QCD", 10, 0),
    ]
    assert jobs[0].jets_path.endswith("jets_ttbar_000.h5") and jobs[2].events_path.endswith("events_ttbar_002.h5")
    assert "Beams:eCM = 13600." in jobs[0].settings and "Top:gg2ttbar = on" in jobs[0].settings


def test_unknown_process_and_detector_parameter_are_explained():
    with pytest.raises(ConfigError, match="unknown process\\(es\\) \\['ttbarr'\\]"):
        plan_jobs(*generate_sections(config.load([DEFAULT], ["generate.samples={ttbarr: 10}"])))
    with pytest.raises(
        ConfigError, match="'generate.detector.track_efficency_central'; did you mean 'track_efficiency_central'"
    ):
        detector_config({"track_efficency_central": 0.9})


def test_hadron_flavour_from_pdg_ids():
    ids = np.array([511, -521, 5122, 421, -4122, 211, 2212, 2101, 5, 21, 443, 553])
    assert heaviest_quark(ids).tolist() == [5, 5, 5, 4, 4, 2, 2, 0, 0, 0, 4, 5]
    assert is_hadron(ids).tolist() == [True] * 7 + [False, False, False, True, True]


def test_event_pairs_equals_brute_force():
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 7, 30), rng.integers(0, 7, 40)
    ia, ib = event_pairs(a, b, 7)
    got = sorted(zip(ia.tolist(), ib.tolist()))
    assert got == sorted((i, j) for i in range(30) for j in range(40) if a[i] == b[j])


def test_pad_by_group_orders_members_and_truncates():
    group = np.array([1, 0, 1, 1, 0])
    key = np.array([3.0, 1.0, 1.0, 2.0, 0.5])
    idx, mask = pad_by_group(group, key, 3, 2)
    assert mask.tolist() == [[True, True], [True, True], [False, False]]
    assert idx[0].tolist() == [4, 1] and idx[1].tolist() == [2, 3]


def test_ftag_association_cone_shrinks_with_pt():
    assert association_cone(np.array([20e3]))[0] == pytest.approx(0.239 + np.exp(-1.22 - 1.64e-5 * 20e3))
    assert association_cone(np.array([20e3]))[0] > association_cone(np.array([200e3]))[0] > 0.239


@pytest.mark.parametrize("tagger, light_range, c_range", [(GN2, (200, 500), (10, 25)), (DL1D, (100, 300), (6, 15))])
def test_emulated_taggers_meet_their_rejection_targets_at_77_percent(tagger, light_range, c_range):
    rng = np.random.default_rng(0)
    labels = np.repeat([5, 4, 0], 200_000)
    scores = tagger_scores(rng, labels, tagger)
    name = tagger.name
    d = discriminant_b(np.stack([scores[f"{name}_{p}"] for p in ("pb", "pc", "pu")], 1), f_c=0.2)
    cut = np.quantile(d[labels == 5], 0.23)
    light_rej = 1 / np.mean(d[labels == 0] > cut)
    c_rej = 1 / np.mean(d[labels == 4] > cut)
    assert light_range[0] < light_rej < light_range[1]
    assert c_range[0] < c_rej < c_range[1]
    total = sum(scores[f"{name}_{k}"] for k in (["pb", "pc", "pu", "ptau"] if tagger.has_tau else ["pb", "pc", "pu"]))
    np.testing.assert_allclose(total, 1.0, rtol=1e-5)


def test_particle_table_looks_up_charges_and_grows_with_new_ids():
    from treasure_lib.generate.truth import ParticleTable

    calls = []

    def charge_of(ids):
        calls.append(ids.tolist())
        return np.sign(ids) * (np.abs(ids) == 211)

    table = ParticleTable(charge_of)
    charge, heavy = table.lookup(np.array([211, -211, 511, 211]))
    assert charge.tolist() == [1, -1, 0, 1] and heavy.tolist() == [2, 2, 5, 2]
    charge, heavy = table.lookup(np.array([421, 211]))
    assert charge.tolist() == [0, 1] and heavy.tolist() == [4, 2]
    assert calls == [[-211, 211, 511], [421]], "each id is asked of Pythia once"
