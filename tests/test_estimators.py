"""The estimators of the SCS course text's "six ways to compare the sectors" (hsb40 = its "hs").

Reference numbers are the ones the SCS course text prints (R, spida's ``hs`` data); each
test names the R call. Term names are lme4's.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from hypothesis import given, settings
from hypothesis import strategies as st

import mlmcourse
from mlmcourse import estimators as est
from mlmcourse.groups import group_table


@pytest.fixture(scope="module")
def fe_within(hs):
    return est.fixed_effects("MathAch ~ SES + SES:Sector", hs, "School", method="within")


@pytest.fixture(scope="module")
def fe_dummy(hs):
    return est.fixed_effects("MathAch ~ SES + SES:Sector", hs, "School", method="dummy")


@pytest.fixture(scope="module")
def averages(hs):
    return est.per_group_average("MathAch ~ SES", hs, "School", by="Sector")


@pytest.fixture(scope="module")
def two(hs):
    return est.two_stage("MathAch ~ SES", hs, "School", level2="Sector")


def row(table, **where):
    mask = np.logical_and.reduce([table[k] == v for k, v in where.items()])
    assert mask.sum() == 1, f"expected one row for {where}"
    return table[mask].iloc[0]


# ----------------------------------------------------------------- method 1: pooled
# SCS (2017): summary(lm(mathach ~ ses * Sector, hs))
SCS_POOLED = [("(Intercept)", 13.5579, 0.1881), ("SES", 2.2999, 0.2582),
               ("SectorPublic", -1.4666, 0.2921), ("SES:SectorPublic", 1.6051, 0.3845)]


@pytest.mark.parametrize("term, estimate, std_error", SCS_POOLED)
def test_pooled_reproduces_scs_2017(hs, term, estimate, std_error):
    fit = est.pooled("MathAch ~ SES * Sector", hs)
    r = row(fit.coef_table(), term=term)
    assert round(r["estimate"], 4) == estimate
    assert round(r["std_error"], 4) == std_error


def test_pooled_residual_standard_error_and_df(hs):
    # SCS (2017): "Residual standard error: 6.344 on 1973 degrees of freedom"
    fit = est.pooled("MathAch ~ SES * Sector", hs)
    assert round(fit.sigma, 3) == 6.344
    assert fit.df_resid == 1973
    assert (fit.coef_table()["df"] == 1973).all()


def test_pooled_table_has_fixed_columns_and_r_term_order(hs):
    fit = est.pooled("MathAch ~ SES * Sector", hs)
    assert list(fit.coef_table().columns) == est.COEF_COLUMNS
    assert list(fit.coef_table()["term"]) == ["(Intercept)", "SES", "SectorPublic", "SES:SectorPublic"]
    assert list(fit.vcov.index) == list(fit.coef_table()["term"])


def test_pooled_cluster_robust_is_cr1_with_clusters_minus_one_df(hs):
    # Stata: regress MathAch c.SES##i.Sector, vce(cluster School)
    classic = est.pooled("MathAch ~ SES * Sector", hs)
    robust = est.pooled("MathAch ~ SES * Sector", hs, cluster="School")
    np.testing.assert_allclose(robust.estimate, classic.estimate)
    assert (robust.coef_table()["df"] == 39).all() and robust.ngroups == {"School": 40}
    ols = smf.ols("MathAch ~ SES * Sector", hs).fit()  # the design in the data's own units
    x, resid = ols.model.exog, ols.resid.to_numpy()
    bread = np.linalg.inv(x.T @ x)
    meat = sum(np.outer(x[g].T @ resid[g], x[g].T @ resid[g])
               for g in hs.groupby("School").indices.values())
    n, k, clusters = x.shape[0], x.shape[1], 40
    cr1 = bread @ meat @ bread * clusters / (clusters - 1) * (n - 1) / (n - k)
    r_names = {"Intercept": "(Intercept)", "Sector[T.Public]": "SectorPublic", "SES:Sector[T.Public]": "SES:SectorPublic"}
    by_hand = pd.Series(np.sqrt(np.diag(cr1)), index=[r_names.get(c, c) for c in ols.model.exog_names])
    np.testing.assert_allclose(robust.std_error.to_numpy(), by_hand[robust.std_error.index].to_numpy(), rtol=1e-10)


def test_pooled_rejects_a_random_effects_formula(hs):
    with pytest.raises(ValueError, match="mlmcourse.lmer"):
        est.pooled("MathAch ~ SES + (1 | School)", hs)


def test_pooled_names_a_missing_column(hs):
    with pytest.raises(KeyError, match="ses"):
        est.pooled("MathAch ~ ses", hs)


# ----------------------------------------------------------------- method 2b: fixed effects
@pytest.mark.parametrize("fixture", ["fe_within", "fe_dummy"])
def test_fixed_effects_reproduce_scs_2017(request, fixture):
    # SCS (2017): wald(lm(mathach ~ ses + factor(school) + ses:Sector, hs), "ses:Sector")
    fit = request.getfixturevalue(fixture)
    r = row(fit.coef_table(), term="SES:SectorPublic")
    assert round(r["estimate"], 6) == 1.204719
    assert round(r["std_error"], 6) == 0.436134
    assert r["df"] == 1935
    assert round(r["statistic"], 6) == 2.762267
    assert round(r["p_value"], 5) == 0.00579


def test_within_and_dummy_estimators_agree(fe_within, fe_dummy):
    np.testing.assert_allclose(fe_within.estimate, fe_dummy.estimate, rtol=0, atol=1e-8)
    np.testing.assert_allclose(fe_within.std_error, fe_dummy.std_error, rtol=1e-8)
    np.testing.assert_allclose(fe_within.vcov, fe_dummy.vcov, rtol=1e-7, atol=1e-12)
    assert fe_within.sigma == pytest.approx(fe_dummy.sigma, rel=1e-10)


def test_fixed_effects_absorb_level2_terms_with_a_warning(hs, fe_within):
    with pytest.warns(UserWarning, match="SectorPublic"):
        fit = est.fixed_effects("MathAch ~ SES * Sector", hs, "School")
    assert list(fit.coef_table()["term"]) == ["SES", "SES:SectorPublic"]
    np.testing.assert_allclose(fit.estimate, fe_within.estimate, atol=1e-10)


def test_fixed_effects_rejects_unknown_method(hs):
    with pytest.raises(ValueError, match="within"):
        est.fixed_effects("MathAch ~ SES", hs, "School", method="demean")


@settings(max_examples=5, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_fixed_effects_ignore_row_order_and_group_labels(seed):
    hs = mlmcourse.load("hsb40")
    rng = np.random.default_rng(seed)
    shuffled = hs.iloc[rng.permutation(len(hs))].copy()
    labels = {s: f"g{i}" for i, s in enumerate(rng.permutation(hs["School"].unique()))}
    shuffled["School"] = shuffled["School"].map(labels)
    base = est.fixed_effects("MathAch ~ SES", hs, "School")
    other = est.fixed_effects("MathAch ~ SES", shuffled, "School")
    np.testing.assert_allclose(other.estimate, base.estimate, rtol=1e-10)
    np.testing.assert_allclose(other.std_error, base.std_error, rtol=1e-10)


# ----------------------------------------------------------------- method 4: between
@pytest.mark.parametrize("term, estimate, std_error",
                         [("(Intercept)", 12.7926, 0.2898), ("SES", 5.7734, 0.6984)])
def test_between_reproduces_scs_2017(hs, term, estimate, std_error):
    # SCS (2017): lm(mathach ~ ses, up(hs, ~ factor(school), all = T))
    fit = est.between("MathAch ~ SES", hs, "School")
    r = row(fit.coef_table(), term=term)
    assert round(r["estimate"], 4) == estimate
    assert round(r["std_error"], 4) == std_error
    assert r["df"] == 38 and fit.ngroups == {"School": 40}


def test_between_is_ols_on_the_group_means(hs):
    means = group_table(hs, "School")
    ols = sm.OLS(means["MathAch_mean"], sm.add_constant(means["SES_mean"])).fit()
    fit = est.between("MathAch ~ SES", hs, "School")
    np.testing.assert_allclose(fit.estimate.to_numpy(), ols.params.to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(fit.std_error.to_numpy(), ols.bse.to_numpy(), rtol=1e-10)


# ----------------------------------------------------------------- no pooling
def test_no_pooling_equals_ols_in_each_school(hs):
    # R: lmList(MathAch ~ SES | School, hs)
    fits = est.no_pooling("MathAch ~ SES", hs, "School")
    school = hs[hs["School"] == "8854"]
    ols = sm.OLS(school["MathAch"], sm.add_constant(school["SES"])).fit()
    table = fits.coef_table()
    got = table[table["level"] == "8854"].set_index("term")
    np.testing.assert_allclose(got["estimate"].to_numpy(), ols.params.to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(got["std_error"].to_numpy(), ols.bse.to_numpy(), rtol=1e-10)
    assert (got["df"] == 30).all() and fits.groups.loc["8854", "n"] == 32
    assert fits.groups.loc["8854", "sigma"] == pytest.approx(np.sqrt(ols.mse_resid))


def test_no_pooling_table_and_wide_shapes(hs):
    fits = est.no_pooling("MathAch ~ SES", hs, "School")
    assert list(fits.coef_table().columns) == ["level", *est.COEF_COLUMNS]
    assert list(fits.groups.columns) == ["n", "df", "sigma"] and fits.ngroups == {"School": 40}
    wide = fits.wide()
    assert wide.shape == (40, 2) and list(wide.columns) == ["(Intercept)", "SES"]
    assert wide.index.name == "School"
    assert fits.wide("std_error").notna().all().all()


def test_no_pooling_pooled_sigma_is_the_common_within_sigma(hs, averages):
    # lm(mathach ~ factor(school)/ses - 1, hs) has 1977 - 80 = 1897 residual df
    fits = est.no_pooling("MathAch ~ SES", hs, "School")
    assert fits.df_pooled == 1897
    assert fits.sigma_pooled == pytest.approx(averages.sigma, rel=1e-10)


def test_no_pooling_marks_groups_without_enough_data():
    data = pd.DataFrame({"g": ["a"] * 5 + ["b"] + ["c"] * 3,
                         "x": [0, 1, 2, 3, 4, 7, 1, 1, 1.0],
                         "y": [1, 3, 2, 5, 4, 2, 1, 2, 3.0]})
    with pytest.warns(mlmcourse.DataWarning, match="too little data"):
        fits = est.no_pooling("y ~ x", data, "g")
    wide = fits.wide()
    assert wide.loc["a"].notna().all()
    assert wide.loc["b"].isna().all()  # one row for two coefficients
    assert wide.loc["c"].isna().all()  # x constant: the slope is not identified


# ----------------------------------------------------------------- method 3: two-stage / MANOVA
@pytest.mark.parametrize("term, estimate, std_error, t_value", [
    ("(Intercept)", 1.6672, 0.3506, 4.756), ("SectorPublic", 1.1100, 0.5086, 2.182)])
def test_two_stage_reproduces_scs_2017_slope_column(two, term, estimate, std_error, t_value):
    # SCS (2017): summary(lm(as.matrix(lcoefs) ~ Sector, up(hs, ~ factor(school)))), response ses
    r = row(two.coef_table(), response="SES", term=term)
    assert round(r["estimate"], 4) == estimate
    assert round(r["std_error"], 4) == std_error
    assert round(r["statistic"], 3) == t_value
    assert r["df"] == 38


def test_two_stage_p_values_match_scs_2017(two):
    assert f"{row(two.coef_table(), response='SES', term='(Intercept)')['p_value']:.2e}" == "2.84e-05"
    assert round(row(two.coef_table(), response="SES", term="SectorPublic")["p_value"], 4) == 0.0353


def test_two_stage_mv_test(hs):
    res = est.two_stage("MathAch ~ SES", hs, "School", level2="~ Sector")
    assert list(res.coef_table().columns) == ["response", *est.COEF_COLUMNS]
    assert list(res.mv_test.columns) == est.MV_TEST_COLUMNS
    wilks = row(res.mv_test, term="Sector", method="Wilks' lambda")
    assert 0 < wilks["value"] < 1 and 0 < wilks["p_value"] < 0.05
    assert (wilks["num_df"], wilks["den_df"], wilks["df"]) == (2, 37, 2)


def test_two_stage_explains_level1_variables_in_the_error(hs):
    with pytest.raises(KeyError, match="SES_mean"):
        est.two_stage("MathAch ~ SES", hs, "School", level2="SES")


# ----------------------------------------------------------------- method 2a: per-group averages
@pytest.mark.parametrize("term, estimate, std_error, t_value", [
    ("(Intercept)", -2.027255, 0.351992, -5.759378), ("SES", 1.109995, 0.454114, 2.444309)])
def test_per_group_average_reproduces_scs_2017(averages, term, estimate, std_error, t_value):
    # SCS (2017): wald(lm(mathach ~ factor(school)/ses - 1, hs), diffmat %*% L)
    r = row(averages.coef_table(), term=term, contrast="Public - Catholic")
    assert round(r["estimate"], 6) == estimate
    assert round(r["std_error"], 6) == std_error
    assert round(r["statistic"], 6) == t_value
    assert r["df"] == 1897


def test_per_group_average_joint_wald_test(averages):
    # SCS (2017): numDF 2, denDF 1897, F.value 21.03533
    assert list(averages.coef_table().columns) == ["contrast", *est.COEF_COLUMNS]
    assert list(averages.wald.columns) == est.F_TEST_COLUMNS
    wald = averages.wald.iloc[0]
    assert (wald["num_df"], wald["den_df"]) == (2, 1897)
    assert round(wald["statistic"], 5) == 21.03533


def test_per_group_average_shares_the_centre_of_the_two_stage_fit(averages, two):
    # SCS (2017): the fixed-effects and the MANOVA ellipses "have the same centre"
    for term in ("(Intercept)", "SES"):
        assert row(averages.coef_table(), term=term, contrast="Catholic")["estimate"] == pytest.approx(
            row(two.coef_table(), response=term, term="(Intercept)")["estimate"], rel=1e-10)


def test_per_group_average_needs_a_level2_factor(hs):
    with pytest.raises(ValueError, match="varies within School"):
        est.per_group_average("MathAch ~ SES", hs, "School", by="Minority")


# ----------------------------------------------------------------- random-effects GLS
def test_random_effects_gls_lies_between_within_and_between(hs):
    within = est.fixed_effects("MathAch ~ SES", hs, "School").estimate["SES"]
    betw = est.between("MathAch ~ SES", hs, "School").estimate["SES"]
    gls = est.random_effects_gls("MathAch ~ SES", hs, "School").estimate["SES"]
    assert within < gls < betw


def test_random_effects_gls_variance_components_and_theta(hs):
    fit = est.random_effects_gls("MathAch ~ SES", hs, "School")
    fe = est.fixed_effects("MathAch ~ SES", hs, "School")
    comps = fit.varcorr.set_index("grp")
    assert list(fit.varcorr.columns) == ["grp", "var1", "var2", "vcov", "sdcor"]
    # Swamy-Arora: the residual variance is that of the within regression
    assert comps.loc["Residual", "vcov"] == pytest.approx(fe.sigma**2, rel=1e-10)
    n = hs["School"].value_counts()
    tau2, sigma2 = comps.loc["School", "vcov"], comps.loc["Residual", "vcov"]
    expected = 1 - np.sqrt(sigma2 / (n * tau2 + sigma2))
    np.testing.assert_allclose(fit.theta.to_numpy(), expected.reindex(fit.theta.index).to_numpy())
    assert 0 < fit.rho < 1


# ----------------------------------------------------------------- method 6: within-between (lmer)
def test_within_between_within_effect_equals_fixed_effects(hs):
    wb = est.within_between("MathAch ~ SES", hs, "School", "SES")
    fe = est.fixed_effects("MathAch ~ SES", hs, "School")
    within = row(wb.coef_table(), term="SES", effect="within")["estimate"]
    assert within == pytest.approx(fe.estimate["SES"], abs=1e-6)
    assert wb.formula == "MathAch ~ SES_within + SES_mean + (1 | School)"


def test_within_between_contextual_is_between_minus_within(hs):
    table = est.within_between("MathAch ~ SES", hs, "School", ["SES"]).coef_table()
    assert list(table.columns) == ["effect", *est.COEF_COLUMNS]
    rewb = table.set_index("effect")
    mundlak = est.within_between("MathAch ~ SES", hs, "School", ["SES"], kind="mundlak")
    assert rewb.loc["contextual", "estimate"] == pytest.approx(
        rewb.loc["between", "estimate"] - rewb.loc["within", "estimate"])
    # the two parameterisations are the same model
    other = mundlak.coef_table().set_index("effect")
    np.testing.assert_allclose(other["estimate"], rewb["estimate"], rtol=1e-5)
    np.testing.assert_allclose(other["std_error"], rewb["std_error"], rtol=1e-4)
    assert mundlak.model.fixef["SES_mean"] == pytest.approx(rewb.loc["contextual", "estimate"], rel=1e-5)
