"""Behaviour of mlmcourse.glmer: response forms, bad input, flags, predictions, teaching quantities.

Numbers against lme4 are in test_glmer_reference.py; here each test checks one
behaviour, against an independent computation where there is a number.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special, stats

import mlmcourse
from mlmcourse.glmm import SeparationWarning, attenuation, glmer, marginal_predict

REFERENCE = json.loads((Path(__file__).parent / "reference" / "glmer.json").read_text())


@pytest.fixture(scope="module")
def contra():
    return mlmcourse.load("contraception")


@pytest.fixture(scope="module")
def cbpp():
    return mlmcourse.load("cbpp")


@pytest.fixture(scope="module")
def epil():
    return mlmcourse.load("epil")


@pytest.fixture(scope="module")
def null_model(contra):
    return glmer("use ~ 1 + (1 | district)", contra)


@pytest.fixture(scope="module")
def urban_model(contra):
    return glmer("use ~ urban + (1 | district)", contra)


def _quiet_fit(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return glmer(*args, **kwargs)


# ------------------------------------------------------------ response forms
@pytest.mark.parametrize("convert", [
    lambda s: s == "Y",                                    # bool
    lambda s: (s == "Y").astype(int),                      # 0/1 integers
    lambda s: s.astype(str),                               # text with two values: "Y" (second) = success
    lambda s: pd.Categorical(s.astype(str), categories=["N", "Y"]),
])
def test_binary_response_forms_give_the_same_fit(contra, null_model, convert):
    data = contra.assign(use=convert(contra["use"]))
    m = glmer("use ~ 1 + (1 | district)", data)
    assert m.loglik == pytest.approx(null_model.loglik, abs=1e-8)
    np.testing.assert_allclose(m.fixef, null_model.fixef, rtol=1e-7)


def test_second_factor_level_is_success(contra, null_model):
    flipped = contra.assign(use=pd.Categorical(contra["use"].astype(str), categories=["Y", "N"]))
    m = glmer("use ~ 1 + (1 | district)", flipped)
    assert m.fixef["(Intercept)"] == pytest.approx(-null_model.fixef["(Intercept)"], rel=1e-5)


@pytest.mark.parametrize("formula, weights", [
    ("cbind(incidence, size - incidence) ~ period + (1 | herd)", None),
    ("cbind(incidence, failures) ~ period + (1 | herd)", None),
    ("prop ~ period + (1 | herd)", "size"),
    ("prop ~ period + (1 | herd)", "array"),
])
def test_binomial_count_forms_give_the_same_fit(cbpp, formula, weights):
    # lme4: glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial)
    data = cbpp.assign(failures=cbpp["size"] - cbpp["incidence"], prop=cbpp["incidence"] / cbpp["size"])
    weights = data["size"].to_numpy() if weights == "array" else weights
    m = glmer(formula, data, weights=weights)
    assert m.loglik == pytest.approx(REFERENCE["models"]["cbpp_cbind"]["loglik"], abs=1e-3)
    assert m.nobs == 56


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("column, values, match", [
    ("use", lambda d: np.where(d["use"] == "Y", 2, 0), "'use' is not binary"),
    ("use", lambda d: d["livch"], "'use' has 4 levels"),
])
def test_response_that_is_not_binary_is_named(contra, column, values, match):
    with pytest.raises(ValueError, match=match):
        glmer("use ~ 1 + (1 | district)", contra.assign(**{column: values(contra)}))


def test_negative_counts_are_refused(epil):
    data = epil.assign(y=epil["y"].where(epil.index != 3, -1))
    with pytest.raises(ValueError, match="column 'y' must hold counts.*-1.* row 3"):
        glmer("y ~ trt + (1 | subject)", data, "poisson")


def test_non_integer_counts_are_refused(epil):
    with pytest.raises(ValueError, match="column 'y' must hold counts.*e.g. 5.5 in row 0"):
        glmer("y ~ trt + (1 | subject)", epil.assign(y=epil["y"] + 0.5), "poisson")


def test_factor_poisson_response_is_refused(epil):
    with pytest.raises(TypeError, match="'trt'.*must be numbers"):
        glmer("trt ~ 1 + (1 | subject)", epil, "poisson")


def test_more_successes_than_trials_is_named(cbpp):
    data = cbpp.assign(incidence=cbpp["incidence"].where(cbpp.index != 5, 99))
    with pytest.raises(ValueError, match="row 5 has more successes \\(incidence = 99\\) than trials \\(size"):
        glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", data)


def test_proportion_above_one_is_refused(cbpp):
    with pytest.raises(ValueError, match="between 0 and 1"):
        glmer("incidence ~ period + (1 | herd)", cbpp, weights="size")


def test_non_integer_successes_from_weights_are_refused(cbpp):
    data = cbpp.assign(prop=cbpp["incidence"] / cbpp["size"])
    with pytest.raises(ValueError, match="prop \\* weights"):
        glmer("prop ~ period + (1 | herd)", data, weights=cbpp["size"].to_numpy() + 0.5)


def test_formula_without_random_term_is_refused(contra):
    with pytest.raises(ValueError, match="no random-effect term.*ordinary GLM"):
        glmer("use ~ urban", contra)


@pytest.mark.parametrize("formula", ["use ~ urban + (1 + urban | district)",
                                     "use ~ urban + (1 | district) + (1 | livch)"])
def test_quadrature_needs_one_scalar_random_effect(contra, formula):
    with pytest.raises(ValueError, match="nagq > 1 .*single random effect per group"):
        glmer(formula, contra, nagq=5)


@pytest.mark.parametrize("kwargs, match", [
    ({"family": "gaussian"}, "family must be"), ({"link": "log"}, "link 'log' is not available"),
    ({"nagq": 0}, "nagq must be"), ({"nagq": True}, "nagq must be"),
])
def test_bad_options_are_named(contra, kwargs, match):
    with pytest.raises(ValueError, match=match):
        glmer("use ~ 1 + (1 | district)", contra, **kwargs)


def test_malformed_cbind_is_explained(cbpp):
    with pytest.raises(ValueError, match="cbind\\(successes, failures\\)"):
        glmer("cbind(incidence) ~ period + (1 | herd)", cbpp)


def test_missing_cbind_column_is_named(cbpp):
    with pytest.raises(KeyError, match="'sizes' of cbind"):
        glmer("cbind(incidence, sizes - incidence) ~ period + (1 | herd)", cbpp)


# ------------------------------------------------------------ flags and groups
def test_group_with_all_zero_outcomes_is_kept_and_shrunk(contra):
    data = contra.copy()
    data.loc[data["district"] == "1", "use"] = "N"
    m = glmer("use ~ 1 + (1 | district)", data)
    ranef = m.ranef.set_index("grp")
    assert m.ngroups == {"district": 60}
    value, n = ranef.loc["1", "condval"], int((data["district"] == "1").sum())
    # shrunk: finite (a group-by-group or conditional logit would send it to -infinity) and closer to the
    # mean than even the empirical log-odds with half a success added
    floor = special.logit(0.5 / (n + 1)) - m.fixef["(Intercept)"]
    assert np.isfinite(ranef.loc["1", "condsd"]) and floor < value < 0


def test_separation_is_flagged_naming_the_term(contra):
    data = contra.assign(marker=np.where((contra["use"] == "Y") & (contra.index % 3 == 0), "yes", "no"))
    with pytest.warns(SeparationWarning, match="term 'markeryes'"):
        m = glmer("use ~ marker + (1 | district)", data)
    assert m.separation == ["markeryes"]
    assert "Separation: term 'markeryes'" in str(m.summary())


def test_no_separation_flag_on_ordinary_data(urban_model):
    assert urban_model.separation == []


def test_missing_values_are_dropped_with_a_warning(contra):
    data = contra.assign(age=contra["age"].where(contra.index >= 5))
    with pytest.warns(mlmcourse.LmerWarning, match="5 row\\(s\\) with missing values"):
        m = glmer("use ~ age + (1 | district)", data)
    assert m.nobs == len(contra) - 5


# ----------------------------------------------------------------- vocabulary
def test_result_vocabulary(urban_model):
    m = urban_model
    assert isinstance(m.nobs, int) and m.ngroups == {"district": 60}
    assert list(m.varcorr.columns) == ["grp", "var1", "var2", "vcov", "sdcor"]
    assert list(m.ranef.columns) == ["grpvar", "term", "grp", "condval", "condsd"]
    assert m.deviance == pytest.approx(-2 * m.loglik)
    assert "Residual" not in set(m.varcorr["grp"])


def test_coef_adds_group_effects_to_fixed_effects(urban_model):
    coef = urban_model.coef()
    ranef = urban_model.ranef.set_index("grp")["condval"]
    np.testing.assert_allclose(coef["(Intercept)"], urban_model.fixef["(Intercept)"] + ranef[coef.index])
    assert (coef["urbanY"] == urban_model.fixef["urbanY"]).all()


def test_summary_looks_like_lme4(urban_model):
    text = str(urban_model.summary())
    assert "fit by maximum likelihood (Laplace Approximation) ['glmerMod']" in text
    assert " Family: binomial  ( logit )" in text
    assert "Pr(>|z|)" in text and "district (Intercept)" in text
    assert f"{urban_model.aic:.1f}" in text


# ---------------------------------------------------------------- predictions
def test_response_scale_is_the_inverse_link(urban_model):
    link = urban_model.predict(type="link")
    np.testing.assert_allclose(urban_model.predict(type="response"), special.expit(link))


def test_unseen_group_gets_a_typical_group_prediction(urban_model):
    new = pd.DataFrame({"urban": pd.Categorical(["N", "Y"]), "district": ["not a district", "1"]})
    with_random = urban_model.predict(new)
    without = urban_model.predict(new, include_random=False)
    assert with_random.iloc[0] == pytest.approx(without.iloc[0])
    b1 = urban_model.ranef.set_index("grp").loc["1", "condval"]
    assert with_random.iloc[1] == pytest.approx(without.iloc[1] + b1)


def test_bad_prediction_type_is_refused(urban_model):
    with pytest.raises(ValueError, match="type must be 'link' or 'response'"):
        urban_model.predict(type="probability")


def test_prediction_table_interval_contains_estimate(urban_model):
    new = pd.DataFrame({"urban": pd.Categorical(["N", "Y"])})
    table = urban_model.prediction_table(new)
    assert list(table.columns) == ["link", "std_error", "estimate", "conf_low", "conf_high"]
    assert ((table["conf_low"] < table["estimate"]) & (table["estimate"] < table["conf_high"])).all()


def test_marginal_prediction_is_the_integral_over_the_random_effect(urban_model):
    # independent check: numerical integration of expit(eta + u) against the N(0, var) density
    new = pd.DataFrame({"urban": pd.Categorical(["N", "Y"])})
    variance = urban_model.varcorr["vcov"].iloc[0]
    eta = urban_model.predict(new, include_random=False)
    expected = [integrate.quad(lambda u: special.expit(e + u) * stats.norm.pdf(u, scale=np.sqrt(variance)),
                               -np.inf, np.inf)[0] for e in eta]
    np.testing.assert_allclose(marginal_predict(urban_model, new), expected, rtol=1e-8)


def test_marginal_probit_curve_is_the_rescaled_probit(cbpp):
    # for a probit model the population curve is exactly Phi(eta / sqrt(1 + var)), so attenuation is exact
    m = glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, link="probit")
    variance = m.varcorr["vcov"].iloc[0]
    eta = m.predict(include_random=False)
    np.testing.assert_allclose(marginal_predict(m), stats.norm.cdf(eta / np.sqrt(1 + variance)), rtol=1e-8)
    np.testing.assert_allclose(attenuation(m), m.fixef / np.sqrt(1 + variance))


def test_attenuated_logit_coefficients_are_close_to_gee(contra):
    # Zeger, Liang & Albert (1988): the approximation is close to the marginal (GEE) coefficients
    m = _quiet_fit("use ~ urban + livch + age + (1 | district)", contra)
    gee = pd.Series(REFERENCE["gee"]["coef"])  # geepack::geeglm(..., corstr = "exchangeable")
    np.testing.assert_allclose(attenuation(m)[gee.index], gee, rtol=0.1, atol=0.01)


def test_statsmodels_gee_matches_geepack(contra):
    import statsmodels.api as sm

    data = contra.sort_values("district", kind="stable").assign(y=lambda d: (d["use"] == "Y").astype(float))
    X = pd.get_dummies(data[["urban", "livch"]], drop_first=True, dtype=float).assign(age=data["age"])
    X.insert(0, "(Intercept)", 1.0)
    X.columns = list(REFERENCE["gee"]["coef"])
    fit = sm.GEE(data["y"], X, groups=data["district"], family=sm.families.Binomial(),
                 cov_struct=sm.cov_struct.Exchangeable()).fit()
    np.testing.assert_allclose(fit.params, list(REFERENCE["gee"]["coef"].values()), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(fit.bse, REFERENCE["gee"]["std_error_robust"], rtol=1e-2)


# ------------------------------------------------------ teaching quantities
def test_median_odds_ratio_is_the_median_of_pairwise_odds_ratios(null_model):
    # Merlo et al. (2006): median of exp(|u_i - u_j|) over pairs of groups drawn from N(0, var)
    rng = np.random.default_rng(2006)
    sd = null_model.varcorr["sdcor"].iloc[0]
    draws = np.exp(np.abs(rng.normal(0, sd, 400_000) - rng.normal(0, sd, 400_000)))
    assert null_model.median_odds_ratio() == pytest.approx(np.median(draws), rel=5e-3)


def test_icc_is_refused_for_poisson(epil):
    m = glmer("y ~ trt + (1 | subject)", epil, "poisson")
    with pytest.raises(ValueError, match="binomial"):
        m.icc()


def test_overdispersion_is_refused_for_binary_outcomes(null_model):
    with pytest.raises(ValueError, match="0/1 responses"):
        null_model.overdispersion()


def test_overdispersion_row_shape(epil):
    row = glmer("y ~ trt + (1 | subject)", epil, "poisson").overdispersion()
    assert list(row.columns) == ["method", "statistic", "df", "p_value", "ratio"] and len(row) == 1


def test_conditional_covariance_fallback_is_close_to_the_hessian_one(urban_model):
    # the RX-based covariance (lme4's vcov(m, use.hessian = FALSE)), used when the Hessian is not
    # positive definite, ignores the uncertainty of theta: close to, not equal to, the Hessian one
    problem, fit = urban_model._design.problem, urban_model._fit
    conditional = np.sqrt(np.diag(problem.conditional_vcov(fit.theta, fit.beta)))
    assert fit.vcov_method == "hessian"
    np.testing.assert_allclose(conditional, urban_model.std_error, rtol=3e-2)
    assert not np.allclose(conditional, urban_model.std_error, rtol=1e-6)


def test_zero_group_variance_is_flagged_singular():
    # 30 groups of 10 draws with one common probability: the group variance is estimated as 0
    rng = np.random.default_rng(3)
    data = pd.DataFrame({"g": np.repeat([f"g{i}" for i in range(30)], 10),
                         "y": (rng.uniform(size=300) < 0.4).astype(int)})
    with pytest.warns(mlmcourse.SingularFitWarning, match="boundary \\(singular\\) fit.*\\(\\(Intercept\\) \\| g\\)"):
        m = glmer("y ~ 1 + (1 | g)", data)
    assert m.singular and m.varcorr["vcov"].iloc[0] < 1e-8
    assert "boundary (singular) fit" in str(m.summary())


def test_row_order_and_group_labels_do_not_change_the_fit(contra, null_model):
    shuffled = contra.sample(frac=1.0, random_state=11).reset_index(drop=True)
    shuffled["district"] = "d" + shuffled["district"].astype(str)
    m = glmer("use ~ 1 + (1 | district)", shuffled)
    assert m.loglik == pytest.approx(null_model.loglik, abs=1e-6)
    assert m.std_error.iloc[0] == pytest.approx(null_model.std_error.iloc[0], rel=1e-4)


def test_cbind_needs_the_binomial_family(cbpp):
    with pytest.raises(ValueError, match="cbind.*binomial"):
        glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, "poisson")


def test_poisson_weights_are_refused(epil):
    with pytest.raises(ValueError, match="weights= is for binomial proportions"):
        glmer("y ~ trt + (1 | subject)", epil, "poisson", weights="base")


def test_data_must_be_a_dataframe():
    with pytest.raises(TypeError, match="data must be a pandas DataFrame"):
        glmer("use ~ 1 + (1 | district)", {"use": [0, 1]})


# ------------------------------------------------- backend, refit, simulate
@pytest.fixture(scope="module")
def herd_model(cbpp):
    return _quiet_fit("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp)


@pytest.fixture(scope="module")
def count_model(epil):
    return _quiet_fit("y ~ trt + (1 | subject)", epil, "poisson")


def test_backend_is_the_engine_fit(urban_model):
    engine = urban_model.backend
    np.testing.assert_array_equal(engine.theta, urban_model.theta)
    np.testing.assert_array_equal(engine.beta, urban_model.fixef.to_numpy())
    assert engine.backend.startswith("mixedlm") and not hasattr(urban_model, "fit")


@pytest.mark.parametrize("name", ["urban_model", "herd_model", "count_model"])
def test_refit_with_the_models_own_response_reproduces_the_fit(name, request):
    m = request.getfixturevalue(name)
    again = m.refit(m.model_data[m.response])
    np.testing.assert_allclose(again.fixef, m.fixef, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(again.theta, m.theta, rtol=1e-6, atol=1e-8)
    assert again.loglik == pytest.approx(m.loglik, abs=1e-8) and again.formula == m.formula
    pd.testing.assert_frame_equal(again.varcorr, m.varcorr, rtol=1e-6)


def test_refit_takes_successes_and_failures(herd_model, cbpp):
    again = herd_model.refit(np.c_[cbpp["incidence"], cbpp["size"] - cbpp["incidence"]])
    np.testing.assert_allclose(again.fixef, herd_model.fixef, rtol=1e-6)
    np.testing.assert_array_equal(again.trials, herd_model.trials)


@pytest.mark.parametrize("name", ["urban_model", "herd_model", "count_model"])
def test_refit_of_a_simulated_response_equals_a_fresh_fit(name, request, contra, cbpp, epil):
    """refit() and glmer() on data carrying the same new response are two routes to one fit."""
    m = request.getfixturevalue(name)
    y = m.simulate(5)["sim_1"]
    data = {"urban_model": contra, "herd_model": cbpp, "count_model": epil}[name].copy()
    if name == "herd_model":
        data["incidence"] = np.rint(y * m.trials).astype(int)
    else:
        data[m.response] = y.astype(int)
    fresh = _quiet_fit(m.formula, data, m.family)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mlmcourse.MlmWarning)
        refitted = m.refit(y)
    np.testing.assert_allclose(refitted.fixef, fresh.fixef, rtol=1e-5, atol=1e-6)
    assert refitted.loglik == pytest.approx(fresh.loglik, abs=1e-6)


@pytest.mark.parametrize("bad, message", [
    (np.zeros(5), "has 5 rows"),
    (np.r_[np.nan, np.zeros(1933)], "missing or infinite"),
    (np.r_[2.0, np.zeros(1933)], "row 0 has 2"),
    (np.array(["N"] * 1934), "must hold numbers"),
    (np.zeros((1934, 3)), "shape"),
])
def test_refit_refuses_a_bad_response(urban_model, bad, message):
    with pytest.raises((ValueError, TypeError), match=message):
        urban_model.refit(bad)


def test_refit_refuses_proportions_that_are_not_whole_successes(herd_model, count_model):
    with pytest.raises(ValueError, match="whole numbers"):
        herd_model.refit(np.full(herd_model.nobs, 0.5))  # half of 14 trials is 7, of 9 is 4.5
    with pytest.raises(ValueError, match="counts"):
        count_model.refit(np.full(count_model.nobs, 1.5))
    with pytest.raises(ValueError, match="no trials"):
        herd_model.refit(np.zeros((herd_model.nobs, 2)))


@pytest.mark.parametrize("name", ["urban_model", "herd_model", "count_model"])
def test_simulate_is_seeded_and_reproducible(name, request):
    m = request.getfixturevalue(name)
    first, again = m.simulate(3, nsim=2), m.simulate(3, nsim=2)
    pd.testing.assert_frame_equal(first, again)
    assert list(first.columns) == ["sim_1", "sim_2"] and first.index.equals(m.model_data.index)
    assert not first.equals(m.simulate(4, nsim=2))
    rng = np.random.default_rng(3)
    one, two = m.simulate(rng)["sim_1"], m.simulate(rng)["sim_1"]  # a Generator continues its stream
    np.testing.assert_array_equal(pd.concat([one, two], axis=1).to_numpy(), first.to_numpy())
    with pytest.raises(ValueError, match="nsim"):
        m.simulate(1, nsim=0)


def test_simulated_responses_have_the_right_support(urban_model, herd_model, count_model):
    binary = urban_model.simulate(1, nsim=5).to_numpy()
    assert set(np.unique(binary)) <= {0.0, 1.0}
    successes = herd_model.simulate(1, nsim=5).mul(herd_model.trials, axis=0).to_numpy()
    assert np.allclose(successes, np.rint(successes)) and (successes >= 0).all()
    assert (successes <= herd_model.trials.to_numpy()[:, None]).all() and successes.max() > 1
    counts = count_model.simulate(1, nsim=5).to_numpy()
    assert np.allclose(counts, np.rint(counts)) and (counts >= 0).all()


@pytest.mark.parametrize("name", ["urban_model", "herd_model", "count_model"])
def test_simulated_means_are_the_marginal_means(name, request):
    """Averaged over draws, the responses estimate E[y] = E_b[g^-1(x'beta + z'b)] (quadrature)."""
    m = request.getfixturevalue(name)
    nsim = 400
    sims = m.simulate(2024, nsim=nsim)
    per_draw = sims.mean(axis=0)  # one mean per simulated data set
    expected = marginal_predict(m).mean()
    assert abs(per_draw.mean() - expected) < 4 * per_draw.std() / np.sqrt(nsim)
    by_row = sims.mean(axis=1)
    assert np.corrcoef(by_row, marginal_predict(m))[0, 1] > 0.9
