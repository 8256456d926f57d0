"""R's formula transformations against lme4 and lm (tests/reference/formula.json).

The JSON is written by tests/reference/make_reference_formula.R: lme4 fits with
I(), log(), exp(), sqrt(), scale(), poly(), factor(), offset() and ordered
factors, their predictions on new data, and lm() fits of the same kinds.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlmcourse
from mlmcourse import estimators as est
from mlmcourse.lmm import LmerWarning, _result_at_theta, lmer

REFERENCE = json.loads((Path(__file__).parent / "reference" / "formula.json").read_text())
MODELS = REFERENCE["models"]
LMER = sorted(k for k, r in MODELS.items() if r["kind"] == "lmer")
LM = sorted(k for k, r in MODELS.items() if r["kind"] == "lm")
BANDS = ["bottom 25%", "mid 50%", "top 25%"]


def _ordered(values) -> pd.Categorical:
    return pd.Categorical(pd.Series(values).astype(str), categories=BANDS, ordered=True)


def course_data(name: str) -> pd.DataFrame:
    """The shipped data with the columns the R script derives (meta.derived)."""
    data = mlmcourse.load(name)
    if name == "exam":
        data["intake_ord"] = _ordered(data["intake"])
        data["vr_ord"] = _ordered(data["vr"])
    if name == "hsb40":
        data["SES2"] = 2 * data["SES"]
    return data


def new_data(record: dict) -> pd.DataFrame:
    frame = pd.DataFrame(record["newdata"])
    for column in ("intake_ord", "vr_ord"):
        if column in frame:
            frame[column] = _ordered(frame[column])
    return frame


@pytest.fixture(scope="module")
def lmer_fits():
    fits = {}
    for key in LMER:
        record = MODELS[key]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LmerWarning)
            fit = lmer(record["formula"], course_data(record["data"]), reml=record["reml"])
        fits[key] = (fit, _result_at_theta(fit, np.array(record["theta"], dtype=float)))
    return fits


@pytest.mark.parametrize("key", LMER)
def test_lmer_names_match_lme4(lmer_fits, key):
    # lme4: names(fixef(m)) and deparse(formula(m)[[2]])
    fit, _ = lmer_fits[key]
    assert list(fit.fixef.index) == list(MODELS[key]["fixef"])
    assert fit.response == MODELS[key]["response_name"]
    assert fit.nobs == MODELS[key]["nobs"]


@pytest.mark.parametrize("key", LMER)
def test_lmer_numbers_match_lme4_at_its_theta(lmer_fits, key):
    # lme4: fixef(m), sqrt(diag(vcov(m))), logLik(m), sigma(m) at getME(m, "theta")
    record = MODELS[key]
    _, at = lmer_fits[key]
    np.testing.assert_allclose(at.fixef.to_numpy(), list(record["fixef"].values()), rtol=1e-6)
    np.testing.assert_allclose(at.std_error.to_numpy(), list(record["std_error"].values()), rtol=1e-6)
    np.testing.assert_allclose(at.loglik, record["loglik"], rtol=1e-6)
    np.testing.assert_allclose(at.sigma, record["sigma"], rtol=1e-6)
    np.testing.assert_allclose(at.fitted.to_numpy()[:5], record["fitted_head"], rtol=1e-6)


@pytest.mark.parametrize("key", LMER)
def test_lmer_own_optimum_is_lme4s(lmer_fits, key):
    # lme4's default optimizer stops within about 1e-5 of the optimum on random-slope models
    fit, _ = lmer_fits[key]
    np.testing.assert_allclose(fit.fixef.to_numpy(), list(MODELS[key]["fixef"].values()), rtol=1e-4)
    assert fit.loglik >= MODELS[key]["loglik"] - 1e-6


@pytest.mark.parametrize("key", LMER)
def test_predictions_on_new_data_reuse_the_training_coding(lmer_fits, key):
    # lme4: predict(m, newdata, re.form = NA) and predict(m, newdata, allow.new.levels = TRUE):
    # scale() and poly() keep the training data's centre, scale and coefficients
    record = MODELS[key]
    _, at = lmer_fits[key]
    newdata = new_data(record)
    np.testing.assert_allclose(at.predict(newdata, include_random=False).to_numpy(), record["predict_fixed"],
                               rtol=1e-6)
    with pytest.warns(LmerWarning, match="unseen"):
        with_groups = at.predict(newdata).to_numpy()
    np.testing.assert_allclose(with_groups, record["predict_random"], rtol=1e-6)


def test_ordered_factor_gets_polynomial_contrasts(lmer_fits):
    # R: contr.poly(3), the coding of an ordered factor with three levels
    fit, _ = lmer_fits["lmer_ordered"]
    X = fit._design.problem.X
    names = list(fit.fixef.index)
    coding = np.column_stack([X[:, names.index("intake_ord.L")], X[:, names.index("intake_ord.Q")]])
    levels = fit.model_data["intake_ord"].cat.codes.to_numpy()
    expected = np.asarray(MODELS["lmer_ordered"]["contrasts_poly"])
    np.testing.assert_allclose(coding, expected[levels], atol=1e-12)


@pytest.mark.parametrize("key", LM)
def test_estimator_names_and_numbers_match_lm(key):
    # R: coef(summary(lm(formula, data))); pooled() is lm()
    record = MODELS[key]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = est.pooled(record["formula"], course_data(record["data"]))
    kept = [n for n in record["names"] if n not in record["dropped"]]
    assert list(fit.coef_table()["term"]) == kept
    np.testing.assert_allclose(fit.estimate[kept], [record["estimate"][n] for n in kept], rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(fit.std_error[kept], [record["std_error"][n] for n in kept], rtol=1e-6)
    np.testing.assert_allclose(fit.sigma, record["sigma"], rtol=1e-6)
    assert fit.df_resid == record["df_resid"] and fit.nobs == record["nobs"]
    for name in record["dropped"]:
        assert any(name in str(w.message) and issubclass(w.category, LmerWarning) for w in caught)


def test_fixed_effects_dummy_names_a_collinear_copy():
    # lm(MathAch ~ SES + SES2 + factor(School), hs40): SES2 = 2 SES is NA, SES as without it
    data = course_data("hsb40")
    with pytest.warns(LmerWarning, match="SES2"):
        fit = est.fixed_effects("MathAch ~ SES + SES2", data, "School", method="dummy")
    alone = est.fixed_effects("MathAch ~ SES", data, "School", method="dummy")
    assert list(fit.coef_table()["term"]) == ["SES"]
    np.testing.assert_allclose(fit.estimate["SES"], alone.estimate["SES"], rtol=1e-12)
    np.testing.assert_allclose(fit.std_error["SES"], alone.std_error["SES"], rtol=1e-12)
