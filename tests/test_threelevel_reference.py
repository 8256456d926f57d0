"""Three-level models (years in children in schools, egsingle) against R's lme4.

The JSON is written by tests/reference/make_reference_threelevel.R (R 4.2,
lme4 1.1-31). Each record holds lme4's default fit and a refit with a tight
optimizer tolerance (``tight``: bobyqa, rhoend = 1e-12), the optimum the
Python fit is compared with.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlmcourse
from mlmcourse.inference import lrt
from mlmcourse.lmm import LmerWarning, _result_at_theta, lmer

REFERENCE = Path(__file__).parent / "reference" / "threelevel.json"
SPEC = json.loads(REFERENCE.read_text())
MODELS = SPEC["models"]
_FITS: dict[str, object] = {}


def _r_call(record: dict) -> str:
    return f"lmer({record['formula']}, egsingle, REML = {'TRUE' if record['reml'] else 'FALSE'})"


MODEL_PARAMS = [pytest.param(mid, id=f"{mid}: {_r_call(rec)}") for mid, rec in MODELS.items()]


@pytest.fixture(scope="module")
def egsingle():
    return mlmcourse.load("egsingle")


def _fit(mid: str, data: pd.DataFrame):
    if mid not in _FITS:
        record = MODELS[mid]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LmerWarning)
            _FITS[mid] = lmer(record["formula"], data, reml=record["reml"])
    return _FITS[mid]


def _keys(table) -> list[tuple]:
    return [tuple("" if pd.isna(v) else v for v in row) for row in zip(table["grp"], table["var1"], table["var2"])]


def _scaled_error(ours: pd.DataFrame, reference: pd.DataFrame, sigma2: float) -> float:
    """Largest |difference| of VarCorr entries, each over its variance (or sqrt(var_i var_j))."""
    variances = {(g, v): x for g, v, w, x in zip(reference.grp, reference.var1, reference.var2, reference.vcov)
                 if pd.isna(w)}
    scale = [abs(x) if pd.isna(w) else np.sqrt(variances[(g, v)] * variances[(g, w)])
             for g, v, w, x in zip(reference.grp, reference.var1, reference.var2, reference.vcov)]
    scale = np.maximum(np.asarray(scale), 1e-3 * sigma2)
    return float(np.max(np.abs(ours["vcov"].to_numpy() - reference["vcov"].to_numpy()) / scale))


@pytest.mark.parametrize("mid", MODEL_PARAMS)
def test_formulas_at_lme4_theta(mid, egsingle):
    # At lme4's optimum theta, mlmcourse's formulas give lme4's criterion, fixed effects, SEs and VarCorr.
    record = MODELS[mid]
    optimum = record["tight"]
    at = _result_at_theta(_fit(mid, egsingle), list(optimum["theta"].values()))
    assert at.objective == pytest.approx(optimum["objective"], abs=1e-6)
    names = list(optimum["fixef"])
    np.testing.assert_allclose(at.fixef[names], list(optimum["fixef"].values()), rtol=1e-6)
    np.testing.assert_allclose(at.std_error[names], list(optimum["std_error"].values()), rtol=1e-6)
    reference = pd.DataFrame(optimum["varcorr"])
    assert _keys(at.varcorr) == _keys(reference)
    assert _scaled_error(at.varcorr, reference, optimum["sigma"] ** 2) < 1e-6


@pytest.mark.parametrize("mid", MODEL_PARAMS)
def test_fit_reaches_lme4_optimum(mid, egsingle):
    record = MODELS[mid]
    optimum = record["tight"]
    m = _fit(mid, egsingle)
    assert (m.nobs, m.ngroups, m.df, m.singular) == (record["nobs"], record["ngroups"], optimum["df"],
                                                     optimum["singular"])
    assert m.objective <= record["default"]["objective"] + 1e-6, "worse optimum than lme4's default fit"
    assert m.loglik == pytest.approx(optimum["loglik"], abs=1e-4)
    np.testing.assert_allclose(m.fixef[list(optimum["fixef"])], list(optimum["fixef"].values()), rtol=1e-4)
    np.testing.assert_allclose(m.std_error[list(optimum["fixef"])], list(optimum["std_error"].values()),
                               rtol=1e-3)
    reference = pd.DataFrame(optimum["varcorr"])
    assert _keys(m.varcorr) == _keys(reference)
    assert _scaled_error(m.varcorr, reference, optimum["sigma"] ** 2) < 1e-3


def test_unconditional_growth_variances_as_cited(egsingle):
    # lme4: lmer(math ~ year + (year | schoolid) + (year | childid:schoolid), egsingle);
    # the chapter cites residual 0.30, child 0.64 / 0.011, school 0.17 / 0.011 (R&B 2002, ch. 8)
    vc = _fit("eg_growth", egsingle).varcorr
    variances = {(g, "" if pd.isna(v) else v): x for g, v, w, x in zip(vc.grp, vc.var1, vc.var2, vc.vcov)
                 if pd.isna(w)}
    assert round(variances[("Residual", "")], 2) == 0.30
    assert round(variances[("childid:schoolid", "(Intercept)")], 2) == 0.64
    assert round(variances[("childid:schoolid", "year")], 3) == 0.011
    assert round(variances[("schoolid", "(Intercept)")], 2) == 0.17
    assert round(variances[("schoolid", "year")], 3) == 0.011


def test_nested_shorthand_is_the_explicit_model(egsingle):
    # lme4: (1 | schoolid/childid) expands to (1 | schoolid) + (1 | childid:schoolid)
    short, explicit = _fit("eg_null", egsingle), _fit("eg_null_explicit", egsingle)
    assert _keys(short.varcorr) == _keys(explicit.varcorr)
    np.testing.assert_allclose(short.varcorr["vcov"], explicit.varcorr["vcov"], rtol=1e-6)
    assert short.loglik == pytest.approx(explicit.loglik, abs=1e-8)


def test_random_slopes_lrt_matches_anova(egsingle):
    # lme4: anova(eg_growth_ri_ml, eg_growth_ml), both fitted by ML
    reference = SPEC["lrt"]
    test = lrt(_fit(reference["m0"], egsingle), _fit(reference["m1"], egsingle), refit=False)
    assert test["statistic"].iloc[1] == pytest.approx(reference["chisq"], abs=1e-3)
    assert int(test["df"].iloc[1]) == reference["df"]
