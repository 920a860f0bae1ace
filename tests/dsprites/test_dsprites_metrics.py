"""The factor-MI metric and the Fig. 5 tuning data (vbmi.dsprites.metrics)."""

from __future__ import annotations

import numpy as np
import pytest

from vbmi.dsprites import data as D
from vbmi.dsprites import metrics as Mx


@pytest.fixture(scope="module")
def sample():
    idx = np.random.default_rng(0).choice(D.N_IMAGES, 8000, replace=False)
    return D.latent_grid(idx)[0]


def test_plug_in_mi_and_entropy():
    a = np.repeat(np.arange(4), 250)
    assert Mx.entropy(a) == pytest.approx(np.log(4))
    assert Mx.mutual_info(a, a) == pytest.approx(np.log(4))
    assert Mx.mutual_info(a, a % 2) == pytest.approx(np.log(2))
    assert Mx.mutual_info(a, np.tile(np.arange(2), 500)) == pytest.approx(0.0, abs=1e-12)


def test_fake_encoder_of_true_factors_scores_near_the_top(sample):
    rng = np.random.default_rng(1)
    factors = sample[:, 1:6].astype(float) / np.array([2, 5, 39, 31, 31])
    mu = np.concatenate(
        [factors + 0.003 * rng.standard_normal(factors.shape), 0.001 * rng.standard_normal((len(sample), 5))], axis=1
    )  # 5 informative + 5 dead
    perm = rng.permutation(10)
    s = Mx.factor_scores(mu[:, perm], sample)
    assert s["nmi"].shape == (10, 5)
    np.testing.assert_array_equal(perm[s["winner"]], np.arange(5))
    # 20 bins: shape (3 classes), scale (6) are exact; pos (32) and orientation (40) are binned to 20
    assert (s["best"][[0, 1]] > 0.97).all() and (s["best"][[3, 4]] > 0.8).all() and s["best"][2] > 0.75
    assert s["mig"] > 0.75
    np.testing.assert_array_equal(s["active"][np.argsort(perm)], [True] * 5 + [False] * 5)


def test_random_codes_score_near_the_bottom(sample):
    mu = np.random.default_rng(2).standard_normal((len(sample), 10))
    s = Mx.factor_scores(mu, sample)
    assert s["best"].max() < 0.05 and s["mig"] < 0.02


def test_tuning_curves(sample):
    mu = np.stack([sample[:, 4], sample[:, 5] * 2.0, sample[:, 2], sample[:, 3] * (sample[:, 1] == 2)], 1).astype(float)
    t = Mx.tuning(mu, sample)
    assert t["pos"].shape == (4, 32, 32) and t["scale"].shape == (4, 3, 6) and t["orientation"].shape == (4, 3, 40)
    np.testing.assert_allclose(np.nanmean(t["pos"][0], axis=0), np.arange(32))  # latent 0 = posX (columns)
    np.testing.assert_allclose(np.nanmean(t["pos"][1], axis=1), 2.0 * np.arange(32))  # latent 1 = posY (rows)
    np.testing.assert_allclose(t["scale"][2], np.tile(np.arange(6.0), (3, 1)))
    np.testing.assert_allclose(t["orientation"][3], [np.zeros(40), np.zeros(40), np.arange(40.0)])
