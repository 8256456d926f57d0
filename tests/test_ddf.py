"""Satterthwaite and Kenward-Roger t tests against lmerTest and pbkrtest (tests/reference/inference.json).

lmerTest: ``coef(summary(m))`` and ``coef(summary(m, ddf = "Kenward-Roger"))``;
pbkrtest: ``vcovAdj(m)``. Tolerances: df 1e-2 relative, standard errors 1e-4
relative, p-values 1e-3 absolute.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _inference_reference import MODELS, REFERENCE, fit, matrix, models_with, r_call, table
from mlmcourse import ddf

pytestmark = pytest.mark.skipif(not REFERENCE.exists(), reason="tests/reference/inference.json not generated")


def _params(key):
    return [pytest.param(mid, id=r_call(mid)) for mid in models_with(key)]


def _compare(ours: pd.DataFrame, theirs: pd.DataFrame):
    ours = ours.set_index("term").loc[theirs.index]
    np.testing.assert_allclose(ours["estimate"], theirs["estimate"], rtol=1e-4, atol=1e-8)
    np.testing.assert_allclose(ours["std_error"], theirs["std_error"], rtol=1e-4)
    np.testing.assert_allclose(ours["df"], theirs["df"], rtol=1e-2)
    np.testing.assert_allclose(ours["statistic"], theirs["statistic"], rtol=1e-3)
    np.testing.assert_allclose(ours["p_value"], theirs["p_value"], atol=1e-3)


@pytest.mark.parametrize("mid", _params("satterthwaite"))
def test_satterthwaite_table_matches_lmertest(mid):
    # lmerTest: coef(summary(m))
    _compare(fit(mid).coef_table(), table(MODELS[mid], "satterthwaite"))


@pytest.mark.parametrize("mid", _params("kenward_roger"))
def test_kenward_roger_table_matches_lmertest(mid):
    # lmerTest: coef(summary(m, ddf = "Kenward-Roger"))
    _compare(fit(mid).coef_table(ddf="kenward-roger"), table(MODELS[mid], "kenward_roger"))


@pytest.mark.parametrize("mid", _params("vcov_kenward_roger"))
def test_adjusted_covariance_matches_pbkrtest(mid):
    # pbkrtest: vcovAdj(m)
    theirs = matrix(MODELS[mid], "vcov_kenward_roger")
    ours = ddf.vcov_kenward_roger(fit(mid)).loc[theirs.index, theirs.columns]
    scale = np.sqrt(np.outer(np.diag(theirs), np.diag(theirs)))
    np.testing.assert_allclose(ours / scale, theirs / scale, atol=2e-4)


def test_kenward_roger_differs_from_satterthwaite_on_unbalanced_data():
    m = fit("hs40_ses_sector_kr")
    kr, sat = m.coef_table(ddf="kenward-roger"), m.coef_table()
    assert np.max(np.abs(kr["df"] / sat["df"] - 1)) > 0.05
    assert (kr["std_error"] > sat["std_error"]).all()


def test_asymptotic_table_is_the_z_test():
    m = fit("sleep_rs")
    z = m.coef_table(ddf="asymptotic")
    assert np.isinf(z["df"]).all()
    np.testing.assert_allclose(z["conf_high"] - z["estimate"], 1.959964 * m.std_error.to_numpy(), rtol=1e-6)


def test_columns_do_not_depend_on_the_method():
    m = fit("sleep_rs")
    for method in ("satterthwaite", "kenward-roger", "asymptotic"):
        assert list(m.coef_table(ddf=method).columns) == ddf.COEF_COLUMNS


def test_interval_uses_the_t_quantile():
    table_ = fit("sleep_ri").coef_table(level=0.9).set_index("term")
    from scipy import stats
    half = stats.t.ppf(0.95, table_["df"]) * table_["std_error"]
    np.testing.assert_allclose(table_["conf_high"] - table_["estimate"], half, rtol=1e-10)


def test_bad_ddf_names_the_choices():
    with pytest.raises(ValueError, match="satterthwaite"):
        fit("sleep_rs").coef_table(ddf="containment")


def test_kenward_roger_refuses_an_ml_fit():
    with pytest.raises(ValueError, match="REML"):
        fit("sleep_rs_ml").coef_table(ddf="kenward-roger")


def test_contrast_of_wrong_length_names_the_terms():
    with pytest.raises(ValueError, match="Days"):
        ddf.satterthwaite_df(fit("sleep_rs"), [1, 0, 0])


def test_summary_shows_df_and_p():
    text = str(fit("sleep_rs").summary())
    assert "Satterthwaite" in text and "Pr(>|t|)" in text


@pytest.mark.parametrize("mid", _params("satterthwaite"))
def test_satterthwaite_df_match_lmertest_closely(mid):
    # the closed-form derivatives leave only lmerTest's own numerical error (numDeriv)
    ours = fit(mid).coef_table().set_index("term")
    theirs = table(MODELS[mid], "satterthwaite")
    np.testing.assert_allclose(ours.loc[theirs.index, "df"], theirs["df"], rtol=1e-4)


@pytest.mark.parametrize("mid", ["sleep_rs", "sleep_rs_ml", "hs40_ses_sector", "scots_crossed"])
def test_closed_form_derivatives_match_finite_differences(mid):
    pieces = ddf._Pieces(fit(mid))
    varpar = np.append(pieces.theta, pieces.sigma)
    covbeta, H, jac = ddf._analytic_derivatives(pieces)
    np.testing.assert_allclose(covbeta, pieces.covbeta(varpar), rtol=1e-8)
    np.testing.assert_allclose(H, ddf.hessian(pieces.deviance, varpar), rtol=5e-3, atol=5e-3 * np.abs(H).max())
    numerical = ddf.jacobian(pieces.covbeta, varpar)
    for k, J in enumerate(jac):
        np.testing.assert_allclose(J.ravel(), numerical[:, k], rtol=1e-5, atol=1e-8 * np.abs(J).max())


def test_finite_difference_route_for_many_random_effects_agrees(monkeypatch):
    m = fit("hs40_ses_sector")
    closed = m.coef_table()["df"].to_numpy()
    monkeypatch.setattr(ddf, "ANALYTIC_UP_TO", 0)
    ddf._CACHE.pop(m, None)
    try:
        numerical = m.coef_table()["df"].to_numpy()
    finally:
        ddf._CACHE.pop(m, None)
    np.testing.assert_allclose(numerical, closed, rtol=2e-3)


@pytest.mark.parametrize("mid", ["hsb_rc", "scots_crossed"])
def test_sparse_route_matches_lmertest(mid, monkeypatch):
    # models with many random effects factor M as a sparse matrix and keep the derivatives sparse
    m = fit(mid)
    monkeypatch.setattr(ddf, "SPARSE_FROM", 0)
    ddf._CACHE.pop(m, None)
    try:
        ours = m.coef_table().set_index("term")
    finally:
        ddf._CACHE.pop(m, None)
    theirs = table(MODELS[mid], "satterthwaite")
    np.testing.assert_allclose(ours.loc[theirs.index, "df"], theirs["df"], rtol=1e-4)
