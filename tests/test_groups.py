"""Group means, within deviations, per-group tables and variable levels."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlmcourse import groups


def test_center_within_adds_group_mean_and_deviation(hs):
    # Stata: egen SES_mean = mean(SES), by(School); gen SES_within = SES - SES_mean
    out = groups.center(hs, "SES", "School")
    expected = hs["School"].map(hs.groupby("School")["SES"].mean())
    np.testing.assert_allclose(out["SES_mean"].to_numpy(), expected.to_numpy())
    np.testing.assert_allclose(out["SES_within"], hs["SES"] - expected)
    assert list(out.columns) == [*hs.columns, "SES_mean", "SES_within"]


def test_center_within_deviations_sum_to_zero_by_group(hs):
    out = groups.center(hs, ["SES", "MathAch"], "School")
    np.testing.assert_allclose(out.groupby("School")[["SES_within", "MathAch_within"]].sum(), 0, atol=1e-10)


def test_center_grand_subtracts_the_overall_mean(hs):
    out = groups.center(hs, "SES", "School", how="grand")
    np.testing.assert_allclose(out["SES_grand"], hs["SES"] - hs["SES"].mean())
    assert "SES_mean" in out.columns and "SES_within" not in out.columns
    alone = groups.center(hs, "SES", None, how="grand")
    assert list(alone.columns) == [*hs.columns, "SES_grand"]


def test_center_leaves_the_input_unchanged(hs):
    before = hs.copy()
    groups.center(hs, ["SES", "MathAch"], "School")
    pd.testing.assert_frame_equal(hs, before)


def test_center_keeps_missing_values_missing():
    data = pd.DataFrame({"g": ["a", "a", "b", "b"], "x": [1.0, np.nan, 3.0, 5.0]})
    out = groups.center(data, "x", "g")
    assert out["x_mean"].tolist() == [1.0, 1.0, 4.0, 4.0]
    assert np.isnan(out.loc[1, "x_within"]) and out.loc[3, "x_within"] == 1.0
    grand = groups.center(data, "x", "g", how="grand")
    np.testing.assert_allclose(grand["x_grand"].dropna(), [-2.0, 0.0, 2.0])


def test_variable_levels_hsb40(hs):
    levels = groups.variable_levels(hs, "School").set_index("variable")
    assert levels.loc["SES", "varies_at"] == 1 and levels.loc["SES", "groups_varying"] == 40
    assert levels.loc["Sector", "varies_at"] == 2 and levels.loc["Sector", "groups_varying"] == 0


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


def test_errors_name_the_culprit(hs):
    with pytest.raises(KeyError, match="'sess'"):
        groups.center(hs, "sess", "School")
    with pytest.raises(KeyError, match="'school'"):
        groups.center(hs, "SES", "school")
    with pytest.raises(TypeError, match="'Sector' is not numeric"):
        groups.center(hs, "Sector", "School")
    with pytest.raises(TypeError, match="DataFrame"):
        groups.center(hs.to_numpy(), "SES", "School")
    with pytest.raises(ValueError, match="'group-mean'"):
        groups.center(hs, "SES", "School", how="group-mean")
    with pytest.raises(ValueError, match="needs a grouping column"):
        groups.center(hs, "SES", None)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcd"), st.floats(-100, 100)), min_size=1, max_size=40))
def test_center_is_invariant_to_row_order(rows):
    data = pd.DataFrame(rows, columns=["g", "x"])
    shuffled = data.sample(frac=1, random_state=1)
    original = groups.center(data, "x", "g")
    again = groups.center(shuffled, "x", "g").loc[data.index]
    np.testing.assert_allclose(original[["x_mean", "x_within"]], again[["x_mean", "x_within"]], rtol=1e-9, atol=1e-9)
