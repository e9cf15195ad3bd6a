"""Four-vectors and angles (`treasure_lib.kinematics`) on points with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from treasure_lib import kinematics as kin


def test_delta_phi_wraps_across_plus_minus_pi():
    assert kin.delta_phi(np.pi - 0.1, -np.pi + 0.1) == pytest.approx(-0.2)
    assert kin.delta_phi(-np.pi + 0.1, np.pi - 0.1) == pytest.approx(0.2)
    assert kin.delta_phi(0.3, 0.1) == pytest.approx(0.2)
    phi = np.linspace(-20, 20, 1001)
    wrapped = kin.wrap_phi(phi)
    assert (wrapped >= -np.pi).all() and (wrapped < np.pi).all()
    np.testing.assert_allclose(np.cos(wrapped), np.cos(phi), atol=1e-12)


def test_delta_r_of_known_points():
    assert kin.delta_r(0.0, 0.0, 0.3, 0.4) == pytest.approx(0.5)
    assert kin.delta_r(2.0, 1.0, -1.0, 1.0) == pytest.approx(3.0)
    assert kin.delta_r(1.0, np.pi - 0.3, 1.4, -np.pi + 0.0) == pytest.approx(0.5)  # dphi 0.3 across the wrap
    assert kin.delta_r(np.array([0.5]), np.array([2.0]), np.array([0.5]), np.array([2.0]))[0] == 0.0


def test_back_to_back_massless_45_6_gev_particles_make_91_2_gev():
    pt = np.array([[45.6e3, 45.6e3]])
    m = kin.invariant_mass(pt, np.zeros((1, 2)), np.array([[0.0, np.pi]]), np.zeros((1, 2)))
    assert m[0] == pytest.approx(91.2e3, rel=1e-12)
    # along eta as well: back to back in the rest frame means eta and -eta
    m = kin.invariant_mass(pt, np.array([[1.2, -1.2]]), np.array([[0.4, 0.4 + np.pi]]), np.zeros((1, 2)))
    assert m[0] / 1e3 == pytest.approx(2 * 45.6 * np.cosh(1.2), rel=1e-12)


def test_four_vectors_of_a_massive_particle():
    e, px, py, pz = kin.four_vectors(np.array(30e3), np.array(0.7), np.array(np.pi / 2), np.array(kin.MUON_MASS_MEV))
    assert px == pytest.approx(0.0, abs=1e-9) and py == pytest.approx(30e3)
    assert pz == pytest.approx(30e3 * np.sinh(0.7))
    assert e == pytest.approx(np.hypot(kin.momentum(30e3, 0.7), kin.MUON_MASS_MEV))
    p4 = np.stack([e, px, py, pz], -1)
    assert kin.p4_mass(p4) == pytest.approx(kin.MUON_MASS_MEV, rel=1e-6)
    assert kin.four_vector_mass(e, px, py, pz) == pytest.approx(kin.MUON_MASS_MEV, rel=1e-6)


def test_pt_eta_phi_inverts_four_vectors_and_the_beam_axis_gets_eta_20():
    pt, eta, phi = np.array([12e3, 250e3]), np.array([-2.1, 0.3]), np.array([-3.0, 1.0])
    _, px, py, pz = kin.four_vectors(pt, eta, phi, np.zeros(2))
    back = kin.pt_eta_phi(px, py, pz)
    np.testing.assert_allclose(back[0], pt)
    np.testing.assert_allclose(back[1], eta)
    np.testing.assert_allclose(back[2], phi)
    np.testing.assert_array_equal(kin.pseudorapidity(np.zeros(2), np.zeros(2), np.array([5.0, -5.0])), [20.0, -20.0])


def test_polar_angle_and_pseudorapidity_are_inverse():
    assert kin.polar_angle(0.0) == pytest.approx(np.pi / 2)
    eta = np.linspace(-4, 4, 17)
    np.testing.assert_allclose(kin.eta_of_polar_angle(kin.polar_angle(eta)), eta, atol=1e-12)


def test_boost_to_the_rest_frame_leaves_the_mass_at_rest():
    p = np.array(kin.four_vectors(40e3, 1.5, 0.2, 91.1876e3))
    rest = kin.boost_to_rest_frame(p, p)
    np.testing.assert_allclose(rest, [91.1876e3, 0.0, 0.0, 0.0], atol=1e-6)


def test_track_sum_of_two_pions_back_to_back_in_phi():
    pt = np.array([[10e3, 10e3, 5e3]])
    valid = np.array([[True, True, False]])  # the third track is padding
    jet = kin.track_sum(pt, np.zeros((1, 3)), np.array([[0.5, 0.5 + np.pi, 1.0]]), valid, np.array([0.0]))
    assert jet["pt"][0] == pytest.approx(0.0, abs=1e-9) and jet["eta"][0] == 0.0
    assert jet["mass"][0] == pytest.approx(2 * np.hypot(10e3, kin.PION_MASS_MEV))
    one = kin.track_sum(pt[:, :1], np.array([[0.2]]), np.array([[0.1]]), valid[:, :1], np.array([1.0]))
    assert one["pt"][0] == pytest.approx(10e3) and one["eta"][0] == pytest.approx(1.2)
    assert one["phi"][0] == pytest.approx(0.1)
    assert one["mass"][0] == pytest.approx(kin.PION_MASS_MEV, rel=1e-3)


def test_z_candidate_is_the_opposite_sign_same_flavour_pair_closest_to_the_z():
    # event 0: an e+e- pair at the Z and a mu+mu- pair at 60 GeV; event 1: a same-sign pair only
    half = kin.Z_MASS_GEV * 1e3 / 2
    pt = np.array([[half, half, 30e3, 30e3], [half, half, 1.0, 1.0]])
    phi = np.array([[0.0, np.pi, 0.0, np.pi], [0.0, np.pi, 0.0, 1.0]])
    zeros = np.zeros((2, 4))
    charge = np.array([[1, -1, 1, -1], [1, 1, 1, 1]])
    flavour = np.array([[11, 11, 13, 13], [11, 11, 13, 13]])
    good = np.ones((2, 4), bool)
    m = kin.z_candidate_mass(pt, zeros, phi, zeros, charge, flavour, good)
    assert m[0] == pytest.approx(kin.Z_MASS_GEV * 1e3) and np.isnan(m[1])
