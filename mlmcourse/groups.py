"""Group-level tools: group means, within-group deviations, one-row-per-group tables.

These are the everyday helpers of multilevel data analysis (in R, spida's
``cvar``/``dvar``/``up``/``varLevel``; in Stata, ``egen ... = mean(), by()``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["center", "group_table", "variable_levels"]


def _check_columns(data: pd.DataFrame, columns: Sequence[str]) -> None:
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, not {type(data).__name__}")
    for column in columns:
        if column not in data.columns:
            raise KeyError(f"column {column!r} is not in the data; columns are {list(data.columns)}")


def _as_list(columns: str | Sequence[str]) -> list[str]:
    return [columns] if isinstance(columns, str) else list(columns)


def _numeric(data: pd.DataFrame, column: str) -> pd.Series:
    values = data[column]
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        raise TypeError(f"column {column!r} is not numeric ({values.dtype}); group means need numbers")
    return values.astype(float)


def _group_means(data: pd.DataFrame, column: str, group: str) -> pd.Series:
    values = _numeric(data, column)
    return values.groupby(data[group], observed=True, sort=False).transform("mean")


def center(
    data: pd.DataFrame, columns: str | Sequence[str], group: str | None, how: str = "within"
) -> pd.DataFrame:
    """Return a copy of `data` with centred versions of `columns` and their group means.

    Parameters
    ----------
    data : DataFrame
    columns : str or list of str
        Numeric level-1 columns to centre.
    group : str or None
        The grouping column whose means are added. With ``how="grand"`` it
        may be None: then only the grand-mean centred columns are added.
    how : {"within", "grand"}, default "within"
        ``"within"``: centring within cluster (CWC), the deviation from the
        row's group mean. ``"grand"``: centring at the grand mean (CGM), the
        deviation from the mean over all rows.

    Returns
    -------
    pandas.DataFrame
        `data` (unchanged rows and columns) plus, for each column ``x``:

        * ``x_mean``: the mean of ``x`` in the row's group (when `group` is
          given), the same on every row of the group;
        * ``x_within`` (``how="within"``): ``x - x_mean``, whose group means
          are exactly zero; or ``x_grand`` (``how="grand"``): ``x`` minus the
          mean of ``x`` over all rows with a value.

        Existing columns with these names are replaced.

    Notes
    -----
    CWC: :math:`x_{ij} - \\bar x_{\\cdot j}`; CGM: :math:`x_{ij} - \\bar x_{\\cdot\\cdot}`
    (Enders & Tofighi 2007; in R, ``cvar``/``dvar`` of the ``spida`` package; Stata
    ``egen x_mean = mean(x), by(group)``). A CWC slope is the pure
    within-group effect; a CGM slope mixes within and between effects unless
    ``x_mean`` is also in the model, and then the ``x_mean`` coefficient is
    the contextual effect. Missing values are ignored in the means and stay
    missing in the centred column.

    Examples
    --------
    >>> import mlmcourse
    >>> hs = center(mlmcourse.load("hsb40"), "SES", "School")
    >>> round(float(hs["SES_mean"].iloc[0]), 4), round(float(hs["SES_within"].iloc[0]), 4)
    (0.3453, 0.5367)
    >>> grand = center(hs, "SES", None, how="grand")
    >>> abs(float(grand["SES_grand"].mean())) < 1e-12
    True
    """
    if how not in ("within", "grand"):
        raise ValueError(f"how must be 'within' or 'grand', not {how!r}")
    if group is None and how == "within":
        raise ValueError("centring within cluster needs a grouping column: give `group`")
    columns = _as_list(columns)
    _check_columns(data, columns + ([group] if group is not None else []))
    out = data.copy()
    for column in columns:
        values = _numeric(data, column)
        if group is not None:
            out[f"{column}_mean"] = _group_means(data, column, group)
        if how == "within":
            out[f"{column}_within"] = values - out[f"{column}_mean"]
        else:
            out[f"{column}_grand"] = values - values.mean()
    return out


def variable_levels(data: pd.DataFrame, group: str) -> pd.DataFrame:
    """Tell which columns vary within groups (level 1) and which do not (level 2).

    Returns
    -------
    pandas.DataFrame
        Columns ``variable``, ``varies_at`` (the level of the hierarchy the
        variable belongs to: 1 if it varies within groups, 2 if it is
        constant within every group) and ``groups_varying`` (how many groups
        have more than one distinct value of the variable), one row per
        column other than `group`.

    Examples
    --------
    >>> import pandas as pd
    >>> toy = pd.DataFrame({"g": ["a", "a", "b", "b"], "x": [1, 2, 3, 4], "w": [0, 0, 1, 1]})
    >>> variable_levels(toy, "g")
      variable  varies_at  groups_varying
    0        x          1               2
    1        w          2               0
    """
    _check_columns(data, [group])
    rows = []
    grouped = data.groupby(group, observed=True, sort=False)
    for column in data.columns.drop(group):
        varying = int((grouped[column].nunique(dropna=False) > 1).sum())
        rows.append({"variable": column, "varies_at": 1 if varying else 2, "groups_varying": varying})
    return pd.DataFrame(rows, columns=["variable", "varies_at", "groups_varying"])


def group_table(
    data: pd.DataFrame, group: str, level1: str | Sequence[str] | None = None, stat: str = "mean"
) -> pd.DataFrame:
    """One row per group: its size, its level-2 variables and summaries of level-1 variables.

    Parameters
    ----------
    data : DataFrame
    group : str
        The grouping column.
    level1 : str or list of str, optional
        Numeric level-1 columns to summarise (by default every numeric column
        that varies within groups).
    stat : str, default "mean"
        Any pandas groupby aggregation name ("mean", "std", "median", ...).

    Returns
    -------
    pandas.DataFrame
        Indexed by group: ``n`` (rows in the group), each level-2 column as it
        is, and ``<col>_<stat>`` for each level-1 column. The analogue of,
        in R, ``up(data, ~ school, all = TRUE)`` (``spida`` package).
    """
    levels = variable_levels(data, group)
    level2 = levels.loc[levels.varies_at == 2, "variable"].tolist()
    if level1 is None:
        candidates = levels.loc[levels.varies_at == 1, "variable"]
        level1 = [c for c in candidates if pd.api.types.is_numeric_dtype(data[c])]
    level1 = _as_list(level1)
    _check_columns(data, level1)
    grouped = data.groupby(group, observed=True, sort=True)
    table = grouped[level2].first() if level2 else pd.DataFrame(index=grouped.size().index)
    table.insert(0, "n", grouped.size())
    for column in level1:
        table[f"{column}_{stat}"] = _numeric(data, column).groupby(data[group], observed=True).agg(stat)
    return table


def _per_group_ols(y: pd.Series, x: pd.DataFrame, labels: pd.Series) -> pd.DataFrame:
    """OLS of y on the columns of x in every group: the one per-group regression of the package.

    Used for the no-pooling estimates, the per-group averages and the BLUEs of
    the shrinkage table. A group gets estimates when its columns are linearly
    independent (at least as many rows as columns); standard errors and sigma
    need more rows than columns.

    Returns
    -------
    pandas.DataFrame
        One row per group (sorted) and column of x: level, term, n, df
        (n - columns), estimate, std_error, sigma (the group's residual SD),
        unscaled (the diagonal of (X_j'X_j)^-1).
    """
    k, rows = x.shape[1], []
    for level, positions in labels.groupby(labels.to_numpy(), sort=True).indices.items():
        xj, yj = x.iloc[positions].to_numpy(dtype=float), y.iloc[positions].to_numpy(dtype=float)
        n = len(positions)
        estimate = unscaled = std_error = np.full(k, np.nan)
        sigma = np.nan
        if n >= k and np.linalg.matrix_rank(xj) == k:
            estimate = np.linalg.lstsq(xj, yj, rcond=None)[0]
            unscaled = np.diag(np.linalg.inv(xj.T @ xj))
            if n > k:
                sigma = float(np.sqrt(np.sum((yj - xj @ estimate) ** 2) / (n - k)))
                std_error = sigma * np.sqrt(unscaled)
        rows += [{"level": level, "term": term, "n": n, "df": n - k, "estimate": b, "std_error": se,
                  "sigma": sigma, "unscaled": u}
                 for term, b, se, u in zip(x.columns, estimate, std_error, unscaled)]
    return pd.DataFrame(rows, columns=["level", "term", "n", "df", "estimate", "std_error", "sigma", "unscaled"])
