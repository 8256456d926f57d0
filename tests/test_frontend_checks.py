"""Checks the formula front end makes before anything is fitted, for lmer and every estimator."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlmcourse import estimators as est
from mlmcourse.formula import FormulaError, factor_levels, group_codes, model_frame, parse_formula
from mlmcourse.lmm import LmerWarning, lmer
from mlmcourse.transforms import factor_codes

GROUPED = [est.no_pooling, est.fixed_effects, est.between, est.random_effects_gls, est.two_stage]


# ------------------------------------------------------ same names everywhere
@pytest.mark.parametrize("function", [est.pooled, *GROUPED])
def test_every_estimator_reads_r_transformations(hs, function):
    # R: lm(MathAch ~ poly(SES, 2) + I(SES^2 / 2), hs) names (the second is collinear and dropped)
    args = () if function is est.pooled else ("School",)
    with pytest.warns(LmerWarning, match=r"I\(SES\^2/2\)"):
        result = function("MathAch ~ poly(SES, 2) + I(SES^2/2)", hs, *args)
    terms = result.stage1.terms if function is est.two_stage else list(result.coef_table()["term"].unique())
    assert [t for t in terms if t != "(Intercept)"] == ["poly(SES, 2)1", "poly(SES, 2)2"]


@pytest.mark.parametrize("function", [est.pooled, *GROUPED])
def test_every_estimator_names_a_missing_column_as_lmer_does(hs, function):
    args = () if function is est.pooled else ("School",)
    with pytest.raises(KeyError, match="column 'ses' is not in the data \\(did you mean 'SES'\\?\\)"):
        function("MathAch ~ log(ses)", hs, *args)
    with pytest.raises(KeyError, match="column 'ses' is not in the data \\(did you mean 'SES'\\?\\)"):
        lmer("MathAch ~ log(ses) + (1 | School)", hs)


@pytest.mark.parametrize("function", [est.pooled, *GROUPED])
def test_unknown_function_is_refused_the_same_way(hs, function):
    args = () if function is est.pooled else ("School",)
    with pytest.raises(FormulaError, match=r"C\(\) cannot be used .*patsy"):
        function("MathAch ~ C(Sector)", hs, *args)


def test_ordered_factor_gets_polynomial_contrasts_in_estimators(hs):
    data = hs.assign(size_band=pd.cut(hs["Size"], [0, 800, 1500, 3000], labels=["small", "mid", "large"]))
    assert data["size_band"].cat.ordered
    fit = est.pooled("MathAch ~ size_band", data)
    assert list(fit.coef_table()["term"]) == ["(Intercept)", "size_band.L", "size_band.Q"]


# ------------------------------------------------------ rank, groups, response
def test_pooled_drops_a_collinear_copy_as_lmer_does(hs):
    # lm(MathAch ~ SES + SES2, hs) gives NA for SES2; lmer drops it with a message
    data = hs.assign(SES2=2 * hs["SES"])
    with pytest.warns(LmerWarning, match="rank deficient.*SES2"):
        fit = est.pooled("MathAch ~ SES + SES2", data)
    alone = est.pooled("MathAch ~ SES", hs)
    assert list(fit.coef_table()["term"]) == ["(Intercept)", "SES"]
    np.testing.assert_allclose(fit.std_error, alone.std_error, rtol=1e-12)
    with pytest.warns(LmerWarning, match="SES2"):
        mixed = lmer("MathAch ~ SES + SES2 + (1 | School)", data)
    assert list(mixed.fixef.index) == list(fit.coef_table()["term"])


def test_fixed_effects_within_drops_a_term_collinear_within_groups(hs):
    # z = SES + MEANSES differs from SES only by a school constant: after demeaning it is SES again
    data = hs.assign(z=hs["SES"] + hs["MEANSES"])
    with pytest.warns(LmerWarning, match=r"\['z'\] are linear combinations"):
        fit = est.fixed_effects("MathAch ~ SES + z", data, "School")
    assert list(fit.coef_table()["term"]) == ["SES"]


@pytest.mark.parametrize("function", GROUPED)
def test_a_single_group_is_refused(hs, function):
    one = hs[hs["School"] == hs["School"].iloc[0]]
    with pytest.raises(ValueError, match="only one group .* at least two groups"):
        function("MathAch ~ SES", one, "School")


def test_cluster_robust_errors_need_two_clusters(hs):
    one = hs[hs["School"] == hs["School"].iloc[0]]
    with pytest.raises(ValueError, match="cluster column 'School' has only one group"):
        est.pooled("MathAch ~ SES", one, cluster="School")


def test_library_rank_advice_is_translated():
    def fails():
        raise ValueError("exog does not have full column rank. If you wish to proceed with model estimation "
                         "irrespective of the numerical accuracy of coefficient estimates, you can set "
                         "check_rank=False")
    with pytest.raises(ValueError, match="linearly dependent") as info:
        est._translate_errors("between", fails)
    assert "check_rank" not in str(info.value)


@pytest.mark.parametrize("call", [
    lambda d: est.pooled("y ~ SES", d),
    lambda d: est.fixed_effects("y ~ SES", d, "School"),
    lambda d: est.between("y ~ SES", d, "School"),
    lambda d: lmer("y ~ SES + (1 | School)", d),
])
def test_a_response_without_variation_is_refused_naming_it(hs, call):
    with pytest.raises(ValueError, match="the response 'y' has the same value \\(3\\) in every row"):
        call(hs.assign(y=3.0))


@pytest.mark.parametrize("call, words", [
    (lambda d: est.pooled("y ~ SES", d), "fitted exactly by SES \\(every"),
    (lambda d: est.random_effects_gls("y ~ SES", d, "School"), "fitted exactly by SES"),
    (lambda d: est.fixed_effects("z ~ SES", d, "School"), "fitted exactly by SES within School"),
    (lambda d: est.between("y ~ SES", d, "School"), "fitted exactly by SES between School means"),
])
def test_a_response_fitted_exactly_is_refused_naming_it(hs, call, words):
    # y = 1 + 2 SES has no error; z = SES + a school constant has none within schools
    data = hs.assign(y=1 + 2 * hs["SES"], z=hs["SES"] + hs["MEANSES"])
    with pytest.raises(ValueError, match=words):
        call(data)


def test_missing_group_values_drop_rows_with_a_warning(hs):
    data = hs.copy()
    data.loc[data.index[:5], "School"] = None
    with pytest.warns(LmerWarning, match="5 row\\(s\\) with missing values were dropped"):
        fit = est.fixed_effects("MathAch ~ SES", data, "School")
    assert fit.nobs == len(hs) - 5


# ------------------------------------------------------------- weights, offsets
def test_weights_give_weighted_least_squares(hs):
    # lm(MathAch ~ SES, hs, weights = Size): the same as OLS on rows scaled by sqrt(Size)
    fit = est.pooled("MathAch ~ SES", hs, weights="Size")
    root = np.sqrt(hs["Size"].to_numpy(dtype=float))
    X = np.column_stack([np.ones(len(hs)), hs["SES"]]) * root[:, None]
    beta = np.linalg.lstsq(X, hs["MathAch"].to_numpy() * root, rcond=None)[0]
    np.testing.assert_allclose(fit.estimate.to_numpy(), beta, rtol=1e-10)


def test_weights_must_be_positive(hs):
    with pytest.raises(ValueError, match="weights column 'w' has 1 value"):
        est.pooled("MathAch ~ SES", hs.assign(w=np.r_[0.0, np.ones(len(hs) - 1)]), weights="w")


def test_an_offset_is_subtracted_from_the_response(hs):
    # lm(y ~ x + offset(o)) has the coefficients of lm(I(y - o) ~ x)
    with_offset = est.pooled("MathAch ~ Sector + offset(2 * SES)", hs)
    by_hand = est.pooled("I(MathAch - 2 * SES) ~ Sector", hs)
    np.testing.assert_allclose(with_offset.estimate, by_hand.estimate, rtol=1e-12)


def test_scale_uses_rows_dropped_for_other_columns_as_r_does():
    # R's model.frame evaluates scale(x) on every row before dropping rows with a missing y
    data = pd.DataFrame({"y": [1.0, np.nan, 3.0, 2.0, 5.0], "x": [1.0, 2.0, 3.0, 4.0, 10.0]})
    frame = model_frame(parse_formula("y ~ scale(x)"), data)
    variable = frame.variables["scale(x)"]
    assert variable.center == pytest.approx(4.0) and variable.scale == pytest.approx(np.std(data["x"], ddof=1))


# ------------------------------------------------------------ grouping factors
def test_interaction_groups_whose_labels_collide_are_refused():
    data = pd.DataFrame({"y": np.arange(8.0) % 3, "a": ["x:y", "x", "x:y", "x", "p", "p", "q", "q"],
                         "b": ["z", "y:z", "z", "y:z", "r", "s", "r", "s"]})
    with pytest.raises(ValueError, match="'a:b'.*both be labelled 'x:y:z'.*\\['a', 'b'\\]"):
        group_codes(data, ("a", "b"))


def test_interaction_labels_with_colons_that_do_not_collide_are_kept():
    codes, labels = group_codes(pd.DataFrame({"a": ["x:1", "x:2", "x:1"], "b": ["u", "u", "v"]}), ("a", "b"))
    assert labels == ["x:1:u", "x:1:v", "x:2:u"] and codes.tolist() == [0, 2, 1]


def test_factor_handling_is_linear_for_categoricals():
    # 200,000 rows, 20,000 categories: a pass over the categories per category would take minutes
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 20_000, 200_000)
    values = pd.Series(pd.Categorical.from_codes(codes, [f"s{i:05d}" for i in range(20_000)]))
    started = time.perf_counter()
    levels = factor_levels(values)
    position = factor_codes(values, levels)
    _, labels = group_codes(pd.DataFrame({"g": values}), ("g",))
    assert time.perf_counter() - started < 5.0
    assert len(levels) == len(labels) == len(np.unique(codes))
    assert (np.asarray(levels, dtype=object)[position] == values.to_numpy()).all()


def test_categorical_and_string_ids_give_the_same_fit(hs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LmerWarning)
        text = lmer("MathAch ~ SES + (1 | School)", hs)
        categorical = lmer("MathAch ~ SES + (1 | School)", hs.assign(School=hs["School"].astype("category")))
    assert text.loglik == pytest.approx(categorical.loglik, rel=1e-12)
    assert text.ranef["grp"].tolist() == categorical.ranef["grp"].tolist()


@pytest.mark.filterwarnings("ignore:the model matrix:mlmcourse.lmm.LmerWarning")
@settings(max_examples=10, deadline=None)
@given(st.permutations(range(60)))
def test_transformed_designs_do_not_depend_on_row_order(order):
    # scale() and poly() learn from the whole column, so shuffling rows only shuffles the design
    # (gg5:I(x^2) is dropped both times: the six g:I(x^2) columns add up to poly's x^2)
    rng = np.random.default_rng(7)
    data = pd.DataFrame({"y": rng.normal(size=60), "x": rng.normal(size=60), "z": rng.uniform(1, 5, 60),
                         "g": np.repeat([f"g{i}" for i in range(6)], 10)})
    formula = "y ~ poly(x, 2) + scale(z) + log(z) + g + I(x^2):g"
    fit = est.pooled(formula, data)
    shuffled = est.pooled(formula, data.iloc[list(order)])
    np.testing.assert_allclose(shuffled.estimate, fit.estimate, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(shuffled.std_error, fit.std_error, rtol=1e-9)
