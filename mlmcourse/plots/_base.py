"""Shared pieces of the course figures: palette, theme, argument checks, group-wise OLS.

Nothing here draws a figure; the public plotting functions live in the
sibling modules and are re-exported by :mod:`mlmcourse.plots`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

__all__ = ["PALETTE", "COLORS", "set_theme"]

#: The course palette: seaborn's "colorblind" (Okabe-Ito-like) ten colours.
PALETTE: list[tuple[float, float, float]] = sns.color_palette("colorblind")

#: Fixed colour for each role a line or point plays in the course figures, so
#: the same idea has the same colour in the book, the notebooks and the slides.
COLORS: dict[str, tuple[float, float, float]] = {
    "data": PALETTE[7],  # grey: raw observations
    "no_pooling": PALETTE[0],  # blue: per-group OLS, the BLUE
    "blue": PALETTE[0],
    "partial_pooling": PALETTE[3],  # vermillion: mixed-model lines, the BLUP
    "blup": PALETTE[3],
    "complete_pooling": PALETTE[2],  # green: one line for everybody, the GLS mean
    "gls": PALETTE[2],
    "pooled": PALETTE[4],  # purple
    "within": PALETTE[0],
    "between": PALETTE[1],  # orange
    "residual": PALETTE[7],
}

_CONTEXTS = ("paper", "notebook", "talk", "poster")


def set_theme(context: str = "notebook", *, font_scale: float = 1.0, rc: dict | None = None) -> None:
    """Set the shared look of the course figures (book, notebooks and slides).

    Parameters
    ----------
    context : {"notebook", "talk", "paper", "poster"}
        Seaborn plotting context. Use ``"talk"`` for slides: larger fonts and
        thicker lines, readable from the back of a lecture room.
    font_scale : float
        Extra scaling of all fonts.
    rc : dict, optional
        Further matplotlib settings that override the theme.

    Notes
    -----
    White grid background, the colour-blind-safe :data:`PALETTE`, no top and
    right spines. Calls :func:`seaborn.set_theme`, so it changes matplotlib's
    global settings.

    Examples
    --------
    >>> from mlmcourse import plots
    >>> plots.set_theme("talk")
    >>> plots.set_theme()  # back to the book's look
    """
    if context not in _CONTEXTS:
        raise ValueError(f"context {context!r} is not one of {list(_CONTEXTS)}; use 'talk' for slides")
    settings = {
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.titleweight": "bold",
        "legend.frameon": False,
        "savefig.bbox": "tight",
        "figure.dpi": 100,
    }
    settings.update(rc or {})
    sns.set_theme(context=context, style="whitegrid", palette=PALETTE, font_scale=font_scale, rc=settings)


# ----------------------------------------------------------------------------- checks


def _check_data(data, columns: Sequence[str | None], where: str = "the data") -> pd.DataFrame:
    """Return `data` if it is a DataFrame holding every named column."""
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, not {type(data).__name__}")
    for column in columns:
        if column is not None and column not in data.columns:
            raise KeyError(f"column {column!r} is not in {where}; columns are {list(data.columns)}")
    return data


def _numeric(data: pd.DataFrame, column: str) -> np.ndarray:
    values = data[column]
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        raise TypeError(f"column {column!r} is not numeric ({values.dtype}); this plot needs numbers")
    return values.to_numpy(dtype=float, na_value=np.nan)


def _complete_rows(data: pd.DataFrame, columns: Sequence[str | None]) -> pd.DataFrame:
    """Rows of `data` without missing values in `columns`; warns how many were dropped."""
    used = list(dict.fromkeys(c for c in columns if c is not None))
    missing = data[used].isna().any(axis=1)
    if missing.any():
        counts = {c: int(data[c].isna().sum()) for c in used if data[c].isna().any()}
        warnings.warn(f"missing values {counts}; {int(missing.sum())} rows were left out of the plot", stacklevel=3)
    return data.loc[~missing, used]


def _group_values(data: pd.DataFrame, column: str, group: str) -> pd.Series:
    """One value of a level-2 `column` per group; error if it varies within a group."""
    counts = data.groupby(group, observed=True, sort=False)[column].nunique(dropna=False)
    if (counts > 1).any():
        example = counts.index[counts > 1][0]
        raise ValueError(
            f"column {column!r} varies within {group} {example!r}; it must be a group-level "
            f"(level-2) variable, constant within each {group}"
        )
    return data.groupby(group, observed=True, sort=False)[column].first()


def _hue_levels(data: pd.DataFrame, group: str, hue: str) -> pd.Series:
    """The level of group-level column `hue` for each group, indexed by group label (str)."""
    levels = _group_values(data, hue, group)
    levels.index = _as_labels(levels.index)
    return levels


def _hue_palette(data: pd.DataFrame, hue: str) -> dict:
    """Colour of each level of `hue`: categories in order, otherwise sorted values."""
    values = data[hue]
    if isinstance(values.dtype, pd.CategoricalDtype):
        levels = [c for c in values.cat.categories if c in set(values)]
    else:
        levels = sorted(values.dropna().unique(), key=str)
    return dict(zip(levels, PALETTE))


def _fit_hue(fit, factor: str, hue: str | None, data: pd.DataFrame | None) -> tuple[pd.Series | None, dict]:
    """Level of `hue` for each group of the fit, from the fit's data or else from `data`; and colours."""
    if hue is None:
        return None, {}
    if hue in fit.model_data.columns:
        source = fit.model_data.assign(**{factor: fit.groups[factor].astype(str).to_numpy()})
    elif data is not None:
        source = _check_data(data, [factor, hue])
    else:
        raise KeyError(
            f"column {hue!r} is not in the fit's data (columns {list(fit.model_data.columns)}); "
            f"pass data= holding columns {factor!r} and {hue!r}"
        )
    levels = _hue_levels(source, factor, hue)
    missing = set(_as_labels(fit.groups[factor])) - set(levels.index)
    if missing:
        raise ValueError(f"{factor} {sorted(missing)[0]!r} of the fit is not in the data given for {hue!r}")
    return levels, _hue_palette(source, hue)


def _centres_by_hue(lines: pd.DataFrame, levels: pd.Series | None) -> pd.DataFrame:
    """Mean (intercept, slope) of the groups' lines per hue level.

    Without levels: the distinct lines, each named 'all' (their mean if more than 10).
    """
    lines = lines[["intercept", "slope"]]
    if levels is None:
        unique = lines.loc[~lines.round(8).duplicated()]
        unique = lines.mean().to_frame().T if len(unique) > 10 else unique
        return unique.set_axis(["all"] * len(unique))
    return lines.groupby(levels.loc[lines.index].to_numpy()).mean()


def _panel_grid(count: int, col_wrap: int, height: float, aspect: float, xlabel: str, ylabel: str):
    """A figure of `count` panels with shared axes, `col_wrap` per row; labels on the outer panels."""
    ncols = max(1, min(col_wrap, count))
    nrows = -(-count // ncols)
    fig, grid = plt.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False, layout="constrained",
                             figsize=(ncols * height * aspect, nrows * height))
    axes = list(grid.flat)
    for ax in axes[count:]:
        ax.remove()
    for i, ax in enumerate(axes[:count]):
        bottom = i + ncols >= count
        ax.tick_params(labelbottom=bottom)
        ax.set(xlabel=xlabel if bottom else "", ylabel=ylabel if i % ncols == 0 else "")
    return fig, axes[:count]


def _axes(ax):
    return plt.gca() if ax is None else ax


def _as_labels(values) -> list[str]:
    return [str(value) for value in values]


# ----------------------------------------------------------------------------- group-wise OLS


def _ols_by_group(x: np.ndarray, y: np.ndarray, groups) -> pd.DataFrame:
    """Simple regression of y on x within each group, in order of first appearance.

    Returns a DataFrame indexed by group label with columns ``n``, ``x_mean``,
    ``y_mean``, ``sxx`` (sum of squared x deviations), ``intercept``, ``slope``,
    ``rss`` (residual sum of squares), ``x_min``, ``x_max``. Groups whose x does
    not vary get a missing slope and intercept.
    """
    frame = pd.DataFrame({"g": np.asarray(groups, dtype=object), "x": x, "y": y})
    by = frame.groupby("g", sort=False)
    means = by[["x", "y"]].transform("mean")
    frame["dx"], frame["dy"] = frame["x"] - means["x"], frame["y"] - means["y"]
    frame["dxx"], frame["dxy"], frame["dyy"] = frame.dx**2, frame.dx * frame.dy, frame.dy**2
    sums = frame.groupby("g", sort=False)[["dxx", "dxy", "dyy"]].sum()
    out = pd.DataFrame(
        {
            "n": by.size(),
            "x_mean": by["x"].mean(),
            "y_mean": by["y"].mean(),
            "sxx": sums["dxx"],
            "x_min": by["x"].min(),
            "x_max": by["x"].max(),
        }
    )
    flat = out["sxx"] <= 1e-12 * (1 + out["x_mean"].abs()) ** 2
    out["slope"] = (sums["dxy"] / out["sxx"]).where(~flat)
    out["intercept"] = out["y_mean"] - out["slope"] * out["x_mean"]
    out["rss"] = (sums["dyy"] - out["slope"] * sums["dxy"]).clip(lower=0)
    out.index = _as_labels(out.index)
    out.index.name = None
    return out


def _ols_covariance(row: pd.Series, sigma2: float | None = None) -> np.ndarray:
    """sigma^2 (X'X)^{-1} of a group's (intercept, slope); sigma^2 = RSS/(n-2) if not given."""
    n, xbar, sxx = row["n"], row["x_mean"], row["sxx"]
    if sigma2 is None:
        sigma2 = row["rss"] / (n - 2)
    inverse = np.array([[1 / n + xbar**2 / sxx, -xbar / sxx], [-xbar / sxx, 1 / sxx]])
    return sigma2 * inverse


def _line(ax, intercept: float, slope: float, x_range, **kwargs):
    xs = np.asarray(x_range, dtype=float)
    return ax.plot(xs, intercept + slope * xs, **kwargs)[0]


# ----------------------------------------------------------------------------- fitted models


def _require_fit(fit, what: str = "this plot"):
    """Raise a clear TypeError unless `fit` is an LmerResult."""
    from mlmcourse.lmm import LmerResult

    if not isinstance(fit, LmerResult):
        raise TypeError(
            f"{what} needs a fitted model from mlmcourse.lmer() (an LmerResult), not {type(fit).__name__}"
        )
    return fit


def _grouping_factor(fit, group: str | None) -> str:
    """The grouping factor to plot: `group`, or the fit's only one."""
    factors = list(fit.ngroups)
    if group is None:
        if len(factors) > 1:
            raise ValueError(f"the fit has several grouping factors {factors}; choose one with group=")
        return factors[0]
    if group not in factors:
        raise ValueError(f"{group!r} is not a grouping factor of the fit; its grouping factors are {factors}")
    return group


def _random_terms(fit, group: str) -> list[str]:
    terms = fit.ranef.loc[fit.ranef["grpvar"] == group, "term"]
    return list(dict.fromkeys(terms.astype(str)))


def _require_random_slope(fit, group: str, x: str, what: str) -> None:
    terms = _random_terms(fit, group)
    if x not in terms or "(Intercept)" not in terms:
        raise ValueError(
            f"{what} needs a random intercept and a random slope for {x!r} in {group} "
            f"(as in `(1 + {x} | {group})`); the fit's random terms for {group} are {terms}"
        )


def _require_random_intercept_only(fit, group: str, what: str) -> None:
    terms = _random_terms(fit, group)
    if terms != ["(Intercept)"]:
        slopes = [t for t in terms if t != "(Intercept)"]
        raise ValueError(
            f"{what} needs a random-intercept fit `(1 | {group})`; the fit also has random slope(s) "
            f"{slopes} for {group}"
        )


def _fit_lines(fit, x: str, group: str, *, include_random: bool = True) -> pd.DataFrame:
    """Each group's fitted straight line in `x` (conditional or fixed part only).

    The fitted values of group j lie on a line in x when x is the only
    level-1 predictor; the line is read off them exactly by least squares.
    Returns the frame of :func:`_ols_by_group`.
    """
    data = _check_data(fit.model_data, [x], where="the fit's data")
    values = fit.fitted if include_random else fit.predict(include_random=False)
    values = np.asarray(values, dtype=float)
    lines = _ols_by_group(_numeric(data, x), values, fit.groups[group].to_numpy())
    scale = 1.0 + np.nanstd(values)
    if np.sqrt(lines["rss"].max() / lines["n"].min()) > 1e-6 * scale:
        raise ValueError(
            f"the fitted values within each {group} are not a straight line in {x!r}: the fit has "
            f"other level-1 predictors or further grouping factors ({fit.formula})"
        )
    return lines
