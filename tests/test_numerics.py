"""Numbers that do not depend on the units of a predictor, and the optimizer's report.

Multiplying a predictor by a factor c must multiply its coefficient and standard
error by 1/c and leave every other reported number (other coefficients, t, p,
variance components of terms without it, log-likelihood up to lme4's REML
constant) unchanged. References: lme4 fits in tests/reference/numerics.json,
written by tests/reference/make_reference_numerics.R.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlmcourse
from mlmcourse import estimators
from mlmcourse.lmm import ConvergenceWarning, LmerControl, SingularFitWarning, lmer

REFERENCE = json.loads((Path(__file__).parent / "reference" / "numerics.json").read_text())
RTOL = 1e-6
# a factor between 1e-12 and 1e12, as 10 ** exponent
FACTORS = st.floats(min_value=-12, max_value=12, allow_nan=False).map(lambda e: float(10.0**e))
PROPERTY = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


@pytest.fixture(scope="module")
def hs40():
    return mlmcourse.load("hsb40")


@pytest.fixture(scope="module")
def sleep_fit(sleep):
    return lmer("Reaction ~ Days + (Days | Subject)", sleep)


# ------------------------------------------------------------------ lme4's optimum at any scale
@pytest.mark.parametrize("factor", [1000.0, 10000.0, 1e-6, 1e9, 1e-12, 1e12])
def test_sleepstudy_with_rescaled_days_reaches_lme4s_optimum(sleep, factor):
    # lme4: lmer(Reaction ~ Days + (Days | Subject), sleepstudy) with Days in other units; lme4 itself
    # stops at intercept variance 616.7 (x1000) and 650.3, singular (x10000): the x1 fit is the reference
    ref = REFERENCE["sleepstudy_days_x1"]
    data = sleep.assign(Days=sleep["Days"] * factor)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SingularFitWarning)
        warnings.simplefilter("error", ConvergenceWarning)
        m = lmer("Reaction ~ Days + (Days | Subject)", data)
    assert m.converged and not m.singular
    assert m.varcorr["vcov"].iloc[0] == pytest.approx(ref["vcov"][0], rel=1e-6)  # 612.09
    assert m.varcorr["vcov"].iloc[1] * factor**2 == pytest.approx(ref["vcov"][1], rel=1e-6)
    assert m.fixef["Days"] * factor == pytest.approx(ref["fixef"]["Days"], rel=1e-7)
    assert m.std_error["(Intercept)"] == pytest.approx(ref["std_error"]["(Intercept)"], rel=1e-6)
    assert m.std_error["Days"] * factor == pytest.approx(ref["std_error"]["Days"], rel=1e-6)
    # the REML criterion contains log det(X'V^-1 X), which moves by 2 log(factor) (lme4 too)
    assert m.loglik + np.log(factor) == pytest.approx(ref["loglik"], abs=1e-6)


def test_lme4_itself_stops_short_on_rescaled_days():
    # documents why the x1 fit is the reference: lme4's own fits at x1000 and x10000 are worse
    x1, x1000 = REFERENCE["sleepstudy_days_x1"], REFERENCE["sleepstudy_days_x1000"]
    assert x1000["loglik"] + np.log(1000) < x1["loglik"] - 1e-4
    assert REFERENCE["sleepstudy_days_x10000"]["singular"]


def _lmer_numbers(m, column: str, factor: float) -> dict:
    """Every reported number of a fit, put back into the units of factor = 1."""
    t = m.fixef / m.std_error
    scale = pd.Series(1.0, index=m.fixef.index)
    scale[column] = factor
    return {
        "fixef": (m.fixef * scale).to_numpy(), "std_error": (m.std_error * scale).to_numpy(),
        "t": t.to_numpy(), "p": 2 * _normal_tail(t.to_numpy()),
        "vcov_varcorr": _varcorr_back(m, column, factor), "sigma": np.array([m.sigma]),
        "loglik": np.array([m.loglik + (np.log(factor) if m.reml and column in m.fixef.index else 0.0)]),
        "ranef": _ranef_back(m, column, factor),
    }


def _normal_tail(t: np.ndarray) -> np.ndarray:
    from scipy import stats

    return stats.norm.sf(np.abs(t))


def _varcorr_back(m, column: str, factor: float) -> np.ndarray:
    vc = m.varcorr
    power = 2 * (vc["var1"] == column).to_numpy(dtype=int)
    variance = vc["var2"].isna().to_numpy()
    return np.where(variance, vc["vcov"] * factor**power, vc["sdcor"])  # variances, and correlations


def _ranef_back(m, column: str, factor: float) -> np.ndarray:
    r = m.ranef
    scale = np.where(r["term"] == column, factor, 1.0)
    return np.concatenate([r["condval"] * scale, r["condsd"] * scale])


def _assert_same(numbers: dict, reference: dict, rtol: float = RTOL) -> None:
    for key, value in reference.items():
        np.testing.assert_allclose(numbers[key], value, rtol=rtol, atol=0, err_msg=key)


@PROPERTY
@given(factor=FACTORS)
def test_lmer_random_slope_numbers_are_equivariant(sleep, sleep_fit, factor):
    # lme4: lmer(Reaction ~ Days + (Days | Subject), sleepstudy), Days in any unit
    m = _quiet(lmer, "Reaction ~ Days + (Days | Subject)", sleep.assign(Days=sleep["Days"] * factor))
    assert m.converged and m.singular == sleep_fit.singular
    _assert_same(_lmer_numbers(m, "Days", factor), _lmer_numbers(sleep_fit, "Days", 1.0))


@pytest.fixture(scope="module")
def context_fit(hs40):
    return _quiet(lmer, "MathAch ~ SES + MEANSES + (1 | School)", hs40, reml=False)


@PROPERTY
@given(factor=FACTORS)
def test_lmer_fixed_predictor_numbers_are_equivariant(hs40, context_fit, factor):
    # lme4: lmer(MathAch ~ SES + MEANSES + (1 | School), hsb40, REML = FALSE), MEANSES in any unit
    m = _quiet(lmer, "MathAch ~ SES + MEANSES + (1 | School)", hs40.assign(MEANSES=hs40["MEANSES"] * factor),
               reml=False)
    _assert_same(_lmer_numbers(m, "MEANSES", factor), _lmer_numbers(context_fit, "MEANSES", 1.0))


def test_standard_errors_survive_a_predictor_times_1e9(hs40, context_fit):
    # pinvh once gave SE(Intercept) = 2e-16 here
    m = _quiet(lmer, "MathAch ~ SES + MEANSES + (1 | School)", hs40.assign(MEANSES=hs40["MEANSES"] * 1e9),
               reml=False)
    assert m.std_error["(Intercept)"] == pytest.approx(context_fit.std_error["(Intercept)"], rel=1e-8)


# ------------------------------------------------------------------ the estimators
ESTIMATORS = {
    "pooled": lambda data: estimators.pooled("MathAch ~ SES + MEANSES", data),
    "pooled_cluster": lambda data: estimators.pooled("MathAch ~ SES + MEANSES", data, cluster="School"),
    "fixed_effects": lambda data: estimators.fixed_effects("MathAch ~ SES + SES:Sector", data, "School"),
    "fixed_effects_dummy": lambda data: estimators.fixed_effects("MathAch ~ SES + SES:Sector", data, "School",
                                                                 method="dummy"),
    "between": lambda data: estimators.between("MathAch ~ SES + Sector", data, "School"),
    "random_effects_gls": lambda data: estimators.random_effects_gls("MathAch ~ SES + MEANSES", data, "School"),
}


def _table(result) -> pd.DataFrame:
    table = result.coef_table() if hasattr(result, "coef_table") else result.table
    return table.set_index("term")


@pytest.mark.parametrize("name", list(ESTIMATORS))
@PROPERTY
@given(factor=FACTORS)
def test_estimator_numbers_are_equivariant(hs40, name, factor):
    reference = _table(_quiet(ESTIMATORS[name], hs40))
    table = _table(_quiet(ESTIMATORS[name], hs40.assign(SES=hs40["SES"] * factor)))
    scale = pd.Series([factor if "SES" in term.split(":") else 1.0 for term in table.index], index=table.index)
    np.testing.assert_allclose(table["estimate"] * scale, reference["estimate"], rtol=RTOL)
    np.testing.assert_allclose(table["std_error"] * scale, reference["std_error"], rtol=RTOL)
    np.testing.assert_allclose(table["statistic"], reference["statistic"], rtol=RTOL)
    np.testing.assert_allclose(table["p_value"], reference["p_value"], rtol=RTOL)


# ------------------------------------------------------------------ the optimizer's report
def test_every_fit_reports_what_the_optimizer_did(sleep_fit):
    info = sleep_fit.optinfo
    assert info.optimizer == "L-BFGS-B" and info.stages == ("L-BFGS-B",) and info.converged
    assert 0 < info.evaluations < 100 and info.max_gradient < 1e-3
    assert len(info.messages) == 1 and "L-BFGS-B" in repr(info)


def test_control_chooses_the_optimizer_and_its_budget(sleep, sleep_fit):
    m = lmer("Reaction ~ Days + (Days | Subject)", sleep, control=LmerControl(optimizer="COBYQA"))
    assert m.optinfo.stages == ("COBYQA",) and m.loglik == pytest.approx(sleep_fit.loglik, abs=1e-6)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        short = lmer("Reaction ~ Days + (Days | Subject)", sleep,
                     control=LmerControl(optimizer="L-BFGS-B", max_evaluations=2))
    assert not short.converged and not short.optinfo.converged


def test_auto_restarts_the_gradient_method_after_the_fallback(sleep, sleep_fit):
    # a budget too small for L-BFGS-B sends "auto" to COBYQA, then L-BFGS-B restarts from the better point
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lmer("Reaction ~ Days + (Days | Subject)", sleep, control=LmerControl(max_evaluations=6))
    assert m.optinfo.stages == ("L-BFGS-B", "COBYQA", "L-BFGS-B restart")
    assert len(m.optinfo.messages) == 3 and m.loglik == pytest.approx(sleep_fit.loglik, abs=1e-4)
    assert not m.converged or m.optinfo.max_gradient <= 2e-3


def test_a_fit_stopped_short_is_never_reported_converged(sleep):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lmer("Reaction ~ Days + (Days | Subject)", sleep,
                 control=LmerControl(optimizer="COBYQA", max_evaluations=3))
    assert not m.converged and m.optinfo.max_gradient > 2e-3
    assert "different scales" not in m.messages[-1]  # Days and the intercept have similar units


def test_lme4s_scale_hint_only_when_a_rescaled_fit_still_stops_short(sleep):
    data = sleep.assign(Days=sleep["Days"] * 1e8)
    with pytest.warns(ConvergenceWarning, match="very different scales"):
        m = lmer("Reaction ~ Days + (Days | Subject)", data,
                 control=LmerControl(optimizer="COBYQA", max_evaluations=3))
    assert not m.converged
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        assert lmer("Reaction ~ Days + (Days | Subject)", data).converged


@pytest.mark.parametrize("bad, match", [
    ({"optimizer": "nelder-mead"}, "optimizer must be one of"),
    ({"max_evaluations": 0}, "max_evaluations"),
    ({"max_evaluations": 2.5}, "max_evaluations"),
    ({"gradient_tolerance": -1.0}, "gradient_tolerance"),
])
def test_control_refuses_bad_settings(bad, match):
    with pytest.raises(ValueError, match=match):
        LmerControl(**bad)


def test_lmer_refuses_a_control_of_the_wrong_type(sleep):
    with pytest.raises(TypeError, match="LmerControl"):
        lmer("Reaction ~ Days + (Days | Subject)", sleep, control={"optimizer": "COBYQA"})


# ------------------------------------------------------------------ the three-level growth model
def test_three_level_growth_model_converges_on_the_primary_optimizer():
    # lme4: lmer(math ~ year + (year | schoolid) + (year | childid:schoolid), mlmRev::egsingle)
    ref = REFERENCE["egsingle_growth"]
    m = lmer("math ~ year + (year | schoolid) + (year | childid:schoolid)", mlmcourse.load("egsingle"))
    # L-BFGS-B alone, in under 30 evaluations (with a relative stopping tolerance of 1e-15, below the
    # objective's rounding, it took 56, most of them chasing rounding noise at the optimum)
    assert m.optinfo.stages == ("L-BFGS-B",) and m.optinfo.evaluations < 30
    assert m.converged and not m.singular
    assert m.nobs == ref["nobs"] and m.ngroups["schoolid"] == 60
    assert m.loglik == pytest.approx(ref["loglik"], abs=1e-6)
    np.testing.assert_allclose(m.varcorr["vcov"], ref["vcov"], rtol=1e-4)
    np.testing.assert_allclose(m.std_error, list(ref["std_error"].values()), rtol=1e-5)


# ------------------------------------------------------------------ responses the model cannot fit
def test_lmer_refuses_a_response_without_variance(sleep):
    with pytest.raises(ValueError, match="response 'flat' has the same value"):
        lmer("flat ~ Days + (1 | Subject)", sleep.assign(flat=250.0))


@pytest.mark.parametrize("factor", [1.0, 1e-9, 1e9])
def test_lmer_refuses_a_response_the_fixed_effects_fit_exactly(sleep, factor):
    data = sleep.assign(line=(2.0 + 3.0 * sleep["Days"]) * factor)
    with pytest.raises(ValueError, match=r"'line' is fitted exactly by the fixed effects \(\(Intercept\), Days\)"):
        lmer("line ~ Days + (1 | Subject)", data)
