"""Likelihood-ratio tests against lme4's anova() and the seeded parametric bootstrap."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mlmcourse
from mlmcourse.inference import BootstrapLRT, bootstrap_lrt, lrt, parametric_bootstrap
from mlmcourse.lmm import LmerWarning, lmer

REFERENCE = Path(__file__).parent / "reference" / "lme4.json"
SPEC = json.loads(REFERENCE.read_text()) if REFERENCE.exists() else {"lrt": {}, "models": {}}
LRT_PAIRS = [pytest.param(key, id=f"{key}: anova({rec['m0']}, {rec['m1']})") for key, rec in SPEC["lrt"].items()]
needs_reference = pytest.mark.skipif(not REFERENCE.exists(), reason="tests/reference/lme4.json not generated yet")
_FITS: dict[str, object] = {}


def _reference_fit(model_id: str):
    record = SPEC["models"][model_id]
    if model_id not in _FITS:
        data = mlmcourse.load(record["data"])
        if record["data"] in ("hsb", "hsb40"):
            data["cses"] = data["SES"] - data["MEANSES"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LmerWarning)
            _FITS[model_id] = lmer(record["formula"], data, reml=record["reml"])
    return _FITS[model_id]


@pytest.fixture(scope="module")
def sleep_pair(sleep):
    # lme4: m0 <- lmer(Reaction ~ Days + (1|Subject), sleepstudy, REML = FALSE); m1 with (Days|Subject)
    return (lmer("Reaction ~ Days + (1 | Subject)", sleep, reml=False),
            lmer("Reaction ~ Days + (Days | Subject)", sleep, reml=False))


def _assert_matches_anova(table: pd.DataFrame, rows: list[dict]) -> None:
    assert list(table.columns) == ["model", "npar", "aic", "bic", "loglik", "deviance", "statistic", "df",
                                   "p_value", "p_value_boundary"]
    for (_, ours), theirs in zip(table.iterrows(), rows):
        assert ours["npar"] == theirs["npar"]
        for column in ("aic", "bic", "loglik", "deviance"):
            assert ours[column] == pytest.approx(theirs[column], abs=2e-4)
    assert table["statistic"].iloc[1] == pytest.approx(rows[1]["chisq"], abs=2e-4)
    assert table["df"].iloc[1] == rows[1]["df"]
    assert table["p_value"].iloc[1] == pytest.approx(rows[1]["p_value"], rel=1e-3)


# ------------------------------------------------------------------ lrt()
@needs_reference
@pytest.mark.parametrize("key", LRT_PAIRS)
def test_lrt_of_reml_fits_matches_anova_refit_false(key):
    # lme4: anova(m0, m1, refit = FALSE)
    record = SPEC["lrt"][key]
    table = lrt(_reference_fit(record["m0"]), _reference_fit(record["m1"]), refit=False)
    _assert_matches_anova(table, record["refit_false"])


@needs_reference
@pytest.mark.parametrize("key", LRT_PAIRS)
def test_lrt_refits_by_ml_as_anova_does(key):
    # lme4: anova(m0, m1), which refits both models by ML
    record = SPEC["lrt"][key]
    with pytest.warns(LmerWarning, match="maximum likelihood"):
        table = lrt(_reference_fit(record["m0"]), _reference_fit(record["m1"]))
    _assert_matches_anova(table, record["refit_ml"])


def test_lrt_sorts_the_models_by_size(sleep_pair):
    m0, m1 = sleep_pair
    assert list(lrt(m1, m0)["npar"]) == [4, 6]


def test_lrt_refuses_reml_fits_with_different_fixed_effects(sleep):
    m0 = lmer("Reaction ~ 1 + (1 | Subject)", sleep)
    m1 = lmer("Reaction ~ Days + (1 | Subject)", sleep)
    with pytest.raises(ValueError, match="differ in their fixed effects.*refit=True"):
        lrt(m0, m1, refit=False)


def test_lrt_refuses_models_of_different_rows(sleep):
    m0 = lmer("Reaction ~ Days + (1 | Subject)", sleep, reml=False)
    m1 = lmer("Reaction ~ Days + (1 | Subject)", sleep.iloc[:170], reml=False)
    with pytest.raises(ValueError, match="different numbers of rows \\(180 vs 170\\)"):
        lrt(m0, m1)


def test_boundary_p_value_for_a_slope_with_its_covariance(sleep_pair):
    # adding (Days | Subject) to (1 | Subject): 50:50 mixture of chi2(1) and chi2(2)
    table = lrt(*sleep_pair)
    chisq = table["statistic"].iloc[1]
    expected = 0.5 * stats.chi2.sf(chisq, 1) + 0.5 * stats.chi2.sf(chisq, 2)
    assert table["p_value_boundary"].iloc[1] == pytest.approx(expected, rel=1e-12)
    assert table["p_value_boundary"].iloc[1] < table["p_value"].iloc[1]


def test_boundary_p_value_for_one_variance_halves_the_chi2_p_value():
    scots = mlmcourse.load("scotssec")
    # lme4: anova(lmer(attain ~ verbal + (1|primary)), lmer(attain ~ verbal + (1|primary) + (1|second)))
    m0 = lmer("attain ~ verbal + (1 | primary)", scots, reml=False)
    m1 = lmer("attain ~ verbal + (1 | primary) + (1 | second)", scots, reml=False)
    table = lrt(m0, m1)
    assert table["df"].iloc[1] == 1
    assert table["p_value_boundary"].iloc[1] == pytest.approx(0.5 * table["p_value"].iloc[1], rel=1e-12)


def test_no_boundary_p_value_when_fixed_effects_differ(sleep):
    m0 = lmer("Reaction ~ 1 + (1 | Subject)", sleep, reml=False)
    m1 = lmer("Reaction ~ Days + (1 | Subject)", sleep, reml=False)
    assert np.isnan(lrt(m0, m1)["p_value_boundary"].iloc[1])


# -------------------------------------------------------------- bootstrap
def test_parametric_bootstrap_is_seeded_and_labelled(sleep_pair):
    _, m1 = sleep_pair
    first = parametric_bootstrap(m1, lambda m: m.fixef, n_boot=4, seed=11)
    again = parametric_bootstrap(m1, lambda m: m.fixef, n_boot=4, seed=11)
    other = parametric_bootstrap(m1, lambda m: m.fixef, n_boot=4, seed=12)
    assert list(first.columns) == ["(Intercept)", "Days"] and len(first) == 4
    pd.testing.assert_frame_equal(first, again)
    assert not np.allclose(first, other)


def test_parametric_bootstrap_of_a_number_has_one_column(sleep_pair):
    boot = parametric_bootstrap(sleep_pair[0], lambda m: m.sigma, n_boot=3, seed=1)
    assert list(boot.columns) == ["statistic"] and boot.shape == (3, 1)


def test_simulation_reproduces_the_fitted_model(sleep_pair):
    # with the fitted values as the truth, the refitted estimates centre on them
    m0 = sleep_pair[0]
    boot = parametric_bootstrap(m0, lambda m: pd.Series({"Days": m.fixef["Days"], "sigma": m.sigma,
                                                          "tau": m.varcorr["sdcor"].iloc[0]}), n_boot=40, seed=3)
    assert abs(boot["Days"].mean() - m0.fixef["Days"]) < 4 * m0.std_error["Days"] / np.sqrt(40)
    assert boot["sigma"].mean() == pytest.approx(m0.sigma, rel=0.03)
    assert boot["tau"].mean() == pytest.approx(m0.varcorr["sdcor"].iloc[0], rel=0.15)


def test_bootstrap_lrt_is_reproducible_and_counts_as_pbmodcomp(sleep_pair):
    result = bootstrap_lrt(*sleep_pair, n_boot=5, seed=2)
    assert isinstance(result, BootstrapLRT) and result.n_boot == 5 and result.df == 2
    assert result.statistic == pytest.approx(42.1393, abs=1e-3)  # lme4: anova(m0, m1)$Chisq[2]
    expected = (1 + np.sum(result.replicates >= result.statistic)) / 6
    assert result.p_value == pytest.approx(expected)
    np.testing.assert_array_equal(bootstrap_lrt(*sleep_pair, n_boot=5, seed=2).replicates, result.replicates)
    assert (result.replicates >= 0).all()


def test_bootstrap_does_not_depend_on_the_number_of_workers(sleep_pair):
    serial = bootstrap_lrt(*sleep_pair, n_boot=4, seed=9, n_jobs=1)
    parallel = bootstrap_lrt(*sleep_pair, n_boot=4, seed=9, n_jobs=2)
    np.testing.assert_allclose(parallel.replicates, serial.replicates, rtol=1e-10)


def test_bootstrap_refuses_a_bad_number_of_replicates(sleep_pair):
    with pytest.raises(ValueError, match="n_boot"):
        parametric_bootstrap(sleep_pair[0], lambda m: m.sigma, n_boot=0, seed=1)
