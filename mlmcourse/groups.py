"""Group-level tools: group means, within-group deviations, one-row-per-group tables.

These are the everyday helpers of multilevel data analysis (in R, spida's
``cvar``/``dvar``/``up``/``varLevel``; in Stata, ``egen ... = mean(), by()``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["group_mean", "within_deviation", "add_group_means", "group_table", "variable_levels"]


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


def group_mean(data: pd.DataFrame, column: str, group: str) -> pd.Series:
    """The mean of `column` in each row's group, repeated on every row.

    Notes
    -----
    :math:`\\bar x_{\\cdot j}` for each row :math:`i` of group :math:`j`; the
    contextual (compositional) variable (``cvar`` in the SCS course text).
    Missing values are ignored in the mean.

    Examples
    --------
    >>> import mlmcourse
    >>> hs = mlmcourse.load("hsb40")
    >>> round(float(group_mean(hs, "SES", "School").iloc[0]), 4)
    0.3453
    """
    _check_columns(data, [column, group])
    values = _numeric(data, column)
    return values.groupby(data[group], observed=True, sort=False).transform("mean").rename(f"{column}_mean")


def within_deviation(data: pd.DataFrame, column: str, group: str) -> pd.Series:
    """Deviation of `column` from its group mean (group-mean centring).

    Notes
    -----
    :math:`x_{ij} - \\bar x_{\\cdot j}`; ``dvar`` in the SCS course text. Its
    group means are exactly zero, so it carries only within-group variation.
    """
    mean = group_mean(data, column, group)
    return (_numeric(data, column) - mean).rename(f"{column}_within")


def add_group_means(data: pd.DataFrame, columns: str | Sequence[str], group: str) -> pd.DataFrame:
    """Return a copy of `data` with ``<col>_mean`` and ``<col>_within`` for each column.

    Returns
    -------
    pandas.DataFrame
        `data` plus two columns per variable: the group mean (``<col>_mean``)
        and the within-group deviation (``<col>_within``).
    """
    out = data.copy()
    for column in _as_list(columns):
        out[f"{column}_mean"] = group_mean(data, column, group)
        out[f"{column}_within"] = within_deviation(data, column, group)
    return out


def variable_levels(data: pd.DataFrame, group: str) -> pd.DataFrame:
    """Tell which columns vary within groups (level 1) and which do not (level 2).

    Returns
    -------
    pandas.DataFrame
        Columns ``variable``, ``level`` (1 or 2) and ``groups_varying`` (how
        many groups have more than one distinct value of the variable), one
        row per column other than `group`.
    """
    _check_columns(data, [group])
    rows = []
    grouped = data.groupby(group, observed=True, sort=False)
    for column in data.columns.drop(group):
        varying = int((grouped[column].nunique(dropna=False) > 1).sum())
        rows.append({"variable": column, "level": 1 if varying else 2, "groups_varying": varying})
    return pd.DataFrame(rows, columns=["variable", "level", "groups_varying"])


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
        is, and ``<col>_<stat>`` for each level-1 column. The analogue of
        ``up(data, ~ school, all = TRUE)`` in the SCS course text.
    """
    levels = variable_levels(data, group)
    level2 = levels.loc[levels.level == 2, "variable"].tolist()
    if level1 is None:
        candidates = levels.loc[levels.level == 1, "variable"]
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
