"""Cluster-robust standard errors (mlmcourse.robust) against R's clubSandwich.

Reference numbers: tests/reference/robust.json, written by
tests/reference/make_reference_robust.R. Each case is
``clubSandwich::coef_test(lm(formula, data), vcov = "CR2", cluster = ~ School, test = "Satterthwaite")``
and the same with ``vcov = "CR1S", test = "naive-t"`` (Stata's ``vce(cluster)``).
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mlmcourse
from mlmcourse.robust import COEF_COLUMNS, cluster_robust

REFERENCE = json.loads((Path(__file__).parent / "reference" / "robust.json").read_text())
CASES = REFERENCE["cases"]
PYTHON_TYPE = {"CR2": "CR2", "CR1S": "CR1"}


@pytest.fixture(scope="module")
def frames():
    hs = mlmcourse.load("hsb40")
    ten = CASES["hsb10_ses_sector"]["schools"]
    return {"hsb40": hs, "hsb10": hs[hs["School"].isin(ten)].reset_index(drop=True)}


@pytest.mark.parametrize("case_id", sorted(CASES))
@pytest.mark.parametrize("r_type", ["CR2", "CR1S"])
def test_matches_clubsandwich(frames, case_id, r_type):
    # clubSandwich: coef_test(lm(formula, data), vcov = r_type, cluster = ~ School, test = ...)
    case, ref = CASES[case_id], CASES[case_id]["results"][r_type]
    fit = cluster_robust(case["formula"], frames[case["data"]], case["group"], type=PYTHON_TYPE[r_type])
    table = fit.coef_table().set_index("term")
    assert list(table.index) == ref["term"]
    for column in ["estimate", "std_error", "statistic", "df", "conf_low", "conf_high"]:
        np.testing.assert_allclose(table[column], ref[column], rtol=1e-7, err_msg=column)
    np.testing.assert_allclose(table["p_value"], ref["p_value"], rtol=1e-6)
    assert fit.nobs == case["nobs"] and fit.ngroups == {"School": case["ngroups"]}


def test_cr1_agrees_with_the_pooled_estimator(frames):
    # Stata's vce(cluster) = estimators.pooled(..., cluster=); R: vcovCL(fit, ~ School, type = "HC1")
    hs = frames["hsb40"]
    ours = cluster_robust("MathAch ~ Sector", hs, "School", type="CR1").std_error
    theirs = mlmcourse.estimators.pooled("MathAch ~ Sector", hs, cluster="School").std_error
    np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), rtol=1e-9)


def test_coef_table_has_the_vocabulary_columns(frames):
    for kind in ["CR1", "CR2"]:
        table = cluster_robust("MathAch ~ SES", frames["hsb10"], "School", type=kind).coef_table()
        assert list(table.columns) == COEF_COLUMNS


def test_cr2_df_is_below_the_number_of_clusters_for_a_level_2_term(frames):
    fit = cluster_robust("MathAch ~ SES + Sector", frames["hsb10"], "School")
    assert fit.df["SectorPublic"] < 9


@settings(max_examples=10, deadline=None)
@given(st.randoms(use_true_random=False))
def test_row_order_does_not_matter(frames, rnd):
    data = frames["hsb10"]
    order = list(range(len(data)))
    rnd.shuffle(order)
    a = cluster_robust("MathAch ~ SES + Sector", data, "School").coef_table()
    b = cluster_robust("MathAch ~ SES + Sector", data.iloc[order], "School").coef_table()
    pd.testing.assert_frame_equal(a, b, rtol=1e-8)


def test_unknown_type_is_named(frames):
    with pytest.raises(ValueError, match="'CR3'"):
        cluster_robust("MathAch ~ SES", frames["hsb10"], "School", type="CR3")


def test_missing_group_column_is_named(frames):
    with pytest.raises(KeyError, match="'Schol'"):
        cluster_robust("MathAch ~ SES", frames["hsb10"], "Schol")


def test_one_cluster_is_refused(frames):
    one = frames["hsb10"].query("School == School.iloc[0]")
    with pytest.raises(ValueError, match="at least two groups"):
        cluster_robust("MathAch ~ SES", one, "School")


def test_collinear_terms_are_dropped_and_named_as_in_every_estimator(frames):
    data = frames["hsb10"].assign(SES2=lambda d: 2 * d["SES"])
    with pytest.warns(UserWarning, match="SES2"):
        fit = cluster_robust("MathAch ~ SES + SES2", data, "School")
    assert list(fit.coef_table()["term"]) == ["(Intercept)", "SES"]
