"""lmer() and LmerResult: published numbers, the result's accessors, summary(), invariances, the engine."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlmcourse
from mlmcourse import _engine
from mlmcourse.lmm import LmerControl, LmerResult, LmerWarning, lmer


def _quiet_lmer(formula, data, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LmerWarning)
        return lmer(formula, data, **kwargs)


@pytest.fixture(scope="module")
def hs40():
    return mlmcourse.load("hsb40")


@pytest.fixture(scope="module")
def sleep_fit(sleep):
    # lme4: fm1 <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
    return lmer("Reaction ~ Days + (Days | Subject)", sleep)


@pytest.fixture(scope="module")
def sector_fit(hs40):
    # lme4: lmer(MathAch ~ SES * Sector + (1 | School), hs)
    return lmer("MathAch ~ SES * Sector + (1 | School)", hs40)


# ------------------------------------------------------ published numbers
def test_hsb40_one_way_anova_matches_scs_2017(hs40):
    # lme4: lmer(MathAch ~ 1 + (1 | School), hs) -- the numbers the SCS course text prints
    m = lmer("MathAch ~ 1 + (1 | School)", hs40)
    assert m.fixef["(Intercept)"] == pytest.approx(12.60468, abs=5e-6)
    assert m.varcorr.loc[0, "sdcor"] == pytest.approx(2.836278, abs=5e-7)
    assert m.sigma == pytest.approx(6.296759, abs=5e-7)
    assert m.loglik == pytest.approx(-6489.969, abs=5e-4)


def test_sleepstudy_matches_lme4_documentation(sleep_fit):
    # lme4: summary(lmer(Reaction ~ Days + (Days | Subject), sleepstudy)), as printed in ?lmer
    m = sleep_fit
    assert m.objective == pytest.approx(1743.6, abs=0.05)
    np.testing.assert_allclose(m.fixef, [251.405, 10.467], atol=5e-4)
    np.testing.assert_allclose(m.std_error, [6.825, 1.546], atol=5e-4)
    # printed 612.10: lme4's default fit stops 0.01 short of the optimum, 612.09
    np.testing.assert_allclose(m.varcorr["vcov"], [612.10, 35.07, m.varcorr["vcov"][2], 654.94], atol=0.02)
    assert m.varcorr.loc[2, "sdcor"] == pytest.approx(0.07, abs=5e-3)


def test_agrees_with_statsmodels_on_a_random_intercept(hs40):
    # independent engine: statsmodels MixedLM("MathAch ~ 1", groups=School), REML
    from statsmodels.formula.api import mixedlm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        other = mixedlm("MathAch ~ 1", hs40, groups=hs40["School"]).fit(reml=True)
    m = lmer("MathAch ~ 1 + (1 | School)", hs40)
    assert m.loglik == pytest.approx(other.llf, abs=1e-4)
    assert m.fixef.iloc[0] == pytest.approx(other.fe_params.iloc[0], rel=1e-4)


def test_agrees_with_statsmodels_on_a_random_slope_by_ml(sleep):
    from statsmodels.formula.api import mixedlm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        other = mixedlm("Reaction ~ Days", sleep, groups=sleep["Subject"], re_formula="~Days").fit(reml=False)
    m = lmer("Reaction ~ Days + (Days | Subject)", sleep, reml=False)
    assert m.loglik == pytest.approx(other.llf, abs=1e-4)
    np.testing.assert_allclose(m.fixef, other.fe_params, rtol=1e-4)
    np.testing.assert_allclose(m.random_covariance(), other.cov_re, rtol=1e-3)


# ------------------------------------------------------------ the result
def test_result_names_follow_lme4(sector_fit):
    assert list(sector_fit.fixef.index) == ["(Intercept)", "SES", "SectorPublic", "SES:SectorPublic"]
    assert list(sector_fit.vcov.index) == list(sector_fit.vcov.columns) == list(sector_fit.fixef.index)
    assert sector_fit.reference_levels == {"Sector": "Catholic"}


def test_factor_column_equals_its_dummy(hs40, sector_fit):
    data = hs40.assign(public=(hs40["Sector"] == "Public").astype(float))
    dummy = lmer("MathAch ~ SES * public + (1 | School)", data)
    np.testing.assert_allclose(dummy.fixef, sector_fit.fixef, rtol=1e-10)
    assert dummy.loglik == pytest.approx(sector_fit.loglik, abs=1e-8)


def test_fixef_table_is_a_deprecated_alias_of_coef_table(sleep_fit):
    with pytest.warns(FutureWarning, match="coef_table"):
        table = sleep_fit.fixef_table
    np.testing.assert_allclose(table["t_value"], sleep_fit.coef_table()["statistic"])


def test_conf_int_has_the_coef_table_interval_columns(sleep_fit):
    ci = sleep_fit.conf_int("wald", 0.95)
    assert list(ci.columns) == ["term", "estimate", "conf_low", "conf_high"]
    np.testing.assert_allclose(ci.set_index("term")["conf_high"] - sleep_fit.fixef, 1.959964 * sleep_fit.std_error,
                               rtol=1e-6)


def test_varcorr_layout_is_lme4s(sleep_fit):
    vc = sleep_fit.varcorr
    assert list(vc.columns) == ["grp", "var1", "var2", "vcov", "sdcor"]
    assert list(vc["grp"]) == ["Subject", "Subject", "Subject", "Residual"]
    assert vc.loc[0, "var2"] is None and vc.loc[3, "var1"] is None
    assert (vc.loc[2, "var1"], vc.loc[2, "var2"]) == ("(Intercept)", "Days")
    assert vc.loc[3, "vcov"] == pytest.approx(sleep_fit.sigma2)


def test_random_covariance_is_the_g_matrix(sleep_fit):
    G = sleep_fit.random_covariance("Subject")
    vc = sleep_fit.varcorr
    assert list(G.index) == ["(Intercept)", "Days"]
    np.testing.assert_allclose(G.to_numpy(), [[vc.vcov[0], vc.vcov[2]], [vc.vcov[2], vc.vcov[1]]])


def test_parameter_counts_and_information_criteria(sleep_fit):
    assert sleep_fit.df == 6 and sleep_fit.nobs == 180 and sleep_fit.ngroups == {"Subject": 18}
    assert sleep_fit.aic == pytest.approx(-2 * sleep_fit.loglik + 12)
    assert sleep_fit.bic == pytest.approx(-2 * sleep_fit.loglik + 6 * np.log(180))


def test_ranef_layout_and_wide_form(sleep_fit):
    ranef = sleep_fit.ranef
    assert list(ranef.columns) == ["grpvar", "term", "grp", "condval", "condsd"]
    assert len(ranef) == 36 and (ranef["condsd"] > 0).all()
    wide = sleep_fit.ranef_wide()
    assert list(wide.columns) == ["(Intercept)", "Days"] and wide.index.name == "Subject"
    # lme4: ranef(fm1)$Subject["308", ] is 2.2585, 9.1990
    np.testing.assert_allclose(wide.loc["308"], [2.2585, 9.1990], atol=5e-4)


def test_coef_is_fixef_plus_ranef(sleep_fit):
    coef = sleep_fit.coef()
    np.testing.assert_allclose(coef, sleep_fit.ranef_wide() + sleep_fit.fixef, rtol=1e-12)


def test_fitted_plus_residuals_is_the_response(sleep_fit, sleep):
    np.testing.assert_allclose(sleep_fit.fitted + sleep_fit.residuals, sleep["Reaction"], rtol=1e-12)
    assert list(sleep_fit.groups["Subject"]) == list(sleep["Subject"])
    assert sleep_fit.groups["Subject"].index.equals(sleep_fit.model_data.index)


def test_predict_on_the_fitted_rows_gives_the_fitted_values(sleep_fit, sleep):
    np.testing.assert_allclose(sleep_fit.predict(sleep), sleep_fit.fitted, rtol=1e-12)
    population = sleep_fit.fixef["(Intercept)"] + sleep_fit.fixef["Days"] * sleep["Days"]
    np.testing.assert_allclose(sleep_fit.predict(sleep, include_random=False), population, rtol=1e-12)


def test_predict_gives_unseen_groups_the_population_line_and_warns(sleep_fit):
    new = pd.DataFrame({"Days": [0, 5], "Subject": ["999", "308"]})
    with pytest.warns(LmerWarning, match="999"):
        prediction = sleep_fit.predict(new)
    assert prediction.iloc[0] == pytest.approx(sleep_fit.fixef["(Intercept)"])
    assert prediction.iloc[1] == pytest.approx(sleep_fit.coef().loc["308"] @ [1, 5])


def test_predict_refuses_unknown_factor_levels(sector_fit, hs40):
    new = hs40.iloc[:2].assign(Sector=["Private", "Public"])
    with pytest.raises(ValueError, match="Private"):
        sector_fit.predict(new)


def test_refit_ml_equals_an_ml_fit(sleep_fit, sleep):
    ml = sleep_fit.refit_ml()
    direct = lmer("Reaction ~ Days + (Days | Subject)", sleep, reml=False)
    assert not ml.reml and ml.loglik == pytest.approx(direct.loglik, abs=1e-8)
    # lme4: logLik(refitML(fm1)) is -875.9697
    assert ml.loglik == pytest.approx(-875.9697, abs=5e-5)


def test_crossed_and_nested_groupings_count_their_groups():
    # lme4: lmer(langPOST ~ IQ_verb + (1 | schoolNR/classNR), bdf)
    m = _quiet_lmer("langPOST ~ IQ_verb + (1 | schoolNR/classNR)", mlmcourse.load("bdf"))
    assert m.ngroups == {"classNR:schoolNR": 133, "schoolNR": 131}
    assert set(m.ranef["grpvar"]) == {"classNR:schoolNR", "schoolNR"}


def test_uncorrelated_terms_get_lme4s_unique_group_names(sleep):
    # lme4: as.data.frame(VarCorr(lmer(Reaction ~ Days + (Days || Subject), sleepstudy)))$grp
    m = lmer("Reaction ~ Days + (Days || Subject)", sleep)
    assert list(m.varcorr["grp"]) == ["Subject", "Subject.1", "Residual"]
    assert list(m.ranef_wide().columns) == ["(Intercept)", "Days"]


def test_repr_is_one_line(sleep_fit):
    assert "REML" in repr(sleep_fit) and "\n" not in repr(sleep_fit)


# -------------------------------------------------------------- summary()
def test_summary_prints_lme4s_sections(sector_fit):
    text = str(sector_fit.summary())
    for line in ["Linear mixed model fit by REML. t-tests use Satterthwaite's method ['lmerModLmerTest']", "Formula: MathAch ~ SES * Sector + (1 | School)",
                 "REML criterion at convergence:", "Scaled residuals:", "Random effects:",
                 " Groups   Name        Variance Std.Dev.", "Number of obs: 1977, groups:  School, 40",
                 "Fixed effects:", "Estimate Std. Error", "df t value Pr(>|t|)", "SES:SectorPublic",
                 "Reference levels: Sector = Catholic"]:
        assert line in text


def test_summary_of_an_ml_fit_shows_the_information_criteria(sleep):
    text = str(lmer("Reaction ~ Days + (Days | Subject)", sleep, reml=False).summary())
    assert "fit by maximum likelihood" in text and "df.resid" in text and "1763.9" in text


def test_summary_shows_the_correlation(sleep_fit):
    assert "Corr" in str(sleep_fit.summary()) and "0.07" in str(sleep_fit.summary())


# ------------------------------------------------------------- invariances
def _key_numbers(m: LmerResult) -> np.ndarray:
    return np.concatenate([[m.loglik], m.fixef.to_numpy(), m.varcorr["vcov"].to_numpy()])


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_row_order_does_not_matter(sleep, sleep_fit, seed):
    shuffled = sleep.sample(frac=1.0, random_state=np.random.RandomState(seed))
    m = lmer("Reaction ~ Days + (Days | Subject)", shuffled)
    np.testing.assert_allclose(_key_numbers(m), _key_numbers(sleep_fit), rtol=1e-5, atol=1e-6)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_group_labels_do_not_matter(sleep, sleep_fit, seed):
    subjects = sorted(sleep["Subject"].unique())
    new_names = np.random.default_rng(seed).permutation([f"s{i:02d}" for i in range(len(subjects))])
    relabel = dict(zip(subjects, new_names))
    m = lmer("Reaction ~ Days + (Days | Subject)", sleep.assign(Subject=sleep["Subject"].map(relabel)))
    np.testing.assert_allclose(_key_numbers(m), _key_numbers(sleep_fit), rtol=1e-5, atol=1e-6)
    renamed = sleep_fit.ranef_wide().rename(index=relabel).sort_index()
    np.testing.assert_allclose(m.ranef_wide().sort_index(), renamed, rtol=1e-4, atol=1e-5)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scale=st.floats(0.01, 100.0))
def test_rescaling_the_response_rescales_the_estimates(sleep, sleep_fit, scale):
    m = lmer("Reaction ~ Days + (Days | Subject)", sleep.assign(Reaction=scale * sleep["Reaction"]))
    np.testing.assert_allclose(m.fixef, scale * sleep_fit.fixef, rtol=1e-5)
    variances = m.varcorr["vcov"].to_numpy()
    np.testing.assert_allclose(variances, scale**2 * sleep_fit.varcorr["vcov"].to_numpy(), rtol=1e-4)
    # the REML log-likelihood shifts by -(n - p) log(scale): the Jacobian of y -> scale * y
    assert m.loglik == pytest.approx(sleep_fit.loglik - (180 - 2) * np.log(scale), abs=1e-5)
    np.testing.assert_allclose(m.theta, sleep_fit.theta, rtol=1e-3, atol=1e-5)


# -------------------------------------------------------------- the engine
def test_the_compiled_core_is_the_engine(sleep_fit):
    import mixedlm._rust

    assert mixedlm._rust.__file__.endswith((".so", ".pyd"))
    assert "compiled core" in _engine.backend() and sleep_fit._fit.backend == _engine.backend()


def test_the_pure_python_deviance_is_never_called(monkeypatch, sleep):
    import mixedlm.estimation.reml as reml

    def forbidden(*args, **kwargs):
        raise AssertionError("mixedlm's pure-Python deviance was called")

    monkeypatch.setattr(reml, "_profiled_deviance_core", forbidden)
    m = lmer("Reaction ~ Days + (Days | Subject)", sleep)
    assert m.loglik == pytest.approx(-871.8141, abs=1e-4)


def test_lmer_refuses_to_run_without_the_compiled_core(monkeypatch, sleep):
    import mixedlm.estimation.reml as reml

    monkeypatch.setattr(reml, "_HAS_RUST", False)
    with pytest.raises(RuntimeError, match="compiled core"):
        lmer("Reaction ~ Days + (Days | Subject)", sleep)


def test_the_engine_uses_the_optimizer_it_is_given(sleep, sleep_fit):
    # the default, "auto", is exact-gradient L-BFGS-B with a COBYQA fallback
    assert sleep_fit.optimizer == "L-BFGS-B"
    m = lmer("Reaction ~ Days + (Days | Subject)", sleep, control=LmerControl(optimizer="COBYQA"))
    assert m.optimizer == "COBYQA" and m.loglik == pytest.approx(sleep_fit.loglik, abs=1e-6)
