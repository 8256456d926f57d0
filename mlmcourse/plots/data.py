"""Figures of the data before any mixed model: small multiples, within/between, beta space."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Ellipse
from scipy import stats

from mlmcourse.plots._base import (
    COLORS,
    _as_labels,
    _axes,
    _centres_by_hue,
    _check_data,
    _complete_rows,
    _fit_lines,
    _grouping_factor,
    _group_values,
    _hue_levels,
    _hue_palette,
    _line,
    _numeric,
    _ols_by_group,
    _ols_covariance,
    _panel_grid,
    _require_fit,
    _require_random_slope,
)

__all__ = ["group_lines", "within_between", "beta_space", "dispersion_ellipse"]


# ----------------------------------------------------------------------------- small multiples


def _group_order(data: pd.DataFrame, group: str, groups=None, order_by=None) -> list[str]:
    """Group labels to show: `groups` (or all), sorted by the `order_by` columns."""
    present = list(dict.fromkeys(_as_labels(data[group])))
    if groups is not None:
        chosen = _as_labels([groups] if isinstance(groups, str) else groups)
        unknown = [g for g in chosen if g not in present]
        if unknown:
            raise ValueError(f"group {unknown[0]!r} is not in column {group!r}")
        present = chosen
    if order_by is None:
        return present
    keys = []
    for column in [order_by] if isinstance(order_by, str) else list(order_by):
        _check_data(data, [column])
        if pd.api.types.is_numeric_dtype(data[column]) and not pd.api.types.is_bool_dtype(data[column]):
            key = data.groupby(data[group].astype(str), sort=False)[column].mean()
        else:
            key = _group_values(data.assign(**{group: data[group].astype(str)}), column, group)
            key = key.astype(str)
        keys.append(key.rename(column))
    table = pd.concat(keys, axis=1).loc[present]
    return list(table.sort_values(list(table.columns), kind="stable").index)


def _scatter_ols(ax, x, y, color, label=None, scatter_kws=None, line_kws=None):
    """One panel's points and, when x varies, their least-squares line."""
    ax.scatter(x, y, color=color, **{"s": 10, "alpha": 0.6, "linewidth": 0, **(scatter_kws or {})})
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if np.unique(xs).size >= 2:
        slope, intercept = np.polyfit(xs, ys, 1)
        _line(ax, intercept, slope, [xs.min(), xs.max()], color=color, label=label, **{"lw": 2, **(line_kws or {})})


def group_lines(
    data=None,
    *,
    x,
    y,
    group,
    hue=None,
    groups=None,
    order_by=None,
    col_wrap=8,
    height=1.8,
    aspect=1.0,
    scatter_kws=None,
    line_kws=None,
):
    """Small multiples: one panel per group with its points and least-squares line.

    Parameters
    ----------
    data : pandas.DataFrame
        Long data, one row per level-1 unit.
    x, y : str
        Predictor and response columns (numeric).
    group : str
        Grouping column; one panel per group, titled with its label.
    hue : str, optional
        Colour the points by this column and draw one line per colour
        (e.g. ``"Sex"``).
    groups : list of str, optional
        Only these groups (in this order, unless `order_by` is given).
    order_by : str or list of str, optional
        Sort the panels by these columns: numeric columns by their group
        mean, other columns by their (group-constant) value. ``["Sector",
        "SES"]`` keeps each sector together, ordered by mean SES.
    col_wrap : int
        Panels per row.
    height, aspect : float
        Size of each panel in inches and its width/height ratio.
    scatter_kws, line_kws : dict, optional
        Passed to :meth:`~matplotlib.axes.Axes.scatter` and
        :meth:`~matplotlib.axes.Axes.plot`.

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.axes`` holds one Axes per group in panel order, titled with the
        group label, each with one scatter and one line per hue level (the
        line labelled with the level); with `hue`, a figure legend titled
        `hue`. Axes are shared.

    Notes
    -----
    The least-squares line of each group varies because of sampling within
    the group and because the true relationship may differ between groups
    (Raudenbush & Bryk 2002, ch. 4, on the High School and Beyond
    schools). A first look before any multilevel model.

    Examples
    --------
    >>> import mlmcourse
    >>> from mlmcourse import plots
    >>> hs = mlmcourse.load("hsb40")
    >>> fig = plots.group_lines(hs, x="SES", y="MathAch", group="School",
    ...                         order_by=["Sector", "SES"])
    >>> len(fig.axes)
    40
    """
    _check_data(data, [x, y, group, hue])
    _numeric(data, x), _numeric(data, y)
    frame = _complete_rows(data, [x, y, group, hue] + _as_list(order_by))
    frame[group] = frame[group].astype(str)
    order = _group_order(frame, group, groups, order_by)
    palette = {None: COLORS["no_pooling"]} if hue is None else _hue_palette(frame, hue)
    panels = dict(tuple(frame.groupby(group, sort=False)))
    fig, axes = _panel_grid(len(order), col_wrap, height, aspect, x, y)
    for ax, label in zip(axes, order):
        rows = panels[label]
        parts = [(None, rows)] if hue is None else rows.groupby(hue, observed=True, sort=False)
        for level, part in parts:
            _scatter_ols(ax, part[x], part[y], palette[level], None if hue is None else str(level),
                         scatter_kws, line_kws)
        ax.set_title(label)
    if hue is not None:
        handles = [Line2D([], [], color=c, marker="o", lw=2, label=str(k)) for k, c in palette.items()]
        fig.legend(handles=handles, title=hue, loc="outside right upper")
    return fig


def _as_list(columns) -> list:
    if columns is None:
        return []
    return [columns] if isinstance(columns, str) else list(columns)


# ----------------------------------------------------------------------------- within and between


def _within_between_slopes(frame: pd.DataFrame, x: str, y: str, lines: pd.DataFrame) -> dict:
    xs, ys = frame[x].to_numpy(float), frame[y].to_numpy(float)
    pooled = np.polyfit(xs, ys, 1)[0]
    within = float((lines["slope"] * lines["sxx"]).sum() / lines["sxx"].sum())
    between = np.polyfit(lines["x_mean"], lines["y_mean"], 1)[0]
    return {"pooled": float(pooled), "within": within, "between": float(between)}


def within_between(data=None, *, x, y, group, within_lines="common", ax=None, **kwargs):
    """Group means, within-group lines and the pooled, within and between slopes in one panel.

    Parameters
    ----------
    data : pandas.DataFrame
        Long data, one row per level-1 unit.
    x, y : str
        Predictor and response columns (numeric).
    group : str
        Grouping column.
    within_lines : {"common", "own"}
        Draw each group's line with the common within-group slope through
        its mean (the fixed-effects model) or with its own OLS slope.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; the current Axes by default.
    **kwargs
        Passed to the scatter of the observations.

    Returns
    -------
    matplotlib.axes.Axes
        Lines labelled ``"pooled (slope b)"``, ``"within (slope b)"`` and
        ``"between (slope b)"`` span the whole x range.

    Notes
    -----
    * pooled: OLS of :math:`y_{ij}` on :math:`x_{ij}`, ignoring the groups;
    * within (fixed effects): :math:`\\hat\\beta_W = \\sum_{ij}(x_{ij}-\\bar x_j)(y_{ij}-\\bar y_j)
      / \\sum_{ij}(x_{ij}-\\bar x_j)^2`;
    * between: OLS of :math:`\\bar y_j` on :math:`\\bar x_j`, one point per group.

    The pooled slope is a weighted combination of the within and between
    slopes; when they differ in sign this is Simpson's paradox, and the
    ecological fallacy (Robinson 1950) is reading the between slope as the
    within one. The contextual-effects chapter separates the within, between
    and contextual effects of SES (Raudenbush & Bryk 2002, ch. 5).

    Examples
    --------
    >>> import mlmcourse
    >>> import matplotlib.pyplot as plt
    >>> from mlmcourse import plots
    >>> hs = mlmcourse.load("hsb40")
    >>> fig, ax = plt.subplots()
    >>> ax = plots.within_between(hs, x="SES", y="MathAch", group="School", ax=ax)
    >>> [line.get_label().split()[0] for line in ax.get_lines()[-3:]]
    ['pooled', 'within', 'between']
    """
    if within_lines not in ("common", "own"):
        raise ValueError(f"within_lines must be 'common' or 'own', not {within_lines!r}")
    _check_data(data, [x, y, group])
    _numeric(data, x), _numeric(data, y)
    frame = _complete_rows(data, [x, y, group])
    lines = _ols_by_group(frame[x].to_numpy(float), frame[y].to_numpy(float), frame[group].to_numpy())
    slopes = _within_between_slopes(frame, x, y, lines)
    ax = _axes(ax)
    ax.scatter(frame[x], frame[y], **{"s": 8, "alpha": 0.25, "color": COLORS["data"], "linewidth": 0, **kwargs})
    for _, row in lines.dropna(subset="slope").iterrows():
        slope = slopes["within"] if within_lines == "common" else row["slope"]
        _line(ax, row["y_mean"] - slope * row["x_mean"], slope, [row["x_min"], row["x_max"]],
              color=COLORS["within"], lw=1, alpha=0.5)
    ax.scatter(lines["x_mean"], lines["y_mean"], s=40, color=COLORS["between"], edgecolor="white",
               zorder=3, label=f"{group} means")
    x_range = [frame[x].min(), frame[x].max()]
    centres = {
        "pooled": (frame[x].mean(), frame[y].mean()),
        "within": (frame[x].mean(), frame[y].mean()),
        "between": (lines["x_mean"].mean(), lines["y_mean"].mean()),
    }
    for name, slope in slopes.items():
        cx, cy = centres[name]
        style = {"within": "-", "between": "--", "pooled": ":"}[name]
        _line(ax, cy - slope * cx, slope, x_range, color=COLORS[name], lw=3, ls=style, zorder=4,
              label=f"{name} (slope {slope:.2f})")
    ax.set(xlabel=x, ylabel=y)
    ax.legend(loc="best")
    return ax


# ----------------------------------------------------------------------------- beta space


def dispersion_ellipse(center, cov, *, level=0.95, radius=None, ax=None, **kwargs):
    """Draw the ellipse :math:`\\{b: (b-c)' \\Sigma^{-1} (b-c) \\le r^2\\}` of a 2x2 covariance.

    Parameters
    ----------
    center : array-like of 2 numbers
        Centre :math:`c` (e.g. an estimated (intercept, slope)).
    cov : array-like, 2 x 2
        Covariance matrix :math:`\\Sigma` (symmetric, positive semi-definite).
    level : float
        Coverage of the ellipse for a bivariate normal point:
        :math:`r^2 = \\chi^2_2(\\text{level})`. Ignored when `radius` is given.
    radius : float, optional
        :math:`r` itself; ``radius=1`` is the standard (1-SD) ellipse whose
        shadows on the axes are the mean plus or minus one SD.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; the current Axes by default.
    **kwargs
        Passed to :class:`matplotlib.patches.Ellipse` (``edgecolor``,
        ``label``, ...). Unfilled by default.

    Returns
    -------
    matplotlib.axes.Axes
        With the :class:`~matplotlib.patches.Ellipse` added as its last patch.

    Notes
    -----
    Axes of the ellipse are the eigenvectors of :math:`\\Sigma`, half-lengths
    :math:`r\\sqrt{\\lambda_k}` (Friendly, Monette & Fox 2013, "Elliptical
    insights"). The shrinkage chapter draws the ellipses of :math:`G`,
    :math:`\\sigma^2 (X_j'X_j)^{-1}` and their sum in beta space.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from mlmcourse import plots
    >>> fig, ax = plt.subplots()
    >>> ax = plots.dispersion_ellipse([12.6, 2.4], [[8.0, 0.2], [0.2, 0.4]], radius=1, ax=ax)
    >>> ax.patches[-1].center
    (12.6, 2.4)
    """
    center = np.asarray(center, dtype=float)
    cov = np.asarray(cov, dtype=float)
    if center.shape != (2,):
        raise ValueError(f"center must hold 2 numbers (intercept, slope), not shape {center.shape}")
    if cov.shape != (2, 2) or not np.allclose(cov, cov.T):
        raise ValueError(f"cov must be a symmetric 2 x 2 matrix, not {cov.tolist()}")
    values, vectors = np.linalg.eigh(cov)
    if values[0] < -1e-10 * max(1.0, abs(values[1])):
        raise ValueError(f"cov is not a covariance matrix: it has a negative eigenvalue {values[0]:.3g}")
    if radius is None:
        if not 0 < level < 1:
            raise ValueError(f"level must be between 0 and 1, not {level!r}")
        radius = np.sqrt(stats.chi2.ppf(level, df=2))
    values = np.clip(values, 0, None)
    angle = np.degrees(np.arctan2(vectors[1, 1], vectors[0, 1]))
    ax = _axes(ax)
    style = {"fill": False, "lw": 1.5, **kwargs}
    width, height = 2 * radius * np.sqrt(values[::-1])
    patch = Ellipse((float(center[0]), float(center[1])), width, height, angle=angle, **style)
    ax.add_patch(patch)
    ax.autoscale_view()
    return ax


def beta_space(
    data=None,
    *,
    x,
    y,
    group,
    hue=None,
    level=0.95,
    ellipses=True,
    fit=None,
    sampling="group",
    hue_means=False,
    ax=None,
    **kwargs,
):
    """Each group's OLS (intercept, slope) as a point in beta space, with confidence ellipses.

    Parameters
    ----------
    data : pandas.DataFrame
        Long data, one row per level-1 unit.
    x, y : str
        Predictor and response columns (numeric).
    group : str
        Grouping column: one point per group (groups with fewer than 3
        observations or constant x are left out, with a warning).
    hue : str, optional
        Group-level column to colour the groups by (e.g. ``"Sector"``).
    level : float
        Coverage of every ellipse (:func:`dispersion_ellipse`).
    ellipses : bool
        Draw each group's confidence ellipse, matrix :math:`s^2 (X_j'X_j)^{-1}`.
    fit : LmerResult, optional
        A fit with ``(1 + x | group)``: adds the ellipse of its :math:`G`
        (``fit.random_covariance()``) around the fixed-effect line(s), one per
        hue level when the fixed part depends on it.
    sampling : {"group", "fit"}
        Variance in the groups' ellipses: each group's own residual variance
        :math:`s_j^2`, or the fit's :math:`\\sigma^2` (needs `fit`).
    hue_means : bool
        Add the mean of the groups' points per hue level with the ellipse of
        that mean, covariance :math:`S/k` of the k points (two-stage analysis).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; the current Axes by default.
    **kwargs
        Passed to the scatter of the group points.

    Returns
    -------
    matplotlib.axes.Axes
        x axis: intercept, y axis: slope. Group ellipses come first in
        ``ax.patches``, then the G and hue-mean ellipses (labelled).

    Notes
    -----
    :math:`\\hat\\beta_j = (X_j'X_j)^{-1}X_j'y_j` with
    :math:`\\operatorname{Var}(\\hat\\beta_j \\mid \\beta_j) = \\sigma^2 (X_j'X_j)^{-1}`
    and :math:`\\operatorname{Var}(\\beta_j) = G`, so the spread of the points
    is about :math:`G + \\sigma^2 (X_j'X_j)^{-1}` (Raudenbush & Bryk 2002,
    ch. 3; method 3 of the pooling chapter, the two-stage approach, in beta
    space).

    Examples
    --------
    >>> import mlmcourse
    >>> import matplotlib.pyplot as plt
    >>> from mlmcourse import plots
    >>> hs = mlmcourse.load("hsb40")
    >>> fig, ax = plt.subplots()
    >>> ax = plots.beta_space(hs, x="SES", y="MathAch", group="School", hue="Sector", ax=ax)
    >>> ax.get_xlabel(), ax.get_ylabel()
    ('(Intercept)', 'slope of SES')
    """
    if sampling not in ("group", "fit"):
        raise ValueError(f"sampling must be 'group' or 'fit', not {sampling!r}")
    if sampling == "fit" and fit is None:
        raise ValueError("sampling='fit' uses the fit's residual variance: pass fit=")
    _check_data(data, [x, y, group, hue])
    _numeric(data, x), _numeric(data, y)
    frame = _complete_rows(data, [x, y, group, hue])
    lines = _usable_lines(frame, x, y, group)
    colors = _hue_colors(frame, group, hue, lines.index)
    ax = _axes(ax)
    sigma2 = _require_fit(fit, "beta_space(fit=...)").sigma2 if sampling == "fit" else None
    if ellipses:
        for label, row in lines.iterrows():
            dispersion_ellipse(row[["intercept", "slope"]], _ols_covariance(row, sigma2), level=level, ax=ax,
                               edgecolor=colors[label], lw=0.8, alpha=0.5)
    ax.scatter(lines["intercept"], lines["slope"], c=[colors[g] for g in lines.index],
               **{"s": 25, "zorder": 3, **kwargs})
    if fit is not None:
        _g_ellipses(fit, x, group, frame, hue, level, ax)
    if hue_means:
        _hue_mean_ellipses(lines, frame, group, hue, level, ax)
    _hue_legend(ax, frame, hue)
    ax.set(xlabel="(Intercept)", ylabel=f"slope of {x}")
    return ax


def _usable_lines(frame, x, y, group):
    lines = _ols_by_group(frame[x].to_numpy(float), frame[y].to_numpy(float), frame[group].to_numpy())
    bad = lines.index[(lines["n"] < 3) | lines["slope"].isna()]
    if len(bad):
        warnings.warn(f"groups {list(bad)} have fewer than 3 observations or constant {x!r}; left out",
                      stacklevel=3)
    return lines.drop(bad)


def _hue_colors(frame, group, hue, labels) -> dict:
    if hue is None:
        return {g: COLORS["no_pooling"] for g in labels}
    levels, palette = _hue_levels(frame, group, hue), _hue_palette(frame, hue)
    return {g: palette[levels[g]] for g in labels}


def _hue_legend(ax, frame, hue):
    if hue is not None:
        for level, color in _hue_palette(frame, hue).items():
            ax.scatter([], [], color=color, s=25, label=f"{hue} = {level}")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best")


def _g_ellipses(fit, x, group, frame, hue, level, ax):
    _require_fit(fit, "beta_space(fit=...)")
    factor = _grouping_factor(fit, group)
    _require_random_slope(fit, factor, x, "beta_space(fit=...)")
    g = fit.random_covariance(factor).loc[["(Intercept)", x], ["(Intercept)", x]].to_numpy(float)
    fixed = _fit_lines(fit, x, factor, include_random=False)
    levels = None if hue is None else _hue_levels(frame, group, hue)
    palette = {} if hue is None else _hue_palette(frame, hue)
    for i, (name, centre) in enumerate(_centres_by_hue(fixed, levels).iterrows()):
        label = f"fixed effects, G ({name})" if name != "all" else "fixed effects, G" if i == 0 else None
        color = palette.get(name, "black")
        dispersion_ellipse(centre[["intercept", "slope"]], g, level=level, ax=ax, edgecolor=color,
                           lw=3, ls="--", label=label)
        ax.scatter([centre["intercept"]], [centre["slope"]], marker="X", s=150, color=color, edgecolor="black",
                   zorder=4)


def _hue_mean_ellipses(lines, frame, group, hue, level, ax):
    levels = _hue_levels(frame, group, hue).loc[lines.index] if hue else pd.Series("all", index=lines.index)
    palette = _hue_palette(frame, hue) if hue else {"all": COLORS["no_pooling"]}
    for name, members in lines[["intercept", "slope"]].groupby(levels.to_numpy()):
        centre = members.mean().to_numpy()
        cov = np.cov(members.to_numpy().T) / len(members)
        label = "mean of groups" if name == "all" else f"mean of {name} groups"
        dispersion_ellipse(centre, cov, level=level, ax=ax, edgecolor=palette[name], lw=3, label=label)
        ax.scatter([centre[0]], [centre[1]], marker="D", s=80, color=palette[name], edgecolor="black", zorder=4)
