"""Figures for planning a study: power curves and the budget trade-off.

They draw the tables of :mod:`mlmcourse.power` (``analytic_power``,
``power_simulation``) and compute nothing themselves.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlmcourse.plots._base import COLORS, PALETTE, _axes, _check_data, _numeric

__all__ = ["power_curves", "cost_tradeoff"]


def _target_line(ax, target: float | None) -> None:
    if target is not None:
        ax.axhline(target, color=COLORS["data"], lw=1, ls="--", zorder=0)


def _draw_level(ax, frame: pd.DataFrame, x: str, y: str, color, label: str, **kwargs) -> None:
    """One hue level: a line, with Monte-Carlo error bars and the formula dashed when the table has them."""
    frame = frame.sort_values(x)
    xs, ys = _numeric(frame, x), _numeric(frame, y)
    if {"conf_low", "conf_high"} <= set(frame.columns):
        errors = np.vstack([ys - frame["conf_low"].to_numpy(float), frame["conf_high"].to_numpy(float) - ys])
        ax.errorbar(xs, ys, yerr=errors, fmt="o", color=color, ms=4, capsize=2, label=label, **kwargs)
        if "power_analytic" in frame and frame["power_analytic"].notna().all():
            ax.plot(xs, frame["power_analytic"].to_numpy(float), color=color, ls="--", lw=1.2)
    else:
        ax.plot(xs, ys, color=color, label=label, **kwargs)


def power_curves(data=None, *, x="n_groups", y="power", hue="n_per_group", target=0.8, ax=None, **kwargs):
    """Power against the number of groups (or any design column), one curve per group size.

    Parameters
    ----------
    data : DataFrame
        A table of :func:`mlmcourse.power.analytic_power` (drawn as lines) or
        :func:`mlmcourse.power.power_simulation` (points with their 95%
        Monte-Carlo intervals, the formula dashed where it exists).
    x, y : str, default "n_groups", "power"
    hue : str or None, default "n_per_group"
        One curve per value of this column.
    target : float or None, default 0.8
        Draw the conventional target power as a dashed line.
    ax : matplotlib Axes, optional
    **kwargs
        Passed to the lines (``plot``) or points (``errorbar``).

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> from mlmcourse import power, plots
    >>> table = power.analytic_power("cluster_randomised", n_groups=[10, 20, 40], n_per_group=[5, 20],
    ...                              icc=0.1, effect=0.4)
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> ax = plots.power_curves(table, ax=ax)
    >>> len(ax.get_lines())  # two curves and the target line
    3
    >>> plt.close(fig)
    """
    data = _check_data(data, [x, y, hue])
    ax = _axes(ax)
    levels = [None] if hue is None else list(dict.fromkeys(data[hue]))
    for level, color in zip(levels, PALETTE * (len(levels) // len(PALETTE) + 1)):
        frame = data if level is None else data[data[hue] == level]
        _draw_level(ax, frame, x, y, color, "" if level is None else str(level), **kwargs)
    _target_line(ax, target)
    ax.set(xlabel=x.replace("_", " "), ylabel=y.replace("_", " "), ylim=(0, 1.02))
    if hue is not None:
        ax.legend(title=hue.replace("_", " "))
    return ax


def cost_tradeoff(data=None, *, x="n_per_group", y="power", groups="n_groups", target=0.8, ax=None, **kwargs):
    """Power of the designs one budget buys: bigger groups mean fewer of them.

    Parameters
    ----------
    data : DataFrame
        One row per design with the same cost, e.g.
        :func:`mlmcourse.power.budget_designs` merged with the power of each
        design; columns `x`, `y` and `groups`.
    x, y, groups : str
        Group size, power and number of groups (written next to each point).
    target : float or None, default 0.8
    ax : matplotlib Axes, optional
    **kwargs
        Passed to ``Axes.plot``.

    Returns
    -------
    matplotlib Axes
        The best design is circled.

    Examples
    --------
    >>> import pandas as pd
    >>> from mlmcourse import plots
    >>> table = pd.DataFrame({"n_per_group": [5, 10, 20], "power": [0.6, 0.7, 0.65], "n_groups": [80, 50, 30]})
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> ax = plots.cost_tradeoff(table, ax=ax)
    >>> [t.get_text() for t in ax.texts]
    ['J=80', 'J=50', 'J=30']
    >>> plt.close(fig)
    """
    data = _check_data(data, [x, y, groups]).sort_values(x)
    ax = _axes(ax)
    xs, ys = _numeric(data, x), _numeric(data, y)
    ax.plot(xs, ys, marker="o", color=COLORS["partial_pooling"], **kwargs)
    for xi, yi, j in zip(xs, ys, data[groups]):
        ax.annotate(f"J={j}", (xi, yi), textcoords="offset points", xytext=(0, 7), ha="center", fontsize="small")
    best = int(np.nanargmax(ys))
    ax.plot(xs[best], ys[best], "o", ms=14, mfc="none", mec=COLORS["no_pooling"], mew=2)
    _target_line(ax, target)
    ax.set(xlabel=x.replace("_", " "), ylabel=y.replace("_", " "), ylim=(0, 1.05))
    return ax
