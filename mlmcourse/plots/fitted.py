"""Figures of a fitted mixed model (an LmerResult); none of them refits anything."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from scipy import stats

from mlmcourse.plots._base import (
    COLORS,
    PALETTE,
    _as_labels,
    _axes,
    _check_data,
    _centres_by_hue,
    _fit_hue,
    _fit_lines,
    _grouping_factor,
    _line,
    _random_terms,
    _require_fit,
    _require_random_slope,
)

__all__ = ["caterpillar", "variance_partition", "varying_slopes", "variance_fan", "residual_plots"]


# ----------------------------------------------------------------------------- caterpillar


def _caterpillar_panel(ax, values: pd.Series, half_widths: pd.Series, show_labels: bool, **kwargs):
    positions = np.arange(len(values))
    style = {"fmt": "o", "color": COLORS["blup"], "ecolor": COLORS["data"], "ms": 4, "elinewidth": 1.2,
             "capsize": 0, **kwargs}
    ax.errorbar(values.to_numpy(float), positions, xerr=half_widths.to_numpy(float), **style)
    ax.axvline(0, color="black", lw=1, ls="--", zorder=0)
    ax.set_yticks(positions, _as_labels(values.index) if show_labels else [""] * len(values))
    ax.set_ylim(-1, len(values))


def caterpillar(fit, *, group=None, term=None, level=0.95, ax=None, **kwargs):
    """Conditional modes of the random effects with prediction intervals, sorted.

    Parameters
    ----------
    fit : LmerResult
        The fitted model (``mlmcourse.lmer``).
    group : str, optional
        Grouping factor (needed when the fit has several).
    term : str, optional
        One random term (e.g. ``"(Intercept)"`` or ``"Days"``). By default
        every random term of the factor, one panel each.
    level : float
        Coverage of the intervals, :math:`\\hat u_j \\pm z_{(1+\\text{level})/2}\\,
        \\text{condsd}_j`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on when one term is drawn; the current Axes by default.
    **kwargs
        Passed to :meth:`~matplotlib.axes.Axes.errorbar`.

    Returns
    -------
    matplotlib.axes.Axes or matplotlib.figure.Figure
        The Axes when one term is drawn; otherwise a Figure with one panel
        per term. Groups are on the y axis, sorted by the conditional mode of
        the first term (as lme4's ``dotplot(ranef(fit, condVar = TRUE))``);
        the errorbar's points are ``(condval, position)``.

    Notes
    -----
    The points are ``fit.ranef["condval"]`` (conditional modes, the BLUPs of
    :math:`u_j`) and the interval half-widths :math:`z \\times` ``condsd``.
    Group labels are written when there are at most 60 groups.

    Examples
    --------
    >>> import mlmcourse
    >>> import matplotlib.pyplot as plt
    >>> from mlmcourse import plots
    >>> from mlmcourse.lmm import lmer
    >>> fit = lmer("MathAch ~ 1 + (1 | School)", mlmcourse.load("hsb40"))
    >>> fig, ax = plt.subplots()
    >>> ax = plots.caterpillar(fit, ax=ax)
    >>> len(ax.get_yticks())
    40
    """
    _require_fit(fit, "caterpillar")
    factor = _grouping_factor(fit, group)
    terms = _random_terms(fit, factor)
    if term is not None:
        if term not in terms:
            raise ValueError(f"term {term!r} is not a random term of {factor}; its random terms are {terms}")
        terms = [term]
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, not {level!r}")
    effects = fit.ranef[fit.ranef["grpvar"] == factor].assign(grp=lambda d: d["grp"].astype(str))
    modes = effects.pivot(index="grp", columns="term", values="condval")
    sds = effects.pivot(index="grp", columns="term", values="condsd")
    order = modes[terms[0]].sort_values(kind="stable").index
    z = stats.norm.ppf(0.5 + level / 2)
    show_labels = len(order) <= 60
    if len(terms) == 1:
        ax = _axes(ax)
        _caterpillar_panel(ax, modes.loc[order, terms[0]], z * sds.loc[order, terms[0]], show_labels, **kwargs)
        ax.set(xlabel=f"{terms[0]}: conditional mode, {level:.0%} interval", ylabel=factor)
        return ax
    if ax is not None:
        raise ValueError(f"{factor} has several random terms {terms}; pass term= to draw one of them on ax")
    fig, axes = plt.subplots(1, len(terms), sharey=True, layout="constrained",
                             figsize=(4.5 * len(terms), max(4.0, 0.22 * len(order) + 1.5)))
    for ax, name in zip(axes, terms):
        _caterpillar_panel(ax, modes.loc[order, name], z * sds.loc[order, name], show_labels, **kwargs)
        ax.set_title(name)
    axes[0].set_ylabel(f"{factor} (sorted by {terms[0]})")
    fig.supxlabel(f"conditional mode with {level:.0%} interval")
    return fig


# ----------------------------------------------------------------------------- variance partition

_RESIDUAL = "within (level 1)"


def _components_of_fit(fit) -> dict[str, float]:
    table = fit.varcorr
    variances = table[table["var2"].isna()]
    slopes = variances[(variances["grp"] != "Residual") & (variances["var1"] != "(Intercept)")]
    if len(slopes):
        row = slopes.iloc[0]
        raise ValueError(
            f"the fit has a random slope {row['var1']!r} for {row['grp']}: its between-group variance "
            f"depends on {row['var1']!r}, so it has no single split; use variance_fan, or a random-intercept fit"
        )
    parts = {str(row["grp"]): float(row["vcov"]) for _, row in variances.iterrows() if row["grp"] != "Residual"}
    parts[_RESIDUAL] = float(variances.loc[variances["grp"] == "Residual", "vcov"].iloc[0])
    return parts


def _components_of_mapping(label, parts: Mapping) -> dict[str, float]:
    level1 = [k for k in parts if k in ("within", "Residual")]
    if len(level1) != 1:
        raise ValueError(f"the variances of {label!r} need exactly one 'within' (level-1) entry; got {list(parts)}")
    out = {}
    for key, value in parts.items():
        if not np.isscalar(value) or not np.isreal(value) or value < 0:
            raise ValueError(f"variance {key!r} of {label!r} must be a number >= 0, not {value!r}")
        out[_RESIDUAL if key in ("within", "Residual") else str(key)] = float(value)
    return out


def _variance_table(source, labels) -> pd.DataFrame:
    """Rows: models; columns: components, level 1 last."""
    if isinstance(source, Mapping):
        if labels is not None:
            raise ValueError("labels come from the keys of the dict; do not pass labels= as well")
        items = list(source.items())
    else:
        fits = list(source) if isinstance(source, Sequence) and not isinstance(source, str) else [source]
        labels = [f"model {i + 1}" for i in range(len(fits))] if labels is None else list(labels)
        if len(labels) != len(fits):
            raise ValueError(f"got {len(labels)} labels for {len(fits)} models")
        items = list(zip(labels, fits))
    rows = {}
    for label, item in items:
        if isinstance(item, Mapping):
            rows[str(label)] = _components_of_mapping(label, item)
        else:
            rows[str(label)] = _components_of_fit(_require_fit(item, "variance_partition"))
    table = pd.DataFrame.from_dict(rows, orient="index")
    return table[[c for c in table.columns if c != _RESIDUAL] + [_RESIDUAL]]


def variance_partition(source, *, labels=None, ax=None, **kwargs):
    """Stacked bars of the variance components of one or several fits, with the ICC.

    Parameters
    ----------
    source : LmerResult, list of LmerResult, or dict
        Random-intercept fits (one or several grouping factors), or a dict
        ``{label: fit}`` or ``{label: {"between": tau00, "within": sigma2}}``
        (more level-2+ entries allowed; ``"within"`` is level 1).
    labels : list of str, optional
        Bar labels for a list of fits (default ``"model 1"``, ...).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; the current Axes by default.
    **kwargs
        Passed to :meth:`~matplotlib.axes.Axes.bar`.

    Returns
    -------
    matplotlib.axes.Axes
        One bar per model: level 1 (``"within (level 1)"``) at the bottom,
        the grouping factors stacked on top, one bar container per component
        (``ax.containers``, labelled with its name; height 0 where a model
        lacks it), the value of each segment written in it, and last in
        ``ax.texts`` the ICC text above each bar: ``"ICC = 0.17"``, or one
        line ``"<factor>: <share>"`` per factor.

    Notes
    -----
    For a two-level random-intercept model,
    :math:`\\text{ICC} = \\tau_{00} / (\\tau_{00} + \\sigma^2)`; with several
    factors each factor's share of the total variance is shown (the
    correlation of two observations that share only that factor). Comparing
    a null model with one with predictors shows which level's variance the
    predictors explain (Raudenbush & Bryk 2002, Ch. 4; Snijders & Bosker
    2012, Ch. 7).

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from mlmcourse import plots
    >>> fig, ax = plt.subplots()
    >>> ax = plots.variance_partition({"null": {"between": 8.04, "within": 39.65}}, ax=ax)
    >>> ax.texts[-1].get_text()
    'ICC = 0.17'
    """
    table = _variance_table(source, labels)
    heights = table.fillna(0.0)
    ax = _axes(ax)
    positions = np.arange(len(table))
    bottom = np.zeros(len(table))
    smallest = 0.04 * heights.sum(axis=1).max()
    components = [_RESIDUAL] + [c for c in table.columns if c != _RESIDUAL]
    for i, name in enumerate(components):
        color = COLORS["residual"] if name == _RESIDUAL else PALETTE[(i - 1) % len(PALETTE)]
        bars = ax.bar(positions, heights[name], bottom=bottom, label=name, **{"color": color, "width": 0.6, **kwargs})
        ax.bar_label(bars, labels=[f"{v:.2f}" if v >= smallest else "" for v in heights[name]], label_type="center")
        bottom += heights[name].to_numpy()
    shares = table.div(heights.sum(axis=1), axis=0).drop(columns=_RESIDUAL)
    for x, (_, row), top in zip(positions, shares.iterrows(), bottom):
        row = row.dropna()
        text = f"ICC = {row.iloc[0]:.2f}" if len(row) == 1 else "\n".join(f"{k}: {v:.2f}" for k, v in row.items())
        ax.text(x, top, text, ha="center", va="bottom")
    ax.set_xticks(positions, list(table.index))
    ax.set_ylim(0, bottom.max() * (1.15 + 0.08 * (shares.notna().sum(axis=1).max() - 1)))
    ax.set(ylabel="variance")
    ax.xaxis.grid(False)
    ax.legend(title="variance component", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return ax


# ----------------------------------------------------------------------------- varying slopes


def varying_slopes(fit, x, *, hue=None, data=None, group=None, ax=None, **kwargs):
    """Each group's fitted line, coloured by a group-level variable, with the fixed-effect lines on top.

    Parameters
    ----------
    fit : LmerResult
        A fit whose fitted values are straight lines in `x` within each group
        (e.g. ``y ~ x * Sector + (1 + x | group)``).
    x : str
        The level-1 predictor on the x axis.
    hue : str, optional
        Group-level column (e.g. ``"Sector"``) of the fit's data, or of `data`
        when the model does not use it; one fixed-effect line per level.
    data : pandas.DataFrame, optional
        Data holding the grouping factor and `hue`, when `hue` is not a
        column of ``fit.model_data``.
    group : str, optional
        Grouping factor (needed when the fit has several).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; the current Axes by default.
    **kwargs
        Passed to the group lines' :meth:`~matplotlib.axes.Axes.plot`.

    Returns
    -------
    matplotlib.axes.Axes
        First one line per group over the group's own x range (intercept and
        slope from ``coef()`` when x is the only level-1 predictor), then the
        fixed-effect line(s), labelled ``"fixed effects"`` or ``"fixed
        effects (<level>)"``, over the whole x range.

    Notes
    -----
    Group line: :math:`\\hat y = (\\hat\\gamma_{00} + \\hat\\gamma_{01} w_j + \\hat u_{0j})
    + (\\hat\\gamma_{10} + \\hat\\gamma_{11} w_j + \\hat u_{1j}) x` (slopes as outcomes,
    Raudenbush & Bryk 2002, Ch. 4; Snijders & Bosker 2012, Ch. 5).

    Examples
    --------
    >>> import mlmcourse
    >>> import matplotlib.pyplot as plt
    >>> from mlmcourse import plots
    >>> from mlmcourse.lmm import lmer
    >>> fit = lmer("MathAch ~ SES * Sector + (1 + SES | School)", mlmcourse.load("hsb40"))
    >>> fig, ax = plt.subplots()
    >>> ax = plots.varying_slopes(fit, "SES", hue="Sector", ax=ax)
    >>> len(ax.get_lines())
    42
    """
    _require_fit(fit, "varying_slopes")
    factor = _grouping_factor(fit, group)
    _check_data(fit.model_data, [x], where="the fit's data")
    levels, palette = _fit_hue(fit, factor, hue, data)
    lines = _fit_lines(fit, x, factor)
    fixed = _centres_by_hue(_fit_lines(fit, x, factor, include_random=False), levels)
    if hue is None:
        colors = {label: COLORS["partial_pooling"] for label in lines.index}
        palette = {"all": "black"}
    else:
        colors = {label: palette[levels[label]] for label in lines.index}
    ax = _axes(ax)
    for label, row in lines.iterrows():
        _line(ax, row["intercept"], row["slope"], [row["x_min"], row["x_max"]],
              **{"color": colors[label], "lw": 1, "alpha": 0.6, **kwargs})
    x_range = [lines["x_min"].min(), lines["x_max"].max()]
    for i, (name, row) in enumerate(fixed.iterrows()):
        label = f"fixed effects ({name})" if name != "all" else "fixed effects" if i == 0 else None
        _line(ax, row["intercept"], row["slope"], x_range, color=palette[name], lw=4, label=label, zorder=3)
    if hue is not None:
        ax.legend(handles=[Line2D([], [], color=c, lw=2, label=f"{hue} = {k}") for k, c in palette.items()]
                  + ax.get_legend_handles_labels()[0], loc="best")
    else:
        ax.legend(loc="best")
    ax.set(xlabel=x, ylabel=fit.response)
    return ax


def variance_fan(fit, x, *, group=None, xrange=None, residual=False, ax=None, **kwargs):
    """Between-group variance of the random part against x: the heteroscedasticity fan.

    Parameters
    ----------
    fit : LmerResult
        A fit with ``(1 + x | group)``.
    x : str
        The predictor with the random slope.
    group : str, optional
        Grouping factor (needed when the fit has several).
    xrange : (float, float), optional
        Range of x; the observed range by default.
    residual : bool
        Also shade the level-1 variance :math:`\\sigma^2` on top, so the
        upper edge is the total variance.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; the current Axes by default.
    **kwargs
        Passed to :meth:`~matplotlib.axes.Axes.plot` of the variance curve.

    Returns
    -------
    matplotlib.axes.Axes
        First line: the curve labelled ``"between groups"`` at 200 x values;
        a dotted vertical line at its minimum when that lies in the range;
        with `residual`, a shaded band labelled ``"+ residual σ²"``.

    Notes
    -----
    :math:`\\operatorname{Var}(u_{0j} + u_{1j} x) = \\tau_{00} + 2\\tau_{01}x + \\tau_{11}x^2`,
    smallest at :math:`x = -\\tau_{01}/\\tau_{11}`: a random slope makes the
    variance between groups depend on x (Snijders & Bosker 2012, Section 5.1.2;
    Raudenbush & Bryk 2002, Ch. 4). Other random terms are held at 0.

    Examples
    --------
    >>> import mlmcourse
    >>> import matplotlib.pyplot as plt
    >>> from mlmcourse import plots
    >>> from mlmcourse.lmm import lmer
    >>> fit = lmer("Reaction ~ Days + (Days | Subject)", mlmcourse.load("sleepstudy"))
    >>> fig, ax = plt.subplots()
    >>> ax = plots.variance_fan(fit, "Days", ax=ax)
    >>> ax.get_lines()[0].get_label()
    'between groups'
    """
    _require_fit(fit, "variance_fan")
    factor = _grouping_factor(fit, group)
    _require_random_slope(fit, factor, x, "variance_fan")
    g = fit.random_covariance(factor).loc[["(Intercept)", x], ["(Intercept)", x]].to_numpy(float)
    if xrange is None:
        values = _check_data(fit.model_data, [x], where="the fit's data")[x].astype(float)
        xrange = (values.min(), values.max())
    xs = np.linspace(float(xrange[0]), float(xrange[1]), 200)
    variance = g[0, 0] + 2 * g[0, 1] * xs + g[1, 1] * xs**2
    ax = _axes(ax)
    ax.plot(xs, variance, **{"color": COLORS["between"], "lw": 3, "label": "between groups", **kwargs})
    if g[1, 1] > 0 and xs[0] <= -g[0, 1] / g[1, 1] <= xs[-1]:
        lowest = -g[0, 1] / g[1, 1]
        ax.axvline(lowest, color="black", ls=":", lw=1.5, label=f"minimum at {x} = {lowest:.2f}")
    if residual:
        ax.fill_between(xs, variance, variance + fit.sigma2, color=COLORS["residual"], alpha=0.3,
                        label="+ residual σ²")
    ax.set_ylim(bottom=0)
    ax.set(xlabel=x, ylabel=f"variance of the {factor} random part")
    ax.legend(loc="best")
    return ax


# ----------------------------------------------------------------------------- residuals


def _qq_panel(ax, values, title: str, ylabel: str):
    values = np.sort(np.asarray(values, dtype=float))
    (theoretical, _), _ = stats.probplot(values, dist="norm")
    ax.scatter(theoretical, values, s=10, alpha=0.7, color=COLORS["no_pooling"], linewidth=0)
    q25, q75 = np.percentile(values, [25, 75])
    z25, z75 = stats.norm.ppf([0.25, 0.75])
    slope = (q75 - q25) / (z75 - z25)
    _line(ax, q25 - slope * z25, slope, [theoretical[0], theoretical[-1]], color="black", lw=1.5)
    ax.set(title=title, xlabel="normal quantiles", ylabel=ylabel)


def residual_plots(fit, *, height=3.5, smooth=True):
    """Diagnostic panels: level-1 residuals against fitted values, and normal Q-Q plots.

    Parameters
    ----------
    fit : LmerResult
        The fitted model.
    height : float
        Height of each panel in inches.
    smooth : bool
        Add a lowess smooth to the residual-vs-fitted panel.

    Returns
    -------
    matplotlib.figure.Figure
        Panels in order: residuals vs fitted values; Q-Q of the level-1
        residuals; one Q-Q per random term of each grouping factor (titled
        ``"<factor>: <term>"``). Each Q-Q scatter holds the sorted values.

    Notes
    -----
    The model assumes :math:`\\varepsilon_{ij} \\sim N(0, \\sigma^2)` and
    :math:`u_j \\sim N(0, G)`; the conditional modes are shrunken, so their
    Q-Q plot is only a rough check (Snijders & Bosker 2012, Ch. 10). The
    reference line passes through the quartiles (R's ``qqline``).

    Examples
    --------
    >>> import mlmcourse
    >>> from mlmcourse import plots
    >>> from mlmcourse.lmm import lmer
    >>> fit = lmer("Reaction ~ Days + (Days | Subject)", mlmcourse.load("sleepstudy"))
    >>> len(plots.residual_plots(fit).axes)
    4
    """
    _require_fit(fit, "residual_plots")
    panels = [(factor, term) for factor in fit.ngroups for term in _random_terms(fit, factor)]
    count = 2 + len(panels)
    ncols = 2 if count in (2, 4) else 3
    nrows = -(-count // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * height * 1.2, nrows * height), layout="constrained",
                             squeeze=False)
    axes = axes.ravel()
    fitted, residuals = np.asarray(fit.fitted, float), np.asarray(fit.residuals, float)
    ax = axes[0]
    ax.scatter(fitted, residuals, s=8, alpha=0.4, color=COLORS["data"], linewidth=0)
    ax.axhline(0, color="black", lw=1)
    if smooth:
        from statsmodels.nonparametric.smoothers_lowess import lowess

        curve = lowess(residuals, fitted, frac=0.5, it=1)
        ax.plot(curve[:, 0], curve[:, 1], color=COLORS["partial_pooling"], lw=2, label="lowess")
    ax.set(title="Residuals vs fitted", xlabel="fitted value", ylabel="level-1 residual")
    _qq_panel(axes[1], residuals, "Q-Q: level-1 residuals", "level-1 residual")
    effects = fit.ranef
    for ax, (factor, term) in zip(axes[2:], panels):
        values = effects.loc[(effects["grpvar"] == factor) & (effects["term"] == term), "condval"]
        _qq_panel(ax, values, f"{factor}: {term}", "conditional mode")
    for ax in axes[count:]:
        ax.remove()
    return fig
