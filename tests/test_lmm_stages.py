"""lmer's public stages (design, deviance function, fit) and refit/simulate, against lme4's own numbers.

Reference numbers: tests/reference/vocab.json, written by make_reference_vocab.R
(lme4: lFormula, mkLmerDevfun, getME, confint(method = "Wald"), refit).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse, stats

from mlmcourse.lmm import COEF_COLUMNS, LmerDesign, LmerResult, lmer, lmer_design

REFERENCE = json.loads((Path(__file__).parent / "reference" / "vocab.json").read_text())
FORMULA = REFERENCE["model"]["formula"]


@pytest.fixture(scope="module")
def design(sleep):
    return lmer_design(FORMULA, sleep)


@pytest.fixture(scope="module")
def fit(design):
    return design.fit()


# ------------------------------------------------------------------ coef_table
def test_coef_table_matches_lme4_summary_and_wald_intervals(fit):
    # lme4: summary(fm1)$coefficients; confint(fm1, parm = "beta_", method = "Wald", level = 0.95 / 0.90)
    ref = REFERENCE["coef_table"]
    for interval in ref["intervals"]:
        table = fit.coef_table(ddf="asymptotic", level=interval["level"])
        assert list(table.columns) == COEF_COLUMNS and list(table["term"]) == ref["term"]
        np.testing.assert_allclose(table["estimate"], ref["estimate"], rtol=1e-5)
        np.testing.assert_allclose(table["std_error"], ref["std_error"], rtol=1e-4)
        np.testing.assert_allclose(table["statistic"], ref["statistic"], rtol=1e-4)
        np.testing.assert_allclose(table["conf_low"], interval["conf_low"], rtol=1e-5)
        np.testing.assert_allclose(table["conf_high"], interval["conf_high"], rtol=1e-5)
    table = fit.coef_table(ddf="asymptotic")
    assert np.isinf(table["df"]).all()
    np.testing.assert_allclose(table["p_value"], 2 * stats.norm.sf(np.abs(table["statistic"])), rtol=1e-12)
    np.testing.assert_allclose(table["p_value"].iloc[1], ref["p_value_normal"][1], rtol=1e-3)


@pytest.mark.parametrize("ddf", ["containment", "t", "none", None])
def test_coef_table_names_an_unsupported_ddf(fit, ddf):
    with pytest.raises(ValueError, match="ddf must be one of"):
        fit.coef_table(ddf=ddf)


@pytest.mark.parametrize("level", [0, 1, 95, -0.5])
def test_coef_table_refuses_a_level_outside_0_1(fit, level):
    with pytest.raises(ValueError, match="level must be between 0 and 1"):
        fit.coef_table(level=level)


# ------------------------------------------------------------------ design
def test_design_matrices_are_lme4s(design):
    # lme4: getME(fm1, "X"), getME(fm1, "Z"), getME(fm1, "lower")
    ref = REFERENCE["design"]
    assert isinstance(design, LmerDesign) and design.fixed_names == ref["X_colnames"]
    assert list(design.X.shape) == ref["X_dim"]
    np.testing.assert_allclose(design.X.sum(axis=0), ref["X_colsums"])
    assert sparse.issparse(design.Z) and list(design.Z.shape) == ref["Z_dim"]
    Z = design.Z.copy()
    Z.eliminate_zeros()
    assert Z.nnz == ref["Z_nnz"]
    np.testing.assert_allclose(np.asarray(design.Z.sum(axis=0)).ravel(), ref["Z_colsums"])
    np.testing.assert_allclose(design.Z[:3, :4].toarray(), ref["Z_first_rows"])
    np.testing.assert_array_equal(design.theta_lower, [float(v) for v in ref["lower"]])


@pytest.mark.parametrize("case", range(2))
def test_lambda_is_lme4s(design, case):
    # lme4: Lambdat@x <- theta[Lind]; t(Lambdat)
    ref = REFERENCE["design"]["lambda"][case]
    expected = sparse.coo_matrix((ref["x"], (ref["i"], ref["j"])), shape=ref["dim"]).toarray()
    np.testing.assert_allclose(design.Lambda(ref["theta"]).toarray(), expected, atol=1e-14)


@pytest.mark.parametrize("case", range(3))
def test_deviance_function_is_lme4s(design, case):
    # lme4: do.call(mkLmerDevfun, lFormula(..., REML = TRUE / FALSE))(theta)
    ref = REFERENCE["deviance"][case]
    assert design.deviance(ref["theta"]) == pytest.approx(ref["reml"], rel=1e-10)
    assert design.deviance(ref["theta"], reml=False) == pytest.approx(ref["ml"], rel=1e-10)


def test_the_deviance_is_the_profiled_criterion_of_the_matrices(design):
    # Bates et al. (2015), eq. (34): ML deviance from X, Z, Lambda(theta) by dense algebra
    theta = np.array([0.9, 0.05, 0.2])
    X, Z, y, n = design.X, design.Z.toarray(), design.y, len(design.y)
    Lam = design.Lambda(theta).toarray()
    V = Z @ Lam @ Lam.T @ Z.T + np.eye(n)
    Vinv = np.linalg.inv(V)
    beta = np.linalg.solve(X.T @ Vinv @ X, X.T @ Vinv @ y)
    r = y - X @ beta
    deviance = np.linalg.slogdet(V)[1] + n * (1 + np.log(2 * np.pi * (r @ Vinv @ r) / n))
    assert design.deviance(theta, reml=False) == pytest.approx(deviance, rel=1e-9)


def test_fitting_the_design_equals_lmer(design, fit, sleep):
    direct = lmer(FORMULA, sleep)
    assert isinstance(fit, LmerResult) and fit.design is not None
    np.testing.assert_allclose(fit.theta, direct.theta, rtol=1e-10)
    assert design.deviance(fit.theta) == pytest.approx(fit.objective, rel=1e-12)
    assert fit.objective == pytest.approx(design.deviance(REFERENCE["deviance"][2]["theta"]), abs=1e-6)


@pytest.mark.parametrize("theta, message", [([1.0, 0.0], "3 value"), ([-1.0, 0.0, 1.0], "outside its bounds"),
                                            ([1.0, np.nan, 1.0], "outside its bounds")])
def test_deviance_names_a_bad_theta(design, theta, message):
    with pytest.raises(ValueError, match=message):
        design.deviance(theta)


def test_design_repr_is_one_line(design):
    assert repr(design).startswith("<LmerDesign") and "\n" not in repr(design)


# ------------------------------------------------------------------ refit and simulate
def test_refit_is_lme4s_refit(fit, sleep):
    # lme4: lmer(Reaction ~ Days + (Days | Subject)) with Reaction replaced by Reaction + 3 * Days^2
    # (lme4's own refit(fm1, newresp) stops at a worse REML criterion, see make_reference_vocab.R)
    ref = REFERENCE["refit"]
    other = fit.refit(sleep["Reaction"] + 3 * sleep["Days"] ** 2)
    np.testing.assert_allclose(other.fixef.to_numpy(), list(ref["fixef"].values()), rtol=1e-5)
    np.testing.assert_allclose(other.theta, ref["theta"], rtol=1e-3)  # lme4 stops a little short
    assert other.sigma == pytest.approx(ref["sigma"], rel=1e-5)
    assert other.objective == pytest.approx(ref["objective"], abs=1e-5)
    assert other.objective < ref["lme4_refit"]["objective"]
    assert other.model_data["Reaction"].iloc[1] == pytest.approx(sleep["Reaction"].iloc[1] + 3)
    assert fit.model_data["Reaction"].iloc[1] == sleep["Reaction"].iloc[1]  # the original is untouched


def test_refit_names_a_response_of_the_wrong_length(fit):
    with pytest.raises(ValueError, match="179 values; the design has 180 rows"):
        fit.refit(np.zeros(179))
    with pytest.raises(ValueError, match="1 missing"):
        fit.refit(np.r_[np.nan, np.ones(179)])


def test_simulate_is_seeded_and_shaped_like_lme4s(fit):
    first, again = fit.simulate(5, nsim=3), fit.simulate(seed=5, nsim=3)
    assert list(first.columns) == ["sim_1", "sim_2", "sim_3"] and first.index.equals(fit.model_data.index)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first["sim_1"], first["sim_2"])
    assert fit.simulate(7).shape == (180, 1) and not np.allclose(fit.simulate(7), fit.simulate(8))
    with pytest.raises(ValueError, match="nsim"):
        fit.simulate(1, nsim=0)


def test_simulated_responses_have_the_model_moments(fit):
    # E(y) = X beta; Var(y) = sigma^2 (Z Lambda Lambda' Z' + I) (Bates et al. 2015, eq. 2-4)
    sims = fit.simulate(1, nsim=4000).to_numpy()
    design = fit.design
    Lam = design.Lambda(fit.theta).toarray()
    Z = design.Z.toarray()
    V = fit.sigma2 * (Z @ Lam @ Lam.T @ Z.T + np.eye(len(design.y)))
    mean_error = sims.mean(axis=1) - design.X @ fit.fixef.to_numpy()
    assert np.abs(mean_error / np.sqrt(np.diag(V) / 4000)).max() < 5
    rows = [0, 9, 10]  # two days of one subject, one of another
    expected = V[np.ix_(rows, rows)]
    sd = np.sqrt((np.outer(np.diag(expected), np.diag(expected)) + expected**2) / sims.shape[1])
    assert (np.abs(np.cov(sims[rows]) - expected) < 4 * sd).all()


def test_grouping_factor_names_the_choices(fit):
    assert fit.grouping_factor() == fit.grouping_factor("Subject") == "Subject"
    with pytest.raises(KeyError, match=r"'subject' is not a grouping factor.*\['Subject'\]"):
        fit.grouping_factor("subject")


def test_refit_ml_is_a_refit_of_the_same_response(fit, sleep):
    # lme4: refitML(fm1) equals lmer(..., REML = FALSE)
    ml = fit.refit_ml()
    assert not ml.reml and ml.refit_ml() is ml
    assert ml.loglik == pytest.approx(lmer(FORMULA, sleep, reml=False).loglik, abs=1e-8)
