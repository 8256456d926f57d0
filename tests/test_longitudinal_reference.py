"""The longitudinal chapter's growth models on the restriction days of sleepstudy, against lme4.

The JSON is written by tests/reference/make_reference_longitudinal.R (lme4 with
bobyqa, rhoend = 1e-12): lme4's own example drops the adaptation days,
``lmer(Reaction ~ Days + (Days | Subject), sleepstudy, subset = Days >= 2)``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import mlmcourse
from mlmcourse.lmm import lmer

SPEC = json.loads((Path(__file__).parent / "reference" / "longitudinal.json").read_text())
MODELS = SPEC["models"]


@pytest.fixture(scope="module")
def study():
    sleep = mlmcourse.load("sleepstudy")
    study = sleep[sleep["Days"] >= 2].copy()
    study["time"] = study["Days"] - 2
    study["time_mid"] = study["Days"] - 5.5
    return study


@pytest.mark.parametrize("mid", list(MODELS), ids=[f"{k}: {v['formula']}" for k, v in MODELS.items()])
def test_growth_model_matches_lme4(mid, study):
    record = MODELS[mid]
    fit = lmer(record["formula"], study)
    assert fit.nobs == record["nobs"] == 144
    assert fit.loglik == pytest.approx(record["loglik"], abs=1e-4)
    names = list(record["fixef"])
    np.testing.assert_allclose(fit.fixef[names], list(record["fixef"].values()), rtol=1e-5)
    np.testing.assert_allclose(fit.std_error[names], list(record["std_error"].values()), rtol=1e-3)
    assert fit.sigma == pytest.approx(record["sigma"], rel=1e-4)
    # as.data.frame(VarCorr(m), order = "cov.last"): variances, covariances, residual, in lme4's order
    np.testing.assert_allclose(fit.varcorr["vcov"], record["vcov"], rtol=1e-3, atol=1e-3 * record["sigma"] ** 2)
    np.testing.assert_allclose(fit.varcorr["sdcor"], record["sdcor"], rtol=1e-3, atol=1e-3)
