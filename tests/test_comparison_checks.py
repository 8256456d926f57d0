"""Tests that compare two fits check first that they can be compared, and say what differs.

lrt() and bootstrap_lrt() need nested models fitted to the same response values on the
same rows; hausman() needs the fixed-effects fit first and a random-effects fit of the
same data. (R's anova() and plm's phtest() do not check these; the numbers they would
print for such pairs are meaningless.)
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlmcourse
from mlmcourse import estimators as est
from mlmcourse.inference import HausmanResult, bootstrap_lrt, hausman, lrt
from mlmcourse.lmm import lmer


def _ml(formula, data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mlmcourse.MlmWarning)
        return lmer(formula, data, reml=False)


@pytest.fixture(scope="module")
def fe(hs):
    return est.fixed_effects("MathAch ~ SES", hs, "School")


@pytest.fixture(scope="module")
def re_gls(hs):
    return est.random_effects_gls("MathAch ~ SES", hs, "School")


# ------------------------------------------------------------------ lrt: nesting
def test_lrt_refuses_fixed_parts_that_are_not_nested(hs):
    m_ses, m_sector = _ml("MathAch ~ SES + (1 | School)", hs), _ml("MathAch ~ Sector + (1 | School)", hs)
    with pytest.raises(ValueError, match=r"fixed part of 'MathAch ~ SES \+ \(1 \| School\)' has \['SES'\].*not nested"):
        lrt(m_ses, m_sector)


def test_lrt_refuses_random_parts_that_are_not_nested():
    scots = mlmcourse.load("scotssec")
    m_primary = _ml("attain ~ verbal + (1 | primary)", scots)
    m_second = _ml("attain ~ verbal + (1 | second)", scots)
    with pytest.raises(ValueError, match=r"random part .* has \(\(Intercept\) \| (primary|second)\).*not nested"):
        lrt(m_primary, m_second)
    with pytest.raises(ValueError, match="not nested"):
        bootstrap_lrt(m_primary, m_second, n_boot=2, seed=1, progress=False)


def test_lrt_accepts_nested_parts_however_they_are_coded(hs):
    # the intercept lies in the span of the Sector dummies; (1 | School) is part of (SES | School)
    m0 = _ml("MathAch ~ 0 + Sector + (1 | School)", hs)
    m1 = _ml("MathAch ~ Sector + SES + (SES | School)", hs)
    table = lrt(m0, m1)
    assert table["df"].iloc[1] == 3 and table["statistic"].iloc[1] > 0


# ------------------------------------------------------------------ lrt: same data
def test_lrt_refuses_another_response_on_the_same_rows(sleep):
    m0 = _ml("Reaction ~ Days + (1 | Subject)", sleep)
    other = sleep.assign(Slower=sleep["Reaction"] * 1.5)
    m1 = _ml("Slower ~ Days + (Days | Subject)", other)
    with pytest.raises(ValueError, match=r"the responses differ \('Reaction' vs 'Slower'\)"):
        lrt(m0, m1)


def test_lrt_refuses_changed_response_values_under_the_same_name(sleep):
    # the case of issue "chi2 = 207, p = 0": same rows, same column name, other values
    m0 = _ml("Reaction ~ Days + (1 | Subject)", sleep)
    changed = sleep.copy()
    changed.loc[changed.index[:30], "Reaction"] += 50
    m1 = _ml("Reaction ~ Days + (Days | Subject)", changed)
    with pytest.raises(ValueError, match="response values differ in 30 of 180 rows"):
        lrt(m0, m1)
    with pytest.raises(ValueError, match="response values differ"):
        bootstrap_lrt(m0, m1, n_boot=2, seed=1, progress=False)


def test_lrt_refuses_the_same_number_of_other_rows(sleep):
    m0 = _ml("Reaction ~ Days + (1 | Subject)", sleep.iloc[:170])
    m1 = _ml("Reaction ~ Days + (Days | Subject)", sleep.iloc[10:])
    with pytest.raises(ValueError, match="different rows \\(row 0 is in one fit only\\)"):
        lrt(m0, m1)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_lrt_does_not_depend_on_the_row_order(sleep, seed):
    # the same rows in another order are the same data: the test is the same
    m0 = _ml("Reaction ~ Days + (1 | Subject)", sleep)
    shuffled = sleep.sample(frac=1.0, random_state=np.random.default_rng(seed))
    m1 = _ml("Reaction ~ Days + (Days | Subject)", shuffled)
    table = lrt(m0, m1)
    assert table["statistic"].iloc[1] == pytest.approx(42.1393, abs=1e-3)  # lme4: anova(m0, m1)$Chisq[2]


@pytest.mark.parametrize("other", ["x", None, 3.0])
def test_lrt_names_the_type_it_needs(sleep, other):
    m0 = _ml("Reaction ~ Days + (1 | Subject)", sleep)
    with pytest.raises(TypeError, match="must be LmerResult"):
        lrt(m0, other)
    with pytest.raises(TypeError, match="must be LmerResult"):
        bootstrap_lrt(other, m0, n_boot=2, seed=1, progress=False)


# ------------------------------------------------------------------ hausman
def test_hausman_equals_the_one_slope_formula(fe, re_gls):
    test = hausman(fe, re_gls)
    d = fe.estimate["SES"] - re_gls.estimate["SES"]
    v = fe.vcov.loc["SES", "SES"] - re_gls.vcov.loc["SES", "SES"]
    assert isinstance(test, HausmanResult)
    assert test.statistic == pytest.approx(d**2 / v, rel=1e-10)
    assert test.df == 1 and test.note == ""
    assert 0 <= test.p_value < 0.001
    assert list(test.comparison.columns) == ["term", "fixed_effects", "random_effects", "difference", "std_error"]
    assert list(test.test.columns) == ["method", "statistic", "df", "p_value", "note"] and len(test.test) == 1


def test_hausman_says_when_the_variance_difference_is_not_positive_definite(fe, re_gls):
    inflated = dataclasses.replace(re_gls, vcov=re_gls.vcov * 100)
    assert "not positive definite" in hausman(fe, inflated).note


def test_hausman_accepts_an_lmer_fit_of_the_same_rows(hs, fe):
    # rows are matched by their labels, also when the data's index is not 0..n-1
    shifted = hs.set_axis(hs.index * 3 + 7)
    fe_shifted = est.fixed_effects("MathAch ~ SES", shifted, "School")
    test = hausman(fe_shifted, lmer("MathAch ~ SES + (1 | School)", shifted))
    assert test.df == 1 and test.statistic > 0


def test_hausman_refuses_swapped_roles(fe, re_gls, hs):
    with pytest.raises(ValueError, match="fixed-effects fit first; the arguments are swapped"):
        hausman(re_gls, fe)
    with pytest.raises(ValueError, match="swapped"):
        hausman(lmer("MathAch ~ SES + (1 | School)", hs), fe)


def test_hausman_refuses_a_first_fit_that_is_not_fixed_effects(hs, re_gls):
    with pytest.raises(ValueError, match="fe must come from estimators.fixed_effects\\(\\), not a 'pooled OLS'"):
        hausman(est.pooled("MathAch ~ SES", hs), re_gls)


def test_hausman_refuses_fits_of_different_data(hs, fe):
    with pytest.raises(ValueError, match="different numbers of rows"):
        hausman(fe, est.random_effects_gls("MathAch ~ SES", hs.iloc[:1500], "School"))
    changed = hs.assign(MathAch=hs["MathAch"] + np.where(hs.index < 100, 5.0, 0.0))
    with pytest.raises(ValueError, match="response values differ in 100 of 1977 rows"):
        hausman(fe, est.random_effects_gls("MathAch ~ SES", changed, "School"))
    with pytest.raises(ValueError, match="the responses differ"):
        hausman(fe, _ml("SES ~ MEANSES + (1 | School)", hs))


@pytest.mark.parametrize("first, second", [("x", None), (None, "x")])
def test_hausman_names_the_types_it_needs(fe, re_gls, first, second):
    args = [fe if first is None else first, re_gls if second is None else second]
    with pytest.raises(TypeError, match="must be (EstimatorResult|RandomEffectsGLSResult or LmerResult)"):
        hausman(*args)
