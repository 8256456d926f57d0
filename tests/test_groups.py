"""Group means, within deviations, per-group tables and variable levels."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mlmcourse
from mlmcourse import groups


@pytest.fixture(scope="module")
def hs():
    return mlmcourse.load("hsb40")


def test_group_mean_matches_groupby(hs):
    means = groups.group_mean(hs, "SES", "School")
    expected = hs.groupby("School")["SES"].mean()
    np.testing.assert_allclose(means.to_numpy(), hs["School"].map(expected).to_numpy())
    assert means.name == "SES_mean"


def test_within_deviation_sums_to_zero_by_group(hs):
    dev = groups.within_deviation(hs, "SES", "School")
    np.testing.assert_allclose(dev.groupby(hs["School"]).sum(), 0, atol=1e-10)


def test_add_group_means_keeps_original(hs):
    out = groups.add_group_means(hs, ["SES", "MathAch"], "School")
    assert {"SES_mean", "SES_within", "MathAch_mean", "MathAch_within"} <= set(out.columns)
    assert "SES_mean" not in hs.columns
    np.testing.assert_allclose(out["SES_mean"] + out["SES_within"], out["SES"])


def test_variable_levels_hsb40(hs):
    levels = groups.variable_levels(hs, "School").set_index("variable")
    assert levels.loc["SES", "level"] == 1 and levels.loc["SES", "groups_varying"] == 40
    assert levels.loc["Sector", "level"] == 2 and levels.loc["Sector", "groups_varying"] == 0


def test_group_table_one_row_per_school(hs):
    table = groups.group_table(hs, "School")
    assert len(table) == 40 and table["n"].sum() == 1977
    assert {"Sector", "MEANSES", "SES_mean", "MathAch_mean"} <= set(table.columns)
    assert table.loc["8854", "n"] == 32
    # school 8854's mean math achievement (BLUE) in the SCS course text: 4.240
    assert round(table.loc["8854", "MathAch_mean"], 3) == 4.240


def test_group_table_other_statistic(hs):
    table = groups.group_table(hs, "School", level1="MathAch", stat="std")
    expected = hs.groupby("School")["MathAch"].std()
    np.testing.assert_allclose(table["MathAch_std"], expected.loc[table.index])


def test_errors_name_the_column(hs):
    with pytest.raises(KeyError, match="'sess'"):
        groups.group_mean(hs, "sess", "School")
    with pytest.raises(KeyError, match="'school'"):
        groups.group_mean(hs, "SES", "school")
    with pytest.raises(TypeError, match="'Sector' is not numeric"):
        groups.group_mean(hs, "Sector", "School")
    with pytest.raises(TypeError, match="DataFrame"):
        groups.group_mean(hs.to_numpy(), "SES", "School")


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcd"), st.floats(-100, 100)), min_size=1, max_size=40))
def test_group_mean_is_invariant_to_row_order(rows):
    data = pd.DataFrame(rows, columns=["g", "x"])
    shuffled = data.sample(frac=1, random_state=1)
    original = groups.group_mean(data, "x", "g")
    again = groups.group_mean(shuffled, "x", "g").loc[data.index]
    np.testing.assert_allclose(original, again, rtol=1e-9, atol=1e-9)
