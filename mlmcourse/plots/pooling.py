"""Pooling and shrinkage: complete, no and partial pooling; BLUE -> BLUP arrows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlmcourse.plots._base import (
    COLORS,
    _as_labels,
    _axes,
    _centres_by_hue,
    _check_data,
    _complete_rows,
    _fit_hue,
    _fit_lines,
    _grouping_factor,
    _line,
    _numeric,
    _ols_by_group,
    _panel_grid,
    _require_fit,
    _require_random_intercept_only,
    _require_random_slope,
)

__all__ = ["pooling_lines", "shrinkage_arrows", "shrinkage_beta_space"]

_ARROW = {"arrowstyle": "->", "color": "black", "lw": 1.2, "shrinkA": 0, "shrinkB": 0}


def _spread_groups(lines: pd.DataFrame, k: int) -> list[str]:
    """k groups spread from the smallest to the largest."""
    by_size = lines.sort_values("n", kind="stable").index
    picks = np.unique(np.linspace(0, len(by_size) - 1, min(k, len(by_size))).round().astype(int))
    return list(by_size[picks])


def _partial_lines(fit, x: str, y: str, group: str) -> pd.DataFrame:
    _require_fit(fit, "pooling_lines(fit=...)")
    if fit.response != y:
        raise ValueError(f"the fit's response is {fit.response!r} but y is {y!r}")
    if group not in fit.ngroups:
        raise ValueError(f"{group!r} is not a grouping factor of the fit; its grouping factors are {list(fit.ngroups)}")
    return _fit_lines(fit, x, group)


def pooling_lines(
    data=None, *, x, y, group, fit=None, groups=None, n_groups=8, col_wrap=4, height=2.4, aspect=1.0
):
    """Complete, no and partial pooling lines for a few groups, one panel per group.

    Parameters
    ----------
    data : pandas.DataFrame
        Long data, one row per level-1 unit.
    x, y : str
        Predictor and response columns (numeric).
    group : str
        Grouping column.
    fit : LmerResult, optional
        A fit of `y` with grouping factor `group` whose fitted lines are
        straight in `x` (e.g. ``y ~ x + (1 | group)`` or ``(1 + x | group)``):
        adds the partial-pooling line of each group. Not refitted.
    groups : list of str, optional
        Groups to show; by default `n_groups` groups spread from the smallest
        to the largest.
    n_groups : int
        How many groups to show when `groups` is not given.
    col_wrap : int
        Panels per row.
    height, aspect : float
        Size of each panel in inches and its width/height ratio.

    Returns
    -------
    matplotlib.figure.Figure
        One Axes per group (titled with its label, ``n = ...``) holding the
        lines labelled ``"complete pooling"``, ``"no pooling"`` and
        ``"partial pooling"``, drawn across the whole x range.

    Notes
    -----
    Complete pooling: one OLS line for all the data. No pooling: OLS within
    each group. Partial pooling: the mixed model's line
    :math:`\\hat\\beta_j = \\hat\\gamma + \\hat u_j`, pulled from the group's
    own line towards the common one, more so for small groups (Gelman & Hill
    2007, Section 12.2; Hermansen 2025, pooling weights).

    Examples
    --------
    >>> import mlmcourse
    >>> from mlmcourse import plots
    >>> from mlmcourse.lmm import lmer
    >>> hs = mlmcourse.load("hsb40")
    >>> fit = lmer("MathAch ~ SES + (1 | School)", hs)
    >>> fig = plots.pooling_lines(hs, x="SES", y="MathAch", group="School", fit=fit)
    >>> len(fig.axes)
    8
    """
    _check_data(data, [x, y, group])
    _numeric(data, x), _numeric(data, y)
    frame = _complete_rows(data, [x, y, group])
    frame[group] = frame[group].astype(str)
    lines = _ols_by_group(frame[x].to_numpy(float), frame[y].to_numpy(float), frame[group].to_numpy())
    partial = None if fit is None else _partial_lines(fit, x, y, group)
    chosen = _spread_groups(lines, n_groups) if groups is None else _as_labels(
        [groups] if isinstance(groups, str) else groups)
    for label in chosen:
        if label not in lines.index:
            raise ValueError(f"group {label!r} is not in column {group!r}")
        if partial is not None and label not in partial.index:
            raise ValueError(f"group {label!r} is not in the fit's data")
    slope, intercept = np.polyfit(frame[x].to_numpy(float), frame[y].to_numpy(float), 1)
    x_range = [frame[x].min(), frame[x].max()]
    fig, axes = _panel_grid(len(chosen), col_wrap, height, aspect, x, y)
    for ax, label in zip(axes, chosen):
        rows = frame[frame[group] == label]
        ax.scatter(rows[x], rows[y], s=12, alpha=0.6, color=COLORS["data"], linewidth=0)
        _line(ax, intercept, slope, x_range, color=COLORS["complete_pooling"], lw=2, ls="--", label="complete pooling")
        own = lines.loc[label]
        if not np.isnan(own["slope"]):
            _line(ax, own["intercept"], own["slope"], x_range, color=COLORS["no_pooling"], lw=2, label="no pooling")
        if partial is not None:
            mixed = partial.loc[label]
            _line(ax, mixed["intercept"], mixed["slope"], x_range, color=COLORS["partial_pooling"], lw=2.5,
                  label="partial pooling")
        ax.set_title(f"{label} (n = {int(own['n'])})")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=3)
    return fig


# ----------------------------------------------------------------------------- shrinkage


def _shrinkage_rows(table: pd.DataFrame, term: str) -> pd.DataFrame:
    """The rows of one term of a shrinkage table (all rows when it has no 'term' column)."""
    _check_data(table, ["n", "blue", "blup"], where="the shrinkage table")
    if "term" not in table.columns:
        return table
    terms = list(dict.fromkeys(table["term"]))
    if term not in terms:
        raise ValueError(f"term {term!r} is not in the shrinkage table; its terms are {terms}")
    return table[table["term"] == term]


def _shrinkage_from_fit(fit, group: str | None) -> tuple[pd.DataFrame, str]:
    """Shrinkage table (mlmcourse.variance.shrinkage) of a random-intercept fit, and the factor."""
    from mlmcourse.variance import shrinkage

    _require_fit(fit, "shrinkage_arrows")
    factor = _grouping_factor(fit, group)
    _require_random_intercept_only(fit, factor, "shrinkage_arrows")
    return shrinkage(fit, factor), factor


def shrinkage_arrows(source, *, group=None, term="(Intercept)", center=None, ax=None, **kwargs):
    """Arrows from each group's BLUE to its BLUP against group size, with the GLS mean.

    Parameters
    ----------
    source : LmerResult or pandas.DataFrame
        A random-intercept fit (``y ~ ... + (1 | group)``), or a shrinkage
        table with columns ``n``, ``blue``, ``blup`` and optionally ``term``
        and ``gls_mean``, as returned by :func:`mlmcourse.variance.shrinkage`.
    group : str, optional
        Grouping factor of the fit (needed when it has several).
    term : str
        Which term's rows of a table with a ``term`` column to draw.
    center : float, optional
        Height of the horizontal line; by default the table's ``gls_mean``
        (for a fit: the fixed intercept :math:`\\hat\\gamma_{00}`).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; the current Axes by default.
    **kwargs
        Passed to both scatters.

    Returns
    -------
    matplotlib.axes.Axes
        Scatters labelled ``"BLUE"`` and ``"BLUP"`` at x = n, one arrow
        (an :class:`~matplotlib.text.Annotation` in ``ax.texts``) per group
        from (n, BLUE) to (n, BLUP), and a horizontal line for the GLS mean.

    Notes
    -----
    For group :math:`j` the BLUE is its mean of :math:`y` adjusted for the
    fixed part, :math:`\\hat\\gamma_{00} + \\overline{(y - X\\hat\\gamma)}_j`
    (for ``y ~ 1 + (1|g)`` just :math:`\\bar y_j`); the BLUP is
    :math:`\\hat\\gamma_{00} + \\hat u_{0j}` (``coef()``) with
    :math:`\\hat u_{0j} = \\lambda_j(\\text{BLUE}_j - \\hat\\gamma_{00})`,
    :math:`\\lambda_j = \\tau_{00} / (\\tau_{00} + \\sigma^2 / n_j)`: small
    groups are pulled further towards the mean (Raudenbush & Bryk 2002,
    ch. 3; Gelman & Hill 2007, sec. 12.2).

    Examples
    --------
    >>> import mlmcourse
    >>> import matplotlib.pyplot as plt
    >>> from mlmcourse import plots
    >>> from mlmcourse.lmm import lmer
    >>> fit = lmer("MathAch ~ 1 + (1 | School)", mlmcourse.load("hsb40"))
    >>> fig, ax = plt.subplots()
    >>> ax = plots.shrinkage_arrows(fit, ax=ax)
    >>> len(ax.texts)
    40
    """
    if isinstance(source, pd.DataFrame):
        table, factor, ylabel = _shrinkage_rows(source, term), "group", f"{term}: BLUE and BLUP"
    else:
        table, factor = _shrinkage_from_fit(source, group)
        table = _shrinkage_rows(table, "(Intercept)")
        ylabel = source.response if len(source.fixef) == 1 else f"{source.response}, intercept"
    if center is None and "gls_mean" in table.columns:
        center = float(table["gls_mean"].iloc[0])
    ax = _axes(ax)
    if center is not None:
        ax.axhline(center, color=COLORS["gls"], lw=2, label=f"GLS mean ({center:.2f})", zorder=1)
    n = table["n"].to_numpy(float)
    ax.scatter(n, table["blue"], **{"color": COLORS["blue"], "s": 45, "label": "BLUE", "zorder": 3, **kwargs})
    ax.scatter(n, table["blup"], **{"color": COLORS["blup"], "s": 25, "label": "BLUP", "zorder": 4, **kwargs})
    for size, start, end in zip(n, table["blue"].to_numpy(float), table["blup"].to_numpy(float)):
        ax.annotate("", xy=(size, end), xytext=(size, start), arrowprops=_ARROW, zorder=2)
    ax.set(xlabel=f"{factor} size (n)", ylabel=ylabel)
    ax.legend(loc="best")
    return ax


def shrinkage_beta_space(fit, x, *, group=None, hue=None, data=None, ax=None, **kwargs):
    """Arrows from each group's OLS (intercept, slope) to its BLUP line, in beta space.

    Parameters
    ----------
    fit : LmerResult
        A fit with a random intercept and a random slope for `x`
        (``y ~ x + (1 + x | group)``, possibly with level-2 predictors).
    x : str
        The level-1 predictor with the random slope.
    group : str, optional
        Grouping factor (needed when the fit has several).
    hue : str, optional
        Group-level column (e.g. ``"Sector"``) of the fit's data, or of
        `data`, whose levels label one fixed-effect centre each (the mean
        fixed line of their groups).
    data : pandas.DataFrame, optional
        Data holding the grouping factor and `hue`, when `hue` is not a
        column of ``fit.model_data``.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; the current Axes by default.
    **kwargs
        Passed to both scatters.

    Returns
    -------
    matplotlib.axes.Axes
        Scatters ``"BLUE (group OLS)"`` and ``"BLUP"`` of (intercept, slope),
        one arrow per group in ``ax.texts`` from BLUE to BLUP, and a cross
        at the fixed-effect line(s) labelled ``"fixed effects"``.

    Notes
    -----
    :math:`\\tilde\\beta_j = \\{G^{-1} + [\\sigma^2(X_j'X_j)^{-1}]^{-1}\\}^{-1}
    \\{G^{-1}\\gamma + [\\sigma^2(X_j'X_j)^{-1}]^{-1}\\hat\\beta_j\\}`: the BLUP
    is an inverse-variance weighted combination of the group's OLS estimate
    and the population line. Slopes, poorly estimated within a group, shrink
    much more than intercepts (Raudenbush & Bryk 2002, ch. 3; the shrinkage
    chapter draws this in beta space).

    Examples
    --------
    >>> import mlmcourse
    >>> import matplotlib.pyplot as plt
    >>> from mlmcourse import plots
    >>> from mlmcourse.lmm import lmer
    >>> fit = lmer("MathAch ~ SES + (1 + SES | School)", mlmcourse.load("hsb40"))
    >>> fig, ax = plt.subplots()
    >>> ax = plots.shrinkage_beta_space(fit, "SES", ax=ax)
    >>> len(ax.texts)
    40
    """
    _require_fit(fit, "shrinkage_beta_space")
    factor = _grouping_factor(fit, group)
    _require_random_slope(fit, factor, x, "shrinkage_beta_space")
    levels, _ = _fit_hue(fit, factor, hue, data)
    model_data = _check_data(fit.model_data, [x], where="the fit's data")
    y = np.asarray(fit.fitted, dtype=float) + np.asarray(fit.residuals, dtype=float)
    blue = _ols_by_group(_numeric(model_data, x), y, fit.groups[factor].to_numpy())
    blup = _fit_lines(fit, x, factor).loc[blue.index]
    centres = _centres_by_hue(_fit_lines(fit, x, factor, include_random=False), levels)
    ax = _axes(ax)
    ax.scatter(blue["intercept"], blue["slope"], **{"color": COLORS["blue"], "s": 40, "label": "BLUE (group OLS)",
                                                   "zorder": 3, **kwargs})
    ax.scatter(blup["intercept"], blup["slope"], **{"color": COLORS["blup"], "s": 25, "label": "BLUP",
                                                   "zorder": 4, **kwargs})
    for (b0, b1), (p0, p1) in zip(blue[["intercept", "slope"]].to_numpy(), blup[["intercept", "slope"]].to_numpy()):
        ax.annotate("", xy=(p0, p1), xytext=(b0, b1), arrowprops={**_ARROW, "lw": 0.8, "color": "0.3"}, zorder=2)
    for i, (name, centre) in enumerate(centres.iterrows()):
        label = f"fixed effects ({name})" if name != "all" else "fixed effects" if i == 0 else None
        marker = "X" if name == "all" else "XP*Ds^v"[i % 7]
        ax.scatter([centre["intercept"]], [centre["slope"]], marker=marker, s=200, color=COLORS["gls"], zorder=5,
                   edgecolor="black", label=label)
    ax.set(xlabel="(Intercept)", ylabel=f"slope of {x}")
    ax.legend(loc="best")
    return ax
