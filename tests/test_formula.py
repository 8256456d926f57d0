"""Formula parsing and design matrices: lme4's syntax, R's term order and R's column names."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlmcourse.formula import (
    FormulaError,
    fixed_design,
    group_codes,
    model_frame,
    parse_formula,
    random_design,
)
from mlmcourse.transforms import deparse


@pytest.fixture(scope="module")
def small():
    """Eight rows with a numeric x, a categorical f (levels b < a declared), a string s and a boolean t."""
    return pd.DataFrame({
        "y": [1.0, 2.0, 3.5, 4.0, 5.5, 6.0, 7.5, 8.0],
        "x": [0.1, 0.5, 0.9, 1.3, 1.7, 2.1, 2.5, 2.9],
        "f": pd.Categorical(["a", "b", "a", "b", "a", "b", "a", "b"], categories=["b", "a"]),
        "s": ["q", "p", "r", "p", "q", "r", "p", "q"],
        "t": [True, False, True, False, False, True, True, False],
        "g": ["g1", "g1", "g2", "g2", "g3", "g3", "g4", "g4"],
        "h": ["h1", "h2", "h1", "h2", "h1", "h2", "h1", "h2"],
    })


def _names(formula: str, data: pd.DataFrame) -> list[str]:
    parsed = parse_formula(formula)
    return fixed_design(parsed, data)[1].names


# ---------------------------------------------------------------- the parser
def test_response_and_fixed_terms():
    f = parse_formula("y ~ x + z")
    assert (f.response, f.fixed_terms, f.intercept) == ("y", (("x",), ("z",)), True)


@pytest.mark.parametrize("formula", ["y ~ 0 + x", "y ~ x - 1", "y ~ -1 + x", "y ~ x + 0"])
def test_zero_and_minus_one_remove_the_intercept(formula):
    assert parse_formula(formula).intercept is False


def test_star_expands_to_main_effects_and_interaction():
    # R: terms(y ~ a * b) has labels a, b, a:b
    assert parse_formula("y ~ a * b").fixed_terms == (("a",), ("b",), ("a", "b"))


def test_terms_are_sorted_by_degree_as_r_does():
    # R: attr(terms(y ~ a:b + c), "term.labels") is c("c", "a:b")
    assert parse_formula("y ~ a:b + c").fixed_terms == (("c",), ("a", "b"))


def test_interaction_variables_follow_their_first_appearance():
    # R: y ~ x + f + f:x labels the interaction "x:f"
    assert parse_formula("y ~ x + f + f:x").fixed_terms[-1] == ("x", "f")


def test_power_of_a_sum_gives_interactions_up_to_that_order():
    assert parse_formula("y ~ (a + b + c)^2").fixed_terms == (
        ("a",), ("b",), ("c",), ("a", "b"), ("a", "c"), ("b", "c"))


def test_minus_removes_a_term():
    assert parse_formula("y ~ a * b - a:b").fixed_terms == (("a",), ("b",))


def test_slash_in_the_fixed_part_nests():
    # R: y ~ a/b is y ~ a + a:b
    assert parse_formula("y ~ a/b").fixed_terms == (("a",), ("a", "b"))


@pytest.mark.parametrize("formula, intercept, terms", [
    ("y ~ 1 + (1 | g)", True, ()),
    ("y ~ 1 + (1 + x | g)", True, (("x",),)),
    ("y ~ 1 + (x | g)", True, (("x",),)),
    ("y ~ 1 + (0 + x | g)", False, (("x",),)),
    ("y ~ 1 + (x - 1 | g)", False, (("x",),)),
])
def test_random_term_forms(formula, intercept, terms):
    (term,) = parse_formula(formula).random
    assert (term.intercept, term.terms, term.grouping, term.correlated) == (intercept, terms, ("g",), True)


def test_double_bar_splits_into_uncorrelated_terms():
    # lme4's expandDoubleVerts: (1 + x || g) is (1 | g) + (0 + x | g)
    terms = parse_formula("y ~ x + (1 + x || g)").random
    assert [str(t) for t in terms] == ["(1 | g)", "(0 + x | g)"]


def test_crossed_terms():
    terms = parse_formula("y ~ 1 + (1 | a) + (1 | b)").random
    assert [t.group_name for t in terms] == ["a", "b"]


def test_nested_slash_expands_as_lme4():
    # lme4: (1 | a/b) is (1 | a) + (1 | b:a)
    terms = parse_formula("y ~ 1 + (1 | a/b)").random
    assert [t.group_name for t in terms] == ["a", "b:a"]


def test_interaction_grouping_factor():
    (term,) = parse_formula("y ~ 1 + (1 | a:b)").random
    assert term.grouping == ("a", "b") and term.group_name == "a:b"


def test_columns_lists_every_variable_once():
    f = parse_formula("y ~ x * f + (1 + x | g) + (1 | g:h)")
    assert f.columns == ["y", "x", "f", "g", "h"]


def test_backticks_quote_a_column_name():
    assert parse_formula("y ~ `my x` + (1 | g)").fixed_terms == (("my x",),)


@pytest.mark.parametrize("formula, culprit, words", [
    ("y ~ cos(x) + (1 | g)", "cos()", "the functions that can are"),
    ("y ~ C(s) + (1 | g)", "C()", "patsy"),
    ("y ~ I(cos(x)) + (1 | g)", "cos()", "inside arithmetic"),
    ("y ~ x + (1 | factor(g))", "factor(g)", "must be a column name"),
    ("y ~ poly(x) + (1 | g)", "poly()", "needs degree"),
    ("y ~ poly(x, 1.5) + (1 | g)", "poly()", "whole-number degree"),
    ("y ~ scale(x, y) + (1 | g)", "not y", "center = TRUE or FALSE"),
    ("y ~ scale(x, foo = 1) + (1 | g)", "scale()", "takes the arguments x, center, scale"),
    ("y ~ log(x, 2) + (1 | g)", "log()", "takes the arguments x"),
    ("y ~ x * offset(x) + (1 | g)", "offset(x)", "on its own"),
    ("y ~ x - offset(x) + (1 | g)", "offset(x)", "cannot be subtracted"),
])
def test_unsupported_calls_are_refused_naming_them(formula, culprit, words):
    with pytest.raises(FormulaError, match=words) as info:
        parse_formula(formula)
    assert culprit in str(info.value)


@pytest.mark.parametrize("formula, words", [
    ("y ~ x +", "ends too early"),
    ("y ~ x + (1 | )", "no grouping factor"),
    ("y ~ x + (1 | g", "missing ')'"),
    ("y ~ x + 1 | g", "must be in parentheses"),
    ("y x", "exactly one '~'"),
    ("~ x", "no response"),
    ("y ~ 2 + x", "number 2"),
    ("y ~ x * (1 | g)", "add it with '+'"),
    ("y ~ x $ z", "'$'"),
    ("y ~ .", "'.'"),
    ("y ~ x + y + (1 | g)", "response 'y' also appears"),
    ("y ~ x + (0 | g)", "no effects"),
])
def test_malformed_formulas_name_the_problem(formula, words):
    with pytest.raises(FormulaError) as info:
        parse_formula(formula)
    assert words in str(info.value)


def test_formula_must_be_text():
    with pytest.raises(TypeError, match="string"):
        parse_formula(None)


# ---------------------------------------------------------- column names
def test_factor_gets_treatment_contrasts_named_by_level(small):
    # R: colnames(model.matrix(~ x * f)) with levels(f) = c("b", "a")
    assert _names("y ~ x * f + (1 | g)", small) == ["(Intercept)", "x", "fa", "x:fa"]


def test_reference_level_is_the_first_category(small):
    X, coding = fixed_design(parse_formula("y ~ f + (1 | g)"), small)
    assert coding.levels["f"] == ["b", "a"]
    np.testing.assert_array_equal(X[:, 1], (small["f"] == "a").astype(float))


def test_string_column_levels_are_sorted(small):
    assert _names("y ~ s + (1 | g)", small) == ["(Intercept)", "sq", "sr"]


def test_boolean_column_is_a_factor_named_as_r_logicals(small):
    assert _names("y ~ t + (1 | g)", small) == ["(Intercept)", "tTRUE"]


def test_no_intercept_codes_the_first_factor_fully(small):
    # R: model.matrix(~ 0 + f + s)
    assert _names("y ~ 0 + f + s + (1 | g)", small) == ["fb", "fa", "sq", "sr"]


def test_interaction_without_main_effect_gets_indicators(small):
    # R: model.matrix(~ x:f) has (Intercept), x:fb, x:fa
    assert _names("y ~ x:f + (1 | g)", small) == ["(Intercept)", "x:fb", "x:fa"]


def test_slope_by_factor_with_its_main_slope_uses_contrasts(small):
    # R: model.matrix(~ x + x:f) has (Intercept), x, x:fa
    assert _names("y ~ x + x:f + (1 | g)", small) == ["(Intercept)", "x", "x:fa"]


def test_two_factor_interaction_first_factor_varies_fastest(small):
    assert _names("y ~ f * s + (1 | g)", small) == [
        "(Intercept)", "fa", "sq", "sr", "fa:sq", "fa:sr"]


def test_random_term_columns_are_named_as_lme4(small):
    (block,) = random_design(parse_formula("y ~ x + (0 + f | g)"), small)
    assert block.coding.names == ["fb", "fa"]
    (block,) = random_design(parse_formula("y ~ x + (x | g)"), small)
    assert block.coding.names == ["(Intercept)", "x"]


# ------------------------------------------------------------ group codes
def test_group_codes_follow_sorted_labels(small):
    codes, labels = group_codes(small, ("g",))
    assert labels == ["g1", "g2", "g3", "g4"]
    np.testing.assert_array_equal(codes, [0, 0, 1, 1, 2, 2, 3, 3])


def test_combined_grouping_labels_join_levels_with_colon(small):
    codes, labels = group_codes(small, ("h", "g"))
    assert labels[:2] == ["h1:g1", "h1:g2"] and len(labels) == 8
    assert labels[codes[1]] == "h2:g1"


def test_numeric_grouping_labels_print_as_integers():
    _, labels = group_codes(pd.DataFrame({"g": [2.0, 10.0, 2.0]}), ("g",))
    assert labels == ["2", "10"]


def test_model_frame_keeps_only_the_used_columns(small):
    frame = model_frame(parse_formula("y ~ x + (1 | g)"), small)
    assert list(frame.data.columns) == ["y", "x", "g"] and frame.messages == []


# ------------------------------------------------------------ R's printed names
_ARITH = st.recursive(
    st.one_of(st.sampled_from(["x", "z", "my.var"]).map(lambda n: ("col", n)),
              st.sampled_from([0.5, 1.0, 2.0, 10.0, 1e5, 0.001]).map(lambda v: ("num", v))),
    lambda inner: st.one_of(
        st.tuples(st.just("bin"), st.sampled_from(["+", "-", "*", "/", "^"]), inner, inner),
        st.tuples(st.just("paren"), inner),
        st.tuples(st.just("call"), st.sampled_from(["log", "exp", "sqrt"]), st.lists(inner, min_size=1, max_size=1)),
    ),
    max_leaves=6,
)


@settings(max_examples=150, deadline=None)
@given(_ARITH)
def test_printed_names_read_back_to_themselves(node):
    # R: deparse(quote(I(...))) is stable when parsed and printed again
    label = f"I({deparse(node)})"
    parsed = parse_formula(f"y ~ {label}")
    assert parsed.variables == (label,)
    assert parse_formula(f"y ~ {parsed.variables[0]}").variables == (label,)


@pytest.mark.parametrize("written, printed", [
    ("I(x^2)", "I(x^2)"), ("I(x*2+1)", "I(x * 2 + 1)"), ("I(x/2-1)", "I(x/2 - 1)"),
    ("I((x-1)^2)", "I((x - 1)^2)"), ("I(-x)", "I(-x)"), ("I(2.50*x)", "I(2.5 * x)"),
    ("I(1e3*x)", "I(1000 * x)"), ("I(100000*x)", "I(1e+05 * x)"), ("I(1e-3*x)", "I(0.001 * x)"),
    ("log(x+1)", "log(x + 1)"), ("poly(x,2)", "poly(x, 2)"), ("scale( x )", "scale(x)"),
    ("poly(x, 2, raw=TRUE)", "poly(x, 2, raw = TRUE)"),
])
def test_names_are_printed_as_r_deparses_them(written, printed):
    # R 4.2: deparse(quote(<written>))
    assert parse_formula(f"y ~ {written}").variables == (printed,)
