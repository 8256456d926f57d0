"""Profile-likelihood intervals against lme4's ``confint(m, method = "profile")`` (tests/reference/inference.json).

lme4 refits REML fits by ML and profiles the ML deviance; its bounds come from
a spline through the profile, ours from root finding: tolerance 5e-3 relative.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from _inference_reference import MODELS, REFERENCE, fit, models_with, r_call
from mlmcourse.lmm import LmerWarning
from mlmcourse.profile import CI_COLUMNS, variance_parameters

pytestmark = pytest.mark.skipif(not REFERENCE.exists(), reason="tests/reference/inference.json not generated")
_PROFILES: dict = {}


def _profile(mid):
    if mid not in _PROFILES:
        _PROFILES[mid] = fit(mid).conf_int("profile")
    return _PROFILES[mid]


@pytest.mark.parametrize("mid", [pytest.param(m, id=r_call(m)) for m in models_with("profile")])
def test_profile_bounds_match_lme4(mid):
    # lme4: confint(m, method = "profile", oldNames = FALSE)
    theirs = pd.DataFrame(MODELS[mid]["profile"]).set_index("term")
    ours = _profile(mid).set_index("term")
    assert list(ours.index) == list(theirs.index)
    for column in ("conf_low", "conf_high"):
        keep = [(mid, term, column) not in _LME4_TOO_NARROW for term in theirs.index]
        np.testing.assert_allclose(ours.loc[keep, column], theirs.loc[keep, column], rtol=5e-3, atol=1e-6,
                                   err_msg=column)


# bdf_nested is singular (class SD 0) and classes nearly coincide with schools: lme4's profile of the
# class SD stops at 3.19, but the ML deviance at class SD 3.19 (school SD 0) is only about 1.2 above
# the minimum, well inside the 3.84 cutoff, so the interval reaches further (about 3.53).
_LME4_TOO_NARROW = {("bdf_nested_kr", "sd_(Intercept)|classNR:schoolNR", "conf_high")}


def test_lme4_bound_that_is_too_narrow_lies_inside_the_profile():
    from mlmcourse.profile import _Profiler

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LmerWarning)  # the ML refit is singular too
        m = fit("bdf_nested_kr").refit_ml()
    profiler = _Profiler(m)
    lme4_bound = MODELS["bdf_nested_kr"]["profile"]["conf_high"][0]
    deviance, _ = profiler.profile(0, lme4_bound, profiler.opt.copy())
    assert deviance - profiler.base < 3.84 / 2
    ours = _profile("bdf_nested_kr").set_index("term").loc["sd_(Intercept)|classNR:schoolNR", "conf_high"]
    assert ours > lme4_bound * 1.05


def test_profile_interval_contains_the_ml_estimate():
    table = _profile("sleep_rs")
    assert ((table["conf_low"] <= table["estimate"]) & (table["estimate"] <= table["conf_high"])).all()


def test_wald_and_profile_share_the_columns():
    m = fit("sleep_ri")
    assert list(m.conf_int()) == CI_COLUMNS == list(_profile("sleep_ri"))


def test_variance_parameter_names_are_lme4s():
    assert list(variance_parameters(fit("sleep_rs")).index) == [
        "sd_(Intercept)|Subject", "cor_Days.(Intercept)|Subject", "sd_Days|Subject", "sigma"]


def test_bootstrap_interval_is_reproducible():
    m = fit("sleep_ri")
    a = m.conf_int("bootstrap", n_boot=20, seed=3)
    b = m.conf_int("bootstrap", n_boot=20, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == CI_COLUMNS and (a["conf_low"] < a["conf_high"]).all()


def test_level_passed_as_method_is_explained():
    with pytest.raises(TypeError, match="level="):
        fit("sleep_ri").conf_int(0.9)


def test_unknown_method_names_the_choices():
    with pytest.raises(ValueError, match="profile"):
        fit("sleep_ri").conf_int("likelihood")
