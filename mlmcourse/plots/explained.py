"""Rights & Sterba's (2019) picture of explained variance: where each model's variance comes from."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from mlmcourse.plots._base import PALETTE

__all__ = ["variance_decomposition"]

_LABELS = {"fixed_within": "fixed, within (f1)", "fixed_between": "fixed, between (f2)",
           "slope_variation": "slope variation (v)", "intercept_variation": "intercept variation (m)",
           "residual": "residual"}
_COLORS = {"fixed_within": PALETTE[0], "fixed_between": PALETTE[1], "slope_variation": PALETTE[2],
           "intercept_variation": PALETTE[4], "residual": PALETTE[7]}


def variance_decomposition(fits, *, labels=None, ax=None, **kwargs):
    """Stacked bars of Rights & Sterba's shares of total, within- and between-group variance.

    Parameters
    ----------
    fits : LmerResult, list of LmerResult, or dict
        Fits with one grouping factor and level-1 predictors centred within
        groups (see :func:`mlmcourse.rsquared.rights_sterba`); a dict maps
        labels to fits.
    labels : list of str, optional
        Names of the models for a list (default "model 1", ...).
    ax : matplotlib.axes.Axes, optional
    **kwargs
        Passed to :meth:`~matplotlib.axes.Axes.bar`.

    Returns
    -------
    matplotlib.axes.Axes
        For each model three bars (total, within, between), each part a
        segment whose height is its share; one bar container per part,
        labelled with the part's name.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import mlmcourse
    >>> from mlmcourse import plots
    >>> from mlmcourse.groups import center
    >>> hs = mlmcourse.load("hsb40")
    >>> hs["ses_w"] = center(hs, "SES", "School")["SES_within"]
    >>> m = mlmcourse.lmer("MathAch ~ ses_w + MEANSES + (1 + ses_w | School)", hs)
    >>> fig, ax = plt.subplots()
    >>> ax = plots.variance_decomposition(m, ax=ax)
    >>> [c.get_label() for c in ax.containers][:2]
    ['fixed, within (f1)', 'fixed, between (f2)']
    >>> plt.close(fig)
    """
    from mlmcourse.rsquared import PARTS, rights_sterba

    if isinstance(fits, dict):
        labels, fits = list(fits), list(fits.values())
    elif not isinstance(fits, (list, tuple)):
        fits = [fits]
    labels = labels or [f"model {i + 1}" for i in range(len(fits))]
    if len(labels) != len(fits):
        raise ValueError(f"{len(labels)} labels for {len(fits)} models")
    tables = [rights_sterba(f).set_index("part") for f in fits]
    ax = ax if ax is not None else plt.gca()
    kinds = ["total", "within", "between"]
    positions = np.array([m * (len(kinds) + 1) + k for m in range(len(fits)) for k in range(len(kinds))], float)
    bottom = np.zeros(len(positions))
    for part in PARTS:
        heights = np.array([np.nan_to_num(t.loc[part, kind]) for t in tables for kind in kinds])
        ax.bar(positions, heights, bottom=bottom, color=_COLORS[part], label=_LABELS[part], width=0.85,
               edgecolor="white", **kwargs)
        bottom += heights
    ax.set_xticks(positions, [kind for _ in fits for kind in kinds])
    for m, label in enumerate(labels):
        ax.text(m * (len(kinds) + 1) + 1, 1.02, label, ha="center", va="bottom")
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("share of variance")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return ax
