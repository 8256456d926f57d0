"""ICCs, design effect, SE inflation and shrinkage (BLUE -> BLUP).

lme4 numbers come from tests/reference/lme4.json (written by
tests/reference/make_reference.R); the other numbers from the printed output of
the SCS course text.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import mlmcourse
from mlmcourse import estimators, simulate
from mlmcourse import variance as var
from mlmcourse.lmm import lmer

REFERENCE = json.loads((Path(__file__).parent / "reference" / "lme4.json").read_text())["models"]


@pytest.fixture(scope="module")
def null_fit(hs):
    # lme4: lmer(MathAch ~ 1 + (1 | School), hsb40)  (fit.oneway.re in the SCS course text)
    return lmer("MathAch ~ 1 + (1 | School)", hs)


@pytest.fixture(scope="module")
def sleep_fit():
    # lme4: lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
    return lmer("Reaction ~ Days + (Days | Subject)", mlmcourse.load("sleepstudy"))


def reference_icc(model_id):
    rows = REFERENCE[model_id]["varcorr"]
    variances = {r["grp"]: r["vcov"] for r in rows if r["var2"] is None}
    total = sum(variances.values())
    return {g: v / total for g, v in variances.items() if g != "Residual"}


# ----------------------------------------------------------------- model-based ICC
def test_icc_of_the_one_way_model_matches_lme4(null_fit):
    expected = reference_icc("hs40_null")["School"]
    table = var.icc_table(null_fit)
    assert list(table.columns) == var.ICC_COLUMNS
    assert table["grp"].tolist() == ["School"]
    assert table["icc"].iloc[0] == pytest.approx(expected, rel=1e-5)
    # SCS (2017): between SD 2.836278, residual SD 6.296759
    assert var.icc(null_fit, "School") == pytest.approx(2.836278**2 / (2.836278**2 + 6.296759**2), rel=1e-6)


def test_icc_has_one_row_per_grouping_factor():
    # two crossed factors: lmer(y ~ 1 + (1 | participant) + (1 | stimulus))
    data = simulate.simulate_crossed(30, 20, participant_slope_sd=0.0, seed=3)
    fit = lmer("y ~ 1 + (1 | participant) + (1 | stimulus)", data)
    table = var.icc_table(fit)
    assert set(table["grp"]) == {"participant", "stimulus"}
    assert ((table["icc"] > 0) & (table["icc"] < 1)).all()
    assert table["icc"].sum() < 1
    assert table["icc"].sum() == pytest.approx(table["variance"].sum() / (table["variance"].sum() + fit.sigma2))
    assert var.icc(fit, "stimulus") == pytest.approx(table.set_index("grp").loc["stimulus", "icc"])
    with pytest.raises(KeyError, match="2 grouping factors"):
        var.icc(fit)


def test_icc_returns_a_float_whatever_the_arguments(null_fit):
    assert type(var.icc(null_fit)) is float and type(var.icc(null_fit, "School")) is float
    assert var.icc(null_fit) == var.icc(null_fit, "School")


@pytest.mark.parametrize("function", [var.icc, var.icc_table, var.shrinkage, var.gls_mean])
def test_variance_functions_name_the_type_they_need(function):
    with pytest.raises(TypeError, match="must be LmerResult.*not str"):
        function("x")


def test_icc_refuses_random_slope_models(sleep_fit):
    with pytest.raises(ValueError, match="random slope for 'Days'"):
        var.icc(sleep_fit)


def test_icc_names_an_unknown_group(null_fit):
    with pytest.raises(KeyError, match="school"):
        var.icc(null_fit, "school")


# ----------------------------------------------------------------- ANOVA ICC
def test_icc_anova_uses_the_mean_squares_of_the_one_way_anova(hs):
    # R: summary(aov(MathAch ~ School, hsb40))
    result = var.icc_anova(hs, "MathAch", "School")
    anova = smf.ols("MathAch ~ C(School)", hs).fit()
    assert result.msb == pytest.approx(anova.mse_model, rel=1e-10)
    assert result.msw == pytest.approx(anova.mse_resid, rel=1e-10)
    n = hs["School"].value_counts()
    assert result.n0 == pytest.approx((1977 - (n**2).sum() / 1977) / 39)
    assert result.icc == pytest.approx(result.tau2 / (result.tau2 + result.msw))
    assert result.eta_squared == pytest.approx(anova.rsquared)
    assert list(result.to_frame().columns) == var.ICC_ANOVA_COLUMNS and len(result.to_frame()) == 1
    assert result.nobs == 1977 and result.ngroups == {"School": 40}


def test_icc_anova_is_close_to_the_truth_on_balanced_data():
    data = simulate.simulate_random_intercept(200, 20, tau2=1.0, sigma2=4.0, seed=11)
    result = var.icc_anova(data, "y", "group")
    assert result.n0 == 20
    assert result.icc == pytest.approx(0.2, abs=0.03)
    # the ratio of sums of squares in the Multi-level models course notes overstates the ICC
    assert result.eta_squared > result.icc


def test_icc_anova_equals_reml_on_balanced_data():
    # balanced groups: the ANOVA estimates are the REML estimates (when tau2 > 0)
    data = simulate.simulate_random_intercept(30, 8, tau2=2.0, sigma2=3.0, seed=5)
    fit = lmer("y ~ 1 + (1 | group)", data)
    result = var.icc_anova(data, "y", "group")
    assert result.sigma2 == pytest.approx(fit.sigma2, rel=1e-5)
    assert result.icc == pytest.approx(var.icc(fit, "group"), rel=1e-5)


def test_icc_anova_can_be_negative_and_is_not_truncated():
    data = pd.DataFrame({"g": list("aabbcc"), "y": [0.0, 10.0, 0.0, 10.0, 0.0, 10.0]})
    result = var.icc_anova(data, "y", "g")
    assert result.tau2 < 0 and result.icc < 0


def test_icc_anova_names_bad_columns(hs):
    with pytest.raises(KeyError, match="mathach"):
        var.icc_anova(hs, "mathach", "School")
    with pytest.raises(TypeError, match="Sector"):
        var.icc_anova(hs, "Sector", "School")


# ----------------------------------------------------------------- design effect / SE inflation
def test_design_effect_formula():
    assert var.design_effect(0.0, 25) == 1.0
    assert var.design_effect(1.0, 25) == 25.0
    np.testing.assert_allclose(var.design_effect(0.2, np.array([1, 11, 21])), [1.0, 3.0, 5.0])
    with pytest.raises(ValueError, match="at least 1"):
        var.design_effect(0.1, 0)


def test_se_inflation_formula():
    assert var.se_inflation(0.0, 0.9, 50) == 1.0
    assert var.se_inflation(0.9, 0.0, 50) == 1.0
    assert var.se_inflation(0.5, 0.2, 31) == pytest.approx(2.0)
    assert var.se_inflation(1.0, 1.0, 30) == pytest.approx(np.sqrt(var.design_effect(1.0, 30)))


def test_se_inflation_predicts_the_true_se_of_ols():
    # the multilevel structures lecture slides: SE_true = SE_OLS * sqrt(1 + VPC_x VPC_y (n - 1));
    # checked by simulation
    def one(rng):
        data = simulate.simulate_clustered(40, 20, icc_x=0.5, icc_y=0.5, seed=rng)
        x = np.column_stack([np.ones(len(data)), data["x"]])
        beta, rss = np.linalg.lstsq(x, data["y"], rcond=None)[:2]
        se = np.sqrt(rss[0] / (len(data) - 2) * np.linalg.inv(x.T @ x)[1, 1])
        return {"slope": beta[1], "se": se}

    out = simulate.run_simulation(one, 400, seed=2024, progress=False)
    ratio = out["slope"].std() / out["se"].mean()
    assert ratio == pytest.approx(var.se_inflation(0.5, 0.5, 20), rel=0.12)


# ----------------------------------------------------------------- shrinkage
@pytest.mark.parametrize("school, blue, blup", [("8854", 4.240, 5.356), ("7688", 18.422, 17.936)])
def test_shrinkage_reproduces_scs_2017(null_fit, school, blue, blup):
    # SCS (2017): hs1.sid$mathach.ols and coef(fit.oneway.re)
    table = var.shrinkage(null_fit)
    r = table.set_index("level").loc[school]
    assert round(r["blue"], 3) == blue
    assert round(r["blup"], 3) == blup


def test_shrinkage_matches_the_lme4_ranef(null_fit):
    ranef = pd.DataFrame(REFERENCE["hs40_null"]["ranef"]).set_index("grp")
    table = var.shrinkage(null_fit).set_index("level")
    fixef = REFERENCE["hs40_null"]["fixef"]["(Intercept)"]
    np.testing.assert_allclose(table["blup"], fixef + ranef.loc[table.index, "condval"], rtol=1e-5)
    np.testing.assert_allclose(table["condsd"], ranef.loc[table.index, "condsd"], rtol=1e-4)


def test_shrinkage_table_columns_and_factor_range(null_fit, hs):
    table = var.shrinkage(null_fit)
    assert list(table.columns) == var.SHRINKAGE_COLUMNS
    assert len(table) == 40 and (table["term"] == "(Intercept)").all()
    assert ((table["shrinkage_factor"] > 0) & (table["shrinkage_factor"] < 1)).all()
    np.testing.assert_allclose(table.set_index("level")["n"], hs["School"].value_counts().sort_index().reindex(
        table["level"]).to_numpy())


@pytest.mark.parametrize("formula", ["MathAch ~ 1 + (1 | School)", "MathAch ~ SES + Sector + (1 | School)"])
def test_blup_is_the_blue_shrunk_towards_the_gls_mean(hs, formula):
    # SCS (2017): u_j = lambda_j (ybar_j - gamma), lambda_j = tau00 / (tau00 + sigma2 / n_j)
    table = var.shrinkage(lmer(formula, hs))
    np.testing.assert_allclose(table["blup"] - table["gls_mean"],
                               table["shrinkage_factor"] * (table["blue"] - table["gls_mean"]), atol=1e-8)


def test_shrinkage_with_random_slopes_compares_lmlist_and_coef(sleep_fit):
    data = mlmcourse.load("sleepstudy")
    table = var.shrinkage(sleep_fit)
    assert len(table) == 2 * 18 and set(table["term"]) == {"(Intercept)", "Days"}
    lmlist = estimators.no_pooling("Reaction ~ Days", data, "Subject").wide()
    blue = table.pivot(index="level", columns="term", values="blue")
    np.testing.assert_allclose(blue.loc[lmlist.index, lmlist.columns], lmlist, rtol=1e-10)
    blup = table.pivot(index="level", columns="term", values="blup")
    np.testing.assert_allclose(blup.loc[lmlist.index, lmlist.columns],
                               sleep_fit.coef().rename(index=str).loc[lmlist.index, lmlist.columns])
    assert ((table["shrinkage_factor"] > 0) & (table["shrinkage_factor"] < 1)).all()
    # the BLUPs vary less than the BLUEs (SCS 2017, "BLUPs from a model with random slopes")
    assert (blup.std() < blue.std()).all()


def test_shrinkage_needs_one_grouping_factor():
    data = simulate.simulate_crossed(20, 10, participant_slope_sd=0.0, seed=4)
    fit = lmer("y ~ 1 + (1 | participant) + (1 | stimulus)", data)
    with pytest.raises(ValueError, match="one grouping factor"):
        var.shrinkage(fit)


# ----------------------------------------------------------------- GLS mean
def test_gls_mean_reproduces_scs_2017(null_fit, hs):
    # SCS (2017): fixef 12.60468, Std.Error 0.4711941; mean(mathach); mean of school means
    table = var.gls_mean(null_fit).set_index("estimator")
    assert list(table.reset_index().columns) == var.GLS_MEAN_COLUMNS
    assert round(table.loc["gls", "estimate"], 5) == 12.60468
    assert round(table.loc["gls", "std_error"], 6) == round(0.4711941, 6)
    assert table.loc["overall_mean", "estimate"] == pytest.approx(hs["MathAch"].mean())
    school_means = hs.groupby("School")["MathAch"].mean()
    assert table.loc["mean_of_means", "estimate"] == pytest.approx(school_means.mean())
    assert table["std_error"].idxmin() == "gls"


def test_gls_mean_needs_the_intercept_only_model(hs):
    with pytest.raises(ValueError, match="intercept-only"):
        var.gls_mean(lmer("MathAch ~ SES + (1 | School)", hs))


# ----------------------------------------------------------------- domains
@pytest.mark.parametrize("icc, n", [(2.0, 10), (-0.2, 10), (1.0 + 1e-6, 5)])
def test_design_effect_refuses_an_icc_outside_its_range(icc, n):
    with pytest.raises(ValueError, match=f"icc = {icc:g}"):
        var.design_effect(icc, n)


def test_design_effect_accepts_the_whole_range_of_an_icc():
    # -1/(n - 1) is the smallest correlation n units can share: no variance of the mean is left
    assert var.design_effect(-1 / 9, 10) == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(var.design_effect([0.1, 0.9], [5, 1]), [1.4, 1.0])


@pytest.mark.parametrize("args, match", [
    ((0.5, float("nan"), 3), "vpc_y must be finite"),
    ((1.5, 0.2, 3), "vpc_x is a share"),
    ((0.5, -0.1, 3), "vpc_y is a share"),
    ((0.5, 0.2, 0.5), "at least 1"),
    ((0.5, 0.2, np.inf), "must be finite"),
])
def test_se_inflation_refuses_values_outside_their_domain(args, match):
    with pytest.raises(ValueError, match=match):
        var.se_inflation(*args)


def test_se_inflation_names_a_value_that_is_not_a_number():
    with pytest.raises(TypeError, match="vpc_x"):
        var.se_inflation("a lot", 0.2, 3)


def test_icc_anova_refuses_a_response_without_variance():
    data = pd.DataFrame({"g": list("aabbcc"), "y": [3.0] * 6})
    with pytest.raises(ValueError, match="'y' has no variance"):
        var.icc_anova(data, "y", "g")


def test_icc_anova_accepts_its_lowest_possible_value():
    # every group has one 0 and one 10: MSB = 0, so the ICC is -1/(n0 - 1) = -1 for pairs
    data = pd.DataFrame({"g": list("aabbcc"), "y": [0.0, 10.0, 0.0, 10.0, 0.0, 10.0]})
    assert var.icc_anova(data, "y", "g").icc == pytest.approx(-1.0)


@pytest.mark.parametrize("function", [var.icc, var.shrinkage, var.gls_mean])
def test_model_based_functions_refuse_what_is_not_a_fit(function):
    with pytest.raises(TypeError, match="LmerResult.*not str"):
        function("x")
