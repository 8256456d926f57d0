"""Bad input is answered before anything is fitted, and the message names the culprit.

Also the data problems lmer() repairs with a warning (missing values, collinear
columns, unused levels) and the fits it flags (singular, not converged).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mlmcourse
from mlmcourse.lmm import ConvergenceWarning, LmerControl, LmerWarning, SingularFitWarning, lmer


@pytest.fixture(scope="module")
def hs40():
    return mlmcourse.load("hsb40").rename(columns={"SES": "ses"})


@pytest.fixture(scope="module")
def no_school_effect():
    """Forty rows, eight groups whose means are exactly equal: the school variance is zero."""
    rng = np.random.default_rng(7)
    group = np.repeat([f"g{i}" for i in range(8)], 5)
    noise = rng.normal(size=40)
    y = 10 + noise - pd.Series(noise).groupby(group).transform("mean").to_numpy()
    return pd.DataFrame({"y": y, "x": rng.normal(size=40), "g": group})


# --------------------------------------------------------- missing columns
def test_missing_fixed_column_suggests_the_close_name(hs40):
    with pytest.raises(KeyError) as info:
        lmer("MathAch ~ sess + (1 | School)", hs40)
    assert "column 'sess' is not in the data (did you mean 'ses'?)" in str(info.value)


def test_missing_random_slope_column_is_named(hs40):
    with pytest.raises(KeyError, match="'cses'.*random effect"):
        lmer("MathAch ~ ses + (1 + cses | School)", hs40)


def test_missing_grouping_column_is_named(hs40):
    with pytest.raises(KeyError, match="'Schol' is not in the data \\(did you mean 'School'\\?\\).*grouping"):
        lmer("MathAch ~ ses + (1 | Schol)", hs40)


def test_missing_response_is_named(hs40):
    with pytest.raises(KeyError, match="'mathach'.*did you mean 'MathAch'.*response"):
        lmer("mathach ~ ses + (1 | School)", hs40)


# ------------------------------------------------------- formula problems
def test_formula_without_random_term_points_to_ols(hs40):
    with pytest.raises(ValueError, match="statsmodels OLS / mlmcourse.estimators.pooled"):
        lmer("MathAch ~ ses", hs40)


def test_malformed_random_term_is_quoted(hs40):
    with pytest.raises(ValueError, match="grouping factor"):
        lmer("MathAch ~ ses + (1 | )", hs40)


def test_random_term_outside_parentheses_is_explained(hs40):
    with pytest.raises(ValueError, match="must be in parentheses"):
        lmer("MathAch ~ ses + 1 | School", hs40)


def test_unknown_function_names_itself_and_the_allowed_ones(hs40):
    with pytest.raises(ValueError, match=r"cos\(\) cannot be used .* I\(\), log\(\)"):
        lmer("MathAch ~ cos(ses) + (1 | School)", hs40)


def test_log_of_negative_values_drops_those_rows_with_a_warning(hs40):
    # R: log(ses) is NaN for ses < 0 and model.frame's na.omit drops those rows
    with pytest.warns(LmerWarning, match=r"log\(ses\) is undefined .* in 1010 row"):
        fit = lmer("MathAch ~ log(ses) + (1 | School)", hs40)
    assert fit.nobs == int((hs40["ses"] > 0).sum())


def test_log_of_zero_is_refused_naming_the_term(hs40):
    data = hs40.assign(ses=hs40["ses"].abs())
    data.loc[data.index[0], "ses"] = 0.0
    with pytest.raises(ValueError, match=r"log\(ses\) is infinite in 1 row"):
        lmer("MathAch ~ log(ses) + (1 | School)", data)


def test_formula_must_be_text(hs40):
    with pytest.raises(TypeError, match="formula must be a string"):
        lmer(["MathAch ~ 1 + (1 | School)"], hs40)


def test_reml_must_be_a_boolean(hs40):
    with pytest.raises(TypeError, match="reml must be True or False"):
        lmer("MathAch ~ 1 + (1 | School)", hs40, reml="yes")


# ---------------------------------------------------------- data problems
def test_data_must_be_a_dataframe():
    with pytest.raises(TypeError, match="pandas DataFrame, not dict"):
        lmer("y ~ 1 + (1 | g)", {"y": [1.0, 2.0], "g": ["a", "b"]})


def test_empty_data_is_refused(hs40):
    with pytest.raises(ValueError, match="no rows"):
        lmer("MathAch ~ ses + (1 | School)", hs40.iloc[:0])


def test_grouping_factor_with_one_level_is_named(hs40):
    one_school = hs40[hs40["School"] == "1317"]
    with pytest.raises(ValueError, match="grouping factor 'School' has only one level \\('1317'\\)"):
        lmer("MathAch ~ ses + (1 | School)", one_school)


def test_grouping_factor_with_a_group_per_row_is_named(hs40):
    data = hs40.assign(student=[f"s{i}" for i in range(len(hs40))])
    with pytest.raises(ValueError, match="grouping factor 'student' has as many levels"):
        lmer("MathAch ~ ses + (1 | student)", data)


def test_non_numeric_response_is_named(hs40):
    with pytest.raises(TypeError, match="response 'Sector' is not numeric"):
        lmer("Sector ~ ses + (1 | School)", hs40)


def test_infinite_values_are_named_and_counted(hs40):
    data = hs40.copy()
    data.loc[data.index[:2], "ses"] = np.inf
    with pytest.raises(ValueError, match="column 'ses' has 2 infinite value"):
        lmer("MathAch ~ ses + (1 | School)", data)


def test_text_mixed_with_numbers_is_named(hs40):
    data = hs40.assign(mixed=pd.Series([1.0, "a"] * (len(hs40) // 2) + [1.0], dtype=object, index=hs40.index))
    with pytest.raises(TypeError, match="column 'mixed' mixes text"):
        lmer("MathAch ~ mixed + (1 | School)", data)


def test_predictor_with_a_single_level_is_named(hs40):
    catholic = hs40[hs40["Sector"] == "Catholic"]
    with pytest.raises(ValueError, match="column 'Sector' has a single value \\('Catholic'\\)"):
        lmer("MathAch ~ ses + Sector + (1 | School)", catholic)


# ------------------------------------------------ repaired with a warning
def test_missing_values_are_dropped_listwise_with_a_warning(hs40):
    data = hs40.copy()
    data.loc[data.index[:3], "ses"] = np.nan
    data.loc[data.index[5], "MathAch"] = np.nan
    with pytest.warns(LmerWarning, match="4 row\\(s\\) with missing values.*'MathAch': 1.*'ses': 3"):
        m = lmer("MathAch ~ ses + (1 | School)", data)
    assert m.nobs == len(hs40) - 4 and len(m.model_data) == m.nobs
    assert any("missing values" in message for message in m.messages)


def test_collinear_fixed_effect_is_dropped_with_a_warning(hs40):
    data = hs40.assign(ses2=2 * hs40["ses"] + 1)
    with pytest.warns(LmerWarning, match="rank deficient so dropping 1 column\\(s\\): ses2"):
        m = lmer("MathAch ~ ses + ses2 + (1 | School)", data)
    assert list(m.fixef.index) == ["(Intercept)", "ses"]
    assert "rank deficient" in str(m.summary())


def test_unused_factor_levels_are_dropped(hs40):
    sector = hs40["Sector"].cat.add_categories(["Charter"]).cat.reorder_categories(["Charter", "Catholic", "Public"])
    m = lmer("MathAch ~ ses + Sector + (1 | School)", hs40.assign(Sector=sector))
    assert list(m.fixef.index) == ["(Intercept)", "ses", "SectorPublic"]
    assert m.reference_levels == {"Sector": "Catholic"}


def test_unused_grouping_levels_are_dropped(hs40):
    school = pd.Categorical(hs40["School"], categories=[*sorted(hs40["School"].unique()), "0000"])
    m = lmer("MathAch ~ ses + (1 | School)", hs40.assign(School=school))
    assert m.ngroups == {"School": 40} and "0000" not in set(m.ranef["grp"])


# ------------------------------------------------------------ flagged fits
def test_zero_variance_is_flagged_singular(no_school_effect):
    with pytest.warns(SingularFitWarning, match="\\(\\(Intercept\\) \\| g\\)"):
        m = lmer("y ~ x + (1 | g)", no_school_effect)
    assert m.singular and m.varcorr.loc[0, "vcov"] == pytest.approx(0, abs=1e-8)
    assert "boundary (singular) fit" in str(m.summary())


def test_random_slope_of_a_constant_is_flagged_singular(hs40):
    data = hs40.assign(one=1.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = lmer("MathAch ~ ses + (1 + one | School)", data)
    assert m.singular and "boundary (singular) fit" in str(m.summary())
    singular = [str(w.message) for w in caught if issubclass(w.category, SingularFitWarning)]
    assert any("'one'" in message for message in singular)


def test_non_converged_fit_is_flagged(hs40):
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        m = lmer("MathAch ~ ses + (ses | School)", hs40, control=LmerControl(max_evaluations=1))
    assert not m.converged and "NOT converged" in repr(m)
    assert "Model failed to converge" in str(m.summary())
