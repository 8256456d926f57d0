"""Power by simulation and by formula (mlmcourse.power).

Reference numbers: tests/reference/power.json, written by make_reference_power.R (R's pt/pf for the
formulas, lme4::lmer for a simulation run by lme4 itself).
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlmcourse import power

REFERENCE = json.loads((Path(__file__).parent / "reference" / "power.json").read_text())


def within_mc_error(simulated: float, expected: float, n_reps: int, z: float = 3.0) -> bool:
    """|simulated - expected| within z Monte-Carlo standard errors of a proportion."""
    return abs(simulated - expected) <= z * np.sqrt(expected * (1 - expected) / n_reps)


# ----------------------------------------------------------------- formulas against R
@pytest.mark.parametrize("row", REFERENCE["crt_analytic"], ids=lambda r: f"J{r['J']}-n{r['n']}-rho{r['rho']}")
def test_crt_formula_matches_raudenbush_in_r(row):
    # R: pt(crit, J - 2, ncp = delta / sqrt(4 (rho + (1 - rho) / n) / J)), Raudenbush (1997)
    table = power.analytic_power("cluster_randomised", n_groups=row["J"], n_per_group=row["n"], icc=row["rho"],
                                 effect=row["delta"], test="t")
    assert table["power"].iloc[0] == pytest.approx(row["power"], abs=1e-9)


@pytest.mark.parametrize("row", REFERENCE["anova_f_analytic"], ids=lambda r: f"J{r['J']}-n{r['n']}-rho{r['rho']}")
def test_variance_f_formula_matches_r(row):
    # R: pf(qf(0.95, J - 1, J (n - 1)) / (1 + n rho / (1 - rho)), J - 1, J (n - 1), lower.tail = FALSE)
    table = power.analytic_power("variance", n_groups=row["J"], n_per_group=row["n"], icc=row["rho"], test="f")
    assert table["power"].iloc[0] == pytest.approx(row["power"], abs=1e-9)


def test_normal_power_is_the_design_effect_approximation():
    # Kish's design effect: Var = 4 * deff / N with deff = 1 + (n - 1) rho; normal reference (Stata power twomeans, cluster)
    from scipy import stats

    from mlmcourse.variance import design_effect

    table = power.analytic_power("cluster_randomised", n_groups=[6, 40], n_per_group=25, icc=0.15, effect=0.5)
    se = np.sqrt(4 * design_effect(0.15, 25) / (np.array([6, 40]) * 25))
    expected = stats.norm.sf(1.959963984540054 - 0.5 / se) + stats.norm.cdf(-1.959963984540054 - 0.5 / se)
    assert np.allclose(table["power_normal"], expected, rtol=1e-12)
    assert table["power_normal"].iloc[0] > table["power"].iloc[0] + 0.05  # optimistic with 6 groups


def test_level1_formula_is_the_within_estimator_variance():
    # random intercept only, x centred within groups with variance 1: var = sigma^2 / N (Snijders & Bosker 2012)
    table = power.analytic_power("level1", n_groups=30, n_per_group=10, icc=0.2, effect=0.15, test="z")
    se = np.sqrt(0.8 / 300)
    from scipy import stats
    ncp, crit = 0.15 / se, stats.norm.isf(0.025)
    expected = stats.nct.sf(crit, 300 - 30 - 1, ncp) + stats.nct.cdf(-crit, 300 - 30 - 1, ncp)
    assert table["power"].iloc[0] == pytest.approx(expected, rel=1e-12)


# ----------------------------------------------------------------- simulation against formulas
CASES = [
    ("cluster_randomised", dict(n_groups=16, n_per_group=10, icc=0.15, effect=0.6, test="t")),
    ("level1", dict(n_groups=20, n_per_group=8, icc=0.2, effect=0.15, test="z")),
    ("cross_level", dict(n_groups=30, n_per_group=10, icc=0.1, effect=0.12, slope_variance=0.04, test="t")),
    ("variance", dict(n_groups=20, n_per_group=5, icc=0.08, test="f")),
]


@pytest.mark.parametrize(("design", "arguments"), CASES, ids=[c[0] for c in CASES])
def test_simulation_agrees_with_formula_for_the_same_test(design, arguments):
    table = power.power_simulation(design, n_reps=300, seed=11, progress=False, **arguments)
    row = table.iloc[0]
    assert 0.15 < row["power_analytic"] < 0.95  # a design where the comparison has teeth
    assert within_mc_error(row["power"], row["power_analytic"], 300), (row["power"], row["power_analytic"])


def test_unbalanced_groups_lose_power_in_formula_and_simulation():
    arguments = dict(n_groups=20, n_per_group=10, icc=0.05, effect=0.5, test="t")
    table = power.power_simulation("cluster_randomised", size_cv=[0.0, 1.0], n_reps=300, seed=5, progress=False,
                                   **arguments)
    balanced, unbalanced = table["power_analytic"]
    assert unbalanced < balanced - 0.02
    assert within_mc_error(table["power"].iloc[1], unbalanced, 300)


def test_explicit_sizes_and_attrition_agree_with_formula():
    sizes = (4, 8, 12, 16, 20, 24) * 3
    table = power.power_simulation("cluster_randomised", n_per_group=sizes, attrition=0.25, icc=0.1, effect=0.7,
                                   n_reps=300, seed=8, progress=False)
    row = table.iloc[0]
    assert row["n_groups"] == 18 and row["n_total"] == sum(round(n * 0.75) for n in sizes)
    assert 0.15 < row["power_analytic"] < 0.95
    assert within_mc_error(row["power"], row["power_analytic"], 300), (row["power"], row["power_analytic"])


def test_simulation_agrees_with_lme4_simulation():
    # lme4: lmer(y ~ treatment + (1 | group)), Wald t with J - 2 df, 1000 replicates in R
    for ref in REFERENCE["lme4_simulation"]:
        table = power.power_simulation("cluster_randomised", n_groups=ref["J"], n_per_group=ref["n"], icc=ref["rho"],
                                       effect=ref["delta"], test="t", n_reps=300, seed=3, progress=False)
        ours, theirs = table["power"].iloc[0], ref["power"]
        combined = np.sqrt(theirs * (1 - theirs) * (1 / 300 + 1 / ref["reps"]))
        assert abs(ours - theirs) <= 3 * combined, (ours, theirs)


def test_type_one_error_of_the_boundary_lrt_is_at_most_alpha():
    table = power.power_simulation("variance", n_groups=20, n_per_group=10, icc=0.0, test="lrt", n_reps=300,
                                   seed=2, progress=False)
    # the chi-bar-square reference is exact asymptotically; it must not be liberal beyond MC error
    assert table["power"].iloc[0] <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 300)


# ----------------------------------------------------------------- output and reproducibility
def test_output_columns_and_one_row_per_design_point():
    table = power.power_simulation("cluster_randomised", n_groups=[8, 12], n_per_group=[5, 10], icc=0.1,
                                   effect=0.5, n_reps=5, seed=1, progress=False)
    assert list(table.columns) == power.POWER_COLUMNS
    assert len(table) == 4 and (table["n_reps"] == 5).all()
    assert (table["conf_low"] <= table["power"]).all() and (table["power"] <= table["conf_high"]).all()
    assert table["method"].unique().tolist() == ["Wald t, J-2 df"]
    assert table["n_total"].tolist() == [40, 80, 60, 120]


def test_same_seed_same_replicates_other_seed_different():
    arguments = dict(n_groups=8, n_per_group=5, icc=0.1, effect=0.3, n_reps=6, progress=False)
    a = power.power_replicates("cluster_randomised", seed=4, **arguments)
    pd.testing.assert_frame_equal(a, power.power_replicates("cluster_randomised", seed=4, **arguments))
    assert not a["estimate"].equals(power.power_replicates("cluster_randomised", seed=5, **arguments)["estimate"])


def test_results_do_not_depend_on_parallel_workers():
    arguments = dict(n_groups=8, n_per_group=5, icc=0.1, effect=0.3, n_reps=6, seed=4, progress=False)
    serial = power.power_replicates("level1", **arguments)
    threaded = power.power_replicates("level1", n_jobs=2, backend="threading", **arguments)
    pd.testing.assert_frame_equal(serial, threaded)


def test_clopper_pearson_interval_of_all_and_none():
    assert power._clopper_pearson(0, 10) == (0.0, pytest.approx(0.3084971078))  # R: binom.test(0, 10)$conf.int
    assert power._clopper_pearson(10, 10) == (pytest.approx(0.6915028922), 1.0)


# ----------------------------------------------------------------- budgets
def test_optimal_group_size_minimizes_the_variance_under_a_budget():
    icc, c2, c1, budget = 0.1, 300.0, 10.0, 30000.0
    sizes = np.linspace(2, 80, 20000)
    groups = budget / (c2 + c1 * sizes)
    variance = 4 * (icc + (1 - icc) / sizes) / groups
    assert power.optimal_group_size(icc, c2, c1) == pytest.approx(sizes[np.argmin(variance)], abs=0.01)


def test_budget_designs_stay_within_budget_with_even_group_counts():
    table = power.budget_designs(25000, cost_group=250, cost_person=12, n_per_group=[5, 10, 20, 600])
    assert list(table.columns) == ["n_per_group", "n_groups", "cost"]
    assert (table["cost"] <= 25000).all() and (table["n_groups"] % 2 == 0).all()
    assert 600 not in table["n_per_group"].tolist()  # buys fewer than 4 groups


# ----------------------------------------------------------------- bad input
@pytest.mark.parametrize(("arguments", "message"), [
    (dict(design="cluster", icc=0.1), "design 'cluster' is not one of"),
    (dict(icc=1.0), "icc must be in"),
    (dict(icc=0.0), "icc must be in"),
    (dict(n_groups=3), "n_groups must be a whole number of at least 4"),
    (dict(n_per_group=1), "n_per_group must be a whole number of at least 2"),
    (dict(n_per_group=(5, 5, 5)), "n_per_group gives 3 group sizes but n_groups is 10"),
    (dict(attrition=1.0), "attrition must be in"),
    (dict(slope_variance=-0.1), "slope_variance must be in"),
    (dict(test="lrt"), "test 'lrt' does not apply to design 'cluster_randomised'"),
    (dict(alpha=0), "alpha must be in"),
    (dict(n_groups=[]), "n_groups is an empty list"),
    (dict(attrition=0.95, n_per_group=2), "too few to fit a mixed model"),
])
def test_bad_input_names_the_culprit(arguments, message):
    base = dict(design="cluster_randomised", n_groups=10, n_per_group=10, icc=0.1, effect=0.3)
    base.update(arguments)
    design = base.pop("design")
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        power.analytic_power(design, **base)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        power.power_simulation(design, n_reps=2, seed=1, progress=False, **base)


def test_non_numeric_effect_is_a_type_error():
    with pytest.raises(TypeError, match="effect must be a number"):
        power.analytic_power("level1", n_groups=10, n_per_group=10, icc=0.1, effect="large")


def test_summarise_refuses_other_tables():
    with pytest.raises(ValueError, match="not power_replicates"):
        power.summarise_power(pd.DataFrame({"rep": [0]}))


# ----------------------------------------------------------------- figures
@pytest.fixture
def fresh_axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def test_power_curves_draw_the_formula_values(fresh_axes):
    from mlmcourse import plots

    table = power.analytic_power("cluster_randomised", n_groups=[10, 20, 40], n_per_group=[5, 20], icc=0.1,
                                 effect=0.4)
    plots.power_curves(table, ax=fresh_axes)
    small = fresh_axes.get_lines()[0]
    assert small.get_xdata().tolist() == [10, 20, 40]
    assert np.allclose(small.get_ydata(), table.loc[table["n_per_group"] == 5, "power"])
    assert [t.get_text() for t in fresh_axes.get_legend().get_texts()] == ["5", "20"]


def test_power_curves_show_simulation_intervals(fresh_axes):
    from mlmcourse import plots

    table = power.power_simulation("cluster_randomised", n_groups=[8, 12], n_per_group=5, icc=0.1, effect=0.5,
                                   n_reps=10, seed=1, progress=False)
    plots.power_curves(table, ax=fresh_axes)
    dashed = [line for line in fresh_axes.get_lines() if line.get_linestyle() == "--"]
    assert any(np.allclose(line.get_ydata(), table["power_analytic"]) for line in dashed)
    assert len(fresh_axes.collections) == 1  # one set of error bars


def test_cost_tradeoff_circles_the_best_design(fresh_axes):
    from mlmcourse import plots

    table = pd.DataFrame({"n_per_group": [20, 5, 10], "power": [0.65, 0.6, 0.7], "n_groups": [30, 80, 50]})
    plots.cost_tradeoff(table, ax=fresh_axes)
    circle = fresh_axes.get_lines()[1]
    assert circle.get_xdata().tolist() == [10] and circle.get_ydata().tolist() == [0.7]


def test_power_curves_name_a_missing_column(fresh_axes):
    from mlmcourse import plots

    with pytest.raises(KeyError, match="column 'n_per_group' is not in the data"):
        plots.power_curves(pd.DataFrame({"n_groups": [10], "power": [0.5]}), ax=fresh_axes)
