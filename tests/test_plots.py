"""Tests of mlmcourse.plots: the artists of each figure carry the right numbers.

Reference values are computed independently here (numpy / statsmodels OLS on
the same data, or the fit's own tidy accessors), never by the plotting code.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib as mpl  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import statsmodels.formula.api as smf  # noqa: E402
from matplotlib.text import Annotation  # noqa: E402
from scipy import stats  # noqa: E402

import mlmcourse  # noqa: E402
from mlmcourse import plots  # noqa: E402
from mlmcourse.lmm import lmer  # noqa: E402

# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def close_figures(monkeypatch):
    """No figure may be shown; every figure is closed after the test."""

    def refuse_show(*args, **kwargs):
        raise AssertionError("a plotting function called plt.show()")

    monkeypatch.setattr(plt, "show", refuse_show)
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def fit_null(hs):
    # lme4: lmer(MathAch ~ 1 + (1 | School), hs)
    return lmer("MathAch ~ 1 + (1 | School)", hs)


@pytest.fixture(scope="module")
def fit_ri(hs):
    # lme4: lmer(MathAch ~ SES + (1 | School), hs)
    return lmer("MathAch ~ SES + (1 | School)", hs)


@pytest.fixture(scope="module")
def fit_rs(hs):
    # lme4: lmer(MathAch ~ SES + (1 + SES | School), hs)
    return lmer("MathAch ~ SES + (1 + SES | School)", hs)


@pytest.fixture(scope="module")
def fit_sector(hs):
    # lme4: lmer(MathAch ~ SES * Sector + (1 + SES | School), hs)
    return lmer("MathAch ~ SES * Sector + (1 + SES | School)", hs)


@pytest.fixture(scope="module")
def fit_sleep(sleep):
    # lme4: lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
    return lmer("Reaction ~ Days + (Days | Subject)", sleep)


@pytest.fixture(scope="module")
def fit_crossed():
    # lme4: lmer(attain ~ 1 + (1 | primary) + (1 | second), scotssec)
    return lmer("attain ~ 1 + (1 | primary) + (1 | second)", mlmcourse.load("scotssec"))


@pytest.fixture(scope="module")
def school_ols(hs):
    """Per-school OLS of MathAch on SES by statsmodels: estimates, covariance, n."""
    rows = {}
    for school, rows_j in hs.groupby("School", observed=True):
        ols = smf.ols("MathAch ~ SES", rows_j).fit()
        rows[str(school)] = {
            "intercept": ols.params["Intercept"],
            "slope": ols.params["SES"],
            "cov": ols.cov_params().to_numpy(),
            "xtx_inv": np.linalg.inv(ols.model.exog.T @ ols.model.exog),
            "n": len(rows_j),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def line_coefficients(line):
    """(intercept, slope) of a straight Line2D."""
    (x0, y0), (x1, y1) = line.get_xydata()[[0, -1]]
    slope = (y1 - y0) / (x1 - x0)
    return y0 - slope * x0, slope


def arrows(ax):
    """(tail, head) pairs of the arrows drawn with ax.annotate."""
    return [(np.asarray(a.xyann, float), np.asarray(a.xy, float)) for a in ax.texts if isinstance(a, Annotation)
            and a.arrow_patch is not None]


def ellipse_matrix(patch, level=0.95):
    """Covariance matrix that an Ellipse patch draws at `level` (inverse of dispersion_ellipse)."""
    r2 = stats.chi2.ppf(level, df=2)
    angle = np.radians(patch.angle)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    axes = np.diag([(patch.width / 2) ** 2, (patch.height / 2) ** 2]) / r2
    return rotation @ axes @ rotation.T


# ----------------------------------------------------------------------------- theme


def test_set_theme_talk_is_larger_and_colour_blind_safe():
    with mpl.rc_context():
        plots.set_theme("notebook")
        notebook_font = mpl.rcParams["font.size"]
        plots.set_theme("talk")
        assert mpl.rcParams["font.size"] > notebook_font
        first = mpl.colors.to_rgb(mpl.rcParams["axes.prop_cycle"].by_key()["color"][0])
        assert np.allclose(first, plots.PALETTE[0])
    assert [tuple(c) for c in plots.PALETTE] == [tuple(c) for c in __import__("seaborn").color_palette("colorblind")]


def test_set_theme_names_a_bad_context():
    with pytest.raises(ValueError, match="context 'slides'"):
        plots.set_theme("slides")


# ----------------------------------------------------------------------------- group_lines


def test_group_lines_one_panel_and_ols_line_per_group(hs, school_ols):
    fig = plots.group_lines(hs, x="SES", y="MathAch", group="School")
    assert len(fig.axes) == 40
    for ax in fig.axes:
        school = ax.get_title()
        (line,) = ax.get_lines()
        assert np.allclose(line_coefficients(line), school_ols.loc[school, ["intercept", "slope"]].to_numpy(float))
        assert len(ax.collections[0].get_offsets()) == school_ols.loc[school, "n"]
    assert sorted(ax.get_title() for ax in fig.axes) == sorted(school_ols.index)


def test_group_lines_order_by_sector_then_mean_ses(hs):
    fig = plots.group_lines(hs, x="SES", y="MathAch", group="School", order_by=["Sector", "SES"])
    order = [ax.get_title() for ax in fig.axes]
    schools = hs.groupby("School").agg(sector=("Sector", "first"), ses=("SES", "mean")).loc[order]
    assert list(schools["sector"]) == sorted(schools["sector"], key=["Catholic", "Public"].index)
    for _, block in schools.groupby("sector", observed=True):
        assert block["ses"].is_monotonic_increasing


def test_group_lines_hue_draws_one_line_per_level(hs):
    chosen = ["1317", "2626"]
    fig = plots.group_lines(hs, x="SES", y="MathAch", group="School", hue="Sex", groups=chosen)
    assert [ax.get_title() for ax in fig.axes] == chosen
    rows = hs[hs["School"] == "2626"]
    expected = {sex: np.polyfit(d["SES"], d["MathAch"], 1)[::-1] for sex, d in rows.groupby("Sex", observed=True)}
    drawn = {line.get_label(): line_coefficients(line) for line in fig.axes[1].get_lines()}
    assert drawn.keys() == expected.keys()
    for sex in expected:
        assert np.allclose(drawn[sex], expected[sex])
    (legend,) = fig.legends
    assert legend.get_title().get_text() == "Sex"
    assert [t.get_text() for t in legend.get_texts()] == ["Female", "Male"]


def test_group_lines_names_unknown_column_and_group(hs):
    with pytest.raises(KeyError, match="column 'sess' is not in the data"):
        plots.group_lines(hs, x="sess", y="MathAch", group="School")
    with pytest.raises(ValueError, match="group '9999' is not in column 'School'"):
        plots.group_lines(hs, x="SES", y="MathAch", group="School", groups=["1317", "9999"])


def test_group_lines_rejects_text_column(hs):
    with pytest.raises(TypeError, match="column 'Sector' is not numeric"):
        plots.group_lines(hs, x="Sector", y="MathAch", group="School")


# ----------------------------------------------------------------------------- within_between


def test_within_between_slopes_match_pooled_fixed_effects_and_between_regressions(hs):
    ax = plots.within_between(hs, x="SES", y="MathAch", group="School")
    means = hs.groupby("School", observed=True)[["SES", "MathAch"]].mean()
    expected = {
        "pooled": smf.ols("MathAch ~ SES", hs).fit().params["SES"],
        "within": smf.ols("MathAch ~ SES + C(School)", hs).fit().params["SES"],
        "between": smf.ols("MathAch ~ SES", means).fit().params["SES"],
    }
    named = {line.get_label().split()[0]: line for line in ax.get_lines() if not line.get_label().startswith("_")}
    assert named.keys() == expected.keys()
    for name, slope in expected.items():
        assert line_coefficients(named[name])[1] == pytest.approx(slope, rel=1e-9)
        assert f"slope {slope:.2f}" in named[name].get_label()
    group_means = [c for c in ax.collections if c.get_label() == "School means"][0].get_offsets()
    assert np.allclose(np.sort(group_means[:, 0]), np.sort(means["SES"]))
    assert len(ax.get_lines()) == 40 + 3  # one within-group line per school


def test_within_between_own_lines_are_school_ols(hs, school_ols):
    ax = plots.within_between(hs, x="SES", y="MathAch", group="School", within_lines="own")
    drawn = np.array([line_coefficients(line) for line in ax.get_lines()[:40]])
    assert np.allclose(np.sort(drawn[:, 1]), np.sort(school_ols["slope"].astype(float)))


def test_within_between_names_bad_arguments(hs):
    with pytest.raises(KeyError, match="column 'school' is not in the data"):
        plots.within_between(hs, x="SES", y="MathAch", group="school")
    with pytest.raises(ValueError, match="within_lines"):
        plots.within_between(hs, x="SES", y="MathAch", group="School", within_lines="mine")


# ----------------------------------------------------------------------------- beta space


def test_dispersion_ellipse_axes_follow_the_covariance():
    ax = plots.dispersion_ellipse([1.0, 2.0], [[4.0, 0.0], [0.0, 1.0]], radius=1)
    (patch,) = ax.patches
    assert patch.center == (1.0, 2.0)
    assert sorted([patch.width, patch.height]) == pytest.approx([2.0, 4.0])
    cov = np.array([[3.0, 1.2], [1.2, 2.0]])
    plots.dispersion_ellipse([0, 0], cov, level=0.9, ax=ax)
    assert np.allclose(ellipse_matrix(ax.patches[-1], level=0.9), cov)


def test_dispersion_ellipse_names_bad_matrix():
    with pytest.raises(ValueError, match="symmetric 2 x 2"):
        plots.dispersion_ellipse([0, 0], [[1.0, 0.5], [0.0, 1.0]])
    with pytest.raises(ValueError, match="negative eigenvalue"):
        plots.dispersion_ellipse([0, 0], [[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match="center must hold 2 numbers"):
        plots.dispersion_ellipse([0, 0, 0], np.eye(2))


def test_beta_space_points_and_ellipses_are_school_ols(hs, school_ols):
    ax = plots.beta_space(hs, x="SES", y="MathAch", group="School")
    points = ax.collections[0].get_offsets()
    order = list(dict.fromkeys(hs["School"]))
    expected = school_ols.loc[order]
    assert np.allclose(points, expected[["intercept", "slope"]].to_numpy(float))
    assert len(ax.patches) == 40
    for patch, (_, row) in zip(ax.patches, expected.iterrows()):
        assert np.allclose(patch.center, [row["intercept"], row["slope"]])
        assert np.allclose(ellipse_matrix(patch), row["cov"])


def test_beta_space_hue_means_are_sector_means_with_two_stage_ellipse(hs, school_ols):
    ax = plots.beta_space(hs, x="SES", y="MathAch", group="School", hue="Sector", ellipses=False, hue_means=True)
    sector = hs.groupby("School", observed=True)["Sector"].first()
    estimates = school_ols[["intercept", "slope"]].astype(float)
    patches = {p.get_label(): p for p in ax.patches}
    for name in ["Catholic", "Public"]:
        members = estimates.loc[sector[sector == name].index.astype(str)]
        patch = patches[f"mean of {name} groups"]
        assert np.allclose(patch.center, members.mean())
        assert np.allclose(ellipse_matrix(patch), np.cov(members.to_numpy().T) / len(members))


def test_beta_space_fit_overlay_draws_g_around_fixed_effects(hs, fit_rs, school_ols):
    ax = plots.beta_space(hs, x="SES", y="MathAch", group="School", fit=fit_rs, sampling="fit")
    (g_patch,) = [p for p in ax.patches if p.get_label() == "fixed effects, G"]
    assert np.allclose(g_patch.center, fit_rs.fixef[["(Intercept)", "SES"]].to_numpy(float))
    g = fit_rs.random_covariance("School").loc[["(Intercept)", "SES"], ["(Intercept)", "SES"]]
    assert np.allclose(ellipse_matrix(g_patch), g.to_numpy(float))
    first = ax.patches[0]
    school = list(dict.fromkeys(hs["School"]))[0]
    assert np.allclose(ellipse_matrix(first), fit_rs.sigma2 * school_ols.loc[school, "xtx_inv"])


def test_beta_space_names_bad_arguments(hs, fit_ri):
    with pytest.raises(ValueError, match="pass fit="):
        plots.beta_space(hs, x="SES", y="MathAch", group="School", sampling="fit")
    with pytest.raises(ValueError, match="random slope for 'SES'"):
        plots.beta_space(hs, x="SES", y="MathAch", group="School", fit=fit_ri)
    with pytest.raises(ValueError, match="column 'Sex' varies within School"):
        plots.beta_space(hs, x="SES", y="MathAch", group="School", hue="Sex")


# ----------------------------------------------------------------------------- pooling


def test_pooling_lines_three_lines_per_panel(hs, fit_ri):
    fig = plots.pooling_lines(hs, x="SES", y="MathAch", group="School", fit=fit_ri)
    assert len(fig.axes) == 8
    complete = np.polyfit(hs["SES"], hs["MathAch"], 1)[::-1]
    coef = fit_ri.coef("School")
    coef.index = coef.index.astype(str)
    sizes = hs["School"].value_counts()
    for ax in fig.axes:
        school, n = ax.get_title().split(" (n = ")
        rows = hs[hs["School"] == school]
        lines = {line.get_label(): line_coefficients(line) for line in ax.get_lines()}
        assert np.allclose(lines["complete pooling"], complete)
        assert np.allclose(lines["no pooling"], np.polyfit(rows["SES"], rows["MathAch"], 1)[::-1])
        assert np.allclose(lines["partial pooling"], coef.loc[school, ["(Intercept)", "SES"]].to_numpy(float))
        assert int(n.rstrip(")")) == sizes[school]
    titles = [ax.get_title() for ax in fig.axes]
    assert any(f"(n = {sizes.min()})" in t for t in titles) and any(f"(n = {sizes.max()})" in t for t in titles)


def test_pooling_lines_names_a_fit_whose_group_lines_are_not_straight(hs):
    # lme4: lmer(MathAch ~ SES + Sex + (1 | School), hs): within a school the fitted values depend on Sex too
    fit = lmer("MathAch ~ SES + Sex + (1 | School)", hs)
    with pytest.raises(ValueError, match="not a straight line in 'SES'"):
        plots.pooling_lines(hs, x="SES", y="MathAch", group="School", fit=fit)


def test_pooling_lines_names_a_mismatched_fit(hs, fit_sleep):
    with pytest.raises(ValueError, match="response is 'Reaction' but y is 'MathAch'"):
        plots.pooling_lines(hs, x="SES", y="MathAch", group="School", fit=fit_sleep)
    with pytest.raises(TypeError, match="LmerResult"):
        plots.pooling_lines(hs, x="SES", y="MathAch", group="School", fit=hs)


# ----------------------------------------------------------------------------- shrinkage


def test_shrinkage_arrows_go_from_group_mean_to_blup(hs, fit_null):
    ax = plots.shrinkage_arrows(fit_null)
    drawn = arrows(ax)
    assert len(drawn) == 40
    summary = hs.groupby("School", observed=True)["MathAch"].agg(["size", "mean"])
    summary["blup"] = fit_null.coef("School")["(Intercept)"].rename(index=str)
    expected = summary.sort_values("mean")[["size", "mean", "blup"]].to_numpy(float)
    drawn = np.array(sorted([[*tail, head[0], head[1]] for tail, head in drawn], key=lambda row: row[1]))
    assert np.allclose(drawn[:, :2], expected[:, :2])  # tail: (n_j, mean of y_j), the BLUE
    assert np.allclose(drawn[:, 2], expected[:, 0])  # vertical arrows
    assert np.allclose(drawn[:, 3], expected[:, 2])  # head: the BLUP, coef()
    gls = [line for line in ax.get_lines() if line.get_label().startswith("GLS")][0]
    assert np.allclose(gls.get_ydata(), fit_null.fixef["(Intercept)"])
    blue, blup = ax.collections[:2]
    assert (blue.get_label(), blup.get_label()) == ("BLUE", "BLUP")


def test_shrinkage_arrows_with_covariate_shrink_by_lambda(hs, fit_ri):
    # BLUE_j = gamma_00 + mean_j(y - X gamma); BLUP_j - gamma_00 = lambda_j (BLUE_j - gamma_00)
    ax = plots.shrinkage_arrows(fit_ri)
    gamma = fit_ri.fixef
    vc = fit_ri.varcorr.set_index("grp")["vcov"]
    marginal = hs["MathAch"] - gamma["(Intercept)"] - gamma["SES"] * hs["SES"]
    blue = gamma["(Intercept)"] + marginal.groupby(hs["School"], observed=True).mean()
    n = hs["School"].value_counts()
    shrink = vc["School"] / (vc["School"] + vc["Residual"] / n)
    for tail, head in arrows(ax):
        school = blue.index[np.isclose(blue.to_numpy(float), tail[1])][0]
        assert tail[0] == n[school]
        assert head[1] - gamma["(Intercept)"] == pytest.approx(shrink[school] * (tail[1] - gamma["(Intercept)"]),
                                                               rel=1e-4)


def test_shrinkage_arrows_accepts_a_shrinkage_table():
    table = pd.DataFrame({"group": ["a", "b", "a"], "term": ["(Intercept)", "(Intercept)", "x"],
                          "n": [10, 50, 10], "blue": [5.0, 15.0, 1.0], "blup": [8.0, 14.5, 1.0],
                          "gls_mean": [12.0, 12.0, 0.5]})
    ax = plots.shrinkage_arrows(table)
    assert [(tuple(t), tuple(h)) for t, h in arrows(ax)] == [((10, 5.0), (10, 8.0)), ((50, 15.0), (50, 14.5))]
    assert ax.get_lines()[0].get_ydata()[0] == 12.0
    with pytest.raises(ValueError, match="term 'SES' is not in the shrinkage table"):
        plots.shrinkage_arrows(table, term="SES")
    with pytest.raises(KeyError, match="column 'blup' is not in the shrinkage table"):
        plots.shrinkage_arrows(table.drop(columns="blup"))


def test_shrinkage_arrows_names_a_random_slope_fit(fit_rs):
    with pytest.raises(ValueError, match=r"random slope\(s\) \['SES'\]"):
        plots.shrinkage_arrows(fit_rs)
    with pytest.raises(TypeError, match="LmerResult"):
        plots.shrinkage_arrows("MathAch ~ 1 + (1 | School)")


def test_shrinkage_beta_space_arrows_from_school_ols_to_coef(fit_rs, school_ols):
    ax = plots.shrinkage_beta_space(fit_rs, "SES")
    drawn = arrows(ax)
    assert len(drawn) == 40
    coef = fit_rs.coef("School")
    coef.index = coef.index.astype(str)
    order = list(dict.fromkeys(fit_rs.groups["School"].astype(str)))
    tails = np.array([t for t, _ in drawn])
    heads = np.array([h for _, h in drawn])
    assert np.allclose(tails, school_ols.loc[order, ["intercept", "slope"]].to_numpy(float))
    assert np.allclose(heads, coef.loc[order, ["(Intercept)", "SES"]].to_numpy(float))
    centre = [c for c in ax.collections if c.get_label() == "fixed effects"][0].get_offsets()
    assert np.allclose(centre, [fit_rs.fixef[["(Intercept)", "SES"]].to_numpy(float)])
    assert np.var(heads[:, 1]) < np.var(tails[:, 1])  # slopes shrink


def test_shrinkage_beta_space_one_fixed_centre_per_sector(fit_sector):
    ax = plots.shrinkage_beta_space(fit_sector, "SES", hue="Sector")
    b = fit_sector.fixef
    centres = {c.get_label(): c.get_offsets()[0] for c in ax.collections if c.get_label().startswith("fixed")}
    assert np.allclose(centres["fixed effects (Catholic)"], [b["(Intercept)"], b["SES"]])
    assert np.allclose(centres["fixed effects (Public)"],
                       [b["(Intercept)"] + b["SectorPublic"], b["SES"] + b["SES:SectorPublic"]])


def test_shrinkage_beta_space_names_missing_random_slope(fit_ri):
    with pytest.raises(ValueError, match=r"random slope for 'SES' in School.*\['\(Intercept\)'\]"):
        plots.shrinkage_beta_space(fit_ri, "SES")


# ----------------------------------------------------------------------------- caterpillar


def test_caterpillar_one_sorted_point_per_group(fit_null):
    ax = plots.caterpillar(fit_null, level=0.9)
    effects = fit_null.ranef.assign(grp=fit_null.ranef["grp"].astype(str)).set_index("grp")
    container = ax.containers[0]
    values = container.lines[0].get_xdata()
    assert len(values) == fit_null.ngroups["School"] == 40
    assert np.all(np.diff(values) >= 0)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert np.allclose(values, effects.loc[labels, "condval"])
    (bars,) = container.lines[2]
    half = np.array([seg[1, 0] - seg[0, 0] for seg in bars.get_segments()]) / 2
    assert np.allclose(half, stats.norm.ppf(0.95) * effects.loc[labels, "condsd"])


def test_caterpillar_one_panel_per_term(fit_sleep):
    fig = plots.caterpillar(fit_sleep)
    assert [ax.get_title() for ax in fig.axes] == ["(Intercept)", "Days"]
    first = fig.axes[0].containers[0].lines[0].get_xdata()
    assert len(first) == 18 and np.all(np.diff(first) >= 0)
    _, ax = plt.subplots()
    plots.caterpillar(fit_sleep, term="Days", ax=ax)
    days = fit_sleep.ranef.loc[fit_sleep.ranef["term"] == "Days", "condval"]
    assert np.allclose(ax.containers[0].lines[0].get_xdata(), np.sort(days))


def test_caterpillar_asks_which_of_several_grouping_factors(fit_crossed):
    with pytest.raises(ValueError, match=r"several grouping factors \['primary', 'second'\]"):
        plots.caterpillar(fit_crossed)
    ax = plots.caterpillar(fit_crossed, group="second")
    assert len(ax.containers[0].lines[0].get_xdata()) == fit_crossed.ngroups["second"]


def test_caterpillar_names_bad_term_and_group(fit_sleep):
    with pytest.raises(ValueError, match="term 'SES' is not a random term of Subject"):
        plots.caterpillar(fit_sleep, term="SES")
    with pytest.raises(ValueError, match="'School' is not a grouping factor"):
        plots.caterpillar(fit_sleep, group="School")
    with pytest.raises(ValueError, match="pass term="):
        plots.caterpillar(fit_sleep, ax=plt.gca())


# ----------------------------------------------------------------------------- variance partition


def test_variance_partition_bar_heights_are_variance_components(fit_null, fit_ri):
    ax = plots.variance_partition([fit_null, fit_ri], labels=["null", "SES"])
    bars = {c.get_label(): [p.get_height() for p in c.patches] for c in ax.containers}
    for i, fit in enumerate([fit_null, fit_ri]):
        vc = fit.varcorr.set_index("grp")["vcov"]
        assert bars["School"][i] == pytest.approx(vc["School"])
        assert bars["within (level 1)"][i] == pytest.approx(vc["Residual"])
    icc = [t.get_text() for t in ax.texts if t.get_text().startswith("ICC")]
    vc = fit_null.varcorr.set_index("grp")["vcov"]
    assert icc[0] == f"ICC = {vc['School'] / vc.sum():.2f}"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["null", "SES"]


def test_variance_partition_crossed_fit_stacks_each_factor(fit_null, fit_crossed):
    ax = plots.variance_partition({"hsb": fit_null, "scotssec": fit_crossed})
    bars = {c.get_label(): [p.get_height() for p in c.patches] for c in ax.containers}
    vc = fit_crossed.varcorr.set_index("grp")["vcov"]
    assert bars["primary"] == [0.0, pytest.approx(vc["primary"])]
    assert bars["second"] == [0.0, pytest.approx(vc["second"])]
    assert bars["School"][1] == 0.0
    text = [t.get_text() for t in ax.texts if "primary" in t.get_text()][0]
    assert text == f"primary: {vc['primary'] / vc.sum():.2f}\nsecond: {vc['second'] / vc.sum():.2f}"


def test_variance_partition_from_dict():
    ax = plots.variance_partition({"A": {"between": 1.0, "within": 3.0}, "B": {"between": 2.0, "within": 2.0}})
    bars = {c.get_label(): [p.get_height() for p in c.patches] for c in ax.containers}
    assert bars == {"within (level 1)": [3.0, 2.0], "between": [1.0, 2.0]}
    assert [t.get_text() for t in ax.texts if t.get_text().startswith("ICC")] == ["ICC = 0.25", "ICC = 0.50"]


def test_variance_partition_names_bad_input(fit_rs):
    with pytest.raises(ValueError, match="random slope 'SES' for School"):
        plots.variance_partition(fit_rs)
    with pytest.raises(ValueError, match="'A' need exactly one 'within'"):
        plots.variance_partition({"A": {"between": 1.0}})
    with pytest.raises(ValueError, match="2 labels for 1 models"):
        plots.variance_partition([{"between": 1.0, "within": 1.0}], labels=["a", "b"])


# ----------------------------------------------------------------------------- varying slopes and fan


def test_varying_slopes_group_lines_from_coef_and_fixed_lines_per_sector(fit_sector, hs):
    ax = plots.varying_slopes(fit_sector, "SES", hue="Sector")
    lines = ax.get_lines()
    assert len(lines) == 40 + 2
    coef = fit_sector.coef("School")
    coef.index = coef.index.astype(str)
    public = (hs.groupby("School", observed=True)["Sector"].first() == "Public").rename(index=str)
    intercept = coef["(Intercept)"] + public * coef["SectorPublic"]
    slope = coef["SES"] + public * coef["SES:SectorPublic"]
    order = list(dict.fromkeys(fit_sector.groups["School"].astype(str)))
    drawn = np.array([line_coefficients(line) for line in lines[:40]])
    assert np.allclose(drawn, np.column_stack([intercept[order], slope[order]]))
    colours = [mpl.colors.to_rgb(line.get_color()) for line in lines[:40]]
    assert [np.allclose(c, plots.PALETTE[1]) for c in colours] == list(public[order])
    b = fit_sector.fixef
    fixed = {line.get_label(): line_coefficients(line) for line in lines[40:]}
    assert np.allclose(fixed["fixed effects (Catholic)"], [b["(Intercept)"], b["SES"]])
    assert np.allclose(fixed["fixed effects (Public)"],
                       [b["(Intercept)"] + b["SectorPublic"], b["SES"] + b["SES:SectorPublic"]])


def test_varying_slopes_hue_from_data_when_the_model_lacks_it(fit_rs, hs):
    ax = plots.varying_slopes(fit_rs, "SES", hue="Sector", data=hs)
    public = (hs.groupby("School", observed=True)["Sector"].first() == "Public").rename(index=str)
    order = list(dict.fromkeys(fit_rs.groups["School"].astype(str)))
    colours = [mpl.colors.to_rgb(line.get_color()) for line in ax.get_lines()[:40]]
    assert [np.allclose(c, plots.PALETTE[1]) for c in colours] == list(public[order])
    coef = fit_rs.coef("School").rename(index=str)
    fixed = {line.get_label(): line_coefficients(line) for line in ax.get_lines()[40:]}
    for sector, is_public in [("Catholic", False), ("Public", True)]:
        # the model has one fixed line, so each sector's is that line
        assert np.allclose(fixed[f"fixed effects ({sector})"], fit_rs.fixef[["(Intercept)", "SES"]])
    drawn = np.array([line_coefficients(line) for line in ax.get_lines()[:40]])
    assert np.allclose(drawn, coef.loc[order, ["(Intercept)", "SES"]])
    with pytest.raises(KeyError, match="column 'Sector' is not in the fit's data.*pass data="):
        plots.varying_slopes(fit_rs, "SES", hue="Sector")


def test_varying_slopes_names_bad_hue(fit_sector):
    with pytest.raises(ValueError, match="column 'SES' varies within School"):
        plots.varying_slopes(fit_sector, "SES", hue="SES")
    with pytest.raises(KeyError, match="column 'sector' is not in the fit's data"):
        plots.varying_slopes(fit_sector, "SES", hue="sector")


def test_variance_fan_is_the_quadratic_in_x(fit_sleep):
    ax = plots.variance_fan(fit_sleep, "Days", residual=True)
    g = fit_sleep.random_covariance("Subject")
    curve = ax.get_lines()[0]
    x = curve.get_xdata()
    expected = g.loc["(Intercept)", "(Intercept)"] + 2 * g.loc["(Intercept)", "Days"] * x + g.loc["Days", "Days"] * x**2
    assert np.allclose(curve.get_ydata(), expected)
    assert (x.min(), x.max()) == (0, 9)
    band = [c for c in ax.collections if c.get_label() == "+ residual σ²"][0]
    assert band.get_paths()[0].vertices[:, 1].max() == pytest.approx(expected.max() + fit_sleep.sigma2)


def test_variance_fan_names_missing_random_slope(fit_ri):
    with pytest.raises(ValueError, match="random slope for 'SES'"):
        plots.variance_fan(fit_ri, "SES")


# ----------------------------------------------------------------------------- residual plots


def test_residual_plots_panels_hold_residuals_and_random_effects(fit_sleep):
    fig = plots.residual_plots(fit_sleep)
    assert [ax.get_title() for ax in fig.axes] == [
        "Residuals vs fitted", "Q-Q: level-1 residuals", "Subject: (Intercept)", "Subject: Days"]
    scatter = fig.axes[0].collections[0].get_offsets()
    assert np.allclose(scatter, np.column_stack([fit_sleep.fitted, fit_sleep.residuals]))
    assert np.allclose(fig.axes[1].collections[0].get_offsets()[:, 1], np.sort(fit_sleep.residuals))
    effects = fit_sleep.ranef
    for ax, term in zip(fig.axes[2:], ["(Intercept)", "Days"]):
        assert np.allclose(ax.collections[0].get_offsets()[:, 1], np.sort(effects.loc[effects["term"] == term,
                                                                                     "condval"]))


# ----------------------------------------------------------------------------- wrong kind of input


@pytest.mark.parametrize(
    "draw",
    [
        lambda x: plots.caterpillar(x),
        lambda x: plots.varying_slopes(x, "SES"),
        lambda x: plots.variance_fan(x, "SES"),
        lambda x: plots.residual_plots(x),
        lambda x: plots.shrinkage_beta_space(x, "SES"),
        lambda x: plots.variance_partition(x),
    ],
)
def test_fit_plots_refuse_a_data_frame(hs, draw):
    expected = r"needs a fitted model from mlmcourse\.lmer\(\) \(an LmerResult\), not DataFrame"
    with pytest.raises(TypeError, match=expected):
        draw(hs)
