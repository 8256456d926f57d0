"""The model-building chapter's bdf models against lme4 and the performance package.

The JSON is written by tests/reference/make_reference_modelbuilding.R (lme4 with
bobyqa, rhoend = 1e-12; performance::icc and performance::r2_nakagawa).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import mlmcourse
from mlmcourse import groups
from mlmcourse.inference import lrt
from mlmcourse.lmm import LmerWarning, lmer

SPEC = json.loads((Path(__file__).parent / "reference" / "modelbuilding.json").read_text())
MODELS = SPEC["models"]
_FITS: dict = {}


@pytest.fixture(scope="module")
def bdf():
    data = groups.center(mlmcourse.load("bdf"), ["IQ_verb", "ses"], "schoolNR")
    data["IQ_school"] = data["IQ_verb_mean"] - data["IQ_verb"].mean()
    data["ses_school"] = data["ses_mean"] - data["ses"].mean()
    return data


def _fit(mid, data):
    if mid not in _FITS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LmerWarning)
            _FITS[mid] = lmer(MODELS[mid]["formula"], data)
    return _FITS[mid]


@pytest.mark.parametrize("mid", list(MODELS), ids=[f"{k}: lmer({v['formula']}, bdf)" for k, v in MODELS.items()])
def test_fit_matches_lme4(mid, bdf):
    record, fit = MODELS[mid], _fit(mid, bdf)
    assert fit.nobs == record["nobs"] and fit.singular == record["singular"]
    assert fit.loglik == pytest.approx(record["loglik"], abs=1e-3)
    names = list(record["fixef"])
    np.testing.assert_allclose(fit.fixef[names], list(record["fixef"].values()), rtol=1e-4)
    np.testing.assert_allclose(fit.std_error[names], list(record["std_error"].values()), rtol=1e-3)
    sigma2 = record["vcov"][-1]
    np.testing.assert_allclose(fit.varcorr["vcov"], record["vcov"], rtol=1e-3, atol=1e-3 * sigma2)


def test_icc_of_the_empty_model(bdf):
    # performance::icc(lmer(langPOST ~ 1 + (1 | schoolNR), bdf))
    vc = _fit("mb_empty", bdf).varcorr["vcov"]
    assert vc.iloc[0] / vc.sum() == pytest.approx(MODELS["mb_empty"]["icc"], rel=1e-4)


def test_nakagawa_r2_of_the_random_intercept_model(bdf):
    # performance::r2_nakagawa(): marginal var(X b) / total, conditional (var(X b) + tau00) / total
    fit = _fit("mb_fixed", bdf)
    fixed_part = fit.model_data[list(fit.fixef.index[1:])].to_numpy() @ fit.fixef.iloc[1:].to_numpy()
    variance_fixed = np.var(fixed_part, ddof=1)
    tau00, sigma2 = fit.varcorr["vcov"]
    total = variance_fixed + tau00 + sigma2
    assert variance_fixed / total == pytest.approx(MODELS["mb_fixed"]["r2_marginal"], rel=1e-3)
    assert (variance_fixed + tau00) / total == pytest.approx(MODELS["mb_fixed"]["r2_conditional"], rel=1e-3)


def test_random_slope_lrt(bdf):
    # lme4: anova(mb_fixed, mb_slope, refit = FALSE)
    test = lrt(_fit("mb_fixed", bdf), _fit("mb_slope", bdf), refit=False)
    assert test["statistic"].iloc[1] == pytest.approx(SPEC["lrt"]["chisq"], abs=1e-3)
    assert test["df"].iloc[1] == SPEC["lrt"]["df"]
