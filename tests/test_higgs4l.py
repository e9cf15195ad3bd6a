"""The H -> 4l selection, its cut flow and the decay angles, on hand-built four-vectors with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from treasure_lib.errors import ConfigError, InputFileError
from treasure_lib.higgs4l import (
    STEPS,
    VARIABLES,
    H4lCuts,
    cut_flow,
    decay_angles,
    derived_columns,
    high_level_variables,
    quadruplet_table,
    quadruplets,
)
from treasure_lib.io.batch import Batch, ObjectArrays
from treasure_lib.kinematics import Z_MASS_GEV, boost_to_rest_frame

EL_NAMES = ("pt", "eta", "phi", "charge", "trk_iso03", "LHLoose", "LHMedium", "LHTight")
MU_NAMES = ("pt", "eta", "phi", "charge", "trk_iso03", "quality", "muonType")


def _boost_z(p, beta):
    """Boost four-vectors [..., 4] (E, px, py, pz) along z with velocity beta (may be an array)."""
    gamma = 1.0 / np.sqrt(1.0 - beta**2)
    e, pz = p[..., 0], p[..., 3]
    return np.stack([gamma * (e + beta * pz), p[..., 1], p[..., 2], gamma * (pz + beta * e)], axis=-1)


def _rotate_z(p, angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([p[..., 0], c * p[..., 1] - s * p[..., 2], s * p[..., 1] + c * p[..., 2], p[..., 3]], axis=-1)


def build_decay(cos_theta_star, alpha, cos_theta1, phi1, cos_theta2, phi2, m1=Z_MASS_GEV, m2=30.0, m_x=125.0):
    """X (at rest) -> Z1 Z2 -> (l1- l1+)(l2- l2+) with massless leptons from the decay angles (GeV).

    Built in a frame with Z1 along +z: l1- at (theta1, phi1) from +z in the Z1 frame, l2- at theta2 from -z in the
    Z2 frame, the beam at polar angle theta* and azimuth alpha; then rotated so the beam is the z axis. By
    construction Phi = phi1 - phi2 and Phi1 = alpha - phi1 (wrapped), the definitions' values.
    """
    args = np.broadcast_arrays(*map(np.asarray, (cos_theta_star, alpha, cos_theta1, phi1, cos_theta2, phi2)))
    cts, alpha, ct1, phi1, ct2, phi2 = (a.astype(float) for a in args)
    p = np.sqrt((m_x**2 - (m1 + m2) ** 2) * (m_x**2 - (m1 - m2) ** 2)) / (2 * m_x)
    e1, e2 = np.hypot(m1, p), np.hypot(m2, p)

    def pair(m, ct, ph, sign):
        st = np.sqrt(1 - ct**2)
        d = np.stack([st * np.cos(ph), st * np.sin(ph), sign * ct], axis=-1) * (m / 2)
        e = np.full(ct.shape + (1,), m / 2)
        return np.concatenate([e, d], -1), np.concatenate([e, -d], -1)

    l1m, l1p = (_boost_z(v, p / e1) for v in pair(m1, ct1, phi1, +1.0))
    l2m, l2p = (_boost_z(v, -p / e2) for v in pair(m2, ct2, phi2, -1.0))
    st = np.sqrt(1 - cts**2)
    n = np.stack([st * np.cos(alpha), st * np.sin(alpha), cts], axis=-1)  # the beam, to become +z
    helper = np.where(np.abs(n[..., :1]) < 0.9, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])
    b1 = np.cross(n, helper)
    b1 /= np.linalg.norm(b1, axis=-1, keepdims=True)
    b2 = np.cross(n, b1)
    rot = np.stack([b1, b2, n], axis=-2)  # rows: new x, y, z
    turn = lambda v: np.concatenate([v[..., :1], np.einsum("...ij,...j->...i", rot, v[..., 1:])], -1)  # noqa: E731
    return tuple(turn(v) for v in (l1m, l1p, l2m, l2p))


def _wrap(a):
    return (a + np.pi) % (2 * np.pi) - np.pi


def test_decay_angles_recover_the_angles_a_configuration_was_built_from():
    rng = np.random.default_rng(3)
    n = 500
    cts, ct1, ct2 = (rng.uniform(-0.95, 0.95, n) for _ in range(3))
    alpha, phi1, phi2 = (rng.uniform(-np.pi, np.pi, n) for _ in range(3))
    got = decay_angles(*build_decay(cts, alpha, ct1, phi1, ct2, phi2))
    np.testing.assert_allclose(got["cos_theta_star"], cts, atol=1e-9)
    np.testing.assert_allclose(got["cos_theta1"], ct1, atol=1e-9)
    np.testing.assert_allclose(got["cos_theta2"], ct2, atol=1e-9)
    np.testing.assert_allclose(_wrap(got["Phi"] - _wrap(phi1 - phi2)), 0.0, atol=1e-7)
    np.testing.assert_allclose(_wrap(got["Phi1"] - _wrap(alpha - phi1)), 0.0, atol=1e-7)


def test_back_to_back_decays_along_the_beam():
    """Z1 along the beam: cos theta* = 1; l1- along the Z1 flight and l2- along the Z2 flight: cos theta1,2 = 1."""
    got = decay_angles(*build_decay(1.0 - 1e-12, 0.0, 1.0 - 1e-12, 0.3, 1.0 - 1e-12, 0.1))
    assert got["cos_theta_star"] == pytest.approx(1.0) and got["cos_theta1"] == pytest.approx(1.0)
    assert got["cos_theta2"] == pytest.approx(1.0)
    opposite = decay_angles(*build_decay(-0.2, 0.0, -1.0 + 1e-12, 0.0, 0.4, 1.0))
    assert opposite["cos_theta1"] == pytest.approx(-1.0)


def test_decay_angles_do_not_change_under_beam_boosts_and_rotations_about_the_beam():
    rng = np.random.default_rng(5)
    n = 200
    cosines, azimuths = rng.uniform(-0.9, 0.9, (3, n)), rng.uniform(-3, 3, (3, n))
    leptons = build_decay(cosines[0], azimuths[0], cosines[1], azimuths[1], cosines[2], azimuths[2])
    # give the 4l system transverse momentum first (a boost along x), as a recoiling jet would
    gamma, beta = 1 / np.sqrt(1 - 0.5**2), 0.5
    moving = [
        np.stack(
            [gamma * (p[..., 0] + beta * p[..., 1]), gamma * (p[..., 1] + beta * p[..., 0]), p[..., 2], p[..., 3]], -1
        )
        for p in leptons
    ]
    reference = decay_angles(*moving)
    for beta_z, turn in ((0.7, 0.0), (-0.9, 2.0), (0.3, -1.2)):
        moved = decay_angles(*[_rotate_z(_boost_z(p, beta_z), turn) for p in moving])
        for k in reference:
            np.testing.assert_allclose(_wrap(moved[k] - reference[k]), 0.0, atol=1e-7, err_msg=k)


def test_boost_to_rest_frame_brings_the_frame_to_rest_and_keeps_the_mass():
    rng = np.random.default_rng(0)
    p3 = rng.normal(0, 50, (100, 3))
    frame = np.concatenate([np.sqrt((p3**2).sum(1, keepdims=True) + 125.0**2), p3], 1)
    rest = boost_to_rest_frame(frame, frame)
    np.testing.assert_allclose(rest[:, 1:], 0.0, atol=1e-9)
    np.testing.assert_allclose(rest[:, 0], 125.0)
    at_rest = np.array([[125.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(boost_to_rest_frame(frame, at_rest), frame)  # a frame at rest changes nothing


# --------------------------------------------------------------------------- events from four-vectors


def _lepton(p4_gev, charge, flavour, iso=0.0):
    e, px, py, pz = p4_gev
    pt = np.hypot(px, py)
    return {
        "pt": pt * 1e3,
        "eta": np.arcsinh(pz / pt),
        "phi": np.arctan2(py, px),
        "charge": charge,
        "flavour": flavour,
        "iso": iso,
    }


def _arrays(events, width=4):
    """Per-event lists of leptons -> (electrons, muons) ObjectArrays, pT-ordered like the reader's."""
    out = {}
    for flavour, names in ((11, EL_NAMES), (13, MU_NAMES)):
        feats = np.zeros((len(events), width, len(names)), np.float32)
        mask = np.zeros((len(events), width), bool)
        for i, ev in enumerate(events):
            leps = sorted([lep for lep in ev if lep["flavour"] == flavour], key=lambda lep: -lep["pt"])
            for j, lep in enumerate(leps[:width]):
                row = {
                    "pt": lep["pt"],
                    "eta": lep["eta"],
                    "phi": lep["phi"],
                    "charge": lep["charge"],
                    "trk_iso03": lep["iso"],
                    "LHLoose": 1,
                    "LHMedium": 1,
                    "LHTight": 1,
                    "quality": 0,
                    "muonType": 0,
                }
                feats[i, j] = [row[n] for n in names]
                mask[i, j] = True
        out[flavour] = ObjectArrays(feats, mask, names)
    return out[11], out[13]


# a configuration whose four leptons are hard and central (checked below): Z1 -> mumu, Z2 -> ee
GOOD_ANGLES = dict(cos_theta_star=0.1, alpha=0.4, cos_theta1=0.3, phi1=1.0, cos_theta2=-0.2, phi2=2.5)


def _event(m1=Z_MASS_GEV, m2=30.0, m_x=125.0, scale=1.0, iso=(0.0, 0.0, 0.0, 0.0), charges=(-1, 1, -1, 1)):
    l1m, l1p, l2m, l2p = build_decay(**GOOD_ANGLES, m1=m1, m2=m2, m_x=m_x)
    flav = (13, 13, 11, 11)
    return [_lepton(p * scale, q, f, i) for p, q, f, i in zip((l1m, l1p, l2m, l2p), charges, flav, iso)]


def test_m4l_and_pair_masses_of_a_known_configuration():
    electrons, muons = _arrays([_event()])
    v = high_level_variables(quadruplets(electrons, muons))
    assert v["m12"][0] == pytest.approx(Z_MASS_GEV, rel=1e-4) and v["m34"][0] == pytest.approx(30.0, rel=1e-4)
    assert v["m4l"][0] == pytest.approx(125.0, rel=1e-4) and v["pt4l"][0] == pytest.approx(0.0, abs=1e-3)
    assert v["cos_theta_star"][0] == pytest.approx(0.1, abs=1e-4)
    assert v["Phi"][0] == pytest.approx(_wrap(1.0 - 2.5), abs=1e-4)
    # two Z bosons of 40 GeV momentum back to back: m4l = 2 sqrt(mZ^2 + p^2)
    p, mz = 40.0, Z_MASS_GEV
    ez = np.hypot(mz, p)
    l1m, l1p, l2m, l2p = build_decay(0.0, 0.0, 0.2, 0.5, -0.4, 1.0, m1=mz, m2=mz, m_x=2 * ez)
    leptons = [_lepton(v, q, f) for v, q, f in zip((l1m, l1p, l2m, l2p), (-1, 1, -1, 1), (13, 13, 11, 11))]
    v = high_level_variables(quadruplets(*_arrays([leptons])))
    assert v["m4l"][0] == pytest.approx(2 * ez, rel=1e-4) and v["m34"][0] == pytest.approx(mz, rel=1e-4)


def test_quadruplet_table_pairs_same_flavour_slots_only():
    table = quadruplet_table(4, 4)
    assert len(table) == 3 + 3 + 36
    flavour = np.array([11] * 4 + [13] * 4)
    assert (flavour[table[:, 0]] == flavour[table[:, 1]]).all() and (flavour[table[:, 2]] == flavour[table[:, 3]]).all()
    assert all(len(set(row)) == 4 for row in table.tolist())
    assert len(quadruplet_table(1, 2)) == 0


def test_cut_flow_counts_every_step_on_hand_built_events():
    """Eight events, each failing one step later than the one before (the first passes everything)."""
    events = [
        _event(),  # passes every step
        _event(m_x=150.0, m2=40.0),  # m4l = 150: outside the 115-130 window
        _event(m2=8.0),  # m34 = 8 < 12
        _event(m1=40.0, m2=30.0),  # m12 = 40 < 50 (both pairs off-shell)
        _event(iso=(0.0, 0.0, 0.4, 0.0)),  # one lepton not isolated
        _event(scale=0.6),  # leading lepton at 18 GeV: below the 20 GeV threshold
        _event(charges=(-1, -1, -1, 1)),  # the muons are same-sign: no second SFOS pair
        _event()[:3],  # three leptons
    ]
    electrons, muons = _arrays(events)
    quads = quadruplets(electrons, muons, H4lCuts())
    weights = np.arange(1.0, 9.0)
    flow = cut_flow(quads, weights)
    expected = dict(zip(STEPS, [8, 7, 6, 5, 4, 3, 2, 1]))
    assert flow.events == expected
    assert flow.weighted == {s: float(weights[:n].sum()) for s, n in expected.items()}
    efficiencies = [r["efficiency"] for r in flow.rows()][1:]
    assert efficiencies == pytest.approx([7 / 8, 6 / 7, 5 / 6, 4 / 5, 3 / 4, 2 / 3, 1 / 2])
    assert (flow + flow).events["m4l_window"] == 2
    assert quads.channel.tolist() == ["2mu2e"] * 6 + ["", ""]


def test_pair_closest_to_the_z_leads_and_the_furthest_going_quadruplet_is_chosen():
    # Z1 -> ee (91 GeV), Z2 -> mumu (30 GeV): the electron pair leads
    flipped = [dict(lep, flavour=24 - lep["flavour"]) for lep in _event()]
    quads = quadruplets(*_arrays([flipped]))
    assert quads.channel.tolist() == ["2e2mu"] and quads.flavour.tolist() == [[11, 13]]
    # l1- is not isolated; an extra isolated mu- makes a pair further from m_Z: the quadruplet with the extra muon
    # gets further through the cut flow (isolation) and is chosen over the one whose m12 is closest to m_Z
    event = _event(iso=(0.9, 0.0, 0.0, 0.0))
    extra = dict(event[0], iso=0.0, pt=event[0]["pt"] * 1.1)
    alone = high_level_variables(quadruplets(*_arrays([event])))["m12"][0]
    quads = quadruplets(*_arrays([event + [extra]]))
    m12 = high_level_variables(quads)["m12"][0]
    assert alone == pytest.approx(Z_MASS_GEV, rel=1e-4) and 93.0 < m12 < 106.0
    assert quads.passed["isolation"].tolist() == [True] and quads.passed["m12"].tolist() == [True]


def test_derived_columns_give_one_value_per_row_with_nan_where_no_quadruplet():
    events = [_event(), _event()[:3], _event(m_x=150.0, m2=40.0)]
    electrons, muons = _arrays(events)
    batch = Batch(
        {"electrons": electrons, "muons": muons},
        np.zeros(3, np.int64),
        np.ones(3, np.float32),
        np.arange(3),
        "f.h5",
        {"process": "ggH_ZZ4l", "cross_section_pb": 0.002, "sum_of_weights": 3.0},
    )
    cols = derived_columns(batch, {"m4l_window_gev": [115.0, 130.0]})
    assert set(cols) == set(VARIABLES) | {"pass_h4l_preselection", "pass_h4l_sr"}
    assert all(len(v) == 3 for v in cols.values())
    assert cols["pass_h4l_preselection"].tolist() == [True, False, True]
    assert cols["pass_h4l_sr"].tolist() == [True, False, False]
    assert np.isnan(cols["m4l"][1]) and cols["m4l"][2] == pytest.approx(150.0, rel=1e-4)
    assert cols["m4l"].dtype == np.float32 and cols["pass_h4l_sr"].dtype == bool


def test_bad_selection_inputs_are_explained():
    electrons, muons = _arrays([_event()])
    no_iso = ObjectArrays(muons.features[..., :4], muons.mask, MU_NAMES[:4])
    with pytest.raises(InputFileError, match=r"muons feature\(s\) \['trk_iso03', 'quality'\]"):
        quadruplets(electrons, no_iso)
    with pytest.raises(ConfigError, match="electron_id must be one of LHLoose"):
        H4lCuts(electron_id="Medium")
    with pytest.raises(ConfigError, match=r"m12_gev must be \[low, high\]"):
        H4lCuts.from_params({"m12_gev": [106.0, 50.0]})
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['m4l_gev'\]"):
        H4lCuts.from_params({"m4l_gev": [110, 140]})
    batch = Batch({"electrons": electrons}, np.zeros(1, np.int64), np.ones(1, np.float32), np.arange(1), "x.h5")
    with pytest.raises(InputFileError, match=r"x.h5: the H -> 4l selection needs collection\(s\) \['muons'\]"):
        derived_columns(batch, None)
